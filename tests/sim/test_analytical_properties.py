"""Properties the cost model must hold for every layer and design, so a search cannot exploit a cliff.

- latency >= MACs / PEs; energy >= MACs x the MAC energy at the layer's widths; stalls >= 0;
- more DRAM or NoC bandwidth is never slower; unlimited bandwidth never stalls;
- more scratchpad is never slower by more than one fold's exposed load (a tile that now fits is
  loaded whole before its fold instead of pass by pass behind compute: at most the largest fold's
  tiles at the port bandwidth), because the mapper may keep streaming an input that fits;
- a bigger array never needs more folds under any candidate mapping.

All hold in profile ``ideal``, in ``rtl`` on every template (all are generated hardware there), and in
``scalesim`` except the buffer property on SCALE-Sim's own arrays with a DRAM limit, where the
profile is SCALE-Sim v3's own buffer emulation (see that test). On the generated hardware (profile
``rtl``) a layer runs as the calls of a plan (``dataflows.tiling``): the planner picks the plan of the
fewest cycles among those that fit (``cheapest_option``; the fewest channel groups, then calls, only
breaks ties), and a plan that fits a smaller buffer fits a bigger one, so more buffer does not pick a
slower plan (the fewest-calls rule did: e.g. an OS 13x35 array, a 56x64 @ 64x222 GEMM, 109,791 ->
146,747 cycles at twice the filter buffer). The issue's cliff (a strided 1x1 conv: an input that
fits was loaded whole, unused rows included) is gone too: the host gathers the rows and columns a
stride larger than the kernel reads (``dataflows.decompose``); a test below goes red without it. The
property is asked of designs whose hardware runs the layer (``runs_on_the_hardware``): where no
call fits, the profile has no hardware to time and falls back to the fold model's own tiles, an
estimate that a bigger (runnable) design's real calls can exceed many times."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coexplore.dataflows.decompose import candidate_blocks, decomposes
from coexplore.dataflows.io import builtin_templates, get_profile, get_template
from coexplore.dataflows.mapping import candidate_mappings, plan_folds, resolve_profile
from coexplore.dataflows.spec import Accelerator, Operand, TimingProfile
from coexplore.dataflows.tiling import TilingError, call_limits, plan_options
from coexplore.models.ir import Layer, OpKind, conv, gemm, matmul
from coexplore.sim.analytical import choose_mapping, evaluate_batch, evaluate_layer
from coexplore.sim.cycle.schedule import build_schedule
from coexplore.sim.cycle.simulator import layer_accelerator, simulate_layer
from coexplore.sim.tech import DEFAULT_TECH

TEMPLATES = sorted(builtin_templates())
HARDWARE = tuple(t for t in TEMPLATES if get_profile("rtl").for_template(t).generated_hardware)
NOT_SCALESIM = tuple(t for t in TEMPLATES if not t.startswith("systolic-"))
PROFILES = ("rtl", "scalesim", "ideal")
# The closed form approximates the fold-level simulator (validate: 2 % mean, 5 % max on the zoo's
# layers; up to ~20 % on some random small shidiannao layers), so where it inverts the buffer property
# the simulator, same mapping, is asked (``holds_or_model_error``): in 10^5 random pairs ~0.5 % of
# pairs invert in the closed form (e.g. a 2x 124x362 @ 362x336 matmul on a 14x1 systolic-os at
# 2 B/cycle, shared port: closed form +0.7 % at twice the buffer, simulator -0.04 %), none in the
# simulator. The cliffs this guards against are 10-270 %.
MODEL_TOLERANCE = 0.01
# What remains (measured: 70 of 10^5 pairs in ideal, 65 in rtl on shidiannao, up to +15 % / +75 % on
# tiny layers): the fold memory model splits a fold into ceil(tile / half scratchpad) passes whose
# loads pipeline behind compute; a bigger buffer means fewer, longer passes, so less overlap. The
# mapper does not choose the pass count (yet); the slow test bounds how often this bites.
RESIDUAL_INVERSIONS = 1e-3
# rtl on the generated hardware (measured 2026-12-03, this test's pairs): 1,111 closed-form inversions beyond
# the slack among pairs whose smaller design runs the layer, 58 of a sample of 60 confirmed by the simulator
# (nvdla tap groups, plans within a grouping not compared: see the note above the fewest-calls test).
# Not yet 1e-3.
RESIDUAL_RTL = 1.5e-2
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layers(draw: st.DrawFn, with_vector: bool = True) -> Layer:
    kinds = ["conv", "dw", "gemm", "matmul"] + (["pool", "eltwise"] if with_vector else [])
    kind = draw(st.sampled_from(kinds))
    bits = draw(st.sampled_from([4, 8]))
    if kind in ("gemm", "matmul"):
        m, k, n = (draw(st.integers(1, 300)) for _ in range(3))
        return (
            gemm("g", m, k, n, bits=bits)
            if kind == "gemm"
            else matmul("mm", m, k, n, batch=draw(st.integers(1, 4)), bits=bits)
        )
    h = draw(st.integers(3, 40))
    c = draw(st.integers(1, 96))
    if kind == "eltwise":
        return Layer("add", OpKind.ELTWISE, k=c, c=c, h=h, w=h, operands=draw(st.integers(2, 3)))
    r = draw(st.sampled_from([1, 2, 3, 5]))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, r // 2))
    r = min(r, h + 2 * pad)
    if kind == "pool":  # no padding: the window fits the unpadded input
        r = min(r, h)
        return Layer("pool", OpKind.POOL, k=c, c=c, h=h, w=h, r=r, s=r, stride_h=stride, stride_w=stride, groups=c)
    if kind == "dw":
        return conv("dw", c=c, k=c, h=h, r=r, stride=stride, pad=pad, groups=c, bits=bits)
    return conv("c", c=c, k=draw(st.integers(1, 96)), h=h, r=r, stride=stride, pad=pad, bits=bits)


@st.composite
def designs(draw: st.DrawFn, templates: tuple[str, ...] = tuple(TEMPLATES)) -> Accelerator:
    return Accelerator(
        dataflow=get_template(draw(st.sampled_from(templates))),
        rows=draw(st.integers(1, 40)),
        cols=draw(st.integers(1, 40)),
        ifmap_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        filter_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        ofmap_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        dram_bw_bytes_per_cycle=draw(st.sampled_from([None, 1.0, 4.0, 32.0])),
        noc_bw_bytes_per_cycle=draw(st.sampled_from([None, 2.0, 16.0, 128.0])),
        dram_ports=draw(st.sampled_from(["per_operand", "shared"])),
        input_bits=draw(st.sampled_from([8, 16])),
        weight_bits=draw(st.sampled_from([8, 12])),
        acc_bits=draw(st.sampled_from([16, 32])),
        tech_node_nm=draw(st.sampled_from([45.0, 28.0])),
    )


profiles = st.sampled_from(PROFILES)


def exposed_load_cycles(layer: Layer, acc: Accelerator, prof: TimingProfile | str) -> float:
    """One fold's exposed load: the largest fold's tiles (input, weight, output) at the DRAM bandwidth,
    under the mapping the mapper picks, plus the drain's fixed latencies. A pooling or element-wise
    layer is one fold: its chunks pipeline load, compute and drain, so fewer (bigger) chunks expose
    up to its whole load and drain."""
    if acc.dram_bw_bytes_per_cycle is None:
        return 0.0
    if not layer.kind.has_macs:
        nbytes = (layer.input_words + layer.output_words) * acc.input_bits / 8
        return float(math.ceil(nbytes / acc.dram_bw_bytes_per_cycle) + 2)
    p = resolve_profile(prof)
    chosen = choose_mapping(layer, acc, p)
    run = layer_accelerator(layer, acc, p)
    sched = build_schedule(layer, run, chosen.loops)
    nbytes = {
        Operand.INPUT: math.ceil(run.input_bits / 8),
        Operand.WEIGHT: math.ceil(run.weight_bits / 8),
        Operand.OUTPUT: math.ceil(run.acc_bits / 8),
    }
    pt = p.for_template(acc.dataflow.name)
    bw = acc.dram_bw_bytes_per_cycle
    beats = sum(math.ceil(float(sched.tile_words[op].max()) * nbytes[op] / bw) for op in nbytes)
    if pt.array_padded_tiles:  # weight / output tiles move array-shaped: whole beats per array line
        beats += 2 * acc.rows * math.ceil(acc.cols * 4 / acc.dram_bw_bytes_per_cycle)
    if pt.weight_line_words:
        beats += acc.rows * math.ceil(pt.weight_line_words * nbytes[Operand.WEIGHT] / acc.dram_bw_bytes_per_cycle)
    return float(beats + pt.drain_latency_cycles + pt.drain_setup_cycles + 1)


def more_buffer_is_never_slower(layer: Layer, acc: Accelerator, prof: TimingProfile | str, factor: float) -> None:
    variants = [
        replace(acc, ifmap_sram_kb=acc.ifmap_sram_kb * factor),
        replace(acc, filter_sram_kb=acc.filter_sram_kb * factor),
        replace(acc, ofmap_sram_kb=acc.ofmap_sram_kb * factor),
        replace(
            acc,
            ifmap_sram_kb=acc.ifmap_sram_kb * factor,
            filter_sram_kb=acc.filter_sram_kb * factor,
            ofmap_sram_kb=acc.ofmap_sram_kb * factor,
        ),
    ]
    lat = evaluate_batch([layer], [acc] + variants, prof).latency_cycles[:, 0]
    for v, big in zip(variants, lat[1:]):
        if big > lat[0]:
            assert holds_or_model_error(layer, acc, v, prof, lat[0], big), (layer.describe(), v, big, lat[0])


def holds_or_model_error(
    layer: Layer, small: Accelerator, big: Accelerator, prof: TimingProfile | str, lat_small: float, lat_big: float
) -> bool:
    """The buffer property on the closed form; where the closed form inverts it by more than its
    slack, the fold-level simulator (the tier it approximates, same mapping choice) must hold it."""
    slack = max(exposed_load_cycles(layer, small, prof), exposed_load_cycles(layer, big, prof))
    if lat_big <= lat_small * (1 + MODEL_TOLERANCE) + slack:
        return True
    if not layer.kind.has_macs:
        return False
    sim_small = simulate_layer(layer, small, prof).total_cycles
    sim_big = simulate_layer(layer, big, prof).total_cycles
    return sim_big <= sim_small * (1 + MODEL_TOLERANCE) + slack


# ---- bounds ------------------------------------------------------------------------------------------
@FEW
@given(layers(), designs(), profiles)
def test_latency_is_at_least_macs_per_pe_and_stalls_are_never_negative(
    layer: Layer, acc: Accelerator, prof: str
) -> None:
    m = evaluate_layer(layer, acc, prof)
    # SCALE-Sim counts cycles from 0, and each group of a grouped layer from 0 (sim/analytical.py runs
    # one group and multiplies, as SCALE-Sim would be run per group): one cycle per group
    slack = layer.groups if prof == "scalesim" else 0
    assert m.latency_cycles >= layer.macs / acc.pes - slack
    assert m.stall_cycles >= 0 and m.latency_cycles == m.compute_cycles + m.stall_cycles
    if prof != "scalesim":  # there a one-cycle layer counts 0 cycles (from 0), and utilization is moot
        assert m.utilization <= 1.0 + 1e-12


@FEW
@given(layers(), designs(), profiles)
def test_energy_is_at_least_macs_times_mac_energy(layer: Layer, acc: Accelerator, prof: str) -> None:
    m = evaluate_layer(layer, acc, prof)
    tech = DEFAULT_TECH.scaled(acc.tech_node_nm)
    assert m.energy_pj >= layer.macs * tech.mac_pj(layer.input_bits, layer.weight_bits, acc.acc_bits) * (1 - 1e-12)
    assert all(v >= 0 for v in m.energy_breakdown_pj.values())


# ---- monotonicity ------------------------------------------------------------------------------------
@FEW
@given(layers(), designs(), profiles, st.sampled_from([1.5, 2.0, 8.0]))
# Found by hypothesis: a 1-row systolic-os array got a pipeline cycle it does not have (fill's stage term
# was max(stages - rows + 2, 0), i.e. 1 at rows=1, stages=0) where the DRAM limit was lifted: 1 vs 0 cycles.
@example(
    gemm("g", 1, 1, 1, bits=4),
    Accelerator(get_template("systolic-os"), 1, 1, dram_bw_bytes_per_cycle=1.0),
    "scalesim",
    1.5,
)
def test_more_bandwidth_is_never_slower(layer: Layer, acc: Accelerator, prof: str, factor: float) -> None:
    def more(bw: float | None) -> float | None:
        return None if bw is None else bw * factor

    variants = [
        replace(acc, dram_bw_bytes_per_cycle=more(acc.dram_bw_bytes_per_cycle)),
        replace(acc, dram_bw_bytes_per_cycle=None),
        replace(acc, noc_bw_bytes_per_cycle=more(acc.noc_bw_bytes_per_cycle)),
        replace(acc, noc_bw_bytes_per_cycle=None),
    ]
    batch = evaluate_batch([layer], [acc] + variants, prof)
    for i, v in enumerate(variants, start=1):
        assert batch.latency_cycles[i, 0] <= batch.latency_cycles[0, 0] * (1 + 1e-12), v


@FEW
@given(layers(), designs(), st.sampled_from([1.5, 2.0, 8.0]))
def test_more_buffer_is_never_slower_beyond_one_folds_exposed_load(
    layer: Layer, acc: Accelerator, factor: float
) -> None:
    more_buffer_is_never_slower(layer, acc, "ideal", factor)


@FEW
@given(layers(), designs(NOT_SCALESIM), st.sampled_from([1.5, 2.0, 8.0]))
def test_more_buffer_is_never_slower_in_profile_scalesim_off_scalesims_arrays(
    layer: Layer, acc: Accelerator, factor: float
) -> None:
    """On its own three arrays with a DRAM limit, profile scalesim is SCALE-Sim v3's buffer emulation,
    held to SCALE-Sim's measured cycles; its read windows shift with the buffer size, so there more
    buffer can cost cycles (e.g. a 124x362 @ 362x336 matmul on a systolic-os array: +0.7 % at twice
    the buffer). Everywhere else the profile's fold model holds the property."""
    more_buffer_is_never_slower(layer, acc, "scalesim", factor)


