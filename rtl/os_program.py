"""Host side of the output-stationary systolic accelerator: configuration, stream layouts, timing.

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: as the WS array (``in[c][h][w]``, unpadded).
- weights: for each column fold fc, for each reduction step ``red = (c*R + r)*S + s``, the ``cols``
  weights ``w[fc*cols + j][red]`` (zero beyond K), padded to whole beats.
- ofmap: for each fold (column fold outer, pixel fold inner), for each array row i (pixel
  ``m = fr*rows + i``), the ``cols`` accumulators, padded to whole beats.
"""

from __future__ import annotations

import numpy as np

from coexplore.models.ir import Layer
from coexplore.rtl.params import RtlError, RtlParams


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def out_beats(params: RtlParams, geo) -> int:
    folds = _cdiv(geo.t, params.rows) * _cdiv(geo.k, params.cols)
    return folds * params.rows * params.out_row_beats


def os_cycles(params: RtlParams, geo) -> int:
    """Start->done cycles of the OS accelerator (memory always ready); see docs/rtl.md.

    Per fold: compute ``L = T + rows + cols - 2`` cycles (T = C*R*S steps) then ``rows`` drain
    cycles moving one array row per cycle into the output buffer (which also set up the next
    fold's pixels). Cycles numbered from 1.
    """
    ra, ca = params.rows, params.cols
    li = _cdiv(geo.c * geo.h * geo.w, params.stream_bytes)
    lw = geo.red * params.weight_row_beats
    length = geo.red + ra + ca - 2
    dl = ra * params.out_row_beats
    fr_n, fc_n = _cdiv(geo.t, ra), _cdiv(geo.k, ca)
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


def prepare(params: RtlParams, layer: Layer, geo, ifmap: np.ndarray, weights: np.ndarray, expected: np.ndarray):
    from coexplore.rtl.program import Program, _check_cfg, _pack_beats

    if params.rows < 2:
        raise RtlError("the output-stationary RTL needs at least 2 array rows")
    if geo.c * geo.h * geo.w > params.ifmap_bytes:
        raise RtlError(f"layer {layer.name!r}: ifmap of {geo.c * geo.h * geo.w} bytes exceeds the "
                       f"{params.ifmap_bytes}-byte ifmap scratchpad")
    if geo.red > params.weight_depth:
        raise RtlError(f"layer {layer.name!r}: C*R*S = {geo.red} exceeds the weight bank depth {params.weight_depth}")
    ra, ca, bw = params.rows, params.cols, params.stream_bytes
    fr_n, fc_n = _cdiv(geo.t, ra), _cdiv(geo.k, ca)
    cfg = dict(
        h=geo.h, w=geo.w, hw=geo.h * geo.w, r=geo.r, s=geo.s, stride=geo.stride, pad=geo.pad,
        stride_w=geo.stride * geo.w, p=geo.p, q=geo.q, t=geo.t, red=geo.red, n_rf=fr_n, n_cf=fc_n,
        if_beats=_cdiv(geo.c * geo.h * geo.w, bw), pad_w=geo.pad * geo.w + geo.pad, n_folds=fr_n * fc_n,
    )
    _check_cfg(cfg)
    wmat = np.zeros((fc_n * ca, geo.red), dtype=np.int64)
    wmat[: geo.k] = weights.reshape(geo.k, geo.red)
    row_bytes = params.weight_row_beats * bw
    chunks = []
    for fc in range(fc_n):
        tile = np.zeros((geo.red, row_bytes), dtype=np.int64)
        tile[:, :ca] = wmat[fc * ca:(fc + 1) * ca].T
        chunks.append(_pack_beats((tile & 0xFF).astype(np.uint8), bw))
    w_beats = [b for chunk in chunks for b in chunk]
    if_beats = _pack_beats((ifmap & 0xFF).astype(np.uint8), bw)
    return Program(params=params, geo=geo, cfg=cfg, ifmap_beats=if_beats, weight_beats=w_beats,
                   expected_out=expected, expected_cycles=os_cycles(params, geo))


def decode_output(params: RtlParams, geo, beats: list[int]) -> np.ndarray:
    from coexplore.rtl.program import wrap

    ob, bw, ra, ca = params.out_bytes, params.stream_bytes, params.rows, params.cols
    row_bytes = params.out_row_beats * bw
    fr_n, fc_n = _cdiv(geo.t, ra), _cdiv(geo.k, ca)
    raw = b"".join(int(b).to_bytes(bw, "little") for b in beats)
    if len(raw) != fc_n * fr_n * ra * row_bytes:
        raise RtlError(f"output stream has {len(raw)} bytes, expected {fc_n * fr_n * ra * row_bytes}")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(fc_n, fr_n, ra, row_bytes)[..., : ca * ob]
    arr = arr.reshape(fc_n, fr_n, ra, ca, ob).astype(np.int64)
    vals = np.zeros((fc_n, fr_n, ra, ca), dtype=np.int64)
    for b in range(ob):
        vals |= arr[..., b] << (8 * b)
    # [fc][fr][i][j] -> out[k = fc*ca + j][m = fr*ra + i]
    full = vals.transpose(0, 3, 1, 2).reshape(fc_n * ca, fr_n * ra)
    out = wrap(full[: geo.k, : geo.t], params.acc_bits)
    return out.reshape(geo.k, geo.p, geo.q)
