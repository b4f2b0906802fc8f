"""Host-side tiling of a layer into several calls of a generated array (docs/rtl.md, "Whole networks").

A layer that one call of the generated hardware cannot run (its input does not fit one scratchpad
replica, its output tile does not fit the output bank, a 16-bit configuration register overflows)
runs as several calls, each a sub-layer that meets today's checks:

* output-row bands (P tiles): call ``[p0, p1)`` holds the input rows ``[h0, h1)`` it reads, i.e. the
  band plus the ``R - stride`` halo; its top edge is padded only when the band starts in the
  padding (``pad_top``), its bottom and right padding follow from the hardware's bounds check
  against the call's ``h``, ``w``; bands keep the full width (``pad_left`` = the layer's pad);
* K tiles (output channels ``[k0, k1)``, whole column folds), innermost;
* with ``columns=True`` also output-column tiles (input columns ``[w0, w1)``, ``pad_left`` only on
  the first column of tiles): the RTL runs them, but the analytical model does not cost them yet,
  so the simulator's rtl profile plans bands only (docs/rtl.md).

``band_plans`` is ``plan_calls`` (bands only) over many designs at once, as numpy arrays: the
analytical model (``sim.tiled``) costs a tiled layer as its calls without a Python loop over designs.

This plan is the one definition both sides use: the RTL host (``rtl.program.prepare_calls``) runs the
calls one after another and concatenates their outputs; the simulator's ``rtl`` profile
(``sim.cycle.simulator``) charges the sum of the calls' cycles plus ``CALL_GAP_CYCLES`` per
boundary (the host raises ``start`` the cycle after it sees ``done``). The limits are the generated
hardware's (``call_limits``); ``rtl.program.limits_of`` derives the same numbers from the RTL
parameters, and tests/rtl/test_tiling.py holds them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from coexplore.dataflows.spec import Accelerator, Interconnect, Operand
from coexplore.models.ir import CoexploreError, Dim, Layer, OpKind

CALL_GAP_CYCLES = 1  # idle cycles between two calls: done seen, start sampled on the next edge
REGISTER_MAX = (1 << 16) - 1  # the generated arrays' configuration registers are 16 bits wide
DEFAULT_STREAM_BYTES = 8  # the RTL's stream width when the DRAM bandwidth is unlimited


class TilingError(CoexploreError):
    """A layer that no plan of calls fits (it needs channel groups, plan step 2, or another kind)."""


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What one call of a generated array holds (sizes in bytes, pixels and reduction steps)."""

    kind: str  # "ws" or "os" (the generator, ``rtl.kinds``)
    rows: int
    cols: int
    input_bytes: int  # the largest call input C*h*W kept resident (one replica, half the budget)
    out_pixels: int  # the largest P*Q per call (WS output bank depth); 0: no such limit
    reduction: int  # the largest C*R*S (OS weight bank depth); 0: no such limit
    stream_bytes: int
    register_max: int = REGISTER_MAX


@dataclass(frozen=True, slots=True)
class Call:
    """One call: output rows ``[p0, p1)``, columns ``[q0, q1)`` and channels ``[k0, k1)``, reading
    input rows ``[h0, h1)`` and columns ``[w0, w1)`` (``pad_top``/``pad_left``: its own padding)."""

    p0: int
    p1: int
    k0: int
    k1: int
    h0: int
    h1: int
    pad_top: int
    pad_left: int
    q0: int
    q1: int
    w0: int
    w1: int

    @property
    def q(self) -> int:
        return self.q1 - self.q0

    @property
    def w(self) -> int:
        return self.w1 - self.w0

    @property
    def p(self) -> int:
        return self.p1 - self.p0

    @property
    def k(self) -> int:
        return self.k1 - self.k0

    @property
    def h(self) -> int:
        return self.h1 - self.h0


