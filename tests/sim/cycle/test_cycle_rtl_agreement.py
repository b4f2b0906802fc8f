"""Profile ``rtl`` equals the generated hardware's timing model (``coexplore.rtl.program``) to the cycle.

The RTL's cocotb benches hold the hardware to ``rtl.program``'s expected cycles; this test holds the
simulator to the same numbers on every layer/design pair the RTL can run (it refuses the others).
"""

from __future__ import annotations

import itertools

import pytest

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import conv, gemm
from coexplore.sim.cycle import simulate_layer

program = pytest.importorskip("coexplore.rtl.program")
params_mod = pytest.importorskip("coexplore.rtl.params")

LAYERS = (
    conv("a", c=4, k=8, h=8, r=3),
    conv("b", c=3, k=20, h=10, r=3, stride=2, pad=1),
    conv("c", c=8, k=5, h=6, r=1),
    gemm("g", m=12, k=40, n=24),
    conv("d", c=16, k=16, h=12, r=3, pad=1),
    conv("e", c=2, k=33, h=9, r=5, pad=2),
)


@pytest.mark.parametrize("template", sorted(params_mod.TEMPLATE_KIND))
def test_rtl_profile_matches_the_hardware_timing_model(template: str) -> None:
    checked = 0
    for (rows, cols), bw, kb in itertools.product(
        [(4, 4), (8, 8), (4, 8), (8, 4), (16, 16)], [1, 4, 8, 32], [4, 16, 64]
    ):
        acc = Accelerator(
            get_template(template),
            rows,
            cols,
            ifmap_sram_kb=kb,
            filter_sram_kb=kb,
            ofmap_sram_kb=kb,
            dram_bw_bytes_per_cycle=bw,
        )
        try:
            prm = params_mod.params_from_accelerator(acc)
        except params_mod.RtlError:
            continue
        for layer in LAYERS:
            try:
                expected = program.prepare(prm, layer).expected_cycles
            except params_mod.RtlError:  # a layer this hardware cannot hold
                continue
            assert simulate_layer(layer, acc, "rtl").total_cycles == expected, (
                template,
                rows,
                cols,
                bw,
                kb,
                layer.name,
            )
            checked += 1
    assert checked >= 100


@pytest.mark.parametrize("template", sorted(params_mod.TEMPLATE_KIND))
@pytest.mark.parametrize("ib, wb, ab", [(4, 6, 16), (8, 8, 12), (8, 8, 24)])
def test_rtl_profile_moves_operands_in_whole_bytes_like_the_hardware(template: str, ib: int, wb: int, ab: int) -> None:
    checked = 0
    for (rows, cols), bw in itertools.product([(4, 6), (8, 8)], [2, 8]):
        acc = Accelerator(
            get_template(template),
            rows,
            cols,
            ifmap_sram_kb=4,
            filter_sram_kb=4,
            ofmap_sram_kb=4,
            dram_bw_bytes_per_cycle=bw,
            input_bits=ib,
            weight_bits=wb,
            acc_bits=ab,
        )
        prm = params_mod.params_from_accelerator(acc)
        for layer in LAYERS:
            try:
                expected = program.prepare(prm, layer).expected_cycles
            except params_mod.RtlError:
                continue
            assert simulate_layer(layer, acc, "rtl").total_cycles == expected, (template, rows, cols, bw, layer.name)
            checked += 1
    assert checked >= 2
