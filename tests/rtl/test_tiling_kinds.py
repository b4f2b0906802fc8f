"""Host-side tiling on the nvdla, sdn (shidiannao), is (systolic-is) and rs (eyeriss) generators: a layer one call
cannot hold runs as output-row bands (and K tiles), each call with its own pad_top/pad_left
registers; bit-exact against numpy on the whole layer, cycle-exact against the simulator's rtl
profile (which plans with the same ``dataflows.tiling`` function and ``tiling_kinds`` rules), and a
wrong pad_top register turns the check red on every kind."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from rtl_helpers import small_acc

from coexplore.dataflows.decompose import decomposes
from coexplore.dataflows.tiling import CALL_GAP_CYCLES, RULES, call_limits, kind_of
from coexplore.dataflows.tiling_kinds import CallShape
from coexplore.models.ir import conv, gemm
from coexplore.rtl.kinds import kind_of as kind_of_params
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import call_geometry, check_tiled, limits_of, plan_layer, prepare, prepare_calls
from coexplore.rtl.verify import job_for_calls, random_tensors, run_job, verify_tiled
from coexplore.sim.cycle import simulate_layer
from coexplore.sim.cycle.simulator import simulate_calls

KINDS = {"nvdla": "nvdla", "shidiannao": "sdn", "systolic-is": "is", "eyeriss": "rs"}  # template -> kind

BANDS = conv("c", c=2, k=6, h=9, r=3, stride=2, pad=1)  # two bands at 4x4 / 0.5 kB


def _stream_width(acc):
    return dataclasses.replace(acc, dram_bw_bytes_per_cycle=float(params_from_accelerator(acc).stream_bytes))


@pytest.mark.parametrize("template", sorted(KINDS))
def test_simulator_and_rtl_host_derive_the_same_limits(template):
    """``dataflows.tiling.call_limits`` (from the accelerator) equals the host's ``call_limits`` (from
    the RTL parameters) over a sweep of small designs."""
    checked = 0
    for rows, cols, kb, bw, acc_bits in itertools.product((2, 3, 8), (1, 5, 8), (0.25, 1, 3.3), (None, 2, 8), (20, 32)):
        acc = dataclasses.replace(small_acc(template, rows=rows, cols=cols, bw=bw, kb=kb), acc_bits=acc_bits)
        try:
            params = params_from_accelerator(acc)
        except RtlError:
            continue
        assert kind_of(acc) == KINDS[template]
        assert call_limits(acc) == limits_of(params), (rows, cols, kb, bw, acc_bits)
        checked += 1
    assert checked >= 30


SWEEP = (
    BANDS,
    conv("a", c=4, k=8, h=8, r=3),
    conv("d", c=16, k=16, h=12, r=3, pad=1),
    conv("e", c=2, k=33, h=9, r=5, pad=2),
    conv("f", c=3, k=12, h=32, r=7, stride=2, pad=3),
    conv("h", c=5, k=70, h=20, r=1),
    gemm("g", m=300, k=40, n=24),
)


@pytest.mark.parametrize("template", sorted(KINDS))
def test_rtl_profile_is_the_tiled_hardware_timing_model(template):
    """Every small design/layer pair that needs several calls: the plan covers every output and channel once,
    every call passes the hardware's checks, and ``simulate_layer(..., "rtl")`` equals the host's
    timing model (the calls' models plus the idle cycles between them)."""
    checked = 0
    for (rows, cols), bw, kb in itertools.product([(4, 4), (8, 8), (4, 8)], [1, 4, 8], [0.5, 1, 2]):
        acc = small_acc(template, rows=rows, cols=cols, bw=bw, kb=kb)
        try:
            params = params_from_accelerator(acc)
        except RtlError:
            continue
        for layer in SWEEP:
            if decomposes(layer, limits_of(params)):  # e.g. nvdla's 5x5 as tap groups: tests/rtl/test_decompose.py
                continue
            try:
                plan = check_tiled(params, layer)
            except RtlError:
                continue
            if not plan.tiled or len(plan.calls) > 64:  # rs plans run to hundreds of calls: kept short
                continue
            seen = np.zeros((layer.k, layer.p, layer.q), dtype=np.int64)
            for call in plan.calls:
                seen[call.k0 : call.k1, call.p0 : call.p1, call.q0 : call.q1] += call.c
            assert (seen == layer.c).all(), (layer.name, plan.calls)  # every output, every channel once
            x, w = random_tensors(params, layer, np.random.default_rng(0))
            tp = prepare_calls(params, layer, x, w, plan=plan)
            assert tp.expected_cycles == sum(p.expected_cycles for p in tp.calls) + CALL_GAP_CYCLES * (
                len(plan.calls) - 1
            )
            sim = simulate_layer(layer, acc, "rtl")
            assert sim.total_cycles == tp.expected_cycles, (rows, cols, bw, kb, layer)
            assert sim.extra["calls"] == len(plan.calls)
            checked += 1
    assert checked >= 20, checked


PAD2 = conv("h", c=1, k=3, h=12, w=6, r=5, stride=1, pad=2)  # at 0.25 kB: two bands, pad_top 2 then 0


@pytest.mark.parametrize("template", sorted(KINDS))
def test_the_planners_fold_count_is_the_hardwares(template):
    """The rule's fold count (``dataflows.tiling_kinds``, what the planner bounds by the 16-bit
    fold-count register) equals the product of the host's folds on every call's geometry."""
    checked = 0
    for (rows, cols), kb in itertools.product([(4, 4), (3, 5), (8, 2)], [0.5, 2]):
        acc = small_acc(template, rows=rows, cols=cols, bw=4, kb=kb)
        params = params_from_accelerator(acc)
        host = kind_of_params(params).program_module()
        for layer in SWEEP:
            try:
                plan = plan_layer(params, layer)
            except RtlError:
                continue
            lim = limits_of(params)
            for call in plan.calls:
                geo = call_geometry(plan, call)
                shape = CallShape(layer, call.c, call.h, call.w, call.p, call.q, call.k, rows, cols, lim.stream_bytes)
                assert RULES[params.kind].folds(shape) == int(np.prod(host.folds(params, geo))), (layer.name, call)
                checked += 1
    assert checked >= 20, checked


TILED = {
    # two bands: the first padded on top, the second starting on a halo row
    "nvdla-2-bands": (small_acc("nvdla", kb=0.5), BANDS),
    "sdn-2-bands": (small_acc("shidiannao", kb=0.5), BANDS),
    "is-2-bands": (small_acc("systolic-is", kb=0.5), BANDS),
    "rs-2-bands": (small_acc("eyeriss", kb=2.0), BANDS),  # rs: a replica per PE (16 at 4x4)
    # one output row per call: pad_top 2, 1, 0, ..., then bottom padding from the bounds check (nvdla:
    # 3x3 at most, with the filter scratchpad for 9 taps)
    "nvdla-bands-1-row": (
        dataclasses.replace(small_acc("nvdla", kb=0.25, bw=8), filter_sram_kb=1.0),
        conv("h", c=3, k=3, h=8, w=6, r=3, stride=1, pad=1),
    ),
    "sdn-bands-pad2": (small_acc("shidiannao", kb=0.25, bw=8), PAD2),
    "is-bands-pad2": (small_acc("systolic-is", kb=0.25, bw=8), PAD2),
    "rs-bands-pad2": (small_acc("eyeriss", kb=1.0, bw=8), PAD2),
    # 2-D tiles of a 1x1 conv, the last one column wide (the GEMM's shape): sdn keeps the conv mapping
    "sdn-1x1-column-tail": (small_acc("shidiannao", kb=0.25, bw=8), conv("o", c=8, k=3, h=4, w=5, r=1)),
    # a linear layer's tokens in bands (sdn: its GEMM mapping, tokens on rows)
    "sdn-gemm-bands": (small_acc("shidiannao", rows=3, cols=5, kb=0.5, bw=2), gemm("g", 40, 6, 9)),
}


@pytest.mark.parametrize("name", sorted(TILED))
def test_tiled_layer_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    """A layer one call cannot hold, as output-row bands: every call and the assembled layer
    bit-exact, the cycles those of the simulator's rtl profile running the same calls."""
    acc, layer = TILED[name]
    params = params_from_accelerator(acc)
    with pytest.raises(RtlError):
        prepare(params, layer)
    plan = plan_layer(params, layer)
    simulated = int(simulate_calls(layer, _stream_width(acc), plan, "rtl").total_cycles)
    result, tp = verify_tiled(acc, layer, tmp_path, seed=4, expected_cycles=simulated, plan=plan, cache_dir=rtl_cache)
    assert tp.plan.tiled and tp.plan.calls[0].pad_top == layer.pad_h
    assert result.mismatches == 0 and result.raw["layer_mismatches"] == 0, result.raw
    assert result.rtl_cycles == result.raw["bench_cycles"] == simulated == tp.expected_cycles, result.raw
    assert result.passed, result.raw


# K tiles forced to one column fold on top of the bands
K_TILED = {
    "nvdla": (small_acc("nvdla", kb=0.5), BANDS, 4),
    "sdn": (small_acc("shidiannao", kb=0.5), BANDS, 4),
    "is": (small_acc("systolic-is", kb=0.5), BANDS, 4),
    "rs": (small_acc("eyeriss", kb=2.0), BANDS, 4),
}


@pytest.mark.parametrize(
    "kind", [k if k == "nvdla" else pytest.param(k, marks=pytest.mark.slow) for k in sorted(K_TILED)]
)
def test_bands_and_k_tiles_bit_and_cycle_exact(kind, tmp_path, rtl_cache):
    """Bands x K tiles, cycle-exact against the simulator running the same plan."""
    acc, layer, k_tile = K_TILED[kind]
    plan = plan_layer(params_from_accelerator(acc), layer, k_tile=k_tile)
    assert len({c.k0 for c in plan.calls}) >= 2 and len({c.p0 for c in plan.calls}) >= 2
    simulated = int(simulate_calls(layer, _stream_width(acc), plan, "rtl").total_cycles)
    result, tp = verify_tiled(acc, layer, tmp_path, seed=5, expected_cycles=simulated, plan=plan, cache_dir=rtl_cache)
    assert result.mismatches == 0 and result.raw["layer_mismatches"] == 0, result.raw
    assert result.rtl_cycles == simulated == tp.expected_cycles and result.passed, result.raw


@pytest.mark.parametrize("name", ["nvdla-2-bands", "sdn-2-bands", "is-2-bands", "rs-2-bands"])
def test_a_wrong_pad_top_register_turns_the_check_red(name, tmp_path, rtl_cache):
    """The first band's pad_top register set to 0 (as if every call were padded like the layer's
    interior): the hardware reads the band one row off and the bit-exact check fails."""
    acc, layer = TILED[name]
    params = params_from_accelerator(acc)
    x, w = random_tensors(params, layer, np.random.default_rng(6))
    tp = prepare_calls(params, layer, x, w)
    first = tp.calls[0]
    assert first.cfg["pad_top"] == layer.pad_h > 0
    bad_cfg = {**first.cfg, "pad_top": 0, **_pad_w_regs(first.cfg, first.geo.w)}
    bad = dataclasses.replace(tp, calls=(dataclasses.replace(first, cfg=bad_cfg), *tp.calls[1:]))
    raw, failed, _, _ = run_job(params, job_for_calls(bad, 6, {}, None), tmp_path, "icarus", rtl_cache, False)
    assert failed and raw["mismatches"] > 0, raw


def _pad_w_regs(cfg: dict[str, int], w: int) -> dict[str, int]:
    """The registers derived from pad_top, consistent with pad_top = 0 (pad_w; sdn's pad_rw)."""
    out = {"pad_w": cfg["pad_left"]} if "pad_w" in cfg else {}
    if "pad_rw" in cfg:
        out["pad_rw"] = 0
    return out


@pytest.mark.parametrize("name", ["sdn-2-bands", pytest.param("rs-2-bands", marks=pytest.mark.slow)])
def test_tiled_layer_stays_bit_exact_under_stream_gaps(name, tmp_path, rtl_cache):
    """External memory withholding valid/ready at random across the calls: exact, only slower."""
    acc, layer = TILED[name]
    gaps = {"ifmap": 0.3, "weight": 0.3, "ofmap": 0.3}
    result, tp = verify_tiled(acc, layer, tmp_path, seed=8, gaps=gaps, cache_dir=rtl_cache)
    assert tp.plan.tiled and result.passed and result.mismatches == 0, result.raw
    assert result.rtl_cycles > tp.expected_cycles


NETWORK_ACCS = {  # the tiny CNN of tests/rtl/test_network.py with its convs and linear layer tiled
    "nvdla": dataclasses.replace(small_acc("nvdla", kb=0.125), filter_sram_kb=1.0),
    "shidiannao": small_acc("shidiannao", kb=0.125),
    "systolic-is": small_acc("systolic-is", kb=0.125),
    "eyeriss": small_acc("eyeriss", kb=0.5),
}


@pytest.mark.parametrize(
    "template", [t if t == "nvdla" else pytest.param(t, marks=pytest.mark.slow) for t in sorted(NETWORK_ACCS)]
)
def test_tiny_network_with_tiled_layers_bit_and_cycle_exact(template, tmp_path, rtl_cache):
    """A whole network (conv, host pool, conv, linear) layer by layer: every output bit-exact, every
    layer's cycles (tiled ones too) the simulator's rtl profile."""
    from test_network import rtl_cycles, tiny_network

    from coexplore.rtl.network import run_network

    check = run_network(
        NETWORK_ACCS[template], tiny_network(), tmp_path, simulated=rtl_cycles, seed=1, cache_dir=rtl_cache
    )
    assert check.passed and check.rtl_cycles == check.simulated_cycles > 0, check.table()
    assert max(row.calls for row in check.layers) > 1, check.table()
    assert all(row.mismatches == row.network_mismatches == 0 for row in check.layers), check.table()


def test_nvdla_tiling_refuses_a_big_kernel_and_the_host_splits_its_taps() -> None:
    """A 5x5 kernel has more taps than an nvdla PE holds (9): no plan of calls fits it (the reason in
    one line), so the host runs it as tap groups (``dataflows.decompose``) of at most 9 taps, each
    sub-layer a plan of calls that passes the hardware's checks."""
    from coexplore.dataflows.decompose import DecomposedPlan
    from coexplore.dataflows.tiling import TilingError, plan_calls

    acc = small_acc("nvdla", kb=0.5)
    layer, lim = conv("t5", c=3, k=5, h=9, r=5, pad=2), call_limits(acc)
    assert lim is not None and lim.reduction == 9
    with pytest.raises(TilingError, match="R\\*S taps per PE of one channel = 25 exceeds the weight bank depth 9"):
        plan_calls(layer, lim)
    plan = check_tiled(params_from_accelerator(acc), layer)
    assert isinstance(plan, DecomposedPlan) and len(plan.decomposition.taps) == 4
    for part, sub in zip(plan.decomposition.parts, plan.plans, strict=True):
        assert part.layer.r * part.layer.s <= lim.reduction and sub.calls  # each call checked by check_tiled
