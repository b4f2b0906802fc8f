"""PE arrays: a grid of PEs wired as a systolic array."""

from __future__ import annotations

from amaranth import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from coexplore.rtl.pe import OsPE, WsPE


class WsArray(wiring.Component):
    """``rows`` x ``cols`` weight-stationary systolic array.

    Row i's input enters at the left (``a_in[i]``) and moves right one PE per cycle; column j's
    partial sum enters at the top (``psum_in[j]``) and moves down, leaving at ``psum_out[j]``.
    ``w_we[i]`` loads ``w_row`` (one weight per column) into row i's stationary registers.
    """

    def __init__(self, rows: int, cols: int, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32) -> None:
        self.rows, self.cols = rows, cols
        self._bits = (input_bits, weight_bits, acc_bits)
        super().__init__(
            {
                "a_in": In(signed(input_bits)).array(rows),
                "psum_in": In(signed(acc_bits)).array(cols),
                "psum_out": Out(signed(acc_bits)).array(cols),
                "w_row": In(signed(weight_bits)).array(cols),
                "w_we": In(unsigned(rows)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pes = [[WsPE(*self._bits) for _ in range(self.cols)] for _ in range(self.rows)]
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(self.a_in[i] if j == 0 else pes[i][j - 1].a_out),
                    pe.psum_in.eq(self.psum_in[j] if i == 0 else pes[i - 1][j].psum_out),
                    pe.w_in.eq(self.w_row[j]),
                    pe.w_we.eq(self.w_we[i]),
                ]
        for j in range(self.cols):
            m.d.comb += self.psum_out[j].eq(pes[self.rows - 1][j].psum_out)
        return m


class OsArray(wiring.Component):
    """``rows`` x ``cols`` output-stationary systolic array: inputs move right, weights move down,
    each PE keeps one accumulator; ``clr`` travels with the operands to start a new sum."""

    def __init__(self, rows: int, cols: int, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32) -> None:
        self.rows, self.cols = rows, cols
        self._bits = (input_bits, weight_bits, acc_bits)
        super().__init__(
            {
                "a_in": In(signed(input_bits)).array(rows),
                "clr_in": In(unsigned(rows)),
                "b_in": In(signed(weight_bits)).array(cols),
                "acc": Out(signed(acc_bits)).array(rows, cols),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pes = [[OsPE(*self._bits) for _ in range(self.cols)] for _ in range(self.rows)]
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(self.a_in[i] if j == 0 else pes[i][j - 1].a_out),
                    pe.clr_in.eq(self.clr_in[i] if j == 0 else pes[i][j - 1].clr_out),
                    pe.b_in.eq(self.b_in[j] if i == 0 else pes[i - 1][j].b_out),
                    self.acc[i][j].eq(pe.acc),
                ]
        return m
