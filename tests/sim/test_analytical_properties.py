"""Properties of the analytical model that must hold for every layer and design (hypothesis).

On the PE-count property: a bigger array (rows and cols both >=) never needs more folds, and the work
streamed per fold (T) does not depend on the array, so the steady-state cycles folds * T never grow.
Total cycles can grow, though: fill, drain and preload scale with rows + cols, and when a dim is
smaller than the array the folds stop shrinking (see test_more_pes_can_cost_cycles_when_folds_do_not_shrink).
So the property is asserted on folds, and on cycles only where streaming dominates the per-fold
overheads: in profile ``ideal`` (overheads hidden behind other folds) with T >= preload, with unlimited
bandwidth, cycles minus the once-paid overheads never grow.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coexplore.dataflows.io import builtin_templates, get_profile, get_template
from coexplore.dataflows.mapping import fold_timing, plan_folds
from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Layer, OpKind, conv, gemm, matmul
from coexplore.sim.analytical import evaluate_batch, evaluate_layer
from coexplore.sim.tech import DEFAULT_TECH

TEMPLATES = sorted(builtin_templates())
PROFILES = ("rtl", "scalesim", "ideal")
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layers(draw: st.DrawFn, with_vector: bool = True) -> Layer:
    kinds = ["conv", "dw", "gemm", "matmul"] + (["pool", "eltwise"] if with_vector else [])
    kind = draw(st.sampled_from(kinds))
    if kind in ("gemm", "matmul"):
        m, k, n = (draw(st.integers(1, 300)) for _ in range(3))
        return gemm("g", m, k, n) if kind == "gemm" else matmul("mm", m, k, n, batch=draw(st.integers(1, 4)))
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
        return conv("dw", c=c, k=c, h=h, r=r, stride=stride, pad=pad, groups=c)
    return conv("c", c=c, k=draw(st.integers(1, 96)), h=h, r=r, stride=stride, pad=pad)


@st.composite
def designs(draw: st.DrawFn) -> Accelerator:
    return Accelerator(
        dataflow=get_template(draw(st.sampled_from(TEMPLATES))),
        rows=draw(st.integers(1, 40)), cols=draw(st.integers(1, 40)),
        ifmap_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        filter_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        ofmap_sram_kb=draw(st.sampled_from([0.5, 2.0, 16.0, 64.0])),
        dram_bw_bytes_per_cycle=draw(st.sampled_from([None, 1.0, 4.0, 32.0])),
        noc_bw_bytes_per_cycle=draw(st.sampled_from([None, 2.0, 16.0, 128.0])),
        dram_ports=draw(st.sampled_from(["per_operand", "shared"])),
        input_bits=draw(st.sampled_from([4, 8, 16])), weight_bits=draw(st.sampled_from([4, 8])),
        acc_bits=draw(st.sampled_from([16, 32])), tech_node_nm=draw(st.sampled_from([45.0, 28.0])),
    )


profiles = st.sampled_from(PROFILES)


@FEW
@given(layers(), designs(), profiles)
def test_latency_is_at_least_macs_per_pe_and_stalls_are_never_negative(layer: Layer, acc: Accelerator, prof: str) -> None:
    m = evaluate_layer(layer, acc, prof)
    slack = 1 if prof == "scalesim" else 0  # SCALE-Sim counts cycles from 0
    assert m.latency_cycles >= layer.macs / acc.pes - slack
    assert m.stall_cycles >= 0 and m.latency_cycles == m.compute_cycles + m.stall_cycles
    if prof != "scalesim":  # there a one-cycle layer counts 0 cycles (from 0), and utilization is moot
        assert m.utilization <= 1.0 + 1e-12


@FEW
@given(layers(), designs(), profiles)
def test_energy_is_at_least_macs_times_mac_energy(layer: Layer, acc: Accelerator, prof: str) -> None:
    m = evaluate_layer(layer, acc, prof)
    tech = DEFAULT_TECH.scaled(acc.tech_node_nm)
    assert m.energy_pj >= layer.macs * tech.mac_pj(acc.input_bits, acc.weight_bits, acc.acc_bits)
    assert all(v >= 0 for v in m.energy_breakdown_pj.values())


@FEW
@given(layers(), designs(), profiles, st.sampled_from([1.5, 2.0, 8.0]))
def test_more_bandwidth_is_never_slower_and_more_buffer_never_moves_more_bytes(layer: Layer, acc: Accelerator, prof: str, factor: float) -> None:
    def more(bw: float | None) -> float | None:
        return None if bw is None else bw * factor

    variants = [
        replace(acc, dram_bw_bytes_per_cycle=more(acc.dram_bw_bytes_per_cycle)),
        replace(acc, dram_bw_bytes_per_cycle=None),
        replace(acc, noc_bw_bytes_per_cycle=more(acc.noc_bw_bytes_per_cycle)),
        replace(acc, noc_bw_bytes_per_cycle=None),
        replace(acc, ifmap_sram_kb=acc.ifmap_sram_kb * factor),
        replace(acc, filter_sram_kb=acc.filter_sram_kb * factor),
        replace(acc, ofmap_sram_kb=acc.ofmap_sram_kb * factor),
    ]
    batch = evaluate_batch([layer], [acc] + variants, prof)
    base = batch.latency_cycles[0, 0]
    for i, v in enumerate(variants[:4], start=1):
        assert batch.latency_cycles[i, 0] <= base * (1 + 1e-12), v
    # More buffer never moves more DRAM bytes. It can cost cycles, as in the hardware the simulator
    # and the RTL model: an input that now fits is loaded whole before the first fold, a tile that now
    # fits drains after its fold rather than pass by pass, and SCALE-Sim's windows shift differently.
    for i, v in enumerate(variants[4:], start=5):
        if not (prof == "scalesim" and acc.dram_bw_bytes_per_cycle is not None):
            assert batch.dram_bytes[i, 0] <= batch.dram_bytes[0, 0] * (1 + 1e-12), v


@FEW
@given(layers(), designs(), profiles)
def test_unlimited_bandwidth_means_no_stalls(layer: Layer, acc: Accelerator, prof: str) -> None:
    m = evaluate_layer(layer, replace(acc, dram_bw_bytes_per_cycle=None, noc_bw_bytes_per_cycle=None), prof)
    assert m.stall_cycles == 0


@FEW
@given(layers(with_vector=False), st.sampled_from(TEMPLATES), st.integers(1, 32), st.integers(1, 32),
       st.integers(0, 32), st.integers(0, 32))
def test_more_pes_never_more_folds_and_never_more_steady_state_cycles(layer: Layer, name: str, rows: int, cols: int,
                                                                      more_rows: int, more_cols: int) -> None:
    df = get_template(name)
    mapping = df.mapping_for(layer.kind)
    small = plan_folds(mapping, layer.dims(), rows, cols)
    big = plan_folds(mapping, layer.dims(), rows + more_rows, cols + more_cols)
    assert int(big.folds) <= int(small.folds)
    assert int(big.folds) * int(big.temporal_steps) <= int(small.folds) * int(small.temporal_steps)

    ideal = get_profile("ideal")
    steps = int(small.temporal_steps)
    if steps < df.timing.preload(rows=rows + more_rows, cols=cols + more_cols, T=steps):
        return  # preload, not streaming, sets the fold time: not compute-bound in the sense above

    def steady(r: int, c: int) -> float:
        acc = Accelerator(dataflow=df, rows=r, cols=c)
        _, once = fold_timing(df.timing, ideal, r, c, steps)
        return evaluate_layer(layer, acc, ideal).latency_cycles - once

    assert steady(rows + more_rows, cols + more_cols) <= steady(rows, cols)


@settings(max_examples=15, deadline=None)
@given(st.lists(layers(), min_size=1, max_size=4), st.lists(designs(), min_size=1, max_size=4), profiles)
def test_batch_equals_single_on_random_grids(ls: list[Layer], accs: list[Accelerator], prof: str) -> None:
    batch = evaluate_batch(ls, accs, prof)
    for i, acc in enumerate(accs):
        for j, layer in enumerate(ls):
            m = evaluate_layer(layer, acc, prof)
            assert (batch.latency_cycles[i, j], batch.energy_pj[i, j]) == (m.latency_cycles, m.energy_pj)
    assert np.all(batch.area_um2 > 0)
