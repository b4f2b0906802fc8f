"""ShiDianNao-like RTL (kind ``sdn``): bit-exact against numpy and cycle-exact against its timing
model and the cycle-level simulator's rtl profile, under Icarus through cocotb."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.dataflows.decompose import skips_input
from coexplore.dataflows.io import get_template
from coexplore.models.ir import conv, gemm
from coexplore.rtl import kinds, sdn_program
from coexplore.rtl.faults import faulty
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import check_layer, geometry, prepare
from coexplore.rtl.verify import verify_layer

SDN = "shidiannao"
CASES = {
    "gemm-5x6x7": (small_acc(SDN), gemm("g", 5, 6, 7), "random"),
    "gemm-zeros-3x5-bw16": (small_acc(SDN, rows=3, cols=5, bw=16), gemm("g", 7, 8, 6), "zeros"),
    "gemm-wide-k-2x3-bw1": (small_acc(SDN, rows=2, cols=3, bw=1), gemm("g", 3, 5, 8), "extremes"),
    "conv3x3-s1-p1-extremes": (small_acc(SDN), conv("c", c=2, k=3, h=6, r=3, stride=1, pad=1), "extremes"),
    "conv3x3-s2-p1-4x3-bw2": (small_acc(SDN, cols=3, bw=2), conv("c", c=3, k=2, h=7, r=3, stride=2, pad=1), "random"),
    "conv5x5-s1-p2-2x5": (small_acc(SDN, rows=2, cols=5, bw=8), conv("c", c=1, k=2, h=6, w=9, r=5, pad=2), "random"),
    "conv3x3-s3-3x2": (small_acc(SDN, rows=3, cols=2), conv("c", c=2, k=3, h=11, r=3, stride=3), "random"),
    "conv2x2-s4-p1": (small_acc(SDN, bw=8), conv("c", c=2, k=2, h=9, w=13, r=2, stride=4, pad=1), "random"),
    "conv1x1-k5-reloads": (small_acc(SDN, rows=2, cols=2), conv("c", c=4, k=5, h=3, r=1), "random"),
    "conv-1x1-array-bw1": (small_acc(SDN, rows=1, cols=1, bw=1), conv("c", c=2, k=2, h=3, r=2, pad=1), "random"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sdn_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    model = sdn_program.cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --template shidiannao --profile rtl
    result, program = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=7, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model == program.expected_cycles, result.raw
    assert result.passed, result.raw


def test_sdn_stream_gaps_stay_bit_exact(tmp_path, rtl_cache):
    """External memory withholding valid/ready at random: results exact, cycles only grow."""
    acc, layer = small_acc(SDN, bw=2), conv("c", c=2, k=3, h=5, r=3, stride=2, pad=1)
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, program = verify_layer(acc, layer, tmp_path, seed=3, gaps=gaps, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


@pytest.mark.parametrize("fault", ["flip_bit", "slow_drain"])
def test_sdn_bench_catches_a_broken_design(fault, tmp_path, rtl_cache):
    """The same check goes red on a deliberately broken design (rtl.faults, test-only)."""
    acc, layer = small_acc(SDN), gemm("g", 5, 6, 7)
    params = params_from_accelerator(acc)
    model = sdn_program.cycles(params, geometry(layer))
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=1, expected_cycles=model, params=faulty(params, fault), cache_dir=rtl_cache
    )
    assert not result.passed
    if fault == "flip_bit":
        assert result.mismatches > 0
    else:  # right results, consistent counter, wrong timing: only the cycle-exact check sees it
        assert result.mismatches == 0 and result.raw["bench_cycles"] == result.rtl_cycles > model


def _random_layer(rng: random.Random):
    if rng.random() < 0.3:
        return gemm("g", rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 12))
    r = rng.choice([1, 2, 3, 5])
    return conv(
        "c",
        c=rng.randint(1, 4),
        k=rng.randint(1, 5),
        h=rng.randint(max(r, 2), 9),
        w=rng.randint(max(r, 2), 9),
        r=r,
        stride=rng.choice([1, 1, 2, 3, 4]),
        pad=rng.randint(0, r // 2),
    )


def test_sdn_timing_model_is_the_simulators():
    """``sdn_program.cycles`` equals ``simulate --profile rtl`` on random layers and arrays (no RTL)."""
    rng = random.Random(11)
    checked = 0
    while checked < 120:
        acc = small_acc(
            SDN,
            rows=rng.choice([1, 2, 3, 4, 5, 8]),
            cols=rng.choice([1, 2, 3, 4, 6, 8]),
            bw=rng.choice([1, 2, 4, 8, 16]),
            kb=rng.choice([0.25, 0.5, 1, 2]),
        )
        layer, params = _random_layer(rng), params_from_accelerator(acc)
        if skips_input(layer):  # the host gathers the rows it reads: tests/rtl/test_decompose.py's sweep
            continue
        try:
            check_layer(params, layer)
        except RtlError:
            continue
        assert sdn_program.cycles(params, geometry(layer)) == simulated_cycles(acc, layer), (
            acc.label,
            layer.describe(),
        )
        checked += 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_sdn_random_configurations(seed, tmp_path, rtl_cache):
    """Random array shapes, stream widths and layers the hardware accepts."""
    rng = random.Random(seed)
    while True:
        acc = small_acc(
            SDN, rows=rng.choice([1, 2, 3, 4, 6]), cols=rng.choice([1, 2, 3, 5, 8]), bw=rng.choice([1, 2, 4, 8, 16])
        )
        layer = _random_layer(rng)
        try:
            prepare(params_from_accelerator(acc), layer)
            break
        except RtlError:
            continue
    simulated = simulated_cycles(acc, layer)
    result, program = verify_layer(acc, layer, tmp_path, seed=seed, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0, (acc.label, layer.describe(), result.raw)
    assert result.rtl_cycles == simulated == program.expected_cycles, (acc.label, layer.describe(), result.raw)


def test_sdn_output_decoding_inverts_the_layout():
    """decode_output reads the fold-by-fold line layout the hardware writes (conv and GEMM)."""
    params = params_from_accelerator(small_acc(SDN, rows=3, cols=2))
    for layer in (conv("c", c=1, k=3, h=5, w=4, r=1), gemm("g", 5, 2, 3)):
        geo = geometry(layer)
        out = np.arange(geo.k * geo.p * geo.q).reshape(geo.k, geo.p, geo.q)
        n_out, n_cf, n_rf = sdn_program.folds(params, geo)
        lines = np.zeros((n_out, n_cf, n_rf, params.rows, params.cols), dtype=np.int64)
        for o in range(n_out):
            for fc in range(n_cf):
                for fr in range(n_rf):
                    for i in range(params.rows):
                        for j in range(params.cols):
                            row, col = fr * params.rows + i, fc * params.cols + j
                            if sdn_program.is_gemm(geo) and row < geo.p and col < geo.k:
                                lines[o, fc, fr, i, j] = out[col, row, 0]
                            elif not sdn_program.is_gemm(geo) and row < geo.p and col < geo.q:
                                lines[o, fc, fr, i, j] = out[o, row, col]
        ob = params.out_bytes
        raw = lines.reshape(-1, params.cols).astype("<i8").view(np.uint8).reshape(-1, params.cols, 8)[:, :, :ob]
        raw = raw.reshape(-1, params.cols * ob)
        width = params.out_row_beats * params.stream_bytes
        padded = np.zeros((raw.shape[0], width), dtype=np.uint8)
        padded[:, : raw.shape[1]] = raw
        flat = padded.reshape(-1, params.stream_bytes)
        beats = [int.from_bytes(b.tobytes(), "little") for b in flat]
        assert np.array_equal(sdn_program.decode_output(params, geo, beats), out)


def test_shidiannao_is_built_by_the_sdn_kind():
    assert kinds.kind_for(get_template(SDN)).name == "sdn"
    assert params_from_accelerator(small_acc(SDN)).kind == "sdn"


@pytest.mark.parametrize(
    "layer,match",
    [
        (conv("c", c=1, k=2, h=11, r=3, stride=5), "stride 5"),
        (conv("c", c=3, k=2, h=4, w=1, r=1), "give it as a linear layer"),
        (conv("c", c=16, k=1, h=3, r=3, pad=1), "weight bank"),
    ],
)
def test_sdn_refuses_what_it_cannot_run(layer, match):
    params = params_from_accelerator(dataclasses.replace(small_acc(SDN), filter_sram_kb=0.25))  # 128-byte bank
    with pytest.raises(RtlError, match=match) as err:
        check_layer(params, layer)
    assert "\n" not in str(err.value)