@dataclass(frozen=True, slots=True)
class TilingPlan:
    """The calls of one layer (bands outer, K tiles inner) and the layer's conv view."""

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
    calls: tuple[Call, ...]

    @property
    def tiled(self) -> bool:
        return len(self.calls) > 1

    @classmethod
    def whole(cls, c: int, k: int, h: int, w: int, r: int, s: int, stride: int, pad: int, p: int, q: int) -> TilingPlan:
        """The plan of one call: the whole layer."""
        one = Call(0, p, 0, k, 0, h, pad, pad, 0, q, 0, w)
        return cls(c, k, h, w, r, s, stride, pad, p, q, (one,))

    def gap_cycles(self) -> int:
        """Cycles the hardware idles between the calls."""
        return CALL_GAP_CYCLES * (len(self.calls) - 1)


def kind_of(acc: Accelerator) -> str | None:
    """The kind ("ws", "os") of the systolic weight-/output-stationary arrays this module tiles, from
    the structure of rtl.kinds' rows (stationary operand, interconnect, dims on rows and columns)."""
    df = acc.dataflow
    if df.interconnect is not Interconnect.SYSTOLIC:
        return None
    mapping = df.mapping_for(OpKind.CONV)
    kinds: dict[tuple[Operand, tuple[Dim, ...], tuple[Dim, ...]], str] = {
        (Operand.WEIGHT, (Dim.C, Dim.R, Dim.S), (Dim.K,)): "ws",
        (Operand.OUTPUT, (Dim.N, Dim.P, Dim.Q), (Dim.K,)): "os",
    }
    return kinds.get((df.stationary, mapping.rows.dims, mapping.cols.dims))


