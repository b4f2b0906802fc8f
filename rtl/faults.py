"""Test-only fault injection: a broken accelerator of any kind, to show the verification fails.

Nothing in the production path reads a fault: ``FaultyParams`` (a subclass of ``RtlParams`` with
a ``fault`` field, so its Verilog gets its own cache entry and module name) builds the normal
component of its kind and wraps it in ``FaultyAccelerator``, which damages one port:
- ``flip_bit``: bit 0 of every output beat is inverted (column 0's results are wrong): the
  bit-exact check must fail;
- ``slow_drain``: every output beat is offered one cycle late (the results stay right, the run
  takes longer and the cycle counter agrees with the bench): only the cycle-exact check fails.
Used by tests/rtl and ``benchmarks/bench_rtl.py --faults``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from coexplore.rtl.params import RtlError, RtlParams

FAULTS = ("flip_bit", "slow_drain")


@dataclass(frozen=True, slots=True)
class FaultyParams(RtlParams):
    """``RtlParams`` of a deliberately broken accelerator (see the module docstring)."""

    fault: str = "flip_bit"

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise RtlError(f"fault={self.fault!r}: expected one of {', '.join(FAULTS)}")

    @property
    def module_name(self) -> str:
        return f"{super(FaultyParams, self).module_name}_{self.fault}"

    def component(self) -> Any:
        return FaultyAccelerator(RtlParams.component(self), self.fault)


def faulty(params: RtlParams, fault: str) -> FaultyParams:
    """``params`` with ``fault`` injected."""
    return FaultyParams(**{f.name: getattr(params, f.name) for f in dataclasses.fields(RtlParams)}, fault=fault)


def FaultyAccelerator(inner: Any, fault: str) -> Any:  # noqa: N802 - builds a Component subclass lazily
    """A component with ``inner``'s ports that passes everything through but the damaged port."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring

    class _Faulty(wiring.Component):
        def __init__(self) -> None:
            self.inner = inner
            self.CFG = inner.CFG
            super().__init__(dict(inner.signature.members))

        def elaborate(self, platform: Any) -> Module:
            m = Module()
            m.submodules.inner = inner
            m.d.comb += [
                inner.start.eq(self.start),
                self.busy.eq(inner.busy),
                self.done.eq(inner.done),
                self.cycles.eq(inner.cycles),
            ]
            for name in inner.CFG:
                m.d.comb += getattr(inner, f"cfg_{name}").eq(getattr(self, f"cfg_{name}"))
            for port in ("ifmap", "weight"):
                outer, sub = getattr(self, port), getattr(inner, port)
                m.d.comb += [sub.valid.eq(outer.valid), sub.payload.eq(outer.payload), outer.ready.eq(sub.ready)]
            offer = Signal(init=0 if fault == "slow_drain" else 1)
            if fault == "slow_drain":  # hold each beat back one cycle: offer on every second cycle
                with m.If(inner.ofmap.valid & ~offer):
                    m.d.sync += offer.eq(1)
                with m.Elif(inner.ofmap.valid & self.ofmap.ready):
                    m.d.sync += offer.eq(0)
            flip = 1 if fault == "flip_bit" else 0
            m.d.comb += [
                self.ofmap.valid.eq(inner.ofmap.valid & offer),
                self.ofmap.payload.eq(inner.ofmap.payload ^ flip),
                inner.ofmap.ready.eq(self.ofmap.ready & offer),
            ]
            return m

    return _Faulty()
