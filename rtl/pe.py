"""Processing elements: one multiply-accumulate each, int8 x int8 -> acc_bits by default."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class WsPE(wiring.Component):
    """Weight-stationary systolic PE: holds one weight; inputs move right, partial sums move down.

    ``psum_out <= psum_in + a_in * weight`` and ``a_out <= a_in`` every cycle; ``w_we`` loads
    ``w_in`` into the stationary weight register.
    """

    def __init__(self, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32) -> None:
        self._acc_bits = acc_bits
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
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.psum_out.eq((self.psum_in + self.a_in * w)[: self._acc_bits].as_signed()),
        ]
        return m


class OsPE(wiring.Component):
    """Output-stationary systolic PE: inputs move right, weights move down, the sum stays.

    ``acc <= (clear ? 0 : acc) + a_in * b_in``; ``clear`` and ``en`` travel with the operands so a
    new accumulation starts in the same wavefront as its first operands.
    """

    def __init__(self, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32) -> None:
        self._acc_bits = acc_bits
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
        base = Mux(self.clr_in, 0, self.acc)
        m.d.sync += self.acc.eq((base + self.a_in * self.b_in)[: self._acc_bits].as_signed())
        return m
