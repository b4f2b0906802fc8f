"""The analytical model costs layers the generated WS/OS arrays run as several calls as those calls.

``dataflows.tiling.band_plans`` is ``plan_calls`` (bands only) over designs as arrays, and
``sim.tiled.cost_calls`` (the post-pass at the end of ``evaluate_batch``) replaces such a layer's
figures by the sums over its calls, as the cycle simulator's ``rtl`` profile charges them.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from coexplore.dataflows.io import builtin_templates
from coexplore.dataflows.mapping import resolve_profile
from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import (
    CALL_GAP_CYCLES,
    LimitArrays,
    TilingError,
    band_plans,
    call_limits,
    fits_one_call,
    plan_calls,
)
from coexplore.models.ir import Layer, conv, gemm
from coexplore.models.zoo import get_network
from coexplore.sim.analytical import evaluate_batch
from coexplore.sim.cycle.simulator import simulate_layer, simulate_network, tiling_plan
from coexplore.sim.metrics import BatchResult
from coexplore.sim.tiled import without_calls

RTL = resolve_profile("rtl")
# The tiers' usual agreement (tests/sim/test_tiers.py allows 1 % on whole networks); a tiled layer's
# sub-layers read the padded input rows, the simulator's calls only the rows they hold: <= 0.2 % apart.
LAYER_REL = 0.005
NETWORK_REL = 0.01


def _acc(template: str, size: int = 32, kb: float = 64.0, bw: float | None = 32.0) -> Accelerator:
    return Accelerator(
        dataflow=builtin_templates()[template],
        rows=size,
        cols=size,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=bw,
    )


def _analytical(layers: list[Layer], accs: list[Accelerator], profile: str = "rtl") -> BatchResult:
    return evaluate_batch(layers, accs, profile, detail=True)  # the post-pass runs at its end


def _random_layer(rng: random.Random, i: int) -> Layer:
    if rng.random() < 0.3:
        return gemm(f"g{i}", m=rng.randint(1, 300), k=rng.randint(1, 3000), n=rng.randint(1, 400))
    r = rng.choice([1, 3, 5, 7])
    return conv(
        f"c{i}",
        c=rng.randint(1, 600),
        k=rng.randint(1, 600),
        h=rng.randint(r, 90),
        w=rng.randint(r, 90),
        r=r,
        stride=rng.choice([1, 2, 3]),
        pad=rng.randint(0, r // 2 + 1),
    )


def _random_acc(rng: random.Random) -> Accelerator:
    kb = rng.choice([1.0, 2.0, 4.0, 16.0, 64.0])
    return Accelerator(
        dataflow=builtin_templates()[rng.choice(["systolic-ws", "systolic-os"])],
        rows=rng.choice([2, 4, 8, 16, 32]),
        cols=rng.choice([2, 4, 8, 16, 32]),
        ifmap_sram_kb=kb * rng.choice([1, 4]),
        filter_sram_kb=kb,
        ofmap_sram_kb=kb * rng.choice([0.25, 1, 4]),
        dram_bw_bytes_per_cycle=rng.choice([4.0, 8.0, 32.0, None]),
    )


def test_band_plans_equal_plan_calls_on_a_random_sweep() -> None:
    """Rows per band, channels per call and the number of calls, for every (layer, design) pair."""
    rng = random.Random(7)
    limits = [call_limits(_random_acc(rng)) for _ in range(120)]
    assert all(lim is not None for lim in limits)
    lim_arrays = LimitArrays.of([lim for lim in limits if lim is not None])
    seen = {"whole": 0, "bands": 0, "k tiles": 0, "no plan": 0}
    for i in range(80):
        layer = _random_layer(rng, i)
        pb, kt, n_calls = band_plans(layer, lim_arrays)
        one = fits_one_call(layer, lim_arrays)
        for d, lim in enumerate(limits):
            assert lim is not None
            try:
                plan = plan_calls(layer, lim)
                want = (plan.calls[0].p, plan.calls[0].k, len(plan.calls))
            except TilingError:
                want = (0, 0, 0)
            assert (int(pb[d]), int(kt[d]), int(n_calls[d])) == want, (layer, lim)
            assert not one[d] or want == (layer.p, layer.k, 1), (layer, lim)  # one call: the whole layer
            assert one[d] or want[2] != 1 or kt[d] == layer.k, (layer, lim)
            kind = (
                "no plan" if want[2] == 0 else "whole" if want[2] == 1 else "k tiles" if want[1] < layer.k else "bands"
            )
            seen[kind] += 1
    assert min(seen.values()) >= 20, seen  # the sweep reaches every branch of the planner


def test_band_plans_refuses_what_plan_calls_refuses() -> None:
    dw = conv("dw", c=32, k=32, h=16, r=3, pad=1, groups=32)
    lim = LimitArrays.of([call_limits(_acc("systolic-ws"))])  # type: ignore[list-item]
    with pytest.raises(TilingError, match="'dw'.*not tiled"):
        band_plans(dw, lim)
    with pytest.raises(TilingError, match="no limits given"):
        LimitArrays.of([])


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os"])
@pytest.mark.parametrize(("size", "kb", "bw"), [(32, 64.0, 32.0), (16, 8.0, 8.0)])
def test_tiled_layers_agree_with_the_simulator(template: str, size: int, kb: float, bw: float) -> None:
    """Latency, compute cycles and DRAM bytes of every tiled layer of vit and resnet18 against the
    simulator's rtl profile (the sum of the calls plus the gaps)."""
    acc = _acc(template, size, kb, bw)
    layers = [l for name in ("vit", "resnet18") for l in get_network(name).layers if l.kind.has_macs]
    tiled = [l for l in layers if tiling_plan(l, acc, RTL) is not None]
    assert len(tiled) >= 10, len(tiled)
    batch = _analytical(tiled, [acc])
    for j, layer in enumerate(tiled):
        sim = simulate_layer(layer, acc, RTL)
        assert batch.latency_cycles[0, j] == pytest.approx(sim.total_cycles, rel=LAYER_REL), layer.name
        assert batch.compute_cycles[0, j] == pytest.approx(sim.busy_cycles, rel=LAYER_REL), layer.name
        assert batch.dram_bytes[0, j] == pytest.approx(sim.dram_reads + sim.dram_writes, rel=LAYER_REL), layer.name


