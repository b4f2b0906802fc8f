"""Host-side tiling (dataflows.tiling): a layer that one call of the generated array cannot run goes
as output-row bands and K tiles, each call a sub-layer with its own pad_top/pad_left registers.
Bit-exact against numpy on the whole layer and cycle-exact against the simulator's rtl profile,
which plans with the same function; a wrong pad_top register turns the check red."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.dataflows.tiling import CALL_GAP_CYCLES, TilingError, call_limits, plan_calls
from coexplore.models.ir import conv, gemm
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import check_tiled, limits_of, plan_layer, prepare, prepare_calls
from coexplore.rtl.verify import job_for_calls, random_tensors, run_job, verify_tiled
from coexplore.sim.cycle.simulator import simulate_calls

BANDS = conv("c", c=2, k=6, h=9, r=3, stride=2, pad=1)  # at 4x4 / 0.5 kB: two bands


def _stream_width(acc):
    return dataclasses.replace(acc, dram_bw_bytes_per_cycle=float(params_from_accelerator(acc).stream_bytes))


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os"])
def test_simulator_and_rtl_host_derive_the_same_limits(template):
    """The simulator derives the call limits from the accelerator, the RTL host from its parameters."""
    for rows, cols, kb, bw, acc_bits in itertools.product((2, 3, 8), (1, 5, 8), (0.5, 1, 3.3), (None, 2, 8), (20, 32)):
        acc = dataclasses.replace(small_acc(template, rows=rows, cols=cols, bw=bw, kb=kb), acc_bits=acc_bits)
        try:
            params = params_from_accelerator(acc)
        except RtlError:
            continue
        assert call_limits(acc) == limits_of(params), (rows, cols, kb, bw)


LAYERS = [
    BANDS,
    conv("d", c=3, k=7, h=12, w=10, r=3, stride=1, pad=1),
    conv("e", c=1, k=5, h=11, r=5, stride=2, pad=2),
    conv("f", c=2, k=9, h=8, r=2, stride=2, pad=0),
    gemm("g", 40, 6, 9),
]


@pytest.mark.parametrize("template,kb", [("systolic-ws", 0.5), ("systolic-ws", 0.25), ("systolic-os", 1.0)])
def test_plan_covers_every_output_once_and_every_call_passes_the_checks(template, kb):
    acc = small_acc(template, kb=kb)
    params = params_from_accelerator(acc)
    tiled = 0
    for layer in LAYERS:
        for k_tile, columns in itertools.product((None, 4), (False, True)):
            try:
                plan = plan_layer(params, layer, k_tile, columns)
            except RtlError:
                continue
            check_tiled(params, layer, columns) if k_tile is None else None
            seen = np.zeros((layer.k, layer.p, layer.q), dtype=np.int64)
            for call in plan.calls:
                seen[call.k0 : call.k1, call.p0 : call.p1, call.q0 : call.q1] += 1
                first_row = call.p0 * layer.stride_h - layer.pad_h  # the tile's first tap row and column
                first_col = call.q0 * layer.stride_w - layer.pad_w
                assert call.h0 == max(0, first_row) and call.pad_top == max(0, -first_row)
                assert call.w0 == max(0, first_col) and call.pad_left == max(0, -first_col)
                assert call.h1 == min(layer.h, (call.p1 - 1) * layer.stride_h - layer.pad_h + layer.r)
                assert call.w1 == min(layer.w, (call.q1 - 1) * layer.stride_w - layer.pad_w + layer.s)
            assert (seen == 1).all(), (layer.name, plan.calls)
            x, w = random_tensors(params, layer, np.random.default_rng(1))
            tp = prepare_calls(params, layer, x, w, plan=plan)  # every call through the hardware checks
            assert tp.expected_cycles == sum(p.expected_cycles for p in tp.calls) + CALL_GAP_CYCLES * (
                len(tp.calls) - 1
            )
            tiled += plan.tiled
    assert tiled >= 3


def test_a_layer_no_call_fits_is_refused_in_one_line():
    acc = small_acc(kb=0.25)
    with pytest.raises(TilingError, match=r"layer 'x': no call fits \(one output pixel reads 72 input bytes"):
        plan_calls(conv("x", c=8, k=4, h=5, r=3, pad=1), call_limits(acc), columns=True)
    with pytest.raises(TilingError, match=r"layer 'd': no call fits \(one output row reads 90 input bytes"):
        plan_calls(conv("d", c=3, k=7, h=12, w=10, r=3, stride=1, pad=1), call_limits(acc))
    with pytest.raises(RtlError, match="ifmap"):
        prepare(params_from_accelerator(acc), BANDS)  # one call alone is still refused


TILED = {
    # two bands: the first padded on top, the second with a halo row
    "ws-2-bands": (small_acc(kb=0.5), BANDS),
    "os-2-bands": (small_acc("systolic-os", kb=0.5), BANDS),
    # one output row per call: pad_top 2, 1, 0, then bottom padding 1 and 2 from the bounds check
    "ws-8-bands-pad2": (small_acc(kb=0.25, bw=8), conv("h", c=1, k=3, h=8, w=6, r=5, stride=1, pad=2)),
    "os-gemm-3x5": (small_acc("systolic-os", rows=3, cols=5, kb=0.5, bw=2), gemm("g", 40, 6, 9)),
}
# a whole output row does not fit: 2-D output tiles (``columns``), pad_left only on the left column of tiles
TILED_2D = {
    "ws-2d-tiles": (small_acc(kb=0.25), conv("x", c=2, k=5, h=5, w=13, r=3, stride=2, pad=1)),
    "os-2d-tiles": (small_acc("systolic-os", kb=0.25), conv("y", c=2, k=3, h=6, w=12, r=3, stride=1, pad=1)),
}


@pytest.mark.parametrize("name", sorted(TILED))
def test_tiled_layer_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    """A layer that does not fit one call, as output-row bands or 2-D output tiles; the cycles are
    the simulator's rtl profile on the whole layer."""
    acc, layer = TILED[name]
    params = params_from_accelerator(acc)
    with pytest.raises(RtlError):
        prepare(params, layer)
    simulated = simulated_cycles(acc, layer)
    result, tp = verify_tiled(acc, layer, tmp_path, seed=4, expected_cycles=simulated, cache_dir=rtl_cache)
    assert tp.plan.tiled and tp.plan.calls[0].pad_top == layer.pad_h
    assert result.mismatches == 0 and result.raw["layer_mismatches"] == 0, result.raw
    assert result.rtl_cycles == result.raw["bench_cycles"] == simulated == tp.expected_cycles, result.raw
    assert result.passed, result.raw


