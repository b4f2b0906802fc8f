"""Host-side tiling of a layer into several calls of a generated array (docs/rtl.md, "Whole networks").

A layer that one call of the generated hardware cannot run (its input does not fit one scratchpad
replica, its output tile does not fit the output bank, its reduction the weight bank, a 16-bit
configuration register overflows) runs as several calls, each a sub-layer that meets today's checks:

* output tiles of ``pb`` rows x ``qb`` columns (bands when ``qb = Q``): call ``[p0, p1) x [q0, q1)``
  holds the input rows ``[h0, h1)`` and columns ``[w0, w1)`` it reads (the tile plus its
  ``R - stride`` halo); its top (left) edge is padded only when the tile starts in the padding
  (``pad_top``, ``pad_left``), its bottom and right padding follow from the hardware's bounds check
  against the call's ``h``, ``w``;
* K tiles (output channels ``[k0, k1)``, whole column folds) when the fold-count register needs them;
* channel groups (input channels ``[c0, c1)``, innermost): the call computes the partial sum of its
  channels only, written out at accumulator width like any output (the arrays emit raw ``acc_bits``
  sums, so its DRAM write traffic is the call's own); the HOST adds the partial outputs of one
  output tile modulo ``2**acc_bits``, which is the wrapped full sum, so the result stays bit-exact.
  The hardware has no partial-sum input port yet (docs/rtl.md, "left").

Plan (``plan_calls``): the whole layer when it fits one call; else the fewest channel groups
``cg`` (``_tile_sizes(C)``, largest first) that fit at all, and within them the fewest calls over
tile widths ``qb`` (``_tile_sizes(Q)``) x the tallest ``pb`` that fits, with the largest K tile
(``k``, then whole column folds) that the smallest tile of the group allows; ties go to wider tiles
(bands). Channel groups come first because every group writes its whole output tile at accumulator
width and the host reads it back: fewest calls alone chose groups that cost 5.6x the cycles of a
band plan (OS 32x32, a 16->16 conv on 112x112) and brought back issue 11's partial-sum spill cliff
(1.09 M cycles against 88.9 k). Within a grouping, calls are the unit the plan minimises (each
reloads its input and weights and pays the array's fill and drain), not cycles. ``columns=False`` /
``groups=False`` restrict the plan to bands / whole C.

What the hardware runs is the cheapest option (``cheapest_option``; issue 11 item 2): ``plan_options``
(``band_options`` over many designs) keeps, per channel grouping, that search's plan, and each tier
picks the one of the fewest cycles by its own cost (the RTL host's timing model, the simulator, the
analytical model: they agree per call, so they pick alike), this rule breaking ties. A plan that fits
a smaller buffer fits a bigger one, so more buffer no longer picks a plan of more cycles where the
smaller design's plan is an option (fewest calls did: an OS 13x35 array, a 56x64 @ 64x222 GEMM,
109,791 -> 146,747 cycles at twice the filter buffer).

``band_plans`` is ``plan_calls`` over many designs at once, as numpy arrays (memoized per layer
geometry and limits): the analytical model (``sim.tiled``) costs a tiled layer as its calls without
a Python loop over designs.

This plan is the one definition both sides use: the RTL host (``rtl.program.prepare_calls``) runs the
calls one after another and sums / places their outputs; the simulator's ``rtl`` profile
(``sim.cycle.simulator``) charges the sum of the calls' cycles plus ``CALL_GAP_CYCLES`` per
boundary (the host raises ``start`` the cycle after it sees ``done``). The limits are the generated
hardware's (``call_limits``); ``rtl.program.limits_of`` derives the same numbers from the RTL
parameters, and tests/rtl/test_tiling.py holds them equal.

Per-kind parts (the bank limits, what the fold-count register counts, a kind's own registers) are one
entry each in ``RULES``: ``SYSTOLIC_RULES`` (ws, os) here and ``dataflows.tiling_kinds.RULES``
(the others); the checks every kind shares are ``_fits``; ``TILE_CAPS`` (optional per kind) lets
the vectorized planner find a tile's height in closed form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from coexplore.dataflows.spec import Accelerator, Interconnect, Operand
from coexplore.dataflows.tiling_kinds import RULES as KIND_RULES
from coexplore.dataflows.tiling_kinds import TILE_CAPS as KIND_CAPS
from coexplore.dataflows.tiling_kinds import CallShape, KindRule, Sizes, kind_fits, limit_fields
from coexplore.models.ir import CoexploreError, Dim, Layer, OpKind

CALL_GAP_CYCLES = 1  # idle cycles between two calls: done seen, start sampled on the next edge
REGISTER_MAX = (1 << 16) - 1  # the generated arrays' configuration registers are 16 bits wide
DEFAULT_STREAM_BYTES = 8  # the RTL's stream width when the DRAM bandwidth is unlimited
_NO_PLAN = np.iinfo(np.int64).max


class TilingError(CoexploreError):
    """A layer that no plan of calls fits (another kind, grouping, or a larger design needed)."""


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What one call holds (sizes in bytes, pixels and reduction steps)."""

    kind: str  # the generator (``rtl.kinds``), a key of ``RULES``
    rows: int
    cols: int
    input_bytes: int  # the largest call input C*h*W kept resident (one replica, half the budget)
    out_pixels: int  # the output bank depth (the kind's ``out_lines``); 0: no such limit
    reduction: int  # the weight bank depth (the kind's ``weight_need``); 0: no such limit
    stream_bytes: int
    register_max: int = REGISTER_MAX


