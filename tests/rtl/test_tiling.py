"""Host-side tiling (dataflows.tiling): a layer that one call of the generated array cannot run goes
as output tiles (bands or 2-D), K tiles and channel groups, each call a sub-layer with its own
pad_top/pad_left registers; the host adds the channel groups' partial sums. Bit-exact against numpy
on the whole layer and cycle-exact against the simulator's rtl profile, which plans with the same
function; a wrong pad_top register, a dropped partial sum or a wrong channel slice turns it red."""

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
    conv("m", c=12, k=6, h=6, r=3, pad=1),  # needs channel groups below 1 kB
    gemm("n", 3, 40, 6),
    conv("o", c=40, k=6, h=5, r=3, pad=1),  # one pixel of all channels (360 B) fits no call: groups
]


@pytest.mark.parametrize(
    "template,kb", [("systolic-ws", 0.5), ("systolic-ws", 0.25), ("systolic-os", 1.0), ("systolic-os", 0.25)]
)
def test_plan_covers_every_output_once_and_every_call_passes_the_checks(template, kb):
    """Every (input channel, output channel, output pixel) once, whatever the plan's options."""
    acc = small_acc(template, kb=kb)
    params = params_from_accelerator(acc)
    tiled = grouped = 0
    for layer in LAYERS:
        for k_tile, columns, groups in itertools.product((None, 4), (False, True), (False, True)):
            try:
                plan = plan_layer(params, layer, k_tile, columns, groups)
            except RtlError:
                continue
            check_tiled(params, layer, columns, groups) if k_tile is None else None
            seen = np.zeros((layer.c, layer.k, layer.p, layer.q), dtype=np.int64)
            for call in plan.calls:
                seen[call.c0 : call.c1, call.k0 : call.k1, call.p0 : call.p1, call.q0 : call.q1] += 1
                first_row = call.p0 * layer.stride_h - layer.pad_h  # the tile's first tap row and column
                first_col = call.q0 * layer.stride_w - layer.pad_w
                assert call.h0 == max(0, first_row) and call.pad_top == max(0, -first_row)
                assert call.w0 == max(0, first_col) and call.pad_left == max(0, -first_col)
                assert call.h1 == min(layer.h, (call.p1 - 1) * layer.stride_h - layer.pad_h + layer.r)
                assert call.w1 == min(layer.w, (call.q1 - 1) * layer.stride_w - layer.pad_w + layer.s)
            assert (seen == 1).all(), (layer.name, plan.calls)
            assert groups or not plan.grouped
            assert columns or {(c.q0, c.q1) for c in plan.calls} == {(0, layer.q)}
            x, w = random_tensors(params, layer, np.random.default_rng(1))
            tp = prepare_calls(params, layer, x, w, plan=plan)  # every call through the hardware checks
            assert tp.expected_cycles == sum(p.expected_cycles for p in tp.calls) + CALL_GAP_CYCLES * (
                len(tp.calls) - 1
            )
            tiled += plan.tiled
            grouped += plan.grouped
    assert tiled >= 3 and grouped >= 1, (tiled, grouped)


def test_a_layer_no_call_fits_is_refused_in_one_line():
    acc = small_acc(kb=0.25)  # a call holds 64 input bytes
    with pytest.raises(TilingError, match=r"layer 'x': no call fits \(one output pixel reads 72 input bytes"):
        plan_calls(conv("x", c=8, k=4, h=5, r=3, pad=1), call_limits(acc), groups=False)
    with pytest.raises(TilingError, match=r"layer 'd': no call fits \(10 output lines exceed the output bank depth 8"):
        plan_calls(conv("d", c=3, k=7, h=12, w=10, r=3, stride=1, pad=1), call_limits(acc), None, False, False)
    with pytest.raises(TilingError, match=r"'big': no call fits \(one output pixel of one channel reads 81 input"):
        plan_calls(conv("big", c=2, k=4, h=9, r=9), call_limits(acc))  # channel groups cannot split a 9x9 tap
    os_lim = call_limits(small_acc("systolic-os", kb=0.25))  # 32 weight lines
    with pytest.raises(TilingError, match=r"'os': no call fits \(C\*R\*S of one channel = 49 exceeds the weight"):
        plan_calls(conv("os", c=2, k=4, h=7, r=7), os_lim)
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
# a whole output row does not fit (whole C): 2-D output tiles, pad_left only on the left column of tiles
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
        plan_layer(params, layer, columns=False, groups=False)
    plan = plan_layer(params, layer, groups=False)
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

    checked = grouped = 0
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
            try:  # the simulator running a given plan: whole C (bands or 2-D)
                whole_c = plan_layer(params, layer, groups=False)
            except RtlError:
                whole_c = plan_layer(params, layer, k_tile=cols, groups=True)
            x_cycles = prepare_calls(params, layer, x, w, plan=whole_c).expected_cycles
            assert simulate_calls(layer, acc, whole_c, "rtl").total_cycles == x_cycles, (rows, cols, bw, kb, layer)
            grouped += plan.grouped
            checked += 1
    assert checked >= 20 and grouped >= 5, (checked, grouped)


