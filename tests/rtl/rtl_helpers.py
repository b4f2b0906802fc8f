"""Helpers shared by the RTL tests (imported by name: tests/rtl is on sys.path)."""

from __future__ import annotations

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator


def small_acc(
    template: str = "systolic-ws", rows: int = 4, cols: int = 4, bw: float | None = 4, kb: float = 1.0, **kw
) -> Accelerator:
    """A tiny accelerator (1 kB scratchpads) so the simulations stay fast."""
    return Accelerator(
        dataflow=get_template(template),
        rows=rows,
        cols=cols,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=bw,
        **kw,
    )


def simulated_cycles(acc: Accelerator, layer) -> int:
    """total_cycles of the cycle-level simulator (profile rtl) for the accelerator as built: an
    unlimited DRAM bandwidth becomes the RTL's stream width."""
    import dataclasses

    from coexplore.rtl.params import params_from_accelerator
    from coexplore.sim.cycle import simulate_layer

    width = float(params_from_accelerator(acc).stream_bytes)
    return int(simulate_layer(layer, dataclasses.replace(acc, dram_bw_bytes_per_cycle=width), "rtl").total_cycles)
