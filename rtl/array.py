"""PE arrays: a grid of PEs wired as a systolic array.

``stages`` (``RtlParams.pe_stages``, 0..2) is the data path's pipeline: stage 1 registers each PE's
product (``rtl.pe``), stage 2 also registers the operands entering the array at its edges (after the
scratchpad read and byte select). Each stage delays every result by one cycle, uniformly across the
array, so the timing formulas charge it once per fold (``fill: ... + stages``).
"""

from __future__ import annotations

from typing import Any

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from coexplore.rtl.params import RtlError
from coexplore.rtl.pe import OsPE, WsPE


def _split(stages: int) -> tuple[int, int]:
    """(PE stages, edge register stages) of ``stages``."""
    if stages not in (0, 1, 2):
        raise RtlError(f"pe_stages={stages!r}: expected 0, 1 (product register) or 2 (and edge operand registers)")
    return min(stages, 1), max(stages - 1, 0)


def _edge(m: Module, value: Any, edge_stages: int, name: str) -> Any:
    """``value`` through ``edge_stages`` registers (the operand's entry into the array)."""
    for n in range(edge_stages):
        reg = Signal.like(value, name=f"{name}_e{n}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class WsArray(wiring.Component):
    """``rows`` x ``cols`` weight-stationary systolic array.

    Row i's input enters at the left (``a_in[i]``) and moves right one PE per cycle; column j's
    partial sum enters at the top (``psum_in[j]``) and moves down, leaving at ``psum_out[j]``.
    ``w_we[i]`` loads ``w_row`` (one weight per column) into row i's stationary registers.
    """

    def __init__(
        self, rows: int, cols: int, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32, stages: int = 0
    ) -> None:
        self.rows, self.cols = rows, cols
        self._bits = (input_bits, weight_bits, acc_bits)
        self._pe_stages, self._edge_stages = _split(stages)
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
        pes = [[WsPE(*self._bits, stages=self._pe_stages) for _ in range(self.cols)] for _ in range(self.rows)]
        a_edge = [_edge(m, self.a_in[i], self._edge_stages, f"a_{i}") for i in range(self.rows)]
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(a_edge[i] if j == 0 else pes[i][j - 1].a_out),
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

    def __init__(
        self, rows: int, cols: int, input_bits: int = 8, weight_bits: int = 8, acc_bits: int = 32, stages: int = 0
    ) -> None:
        self.rows, self.cols = rows, cols
        self._bits = (input_bits, weight_bits, acc_bits)
        self._pe_stages, self._edge_stages = _split(stages)
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
        pes = [[OsPE(*self._bits, stages=self._pe_stages) for _ in range(self.cols)] for _ in range(self.rows)]
        es = self._edge_stages
        a_edge = [_edge(m, self.a_in[i], es, f"a_{i}") for i in range(self.rows)]
        clr_edge = [_edge(m, self.clr_in[i], es, f"clr_{i}") for i in range(self.rows)]
        b_edge = [_edge(m, self.b_in[j], es, f"b_{j}") for j in range(self.cols)]
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.a_in.eq(a_edge[i] if j == 0 else pes[i][j - 1].a_out),
                    pe.clr_in.eq(clr_edge[i] if j == 0 else pes[i][j - 1].clr_out),
                    pe.b_in.eq(b_edge[j] if i == 0 else pes[i - 1][j].b_out),
                    self.acc[i][j].eq(pe.acc),
                ]
        return m