@dataclass(frozen=True, slots=True)
class Call:
    """One call: output rows ``[p0, p1)``, columns ``[q0, q1)``, channels ``[k0, k1)`` over input
    channels ``[c0, c1)``, reading input rows ``[h0, h1)`` and columns ``[w0, w1)``
    (``pad_top``/``pad_left``: its own padding)."""

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
    c0: int
    c1: int

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

    @property
    def c(self) -> int:
        return self.c1 - self.c0


@dataclass(frozen=True, slots=True)
class TilingPlan:
    """The calls of one layer (output tiles outer, then K tiles, channel groups innermost) and the
    layer's conv view."""

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

    @property
    def grouped(self) -> bool:
        """The calls split the input channels (the host sums their partial outputs)."""
        return any(call.c < self.c for call in self.calls)

    @classmethod
    def whole(cls, c: int, k: int, h: int, w: int, r: int, s: int, stride: int, pad: int, p: int, q: int) -> TilingPlan:
        """The plan of one call: the whole layer."""
        one = Call(0, p, 0, k, 0, h, pad, pad, 0, q, 0, w, 0, c)
        return cls(c, k, h, w, r, s, stride, pad, p, q, (one,))

    def gap_cycles(self) -> int:
        """Cycles the hardware idles between the calls."""
        return CALL_GAP_CYCLES * (len(self.calls) - 1)


