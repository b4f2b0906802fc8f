"""Processing elements: one multiply-accumulate each, int8 x int8 -> acc_bits by default.

``stages`` (0 or 1) is the PE's pipeline: 0 multiplies and accumulates in one cycle; 1 registers the
product between the multiplier and the adder (the ECP5 critical path; docs/rtl.md "Synthesis"), so
every sum leaves one cycle later. The arrays (``rtl.array``) add the rest of ``pe_stages``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from coexplore.rtl.params import RtlError


def _check_stages(stages: int) -> int:
    if stages not in (0, 1):
        raise RtlError(f"PE stages={stages!r}: expected 0 (one-cycle MAC) or 1 (product register)")
    return stages


class WsPE(wiring.Component):
    """Weight-stationary systolic PE: holds one weight; inputs move right, partial sums move down.

    ``psum_out <= psum_in + a_in * weight`` and ``a_out <= a_in`` every cycle; ``w_we`` loads
    ``w_in`` into the stationary weight register. With ``stages = 1`` the product is registered
    first (``prod <= a_in * weight``; ``psum_out <= psum_in + prod``): the partial sum from above must
    then arrive one cycle after the input, which the whole array's one-cycle shift provides.
    """

    def __init__(self, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32, stages: int = 0) -> None:
        self._acc_bits = acc_bits
        self._stages = _check_stages(stages)
        super().__init__(
            {
                "a_in": In(signed(input_bits)),
                "a_out": Out(signed(input_bits)),
                "psum_in": In(signed(acc_bits)),
                "psum_out": Out(signed(acc_bits)),
                "w_in": In(signed(weight_bits)),
                "w_we": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        w = Signal(self.w_in.shape())
        with m.If(self.w_we):
            m.d.sync += w.eq(self.w_in)
        product = self.a_in * w
        if self._stages:
            prod_q = Signal(signed(len(self.a_in) + len(w)))
            m.d.sync += prod_q.eq(product)
            product = prod_q
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.psum_out.eq((self.psum_in + product)[: self._acc_bits].as_signed()),
        ]
        return m


class OsPE(wiring.Component):
    """Output-stationary systolic PE: inputs move right, weights move down, the sum stays.

    ``acc <= (clear ? 0 : acc) + a_in * b_in``; ``clear`` and ``en`` travel with the operands so a
    new accumulation starts in the same wavefront as its first operands. With ``stages = 1`` the
    product and its ``clear`` are registered first, so ``acc`` is final one cycle later.
    """

    def __init__(self, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32, stages: int = 0) -> None:
        self._acc_bits = acc_bits
        self._stages = _check_stages(stages)
        super().__init__(
            {
                "a_in": In(signed(input_bits)),
                "a_out": Out(signed(input_bits)),
                "b_in": In(signed(weight_bits)),
                "b_out": Out(signed(weight_bits)),
                "clr_in": In(1),
                "clr_out": Out(1),
                "acc": Out(signed(acc_bits)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in), self.clr_out.eq(self.clr_in)]
        product, clear = self.a_in * self.b_in, self.clr_in
        if self._stages:
            prod_q = Signal(signed(len(self.a_in) + len(self.b_in)))
            clr_q = Signal()
            m.d.sync += [prod_q.eq(product), clr_q.eq(clear)]
            product, clear = prod_q, clr_q
        base = Mux(clear, 0, self.acc)
        m.d.sync += self.acc.eq((base + product)[: self._acc_bits].as_signed())
        return m
