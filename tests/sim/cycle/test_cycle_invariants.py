"""Invariants of every simulated layer, whatever the template, profile or bandwidth."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from coexplore.dataflows.io import get_profile, get_template
from coexplore.dataflows.mapping import plan_folds, stall_free_cycles
from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Layer, Network, OpKind, conv, gemm, matmul
from coexplore.sim.analytical import choose_mapping
from coexplore.sim.cycle import simulate_layer, simulate_network

TEMPLATES = ("systolic-os", "systolic-ws", "systolic-is", "nvdla", "shidiannao", "eyeriss")
PROFILES = ("scalesim", "rtl", "ideal")
LAYERS = (
    conv("c3", c=16, k=24, h=14, r=3, pad=1),
    conv("c3s2", c=8, k=16, h=15, r=3, stride=2),
    conv("c1", c=32, k=16, h=8, r=1),
    conv("dw", c=12, k=12, h=10, r=3, pad=1, groups=12),
    gemm("fc", m=20, k=72, n=40),
    matmul("qk", m=16, k=8, n=16, batch=3),
)


def _acc(template: str, bw: float | None, size: int = 8, kb: float = 4.0, ports: str = "per_operand") -> Accelerator:
    return Accelerator(
        get_template(template),
        size,
        size + 2,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=bw,
        dram_ports=ports,
    )


def _check(layer: Layer, acc: Accelerator, profile: str) -> None:
    got = simulate_layer(layer, acc, profile)
    assert got.stall_cycles >= 0
    assert got.total_cycles == got.busy_cycles + got.stall_cycles
    assert got.compute_cycles == (got.total_cycles if got.model == "scalesim" else got.busy_cycles)
    for op, kb in (("input", acc.ifmap_sram_kb), ("weight", acc.filter_sram_kb)):
        slack = 1e-6
        if got.model == "scalesim":  # SCALE-Sim's fetches count half a buffer, the window moves whole sets
            words = int(kb * 1024 * 8 / acc.input_bits)
            half, set_words = words - math.ceil(words * 0.5), math.ceil(words / 100)
            fetches = got.dram_read_bytes[op] / max(half, 1) + layer.groups  # the initial fill once per group
            slack += fetches * (set_words - 1)
        assert got.dram_read_bytes[op] >= got.compulsory_bytes[op] - slack, (op, got)
    assert got.dram_write_bytes["output"] >= got.compulsory_bytes["output"] - 1e-6
    if acc.dram_bw_bytes_per_cycle is None:
        assert got.stall_cycles == 0
        if layer.kind.has_macs:  # the independent tier coincides with the closed form
            prof = get_profile(profile)
            df = acc.dataflow
            chosen = choose_mapping(layer, acc, prof)  # the simulator runs the mapper's choice
            plan = plan_folds(chosen.loops, layer.dims(), acc.rows, acc.cols)
            closed = stall_free_cycles(df.timing, prof, acc.rows, acc.cols, plan.temporal_steps, plan.folds)
            # SCALE-Sim runs each group as its own layer, each counted from cycle 0 (one -1 per group)
            offset = layer.groups - 1 if got.model == "scalesim" else 0
            assert got.busy_cycles == int(closed) - offset, got


@pytest.mark.parametrize("template, profile", list(itertools.product(TEMPLATES, PROFILES)))
def test_invariants_over_layers_and_bandwidths(template: str, profile: str) -> None:
    for layer, bw in itertools.product(LAYERS, (None, 2.0, 16.0)):
        _check(layer, _acc(template, bw), profile)


@pytest.mark.parametrize("template", TEMPLATES)
def test_shared_port_and_vector_layers(template: str) -> None:
    pool = Layer("pool", OpKind.POOL, k=16, c=16, h=8, w=8, r=2, s=2, stride_h=2, stride_w=2, groups=16)
    add = Layer("add", OpKind.ELTWISE, k=16, c=16, h=8, w=8)
    for layer in (LAYERS[0], pool, add):
        _check(layer, _acc(template, 4.0, ports="shared"), "rtl")


def test_less_bandwidth_stalls_more_on_a_bandwidth_bound_layer() -> None:
    layer = LAYERS[0]
    for template in TEMPLATES:
        slow = simulate_layer(layer, _acc(template, 1.0), "rtl")
        fast = simulate_layer(layer, _acc(template, 64.0), "rtl")
        assert slow.stall_cycles > fast.stall_cycles >= 0, template


def test_network_totals_are_layer_sums() -> None:
    net = Network.chain("n", LAYERS[:3])
    res = simulate_network(net, _acc("systolic-ws", 4.0), "rtl")
    assert res.total_cycles == sum(l.total_cycles for l in res.layers)
    assert res.stall_cycles == sum(l.stall_cycles for l in res.layers)
    total = res.to_json()["total"]
    assert set(total) >= {"compute_cycles", "stall_cycles", "total_cycles", "dram_reads", "dram_writes", "utilization"}
    assert 0 < total["utilization"] <= 1


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(1, 24),
    k=st.integers(1, 24),
    h=st.integers(3, 14),
    r=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    template=st.sampled_from(TEMPLATES),
    profile=st.sampled_from(PROFILES),
    bw=st.sampled_from([None, 1.0, 3.0, 32.0]),
    size=st.integers(2, 9),
    kb=st.sampled_from([1.0, 2.0, 16.0]),
)
@example(  # found by hypothesis: SCALE-Sim's fetch accounting (1,024 reads of a 1,029-word stream)
    c=21, k=1, h=13, r=1, stride=2, template="systolic-os", profile="scalesim", bw=1.0, size=2, kb=1.0
)
def test_invariants_hold_on_random_layers(c, k, h, r, stride, template, profile, bw, size, kb) -> None:
    _check(conv("x", c=c, k=k, h=h, r=r, stride=stride), _acc(template, bw, size, kb), profile)
