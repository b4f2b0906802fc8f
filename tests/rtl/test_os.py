"""Output-stationary systolic RTL: bit-exact against numpy and cycle-exact against its timing model."""

from __future__ import annotations

import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import conv, gemm
from coexplore.rtl.faults import faulty
from coexplore.rtl.os_program import os_cycles
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import geometry, prepare
from coexplore.rtl.verify import verify_layer

OS = "systolic-os"
CASES = {
    "gemm-5x6x7": (small_acc(OS), gemm("g", 5, 6, 7), "random"),
    "conv-s2-p1": (small_acc(OS), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "conv-extremes-bw1": (small_acc(OS, bw=1), conv("c", c=2, k=5, h=5, r=3, stride=1, pad=1), "extremes"),
    "gemm-zeros-3x5-bw16": (small_acc(OS, rows=3, cols=5, bw=16), gemm("g", 13, 7, 11), "zeros"),
    "2x2-bw2": (small_acc(OS, rows=2, cols=2, bw=2), gemm("g", 7, 9, 5), "random"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_os_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    model = os_cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --profile rtl
    result, _ = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=11, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model, result.raw
    assert result.passed, result.raw


def test_os_stream_gaps_stay_bit_exact(tmp_path, rtl_cache):
    acc, layer = small_acc(OS, bw=2), conv("c", c=2, k=5, h=5, r=3, stride=2, pad=1)
    result, program = verify_layer(
        acc, layer, tmp_path, seed=4, gaps={"ifmap": 0.3, "weight": 0.3, "ofmap": 0.4}, cache_dir=rtl_cache
    )
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


def test_os_fault_is_caught(tmp_path, rtl_cache):
    acc, layer = small_acc(OS), gemm("g", 5, 6, 7)
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=2, params=faulty(params_from_accelerator(acc), "flip_bit"), cache_dir=rtl_cache
    )
    assert not result.passed and result.mismatches > 0


def test_os_needs_two_rows():
    acc = small_acc(OS, rows=1, cols=4)
    with pytest.raises(RtlError, match="2 array rows"):
        prepare(params_from_accelerator(acc), gemm("g", 3, 3, 3))


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,bw", [(8, 8, 8), (16, 16, 16)])
def test_os_larger_arrays(rows, cols, bw, tmp_path, rtl_cache):
    acc = small_acc(OS, rows=rows, cols=cols, bw=bw, kb=8)
    layer = conv("c", c=5, k=2 * cols + 3, h=9, r=3, stride=2, pad=1)
    model = os_cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)
    result, _ = verify_layer(acc, layer, tmp_path, seed=5, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0 and result.rtl_cycles == simulated == model, result.raw
