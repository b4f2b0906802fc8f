"""Operand and accumulator widths other than int8 x int8 -> int32: bit-exact (the accumulators wrap
like the reference) and cycle-exact against the hardware's timing model and the simulator."""

from __future__ import annotations

import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import conv
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.program import expected_cycles
from coexplore.rtl.verify import verify_layer

LAYER = conv("c", c=3, k=5, h=6, r=3, stride=1, pad=1)
CASES = [
    ("systolic-ws", 8, 8, 12),
    ("systolic-ws", 8, 8, 24),
    ("systolic-ws", 4, 6, 16),
    ("systolic-os", 4, 6, 16),
    ("systolic-os", 8, 8, 12),
    ("eyeriss", 4, 6, 16),
    ("eyeriss", 8, 8, 24),
    ("nvdla", 4, 6, 16),
    ("nvdla", 8, 8, 12),
    ("shidiannao", 4, 6, 16),
    ("shidiannao", 8, 8, 12),
]


@pytest.mark.parametrize("template,ib,wb,ab", CASES)
def test_widths_bit_exact_and_cycle_exact(template, ib, wb, ab, tmp_path, rtl_cache):
    acc = small_acc(template, kb=4, input_bits=ib, weight_bits=wb, acc_bits=ab)
    model = expected_cycles(params_from_accelerator(acc), LAYER)
    simulated = simulated_cycles(acc, LAYER)  # sub-byte operands travel in whole bytes, as the RTL stores them
    result, _ = verify_layer(
        acc, LAYER, tmp_path, seed=3, pattern="extremes", expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.passed and result.mismatches == 0 and result.rtl_cycles == simulated == model, result.raw
