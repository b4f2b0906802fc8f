"""Host side of a generated accelerator, shared by every kind: the conv view of a layer, the numpy
reference result, stream packing and unpacking, and the generic entry points (``prepare``,
``expected_cycles``, ``decode_output``) that hand over to the kind's host module (``rtl.kinds``);
and host-side tiling: a layer one call cannot run as the calls of its ``dataflows.tiling`` plan
(``plan_layer``, ``prepare_calls``; a kind is tiled when its host module defines ``call_limits``):
a call over a channel group computes that group's partial sum, and the host adds the groups'
outputs modulo ``2**acc_bits`` (``TiledProgram.assemble``; the hardware has no partial-sum input).

Stream conventions (each ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: the layer input ``in[c][h][w]`` (int8, unpadded: padding is the controller's job), packed
  contiguously, the last beat zero-filled; loaded once and kept resident.
- weights and ofmap: per kind (``ws_program``, ``os_program``, ``rs_program``); an output line is
  ``cols`` accumulators of ``out_bytes`` each (little-endian, two's complement), padded to whole beats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coexplore.dataflows.decompose import KINDS, DecomposedPlan, decomposes, plan_decomposed
from coexplore.dataflows.tiling import Call, CallLimits, TilingError, TilingPlan, cheapest_plan, plan_calls
from coexplore.models.ir import Layer, OpKind
from coexplore.rtl.params import CFG_BITS, RtlError, RtlParams


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
    pad_top: int | None = None  # a tiled call's own top/left padding (``dataflows.tiling``); None: ``pad``
    pad_left: int | None = None

    @property
    def top(self) -> int:
        return self.pad if self.pad_top is None else self.pad_top

    @property
    def left(self) -> int:
        return self.pad if self.pad_left is None else self.pad_left

    @property
    def red(self) -> int:
        return self.c * self.r * self.s

    @property
    def t(self) -> int:
        return self.p * self.q

    @property
    def input_bytes(self) -> int:
        return self.c * self.h * self.w


def geometry(layer: Layer) -> LayerGeometry:
    if layer.kind not in (OpKind.CONV, OpKind.LINEAR):
        raise RtlError(
            f"layer {layer.name!r}: kind {layer.kind.value!r} is not supported by the RTL "
            "(expected conv, depthwise or grouped conv, gemm or matmul)"
        )
    if layer.groups != 1 or layer.n != 1:
        raise RtlError(f"layer {layer.name!r}: groups={layer.groups}, n={layer.n}: the RTL runs groups=1, n=1")
    if layer.dilation_h != 1 or layer.dilation_w != 1:
        raise RtlError(f"layer {layer.name!r}: dilation must be 1 for the RTL")
    if layer.stride_h != layer.stride_w or layer.pad_h != layer.pad_w:
        raise RtlError(f"layer {layer.name!r}: the RTL needs equal stride and padding in h and w")
    return LayerGeometry(
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
    )


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def pack_beats(data: np.ndarray, stream_bytes: int) -> list[int]:
    """Bytes (uint8) -> list of beat integers, little-endian within a beat."""
    flat = np.asarray(data, dtype=np.uint8).reshape(-1)
    beats = cdiv(flat.size, stream_bytes)
    padded = np.zeros(beats * stream_bytes, dtype=np.uint8)
    padded[: flat.size] = flat
    rows = padded.reshape(beats, stream_bytes)
    return [int.from_bytes(row.tobytes(), "little") for row in rows]


def pack_lines(lines: list[np.ndarray], stream_bytes: int) -> list[int]:
    """Beats of a sequence of ``[n, width]`` byte arrays (each line already padded to whole beats)."""
    return pack_beats(np.concatenate([(x & 0xFF).reshape(-1) for x in lines]).astype(np.uint8), stream_bytes)


def unpack_lines(params: RtlParams, beats: list[int], lines: int) -> np.ndarray:
    """``[lines, cols]`` accumulators (sign-extended from whole output bytes) of an output stream of
    ``lines`` padded lines; RtlError when the stream has another length."""
    ob, bw, ca = params.out_bytes, params.stream_bytes, params.cols
    row_bytes = params.out_row_beats * bw
    raw = b"".join(int(b).to_bytes(bw, "little") for b in beats)
    if len(raw) != lines * row_bytes:
        raise RtlError(f"output stream has {len(raw)} bytes, expected {lines * row_bytes}")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(lines, row_bytes)[:, : ca * ob]
    arr = arr.reshape(lines, ca, ob).astype(np.int64)
    vals = np.zeros((lines, ca), dtype=np.int64)
    for b in range(ob):
        vals |= arr[..., b] << (8 * b)
    return wrap(vals, 8 * ob)


def reference_output(geo: LayerGeometry, ifmap: np.ndarray, weights: np.ndarray, acc_bits: int) -> np.ndarray:
    """out[k][p][q] of the conv (int64, wrapped to ``acc_bits`` two's complement)."""
    # top/left padding as configured; bottom/right: zeros wherever a tap leaves the image
    bottom = max(0, (geo.p - 1) * geo.stride + geo.r - geo.top - geo.h)
    right = max(0, (geo.q - 1) * geo.stride + geo.s - geo.left - geo.w)
    x = np.pad(ifmap.astype(np.int64), ((0, 0), (geo.top, bottom), (geo.left, right)))
    wt = weights.astype(np.int64).reshape(geo.k, geo.red)
    cols = np.empty((geo.red, geo.t), dtype=np.int64)
    for p in range(geo.p):
        for q in range(geo.q):
            h0, w0 = p * geo.stride, q * geo.stride
            cols[:, p * geo.q + q] = x[:, h0 : h0 + geo.r, w0 : w0 + geo.s].reshape(-1)
    out = wt @ cols
    return wrap(out, acc_bits).reshape(geo.k, geo.p, geo.q)


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    mod = 1 << bits
    v = np.asarray(values, dtype=np.int64) & (mod - 1)
    return np.where(v >= mod >> 1, v - mod, v)


def conv_cfg(geo: LayerGeometry, stream_bytes: int, n_rf: int, n_cf: int, n_folds: int, **extra: int) -> dict[str, int]:
    """The layer registers every kind shares (the im2col walker's and the pixel generator's), plus
    the fold counts and a kind's own ``extra`` registers."""
    cfg = dict(
        h=geo.h,
        w=geo.w,
        hw=geo.h * geo.w,
        r=geo.r,
        s=geo.s,
        stride=geo.stride,
        pad=geo.pad,
        pad_top=geo.top,
        pad_left=geo.left,
        stride_w=geo.stride * geo.w,
        p=geo.p,
        q=geo.q,
        t=geo.t,
        red=geo.red,
        n_rf=n_rf,
        n_cf=n_cf,
        if_beats=cdiv(geo.input_bytes, stream_bytes),
        pad_w=geo.top * geo.w + geo.left,
        n_folds=n_folds,
    )
    cfg.update(extra)
    for key, value in cfg.items():
        if not 0 <= value < (1 << CFG_BITS):
            raise RtlError(f"layer configuration {key}={value} does not fit the {CFG_BITS}-bit register")
    return cfg


CONV_CFG = (
    "h",
    "w",
    "hw",
    "r",
    "s",
    "stride",
    "pad",
    "stride_w",
    "p",
    "q",
    "t",
    "red",
    "n_rf",
    "n_cf",
    "if_beats",
    "pad_w",
    "n_folds",
    "pad_top",
    "pad_left",
)


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


def _program(params: RtlParams) -> Any:
    from coexplore.rtl.kinds import program_of

    return program_of(params)


def expected_out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    return _program(params).out_beats(params, geo)


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    """out[k][p][q] from the output stream's beats."""
    return _program(params).decode_output(params, geo, beats)


def check_resident_input(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    """The whole input stays resident. Accelerator SRAM budgets are double-buffered (half holds the
    working set), and the simulator's rtl profile keeps an input resident only when it fits half
    the ifmap budget, so the RTL takes no larger input even where its replicas could hold it."""
    half_budget = params.ifmap_bytes * params.ifmap_replicas // 2
    if geo.input_bytes > half_budget:
        raise RtlError(
            f"layer {layer.name!r}: ifmap of {geo.input_bytes} bytes exceeds half the ifmap "
            f"scratchpad ({half_budget} bytes); give the accelerator a larger ifmap_sram_kb"
        )
    if geo.input_bytes > params.ifmap_bytes:
        raise RtlError(
            f"layer {layer.name!r}: ifmap of {geo.input_bytes} bytes exceeds the "
            f"{params.ifmap_bytes}-byte ifmap scratchpad"
        )


def prepare(
    params: RtlParams,
    layer: Layer,
    rng: np.random.Generator | None = None,
    ifmap: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> Program:
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
    check_resident_input(params, layer, geo)
    host = _program(params)
    host.check_layer(params, layer, geo)
    cfg, weight_beats = host.layout(params, geo, weights)
    return Program(
        params=params,
        geo=geo,
        cfg=cfg,
        ifmap_beats=pack_beats((ifmap & 0xFF).astype(np.uint8), params.stream_bytes),
        weight_beats=weight_beats,
        expected_out=expected,
        expected_cycles=host.cycles(params, geo),
    )


def check_layer(params: RtlParams, layer: Layer) -> None:
    """RtlError when the hardware of ``params`` cannot run ``layer`` (without building any data)."""
    geo = geometry(layer)
    check_resident_input(params, layer, geo)
    _program(params).check_layer(params, layer, geo)


def expected_cycles(params: RtlParams, layer: Layer) -> int:
    """Start->done cycles the hardware of ``params`` takes on ``layer`` (memory always ready)."""
    return _program(params).cycles(params, geometry(layer))


def ws_cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """The weight-stationary timing model (``rtl.ws_program.cycles``)."""
    from coexplore.rtl.ws_program import cycles

    return cycles(params, geo)


# ---- host-side tiling: a layer as several calls (dataflows.tiling) ----------------------------------
def resident_call_limits(params: RtlParams, out_pixels: int, reduction: int) -> CallLimits:
    """A kind's per-call limits: its input resident in one replica and half the ifmap budget (the
    check ``_check_call`` applies), plus the kind's own output-bank and reduction bounds (0: none)."""
    return CallLimits(
        kind=params.kind,
        rows=params.rows,
        cols=params.cols,
        input_bytes=min(params.ifmap_bytes, params.ifmap_bytes * params.ifmap_replicas // 2),
        out_pixels=out_pixels,
        reduction=reduction,
        stream_bytes=params.stream_bytes,
    )


def limits_of(params: RtlParams) -> CallLimits | None:
    """The per-call limits of the hardware of ``params`` (its host module's ``call_limits``; None for
    a kind not tiled); the same numbers as ``dataflows.tiling.call_limits`` on its accelerator."""
    own = getattr(_program(params), "call_limits", None)
    return None if own is None else own(params)


def call_geometry(plan: TilingPlan, call: Call) -> LayerGeometry:
    """The conv view of one call: its input channels, rows and columns, output rows, columns and
    channels, and its own pads."""
    return LayerGeometry(
        c=call.c,
        k=call.k,
        h=call.h,
        w=call.w,
        r=plan.r,
        s=plan.s,
        stride=plan.stride,
        pad=plan.pad,
        p=call.p,
        q=call.q,
        pad_top=call.pad_top,
        pad_left=call.pad_left,
    )


@dataclass(frozen=True, slots=True)
class TiledProgram:
    """A layer prepared as calls run one after another (one call when it fits); the outputs of the
    calls are placed at their rows, columns and channels of ``expected_out``, and the partial sums
    of a tile's channel groups added there by the host (modulo ``2**acc_bits``: the hardware has no
    partial-sum input, each group's output leaves at accumulator width)."""

    params: RtlParams
    geo: LayerGeometry  # the whole layer
    plan: TilingPlan
    calls: tuple[Program, ...]
    call_inputs: tuple[tuple[np.ndarray, np.ndarray], ...]  # each call's (ifmap rows, weights)
    expected_out: np.ndarray  # [k][p][q]
    expected_cycles: int  # the calls' cycles plus the idle cycles between them

    def assemble(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The layer's out[k][p][q] from the calls' outputs (channel groups summed, wrapped)."""
        full = np.zeros_like(self.expected_out)
        for call, out in zip(self.plan.calls, outputs, strict=True):
            full[call.k0 : call.k1, call.p0 : call.p1, call.q0 : call.q1] += out
        return wrap(full, self.params.acc_bits)


def plan_layer(
    params: RtlParams, layer: Layer, k_tile: int | None = None, columns: bool = True, groups: bool = True
) -> TilingPlan:
    """The calls that run ``layer`` on the hardware of ``params``: ``dataflows.tiling.plan_calls``
    (the simulator's rtl profile plans with the same function; ``k_tile`` forces K tiles of that
    size, ``columns=False`` keeps full-width bands, ``groups=False`` whole C), or one call on a kind
    not tiled; RtlError when neither works."""
    geo = geometry(layer)
    one = TilingPlan.whole(geo.c, geo.k, geo.h, geo.w, geo.r, geo.s, geo.stride, geo.pad, geo.p, geo.q)
    lim = limits_of(params)
    if lim is None:
        check_layer(params, layer)
        return one
    try:
        if k_tile is None and columns and groups:  # the default plan: the fewest cycles of the options
            return cheapest_plan(layer, lim, plan_cycles(params, layer))
        return plan_calls(layer, lim, k_tile, columns, groups)
    except TilingError as exc:
        raise RtlError(str(exc)) from None


def plan_cycles(params: RtlParams, layer: Layer) -> Callable[[TilingPlan], int]:
    """A plan's cycles on the hardware of ``params`` by the kind's timing model (``expected_cycles``
    of ``prepare_calls``): its calls and the idle cycles between them."""
    host = _program(params)

    def cycles(plan: TilingPlan) -> int:
        total = 0
        for call in plan.calls:
            geo = call_geometry(plan, call)
            total += host.cycles(params, host.call_view(layer, geo) if hasattr(host, "call_view") else geo)
        return total + plan.gap_cycles()

    return cycles


def _n_folds(params: RtlParams, geo: LayerGeometry) -> int:
    """Folds of one call (the product of the kind's ``folds``: row x column folds, nvdla and sdn a third)."""
    return int(np.prod(_program(params).folds(params, geo)))


def prepare_calls(
    params: RtlParams,
    layer: Layer,
    ifmap: np.ndarray,
    weights: np.ndarray,
    k_tile: int | None = None,
    plan: TilingPlan | None = None,
) -> TiledProgram:
    """``layer`` with the given tensors as the calls of its plan (``plan_layer``), each prepared as
    one layer of its own (``prepare``: the hardware's checks hold for every call) on its input
    channels, rows and columns and its filters' slice of those channels."""
    geo = geometry(layer)
    plan = plan if plan is not None else plan_layer(params, layer, k_tile)
    ifmap = np.asarray(ifmap, dtype=np.int64).reshape(geo.c, geo.h, geo.w)
    weights = np.asarray(weights, dtype=np.int64).reshape(geo.k, geo.c, geo.r, geo.s)
    host = _program(params)
    programs, inputs = [], []
    for call in plan.calls:
        cg = call_geometry(plan, call)
        x = ifmap[call.c0 : call.c1, call.h0 : call.h1, call.w0 : call.w1]
        w = weights[call.k0 : call.k1, call.c0 : call.c1]
        programs.append(_prepare_geometry(params, layer, cg, host, x, w))
        inputs.append((x, w))
    cycles = sum(pr.expected_cycles for pr in programs) + plan.gap_cycles()
    return TiledProgram(
        params=params,
        geo=geo,
        plan=plan,
        calls=tuple(programs),
        call_inputs=tuple(inputs),
        expected_out=reference_output(geo, ifmap, weights, params.acc_bits),
        expected_cycles=cycles,
    )


def _prepare_geometry(
    params: RtlParams, layer: Layer, geo: LayerGeometry, host: Any, ifmap: np.ndarray, weights: np.ndarray
) -> Program:
    """One call of geometry ``geo`` (its own pads) packed for the hardware, after its checks."""
    geo = host.call_view(layer, geo) if hasattr(host, "call_view") else geo  # sdn: a conv call stays a conv
    _check_call(params, layer, geo, host)
    cfg, weight_beats = host.layout(params, geo, weights)
    return Program(
        params=params,
        geo=geo,
        cfg=cfg,
        ifmap_beats=pack_beats((ifmap & 0xFF).astype(np.uint8), params.stream_bytes),
        weight_beats=weight_beats,
        expected_out=reference_output(geo, ifmap, weights, params.acc_bits),
        expected_cycles=host.cycles(params, geo),
    )


def _check_call(params: RtlParams, layer: Layer, geo: LayerGeometry, host: Any) -> None:
    """The hardware's checks of one call (``prepare``'s): resident input, the kind's own, registers."""
    geo = host.call_view(layer, geo) if hasattr(host, "call_view") else geo
    half_budget = params.ifmap_bytes * params.ifmap_replicas // 2
    if geo.input_bytes > min(half_budget, params.ifmap_bytes):
        raise RtlError(
            f"layer {layer.name!r}: a call's input of {geo.input_bytes} bytes exceeds the resident "
            f"limit {min(half_budget, params.ifmap_bytes)}"
        )
    host.check_layer(params, layer, geo)
    if limits_of(params) is not None:
        conv_cfg(geo, params.stream_bytes, 1, 1, _n_folds(params, geo))
        if hasattr(host, "config"):  # a kind with registers of its own (nvdla, sdn, is, rs) checks them too
            host.config(params, geo)


def check_tiled(
    params: RtlParams, layer: Layer, columns: bool = True, groups: bool = True
) -> TilingPlan | DecomposedPlan:
    """The plan of ``layer`` when the hardware runs it as one or several calls (RtlError when not),
    every call checked as ``prepare_calls`` checks it (without building any data); a depthwise,
    grouped, matmul or batched layer as the plans of its sub-layers (``decomposed_plan``)."""
    if decomposes(layer, limits_of(params)):
        return check_decomposed(params, layer, columns, groups)
    plan = plan_layer(params, layer, columns=columns, groups=groups)
    host = _program(params)
    for call in plan.calls:
        _check_call(params, layer, call_geometry(plan, call), host)
    return plan


# ---- decomposed layers: depthwise, grouped conv, matmul, batch > 1 (dataflows.decompose) ------------
def decomposed_plan(params: RtlParams, layer: Layer, columns: bool = True, groups: bool = True) -> DecomposedPlan:
    """``layer`` as dense sub-layers on the hardware of ``params`` (``dataflows.decompose``: the plan
    the simulator's rtl profile costs; groups per piece for the fewest cycles by the kind's timing
    model), each with its tiling plan; RtlError when the kind does not decompose or a sub-layer fits
    no call."""
    lim = limits_of(params)
    if not decomposes(layer, lim):
        raise RtlError(
            f"layer {layer.name!r}: kind {layer.kind.value!r} (groups={layer.groups}, n={layer.n}) is not "
            f"supported by the RTL of kind {params.kind!r} (expected {', '.join(KINDS)}: they run it as sub-layers)"
        )
    assert lim is not None

    def plan_of(sub: Layer) -> TilingPlan:
        """A dense sub-layer's plan: the fewest cycles by the kind's timing model (``plan_layer``)."""
        return cheapest_plan(sub, lim, plan_cycles(params, sub))

    def part_cycles(sub: Layer) -> int:
        """A dense sub-layer's cycles by the kind's timing model: its calls and the gaps between them."""
        return plan_cycles(params, sub)(plan_of(sub))

    try:
        return plan_decomposed(layer, lim, part_cycles, columns=columns, groups=groups, plan_of=plan_of)
    except TilingError as exc:
        raise RtlError(str(exc)) from None


def check_decomposed(params: RtlParams, layer: Layer, columns: bool = True, groups: bool = True) -> DecomposedPlan:
    """``decomposed_plan`` with every call of every sub-layer checked as ``prepare_calls`` does."""
    plan = decomposed_plan(params, layer, columns, groups)
    host = _program(params)
    for part, sub in zip(plan.decomposition.parts, plan.plans, strict=True):
        for call in sub.calls:
            _check_call(params, part.layer, call_geometry(sub, call), host)
    return plan


@dataclass(frozen=True, slots=True)
class DecomposedProgram:
    """A layer prepared as its sub-layers' calls, all run back to back (``calls``, ``call_inputs``
    as ``TiledProgram``'s, so the bench runs them alike); ``expected_out`` is ``(N, K, P, Q)``."""

    params: RtlParams
    plan: DecomposedPlan
    pieces: tuple[TiledProgram, ...]  # one per piece, in run order
    expected_out: np.ndarray
    expected_cycles: int  # every call's cycles plus one idle cycle between consecutive calls

    @property
    def calls(self) -> tuple[Program, ...]:
        return tuple(pr for piece in self.pieces for pr in piece.calls)

    @property
    def call_inputs(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        return tuple(xw for piece in self.pieces for xw in piece.call_inputs)

    def assemble(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The layer's out[n][k][p][q] from the calls' outputs (in run order)."""
        subs, at = [], 0
        for piece in self.pieces:
            subs.append(piece.assemble(outputs[at : at + len(piece.calls)]))
            at += len(piece.calls)
        return self.plan.decomposition.assemble(subs, self.params.acc_bits)  # tap groups add up (wrapped)


def prepare_layer(
    params: RtlParams, layer: Layer, ifmap: np.ndarray, weights: np.ndarray, columns: bool = True, groups: bool = True
) -> TiledProgram | DecomposedProgram:
    """``layer`` with the given tensors on the hardware of ``params``: a dense layer as the calls of
    its tiling plan (``prepare_calls``); a depthwise, grouped, matmul or batched one as its sub-layers
    (``decomposed_plan``: block-diagonal weights cut per piece) on the kinds that decompose (``KINDS``),
    each prepared by ``prepare_calls``.
    Tensors in ``dataflows.decompose``'s layouts; the expected output is computed per sample and
    group from the layer's own tensors (not from the sub-layers)."""
    if not decomposes(layer, limits_of(params)):
        return prepare_calls(params, layer, ifmap, weights, plan=plan_layer(params, layer, None, columns, groups))
    plan = decomposed_plan(params, layer, columns, groups)
    dec = plan.decomposition
    x, w = dec.operands(ifmap, weights)
    pieces = tuple(
        prepare_calls(params, dec.parts[i].layer, *dec.piece_operands(piece, x, w), plan=plan.plans[i])
        for i, piece in dec.order
    )
    cycles = sum(tp.expected_cycles for tp in pieces) + dec.gap_cycles()
    return DecomposedProgram(params, plan, pieces, _grouped_reference(layer, x, w, params.acc_bits), cycles)


def _grouped_reference(layer: Layer, x: np.ndarray, w: np.ndarray, acc_bits: int) -> np.ndarray:
    """out[n][k][p][q] of a grouped conv or a matmul, sample by sample and group by group."""
    cg, kg = layer.c_per_group, layer.k_per_group
    geo = LayerGeometry(cg, kg, layer.h, layer.w, layer.r, layer.s, layer.stride_h, layer.pad_h, layer.p, layer.q)
    out = np.zeros((layer.n, layer.k, layer.p, layer.q), dtype=np.int64)
    for n in range(layer.n):
        wn = (w[n] if layer.kind is OpKind.MATMUL else w).reshape(layer.k, cg, layer.r, layer.s)
        for g in range(layer.groups):
            xg, wg = x[n, g * cg : (g + 1) * cg], wn[g * kg : (g + 1) * kg]
            out[n, g * kg : (g + 1) * kg] = reference_output(geo, xg, wg, acc_bits)
    return out