def _cdiv(a: Any, b: Any) -> Any:
    return -(-a // b)


# ---- the per-kind table: ws and os here, nvdla / sdn / is in dataflows.tiling_kinds ----------------
def _ws_sizes(acc: Accelerator, stream: int) -> Sizes:
    """One replica per array row; output banks of half the ofmap budget over ``cols`` accumulators."""
    out_bytes = -(-acc.acc_bits // 8)
    return Sizes(acc.rows, min(int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes), REGISTER_MAX), 0)


def _os_sizes(acc: Accelerator, stream: int) -> Sizes:
    """One replica per array row; weight banks of half the filter budget over ``cols``-byte lines."""
    line = _cdiv(acc.cols, stream) * stream
    return Sizes(acc.rows, 0, min(int(acc.filter_sram_kb * 1024) // (2 * line), REGISTER_MAX))


SYSTOLIC_RULES: dict[str, KindRule] = {
    # WS: C*R*S on rows (row folds over the reduction), K on columns; P*Q accumulator lines per bank
    "ws": KindRule(
        name="ws",
        structure=(Operand.WEIGHT, Interconnect.SYSTOLIC, (Dim.C, Dim.R, Dim.S), (Dim.K,)),
        sizes=_ws_sizes,
        out_lines=lambda s: s.p * s.q,
        weight_need=lambda s: 0,
        folds=lambda s: _cdiv(s.red, s.rows) * _cdiv(s.k, s.cols),
        registers=lambda s: (),
        weight_unit="C*R*S",
    ),
    # OS: output pixels on rows (row folds over the call's P*Q), K on columns; C*R*S weight lines
    "os": KindRule(
        name="os",
        structure=(Operand.OUTPUT, Interconnect.SYSTOLIC, (Dim.N, Dim.P, Dim.Q), (Dim.K,)),
        sizes=_os_sizes,
        out_lines=lambda s: 0,
        weight_need=lambda s: s.red,
        folds=lambda s: _cdiv(s.p * s.q, s.rows) * _cdiv(s.k, s.cols),
        registers=lambda s: (),
        weight_unit="C*R*S",
    ),
}
RULES: dict[str, KindRule] = {**SYSTOLIC_RULES, **KIND_RULES}  # every tiled kind, one entry each


# Per kind, the most output rows (and input rows held) one call of a tile's other sizes allows, from
# the kind's checks that grow with the tile's height (``dataflows.tiling_kinds.TILE_CAPS`` has the
# others'): the vectorized planner then sizes every tile in closed form. Optional per kind
# (``band_plans`` bisects for a kind without one); the property tests tests/sim/test_tiled*.py hold
# ``band_plans`` equal to ``plan_calls`` (which uses the rules alone) either way.
def _ws_caps(lim: Any, s: CallShape) -> tuple[Any, Any]:
    """out_lines P*Q <= the output bank."""
    return np.where(lim.out_pixels > 0, lim.out_pixels, lim.register_max) // s.q, lim.register_max


def _os_caps(lim: Any, s: CallShape) -> tuple[Any, Any]:
    """folds = ceil(P*Q/rows) * ceil(K/cols) <= reg."""
    return lim.rows * (lim.register_max // _cdiv(s.k, lim.cols)) // s.q, lim.register_max


TILE_CAPS: dict[str, Any] = {"ws": _ws_caps, "os": _os_caps, **KIND_CAPS}


def kind_of(acc: Accelerator) -> str | None:
    """The kind (a key of ``RULES``) whose structure ``acc``'s dataflow has (stationary operand,
    interconnect, conv dims on rows and columns, as ``rtl.kinds``' rows); None: not tiled here."""
    df = acc.dataflow
    mapping = df.mapping_for(OpKind.CONV)
    key = (df.stationary, df.interconnect, mapping.rows.dims, mapping.cols.dims)
    return next((name for name, rule in RULES.items() if rule.structure == key), None)


def call_limits(acc: Accelerator) -> CallLimits | None:
    """The limits of one call on the generated array of ``acc`` (None for a kind not tiled here);
    the same sizes as ``rtl.params.params_from_accelerator`` and the kind's ``scratchpads``."""
    kind = kind_of(acc)
    if kind is None:
        return None
    bw = acc.dram_bw_bytes_per_cycle
    stream = DEFAULT_STREAM_BYTES if bw is None else int(bw)
    return CallLimits(kind, acc.rows, acc.cols, stream_bytes=stream, **limit_fields(RULES[kind], acc, stream))


def _conv_view(layer: Layer) -> tuple[int, int]:
    """(stride, pad) of a layer the generated arrays run; TilingError otherwise."""
    if layer.kind not in (OpKind.CONV, OpKind.LINEAR):
        raise TilingError(f"layer {layer.name!r}: kind {layer.kind.value!r} is not tiled (expected conv or gemm)")
    if layer.groups != 1 or layer.n != 1 or layer.dilation_h != 1 or layer.dilation_w != 1:
        raise TilingError(f"layer {layer.name!r}: groups, batch and dilation must be 1 to tile")
    if layer.stride_h != layer.stride_w or layer.pad_h != layer.pad_w:
        raise TilingError(f"layer {layer.name!r}: tiling needs equal stride and padding in h and w")
    return layer.stride_h, layer.pad_h


def _fits(lim: Any, rule: KindRule, layer: Layer, c: Any, h: Any, w: Any, p: Any, q: Any, k: Any, pad_w: Any) -> Any:
    """A call of ``c`` channels of ``h x w`` input pixels, ``p x q`` output pixels and ``k`` filters
    (``pad_w = pad_top*w + pad_left``) meets the hardware's checks: ints with a ``CallLimits``, or
    broadcasting int64 arrays with a ``LimitArrays`` (a bool array). The kind's part is its rule."""
    shape = CallShape(layer, c, h, w, p, q, k, lim.rows, lim.cols, lim.stream_bytes)
    words, reg = c * h * w, lim.register_max
    ok = (words <= lim.input_bytes) & kind_fits(rule, shape, lim)
    common = (h * w, p * q, shape.red, layer.stride_h * w, pad_w, rule.folds(shape), _cdiv(words, lim.stream_bytes))
    for value in (*common, h, w, p, q, k):
        ok = ok & (value <= reg)
    return ok


def _call_fits(lim: CallLimits, layer: Layer, c: int, h: int, w: int, p: int, q: int, k: int, pad_w: int) -> bool:
    """``_fits`` for one call on one design."""
    return bool(_fits(lim, RULES[lim.kind], layer, c, h, w, p, q, k, pad_w))


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


@lru_cache(maxsize=4096)
def _extent_table(n_out: int, stride: int, pad: int, size: int, kernel: int) -> np.ndarray:
    """Index ``t`` (1..n_out): the input rows (columns) a call of tiles of ``t`` outputs must hold,
    the most any tile of ``_spans`` reads, as a running maximum over ``t`` (with a padding above
    ``kernel // 2`` a smaller tile can read more; the bound keeps the checks monotone in ``t``, so
    the largest tile is a bisection and the planners agree). At least 1: where every window of the
    layer lies in the padding (a 1x1 kernel, pad 1, one input column) the checks still count one
    row held, and no bound divides by zero."""
    out = np.zeros(n_out + 1, dtype=np.int64)
    for t in range(1, n_out + 1):
        o0 = np.arange(0, n_out, t)
        o1 = np.minimum(n_out, o0 + t)
        held = np.minimum(size, (o1 - 1) * stride - pad + kernel) - np.maximum(0, o0 * stride - pad)
        out[t] = max(1, int(np.max(held)))
    out = np.maximum.accumulate(out)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=1024)
def _tile_sizes(n: int) -> tuple[int, ...]:
    """Candidate tile sizes along an axis of ``n`` (channels or output columns), largest first:
    ``ceil(n/m)`` for the tile counts ``m`` = 1..8, then about 25 % apart, and ``n`` (tiles of one)."""
    counts, m = set(range(1, min(n, 8) + 1)), 8
    while m < n:
        m = min(n, _cdiv(m * 5, 4))
        counts.add(m)
    return tuple(sorted({_cdiv(n, m) for m in counts}, reverse=True))


@lru_cache(maxsize=1024)
def _tile_array(n: int) -> np.ndarray:
    """``_tile_sizes(n)`` as a read-only int64 array."""
    out = np.array(_tile_sizes(n), dtype=np.int64)
    out.flags.writeable = False
    return out


def _k_sizes(k: int, first: int, cols: int) -> list[int]:
    """K tiles to try, largest first: ``first`` (``k`` or a forced tile), then whole column folds."""
    return [first, *range((first - 1) // cols * cols, 0, -cols)]


@lru_cache(maxsize=4096)  # the simulator asks once per layer and design point
def plan_calls(
    layer: Layer, limits: CallLimits, k_tile: int | None = None, columns: bool = True, groups: bool = True
) -> TilingPlan:
    """The calls that run ``layer`` within ``limits`` (the module docstring's plan): one call when
    it fits, else the fewest channel groups, then the fewest calls over output tiles x K tiles. ``k_tile`` (a
    multiple of ``cols``) forces smaller K tiles; ``columns=False`` keeps full-width bands,
    ``groups=False`` whole C. TilingError, in one line naming the limit, when no call fits."""
    stride, pad = _conv_view(layer)
    c, k, h, w, r, s, p, q = layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, layer.p, layer.q
    if k_tile is None and _call_fits(limits, layer, c, h, w, p, q, k, pad * w + pad):
        return TilingPlan.whole(c, k, h, w, r, s, stride, pad, p, q)  # the common case, decided at once
    cg, pb, qb, kt, _ = plan_shape(layer, limits, k_tile, columns, groups)
    return _build_plan(layer, cg, pb, qb, kt)


def plan_shape(
    layer: Layer, limits: CallLimits, k_tile: int | None = None, columns: bool = True, groups: bool = True
) -> tuple[int, int, int, int, int]:
    """``plan_calls``' choice without building the calls: (channels per group, output rows and
    columns per tile, filters per call, number of calls); the scalar search, one design."""
    stride, pad = _conv_view(layer)
    c, k, h, w, r, s, p, q = layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, layer.p, layer.q
    if k_tile is not None and (k_tile < 1 or k_tile % limits.cols and k_tile < k):
        raise TilingError(f"k_tile={k_tile}: expected a positive multiple of the {limits.cols} array columns")
    rows_of, cols_of = _extent_table(p, stride, pad, h, r), _extent_table(q, stride, pad, w, s)
    reg = limits.register_max

    def fits(cg: int, pb: int, qb: int, kt: int) -> bool:
        """Every ``pb x qb`` output tile of ``cg`` channels fits one call with ``kt`` filters."""
        hh, ww = int(rows_of[pb]), int(cols_of[qb])
        return _call_fits(limits, layer, cg, hh, ww, pb, qb, kt, pad * ww + pad)

    def first_true(n: int, ok: Any) -> int:
        """The least ``i`` in ``[0, n)`` with ``ok(i)`` (monotone: false, then true); ``n`` if none."""
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
        return lo

    if k_tile is None and _call_fits(limits, layer, c, h, w, p, q, k, pad * w + pad):
        return c, p, q, k, 1  # the common case, decided at once
    k_sizes = _k_sizes(k, k if k_tile is None else min(k, k_tile), limits.cols)
    widths = _tile_sizes(q) if columns else (q,)
    best: tuple[int, int, int, int, int] | None = None  # (calls, cg, pb, qb, kt)
    for cg in _tile_sizes(c) if groups else (c,):
        n_c = _cdiv(c, cg)
        if best is not None and n_c >= best[0]:
            break  # more groups than the best plan has calls
        i = first_true(len(k_sizes), lambda i, cg=cg: fits(cg, 1, widths[-1], k_sizes[i]))
        if i == len(k_sizes):
            continue  # not even the smallest tile of this group fits
        kt = k_sizes[i]
        for qb in widths:
            if best is not None and n_c * _cdiv(q, qb) * _cdiv(k, kt) >= best[0]:
                break
            # the most rows the checks every kind shares allow (input bytes and beats, h*w, P*Q): a bound
            # that prunes the cell or the search (the kind's checks can only lower it)
            ww = int(cols_of[qb])
            h_cap = min(min(limits.input_bytes, limits.stream_bytes * reg) // (cg * ww), reg // ww, reg)
            pb_hi = min(int(np.searchsorted(rows_of[1:], h_cap, side="right")), reg // qb, p)
            if pb_hi < 1 or best is not None and n_c * _cdiv(p, pb_hi) * _cdiv(q, qb) * _cdiv(k, kt) >= best[0]:
                continue
            if not fits(cg, 1, qb, kt):
                continue
            pb = pb_hi - first_true(pb_hi, lambda j, cg=cg, qb=qb, kt=kt, top=pb_hi: fits(cg, top - j, qb, kt))
            n = n_c * _cdiv(p, pb) * _cdiv(q, qb) * _cdiv(k, kt)
            if best is None or n < best[0]:
                best = (n, cg, pb, qb, kt)
        if best is not None:
            break  # the fewest channel groups that fit (each group's partial sums go out and back)
    if best is None:
        raise TilingError(f"layer {layer.name!r}: no call fits ({_why(layer, limits, columns, groups)})")
    n, cg, pb, qb, kt = best
    return cg, pb, qb, kt, n


def _why(layer: Layer, lim: CallLimits, columns: bool, groups: bool) -> str:
    """What refuses the smallest call a plan may use (one channel or all, one output pixel or row)."""
    stride, pad = _conv_view(layer)
    cg, qb = (1 if groups else layer.c), (1 if columns else layer.q)
    hh = int(_extent_table(layer.p, stride, pad, layer.h, layer.r)[1])
    ww = int(_extent_table(layer.q, stride, pad, layer.w, layer.s)[qb])
    rule = RULES[lim.kind]
    shape = CallShape(layer, cg, hh, ww, 1, qb, min(layer.k, lim.cols), lim.rows, lim.cols, lim.stream_bytes)
    of = " of one channel" if groups else ""
    if lim.reduction and rule.weight_need(shape) > lim.reduction:
        return f"{rule.weight_unit}{of} = {rule.weight_need(shape)} exceeds the weight bank depth {lim.reduction}"
    if lim.out_pixels and rule.out_lines(shape) > lim.out_pixels:
        return f"{rule.out_lines(shape)} output lines exceed the output bank depth {lim.out_pixels}"
    if cg * hh * ww > lim.input_bytes:
        unit = "pixel" if columns else "row"
        return f"one output {unit}{of} reads {cg * hh * ww} input bytes, a call holds {lim.input_bytes}"
    return f"a configuration register exceeds {lim.register_max}"


@dataclass(frozen=True, slots=True)
class LimitArrays:
    """``CallLimits`` of many designs as arrays of shape (designs,) (``kind``: str, the rest int64)."""

    kind: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    input_bytes: np.ndarray
    out_pixels: np.ndarray
    reduction: np.ndarray
    stream_bytes: np.ndarray
    register_max: np.ndarray
    ids: np.ndarray  # one number per distinct ``CallLimits`` (the planner's memo key)

    @classmethod
    def of(cls, limits: Sequence[CallLimits]) -> LimitArrays:
        """The arrays of a sequence of limits (one entry per design)."""
        if not limits:
            raise TilingError("LimitArrays.of: no limits given (expected at least one CallLimits)")

        def col(name: str) -> np.ndarray:
            return np.array([getattr(lim, name) for lim in limits], dtype=np.int64)

        ids = np.array([_LIMIT_IDS.setdefault(lim, len(_LIMIT_IDS)) for lim in limits], dtype=np.int64)
        ints = {name: col(name) for name in _LIMIT_INTS}
        return cls(kind=np.array([lim.kind for lim in limits]), ids=ids, **ints)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> LimitArrays:
        """The limits of the designs ``idx`` (indices or a boolean mask)."""
        return LimitArrays(*(getattr(self, f)[idx] for f in self.__slots__))

    def expand(self, dims: int) -> LimitArrays:
        """The same limits shaped (designs, 1, ...) with ``dims`` trailing axes, to broadcast on a grid."""
        return LimitArrays(*(getattr(self, f).reshape(-1, *(1,) * dims) for f in self.__slots__))


def _by_kind(lim: LimitArrays) -> list[tuple[KindRule, np.ndarray]]:
    """(rule, design indices) per kind present."""
    return [(RULES[str(kind)], np.flatnonzero(lim.kind == kind)) for kind in np.unique(lim.kind)]


def fits_one_call(layer: Layer, lim: LimitArrays) -> np.ndarray:
    """Per design: ``layer`` runs as one call (``plan_calls`` returns the whole layer); bool (designs,)."""
    _, pad = _conv_view(layer)
    out = np.zeros(len(lim), dtype=bool)
    for rule, idx in _by_kind(lim):
        out[idx] = _fits(
            lim.take(idx), rule, layer, layer.c, layer.h, layer.w, layer.p, layer.q, layer.k, pad * layer.w + pad
        )
    return out


_LIMIT_INTS = ("rows", "cols", "input_bytes", "out_pixels", "reduction", "stream_bytes", "register_max")
_LIMIT_IDS: dict[CallLimits, int] = {}  # never cleared (a memo key); one small entry per distinct design seen
# layer geometry -> (limits ids, sorted; their plans (ids, 5): cg, pb, qb, kt, calls); bounded in rows over all
_PLANS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_PLANS_ROWS = 2_000_000  # ~100 MB of memo: past that a long search starts it over
_PLANS_HELD = [0]  # rows held in _PLANS
_NO_IDS, _NO_ROWS = np.zeros(0, dtype=np.int64), np.zeros((0, 5), dtype=np.int64)


def _geometry_key(layer: Layer) -> tuple:
    """What a plan depends on besides the limits: the layer without its name."""
    dims = (layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, layer.stride_h, layer.stride_w, layer.pad_h)
    return (layer.kind, *dims, layer.pad_w, layer.groups, layer.n, layer.dilation_h, layer.dilation_w)


def band_plans(layer: Layer, lim: LimitArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``plan_calls(layer, limits)`` for every design at once: int64 arrays (designs,) of the channels
    per group ``cg``, the output rows ``pb`` and columns ``qb`` per tile, the filters per call ``kt``
    and the number of calls (all 0: no plan, where ``plan_calls`` raises TilingError). A layer kind
    that is not tiled raises TilingError.

    Each distinct limits (``LimitArrays.ids``) is planned once per layer geometry and kept (a memo
    looked up as arrays): layers repeat across blocks and networks, limits across designs and calls."""
    stride, pad = _conv_view(layer)
    key = _geometry_key(layer)
    ids = lim.ids
    known, table = _PLANS.get(key, (_NO_IDS, _NO_ROWS))
    at = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
    miss = np.flatnonzero(known[at] != ids) if len(known) else np.arange(len(ids))
    if len(miss):
        new_ids, first = np.unique(ids[miss], return_index=True)  # a limits id repeats across designs
        known = np.concatenate([known, new_ids])
        table = np.concatenate([table, _plan_many(layer, lim.take(miss[first]), stride, pad)])
        order = np.argsort(known, kind="stable")
        known, table = known[order], table[order]
        _PLANS_HELD[0] += len(new_ids)
        if _PLANS_HELD[0] > _PLANS_ROWS:
            _PLANS.clear()  # bounded: a long search starts the memo over
            _PLANS_HELD[0] = len(known)
        _PLANS[key] = (known, table)
        at = np.searchsorted(known, ids)
    got = table[at].T.copy()
    return got[0], got[1], got[2], got[3], got[4]


def _plan_many(layer: Layer, lim: LimitArrays, stride: int, pad: int) -> np.ndarray:
    """``band_plans``' rows (designs, 5) for ``lim`` without the memo: the whole layer where it fits
    one call, the kind's search (``_split_plans``) elsewhere."""
    out = np.zeros((len(lim), 5), dtype=np.int64)
    whole = fits_one_call(layer, lim)
    out[whole] = (layer.c, layer.p, layer.q, layer.k, 1)
    rest = np.flatnonzero(~whole)
    for rule, idx in _by_kind(lim.take(rest)) if len(rest) else ():
        out[rest[idx]] = np.column_stack(_split_plans(layer, lim.take(rest[idx]), rule, stride, pad))
    return out


_OPTIONS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # as _PLANS, rows (ids, options, 5)
OPTION_CALLS = 2  # options of more than this many times a design's fewest calls are not compared


def band_options(layer: Layer, lim: LimitArrays) -> np.ndarray:
    """The plans ``cheapest_plan`` compares, for every design at once: int64 (designs, options, 5)
    rows (cg, pb, qb, kt, calls), all 0 where an option does not fit. Option ``i`` is ``plan_calls``'
    search within the ``i``-th channel-group size of ``_tile_sizes(C)`` (largest first): the fewest
    calls over tile widths, each with its largest K tile and tallest tile that fit (ties: the widest).
    The whole layer, when it fits one call, is the only option. A grouping with more calls than one of
    fewer groups, or more than ``OPTION_CALLS`` times the design's fewest calls, is dropped (each call
    reloads its input and weights and pays the array's fill and drain; bounds the cost of comparing),
    except ``band_plans``' plan: the fewest groups, then calls, then the widest tile
    (``cheapest_option``'s tie-break). Memoized per layer geometry and
    limits, as ``band_plans``."""
    stride, pad = _conv_view(layer)
    key = _geometry_key(layer)
    ids = lim.ids
    n_opt = len(_tile_sizes(layer.c))
    known, table = _OPTIONS.get(key, (_NO_IDS, np.zeros((0, n_opt, 5), dtype=np.int64)))
    at = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
    miss = np.flatnonzero(known[at] != ids) if len(known) else np.arange(len(ids))
    if len(miss):
        new_ids, first = np.unique(ids[miss], return_index=True)
        sub = lim.take(miss[first])
        rows = np.zeros((len(sub), n_opt, 5), dtype=np.int64)
        whole = fits_one_call(layer, sub)
        rows[whole, 0] = (layer.c, layer.p, layer.q, layer.k, 1)
        rest = np.flatnonzero(~whole)
        for rule, idx in _by_kind(sub.take(rest)) if len(rest) else ():
            got = _split_plans(layer, sub.take(rest[idx]), rule, stride, pad, per_group=True)
            rows[rest[idx]] = np.stack(got, axis=-1)
        calls = np.where(rows[:, :, 4] > 0, rows[:, :, 4], _NO_PLAN)
        groups = _cdiv(layer.c, np.maximum(rows[:, :, 0], 1))
        first = np.argmin(np.where(calls < _NO_PLAN, groups * (_NO_PLAN // (4 * max(layer.c, 1))) + calls, _NO_PLAN), 1)
        before = np.minimum.accumulate(np.concatenate([np.full((len(rows), 1), _NO_PLAN), calls[:, :-1]], 1), 1)
        far = calls > before  # more calls than a grouping of fewer groups: more partial sums and calls
        far |= calls > OPTION_CALLS * calls.min(axis=1, keepdims=True)  # many more calls: not compared
        far[np.arange(len(rows)), first] = False  # plan_calls' own plan stays an option
        rows[far] = 0
        known = np.concatenate([known, new_ids])
        table = np.concatenate([table, rows])
        order = np.argsort(known, kind="stable")
        known, table = known[order], table[order]
        _PLANS_HELD[0] += len(new_ids)
        if _PLANS_HELD[0] > _PLANS_ROWS:
            _OPTIONS.clear()
            _PLANS_HELD[0] = len(known)
        _OPTIONS[key] = (known, table)
        at = np.searchsorted(known, ids)
    return table[at]


def _build_plan(layer: Layer, cg: int, pb: int, qb: int, kt: int) -> TilingPlan:
    """The calls of ``cg`` channels per group, ``pb x qb`` output tiles and ``kt`` filters per call."""
    stride, pad = _conv_view(layer)
    c, k, h, w, r, s, p, q = layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, layer.p, layer.q
    calls = []
    for p0, p1, h0, h1, top in _spans(p, pb, stride, pad, h, r):
        for q0, q1, w0, w1, left in _spans(q, qb, stride, pad, w, s):
            for k0 in range(0, k, kt):
                for c0 in range(0, c, cg):
                    calls.append(
                        Call(p0, p1, k0, min(k, k0 + kt), h0, h1, top, left, q0, q1, w0, w1, c0, min(c, c0 + cg))
                    )
    return TilingPlan(c, k, h, w, r, s, stride, pad, p, q, tuple(calls))


@lru_cache(maxsize=4096)
def plan_options(layer: Layer, limits: CallLimits) -> tuple[tuple[int, int, int, int, int], ...]:
    """The options of ``band_options`` for one design: (cg, pb, qb, kt, calls) each; TilingError (its
    reason) when no call fits."""
    rows = band_options(layer, LimitArrays.of([limits]))[0]
    out = tuple((cg, pb, qb, kt, n) for cg, pb, qb, kt, n in rows.tolist() if n > 0)
    if not out:
        plan_calls(layer, limits)  # raises the reason
    return out


def option_plan(layer: Layer, option: tuple[int, int, int, int, int]) -> TilingPlan:
    """The plan of an option of ``plan_options`` (one call: the whole layer)."""
    cg, pb, qb, kt, calls = option
    if calls == 1:
        stride, pad = _conv_view(layer)
        return TilingPlan.whole(layer.c, layer.k, layer.h, layer.w, layer.r, layer.s, stride, pad, layer.p, layer.q)
    return _build_plan(layer, cg, pb, qb, kt)


def cheapest_option(
    layer: Layer, limits: CallLimits, cycles: Callable[[tuple[int, int, int, int, int]], float]
) -> TilingPlan:
    """The plan of the option of ``plan_options`` that takes the fewest cycles by ``cycles`` (the
    caller's cost of an option: the cycle simulator's, by its distinct calls; ``sim.tiled`` does the
    same on the analytical model's arrays); ties go to ``plan_calls``' rule (fewest channel groups,
    then calls, then the widest tile). A plan that fits a smaller buffer fits a bigger one: minimizing
    cycles over the plans that fit, not calls, a bigger buffer does not pick a slower plan where the
    smaller one's is among its options (a cell's tallest tile and largest K tile grow with the buffer)."""
    options = plan_options(layer, limits)
    if len(options) == 1:
        return option_plan(layer, options[0])
    keys = [(cycles(o), _cdiv(layer.c, o[0]), o[4], i) for i, o in enumerate(options)]
    return option_plan(layer, options[min(keys)[-1]])


def cheapest_plan(layer: Layer, limits: CallLimits, plan_cycles: Callable[[TilingPlan], float]) -> TilingPlan:
    """``cheapest_option`` with a plan's cost (the RTL host's timing model over the plan's calls)."""
    return cheapest_option(layer, limits, lambda option: plan_cycles(option_plan(layer, option)))


@lru_cache(maxsize=65536)
def call_shapes(layer: Layer, cg: int, pb: int, qb: int, kt: int) -> tuple[tuple[int, ...], ...]:
    """(channels, filters, output rows, input rows held, output columns, input columns held, count)
    of every distinct call of the plan (``_spans``: a tile at the padded edge holds fewer input rows
    or columns than its windows span)."""
    stride, pad = layer.stride_h, layer.pad_h
    rows = _span_counts(layer.p, pb, stride, pad, layer.h, layer.r)
    cols = _span_counts(layer.q, qb, stride, pad, layer.w, layer.s)
    chans, filters = _split_counts(layer.c, cg), _split_counts(layer.k, kt)
    return tuple(
        (c, k, po, ph, qo, qw, nc * nk * npr * nq)
        for c, nc in chans
        for k, nk in filters
        for po, ph, npr in rows
        for qo, qw, nq in cols
    )


@lru_cache(maxsize=16384)
def _span_counts(
    n_out: int, tile: int, stride: int, pad: int, size: int, kernel: int
) -> tuple[tuple[int, int, int], ...]:
    """(outputs, inputs held, count) of the distinct tiles of ``_spans``, in order of first appearance."""
    counts = Counter((o1 - o0, i1 - i0) for o0, o1, i0, i1, _ in _spans(n_out, tile, stride, pad, size, kernel))
    return tuple((o, i, n) for (o, i), n in counts.items())


@lru_cache(maxsize=16384)
def _split_counts(total: int, part: int) -> tuple[tuple[int, int], ...]:
    """(size, count) of the distinct pieces of ``total`` cut into ``part``-sized pieces, in order."""
    return tuple(Counter(min(part, total - x0) for x0 in range(0, total, part)).items())


def _split_plans(
    layer: Layer, lim: LimitArrays, rule: KindRule, stride: int, pad: int, per_group: bool = False
) -> tuple[np.ndarray, ...]:
    """``plan_shape``'s search for designs of one kind where the whole layer does not fit one call, as
    a grid (designs x channel groups x tile widths): the K tile per (design, group) by bisection; the
    tile widths whose one-row tile fits, a suffix of the widths (every check grows with the width), by
    bisection; the tallest tile per cell in closed form (``TILE_CAPS``; by bisection for a kind
    without one); then the first grouping (largest groups first) with a plan and in it the first
    width with the fewest calls, the scalar planner's order (so ties break alike)."""
    c, k, p, q, n = layer.c, layer.k, layer.p, layer.q, len(lim)
    rows_of = _extent_table(p, stride, pad, layer.h, layer.r)
    cols_of = _extent_table(q, stride, pad, layer.w, layer.s)
    cgs, qbs = _tile_array(c), _tile_array(q)
    n_w = len(qbs)
    lim3 = lim.expand(2)
    h1, n_g = int(rows_of[1]), len(cgs)
    # (design, group) entries, flat: the searches below evaluate only the entries still searching
    d_of, g_of = np.divmod(np.arange(n * n_g), n_g)
    # the K tile per (design, group): the first of k, (M-1)*cols, ..., cols (M column folds) that the
    # group's smallest tile (one output row of the narrowest width) fits with, by bisection
    n_k = _cdiv(k, lim.cols)[d_of]  # len(_k_sizes)
    ww1, qb1 = int(cols_of[qbs[-1]]), int(qbs[-1])

    def kt_at(e: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.where(i == 0, k, (n_k[e] - i) * lim.cols[d_of[e]])

    def fits_k(e: np.ndarray, i: np.ndarray) -> np.ndarray:
        sub = lim.take(d_of[e])
        return _fits(sub, rule, layer, cgs[g_of[e]], h1, ww1, 1, qb1, kt_at(e, i), pad * ww1 + pad)

    every = np.arange(n * n_g)
    full = fits_k(every, np.zeros(n * n_g, dtype=np.int64))  # the common case: all K in one call
    first_k = _first_true(np.where(full, 0, 1), np.where(full, 0, n_k), fits_k)  # n_k: none fits
    has_k = first_k < n_k
    kt_flat = np.where(has_k, kt_at(every, np.minimum(first_k, n_k - 1)), 1)

    # the widest tile whose one-row tile fits with that K tile, per (design, group): every check grows
    # with the width, so the widths that fit are those from it on (the narrowest fits where has_k)
    def fits_w(e: np.ndarray, j: np.ndarray) -> np.ndarray:
        ww = cols_of[qbs[j]]
        sub = lim.take(d_of[e])
        return _fits(sub, rule, layer, cgs[g_of[e]], h1, ww, 1, qbs[j], kt_flat[e], pad * ww + pad)

    on = np.flatnonzero(has_k)
    first_w = np.full(n * n_g, n_w, dtype=np.int64)
    if len(on):
        top = fits_w(on, np.zeros(len(on), dtype=np.int64))  # the widest first: often the answer
        first_w[on] = np.where(top, 0, 1)
        last = np.full(n * n_g, n_w - 1, dtype=np.int64)
        last[on] = np.where(top, 0, n_w - 1)
        first_w[on] = _first_true(first_w, last, fits_w, on)[on]
    has_k, kt2 = has_k.reshape(n, n_g), kt_flat.reshape(n, n_g)
    ok1 = np.arange(n_w)[None, None, :] >= first_w.reshape(n, n_g)[:, :, None]  # (designs, groups, widths)
    # the tallest tile per cell: every check that grows with it bounds the input rows it holds (on the
    # running-maximum table by a sorted search) or its output rows
    cg3, qb3, kt = cgs[None, :, None], qbs[None, None, :], kt2[:, :, None]
    ww = cols_of[qbs][None, None, :]
    reg = lim3.register_max
    words_cap = np.minimum(lim3.input_bytes, lim3.stream_bytes * reg)  # the input and its beats register
    h_max = np.minimum(words_cap // (cg3 * ww), np.minimum(reg // ww, reg))
    p_max = np.minimum(reg // qb3, p)
    cap = TILE_CAPS.get(rule.name)
    if cap is not None:  # and the kind's own: no search
        p_cap, h_cap = cap(lim3, CallShape(layer, cg3, 1, ww, 1, qb3, kt, lim3.rows, lim3.cols, lim3.stream_bytes))
        h_max, p_max = np.minimum(h_max, h_cap), np.minimum(p_max, p_cap)
    lo = np.minimum(np.searchsorted(rows_of[1:], h_max, side="right"), p_max)
    if cap is None:  # the kind's checks by bisection, from the common bound (often the answer: tried first)

        def fits_p(pb: np.ndarray) -> np.ndarray:
            return _fits(lim3, rule, layer, cg3, rows_of[pb], ww, pb, qb3, kt, pad * ww + pad)

        hi = np.maximum(lo, 1)
        top = ok1 & fits_p(hi)
        lo = np.where(top, hi, 1)
        while (act := ok1 & (lo < hi)).any():
            mid = (lo + hi + 1) // 2
            ok = fits_p(mid)
            lo, hi = np.where(act & ok, mid, lo), np.where(act & ~ok, mid - 1, hi)
    n_ck = _cdiv(c, cg3) * _cdiv(k, kt)  # (designs, groups, 1)
    calls = np.where(ok1, n_ck * _cdiv(q, qb3) * _cdiv(p, np.maximum(lo, 1)), _NO_PLAN).reshape(n, -1)
    grid = calls.reshape(n, -1, n_w)
    if per_group:  # every grouping's fewest-call plan, widest first (``band_options``): (designs, groupings)
        at_g = np.arange(n_g)[None, :] * n_w + np.argmin(grid, axis=2)
        best_g = np.take_along_axis(calls, at_g, axis=1)
        pb_g = np.take_along_axis(lo.reshape(n, -1), at_g, axis=1)
        pick_g = (np.broadcast_to(cgs, (n, n_g)), pb_g, qbs[at_g % n_w], kt2, best_g)
        return tuple(np.where(best_g != _NO_PLAN, x, 0) for x in pick_g)
    g_first = np.argmax((grid != _NO_PLAN).any(axis=2), axis=1)  # the fewest channel groups with a plan
    every = np.arange(n)
    at = g_first * n_w + np.argmin(grid[every, g_first], axis=1)  # then the fewest calls, widest first
    best = calls[every, at]
    found = best != _NO_PLAN
    g, wi = np.divmod(at, n_w)
    pick = (cgs[g], lo.reshape(n, -1)[every, at], qbs[wi], kt2[every, g], best)
    assert (pick[1][found] > 0).all(), f"{rule.name}: a TILE_CAPS entry refuses a tile its rule's checks allow"
    return tuple(np.where(found, x, 0) for x in pick)


def _first_true(lo: np.ndarray, hi: np.ndarray, ok: Any, on: np.ndarray | None = None) -> np.ndarray:
    """Per entry of ``lo``/``hi`` (flat int64 arrays; only the entries ``on``, all by default), the
    least ``i`` in ``[lo, hi]`` with ``ok(entries, i)`` (monotone: false, then true; ``hi`` taken as
    true, never evaluated), by bisection over the entries still searching only."""
    lo, hi = lo.copy(), hi.copy()
    e = np.flatnonzero(lo < hi) if on is None else on[lo[on] < hi[on]]
    while len(e):
        mid = (lo[e] + hi[e]) // 2
        good = ok(e, mid)
        hi[e[good]] = mid[good]
        lo[e[~good]] = mid[~good] + 1
        e = e[lo[e] < hi[e]]
    return hi
