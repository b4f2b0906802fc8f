"""Input-stationary systolic RTL (kind ``is``): bit-exact against numpy and cycle-exact against its
timing model and the cycle-level simulator's rtl profile, under Icarus through cocotb. A batch
(N > 1) layer runs in Amaranth's own simulator: the shared geometry and bench take N = 1."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import conv, gemm
from coexplore.rtl import is_program
from coexplore.rtl.faults import faulty
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import LayerGeometry, geometry, pack_beats, prepare
from coexplore.rtl.verify import verify_layer

IS = "systolic-is"
CASES = {
    "gemm-5x6x7": (small_acc(IS), gemm("g", 5, 6, 7), "random"),
    "conv3x3-s1-p1-extremes": (small_acc(IS), conv("c", c=2, k=5, h=5, r=3, stride=1, pad=1), "extremes"),
    "conv3x3-s2-p1-4x8": (small_acc(IS, cols=8, kb=2), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "conv2x2-s2-4x8-bw2": (small_acc(IS, cols=8, bw=2, kb=2), conv("c", c=4, k=7, h=6, r=2, stride=2), "random"),
    "gemm-zeros-3x5-bw16": (small_acc(IS, rows=3, cols=5, bw=16), gemm("g", 7, 8, 6), "zeros"),
    "bw1-stalls": (small_acc(IS, bw=1), conv("c", c=2, k=4, h=5, r=3, stride=2, pad=1), "random"),
    "1x1-array-k1": (small_acc(IS, rows=1, cols=1, bw=1), gemm("g", 3, 2, 1), "random"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_is_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    model = is_program.cycles(params_from_accelerator(acc), geometry(layer))
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --template systolic-is --profile rtl
    result, program = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=7, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == model == program.expected_cycles, result.raw
    assert result.passed, result.raw


def test_is_stream_gaps_stay_bit_exact(tmp_path, rtl_cache):
    """External memory withholding valid/ready at random: results exact, cycles only grow."""
    acc, layer = small_acc(IS, bw=2), conv("c", c=2, k=5, h=5, r=3, stride=2, pad=1)
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, program = verify_layer(acc, layer, tmp_path, seed=3, gaps=gaps, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > program.expected_cycles


@pytest.mark.parametrize("fault", ["flip_bit", "slow_drain"])
def test_is_bench_catches_a_broken_design(fault, tmp_path, rtl_cache):
    """The same check goes red on a deliberately broken design (rtl.faults, test-only)."""
    acc, layer = small_acc(IS), gemm("g", 5, 6, 7)
    params = params_from_accelerator(acc)
    model = is_program.cycles(params, geometry(layer))
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=1, expected_cycles=model, params=faulty(params, fault), cache_dir=rtl_cache
    )
    assert not result.passed
    if fault == "flip_bit":
        assert result.mismatches > 0
    else:  # right results, consistent counter, wrong timing: only the cycle-exact check sees it
        assert result.mismatches == 0 and result.raw["bench_cycles"] == result.rtl_cycles > model


def test_is_refuses_a_layer_whose_outputs_overflow_a_bank():
    params = params_from_accelerator(small_acc(IS, kb=0.25))  # 8 filters per output bank half
    with pytest.raises(RtlError, match="ofmap bank depth"):
        prepare(params, conv("c", c=2, k=9, h=4, r=1))


@dataclasses.dataclass(frozen=True, slots=True)
class BatchGeometry(LayerGeometry):
    """The shared geometry with a batch (rtl.program.geometry gives N = 1 only)."""

    n: int = 1


def _run_amaranth(
    params, cfg: dict, ifmap_beats: list[int], weight_beats: list[int], limit: int
) -> tuple[list[int], int, list[int]]:
    """Run one layer in Amaranth's simulator with always-ready memory: (output beats, cycle counter,
    input beats consumed)."""
    from amaranth.sim import Simulator

    dut = params.component()
    out: list[int] = []
    state = {"cycles": 0, "taken": [0, 0]}

    async def bench(ctx):
        for name, value in cfg.items():
            ctx.set(getattr(dut, f"cfg_{name}"), value)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.ofmap.ready, 1)
        for _ in range(limit):
            if ctx.get(dut.done):
                break
            for i, (port, beats) in enumerate(((dut.ifmap, ifmap_beats), (dut.weight, weight_beats))):
                idx = state["taken"][i]
                ctx.set(port.valid, idx < len(beats))
                ctx.set(port.payload, beats[idx] if idx < len(beats) else 0)
            took = [ctx.get(p.valid) and ctx.get(p.ready) for p in (dut.ifmap, dut.weight)]
            if ctx.get(dut.ofmap.valid):
                out.append(ctx.get(dut.ofmap.payload))
            await ctx.tick()
            state["taken"] = [t + int(x) for t, x in zip(state["taken"], took, strict=True)]
        state["cycles"] = ctx.get(dut.cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out, state["cycles"], state["taken"]


@pytest.mark.parametrize(
    "cols,layer",
    [
        (4, conv("c", c=2, k=3, h=3, r=3, stride=1, pad=1, n=2)),
        (8, conv("c", c=1, k=5, h=5, r=3, stride=2, pad=1, n=3)),
    ],
)
def test_is_batch_bit_and_cycle_exact(cols, layer):
    """N > 1 images on the columns with P and Q: 9 pixels per image, so column folds straddle images."""
    acc = small_acc(IS, rows=4, cols=cols, bw=4, kb=2)
    params = params_from_accelerator(acc)
    base = geometry(dataclasses.replace(layer, n=1))
    geo = BatchGeometry(**{f.name: getattr(base, f.name) for f in dataclasses.fields(LayerGeometry)}, n=layer.n)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(layer.n, geo.c, geo.h, geo.w))
    w = rng.integers(-128, 128, size=(geo.k, geo.c, geo.r, geo.s))
    x.reshape(-1)[:2], w.reshape(-1)[:2] = (-128, 127), (-128, 127)
    cfg, weight_beats = is_program.layout(params, geo, w)
    ifmap_beats = pack_beats((x & 0xFF).astype(np.uint8), params.stream_bytes)
    model = is_program.cycles(params, geo)
    beats, counted, taken = _run_amaranth(params, cfg, ifmap_beats, weight_beats, 4 * model)
    got = is_program.decode_output(params, geo, beats)
    assert np.array_equal(got, is_program.reference(geo, x, w, params.acc_bits))
    assert taken == [len(ifmap_beats), len(weight_beats)]
    assert counted == model == simulated_cycles(acc, layer)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_is_random_configurations(seed, tmp_path, rtl_cache):
    """Random array shapes, stream widths and layers the hardware accepts."""
    rng = random.Random(seed)
    while True:
        acc = small_acc(
            IS,
            rows=rng.choice([1, 2, 3, 4, 6, 8]),
            cols=rng.choice([1, 2, 3, 5, 8]),
            bw=rng.choice([1, 2, 4, 8, 16]),
            kb=2,
        )
        if rng.random() < 0.3:
            layer = gemm("g", rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 12))
        else:
            r = rng.choice([1, 2, 3])
            layer = conv(
                "c",
                c=rng.randint(1, 4),
                k=rng.randint(1, 10),
                h=rng.randint(r, 8),
                r=r,
                stride=rng.choice([1, 2]),
                pad=rng.choice([0, 1]) if r > 1 else 0,
            )
        try:
            prepare(params_from_accelerator(acc), layer)
            break
        except RtlError:
            continue
    simulated = simulated_cycles(acc, layer)
    result, program = verify_layer(acc, layer, tmp_path, seed=seed, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.passed and result.mismatches == 0, (acc.label, layer.describe(), result.raw)
    assert result.rtl_cycles == simulated == program.expected_cycles, (acc.label, layer.describe(), result.raw)
