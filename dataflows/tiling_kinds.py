"""Per-kind rules of host-side tiling for the generated nvdla, shidiannao (sdn), systolic-is and
eyeriss (rs) arrays (``dataflows.tiling``, whose ``RULES`` holds these beside ws and os; docs/rtl.md,
"Whole networks").

One entry per hardware kind says, from an ``Accelerator`` alone (dataflows imports no RTL), what one
call of that kind's generated array holds and how the call folds:

* ``sizes``: input replicas and the bank limits of ``CallLimits`` (``limit_fields``; the same numbers
  as the kind's ``rtl.*_program.call_limits`` through ``rtl.params.params_from_accelerator``:
  tests/rtl/test_tiling_kinds.py holds ``call_limits(acc) == limits_of(params)``);
* ``out_lines``: what must fit the output bank half (``CallLimits.out_pixels``; 0: no check);
* ``weight_need``: what must fit the weight bank (``CallLimits.reduction``; 0: no check);
* ``folds``: the fold-count register of one call (every fold of the call, column folds included);
* ``registers``: the kind's own configuration registers that grow with the call (16 bits each);
* ``refuses``: layers the kind's hardware refuses outright (sdn: a stride above 4).

Per kind (``rows x cols`` PEs, a call of ``c`` channels of ``h x w`` input pixels, ``p x q`` output
pixels, ``k`` filters; the input replicas share the ifmap budget):

=====  ========  =========  =========================  ===========================================
kind   replicas  out bank   weight bank                folds
=====  ========  =========  =========================  ===========================================
nvdla  rows      P*Q lines  R*S taps (PE registers)    ceil(C/rows) * ceil(K/cols)
sdn    rows      -          conv: ceil(C*R*S/beat)     conv: K * ceil(Q/cols) * ceil(P/rows)
                            GEMM: C lines of cols B    GEMM: ceil(K/cols) * ceil(P/rows)
is     cols      K lines    K x min(rows, C*R*S) B     ceil(C*R*S/rows) * ceil(P*Q/cols)
rs     rows*cols Q lines    S <= 8 (a filter row)      K * ceil(P/cols) * ceil(C/ec) * ceil(R/er)
=====  ========  =========  =========================  ===========================================

The functions take ints or numpy int64 arrays (one entry per design) alike, so the vectorized
planner (``band_plans``) uses the same definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coexplore.dataflows.spec import Accelerator, Interconnect, Operand
from coexplore.models.ir import Dim, Layer

REGISTER_MAX = (1 << 16) - 1  # as dataflows.tiling: the configuration registers are 16 bits wide
NVDLA_MAX_TAPS = 9  # rtl.nvdla_program.NVDLA_MAX_TAPS: taps a PE's weight register file holds
SDN_MAX_STRIDE = 4  # rtl.sdn_program.SDN_MAX_STRIDE: the largest stride the sdn input select has
RS_MAX_S = 8  # rtl.params.RS_MAX_S: the widest filter row a row-stationary PE holds

Num = Any  # an int or an int64 numpy array (one entry per design)


def _cdiv(a: Num, b: Num) -> Num:
    return -(-a // b)


def _min(a: Num, b: Num) -> Num:
    return np.minimum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else min(a, b)


def _max(a: Num, b: Num) -> Num:
    return np.maximum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else max(a, b)


def is_gemm(layer: Layer) -> bool:
    """A layer the sdn array runs with its GEMM mapping (``rtl.sdn_program.is_gemm``: a 1x1 conv
    over an ``M x 1`` image, as a linear layer's conv view is)."""
    return (
        layer.w == 1
        and layer.q == 1
        and layer.r == 1
        and layer.s == 1
        and layer.stride_h == 1
        and layer.pad_h == 0
        and layer.pad_w == 0
    )


@dataclass(frozen=True, slots=True)
class Sizes:
    """A kind's per-call sizes from an accelerator: replicas of the input, output-bank limit and
    weight-bank limit (the meaning of the last two is the kind's ``out_lines`` / ``weight_need``)."""

    replicas: int
    out_limit: int
    weight_limit: int


@dataclass(frozen=True, slots=True)
class CallShape:
    """One call as the rules see it: ``c`` input channels of ``h x w`` pixels, ``p x q`` output
    pixels, ``k`` filters (ints, or int64 arrays over designs), and the array and stream of its
    design (``rows``, ``cols``, ``stream``: a ``CallLimits``' or ``LimitArrays``' fields)."""

    layer: Layer
    c: Num
    h: Num
    w: Num
    p: Num
    q: Num
    k: Num
    rows: Num
    cols: Num
    stream: Num

    @property
    def red(self) -> Num:
        return self.c * self.layer.r * self.layer.s


@dataclass(frozen=True, slots=True)
class KindRule:
    """How one kind's call is limited and folded (see the module docstring)."""

    name: str
    structure: tuple[Operand, Interconnect, tuple[Dim, ...], tuple[Dim, ...]]  # stationary, links, rows, cols
    sizes: Callable[[Accelerator, int], Sizes]  # (accelerator, stream bytes)
    out_lines: Callable[[CallShape], Num]  # lines in the output bank half (checked when out_limit > 0)
    weight_need: Callable[[CallShape], Num]  # what the weight bank holds (checked when weight_limit > 0)
    folds: Callable[[CallShape], Num]  # the fold-count register (every fold of the call)
    registers: Callable[[CallShape], tuple[Num, ...]]  # the kind's own registers that grow with the call
    weight_unit: str  # what ``weight_need`` counts (refusal messages)
    refuses: Callable[[CallShape], Num] = lambda s: False  # calls the kind's hardware refuses outright


def _out_bytes(acc: Accelerator) -> int:
    return -(-acc.acc_bits // 8)


def _out_depth(acc: Accelerator) -> int:
    """Lines of one output-bank half: half the ofmap budget over ``cols`` accumulators."""
    return min(int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * _out_bytes(acc)), REGISTER_MAX)


# ---- nvdla: C on rows, K on columns, an adder tree per column; P*Q*R*S steps per fold -------------
def _nvdla_sizes(acc: Accelerator, stream: int) -> Sizes:
    line = _cdiv(acc.cols, stream) * stream
    taps = max(1, min(NVDLA_MAX_TAPS, int(acc.filter_sram_kb * 1024) // (2 * acc.rows * line)))
    return Sizes(acc.rows, _out_depth(acc), min(acc.rows * taps, REGISTER_MAX) // acc.rows)


def _nvdla_registers(s: CallShape) -> tuple[Num, ...]:
    return (s.p * s.q * s.layer.r * s.layer.s, s.c * s.h * s.w)  # t (steps per fold), chw


# ---- sdn: output rows x columns (conv; K outer), tokens x K (GEMM); weights broadcast ---------------
def _sdn_sizes(acc: Accelerator, stream: int) -> Sizes:
    return Sizes(acc.rows, 0, min(int(acc.filter_sram_kb * 1024) // (2 * stream), REGISTER_MAX))


def _sdn_weight_need(s: CallShape) -> Num:
    """Beats of one weight tile: a filter (conv) or ``C`` lines of ``cols`` bytes (GEMM)."""
    if is_gemm(s.layer):
        return s.c * _cdiv(s.cols, s.stream)
    return _cdiv(s.red, s.stream)


def _sdn_folds(s: CallShape) -> Num:
    if is_gemm(s.layer):
        return _cdiv(s.k, s.cols) * _cdiv(s.p, s.rows)
    return s.k * _cdiv(s.q, s.cols) * _cdiv(s.p, s.rows)


def _sdn_refuses(s: CallShape) -> Num:
    """A stride above ``SDN_MAX_STRIDE`` (``rtl.sdn_program.check_layer`` refuses it). A conv call of
    the GEMM's shape (a one-column tile of a 1x1 conv) runs the conv mapping (``rtl.sdn_program.call_view``)."""
    return s.layer.stride_h > SDN_MAX_STRIDE


def _sdn_registers(s: CallShape) -> tuple[Num, ...]:
    stride = s.layer.stride_h
    return (s.rows * stride * s.w, s.cols * stride, _sdn_weight_need(s))  # base_step, q_step, lw


# ---- is: C*R*S on rows, output pixels on columns, the K filters stream ---------------------------------
def _is_sizes(acc: Accelerator, stream: int) -> Sizes:
    depth = min(int(acc.filter_sram_kb * 1024) // (2 * stream), REGISTER_MAX)
    return Sizes(acc.cols, _out_depth(acc), depth * stream)


def _is_weight_need(s: CallShape) -> Num:
    """Bytes of one dense weight tile: K lines of the row fold's reduction indices."""
    return s.k * _min(s.rows, s.red)


def _is_registers(s: CallShape) -> tuple[Num, ...]:
    return (s.c * s.h * s.w, _cdiv(_is_weight_need(s), s.stream))  # chw, lw


# ---- rs: filter rows x channels on rows (nested), output rows on columns, Q*S steps per fold ----------
def _rs_sizes(acc: Accelerator, stream: int) -> Sizes:
    """One replica per PE; output banks of Q lines; a filter row of at most ``RS_MAX_S`` taps."""
    return Sizes(acc.rows * acc.cols, _out_depth(acc), RS_MAX_S)


def _rs_split(s: CallShape) -> tuple[Num, Num]:
    """(er, ec): filter rows and channels one fold puts on the array rows (``rtl.rs_program.split``)."""
    er = _max(_min(s.layer.r, s.rows), 1)
    return er, _max(_min(s.c, _max(s.rows // er, 1)), 1)


def _rs_folds(s: CallShape) -> Num:
    er, ec = _rs_split(s)
    return s.k * _cdiv(s.p, s.cols) * _cdiv(s.c, ec) * _cdiv(s.layer.r, er)


def _rs_registers(s: CallShape) -> tuple[Num, ...]:
    er, ec = _rs_split(s)
    stride = s.layer.stride_h
    # er_w, ec_hw, ca_stride_w, n_tiles, t (Q*S steps)
    return (er * s.w, ec * s.h * s.w, s.cols * stride * s.w, s.k * _cdiv(s.p, s.cols), s.q * s.layer.s)


RULES: dict[str, KindRule] = {
    "nvdla": KindRule(
        "nvdla",
        (Operand.WEIGHT, Interconnect.BROADCAST, (Dim.C,), (Dim.K,)),
        _nvdla_sizes,
        out_lines=lambda s: s.p * s.q,
        weight_need=lambda s: s.layer.r * s.layer.s,
        folds=lambda s: _cdiv(s.c, s.rows) * _cdiv(s.k, s.cols),
        registers=_nvdla_registers,
        weight_unit="R*S taps per PE",
    ),
    "sdn": KindRule(
        "sdn",
        (Operand.OUTPUT, Interconnect.BROADCAST, (Dim.P,), (Dim.Q,)),
        _sdn_sizes,
        out_lines=lambda s: 0,
        weight_need=_sdn_weight_need,
        folds=_sdn_folds,
        registers=_sdn_registers,
        weight_unit="weight-tile beats",
        refuses=_sdn_refuses,
    ),
    "is": KindRule(
        "is",
        (Operand.INPUT, Interconnect.SYSTOLIC, (Dim.C, Dim.R, Dim.S), (Dim.N, Dim.P, Dim.Q)),
        _is_sizes,
        out_lines=lambda s: s.k,
        weight_need=_is_weight_need,
        folds=lambda s: _cdiv(s.red, s.rows) * _cdiv(s.p * s.q, s.cols),
        registers=_is_registers,
        weight_unit="weight-tile bytes (K x rows)",
    ),
    "rs": KindRule(
        "rs",
        (Operand.WEIGHT, Interconnect.BROADCAST, (Dim.R, Dim.C), (Dim.P,)),
        _rs_sizes,
        out_lines=lambda s: s.q,
        weight_need=lambda s: s.layer.s,
        folds=_rs_folds,
        registers=_rs_registers,
        weight_unit="filter width S",
    ),
}


def limit_fields(rule: KindRule, acc: Accelerator, stream: int) -> dict[str, int]:
    """``CallLimits``' sizes of ``acc`` (besides kind, rows, cols, stream): the call's input in one
    replica and half the ifmap budget, and the kind's output- and weight-bank limits."""
    size = rule.sizes(acc, stream)
    replica = (int(acc.ifmap_sram_kb * 1024) // size.replicas) // stream * stream
    replica = min(replica, REGISTER_MAX // stream * stream)
    return {
        "input_bytes": min(replica, replica * size.replicas // 2),
        "out_pixels": size.out_limit,
        "reduction": size.weight_limit,
    }


def kind_fits(rule: KindRule, shape: CallShape, lim: Any) -> Num:
    """The kind's own checks of one call (bool, or a bool array over designs): output bank, weight
    bank and the kind's registers; ``lim`` is a ``CallLimits`` or ``LimitArrays`` (same field names)."""
    ok = np.logical_not(rule.refuses(shape)) & ((lim.out_pixels == 0) | (rule.out_lines(shape) <= lim.out_pixels))
    ok = ok & ((lim.reduction == 0) | (rule.weight_need(shape) <= lim.reduction))
    for value in rule.registers(shape):
        ok = ok & (value <= lim.register_max)
    return ok


# ---- tile caps (dataflows.tiling.TILE_CAPS; a separate block kept by the planner's owner) ---------------
# Per kind, the kind's own checks that grow with a call's output rows ``p`` (or the input rows ``h`` it
# holds) solved for ``p`` and ``h``, given the call's other sizes (``s.p``, ``s.h`` unused): the
# vectorized planner then sizes a tile's height in closed form, no bisection. Every check of the rule
# above that involves ``p`` or ``h`` must appear here; tests/sim/test_tiled*.py hold ``band_plans``
# equal to the scalar ``plan_calls`` (which uses the rules alone), so a missing one fails there.
def _nvdla_caps(lim: Any, s: CallShape) -> tuple[Num, Num]:
    """out_lines P*Q <= out bank; t = P*Q*R*S <= reg; chw = C*h*W <= reg."""
    reg = lim.register_max
    pixels = np.minimum(np.where(lim.out_pixels > 0, lim.out_pixels, reg), reg // (s.layer.r * s.layer.s))
    return pixels // s.q, reg // (s.c * s.w)


def _sdn_caps(lim: Any, s: CallShape) -> tuple[Num, Num]:
    """folds = (K * ceil(Q/cols) | ceil(K/cols)) * ceil(P/rows) <= reg."""
    per_row_fold = _cdiv(s.k, s.cols) if is_gemm(s.layer) else s.k * _cdiv(s.q, s.cols)
    return s.rows * (lim.register_max // per_row_fold), lim.register_max


def _is_caps(lim: Any, s: CallShape) -> tuple[Num, Num]:
    """folds = ceil(C*R*S/rows) * ceil(P*Q/cols) <= reg; chw = C*h*W <= reg."""
    reg = lim.register_max
    return s.cols * (reg // _cdiv(s.red, s.rows)) // s.q, reg // (s.c * s.w)


def _rs_caps(lim: Any, s: CallShape) -> tuple[Num, Num]:
    """folds = K * ceil(P/cols) * ceil(C/ec) * ceil(R/er) <= reg (n_tiles = K * ceil(P/cols) is
    smaller); ec_hw = ec*h*W <= reg."""
    er, ec = _rs_split(s)
    reg = lim.register_max
    return s.cols * (reg // (s.k * _cdiv(s.c, ec) * _cdiv(s.layer.r, er))), reg // (ec * s.w)


TILE_CAPS: dict[str, Callable[[Any, CallShape], tuple[Num, Num]]] = {
    "nvdla": _nvdla_caps,
    "sdn": _sdn_caps,
    "is": _is_caps,
    "rs": _rs_caps,
}
