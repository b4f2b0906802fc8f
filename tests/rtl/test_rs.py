"""Row-stationary (Eyeriss-like) RTL: bit-exact against numpy and cycle-exact against its timing model."""

from __future__ import annotations

import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.dataflows.mapping import plan_folds
from coexplore.models.ir import conv, gemm
from coexplore.rtl.faults import faulty
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import geometry, prepare
from coexplore.rtl.rs_program import fold_counts, rs_cycles
from coexplore.rtl.verify import verify_layer

EYE = "eyeriss"
CASES = {
    "conv-r3-p1": (small_acc(EYE, kb=4), conv("c", c=2, k=3, h=6, r=3, stride=1, pad=1), "random"),
    "conv-r5-s2-p2": (small_acc(EYE, kb=8), conv("c", c=3, k=2, h=9, r=5, stride=2, pad=2), "extremes"),
    "gemm": (small_acc(EYE, kb=4), gemm("g", 5, 6, 7), "random"),
    "3x5-bw1": (small_acc(EYE, rows=3, cols=5, bw=1, kb=8), conv("c", c=2, k=2, h=7, r=3), "random"),
    "4x2-bw16-zeros": (
        small_acc(EYE, rows=4, cols=2, bw=16, kb=16),
        conv("c", c=3, k=3, h=6, r=2, stride=2, pad=1),
        "zeros",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rs_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    model = rs_cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --profile rtl
    result, _ = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=13, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model, result.raw
    assert result.passed, result.raw


@pytest.mark.parametrize("name", sorted(CASES))
def test_rs_folds_are_the_templates(name):
    """The hardware's fold count is plan_folds' for the eyeriss mapping."""
    acc, layer, _ = CASES[name]
    plan = plan_folds(acc.dataflow.mapping_for(layer.kind), layer.dims(), acc.rows, acc.cols)
    k, n_fp, n_ct, n_rt = fold_counts(params_from_accelerator(acc), geometry(layer))
    assert int(plan.folds) == k * n_fp * n_ct * n_rt
    assert int(plan.temporal_steps) == layer.q * layer.s


def test_rs_stream_gaps_stay_bit_exact(tmp_path, rtl_cache):
    acc, layer = small_acc(EYE, bw=2, kb=4), conv("c", c=2, k=2, h=6, r=3, stride=2, pad=1)
    result, program = verify_layer(
        acc, layer, tmp_path, seed=6, gaps={"ifmap": 0.3, "weight": 0.3, "ofmap": 0.4}, cache_dir=rtl_cache
    )
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


def test_rs_fault_is_caught(tmp_path, rtl_cache):
    acc, layer = small_acc(EYE, kb=4), conv("c", c=2, k=3, h=6, r=3, stride=1, pad=1)
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=2, params=faulty(params_from_accelerator(acc), "flip_bit"), cache_dir=rtl_cache
    )
    assert not result.passed and result.mismatches > 0


def test_rs_rejects_wide_filters():
    with pytest.raises(RtlError, match="filter width"):
        prepare(params_from_accelerator(small_acc(EYE, kb=16)), conv("c", c=1, k=1, h=12, r=9))


@pytest.mark.slow
def test_rs_larger_array(tmp_path, rtl_cache):
    acc = small_acc(EYE, rows=8, cols=6, bw=8, kb=64)
    layer = conv("c", c=5, k=3, h=13, r=5, stride=2, pad=2)
    simulated = simulated_cycles(acc, layer)
    result, _ = verify_layer(acc, layer, tmp_path, seed=5, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0 and result.rtl_cycles == simulated, result.raw
