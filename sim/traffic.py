"""Data movement of a fold plan: per-fold tiles, buffer-to-array deliveries, DRAM re-fetch.

Vectorized like ``coexplore.dataflows.mapping``: every array broadcasts over (designs, layers).

Per fold, each operand X has
- a *tile* ``t_X``: the distinct words of X the fold touches (what its scratchpad must hold and what
  DRAM must have delivered). Spatial dims contribute their average per-fold extent (dim / folds along
  it, so that tiles summed over folds give exact totals), temporal dims their full extent, outer dims 1.
  Inputs share halos: a tile of ``e_P`` output rows and ``e_R`` filter rows needs
  ``(e_P - 1) * stride + (e_R - 1) * dilation + 1`` input rows (Eyeriss's diagonal reuse), not e_P * e_R.
- *deliveries* ``a_X``: words the buffer sends into the array in that fold, after multicast (one read
  feeds every PE of a row/column that shares the word) and in-PE register reuse (a PE keeps a value
  across the innermost temporal loops that do not index it). The stationary operand is delivered once.

Template traits, stated in the template YAML, that change data movement:
- ``im2col``: SCALE-Sim-style systolic arrays hold and stream the im2col operand matrices, so an input
  word used by R*S filter taps is stored and fetched R*S times (SCALE-Sim counts its DRAM reads this
  way). Template field ``im2col: true`` (the systolic templates).
- ``sliding_input``: the array reuses inputs across neighbouring windows in time (ShiDianNao shifts
  inputs between neighbouring PEs; Eyeriss slides a window over an input row kept in the PE's register
  file), so each input word of a fold's tile enters the array once. Template field ``sliding_input: true``.

DRAM traffic (used by profile ``scalesim`` on SCALE-Sim's own arrays; every other case takes the
fold-level model of ``coexplore.sim.analytical._fold_dram``, whose fold order is fixed) follows a
fold loop nest over row folds, col folds and the outer dims. There the controller takes, per layer
and design, the order with the least DRAM time (``fold_orders`` lists the
candidates; with no outer dims and equal traffic it keeps SCALE-Sim's: col folds outside row folds).
An operand's tile is re-fetched at every iteration of a loop that does not index it, except what stays
resident: everything when the data it touched inside that loop fits in half of its scratchpad (the
other half is the double buffer), else as much as fits (see ``dram_fetches``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np

from coexplore.dataflows.mapping import AxisFit, FoldPlan
from coexplore.dataflows.spec import Dataflow, Mapping, Operand, Pack, SpatialAxis
from coexplore.models.ir import Dim

ArrayLike = Any

INPUT_DIMS = frozenset({Dim.G, Dim.N, Dim.C, Dim.P, Dim.Q, Dim.R, Dim.S})
WEIGHT_DIMS = frozenset({Dim.G, Dim.K, Dim.C, Dim.R, Dim.S})
OUTPUT_DIMS = frozenset({Dim.G, Dim.N, Dim.K, Dim.P, Dim.Q})


@dataclass(frozen=True, slots=True)
class TemplateTraits:
    im2col: bool
    sliding_input: bool


def traits_for(dataflow: Dataflow) -> TemplateTraits:
    return TemplateTraits(im2col=dataflow.im2col, sliding_input=dataflow.sliding_input)


def operand_dims(op: Operand, weight_indexed_by_n: bool = False) -> frozenset[Dim]:
    """Loop dims that index an operand (a matmul's second operand is an activation indexed by N too)."""
    if op is Operand.INPUT:
        return INPUT_DIMS
    if op is Operand.WEIGHT:
        return WEIGHT_DIMS | {Dim.N} if weight_indexed_by_n else WEIGHT_DIMS
    return OUTPUT_DIMS


# ---- per-fold extents ------------------------------------------------------------------------------
def _axis_extents(axis: SpatialAxis, fit: AxisFit, dims: dict[Dim, ArrayLike], ext: dict[Dim, ArrayLike]) -> ArrayLike:
    """Average per-fold extent of each dim on ``axis`` into ``ext``; returns PEs used along the axis."""
    if axis.pack is Pack.FLATTEN:
        total = 1
        for d in axis.dims:
            total = total * dims[d]
        span = total / fit.folds
        rest = span
        for d in reversed(axis.dims):  # contiguous fill, innermost dim first
            e = np.minimum(dims[d], rest) if len(axis.dims) > 1 else rest
            ext[d] = e
            if len(axis.dims) > 1:
                rest = rest / e
        return span
    used = 1.0
    for d in axis.dims:
        e = dims[d] / -(-dims[d] // fit.tile[d])
        ext[d] = e
        used = used * e
    return used


def fold_extents(
    mapping: Mapping, plan: FoldPlan, dims: dict[Dim, ArrayLike]
) -> tuple[dict[Dim, ArrayLike], ArrayLike]:
    """(per-dim average extent within one fold, average PEs used per fold)."""
    ext: dict[Dim, ArrayLike] = {d: 1.0 for d in mapping.outer}
    for d in mapping.temporal:
        ext[d] = dims[d]
    used_r = _axis_extents(mapping.rows, plan.rows, dims, ext)
    used_c = _axis_extents(mapping.cols, plan.cols, dims, ext)
    return ext, used_r * used_c


def _span(e_out: ArrayLike, e_k: ArrayLike, stride: ArrayLike, dilation: ArrayLike, im2col: bool) -> ArrayLike:
    """Input rows (or columns) touched by e_out output rows x e_k filter rows."""
    if im2col:
        return e_out * e_k
    if isinstance(e_k, float) and e_k == 1.0:
        return np.minimum((e_out - 1) * stride + 1, e_out)
    if isinstance(e_out, float) and e_out == 1.0:
        return np.minimum((e_k - 1) * dilation + 1, e_k)
    return np.minimum((e_out - 1) * stride + (e_k - 1) * dilation + 1, e_out * e_k)


def operand_words(
    op: Operand, e: dict[Dim, ArrayLike], strides: tuple, im2col: bool, weight_indexed_by_n: bool = False
) -> ArrayLike:
    """Distinct words of ``op`` covered by per-dim extents ``e`` (dims absent from ``e`` count 1)."""
    g = e.get
    if op is Operand.INPUT:
        sh, sw, dh, dw = strides
        return (
            g(Dim.N, 1.0)
            * g(Dim.C, 1.0)
            * _span(g(Dim.P, 1.0), g(Dim.R, 1.0), sh, dh, im2col)
            * _span(g(Dim.Q, 1.0), g(Dim.S, 1.0), sw, dw, im2col)
        )
    if op is Operand.WEIGHT:
        words = g(Dim.K, 1.0) * g(Dim.C, 1.0) * g(Dim.R, 1.0) * g(Dim.S, 1.0)
        return words * g(Dim.N, 1.0) if weight_indexed_by_n else words
    return g(Dim.N, 1.0) * g(Dim.K, 1.0) * g(Dim.P, 1.0) * g(Dim.Q, 1.0)


@dataclass(frozen=True, slots=True)
class FoldTraffic:
    """Per-fold words per operand (input, weight, output)."""

    tile: tuple[ArrayLike, ArrayLike, ArrayLike]  # distinct words touched
    delivered: tuple[ArrayLike, ArrayLike, ArrayLike]  # buffer <-> array words after multicast/reuse
    receipts_per_pe: tuple[ArrayLike, ArrayLike, ArrayLike]  # new values each busy PE receives


OPERANDS = (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT)


def fold_traffic(
    dataflow: Dataflow,
    mapping: Mapping,
    ext: dict[Dim, ArrayLike],
    dims: dict[Dim, ArrayLike],
    strides: tuple,
    traits: TemplateTraits,
    weight_indexed_by_n: bool,
) -> FoldTraffic:
    spatial = set(mapping.rows.dims) | set(mapping.cols.dims)
    ext_spatial = {d: ext[d] for d in spatial}
    tiles, delivered, receipts = [], [], []
    for op in OPERANDS:
        idx = operand_dims(op, weight_indexed_by_n)
        tile = operand_words(op, ext, strides, traits.im2col, weight_indexed_by_n)
        per_step = operand_words(op, ext_spatial, strides, traits.im2col, weight_indexed_by_n)
        # Value changes at a PE over the fold: the temporal loops down to the innermost one indexing op.
        changes: ArrayLike = 1.0
        innermost = max((i for i, d in enumerate(mapping.temporal) if d in idx), default=-1)
        for d in mapping.temporal[: innermost + 1]:
            changes = changes * dims[d]
        if op is dataflow.stationary:
            tiles.append(tile)
            delivered.append(tile)
            receipts.append(tile / per_step)
            continue
        tiles.append(tile)
        delivered.append(tile if (op is Operand.INPUT and traits.sliding_input) else per_step * changes)
        receipts.append(changes)
    return FoldTraffic(tuple(tiles), tuple(delivered), tuple(receipts))


# ---- DRAM re-fetch ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Loop:
    trips: ArrayLike
    dims: frozenset[Dim]  # dims whose iterations this loop walks


MAX_PERMUTED_LOOPS = 4  # beyond this many loops only the two canonical orders are tried


def fold_orders(
    mapping: Mapping, plan: FoldPlan, dims: dict[Dim, ArrayLike], weight_indexed_by_n: bool = False
) -> list[list[Loop]]:
    """Candidate fold loop nests, each innermost first.

    Loops that index every operand (groups, usually) stay outermost: nothing is reused across them
    wherever they sit, and outside they never enlarge a footprint. The remaining loops (row folds,
    col folds, outer dims with more than one trip) are tried in every order; the first candidate is
    order A (row folds innermost, then col folds, then outer dims: SCALE-Sim's order).
    """
    rows = Loop(plan.rows.folds, frozenset(mapping.rows.dims))
    cols = Loop(plan.cols.folds, frozenset(mapping.cols.dims))
    outer = [Loop(dims[d], frozenset({d})) for d in mapping.outer]  # outermost first
    loops = [lp for lp in [rows, cols] + outer[::-1] if np.any(np.asarray(lp.trips) != 1)]
    sets = [operand_dims(op, weight_indexed_by_n) for op in OPERANDS]
    fixed = [lp for lp in loops if all(lp.dims & s for s in sets)]
    free = [lp for lp in loops if not all(lp.dims & s for s in sets)]
    if len(free) <= MAX_PERMUTED_LOOPS:
        orders = [list(p) for p in permutations(free)]
    else:
        spatial = [lp for lp in free if lp is rows or lp is cols]
        rest = [lp for lp in free if lp is not rows and lp is not cols]
        orders = [spatial + rest, rest + spatial]
    return [order + fixed for order in orders] or [fixed]


def dram_fetches(
    tile: ArrayLike, capacity_words: ArrayLike, loops: Sequence[Loop], indexed_by: frozenset[Dim]
) -> ArrayLike:
    """Words of one operand moved from DRAM into its buffer over the whole fold nest.

    Walking the loops from the innermost out, with ``moved`` the words fetched per iteration of the
    current loop and ``footprint`` the distinct words they cover:
    - a loop that indexes the operand touches new data each trip: both grow by its trip count;
    - a loop that does not re-reads the same footprint each trip. If it fits the capacity nothing is
      fetched again; otherwise the controller keeps ``capacity`` words resident (what optimal
      replacement keeps of a cyclically re-read set) and re-fetches ``moved - capacity`` per extra trip.
    The result never grows when the capacity grows, and is continuous in it.
    """
    footprint = tile
    moved = tile
    for lp in loops:
        if lp.dims & indexed_by:
            moved = moved * lp.trips
            footprint = footprint * lp.trips
        else:
            moved = moved + (lp.trips - 1) * np.maximum(moved - capacity_words, 0.0) * (footprint > capacity_words)
    return moved