def call_limits(acc: Accelerator) -> CallLimits | None:
    """The limits of one call on the generated array of ``acc`` (None for a kind not tiled here);
    the same sizes as ``rtl.params.params_from_accelerator`` and the kind's ``scratchpads``."""
    kind = kind_of(acc)
    if kind is None:
        return None
    bw = acc.dram_bw_bytes_per_cycle
    stream = DEFAULT_STREAM_BYTES if bw is None else int(bw)
    replica = (int(acc.ifmap_sram_kb * 1024) // acc.rows) // stream * stream
    replica = min(replica, REGISTER_MAX // stream * stream)
    out_bytes = -(-acc.acc_bits // 8)
    if kind == "ws":
        out_pixels, reduction = min(int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes), REGISTER_MAX), 0
    else:
        line = -(-acc.cols // stream) * stream
        out_pixels, reduction = 0, min(int(acc.filter_sram_kb * 1024) // (2 * line), REGISTER_MAX)
    return CallLimits(
        kind=kind,
        rows=acc.rows,
        cols=acc.cols,
        input_bytes=min(replica, replica * acc.rows // 2),
        out_pixels=out_pixels,
        reduction=reduction,
        stream_bytes=stream,
    )


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _conv_view(layer: Layer) -> tuple[int, int]:
    """(stride, pad) of a layer the generated arrays run; TilingError otherwise."""
    if layer.kind not in (OpKind.CONV, OpKind.LINEAR):
        raise TilingError(f"layer {layer.name!r}: kind {layer.kind.value!r} is not tiled (expected conv or gemm)")
    if layer.groups != 1 or layer.n != 1 or layer.dilation_h != 1 or layer.dilation_w != 1:
        raise TilingError(f"layer {layer.name!r}: groups, batch and dilation must be 1 to tile")
    if layer.stride_h != layer.stride_w or layer.pad_h != layer.pad_w:
        raise TilingError(f"layer {layer.name!r}: tiling needs equal stride and padding in h and w")
    return layer.stride_h, layer.pad_h


def _call_fits(lim: CallLimits, layer: Layer, h: int, w: int, p: int, q: int, k: int, pad_w: int) -> bool:
    """One call of ``h x w`` input pixels, ``p x q`` output pixels and ``k`` channels meets the
    hardware's checks (``pad_w = pad_top*w + pad_left``)."""
    t, red, reg = p * q, layer.c * layer.r * layer.s, lim.register_max
    if layer.c * h * w > lim.input_bytes or (lim.out_pixels and t > lim.out_pixels):
        return False
    if lim.reduction and red > lim.reduction:
        return False
    folds = _cdiv(red, lim.rows) if lim.kind == "ws" else _cdiv(t, lim.rows)
    beats = _cdiv(layer.c * h * w, lim.stream_bytes)
    regs = (h * w, t, red, layer.stride_h * w, pad_w, folds * _cdiv(k, lim.cols), beats)
    return max(regs) <= reg and max(h, w, p, q, k) <= reg


def _spans(
    n_out: int, tile: int, stride: int, pad: int, size: int, kernel: int
) -> list[tuple[int, int, int, int, int]]:
    """Tiles of ``tile`` outputs along one axis, each with the input it reads and its leading pad."""
    out = []
    for o0 in range(0, n_out, tile):
        o1 = min(n_out, o0 + tile)
        first = o0 * stride - pad
        out.append((o0, o1, max(0, first), min(size, (o1 - 1) * stride - pad + kernel), max(0, -first)))
    return out


@lru_cache(maxsize=4096)  # the simulator asks once per layer and design point
def plan_calls(layer: Layer, limits: CallLimits, k_tile: int | None = None, columns: bool = False) -> TilingPlan:
    """The calls that run ``layer`` within ``limits``: one call when it fits; else the fewest
    output-row bands and, when the fold-count register needs it, K tiles of whole column folds.
    ``k_tile`` (a multiple of ``cols``) forces smaller K tiles; ``columns`` also splits the output
    columns (2-D tiles of ``pb`` rows x ``qb`` columns, the fewest calls): the RTL runs them, but
    the analytical model does not cost them yet, so the simulator's rtl profile plans bands only."""
    stride, pad = _conv_view(layer)
    c, k, h, w, r, s, p, q = layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, layer.p, layer.q
    if k_tile is not None and (k_tile < 1 or k_tile % limits.cols and k_tile < k):
        raise TilingError(f"k_tile={k_tile}: expected a positive multiple of the {limits.cols} array columns")

    def fits(pb: int, qb: int, kt: int) -> bool:
        """Every ``pb x qb`` output tile fits one call with ``kt`` channels."""
        rows, cols = _spans(p, pb, stride, pad, h, r), _spans(q, qb, stride, pad, w, s)
        hh, ww = max(b[3] - b[2] for b in rows), max(b[3] - b[2] for b in cols)
        pad_w = max(b[4] for b in rows) * ww + max(b[4] for b in cols)
        return _call_fits(limits, layer, hh, ww, min(pb, p), min(qb, q), kt, pad_w)

    def largest_pb(qb: int, kt: int) -> int:
        """The most output rows per tile (0: not even one), by bisection (fits shrinks with pb)."""
        if not fits(1, qb, kt):
            return 0
        lo, hi = 1, p
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid, qb, kt) else (lo, mid - 1)
        return lo

    if k_tile is None and _call_fits(limits, layer, h, w, p, q, k, pad * w + pad):
        return TilingPlan.whole(c, k, h, w, r, s, stride, pad, p, q)  # the common case, decided at once
    first = k if k_tile is None else min(k, k_tile)
    k_sizes = [first, *range((first - 1) // limits.cols * limits.cols, 0, -limits.cols)]
    widths = sorted({_cdiv(q, _cdiv(q, qb)) for qb in range(1, q + 1)}, reverse=True) if columns else [q]
    best: tuple[int, int, int, int] | None = None  # (calls, pb, qb, kt)
    for kt in k_sizes if fits(1, widths[-1], k_sizes[-1]) else ():  # the smallest call first: a refusal is quick
        for qb in widths:
            pb = largest_pb(qb, kt)
            if pb and (best is None or _cdiv(p, pb) * _cdiv(q, qb) < best[0]):
                best = (_cdiv(p, pb) * _cdiv(q, qb), pb, qb, kt)
        if best is not None:
            break
    if best is None:
        red = c * r * s
        if limits.reduction and red > limits.reduction:
            why = f"C*R*S = {red} exceeds the weight bank depth {limits.reduction}"
        elif c * min(h, r) * (min(w, s) if columns else w) > limits.input_bytes:
            need, unit = c * min(h, r) * (min(w, s) if columns else w), "pixel" if columns else "row"
            why = f"one output {unit} reads {need} input bytes, a call holds {limits.input_bytes}"
        else:
            why = f"a configuration register exceeds {limits.register_max}"
        raise TilingError(f"layer {layer.name!r}: no call fits ({why}); it needs channel groups or a larger design")
    _, pb, qb, kt = best
    calls = []
    for p0, p1, h0, h1, top in _spans(p, pb, stride, pad, h, r):
        for q0, q1, w0, w1, left in _spans(q, qb, stride, pad, w, s):
            for k0 in range(0, k, kt):
                calls.append(Call(p0, p1, k0, min(k, k0 + kt), h0, h1, top, left, q0, q1, w0, w1))
    return TilingPlan(c, k, h, w, r, s, stride, pad, p, q, tuple(calls))


@dataclass(frozen=True, slots=True)
class LimitArrays:
    """``CallLimits`` of many designs as int64 arrays of shape (designs,) (``ws``: bool, the kind)."""

    ws: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    input_bytes: np.ndarray
    out_pixels: np.ndarray
    reduction: np.ndarray
    stream_bytes: np.ndarray
    register_max: np.ndarray

    @classmethod
    def of(cls, limits: Sequence[CallLimits]) -> LimitArrays:
        """The arrays of a sequence of limits (one entry per design)."""
        if not limits:
            raise TilingError("LimitArrays.of: no limits given (expected at least one CallLimits)")

        def col(name: str) -> np.ndarray:
            return np.array([getattr(lim, name) for lim in limits], dtype=np.int64)

        names = ("rows", "cols", "input_bytes", "out_pixels", "reduction", "stream_bytes", "register_max")
        return cls(np.array([lim.kind == "ws" for lim in limits]), *(col(n) for n in names))

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> LimitArrays:
        """The limits of the designs ``idx`` (indices or a boolean mask)."""
        return LimitArrays(*(getattr(self, f)[idx] for f in self.__slots__))


def _cdiv_arr(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return -(-np.asarray(a) // b)


def _fits_arrays(
    lim: LimitArrays, layer: Layer, hh: np.ndarray, ww: int, pp: np.ndarray, kt: np.ndarray, pad_w: np.ndarray
) -> np.ndarray:
    """``_call_fits`` for every design (``hh``, ``pp``, ``kt``, ``pad_w``: per design, the full width)."""
    q, reg = layer.q, lim.register_max
    t, red, words = pp * q, layer.c * layer.r * layer.s, layer.c * hh * ww
    ok = (words <= lim.input_bytes) & ((lim.out_pixels == 0) | (t <= lim.out_pixels))
    ok &= (lim.reduction == 0) | (red <= lim.reduction)
    folds = np.where(lim.ws, _cdiv_arr(red, lim.rows), _cdiv_arr(t, lim.rows))
    ok &= (hh * ww <= reg) & (t <= reg) & (red <= reg) & (layer.stride_h * ww <= reg) & (pad_w <= reg)
    ok &= (folds * _cdiv_arr(kt, lim.cols) <= reg) & (_cdiv_arr(words, lim.stream_bytes) <= reg)
    return ok & (np.maximum(np.maximum(hh, pp), np.maximum(kt, max(ww, q))) <= reg)


def fits_one_call(layer: Layer, lim: LimitArrays) -> np.ndarray:
    """Per design: ``layer`` runs as one call (``plan_calls`` returns the whole layer); bool (designs,)."""
    _, pad = _conv_view(layer)
    n = len(lim)
    full = lambda v: np.full(n, v, dtype=np.int64)  # noqa: E731
    return _fits_arrays(lim, layer, full(layer.h), layer.w, full(layer.p), full(layer.k), full(pad * layer.w + pad))


@lru_cache(maxsize=4096)
def _band_rows(p: int, stride: int, pad: int, h: int, r: int) -> np.ndarray:
    """Index ``pb`` (1..p): the most input rows one band of ``pb`` output rows reads (``_spans``)."""
    out = np.zeros(p + 1, dtype=np.int64)
    for pb in range(1, p + 1):
        o0 = np.arange(0, p, pb)
        o1 = np.minimum(p, o0 + pb)
        out[pb] = int(np.max(np.minimum(h, (o1 - 1) * stride - pad + r) - np.maximum(0, o0 * stride - pad)))
    out.flags.writeable = False
    return out


def band_plans(layer: Layer, lim: LimitArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``plan_calls(layer, limits)`` (bands only) for every design at once: int64 arrays (designs,) of
    the output rows per band ``pb``, the channels per call ``kt`` and the number of calls (0, 0, 0:
    no plan, where ``plan_calls`` raises TilingError). A layer kind that is not tiled raises TilingError.

    Same steps as ``plan_calls``: the whole layer when it fits one call; else the first K tile of
    ``k, (M-1)*cols, ..., cols`` (M column folds) whose one-row band fits (found in closed form: only
    the fold-count register and ``kt`` itself depend on it), then the same bisection over ``pb`` per
    design, on a per-layer table of the input rows a band reads; every band's top pad is the layer's."""
    stride, pad = _conv_view(layer)
    p, k = layer.p, layer.k
    whole = fits_one_call(layer, lim)
    pb, kt, calls = np.where(whole, p, 0), np.where(whole, k, 0), whole.astype(np.int64)
    rest = np.flatnonzero(~whole)
    if len(rest):  # only the designs one call cannot hold are planned
        pb[rest], kt[rest], calls[rest] = _split_plans(layer, lim.take(rest), stride, pad)
    return pb, kt, calls


def _split_plans(layer: Layer, lim: LimitArrays, stride: int, pad: int) -> tuple[np.ndarray, ...]:
    """``band_plans`` for designs where the whole layer does not fit one call."""
    p, k, n = layer.p, layer.k, len(lim)
    ww = min(layer.w, (layer.q - 1) * stride - pad + layer.s)  # the one column tile's input columns
    rows_of = _band_rows(p, stride, pad, layer.h, layer.r)
    pad_w = np.full(n, pad * ww + pad, dtype=np.int64)
    ones, k_all = np.ones(n, dtype=np.int64), np.full(n, k, dtype=np.int64)
    guard = _fits_arrays(lim, layer, rows_of[ones], ww, ones, np.minimum(k_all, lim.cols), pad_w)
    full_k = _fits_arrays(lim, layer, rows_of[ones], ww, ones, k_all, pad_w)
    fold1 = np.where(lim.ws, _cdiv_arr(layer.c * layer.r * layer.s, lim.rows), _cdiv_arr(layer.q, lim.rows))
    reg = lim.register_max
    m_alt = np.minimum(_cdiv_arr(k, lim.cols) - 1, np.minimum(reg // np.maximum(fold1, 1), reg // lim.cols))
    kt = np.where(full_k, k_all, np.maximum(m_alt, 1) * lim.cols)
    lo, hi = ones.copy(), np.full(n, p, dtype=np.int64)
    active = guard & (lo < hi)
    while active.any():
        mid = (lo + hi + 1) // 2
        ok = _fits_arrays(lim, layer, rows_of[mid], ww, mid, kt, pad_w)
        lo = np.where(active & ok, mid, lo)
        hi = np.where(active & ~ok, mid - 1, hi)
        active &= lo < hi
    pb, kt = np.where(guard, lo, 0), np.where(guard, kt, 0)
    return pb, kt, np.where(guard, _cdiv_arr(p, np.maximum(pb, 1)) * _cdiv_arr(k, np.maximum(kt, 1)), 0)