@pytest.mark.parametrize("name", sorted(TILED_2D))
def test_2d_tiles_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    """2-D output tiles (a layer no band fits), cycle-exact against the simulator running that plan."""
    acc, layer = TILED_2D[name]
    params = params_from_accelerator(acc)
    with pytest.raises(RtlError, match="one output row reads"):
        plan_layer(params, layer)
    plan = plan_layer(params, layer, columns=True)
    assert len({c.q0 for c in plan.calls}) > 1 and {c.pad_left for c in plan.calls} == {0, layer.pad_w}
    simulated = int(simulate_calls(layer, _stream_width(acc), plan, "rtl").total_cycles)
    result, tp = verify_tiled(acc, layer, tmp_path, seed=3, expected_cycles=simulated, plan=plan, cache_dir=rtl_cache)
    assert result.mismatches == 0 and result.raw["layer_mismatches"] == 0, result.raw
    assert result.rtl_cycles == simulated == tp.expected_cycles and result.passed, result.raw


def test_ws_bands_and_k_tiles_bit_and_cycle_exact(tmp_path, rtl_cache):
    """Bands x K tiles (K tiles forced to one column fold): 2 x 2 calls, cycle-exact against the
    simulator running the same plan."""
    acc = small_acc(kb=0.5)
    plan = plan_layer(params_from_accelerator(acc), BANDS, k_tile=4)
    assert len(plan.calls) == 4 and len({c.k0 for c in plan.calls}) == 2 and len({c.p0 for c in plan.calls}) == 2
    simulated = int(simulate_calls(BANDS, _stream_width(acc), plan, "rtl").total_cycles)
    result, tp = verify_tiled(acc, BANDS, tmp_path, seed=5, expected_cycles=simulated, plan=plan, cache_dir=rtl_cache)
    assert result.mismatches == 0 and result.rtl_cycles == simulated == tp.expected_cycles, result.raw
    assert result.passed, result.raw


