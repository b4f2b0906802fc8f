"""Host side of the NVDLA-like accelerator (kind ``nvdla``, template nvdla): scratchpad sizes,
configuration registers, stream layouts, the numpy reference, output decoding and the timing model.

Mapping (the ``nvdla`` template): array rows = input channels of a group (C, ``rows`` per fold),
columns = output channels of a group (K, ``cols`` per fold), streamed per fold ``T = N*P*Q*R*S``
steps (S fastest). Folds: group outer, then column fold (K tile), then row fold (C tile) innermost
(``plan_folds``' order with G outer). Depthwise and grouped layers run group by group (one channel
per row fold for depthwise: slow but exact); batch N streams inside the fold. That native one-call
path (``prepare``, the nvdla bench) is kept and checked; the production flow (``rtl.program.prepare_layer``,
the simulator, the analytical model) runs depthwise, grouped, matmul and batched layers as dense
block-diagonal sub-layers instead, and kernels of more than ``max_taps`` taps as tap groups whose
outputs the host adds (``dataflows.decompose``: ``KINDS``, ``TAP_KINDS``), each sub-layer the calls of
its tiling plan.

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: ``in[n][c][h][w]`` (int8, unpadded), packed contiguously, resident.
- weights: one tile per fold (g, fc, fr); a tile is ``rows`` x ``R*S`` lines (row i outer, tap
  ``r*S + s`` inner) of ``cols`` bytes, ``tile[i][tap][j] = w[k = g*K/G + fc*cols + j][c = fr*rows + i][tap]``
  (c within the group), zero outside the layer; each line padded to whole beats.
- ofmap: per output tile (g, fc), for each output pixel ``m = (n*P + p)*Q + q``, one line of ``cols``
  accumulators (``out_bytes`` each, little-endian), padded to whole beats.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CallLimits
from coexplore.models.ir import Layer, OpKind
from coexplore.rtl.params import CFG_BITS, RtlError, RtlParams, Scratchpads
from coexplore.rtl.program import (
    LayerGeometry,
    Program,
    cdiv,
    pack_beats,
    pack_lines,
    resident_call_limits,
    unpack_lines,
    wrap,
)

NVDLA_MAX_TAPS = 9  # most kernel taps (R*S) a PE's weight register file holds (3x3)

CFG = (
    "h",
    "w",
    "hw",
    "r",
    "s",
    "stride",
    "pad",
    "stride_w",
    "q",
    "pad_w",
    "pq",
    "t",
    "taps",
    "npq",
    "chw",
    "cg",
    "cg_hw",
    "n_rf",
    "n_cf",
    "n_ot",
    "n_folds",
    "if_beats",
    "pad_top",
    "pad_left",
)


@dataclass(frozen=True, slots=True)
class NvdlaGeometry(LayerGeometry):
    """The conv view of a layer with its batch ``n`` and ``g`` groups (``c``, ``k`` are totals)."""

    n: int = 1
    g: int = 1


def _ng(geo: LayerGeometry) -> tuple[int, int]:
    """(batch, groups) of a geometry (the shared ``LayerGeometry`` has one of each)."""
    return getattr(geo, "n", 1), getattr(geo, "g", 1)


def nvdla_geometry(layer: Layer) -> NvdlaGeometry:
    """The geometry of a conv, depthwise/grouped conv or linear layer, batch included."""
    if layer.kind not in (OpKind.CONV, OpKind.DEPTHWISE, OpKind.LINEAR):
        raise RtlError(
            f"layer {layer.name!r}: kind {layer.kind.value!r} is not supported by the nvdla RTL "
            "(expected conv, depthwise or gemm)"
        )
    if layer.dilation_h != 1 or layer.dilation_w != 1:
        raise RtlError(f"layer {layer.name!r}: dilation must be 1 for the RTL")
    if layer.stride_h != layer.stride_w or layer.pad_h != layer.pad_w:
        raise RtlError(f"layer {layer.name!r}: the RTL needs equal stride and padding in h and w")
    return NvdlaGeometry(
        c=layer.c,
        k=layer.k,
        h=layer.h,
        w=layer.w,
        r=layer.r,
        s=layer.s,
        stride=layer.stride_h,
        pad=layer.pad_h,
        p=layer.p,
        q=layer.q,
        n=layer.n,
        g=layer.groups,
    )


NVDLA_FAULTS = ("drop_tree_input",)


@dataclass(frozen=True, slots=True)
class NvdlaFaultParams(RtlParams):
    """Test-only: ``RtlParams`` of a deliberately broken nvdla array (its own Verilog and module name).
    ``drop_tree_input``: the last array row's products never enter the adder trees."""

    nvdla_fault: str = "drop_tree_input"

    def __post_init__(self) -> None:
        if self.nvdla_fault not in NVDLA_FAULTS:
            raise RtlError(f"nvdla_fault={self.nvdla_fault!r}: expected one of {', '.join(NVDLA_FAULTS)}")

    @property
    def module_name(self) -> str:
        return f"{super(NvdlaFaultParams, self).module_name}_{self.nvdla_fault}"


