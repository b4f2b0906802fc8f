"""Fold schedule of a layer on an accelerator: the folds in execution order and each fold's tiles.

The folds are those of ``coexplore.dataflows.mapping.plan_folds`` (the shared definition) under the
layer's loop mapping (the mapper's ``LayerMapping.loops``; by default the template's), run in a
fixed order: outer dims outermost (in ``Mapping.outer`` order), then column folds, then row folds
innermost (SCALE-Sim's and the RTL's order). For every fold this module gives, per operand, the
*tile*: the distinct words the fold reads (input, weight) or writes (output), as exact per-fold
extents (edge folds are smaller), and a *key* that changes exactly when the tile's data changes
between consecutive folds. Everything is vectorized over folds.

Inputs are counted as raw words of the (unpadded) input the fold's window touches, with halos:
``e_P`` output rows under ``e_R`` filter rows touch ``(e_P - 1)*stride + (e_R - 1)*dilation + 1`` input
rows (capped at the input height): the hardware generates im2col addresses itself. A matmul's
second operand is an activation indexed by N as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coexplore.dataflows.mapping import FoldPlan, plan_folds
from coexplore.dataflows.spec import Accelerator, Mapping, Operand, Pack, SpatialAxis
from coexplore.models.ir import Dim, Layer, OpKind

INPUT_DIMS = frozenset({Dim.G, Dim.N, Dim.C, Dim.P, Dim.Q, Dim.R, Dim.S})
WEIGHT_DIMS = frozenset({Dim.G, Dim.K, Dim.C, Dim.R, Dim.S})
OUTPUT_DIMS = frozenset({Dim.G, Dim.N, Dim.K, Dim.P, Dim.Q})
OPERANDS = (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT)


def operand_dims(op: Operand, matmul: bool) -> frozenset[Dim]:
    if op is Operand.INPUT:
        return INPUT_DIMS
    if op is Operand.WEIGHT:
        return WEIGHT_DIMS | {Dim.N} if matmul else WEIGHT_DIMS
    return OUTPUT_DIMS


@dataclass(frozen=True, slots=True)
class FoldSchedule:
    """Folds of one layer in execution order (arrays have one entry per fold)."""

    plan: FoldPlan
    mapping: Mapping
    folds: int
    steps: int  # T: temporal steps streamed per fold
    extents: dict[Dim, np.ndarray]  # per-fold extent of every dim
    tile_words: dict[Operand, np.ndarray]
    tile_key: dict[Operand, np.ndarray]  # equal consecutive keys: the same tile
    total_words: dict[Operand, int]  # distinct words of the whole layer (compulsory traffic)


def _axis_extents(
    axis: SpatialAxis, dims: dict[Dim, int], size: int, idx: np.ndarray
) -> tuple[dict[Dim, np.ndarray], np.ndarray]:
    """Per-fold extents of the axis's dims, and the words the fold covers on the axis (its size).

    FLATTEN: a fold covers a contiguous range of the flattened dims (last dim fastest), of size
    ``rows`` (the last fold: what is left). Its per-dim extents are those of an *aligned* block of
    that size (inner dims fill first), so every fold has one of two shapes.
    NESTED: each dim is tiled on its own (the first dim is the innermost fold digit).
    """
    out: dict[Dim, np.ndarray] = {}
    if axis.pack is Pack.FLATTEN:
        total = int(np.prod([int(dims[d]) for d in axis.dims]))
        cover = np.minimum(size, total - idx * size)
        rest = cover
        for d in reversed(axis.dims):
            n = int(dims[d])
            out[d] = np.minimum(n, rest)
            rest = -(-rest // n)
        return out, cover
    remaining = size
    tiles = []
    for d in axis.dims:
        n = int(dims[d])
        t = max(min(n, remaining), 1)
        tiles.append((d, n, t, -(-n // t)))
        remaining = max(remaining // t, 1)
    rest = idx.copy()
    cover = np.ones_like(idx)
    for d, n, t, f in tiles:  # the first dim is the innermost fold digit (Eyeriss: filter-row tiles
        rest, digit = np.divmod(rest, f)  # inside channel tiles, as the RTL runs them)
        out[d] = np.minimum(t, n - digit * t)
        cover = cover * out[d]
    return out, cover


def _product_words(
    op: Operand,
    idx_dims: frozenset[Dim],
    e: dict[Dim, np.ndarray],
    mapping: Mapping,
    row_cover: np.ndarray,
    col_cover: np.ndarray,
) -> np.ndarray:
    """Words of a weight or output tile: the product of its dims' extents, except that an axis all
    of whose dims index the operand contributes exactly the words the fold covers on it."""
    words = np.ones_like(row_cover)
    placed: set[Dim] = set()
    for axis, cover in ((mapping.rows, row_cover), (mapping.cols, col_cover)):
        dims = set(axis.dims)
        if dims <= idx_dims:
            words = words * cover
            placed |= dims
    for d in idx_dims - placed - {Dim.G}:
        words = words * e[d]
    return words


def _span(e_out: np.ndarray, e_k: np.ndarray, stride: int, dilation: int, limit: int) -> np.ndarray:
    return np.minimum((e_out - 1) * stride + (e_k - 1) * dilation + 1, limit)


def build_schedule(layer: Layer, acc: Accelerator, mapping: Mapping | None = None) -> FoldSchedule:
    """The fold schedule of a MAC layer (conv, depthwise, linear, matmul) on ``acc`` under ``mapping``
    (default: the template's own mapping for the layer's kind)."""
    mapping = acc.dataflow.mapping_for(layer.kind) if mapping is None else mapping
    dims = layer.dims()
    plan = plan_folds(mapping, dims, acc.rows, acc.cols)
    rf, cf = int(plan.rows.folds), int(plan.cols.folds)
    outer = [d for d in mapping.outer if dims[d] > 1]
    n_outer = int(np.prod([dims[d] for d in outer])) if outer else 1
    folds = n_outer * cf * rf
    f = np.arange(folds, dtype=np.int64)
    rest, i = np.divmod(f, rf)
    o, j = np.divmod(rest, cf)
    ext: dict[Dim, np.ndarray] = {d: np.ones(folds, dtype=np.int64) for d in Dim}
    index: dict[Dim, np.ndarray] = {d: np.zeros(folds, dtype=np.int64) for d in Dim}
    rest = o.copy()
    for d in reversed(outer):
        rest, index[d] = np.divmod(rest, dims[d])
    for d in mapping.temporal:
        ext[d] = np.full(folds, dims[d], dtype=np.int64)
    row_ext, row_cover = _axis_extents(mapping.rows, dims, acc.rows, i)
    col_ext, col_cover = _axis_extents(mapping.cols, dims, acc.cols, j)
    ext.update(row_ext)
    ext.update(col_ext)
    matmul = layer.kind is OpKind.MATMUL
    row_dims, col_dims = set(mapping.rows.dims), set(mapping.cols.dims)
    words: dict[Operand, np.ndarray] = {}
    keys: dict[Operand, np.ndarray] = {}
    for op in OPERANDS:
        idx_dims = operand_dims(op, matmul)
        key = np.zeros(folds, dtype=np.int64)
        for d in outer:
            if d in idx_dims:
                key = key * dims[d] + index[d]
        if row_dims & idx_dims:
            key = key * rf + i
        if col_dims & idx_dims:
            key = key * cf + j
        keys[op] = key
        e = ext
        if op is Operand.INPUT:
            words[op] = (
                e[Dim.N]
                * e[Dim.C]
                * _span(e[Dim.P], e[Dim.R], layer.stride_h, layer.dilation_h, layer.h)
                * _span(e[Dim.Q], e[Dim.S], layer.stride_w, layer.dilation_w, layer.w)
            )
        else:
            words[op] = _product_words(op, idx_dims, e, mapping, row_cover, col_cover)
    total = {
        Operand.INPUT: layer.n * layer.c * layer.h * layer.w,
        Operand.WEIGHT: layer.weight_words,
        Operand.OUTPUT: layer.output_words,
    }
    return FoldSchedule(plan, mapping, folds, int(plan.temporal_steps), ext, words, keys, total)
