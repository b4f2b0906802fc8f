"""Host side of a generated accelerator: a layer's configuration registers, its data streams, the
numpy reference result, and the cycles the hardware takes (its timing model).

Layouts on the external-memory streams (each ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: the layer input ``in[c][h][w]`` (int8, unpadded: padding is the controller's job), packed
  contiguously, the last beat zero-filled.
- weights (WS): one tile per fold, folds ordered column fold outer, row fold inner; a tile is
  ``rows`` rows of ``cols`` bytes, ``tile[i][j] = w[k = fc*cols + j][red = fr*rows + i]`` with
  ``red = (c*R + r)*S + s``, zero outside the layer; each row padded to whole beats.
- weights (OS): one beat group per reduction step (see ``rtl.os``).
- ofmap: for each column fold, for each output pixel ``m = p*Q + q``, ``cols`` accumulators of
  ``out_bytes`` each (little-endian, two's complement), the row padded to whole beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coexplore.models.ir import Layer, OpKind
from coexplore.rtl.params import CFG_BITS, ArrayKind, RtlError, RtlParams


@dataclass(frozen=True, slots=True)
class LayerGeometry:
    """The conv view of a layer the RTL runs (a GEMM is a 1x1 conv over an m x 1 image)."""

    c: int
    k: int
    h: int
    w: int
    r: int
    s: int
    stride: int
    pad: int
    p: int
    q: int

    @property
    def red(self) -> int:
        return self.c * self.r * self.s

    @property
    def t(self) -> int:
        return self.p * self.q


def geometry(layer: Layer) -> LayerGeometry:
    if layer.kind not in (OpKind.CONV, OpKind.LINEAR):
        raise RtlError(f"layer {layer.name!r}: kind {layer.kind.value!r} is not supported by the RTL (expected conv or gemm)")
    if layer.groups != 1 or layer.n != 1:
        raise RtlError(f"layer {layer.name!r}: groups={layer.groups}, n={layer.n}: the RTL runs groups=1, n=1")
    if layer.dilation_h != 1 or layer.dilation_w != 1:
        raise RtlError(f"layer {layer.name!r}: dilation must be 1 for the RTL")
    if layer.stride_h != layer.stride_w or layer.pad_h != layer.pad_w:
        raise RtlError(f"layer {layer.name!r}: the RTL needs equal stride and padding in h and w")
    return LayerGeometry(c=layer.c, k=layer.k, h=layer.h, w=layer.w, r=layer.r, s=layer.s,
                         stride=layer.stride_h, pad=layer.pad_h, p=layer.p, q=layer.q)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _pack_beats(data: np.ndarray, stream_bytes: int) -> list[int]:
    """Bytes (uint8) -> list of beat integers, little-endian within a beat."""
    flat = np.asarray(data, dtype=np.uint8).reshape(-1)
    beats = _cdiv(flat.size, stream_bytes)
    padded = np.zeros(beats * stream_bytes, dtype=np.uint8)
    padded[: flat.size] = flat
    rows = padded.reshape(beats, stream_bytes)
    return [int.from_bytes(row.tobytes(), "little") for row in rows]


def reference_output(geo: LayerGeometry, ifmap: np.ndarray, weights: np.ndarray, acc_bits: int) -> np.ndarray:
    """out[k][p][q] of the conv (int64, wrapped to ``acc_bits`` two's complement)."""
    x = np.pad(ifmap.astype(np.int64), ((0, 0), (geo.pad, geo.pad), (geo.pad, geo.pad)))
    wt = weights.astype(np.int64).reshape(geo.k, geo.red)
    cols = np.empty((geo.red, geo.t), dtype=np.int64)
    for p in range(geo.p):
        for q in range(geo.q):
            h0, w0 = p * geo.stride, q * geo.stride
            cols[:, p * geo.q + q] = x[:, h0:h0 + geo.r, w0:w0 + geo.s].reshape(-1)
    out = wt @ cols
    return wrap(out, acc_bits).reshape(geo.k, geo.p, geo.q)


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    mod = 1 << bits
    v = np.asarray(values, dtype=np.int64) & (mod - 1)
    return np.where(v >= mod >> 1, v - mod, v)


@dataclass(frozen=True, slots=True)
class Program:
    """One layer prepared for one generated accelerator."""

    params: RtlParams
    geo: LayerGeometry
    cfg: dict[str, int]
    ifmap_beats: list[int]
    weight_beats: list[int]
    expected_out: np.ndarray  # [k][p][q]
    expected_cycles: int

    @property
    def out_beats(self) -> int:
        return expected_out_beats(self.params, self.geo)

    def decode(self, beats: list[int]) -> np.ndarray:
        return decode_output(self.params, self.geo, beats)


def expected_out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    if params.kind is ArrayKind.WS:
        return _cdiv(geo.k, params.cols) * geo.t * params.out_row_beats
    if params.kind is ArrayKind.RS:
        from coexplore.rtl import rs_program

        return rs_program.out_beats(params, geo)
    from coexplore.rtl import os_program

    return os_program.out_beats(params, geo)


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    if params.kind is ArrayKind.RS:
        from coexplore.rtl import rs_program

        return rs_program.decode_output(params, geo, beats)
    if params.kind is ArrayKind.OS:
        from coexplore.rtl import os_program

        return os_program.decode_output(params, geo, beats)
    ob, bw, ca = params.out_bytes, params.stream_bytes, params.cols
    row_bytes = params.out_row_beats * bw
    fc_n = _cdiv(geo.k, ca)
    raw = b"".join(int(b).to_bytes(bw, "little") for b in beats)
    expect = fc_n * geo.t * row_bytes
    if len(raw) != expect:
        raise RtlError(f"output stream has {len(raw)} bytes, expected {expect}")
    out = np.zeros((geo.k, geo.t), dtype=np.int64)
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(fc_n, geo.t, row_bytes)[:, :, : ca * ob]
    arr = arr.reshape(fc_n, geo.t, ca, ob).astype(np.int64)
    vals = np.zeros((fc_n, geo.t, ca), dtype=np.int64)
    for b in range(ob):
        vals |= arr[..., b] << (8 * b)
    vals = wrap(vals, 8 * ob)
    for fc in range(fc_n):
        kc = min(ca, geo.k - fc * ca)
        out[fc * ca: fc * ca + kc, :] = vals[fc, :, :kc].T
    return wrap(out, params.acc_bits).reshape(geo.k, geo.p, geo.q)


def _check_cfg(cfg: dict[str, int]) -> None:
    for key, value in cfg.items():
        if not 0 <= value < (1 << CFG_BITS):
            raise RtlError(f"layer configuration {key}={value} does not fit the {CFG_BITS}-bit register")


def ws_cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles of the WS accelerator (its timing model; see docs/rtl.md).

    Cycles are numbered from 1 (the first busy cycle). Streams deliver one beat per cycle.
    a_f: first cycle tile f's weights stream in; S_f: first preload cycle of fold f;
    X: cycle a finished column tile becomes visible to the drain; D: drain start.
    """
    ra, ca = params.rows, params.cols
    li = _cdiv(geo.c * geo.h * geo.w, params.stream_bytes)
    lw = params.weight_tile_beats
    t = geo.t
    length = t + ra + ca - 2  # streamed steps + systolic fill (template fill = rows + cols - 2)
    dl = t * params.out_row_beats
    fr_n, fc_n = _cdiv(geo.red, ra), _cdiv(geo.k, ca)
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


def prepare(params: RtlParams, layer: Layer, rng: np.random.Generator | None = None,
            ifmap: np.ndarray | None = None, weights: np.ndarray | None = None) -> Program:
    """Random (or given) int tensors for ``layer``, packed for the hardware, with the expected result."""
    geo = geometry(layer)
    rng = rng or np.random.default_rng(0)
    lo_i, hi_i = -(1 << (params.input_bits - 1)), (1 << (params.input_bits - 1)) - 1
    lo_w, hi_w = -(1 << (params.weight_bits - 1)), (1 << (params.weight_bits - 1)) - 1
    if ifmap is None:
        ifmap = rng.integers(lo_i, hi_i + 1, size=(geo.c, geo.h, geo.w))
    if weights is None:
        weights = rng.integers(lo_w, hi_w + 1, size=(geo.k, geo.c, geo.r, geo.s))
    ifmap = np.asarray(ifmap, dtype=np.int64).reshape(geo.c, geo.h, geo.w)
    weights = np.asarray(weights, dtype=np.int64).reshape(geo.k, geo.c, geo.r, geo.s)
    if ifmap.min(initial=0) < lo_i or ifmap.max(initial=0) > hi_i:
        raise RtlError(f"ifmap values outside the {params.input_bits}-bit range")
    if weights.min(initial=0) < lo_w or weights.max(initial=0) > hi_w:
        raise RtlError(f"weight values outside the {params.weight_bits}-bit range")
    expected = reference_output(geo, ifmap, weights, params.acc_bits)
    # The whole input stays resident. Accelerator SRAM budgets are double-buffered (half holds the
    # working set), and the simulator's rtl profile keeps an input resident only when it fits half
    # the ifmap budget, so the RTL takes no larger input even where its replicas could hold it.
    replicas = params.rows * params.cols if params.kind is ArrayKind.RS else params.rows
    half_budget = params.ifmap_bytes * replicas // 2
    if geo.c * geo.h * geo.w > half_budget:
        raise RtlError(f"layer {layer.name!r}: ifmap of {geo.c * geo.h * geo.w} bytes exceeds half the ifmap "
                       f"scratchpad ({half_budget} bytes); give the accelerator a larger ifmap_sram_kb")
    if params.kind is ArrayKind.RS:
        from coexplore.rtl import rs_program

        return rs_program.prepare(params, layer, geo, ifmap, weights, expected)
    if params.kind is ArrayKind.OS:
        from coexplore.rtl import os_program

        return os_program.prepare(params, layer, geo, ifmap, weights, expected)
    if geo.c * geo.h * geo.w > params.ifmap_bytes:
        raise RtlError(f"layer {layer.name!r}: ifmap of {geo.c * geo.h * geo.w} bytes exceeds the "
                       f"{params.ifmap_bytes}-byte ifmap scratchpad")
    if geo.t > params.ofmap_depth:
        raise RtlError(f"layer {layer.name!r}: {geo.t} output pixels exceed the ofmap bank depth {params.ofmap_depth}")
    ra, ca, bw = params.rows, params.cols, params.stream_bytes
    fr_n, fc_n = _cdiv(geo.red, ra), _cdiv(geo.k, ca)
    cfg = dict(
        h=geo.h, w=geo.w, hw=geo.h * geo.w, r=geo.r, s=geo.s, stride=geo.stride, pad=geo.pad,
        stride_w=geo.stride * geo.w, p=geo.p, q=geo.q, t=geo.t, red=geo.red, n_rf=fr_n, n_cf=fc_n,
        if_beats=_cdiv(geo.c * geo.h * geo.w, bw), pad_w=geo.pad * geo.w + geo.pad, n_folds=fr_n * fc_n,
    )
    _check_cfg(cfg)
    wmat = np.zeros((fc_n * ca, fr_n * ra), dtype=np.int64)
    wmat[: geo.k, : geo.red] = weights.reshape(geo.k, geo.red)
    row_bytes = params.weight_row_beats * bw
    tiles = []
    for fc in range(fc_n):
        for fr in range(fr_n):
            tile = np.zeros((ra, row_bytes), dtype=np.int64)
            tile[:, :ca] = wmat[fc * ca:(fc + 1) * ca, fr * ra:(fr + 1) * ra].T
            tiles.append(tile & 0xFF)
    w_beats = _pack_beats(np.concatenate([t.reshape(-1) for t in tiles]).astype(np.uint8), bw)
    if_beats = _pack_beats((ifmap & 0xFF).astype(np.uint8), bw)
    return Program(params=params, geo=geo, cfg=cfg, ifmap_beats=if_beats, weight_beats=w_beats,
                   expected_out=expected, expected_cycles=ws_cycles(params, geo))


def expected_cycles(params: RtlParams, layer: Layer) -> int:
    """Start->done cycles the hardware of ``params`` takes on ``layer`` (memory always ready)."""
    geo = geometry(layer)
    if params.kind is ArrayKind.WS:
        return ws_cycles(params, geo)
    if params.kind is ArrayKind.RS:
        from coexplore.rtl import rs_program

        return rs_program.rs_cycles(params, geo)
    from coexplore.rtl import os_program

    return os_program.os_cycles(params, geo)
