"""The port set every generated sub-accelerator shares, so the arrays differ only in their controller.

Ports: ``start``/``busy``/``done``/``cycles``, one ``cfg_*`` register per name in ``CFG`` (held during a
run), ``ifmap`` and ``weight`` input streams and the ``ofmap`` output stream, ``stream_bytes`` wide
(the accelerator's DRAM bytes per cycle).
"""

from __future__ import annotations

from amaranth import unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from coexplore.rtl.params import CFG_BITS, CYCLE_BITS, RtlParams


class StreamAccelerator(wiring.Component):
    """Base of every generated accelerator; subclasses write ``elaborate``. The ``cfg_*`` registers
    are the kind's (``rtl.kinds``: its host module's ``CFG``)."""

    def __init__(self, params: RtlParams) -> None:
        from coexplore.rtl.kinds import kind_of

        self.params = params
        self.CFG: tuple[str, ...] = kind_of(params).cfg
        bw = params.stream_bytes * 8
        members = {
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(CYCLE_BITS),
            "ifmap": In(stream.Signature(unsigned(bw))),
            "weight": In(stream.Signature(unsigned(bw))),
            "ofmap": Out(stream.Signature(unsigned(bw))),
        }
        for name in self.CFG:
            members[f"cfg_{name}"] = In(CFG_BITS)
        super().__init__(members)

    def cfg(self) -> dict:
        """The ``cfg_*`` registers by name."""
        return {name: getattr(self, f"cfg_{name}") for name in self.CFG}
