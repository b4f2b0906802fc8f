"""Host side of the ShiDianNao-like accelerator (kind ``sdn``, template shidiannao): scratchpad
sizes, configuration registers, weight layout, output decoding and the timing model.

Mapping (the ``shidiannao`` template). Conv: array row i = output row ``p = fr*rows + i``, column j
= output column ``q = fc*cols + j``, ``T = C*R*S`` steps per fold (``red = (c*R + r)*S + s``), the
weight of step t broadcast to every PE; folds: output channel k outer, then column fold (Q tile),
then row fold (P tile) innermost. GEMM (linear, ``M x C @ C x K``): row i = token ``m = fr*rows + i``,
column j = output feature ``k = fc*cols + j``, ``T = C``; the input of row i is shared along the row
and column j gets its own weight; folds: column fold (K tile) outer, row fold (M tile) inner.

The shared ``rtl.program.geometry`` gives a GEMM as a 1x1 conv over an ``M x 1`` image, so a
geometry of that shape runs the GEMM mapping; a conv layer of that shape is refused when run whole
(its simulator mapping is the conv one), and a tiled conv's call of that shape keeps the conv
mapping (``call_view``). A tiled call pads by its own ``pad_top``/``pad_left`` registers.

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: the whole unpadded input ``in[c][h][w]``, loaded once, one replica per array row.
- weights, conv: one tile per output channel k, ``w[k][c][r][s]`` (C*R*S bytes) packed back to
  back, padded to whole beats at the tile's end. GEMM: one tile per column fold, ``C`` lines of
  ``cols`` bytes (``w[fc*cols + j][c]``, zero beyond K), each line padded to whole beats.
- ofmap: per fold, ``rows`` lines (array row i) of ``cols`` accumulators, padded to whole beats.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CallLimits
from coexplore.models.ir import Layer, OpKind
from coexplore.rtl.params import CFG_BITS, RtlError, RtlParams, Scratchpads
from coexplore.rtl.program import LayerGeometry, cdiv, pack_beats, pack_lines, resident_call_limits, unpack_lines, wrap

SDN_MAX_STRIDE = 4  # largest conv stride the per-PE input select supports

CFG = (
    "h",
    "w",
    "hw",
    "r",
    "s",
    "stride",
    "p",
    "qlim",
    "red",
    "n_rf",
    "n_cf",
    "n_out",
    "n_folds",
    "if_beats",
    "gemm",
    "cst",
    "pad",
    "pad_rw",
    "stride_w",
    "p_step",
    "hb_step",
    "base_step",
    "q_step",
    "w_tiles",
    "fpt",
    "lw",
    "pad_top",
    "pad_left",
)


def is_gemm(geo: LayerGeometry) -> bool:
    """The geometry of a GEMM (an unpadded 1x1 conv over an ``M x 1`` image): runs the GEMM mapping."""
    return geo.w == 1 and geo.q == 1 and geo.r == 1 and geo.s == 1 and geo.stride == 1 and geo.pad == 0


def call_view(layer: Layer, geo: LayerGeometry) -> LayerGeometry:
    """The geometry one call of ``layer`` runs as (host-side tiling, ``rtl.program``): a conv layer's
    call of the GEMM's shape (a one-column tile of a 1x1 conv) keeps the conv mapping, as the
    simulator costs a conv sub-layer. Its view carries ``pad = 1`` (not the GEMM's 0) beside its own
    ``pad_top``/``pad_left`` (the registers the hardware pads by; sdn has no use for ``pad``), a mark
    that survives the bench's JSON of the geometry."""
    if layer.kind is not OpKind.CONV or not is_gemm(geo):
        return geo
    return replace(geo, pad=1, pad_top=geo.top, pad_left=geo.left)


def scratchpads(acc: Accelerator, stream_bytes: int) -> Scratchpads:
    """One ifmap replica per array row (each row reads one input line per cycle); two weight banks
    of half the filter budget (one beat per word); output banks of ``rows`` lines per half."""
    return Scratchpads(
        ifmap_replicas=acc.rows,
        weight_line_bytes=stream_bytes,
        ofmap_depth=acc.rows,
        weight_depth=int(acc.filter_sram_kb * 1024) // (2 * stream_bytes),
    )


def steps(geo: LayerGeometry) -> int:
    """T: steps per fold, C*R*S (GEMM: C)."""
    return geo.red


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int, int]:
    """(outer folds: K for a conv, 1 for a GEMM; column folds; row folds)."""
    if is_gemm(geo):
        return 1, cdiv(geo.k, params.cols), cdiv(geo.p, params.rows)
    return geo.k, cdiv(geo.q, params.cols), cdiv(geo.p, params.rows)


def line_beats(params: RtlParams) -> int:
    """Beats of one GEMM weight line (``cols`` bytes)."""
    return cdiv(params.cols, params.stream_bytes)


def weight_tiling(params: RtlParams, geo: LayerGeometry) -> tuple[int, int, int]:
    """(weight tiles, folds per tile, beats per tile)."""
    n_out, n_cf, n_rf = folds(params, geo)
    if is_gemm(geo):
        return n_cf, n_rf, geo.c * line_beats(params)
    return n_out, n_cf * n_rf, cdiv(geo.red, params.stream_bytes)


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    """Strides up to ``SDN_MAX_STRIDE``; a weight tile fits a weight bank (half the filter budget),
    so every fold is one pass in the simulator; a GEMM-shaped conv is refused (see the docstring)."""
    if layer.kind is OpKind.CONV and is_gemm(geo):
        raise RtlError(
            f"layer {layer.name!r}: a 1x1 conv over a {geo.h}x1 input has the GEMM's geometry, which the sdn "
            "hardware runs with the GEMM mapping; give it as a linear layer"
        )
    if geo.stride > SDN_MAX_STRIDE:
        raise RtlError(f"layer {layer.name!r}: stride {geo.stride} exceeds the sdn array's {SDN_MAX_STRIDE}")
    _, _, lw = weight_tiling(params, geo)
    if lw > params.weight_depth:
        raise RtlError(
            f"layer {layer.name!r}: a weight tile of {lw} beats exceeds the weight bank depth {params.weight_depth} "
            "(half of filter_sram_kb)"
        )


