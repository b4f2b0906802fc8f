"""Host side of the weight-stationary systolic accelerator (kind ``ws``, template systolic-ws):
scratchpad sizes, configuration registers, weight layout, output decoding and timing model.

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- weights: one tile per fold, folds ordered column fold outer, row fold inner; a tile is ``rows``
  lines of ``cols`` bytes, ``tile[i][j] = w[k = fc*cols + j][red = fr*rows + i]`` with
  ``red = (c*R + r)*S + s``, zero outside the layer; each line padded to whole beats.
- ofmap: for each column fold, for each output pixel ``m = p*Q + q``, one line of ``cols``
  accumulators.
"""

from __future__ import annotations

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CallLimits
from coexplore.models.ir import Layer
from coexplore.rtl.params import RtlError, RtlParams, Scratchpads
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

CFG = CONV_CFG


def scratchpads(acc: Accelerator, stream_bytes: int) -> Scratchpads:
    """One ifmap replica per array row; weight banks of ``rows`` lines; output banks of as many
    pixels as half the ofmap budget holds per column."""
    out_bytes = -(-acc.acc_bits // 8)
    return Scratchpads(
        ifmap_replicas=acc.rows,
        weight_line_bytes=acc.cols,
        ofmap_depth=int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes),
        weight_depth=acc.rows,
    )


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int]:
    """(row folds over C*R*S, column folds over K)."""
    return cdiv(geo.red, params.rows), cdiv(geo.k, params.cols)


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    if geo.t > params.ofmap_depth:
        raise RtlError(f"layer {layer.name!r}: {geo.t} output pixels exceed the ofmap bank depth {params.ofmap_depth}")


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats)."""
    ra, ca = params.rows, params.cols
    fr_n, fc_n = folds(params, geo)
    cfg = conv_cfg(geo, params.stream_bytes, fr_n, fc_n, fr_n * fc_n)
    wmat = np.zeros((fc_n * ca, fr_n * ra), dtype=np.int64)
    wmat[: geo.k, : geo.red] = weights.reshape(geo.k, geo.red)
    row_bytes = params.weight_row_beats * params.stream_bytes
    tiles = []
    for fc in range(fc_n):
        for fr in range(fr_n):
            tile = np.zeros((ra, row_bytes), dtype=np.int64)
            tile[:, :ca] = wmat[fc * ca : (fc + 1) * ca, fr * ra : (fr + 1) * ra].T
            tiles.append(tile)
    return cfg, pack_lines(tiles, params.stream_bytes)


def out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    return folds(params, geo)[1] * geo.t * params.out_row_beats


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    ca = params.cols
    fc_n = folds(params, geo)[1]
    vals = unpack_lines(params, beats, fc_n * geo.t).reshape(fc_n, geo.t, ca)
    full = vals.transpose(0, 2, 1).reshape(fc_n * ca, geo.t)  # out[k = fc*cols + j][m]
    return wrap(full[: geo.k], params.acc_bits).reshape(geo.k, geo.p, geo.q)


def cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles of the WS accelerator (its timing model; see docs/rtl.md).

    Cycles are numbered from 1 (the first busy cycle). Streams deliver one beat per cycle.
    a_f: first cycle tile f's weights stream in; S_f: first preload cycle of fold f;
    X: cycle a finished column tile becomes visible to the drain; D: drain start.
    """
    ra, ca = params.rows, params.cols
    li = cdiv(geo.input_bytes, params.stream_bytes)
    lw = params.weight_tile_beats
    t = geo.t
    length = t + ra + ca - 2 + params.pe_stages  # streamed steps + fill (template fill = rows + cols - 2 + stages)
    dl = t * params.out_row_beats
    fr_n, fc_n = folds(params, geo)
    a: list[int] = []
    s: list[int] = []
    d_end: list[int] = []
    for fc in range(fc_n):
        for fr in range(fr_n):
            f = fc * fr_n + fr
            af = 1 if f == 0 else a[f - 1] + lw
            if f >= 2:
                af = max(af, s[f - 2] + ra)
            a.append(af)
            ready = max(li + 1, af + lw)
            if fr == 0 and fc >= 2:
                ready = max(ready, d_end[fc - 2] + 1)
            sf = ready if f == 0 else max(s[f - 1] + ra + length, ready)
            s.append(sf)
        x = s[-1] + ra + length + 2
        dstart = x if fc == 0 else max(x, d_end[fc - 1] + 1)
        d_end.append(dstart + dl)
    return d_end[-1]


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``): the input in one replica and
    half the budget, the output pixels in the output bank."""
    return resident_call_limits(params, out_pixels=params.ofmap_depth, reduction=0)
