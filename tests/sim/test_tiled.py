"""The analytical model costs layers the generated WS/OS arrays run as several calls as those calls.

``dataflows.tiling.band_plans`` is ``plan_calls`` (output tiles, K tiles, channel groups) over
designs as arrays, and
``sim.tiled.cost_calls`` (the post-pass at the end of ``evaluate_batch``) replaces such a layer's
figures by the sums over its calls, as the cycle simulator's ``rtl`` profile charges them.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from sim_helpers import square_acc

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
    plan_shape,
)
from coexplore.models.ir import Layer, conv, gemm
from coexplore.models.zoo import get_network
from coexplore.sim.analytical import evaluate_batch
from coexplore.sim.cycle.simulator import simulate_layer, simulate_network, tiling_plan
from coexplore.sim.metrics import BatchResult
from coexplore.sim.tiled import _sub_layer, without_calls

RTL = resolve_profile("rtl")
# A tiled layer's calls are evaluated as the simulator runs them (each holding the input rows and
# columns it loads), so the tiers agree to rounding (tests/sim/test_tiers.py allows 1 % elsewhere).
LAYER_REL = 1e-9
NETWORK_REL = 1e-9


def _acc(template: str, size: int = 32, kb: float = 64.0, bw: float | None = 32.0) -> Accelerator:
    return square_acc(template, size, kb, bw)


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


def _random_acc(rng: random.Random, templates: tuple[str, ...] = ("systolic-ws", "systolic-os")) -> Accelerator:
    kb = rng.choice([1.0, 2.0, 4.0, 16.0, 64.0])
    return Accelerator(
        dataflow=builtin_templates()[rng.choice(templates)],
        rows=rng.choice([2, 4, 8, 16, 32]),
        cols=rng.choice([2, 4, 8, 16, 32]),
        ifmap_sram_kb=kb * rng.choice([1, 4]),
        filter_sram_kb=kb,
        ofmap_sram_kb=kb * rng.choice([0.25, 1, 4]),
        dram_bw_bytes_per_cycle=rng.choice([4.0, 8.0, 32.0, None]),
    )


KINDS = ("systolic-ws", "systolic-os", "nvdla", "systolic-is", "shidiannao")  # every kind tiling plans


def test_band_plans_equal_the_scalar_planner_on_a_random_sweep() -> None:
    """Channels per group, rows and columns per tile, filters per call and the number of calls, for
    every (layer, design) pair: the vectorized planner and the scalar one (``plan_calls``' search)."""
    rng = random.Random(7)
    limits = [call_limits(_random_acc(rng, KINDS)) for _ in range(40)]
    assert all(lim is not None for lim in limits)
    lim_arrays = LimitArrays.of([lim for lim in limits if lim is not None])
    seen = {"whole": 0, "tiled": 0, "2-D tiles": 0, "channel groups": 0, "k tiles": 0, "no plan": 0}
    for i in range(40):
        layer = _random_layer(rng, i)
        got = np.column_stack(band_plans(layer, lim_arrays))
        one = fits_one_call(layer, lim_arrays)
        for d, lim in enumerate(limits):
            assert lim is not None
            try:
                want = plan_shape(layer, lim)
            except TilingError:
                want = (0, 0, 0, 0, 0)
            assert tuple(got[d].tolist()) == want, (layer, lim)
            assert not one[d] or want == (layer.c, layer.p, layer.q, layer.k, 1), (layer, lim)  # one call: whole
            cg, _, qb, kt, n = want
            seen["no plan" if n == 0 else "whole" if one[d] else "tiled"] += 1
            seen["2-D tiles"] += bool(n) and qb < layer.q
            seen["channel groups"] += bool(n) and cg < layer.c
            seen["k tiles"] += bool(n) and kt < layer.k
    assert min(seen.values()) >= 5, seen  # the sweep reaches every branch of the planner


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


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os"])
@pytest.mark.parametrize("net", ["resnet9", "resnet18", "mobilenetv2", "vit"])
def test_network_latency_agrees_with_the_simulator(template: str, net: str) -> None:
    """Whole networks at 32x32 / 64 kB / 32 B per cycle, almost every layer tiled (bands, 2-D tiles,
    channel groups; depthwise and matmul as dense sub-layers): the same latency to rounding (before
    the post-pass: vit 0.224 of the simulator's latency on WS, 0.489 on OS; mobilenetv2 0.947)."""
    acc = _acc(template)
    network = get_network(net)
    total = float(_analytical(list(network.layers), [acc]).latency_cycles.sum())
    assert total == pytest.approx(simulate_network(network, acc, RTL).total_cycles, rel=NETWORK_REL)


def test_a_tiled_pair_is_the_sum_of_its_calls() -> None:
    """Every figure of a pair run as calls (channel groups of two sizes: one pixel of all 250 channels
    exceeds the 1 kB a row's replica holds): count x the call shape's own figures, plus the gaps; the
    latency is the simulator's."""
    layer = conv("a", c=250, k=30, h=21, r=3, pad=1)
    acc = _acc("systolic-ws", 4, 4.0, 8.0)
    plan = tiling_plan(layer, acc, RTL)
    assert plan is not None and len({c.c for c in plan.calls}) == 2 and plan.grouped
    got = _analytical([layer], [acc])
    subs = [_sub_layer(layer, c.c, c.k, c.p, c.h, c.q, c.w) for c in plan.calls]  # each call: the rows it holds
    with without_calls():
        parts = evaluate_batch(subs, [acc], RTL, detail=True)
    gaps = CALL_GAP_CYCLES * (len(plan.calls) - 1)
    assert got.latency_cycles[0, 0] == pytest.approx(parts.latency_cycles.sum() + gaps)
    assert got.compute_cycles[0, 0] == pytest.approx(parts.compute_cycles.sum() + gaps)
    assert got.energy_pj[0, 0] == pytest.approx(parts.energy_pj.sum())
    for key, value in got.detail.items():
        assert value[0, 0] == pytest.approx(parts.detail[key].sum()), key
    assert got.latency_cycles[0, 0] == pytest.approx(simulate_layer(layer, acc, RTL).total_cycles, rel=LAYER_REL)


def _runs_as_calls(layer: Layer, acc: Accelerator) -> bool:
    """Tiled, or run as sub-layers (a matmul or depthwise layer on WS/OS: sim.decomposed)."""
    from coexplore.sim.decomposed import decomposed_limits

    return tiling_plan(layer, acc, RTL) is not None or decomposed_limits(layer, acc, RTL) is not None


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
        tiled = np.array([[profile == "rtl" and _runs_as_calls(l, a) for l in layers] for a in accs], dtype=bool)
        assert tiled.sum() >= 4 or profile == "ideal"
        assert not tiled[:2, 0].any()  # on WS and OS (eyeriss', is' and nvdla's calls are smaller)
        for key in ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj"):
            a, b = getattr(plain, key), getattr(post, key)
            np.testing.assert_array_equal(a[~tiled], b[~tiled], err_msg=key)
            assert profile == "ideal" or (a[tiled] != b[tiled]).any(), key