@pytest.mark.parametrize(
    ("template", "net"),
    [("systolic-ws", "vit"), ("systolic-ws", "resnet18"), ("systolic-ws", "mobilenetv2"), ("systolic-os", "vit")],
)
def test_network_latency_agrees_with_the_simulator(template: str, net: str) -> None:
    """Whole networks at 32x32 / 64 kB / 32 B per cycle (before this post-pass: vit 0.224 of the
    simulator's latency on WS, 0.489 on OS; mobilenetv2 0.947)."""
    acc = _acc(template)
    network = get_network(net)
    total = float(_analytical(list(network.layers), [acc]).latency_cycles.sum())
    assert total == pytest.approx(simulate_network(network, acc, RTL).total_cycles, rel=NETWORK_REL)


def test_a_tiled_pair_is_the_sum_of_its_calls() -> None:
    """Every figure of a pair run as calls (two band heights x two K tiles: the fold-count register
    overflows): count x the call shape's own figures, plus the gaps; the latency is the simulator's."""
    layer = gemm("wide", m=10, k=4096, n=300)
    acc = _acc("systolic-ws", 4, 64.0, 8.0)
    plan = tiling_plan(layer, acc, RTL)
    assert plan is not None and len({(c.p, c.k) for c in plan.calls}) == 4
    got = _analytical([layer], [acc])
    subs = [
        replace(
            layer,
            k=c.k,
            h=(c.p - 1) * layer.stride_h + layer.r,
            w=(c.q - 1) * layer.stride_w + layer.s,
            pad_h=0,
            pad_w=0,
        )
        for c in plan.calls
    ]
    with without_calls():
        parts = evaluate_batch(subs, [acc], RTL, detail=True)
    gaps = CALL_GAP_CYCLES * (len(plan.calls) - 1)
    assert got.latency_cycles[0, 0] == pytest.approx(parts.latency_cycles.sum() + gaps)
    assert got.compute_cycles[0, 0] == pytest.approx(parts.compute_cycles.sum() + gaps)
    assert got.energy_pj[0, 0] == pytest.approx(parts.energy_pj.sum())
    for key, value in got.detail.items():
        assert value[0, 0] == pytest.approx(parts.detail[key].sum()), key
    assert got.latency_cycles[0, 0] == pytest.approx(simulate_layer(layer, acc, RTL).total_cycles, rel=LAYER_REL)


def test_nothing_changes_where_one_call_holds_the_layer_or_nothing_is_tiled() -> None:
    """Layers that fit one call, templates that are not WS/OS arrays, unlimited bandwidth and other
    profiles keep the model's own figures; a tiled pair next to them does change."""
    small = conv("small", c=8, k=16, h=8, r=3, pad=1)  # fits one call; a sub-layer would drop its padding
    layers = [small, *get_network("vit").layers[:6], *get_network("resnet18").layers[:6]]
    accs = [_acc(t, 16, 8.0, 8.0) for t in ("systolic-ws", "systolic-os", "eyeriss", "systolic-is", "nvdla")]
    accs += [_acc("systolic-ws", 16, 8.0, None), _acc("systolic-os", 16, 8.0, None)]
    for profile in ("rtl", "ideal"):
        with without_calls():
            plain = evaluate_batch(layers, accs, profile, detail=True)
        post = _analytical(layers, accs, profile)
        tiled = np.array(
            [[profile == "rtl" and tiling_plan(l, a, RTL) is not None for l in layers] for a in accs], dtype=bool
        )
        assert tiled.sum() >= 4 or profile == "ideal"
        assert not tiled[:, 0].any()
        for key in ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj"):
            a, b = getattr(plain, key), getattr(post, key)
            np.testing.assert_array_equal(a[~tiled], b[~tiled], err_msg=key)
            assert profile == "ideal" or (a[tiled] != b[tiled]).any(), key