def test_a_wrong_pad_top_register_turns_the_check_red(tmp_path, rtl_cache):
    """The first band's pad_top register set to 0 (as if padding were symmetric per call): the
    hardware reads the band one row off and the bit-exact check fails."""
    acc = small_acc(kb=0.5)
    params = params_from_accelerator(acc)
    x, w = random_tensors(params, BANDS, np.random.default_rng(6))
    tp = prepare_calls(params, BANDS, x, w)
    first = tp.calls[0]
    assert first.cfg["pad_top"] == 1
    bad_cfg = {**first.cfg, "pad_top": 0, "pad_w": first.cfg["pad_left"]}
    bad = dataclasses.replace(tp, calls=(dataclasses.replace(first, cfg=bad_cfg), *tp.calls[1:]))
    raw, failed, _, _ = run_job(params, job_for_calls(bad, 6, {}, None), tmp_path, "icarus", rtl_cache, False)
    assert failed and raw["mismatches"] > 0, raw


SWEEP = (
    conv("a", c=4, k=8, h=8, r=3),
    conv("b", c=3, k=20, h=10, r=3, stride=2, pad=1),
    conv("d", c=16, k=16, h=12, r=3, pad=1),
    conv("e", c=2, k=33, h=9, r=5, pad=2),
    conv("f", c=3, k=12, h=32, r=7, stride=2, pad=3),
    gemm("g", m=300, k=40, n=24),
)


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os"])
def test_rtl_profile_is_the_tiled_hardware_timing_model(template):
    """On every small design/layer pair that needs several calls, ``simulate_layer(..., "rtl")``
    equals the RTL host's timing model (the calls' models plus the idle cycles between them)."""
    from coexplore.sim.cycle import simulate_layer

    checked = 0
    for (rows, cols), bw, kb in itertools.product([(4, 4), (8, 8), (4, 8)], [1, 4, 8], [0.5, 1, 2]):
        acc = small_acc(template, rows=rows, cols=cols, bw=bw, kb=kb)
        try:
            params = params_from_accelerator(acc)
        except RtlError:
            continue
        for layer in SWEEP:
            try:
                plan = plan_layer(params, layer)
            except RtlError:
                continue
            if not plan.tiled:
                continue
            x, w = random_tensors(params, layer, np.random.default_rng(0))
            expected = prepare_calls(params, layer, x, w, plan=plan).expected_cycles
            sim = simulate_layer(layer, acc, "rtl")
            assert sim.total_cycles == expected and sim.extra["calls"] == len(plan.calls), (rows, cols, bw, kb, layer)
            two_d = plan_layer(params, layer, columns=True)  # the simulator running a given 2-D plan
            x_cycles = prepare_calls(params, layer, x, w, plan=two_d).expected_cycles
            assert simulate_calls(layer, acc, two_d, "rtl").total_cycles == x_cycles, (rows, cols, bw, kb, layer)
            checked += 1
    assert checked >= 20


def test_coexplore_verify_runs_a_tiled_layer(tmp_path):
    """``coexplore verify`` on a layer one call cannot hold: it runs as bands and passes."""
    import json

    from click.testing import CliRunner

    from coexplore.cli import cli

    args = ["verify", "--rows", "4", "--cols", "4", "--dram-bw", "4", "--sram-kb", "0.5", "--json"]
    args += ["--layer", "conv:c=2,k=6,h=9,r=3,stride=2,pad=1", "--work-dir", str(tmp_path)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["passed"] and out["rtl_cycles"] == out["simulated_cycles"] and out["outputs"] == 6 * 5 * 5, out


def test_tiled_layer_stays_bit_exact_under_stream_gaps(tmp_path, rtl_cache):
    """External memory withholding valid/ready at random across the calls: exact, only slower."""
    acc = small_acc(kb=0.5, bw=2)
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, tp = verify_tiled(acc, BANDS, tmp_path, seed=8, gaps=gaps, cache_dir=rtl_cache)
    assert tp.plan.tiled and result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > tp.expected_cycles
