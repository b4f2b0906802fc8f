"""Host side of the row-stationary (Eyeriss-like) accelerator: configuration, layouts, timing.

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

from coexplore.models.ir import Layer
from coexplore.rtl.params import RS_MAX_S, RtlError, RtlParams


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def split(params: RtlParams, geo) -> tuple[int, int]:
    """(er, ec): filter rows and channels one fold puts on the array rows (plan_folds' nested fit)."""
    er = max(min(geo.r, params.rows), 1)
    ec = max(min(geo.c, max(params.rows // er, 1)), 1)
    return er, ec


def fold_counts(params: RtlParams, geo) -> tuple[int, int, int, int]:
    """(K, P tiles, C tiles, R tiles)."""
    er, ec = split(params, geo)
    return geo.k, _cdiv(geo.p, params.cols), _cdiv(geo.c, ec), _cdiv(geo.r, er)


def weight_row_beats(params: RtlParams) -> int:
    return _cdiv(RS_MAX_S, params.stream_bytes)


def out_beats(params: RtlParams, geo) -> int:
    k, fp, _, _ = fold_counts(params, geo)
    return k * fp * geo.q * params.out_row_beats


def rs_cycles(params: RtlParams, geo) -> int:
    """Start->done cycles (memory always ready): per fold ``rows`` preload + ``Q*S`` steps + ``rows``
    fill (template eyeriss: preload rows, fill rows); see docs/rtl.md."""
    ra = params.rows
    li = _cdiv(geo.c * geo.h * geo.w, params.stream_bytes)
    lw = ra * weight_row_beats(params)
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


def prepare(params: RtlParams, layer: Layer, geo, ifmap: np.ndarray, weights: np.ndarray, expected: np.ndarray):
    from coexplore.rtl.program import Program, _check_cfg, _pack_beats

    if geo.s > RS_MAX_S:
        raise RtlError(f"layer {layer.name!r}: filter width S={geo.s} exceeds the row-stationary PE's {RS_MAX_S}")
    if geo.c * geo.h * geo.w > params.ifmap_bytes:
        raise RtlError(f"layer {layer.name!r}: ifmap of {geo.c * geo.h * geo.w} bytes exceeds the "
                       f"{params.ifmap_bytes}-byte ifmap scratchpad")
    if geo.q > params.ofmap_depth:
        raise RtlError(f"layer {layer.name!r}: Q={geo.q} exceeds the ofmap bank depth {params.ofmap_depth}")
    ra, ca, bw = params.rows, params.cols, params.stream_bytes
    er, ec = split(params, geo)
    k, n_fp, n_ct, n_rt = fold_counts(params, geo)
    cfg = dict(
        h=geo.h, w=geo.w, hw=geo.h * geo.w, r=geo.r, s=geo.s, stride=geo.stride, pad=geo.pad,
        stride_w=geo.stride * geo.w, p=geo.p, q=geo.q, t=geo.q * geo.s, red=geo.c, n_rf=n_rt, n_cf=n_ct,
        if_beats=_cdiv(geo.c * geo.h * geo.w, bw), pad_w=geo.pad * geo.w, n_folds=k * n_fp * n_ct * n_rt,
        er=er, ec=ec, er_w=er * geo.w, ec_hw=ec * geo.h * geo.w, n_fp=n_fp, n_k=k,
        ca_stride=ca * geo.stride, ca_stride_w=ca * geo.stride * geo.w, n_tiles=k * n_fp,
    )
    _check_cfg(cfg)
    row_bytes = weight_row_beats(params) * bw
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
                    tiles.append(tile & 0xFF)
    w_beats = _pack_beats(np.concatenate([t.reshape(-1) for t in tiles]).astype(np.uint8), bw)
    if_beats = _pack_beats((ifmap & 0xFF).astype(np.uint8), bw)
    return Program(params=params, geo=geo, cfg=cfg, ifmap_beats=if_beats, weight_beats=w_beats,
                   expected_out=expected, expected_cycles=rs_cycles(params, geo))


def decode_output(params: RtlParams, geo, beats: list[int]) -> np.ndarray:
    from coexplore.rtl.program import wrap

    ob, bw, ca = params.out_bytes, params.stream_bytes, params.cols
    row_bytes = params.out_row_beats * bw
    k, n_fp, _, _ = fold_counts(params, geo)
    raw = b"".join(int(b).to_bytes(bw, "little") for b in beats)
    if len(raw) != k * n_fp * geo.q * row_bytes:
        raise RtlError(f"output stream has {len(raw)} bytes, expected {k * n_fp * geo.q * row_bytes}")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(k, n_fp, geo.q, row_bytes)[..., : ca * ob]
    arr = arr.reshape(k, n_fp, geo.q, ca, ob).astype(np.int64)
    vals = np.zeros((k, n_fp, geo.q, ca), dtype=np.int64)
    for b in range(ob):
        vals |= arr[..., b] << (8 * b)
    full = vals.transpose(0, 1, 3, 2).reshape(k, n_fp * ca, geo.q)[:, : geo.p, :]
    return wrap(full, params.acc_bits)
