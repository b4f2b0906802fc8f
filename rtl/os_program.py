"""Host side of the output-stationary systolic accelerator (kind ``os``, template systolic-os):
scratchpad sizes, configuration registers, weight layout, output decoding and timing model.

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- weights: for each column fold fc, for each reduction step ``red = (c*R + r)*S + s``, the ``cols``
  weights ``w[fc*cols + j][red]`` (zero beyond K), padded to whole beats.
- ofmap: for each fold (column fold outer, pixel fold inner), for each array row i (pixel
  ``m = fr*rows + i``), one line of ``cols`` accumulators.
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
    """One ifmap replica per array row; output banks of ``rows`` lines (one fold); weight banks of
    as many reduction steps as half the filter budget holds."""
    out_bytes = -(-acc.acc_bits // 8)
    line = cdiv(acc.cols, stream_bytes) * stream_bytes
    if acc.rows * 2 * acc.cols * out_bytes > acc.ofmap_sram_kb * 1024:
        raise RtlError(
            f"ofmap_sram_kb={acc.ofmap_sram_kb}: two output tiles need {acc.rows * 2 * acc.cols * out_bytes} bytes"
        )
    return Scratchpads(
        ifmap_replicas=acc.rows,
        weight_line_bytes=acc.cols,
        ofmap_depth=acc.rows,
        weight_depth=int(acc.filter_sram_kb * 1024) // (2 * line),
    )


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int]:
    """(pixel folds over P*Q, column folds over K)."""
    return cdiv(geo.t, params.rows), cdiv(geo.k, params.cols)


def out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    fr_n, fc_n = folds(params, geo)
    return fr_n * fc_n * params.rows * params.out_row_beats


def pipeline_extra(params: RtlParams) -> int:
    """Compute cycles the PEs' pipeline stages add to a fold: none while ``pe_stages <= rows - 2``. The
    drain moves array row i in its i-th cycle; row i's last sum lands ``rows - 1 - i`` cycles before
    the bottom row's, which unpipelined lands one cycle into the drain (hence rows >= 2). Template
    fill: ``rows + cols - 2 + max(stages - max(rows - 2, 0), 0)``."""
    return max(params.pe_stages - max(params.rows - 2, 0), 0)


def cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles of the OS accelerator (memory always ready); see docs/rtl.md.

    Per fold: compute ``L = T + rows + cols - 2 + pipeline_extra`` cycles (T = C*R*S steps) then ``rows`` drain
    cycles moving one array row per cycle into the output buffer (which also set up the next
    fold's pixels). Cycles numbered from 1.
    """
    ra, ca = params.rows, params.cols
    li = cdiv(geo.input_bytes, params.stream_bytes)
    lw = geo.red * params.weight_row_beats
    length = geo.red + ra + ca - 2 + pipeline_extra(params)  # template fill
    dl = ra * params.out_row_beats
    fr_n, fc_n = folds(params, geo)
    a: list[int] = []
    s: list[int] = []
    se: list[int] = []
    for fc in range(fc_n):
        af = 1 if fc == 0 else a[fc - 1] + lw
        if fc >= 2:
            af = max(af, s[(fc - 2) * fr_n + fr_n - 1] + length)
        a.append(af)
        for fr in range(fr_n):
            f = fc * fr_n + fr
            ready = max(li + 1, af + lw)
            if f >= 2:
                ready = max(ready, se[f - 2] + 1)
            sf = max(ra + 1, ready) if f == 0 else max(s[f - 1] + length + ra, ready)
            s.append(sf)
            e = sf + length + ra - 1
            sd = e + 1 if f == 0 else max(e + 1, se[f - 1] + 1)
            se.append(sd + dl)
    return se[-1]


os_cycles = cycles


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    if params.rows < 2:
        raise RtlError("the output-stationary RTL needs at least 2 array rows")
    if geo.red > params.weight_depth:
        raise RtlError(f"layer {layer.name!r}: C*R*S = {geo.red} exceeds the weight bank depth {params.weight_depth}")


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats)."""
    ca = params.cols
    fr_n, fc_n = folds(params, geo)
    cfg = conv_cfg(geo, params.stream_bytes, fr_n, fc_n, fr_n * fc_n)
    wmat = np.zeros((fc_n * ca, geo.red), dtype=np.int64)
    wmat[: geo.k] = weights.reshape(geo.k, geo.red)
    row_bytes = params.weight_row_beats * params.stream_bytes
    tiles = []
    for fc in range(fc_n):
        tile = np.zeros((geo.red, row_bytes), dtype=np.int64)
        tile[:, :ca] = wmat[fc * ca : (fc + 1) * ca].T
        tiles.append(tile)
    return cfg, pack_lines(tiles, params.stream_bytes)


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    ra, ca = params.rows, params.cols
    fr_n, fc_n = folds(params, geo)
    vals = unpack_lines(params, beats, fc_n * fr_n * ra).reshape(fc_n, fr_n, ra, ca)
    # [fc][fr][i][j] -> out[k = fc*ca + j][m = fr*ra + i]
    full = vals.transpose(0, 3, 1, 2).reshape(fc_n * ca, fr_n * ra)
    return wrap(full[: geo.k, : geo.t], params.acc_bits).reshape(geo.k, geo.p, geo.q)


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``): the input in one replica and
    half the budget, C*R*S in the weight bank."""
    return resident_call_limits(params, out_pixels=0, reduction=params.weight_depth)