def nvdla_faulty(params: RtlParams, fault: str) -> NvdlaFaultParams:
    """``params`` with an nvdla datapath ``fault`` (the generic port faults are ``rtl.faults``)."""
    return NvdlaFaultParams(**{f.name: getattr(params, f.name) for f in fields(RtlParams)}, nvdla_fault=fault)


def fill_cycles(rows: int) -> int:
    """The template's fill, ``ceil(log2(rows)) + 1``: adder-tree depth plus the output register."""
    return (rows - 1).bit_length() + 1


def max_taps(params: RtlParams) -> int:
    """Taps per PE register file (the weight bank holds ``rows`` x that many lines)."""
    return params.weight_depth // params.rows


def scratchpads(acc: Accelerator, stream_bytes: int) -> Scratchpads:
    """One ifmap replica per array row; weight banks of ``rows`` x taps lines of ``cols`` bytes (taps
    up to ``NVDLA_MAX_TAPS``, as half the filter budget allows); output banks of as many pixels as half
    the ofmap budget holds per array line."""
    out_bytes = -(-acc.acc_bits // 8)
    line = cdiv(acc.cols, stream_bytes) * stream_bytes
    taps = max(1, min(NVDLA_MAX_TAPS, int(acc.filter_sram_kb * 1024) // (2 * acc.rows * line)))
    return Scratchpads(
        ifmap_replicas=acc.rows,
        weight_line_bytes=acc.cols,
        ofmap_depth=int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes),
        weight_depth=acc.rows * taps,
    )


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int, int]:
    """(groups, column folds over K per group, row folds over C per group)."""
    _, g = _ng(geo)
    return g, cdiv(geo.k // g, params.cols), cdiv(geo.c // g, params.rows)


def lines(geo: LayerGeometry) -> int:
    """Output lines of one output tile: N*P*Q."""
    return _ng(geo)[0] * geo.p * geo.q


def steps(geo: LayerGeometry) -> int:
    """T: steps streamed per fold, N*P*Q*R*S."""
    return lines(geo) * geo.r * geo.s


def input_bytes(geo: LayerGeometry) -> int:
    return _ng(geo)[0] * geo.c * geo.h * geo.w


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    if geo.r * geo.s > max_taps(params):
        raise RtlError(
            f"layer {layer.name!r}: {geo.r}x{geo.s} kernel has more taps than the {max_taps(params)} "
            "a PE holds (give the accelerator more filter_sram_kb, up to 3x3)"
        )
    if lines(geo) > params.ofmap_depth:
        raise RtlError(
            f"layer {layer.name!r}: {lines(geo)} output pixels exceed the ofmap bank depth {params.ofmap_depth}"
        )


def check_resident_input(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    """The whole input (batch included) stays resident: it must fit half the ifmap budget (the
    simulator's rule) and one replica."""
    size = input_bytes(geo)
    half_budget = params.ifmap_bytes * params.ifmap_replicas // 2
    if size > min(half_budget, params.ifmap_bytes):
        raise RtlError(
            f"layer {layer.name!r}: ifmap of {size} bytes exceeds half the ifmap scratchpad "
            f"({half_budget} bytes) or one replica ({params.ifmap_bytes}); give the accelerator a "
            "larger ifmap_sram_kb"
        )


def config(params: RtlParams, geo: LayerGeometry) -> dict[str, int]:
    """The ``cfg_*`` registers of a layer."""
    n, g = _ng(geo)
    _, fc_n, fr_n = folds(params, geo)
    hw = geo.h * geo.w
    cfg = dict(
        h=geo.h,
        w=geo.w,
        hw=hw,
        r=geo.r,
        s=geo.s,
        stride=geo.stride,
        pad=geo.pad,
        stride_w=geo.stride * geo.w,
        q=geo.q,
        pad_w=geo.top * geo.w + geo.left,
        pq=geo.p * geo.q,
        t=steps(geo),
        taps=geo.r * geo.s,
        npq=lines(geo),
        chw=geo.c * hw,
        cg=geo.c // g,
        cg_hw=geo.c // g * hw,
        n_rf=fr_n,
        n_cf=fc_n,
        n_ot=g * fc_n,
        n_folds=g * fc_n * fr_n,
        if_beats=cdiv(input_bytes(geo), params.stream_bytes),
        pad_top=geo.top,  # a tiled call's own padding (``dataflows.tiling``); the pixel walker's start
        pad_left=geo.left,
    )
    for key, value in cfg.items():
        if not 0 <= value < (1 << CFG_BITS):
            raise RtlError(f"layer configuration {key}={value} does not fit the {CFG_BITS}-bit register")
    return cfg


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats); ``weights`` is ``[K][C/G][R][S]``."""
    ra, ca = params.rows, params.cols
    g_n, fc_n, fr_n = folds(params, geo)
    kg, cg, taps = geo.k // g_n, geo.c // g_n, geo.r * geo.s
    w = np.asarray(weights, dtype=np.int64).reshape(g_n, kg, cg, taps)
    row_bytes = params.weight_row_beats * params.stream_bytes
    tiles = []
    for g in range(g_n):
        padded = np.zeros((fc_n * ca, fr_n * ra, taps), dtype=np.int64)
        padded[:kg, :cg] = w[g]
        for fc in range(fc_n):
            for fr in range(fr_n):
                tile = np.zeros((ra, taps, row_bytes), dtype=np.int64)
                tile[:, :, :ca] = padded[fc * ca : (fc + 1) * ca, fr * ra : (fr + 1) * ra].transpose(1, 2, 0)
                tiles.append(tile.reshape(ra * taps, row_bytes))
    return config(params, geo), pack_lines(tiles, params.stream_bytes)


def out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    g_n, fc_n, _ = folds(params, geo)
    return g_n * fc_n * lines(geo) * params.out_row_beats


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    """out[k][p][q] (batch 1) or out[n][k][p][q] from the output stream."""
    n, _ = _ng(geo)
    g_n, fc_n, _ = folds(params, geo)
    kg, ca = geo.k // g_n, params.cols
    vals = unpack_lines(params, beats, g_n * fc_n * lines(geo)).reshape(g_n, fc_n, n, geo.p, geo.q, ca)
    full = vals.transpose(2, 0, 1, 5, 3, 4).reshape(n, g_n, fc_n * ca, geo.p, geo.q)[:, :, :kg]
    out = wrap(full.reshape(n, geo.k, geo.p, geo.q), params.acc_bits)
    return out[0] if n == 1 else out


def reference(geo: LayerGeometry, ifmap: np.ndarray, weights: np.ndarray, acc_bits: int) -> np.ndarray:
    """out[k][p][q] (batch 1) or out[n][k][p][q] of the grouped conv, wrapped to ``acc_bits``."""
    n, g = _ng(geo)
    kg, cg = geo.k // g, geo.c // g
    x = np.asarray(ifmap, dtype=np.int64).reshape(n, geo.c, geo.h, geo.w)
    x = np.pad(x, ((0, 0), (0, 0), (geo.pad, geo.pad), (geo.pad, geo.pad)))
    w = np.asarray(weights, dtype=np.int64).reshape(g, kg, cg * geo.r * geo.s)
    out = np.zeros((n, geo.k, geo.p, geo.q), dtype=np.int64)
    for p in range(geo.p):
        for q in range(geo.q):
            h0, w0 = p * geo.stride, q * geo.stride
            win = x[:, :, h0 : h0 + geo.r, w0 : w0 + geo.s].reshape(n, g, cg * geo.r * geo.s)
            out[:, :, p, q] = np.einsum("ngx,gkx->ngk", win, w).reshape(n, geo.k)
    out = wrap(out, acc_bits)
    return out[0] if n == 1 else out


def random_operands(
    params: RtlParams, geo: LayerGeometry, rng: np.random.Generator, pattern: str = "random"
) -> tuple[np.ndarray, np.ndarray]:
    """``in[n][c][h][w]`` and ``w[k][c/g][r][s]``: ``random`` (extremes forced in), ``extremes`` or ``zeros``."""
    n, g = _ng(geo)
    lo_i, hi_i = -(1 << (params.input_bits - 1)), (1 << (params.input_bits - 1)) - 1
    lo_w, hi_w = -(1 << (params.weight_bits - 1)), (1 << (params.weight_bits - 1)) - 1
    shape_i, shape_w = (n, geo.c, geo.h, geo.w), (geo.k, geo.c // g, geo.r, geo.s)
    if pattern == "zeros":
        return np.zeros(shape_i, dtype=np.int64), np.zeros(shape_w, dtype=np.int64)
    if pattern == "extremes":
        return (
            rng.choice([lo_i, hi_i], size=shape_i).astype(np.int64),
            rng.choice([lo_w, hi_w], size=shape_w).astype(np.int64),
        )
    x = rng.integers(lo_i, hi_i + 1, size=shape_i)
    w = rng.integers(lo_w, hi_w + 1, size=shape_w)
    x.reshape(-1)[:2] = [lo_i, hi_i][: x.size]
    w.reshape(-1)[:2] = [lo_w, hi_w][: w.size]
    return x.astype(np.int64), w.astype(np.int64)


def prepare(params: RtlParams, layer: Layer, ifmap: np.ndarray, weights: np.ndarray) -> Program:
    """``layer`` (batch and groups included) packed for the hardware, with the expected result; the
    shared ``rtl.program.prepare`` covers batch 1, one group."""
    geo = nvdla_geometry(layer)
    check_resident_input(params, layer, geo)
    check_layer(params, layer, geo)
    cfg, weight_beats = layout(params, geo, weights)
    ifmap_beats = pack_beats((np.asarray(ifmap, dtype=np.int64) & 0xFF).astype(np.uint8), params.stream_bytes)
    return Program(
        params=params,
        geo=geo,
        cfg=cfg,
        ifmap_beats=ifmap_beats,
        weight_beats=weight_beats,
        expected_out=reference(geo, ifmap, weights, params.acc_bits),
        expected_cycles=cycles(params, geo),
    )


def cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles (memory always ready), the simulator's fold model of this hardware.

    Cycles are numbered from 0 (the first busy cycle). Fold f (group, column fold, row fold order)
    takes ``rows + T + fill`` cycles from its first preload cycle S_f. Weight tile f loads (``LW``
    beats) once tile f-1 is in and fold f-2's preload is over; the input (``LI`` beats) loads first;
    an output tile drains from 2 cycles after its last fold (``DL`` beats, one set-up cycle), and its
    first fold waits for the drain of the tile two before.
    """
    ra = params.rows
    li = cdiv(input_bytes(geo), params.stream_bytes)
    lw = ra * geo.r * geo.s * params.weight_row_beats
    dl = lines(geo) * params.out_row_beats
    fold_len = ra + steps(geo) + fill_cycles(ra)
    g_n, fc_n, fr_n = folds(params, geo)
    starts: list[int] = []
    drains: list[int] = []
    w_free = prev_end = out_free = 0
    for f in range(g_n * fc_n * fr_n):
        fr = f % fr_n
        load = max(w_free, starts[f - 2] + ra if f >= 2 else 0)
        w_free = load + lw
        need = max(li, w_free, drains[-2] if fr == 0 and len(drains) >= 2 else 0)
        start = max(prev_end, need)
        starts.append(start)
        prev_end = start + fold_len
        if fr == fr_n - 1:
            out_free = max(out_free, prev_end + 2) + 1 + dl
            drains.append(out_free)
    return max(prev_end, drains[-1])


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``; its ``tiling_kinds`` rule): the
    input in one replica and half the budget, the P*Q output lines in the output bank, R*S taps in a
    PE's register file."""
    return resident_call_limits(params, out_pixels=params.ofmap_depth, reduction=max_taps(params))