def runs_on_the_hardware(layer: Layer, acc: Accelerator) -> bool:
    """Profile ``rtl`` times ``layer`` on ``acc``'s generated hardware (a plan of calls, of its
    sub-layers when it decomposes, fits), or by a closed form that no call limit bounds (a layer
    without MACs, unlimited bandwidth, a kind not tiled)."""
    lim = call_limits(acc)
    if not layer.kind.has_macs or acc.dram_bw_bytes_per_cycle is None or lim is None:
        return True
    if decomposes(layer, lim):
        return bool(candidate_blocks(layer, lim))
    try:
        plan_options(layer, lim)
    except TilingError:
        return False
    return True


def _hw(
    template: str, rows: int, cols: int, kb: tuple[float, float, float], bw: float, ports: str, bits: int
) -> Accelerator:
    i, f, o = kb
    return Accelerator(get_template(template), rows, cols, i, f, o, None, bw, ports, bits, 8, 32)


# Plans the fewest-calls rule chose with more buffer that take more cycles; the cheapest plan of those that
# fit holds them (more channel groups gave fewer calls, or fewer groups gave more).
FEWEST_CALLS_INVERSIONS = [
    (conv("c", c=81, k=59, h=40, r=1), _hw("systolic-is", 21, 40, (2, 0.5, 16), 1, "per_operand", 16), 2.0),
    (gemm("g", 56, 64, 222), _hw("systolic-os", 13, 35, (2, 2, 16), 4, "shared", 8), 2.0),
]


