"""The nvdla, shidiannao (sdn), systolic-is and eyeriss (rs) arrays run a layer as several calls too (their rules in
``dataflows.tiling_kinds``): the vectorized planner equals ``plan_calls`` for them, and the analytical
model costs their tiled layers as the calls the simulator's rtl profile runs, so its network latency
over the simulator's stays 1.000 (as tests/sim/test_tiled.py holds for ws and os)."""

from __future__ import annotations

import random

import pytest
from sim_helpers import square_acc

from coexplore.dataflows.io import builtin_templates
from coexplore.dataflows.mapping import resolve_profile
from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import LimitArrays, TilingError, band_plans, call_limits, kind_of, plan_calls
from coexplore.models.ir import Layer, conv, gemm
from coexplore.models.zoo import get_network
from coexplore.sim.analytical import evaluate_batch
from coexplore.sim.cycle.simulator import simulate_network, tiling_plan

RTL = resolve_profile("rtl")
TEMPLATES = {"nvdla": "nvdla", "shidiannao": "sdn", "systolic-is": "is", "eyeriss": "rs"}


def _acc(template: str, size: int = 32, kb: float = 64.0, bw: float | None = 32.0) -> Accelerator:
    return square_acc(template, size, kb, bw)


def _random_acc(rng: random.Random) -> Accelerator:
    kb = rng.choice([1.0, 2.0, 4.0, 16.0, 64.0])
    return Accelerator(
        dataflow=builtin_templates()[rng.choice(sorted(TEMPLATES))],
        rows=rng.choice([2, 4, 8, 16, 32]),
        cols=rng.choice([2, 4, 8, 16, 32]),
        ifmap_sram_kb=kb * rng.choice([1, 4]),
        filter_sram_kb=kb * rng.choice([0.25, 1, 4]),
        ofmap_sram_kb=kb * rng.choice([0.25, 1, 4]),
        dram_bw_bytes_per_cycle=rng.choice([4.0, 8.0, 32.0, None]),
    )


def _random_layer(rng: random.Random, i: int) -> Layer:
    if rng.random() < 0.3:
        return gemm(f"g{i}", m=rng.randint(1, 300), k=rng.randint(1, 3000), n=rng.randint(1, 400))
    r = rng.choice([1, 3, 5])
    return conv(
        f"c{i}",
        c=rng.randint(1, 300),
        k=rng.randint(1, 600),
        h=rng.randint(r, 60),
        w=rng.randint(r, 60),
        r=r,
        stride=rng.choice([1, 2, 5]),
        pad=rng.randint(0, r // 2 + 1),
    )


def test_the_kinds_are_tiled_by_their_rules() -> None:
    for template, kind in TEMPLATES.items():
        acc = _acc(template)
        lim = call_limits(acc)
        assert kind_of(acc) == kind and lim is not None and lim.kind == kind
        # 64 kB over 32 replicas (array rows; is: columns), rs: over 1024 (one per PE)
        assert lim.input_bytes == (64 if kind == "rs" else 2048)


@pytest.mark.heavy  # ~30 s: the planner over every kind's random designs
def test_band_plans_equal_plan_calls_on_a_random_sweep() -> None:
    """Channel groups, tile rows and columns, K tile and the number of calls, for every (layer,
    design) pair of the three kinds (their banks bound K, taps and weight tiles unlike ws/os)."""
    rng = random.Random(11)
    limits = [call_limits(_random_acc(rng)) for _ in range(36)]
    assert all(lim is not None for lim in limits)
    arrays = LimitArrays.of([lim for lim in limits if lim is not None])
    seen = {"whole": 0, "tiled": 0, "k tiles": 0, "no plan": 0}
    for i in range(24):
        layer = _random_layer(rng, i)
        got = band_plans(layer, arrays)
        for d, lim in enumerate(limits):
            assert lim is not None
            try:
                plan = plan_calls(layer, lim)
                first = plan.calls[0]
                want = (first.c, first.p, first.q, first.k, len(plan.calls))
            except TilingError:
                want = (0, 0, 0, 0, 0)
            assert tuple(int(a[d]) for a in got) == want, (layer, lim)
            kind = (
                "no plan" if not want[4] else "whole" if want[4] == 1 else "k tiles" if want[3] < layer.k else "tiled"
            )
            seen[kind] += 1
    assert min(seen.values()) >= 15, seen  # every branch of the planner, on every kind's rules


@pytest.mark.parametrize(
    ("template", "net"),
    [
        ("nvdla", "resnet18"),
        ("nvdla", "vit"),
        ("shidiannao", "resnet18"),
        ("systolic-is", "vit"),
        ("eyeriss", "resnet9"),
    ],
)
def test_network_latency_agrees_with_the_simulator(template: str, net: str) -> None:
    """Whole networks at 32x32 / 64 kB / 32 B per cycle: the analytical model (with its post-pass
    over the calls) over the simulator's rtl profile is 1.000 (to 0.1 %)."""
    acc = _acc(template)
    network = get_network(net)
    assert sum(tiling_plan(layer, acc, RTL) is not None for layer in network.layers if layer.kind.has_macs) >= 4
    total = float(evaluate_batch(list(network.layers), [acc], "rtl").latency_cycles.sum())
    assert total == pytest.approx(simulate_network(network, acc, RTL).total_cycles, rel=1e-3)