def _cfg(**values: int) -> dict[str, int]:
    for key, value in values.items():
        if not 0 <= value < (1 << CFG_BITS):
            raise RtlError(f"layer configuration {key}={value} does not fit the {CFG_BITS}-bit register")
    return dict(values)


def config(params: RtlParams, geo: LayerGeometry) -> dict[str, int]:
    """The layer registers (``CFG``)."""
    ra, ca = params.rows, params.cols
    n_out, n_cf, n_rf = folds(params, geo)
    w_tiles, fpt, lw = weight_tiling(params, geo)
    gemm = is_gemm(geo)
    cst = 0 if gemm else geo.stride  # column stride: a GEMM row's input is shared by its columns
    return _cfg(
        h=geo.h,
        w=geo.w,
        hw=geo.h * geo.w,
        r=geo.r,
        s=geo.s,
        stride=geo.stride,
        p=geo.p,
        qlim=geo.k if gemm else geo.q,
        red=geo.red,
        n_rf=n_rf,
        n_cf=n_cf,
        n_out=n_out,
        n_folds=n_out * n_cf * n_rf,
        if_beats=cdiv(geo.input_bytes, params.stream_bytes),
        gemm=int(gemm),
        cst=cst,
        pad=geo.pad,
        pad_rw=geo.top * geo.w,  # row 0's first input row offset; a tiled call pads its own top and left
        pad_top=geo.top,
        pad_left=geo.left,
        stride_w=geo.stride * geo.w,
        p_step=ra,
        hb_step=ra * geo.stride,
        base_step=ra * geo.stride * geo.w,
        q_step=ca * cst,
        w_tiles=w_tiles,
        fpt=fpt,
        lw=lw,
    )


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats)."""
    cfg = config(params, geo)
    wmat = np.asarray(weights, dtype=np.int64).reshape(geo.k, geo.red) & 0xFF
    beats: list[int] = []
    if is_gemm(geo):
        width = line_beats(params) * params.stream_bytes
        for fc in range(cfg["n_cf"]):
            tile = np.zeros((geo.c, width), dtype=np.int64)
            sub = wmat[fc * params.cols : (fc + 1) * params.cols, :]  # [k in tile][c]
            tile[:, : sub.shape[0]] = sub.T
            beats += pack_lines([tile], params.stream_bytes)
    else:
        for k in range(geo.k):
            beats += pack_beats(wmat[k].astype(np.uint8), params.stream_bytes)
    return cfg, beats


def out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    n_out, n_cf, n_rf = folds(params, geo)
    return n_out * n_cf * n_rf * params.rows * params.out_row_beats


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    """out[k][p][q] from the output stream (fold by fold, ``rows`` lines each)."""
    ra, ca = params.rows, params.cols
    n_out, n_cf, n_rf = folds(params, geo)
    vals = unpack_lines(params, beats, n_out * n_cf * n_rf * ra).reshape(n_out, n_cf, n_rf, ra, ca)
    if is_gemm(geo):  # line i, column j of fold (fc, fr) = out[k = fc*cols + j][m = fr*rows + i]
        full = vals[0].transpose(0, 3, 1, 2).reshape(n_cf * ca, n_rf * ra)[: geo.k, : geo.p]
        return wrap(full, params.acc_bits).reshape(geo.k, geo.p, 1)
    full = vals.transpose(0, 2, 3, 1, 4).reshape(geo.k, n_rf * ra, n_cf * ca)[:, : geo.p, : geo.q]
    return wrap(full, params.acc_bits)


def cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles of the sdn accelerator, memory always ready (docs/rtl.md).

    Cycles from 0, the first busy cycle. A fold takes ``T + 1 + rows`` cycles (T steps, one read
    cycle, ``rows`` cycles copying the array rows to the output bank); weight tile w loads once tile
    w-1 is in and the last fold of tile w-2 has computed; a fold starts once the input and its tile
    are in and the output half it writes has drained (fold f-2); a fold's tile drains from its end
    (one set-up cycle, then ``rows`` lines of beats), after the previous drain.
    """
    ra, bw = params.rows, params.stream_bytes
    n_out, n_cf, n_rf = folds(params, geo)
    _, fpt, lw = weight_tiling(params, geo)
    t = steps(geo)
    li = cdiv(geo.input_bytes, bw)
    fold = t + 1 + ra
    dl = ra * params.out_row_beats
    loaded: list[int] = []  # one past the last beat of weight tile w
    released: list[int] = []  # the cycle tile w's bank is free again
    drained: list[int] = []  # one past the last beat of fold f's drain
    end = 0
    for f in range(n_out * n_cf * n_rf):
        w, fi = divmod(f, fpt)
        if fi == 0:
            loaded.append(max(loaded[-1] if loaded else 0, released[w - 2] if w >= 2 else 0) + lw)
        start = max(end, li, loaded[w], drained[f - 2] if f >= 2 else 0)
        end = start + fold
        if fi == fpt - 1:
            released.append(start + t + 1)
        drained.append(max(end, drained[-1] if drained else 0) + 1 + dl)
    return drained[-1]


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``; its ``tiling_kinds`` rule): the
    input in one replica and half the budget, a weight tile in a weight bank (beats)."""
    return resident_call_limits(params, out_pixels=0, reduction=params.weight_depth)
