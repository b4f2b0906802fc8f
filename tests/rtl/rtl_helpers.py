"""Helpers shared by the RTL tests (imported by name: tests/rtl is on sys.path)."""

from __future__ import annotations

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator


def small_acc(template: str = "systolic-ws", rows: int = 4, cols: int = 4, bw: float | None = 4,
              kb: float = 1.0, **kw) -> Accelerator:
    """A tiny accelerator (1 kB scratchpads) so the simulations stay fast."""
    return Accelerator(dataflow=get_template(template), rows=rows, cols=cols, ifmap_sram_kb=kb,
                       filter_sram_kb=kb, ofmap_sram_kb=kb, dram_bw_bytes_per_cycle=bw, **kw)
