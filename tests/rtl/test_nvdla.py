"""NVDLA-like RTL (kind ``nvdla``): bit-exact against numpy and cycle-exact against the cycle-level
simulator's rtl profile, under Icarus through cocotb. Batch-1, one-group layers go through the shared
path (``rtl.verify.verify_layer``, the ``accel_bench`` bench); batched, grouped and depthwise layers
through ``rtl/benches/nvdla_bench.py`` (same checks, the nvdla host module's reference). Those run the
array's native group and batch registers in one call, checked against the simulator's fold model of
that native run (``native_cycles``); the production flow runs such layers as dense sub-layers
(``dataflows.decompose``, tests/rtl/test_decompose.py), as on the other kinds."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import Layer, conv, gemm
from coexplore.rtl import nvdla_program as nv
from coexplore.rtl import verify
from coexplore.rtl.faults import faulty
from coexplore.rtl.params import RtlError, RtlParams, params_from_accelerator
from coexplore.rtl.program import geometry


def nvdla(rows: int = 4, cols: int = 4, bw: float | None = 4, kb: float = 1.0):
    return small_acc("nvdla", rows=rows, cols=cols, bw=bw, kb=kb)


def native_cycles(acc, layer: Layer) -> int:
    """The simulator's rtl profile on the native one-call run of a batched or grouped layer: its fold
    model with the decomposition into dense sub-layers off (``sim.decomposed``), which is what the
    production flow would run instead."""
    from coexplore.sim import decomposed

    with pytest.MonkeyPatch.context() as m:
        m.setattr(decomposed, "decomposed_layer", lambda *args, **kw: None)
        return simulated_cycles(acc, layer)


def run_nvdla(
    acc,
    layer: Layer,
    tmp_path,
    cache,
    monkeypatch,
    seed: int = 7,
    pattern: str = "random",
    gaps: dict | None = None,
    expected: int | None = None,
    params: RtlParams | None = None,
):
    """Any layer through the nvdla bench (batch and groups included): (result, program)."""
    params = params or params_from_accelerator(acc)
    x, w = nv.random_operands(params, nv.nvdla_geometry(layer), np.random.default_rng(seed), pattern)
    program = nv.prepare(params, layer, x, w)
    monkeypatch.setattr(verify, "BENCH_MODULE", "nvdla_bench")
    result = verify.run_bench(
        params, program, x, w, tmp_path, seed=seed, gaps=gaps, expected_cycles=expected, cache_dir=cache
    )
    return result, program


SHARED = {  # batch 1, one group: the shared verification path (what ``coexplore verify`` runs)
    "gemm-5x6x7": (nvdla(), gemm("g", 5, 6, 7), "random"),
    "conv3x3-s2-p1": (nvdla(), conv("c", c=5, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "8x4-conv3x3-s1-p1": (nvdla(rows=8, cols=4), conv("c", c=3, k=5, h=5, r=3, stride=1, pad=1), "extremes"),
    "conv1x1-zeros": (nvdla(), conv("c", c=6, k=5, h=4, r=1), "zeros"),
    "3x5-bw16-gemm": (nvdla(rows=3, cols=5, bw=16), gemm("g", 7, 8, 12), "random"),
    "bw1-stalls": (nvdla(bw=1), conv("c", c=2, k=6, h=5, r=3, stride=2, pad=1), "random"),
}
OWN = {  # batch > 1, grouped, depthwise: the nvdla bench
    "batch2-conv3x3-p1": (nvdla(), conv("c", c=3, k=5, h=4, r=3, pad=1, n=2)),
    "depthwise3x3-s2": (nvdla(rows=2, cols=2), conv("c", c=3, k=3, h=5, r=3, stride=2, pad=1, groups=3)),
    "grouped-batch2": (nvdla(), conv("c", c=6, k=4, h=4, r=2, stride=2, pad=1, groups=2, n=2)),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_nvdla_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = SHARED[name]
    params = params_from_accelerator(acc)
    model = nv.cycles(params, geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --template nvdla --profile rtl
    result, program = verify.verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=7, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model == program.expected_cycles, result.raw
    assert result.passed, result.raw


@pytest.mark.parametrize("name", sorted(OWN))
def test_nvdla_batch_and_groups(name, tmp_path, rtl_cache, monkeypatch):
    acc, layer = OWN[name]
    simulated = native_cycles(acc, layer)
    result, program = run_nvdla(acc, layer, tmp_path, rtl_cache, monkeypatch, expected=simulated)
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == program.expected_cycles, result.raw


def test_nvdla_stream_gaps_stay_bit_exact(tmp_path, rtl_cache, monkeypatch):
    """External memory withholding valid/ready at random: results exact, cycles only grow."""
    acc, layer = nvdla(bw=2), conv("c", c=5, k=5, h=4, r=3, stride=1, pad=1, n=2)
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, program = run_nvdla(acc, layer, tmp_path, rtl_cache, monkeypatch, seed=3, gaps=gaps)
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


@pytest.mark.parametrize("fault", ["drop_tree_input", "flip_bit", "slow_drain"])
def test_bench_catches_a_broken_nvdla(fault, tmp_path, rtl_cache, monkeypatch):
    """The same check goes red on a deliberately broken design: the last array row's products left
    out of the adder trees (``nvdla_program.nvdla_faulty``), or the generic port faults (rtl.faults)."""
    acc, layer = nvdla(), conv("c", c=4, k=5, h=4, r=3, pad=1)
    params = params_from_accelerator(acc)
    broken = nv.nvdla_faulty(params, fault) if fault == "drop_tree_input" else faulty(params, fault)
    model = nv.cycles(params, geometry(layer))
    result, _ = run_nvdla(acc, layer, tmp_path, rtl_cache, monkeypatch, seed=1, expected=model, params=broken)
    assert not result.passed
    if fault == "slow_drain":  # right results, consistent counter, wrong timing: only the cycle check sees it
        assert result.mismatches == 0 and result.raw["bench_cycles"] == result.rtl_cycles > model
    else:
        assert result.mismatches > 0 and result.rtl_cycles == model


def test_nvdla_timing_model_is_the_simulators():
    """The host timing model equals ``coexplore simulate --profile rtl`` on random nvdla layers (no RTL run)."""
    rng = random.Random(0)
    checked = 0
    for _ in range(150):
        acc = nvdla(
            rows=rng.choice([1, 2, 3, 4, 8]),
            cols=rng.choice([1, 3, 4, 8]),
            bw=rng.choice([1, 2, 4, 16]),
            kb=rng.choice([1, 2]),
        )
        g = rng.choice([1, 1, 2, 3])
        r = rng.choice([1, 2, 3])
        layer = rng.choice(
            [
                conv(
                    "c",
                    c=g * rng.randint(1, 6),
                    k=g * rng.randint(1, 6),
                    h=rng.randint(r, 8),
                    r=r,
                    stride=rng.choice([1, 2]),
                    pad=rng.randint(0, r // 2),
                    groups=g,
                    n=rng.choice([1, 2]),
                ),
                gemm("g", rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)),
            ]
        )
        params = params_from_accelerator(acc)
        try:
            geo = nv.nvdla_geometry(layer)
            nv.check_resident_input(params, layer, geo)
            nv.check_layer(params, layer, geo)
            nv.config(params, geo)
        except RtlError:
            continue
        assert nv.cycles(params, geo) == native_cycles(acc, layer), (acc.label, layer.describe(), layer.n)
        checked += 1
    assert checked > 100


def test_nvdla_refuses_what_it_cannot_hold():
    params = params_from_accelerator(nvdla())
    with pytest.raises(RtlError, match="taps"):
        nv.prepare(params, conv("c", c=2, k=2, h=6, r=5), np.zeros((1, 2, 6, 6)), np.zeros((2, 2, 5, 5)))
    with pytest.raises(RtlError, match="ofmap bank depth"):
        nv.check_layer(params, gemm("g", 200, 4, 4), nv.nvdla_geometry(gemm("g", 200, 4, 4)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_nvdla_random_configurations(seed, tmp_path, rtl_cache, monkeypatch):
    """Random arrays, stream widths and layers (conv, gemm, batch, groups, depthwise)."""
    rng = random.Random(seed)
    while True:
        acc = nvdla(
            rows=rng.choice([1, 2, 3, 4, 5, 8]), cols=rng.choice([1, 2, 3, 4, 6]), bw=rng.choice([1, 2, 4, 8, 16]), kb=2
        )
        g = rng.choice([1, 1, 2])
        r = rng.choice([1, 2, 3])
        layer = rng.choice(
            [
                conv(
                    "c",
                    c=g * rng.randint(1, 7),
                    k=g * rng.randint(1, 7),
                    h=rng.randint(r, 6),
                    r=r,
                    stride=rng.choice([1, 2]),
                    pad=rng.randint(0, r // 2),
                    groups=g,
                    n=rng.choice([1, 2]),
                ),
                gemm("g", rng.randint(1, 10), rng.randint(1, 10), rng.randint(1, 10)),
            ]
        )
        try:
            params = params_from_accelerator(acc)
            nv.prepare(params, layer, *nv.random_operands(params, nv.nvdla_geometry(layer), np.random.default_rng(0)))
        except RtlError:
            continue
        break
    simulated = native_cycles(acc, layer)
    result, program = run_nvdla(acc, layer, tmp_path, rtl_cache, monkeypatch, seed=seed, expected=simulated)
    assert result.passed and result.mismatches == 0, (acc.label, layer.describe(), result.raw)
    assert result.rtl_cycles == simulated == program.expected_cycles