@pytest.mark.parametrize("layer, acc, factor", FEWEST_CALLS_INVERSIONS)
def test_more_buffer_does_not_pick_a_slower_plan(layer: Layer, acc: Accelerator, factor: float) -> None:
    more_buffer_is_never_slower(layer, acc, "rtl", factor)


# Not yet a default test over random generated-hardware designs: ~2 % of random (layer, design, factor)
# triples still invert in profile rtl (2026-12-03): nvdla kernels split into tap groups only when the
# filter buffer is too small (a bigger one forces the whole kernel, up to 1.7x slower), and the planner
# compares one plan per channel grouping (tile heights and widths within a grouping, and the whole layer
# against tiled plans, are not compared). The fixed cases are pinned above; the slow test counts the rest.


def test_the_buffer_property_goes_red_with_the_fewest_calls_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's former rule (fewest channel groups, then fewest calls; ``plan_calls``) on both
    tiers: twice the filter buffer allows two groups instead of three, in more calls, 34 % slower."""
    from coexplore.dataflows import tiling
    from coexplore.sim import tiled
    from coexplore.sim.cycle import simulator

    layer, acc = gemm("g", 56, 64, 222), _hw("systolic-os", 13, 35, (2, 2, 16), 4, "shared", 8)
    more_buffer_is_never_slower(layer, acc, "rtl", 2.0)

    def fewest_calls(layer: Layer, lim: tiling.LimitArrays) -> np.ndarray:
        """Each design's one option: the fewest groups, then calls (first: widest), as plan_calls."""
        options = tiling.band_options(layer, lim)
        groups = -(-layer.c // np.maximum(options[:, :, 0], 1))
        rank = np.where(options[:, :, 4] > 0, groups * 2**40 + options[:, :, 4], 2**62)
        every = np.arange(len(options))
        out = np.zeros_like(options)
        out[every, 0] = options[every, np.argmin(rank, axis=1)]
        return out

    monkeypatch.setattr(tiled, "band_options", fewest_calls)
    monkeypatch.setattr(simulator, "cheapest_option", lambda layer, lim, cycles: tiling.plan_calls(layer, lim))
    simulator.tiling_plan.cache_clear()
    try:
        with pytest.raises(AssertionError):
            more_buffer_is_never_slower(layer, acc, "rtl", 2.0)
    finally:
        simulator.tiling_plan.cache_clear()


def test_more_buffer_is_never_slower_on_the_generated_hardware() -> None:
    # The case: systolic-os 8x32 at 1 B/cycle, 1x1 stride-2 conv 64->16 on 28x28.
    layer = conv("c", c=64, k=16, h=28, r=1, stride=2)
    acc = Accelerator(
        get_template("systolic-os"),
        8,
        32,
        ifmap_sram_kb=16,
        filter_sram_kb=16,
        ofmap_sram_kb=16,
        dram_bw_bytes_per_cycle=1.0,
    )
    more_buffer_is_never_slower(layer, acc, "rtl", 16.0)


def test_the_buffer_property_goes_red_when_the_resident_input_cliff_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same case passes on the generated hardware because the host gathers the rows a stride-2
    1x1 conv reads; switch the gather off (every input row loaded again) and the property fails."""
    from coexplore.dataflows import decompose as dec

    layer = conv("c", c=64, k=16, h=28, r=1, stride=2)
    acc = Accelerator(
        get_template("systolic-os"),
        8,
        32,
        ifmap_sram_kb=16,
        filter_sram_kb=16,
        ofmap_sram_kb=16,
        dram_bw_bytes_per_cycle=1.0,
    )
    more_buffer_is_never_slower(layer, acc, "rtl", 16.0)
    monkeypatch.setattr(dec, "skips_input", lambda layer: False)
    dec.decompose.cache_clear()
    try:
        with pytest.raises(AssertionError):
            more_buffer_is_never_slower(layer, acc, "rtl", 16.0)
    finally:
        dec.decompose.cache_clear()


@FEW
@given(layers(), designs(), profiles)
def test_unlimited_bandwidth_means_no_stalls(layer: Layer, acc: Accelerator, prof: str) -> None:
    m = evaluate_layer(layer, replace(acc, dram_bw_bytes_per_cycle=None, noc_bw_bytes_per_cycle=None), prof)
    assert m.stall_cycles == 0


@FEW
@given(
    layers(with_vector=False),
    st.sampled_from(TEMPLATES),
    st.integers(1, 32),
    st.integers(1, 32),
    st.integers(0, 32),
    st.integers(0, 32),
    profiles,
)
def test_more_pes_never_more_folds_under_any_candidate_mapping(
    layer: Layer, name: str, rows: int, cols: int, more_rows: int, more_cols: int, prof: str
) -> None:
    df = get_template(name)
    for lm in candidate_mappings(df, layer.kind, get_profile(prof)):
        small = plan_folds(lm.loops, layer.dims(), rows, cols)
        big = plan_folds(lm.loops, layer.dims(), rows + more_rows, cols + more_cols)
        assert int(big.folds) <= int(small.folds)
        assert int(big.folds) * int(big.temporal_steps) <= int(small.folds) * int(small.temporal_steps)


@settings(max_examples=15, deadline=None)
@given(st.lists(layers(), min_size=1, max_size=4), st.lists(designs(), min_size=1, max_size=4), profiles)
def test_batch_equals_single_on_random_grids(ls: list[Layer], accs: list[Accelerator], prof: str) -> None:
    batch = evaluate_batch(ls, accs, prof)
    for i, acc in enumerate(accs):
        for j, layer in enumerate(ls):
            m = evaluate_layer(layer, acc, prof)
            assert (batch.latency_cycles[i, j], batch.energy_pj[i, j]) == (m.latency_cycles, m.energy_pj)
    assert np.all(batch.area_um2 > 0)


# ---- 10^5 random pairs ---------------------------------------------------------------------------------
def _random_layers(rng: np.random.Generator, n: int) -> list[Layer]:
    out: list[Layer] = []
    for i in range(n):
        kind = rng.choice(["conv", "conv", "dw", "gemm", "matmul"])
        bits = int(rng.choice([4, 8]))
        if kind in ("gemm", "matmul"):
            m, k, nn = (int(x) for x in rng.integers(1, 400, size=3))
            out.append(
                gemm(f"g{i}", m, k, nn, bits=bits)
                if kind == "gemm"
                else matmul(f"m{i}", m, k, nn, batch=int(rng.integers(1, 4)), bits=bits)
            )
            continue
        h, c = int(rng.integers(3, 48)), int(rng.integers(1, 128))
        r = min(int(rng.choice([1, 3, 5])), h)
        stride, groups = int(rng.integers(1, 3)), (c if kind == "dw" else 1)
        out.append(
            conv(
                f"c{i}",
                c=c,
                k=c if kind == "dw" else int(rng.integers(1, 128)),
                h=h,
                r=r,
                stride=stride,
                groups=groups,
                bits=bits,
            )
        )
    return out


def _random_designs(rng: np.random.Generator, n: int, templates: tuple[str, ...]) -> list[Accelerator]:
    return [
        Accelerator(
            get_template(str(rng.choice(templates))),
            int(rng.integers(1, 48)),
            int(rng.integers(1, 48)),
            ifmap_sram_kb=float(rng.choice([0.5, 2, 8, 32, 128])),
            filter_sram_kb=float(rng.choice([0.5, 2, 8, 32, 128])),
            ofmap_sram_kb=float(rng.choice([0.5, 2, 8, 32, 128])),
            dram_bw_bytes_per_cycle=float(rng.choice([1, 2, 8, 32])),
            dram_ports=str(rng.choice(["per_operand", "shared"])),
            input_bits=8,
            weight_bits=8,
        )
        for _ in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("prof, templates", [("ideal", tuple(TEMPLATES)), ("rtl", HARDWARE)])
def test_properties_on_1e5_random_pairs(prof: str, templates: tuple[str, ...]) -> None:
    """200 layers x 500 designs per profile, with each design's bigger-buffer and faster-DRAM twins;
    in ``rtl`` (every template generated hardware) the buffer property on the pairs whose smaller
    design runs the layer (``runs_on_the_hardware``). (Profile scalesim's SCALE-Sim-shaped layers run
    SCALE-Sim's event emulation, ~20 ms a pair: the hypothesis tests above cover it.)"""
    rng = np.random.default_rng(11)
    ls = _random_layers(rng, 200)
    base = _random_designs(rng, 500, templates)
    factor = rng.choice([2.0, 4.0, 16.0], size=len(base))
    bigger = [
        replace(
            a, ifmap_sram_kb=a.ifmap_sram_kb * f, filter_sram_kb=a.filter_sram_kb * f, ofmap_sram_kb=a.ofmap_sram_kb * f
        )
        for a, f in zip(base, factor)
    ]
    faster = [replace(a, dram_bw_bytes_per_cycle=a.dram_bw_bytes_per_cycle * f) for a, f in zip(base, factor)]
    res = evaluate_batch(ls, base + bigger + faster, prof)
    n = len(base)
    lat = res.latency_cycles
    l0, lb, lf = lat[:n], lat[n : 2 * n], lat[2 * n :]
    macs = res.macs[None, :]
    pes = np.array([a.pes for a in base], dtype=float)[:, None]
    assert np.all(l0 >= macs / pes)
    tech = [DEFAULT_TECH.scaled(a.tech_node_nm) for a in base]
    e_min = np.array(
        [[t.mac_pj(l.input_bits, l.weight_bits, a.acc_bits) * l.macs for l in ls] for t, a in zip(tech, base)]
    )
    assert np.all(res.energy_pj[:n] >= e_min * (1 - 1e-12))
    assert np.all(lf <= l0 * (1 + 1e-12))
    # More buffer: no simulator-confirmed inversion beyond one fold's exposed load, except the residual
    # of pass splitting (RESIDUAL_INVERSIONS); the scan before the mapper: 36k of 129,600 pairs slower.
    inverted = [
        (ls[j].describe(), base[i].label, lb[i, j] / l0[i, j])
        for i, j in zip(*np.nonzero(lb > l0))
        if (prof != "rtl" or runs_on_the_hardware(ls[j], base[i]))
        and not holds_or_model_error(ls[j], base[i], bigger[i], prof, l0[i, j], lb[i, j])
    ]
    assert len(inverted) <= (RESIDUAL_RTL if prof == "rtl" else RESIDUAL_INVERSIONS) * l0.size, inverted[:10]
