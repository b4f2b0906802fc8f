"""Designs the sim tests share."""

from __future__ import annotations

from coexplore.dataflows.io import builtin_templates
from coexplore.dataflows.spec import Accelerator


def square_acc(template: str, size: int, kb: float, bw: float | None) -> Accelerator:
    """A ``size x size`` array of ``template`` with ``kb`` per operand and ``bw`` bytes/cycle of DRAM."""
    return Accelerator(
        dataflow=builtin_templates()[template],
        rows=size,
        cols=size,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=bw,
    )