# channel groups: the host adds the groups' partial sums (2-D tiles and bands besides, as planned)
GROUPED = {
    "ws-groups-2d-bands": (small_acc(kb=0.5), conv("g", c=20, k=6, h=6, r=3, pad=1)),  # 180 B per pixel: groups
    "os-groups-weight-bank": (small_acc("systolic-os", kb=0.25), conv("x", c=8, k=4, h=5, r=3, pad=1)),  # C*R*S 72
    "ws-gemm-groups": (small_acc(kb=0.25), gemm("lin", 3, 100, 6)),  # 100 input features, 64-byte calls
}


@pytest.mark.parametrize("name", sorted(GROUPED))
def test_channel_groups_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    """Calls over channel groups (where whole C fits no call, or needs more calls), each group's
    partial sum leaving at accumulator width and summed by the host; the cycles are the simulator's
    rtl profile's."""
    acc, layer = GROUPED[name]
    params = params_from_accelerator(acc)
    try:
        whole_c = len(plan_layer(params, layer, groups=False).calls)
    except RtlError:
        whole_c = None
    simulated = simulated_cycles(acc, layer)
    result, tp = verify_tiled(acc, layer, tmp_path, seed=9, expected_cycles=simulated, cache_dir=rtl_cache)
    assert tp.plan.grouped and len({(c.c0, c.c1) for c in tp.plan.calls}) >= 2, tp.plan.calls
    assert whole_c is None or len(tp.plan.calls) < whole_c, (whole_c, len(tp.plan.calls))
    assert result.mismatches == 0 and result.raw["layer_mismatches"] == 0, result.raw
    assert result.rtl_cycles == simulated == tp.expected_cycles and result.passed, result.raw


def _grouped_outputs(tmp_path, rtl_cache, seed):
    """The hardware outputs of the WS grouped layer's calls, and its prepared calls."""
    acc, layer = GROUPED["ws-groups-2d-bands"]
    params = params_from_accelerator(acc)
    x, w = random_tensors(params, layer, np.random.default_rng(seed))
    tp = prepare_calls(params, layer, x, w)
    raw, failed, _, _ = run_job(params, job_for_calls(tp, seed, {}, None), tmp_path, "icarus", rtl_cache, False)
    assert not failed and raw["mismatches"] == 0, raw  # every call bit-exact on its own channels
    return tp, [np.array(o, dtype=np.int64) for o in raw["outputs"]]


def test_a_dropped_partial_sum_or_a_wrong_channel_slice_turns_the_layer_red(tmp_path, rtl_cache):
    """The host's sum over channel groups is what makes the layer exact: keeping only the last
    group's output (overwriting instead of adding) or feeding a group the wrong channels fails."""
    tp, outs = _grouped_outputs(tmp_path, rtl_cache, 10)
    assert (tp.assemble(outs) == tp.expected_out).all()
    last = np.zeros_like(tp.expected_out)
    for call, out in zip(tp.plan.calls, outs, strict=True):
        last[call.k0 : call.k1, call.p0 : call.p1, call.q0 : call.q1] = out  # a host that does not add
    assert (last != tp.expected_out).any()
    swapped = [outs[i ^ 1] if tp.plan.calls[i].c0 != tp.plan.calls[i ^ 1].c0 else outs[i] for i in range(len(outs))]
    assert (tp.assemble(swapped) == tp.expected_out).all()  # groups of one tile commute
    params = tp.params
    shifted = [(np.roll(x, 1, axis=0), w) for x, w in tp.call_inputs]  # each call reads its channels one off
    wrong = dataclasses.replace(
        tp, calls=tuple(dataclasses.replace(p, ifmap_beats=pack(x, params)) for p, (x, _) in zip(tp.calls, shifted))
    )
    raw, failed, _, _ = run_job(
        params, job_for_calls(wrong, 11, {}, None), tmp_path / "bad", "icarus", rtl_cache, False
    )
    bad = tp.assemble([np.array(o, dtype=np.int64) for o in raw["outputs"]])
    assert failed and (bad != tp.expected_out).any(), raw


def pack(x, params):
    from coexplore.rtl.program import pack_beats

    return pack_beats((x & 0xFF).astype(np.uint8), params.stream_bytes)


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
