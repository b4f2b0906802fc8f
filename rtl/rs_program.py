"""Host side of the row-stationary (Eyeriss-like) accelerator (kind ``rs``, template eyeriss):
scratchpad sizes, configuration registers, layouts, output decoding and timing model.

Mapping (the ``eyeriss`` template): array rows hold filter rows R, replicated over input channels
C where R is smaller than the array (``er = min(R, rows)`` filter rows, ``ec = min(C, rows // er)``
channels; row ``i`` holds ``r = rt*er + i % er``, ``c = ct*ec + i // er``); array columns hold
output rows ``p = fp*cols + j``; each PE runs the 1-D convolution of its filter row over its input
row, Q x S steps, and the partial sums of a column add up its rows.
Folds: k outer, then output-row tile fp, then channel tile ct, then filter-row tile rt.

Layouts (each stream ``stream_bytes`` wide):
- ifmap: ``in[c][h][w]`` as the other arrays.
- weights: per fold, ``rows`` filter rows of ``RS_MAX_S`` bytes (``w[k][c][r][0..S-1]``, zero for
  idle rows), each padded to whole beats.
- ofmap: per output tile (k, fp), for each q, the ``cols`` accumulators (``p = fp*cols + j``),
  padded to whole beats.
"""

from __future__ import annotations

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CallLimits
from coexplore.models.ir import Layer
from coexplore.rtl.params import RS_MAX_S, RtlError, RtlParams, Scratchpads
from coexplore.rtl.program import (
    CONV_CFG,
    LayerGeometry,
    cdiv,
    conv_cfg,
    pack_lines,
    resident_call_limits,
    unpack_lines,
    wrap,
)

_cdiv = cdiv
CFG = CONV_CFG + ("er", "ec", "er_w", "ec_hw", "n_fp", "n_k", "ca_stride", "ca_stride_w", "n_tiles")


def scratchpads(acc: Accelerator, stream_bytes: int) -> Scratchpads:
    """One ifmap replica per PE; weight banks of ``rows`` filter rows of ``RS_MAX_S`` bytes; output
    banks of as many output columns (Q) as half the ofmap budget holds per array column."""
    out_bytes = -(-acc.acc_bits // 8)
    return Scratchpads(
        ifmap_replicas=acc.rows * acc.cols,
        weight_line_bytes=RS_MAX_S,
        ofmap_depth=int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes),
        weight_depth=acc.rows,
    )


def split(params: RtlParams, geo) -> tuple[int, int]:
    """(er, ec): filter rows and channels one fold puts on the array rows (plan_folds' nested fit)."""
    er = max(min(geo.r, params.rows), 1)
    ec = max(min(geo.c, max(params.rows // er, 1)), 1)
    return er, ec


def fold_counts(params: RtlParams, geo) -> tuple[int, int, int, int]:
    """(K, P tiles, C tiles, R tiles)."""
    er, ec = split(params, geo)
    return geo.k, _cdiv(geo.p, params.cols), _cdiv(geo.c, ec), _cdiv(geo.r, er)


def out_beats(params: RtlParams, geo) -> int:
    k, fp, _, _ = fold_counts(params, geo)
    return k * fp * geo.q * params.out_row_beats


def cycles(params: RtlParams, geo) -> int:
    """Start->done cycles (memory always ready): per fold ``rows`` preload + ``Q*S`` steps + ``rows``
    fill (template eyeriss: preload rows, fill rows); see docs/rtl.md."""
    ra = params.rows
    li = _cdiv(geo.c * geo.h * geo.w, params.stream_bytes)
    lw = ra * params.weight_row_beats
    t = geo.q * geo.s
    fold = 2 * ra + t
    dl = geo.q * params.out_row_beats
    k, n_fp, n_ct, n_rt = fold_counts(params, geo)
    nred = n_ct * n_rt
    a: list[int] = []
    s: list[int] = []
    e: list[int] = []
    for tile in range(k * n_fp):
        for rf in range(nred):
            f = tile * nred + rf
            af = 1 if f == 0 else a[f - 1] + lw
            if f >= 2:
                af = max(af, s[f - 2] + ra)
            a.append(af)
            ready = max(li + 1, af + lw)
            if rf == 0 and tile >= 2:
                ready = max(ready, e[tile - 2] + 1)
            s.append(ready if f == 0 else max(s[f - 1] + fold, ready))
        x = s[-1] + fold + 1
        d = x if tile == 0 else max(x, e[tile - 1] + 1)
        e.append(d + dl)
    return e[-1]


rs_cycles = cycles


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    if geo.s > RS_MAX_S:
        raise RtlError(f"layer {layer.name!r}: filter width S={geo.s} exceeds the row-stationary PE's {RS_MAX_S}")
    if geo.q > params.ofmap_depth:
        raise RtlError(f"layer {layer.name!r}: Q={geo.q} exceeds the ofmap bank depth {params.ofmap_depth}")


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int, int, int]:
    """The folds of a layer (their product is the fold-count register): ``fold_counts``."""
    return fold_counts(params, geo)


def config(params: RtlParams, geo: LayerGeometry) -> dict[str, int]:
    """The layer registers (``CFG``); RtlError when one does not fit its 16 bits."""
    ca = params.cols
    er, ec = split(params, geo)
    k, n_fp, n_ct, n_rt = fold_counts(params, geo)
    return conv_cfg(
        geo,
        params.stream_bytes,
        n_rt,
        n_ct,
        k * n_fp * n_ct * n_rt,
        er=er,
        ec=ec,
        er_w=er * geo.w,
        ec_hw=ec * geo.h * geo.w,
        n_fp=n_fp,
        n_k=k,
        ca_stride=ca * geo.stride,
        ca_stride_w=ca * geo.stride * geo.w,
        n_tiles=k * n_fp,
        t=geo.q * geo.s,
        red=geo.c,
        pad_w=geo.top * geo.w,
    )  # the RS meaning of t, red, pad_w (the top padding's offset; the left one is pad_left)


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats)."""
    ra = params.rows
    er, ec = split(params, geo)
    k, n_fp, n_ct, n_rt = fold_counts(params, geo)
    cfg = config(params, geo)
    row_bytes = params.weight_row_beats * params.stream_bytes
    tiles = []
    for kk in range(k):
        for _fp in range(n_fp):
            for ct in range(n_ct):
                for rt in range(n_rt):
                    tile = np.zeros((ra, row_bytes), dtype=np.int64)
                    for i in range(min(ra, er * ec)):
                        r, c = rt * er + i % er, ct * ec + i // er
                        if r < geo.r and c < geo.c:
                            tile[i, : geo.s] = weights[kk, c, r, :]
                    tiles.append(tile)
    return cfg, pack_lines(tiles, params.stream_bytes)


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    ca = params.cols
    k, n_fp, _, _ = fold_counts(params, geo)
    vals = unpack_lines(params, beats, k * n_fp * geo.q).reshape(k, n_fp, geo.q, ca)
    full = vals.transpose(0, 1, 3, 2).reshape(k, n_fp * ca, geo.q)[:, : geo.p, :]
    return wrap(full, params.acc_bits)


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``; its ``tiling_kinds`` rule): the
    input in one replica (one per PE) and half the budget, Q output lines in the output bank, a
    filter row of ``RS_MAX_S`` taps."""
    return resident_call_limits(params, out_pixels=params.ofmap_depth, reduction=RS_MAX_S)
