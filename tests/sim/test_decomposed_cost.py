"""Depthwise, grouped, matmul and batched layers on the generated WS, OS, IS, ShiDianNao, RS, nvdla arrays (and on
nvdla kernels of more taps than a PE holds, as tap groups), costed as the sub-layers the RTL host runs
(``dataflows.decompose``): the simulator's rtl profile as the sum of its sub-layers, and the analytical
post-pass (``sim.decomposed.cost_decomposed``) equal to it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_helpers import square_acc

from coexplore.dataflows.decompose import decompose, decomposes, decomposes_on, needs_decomposition
from coexplore.dataflows.mapping import resolve_profile
from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CALL_GAP_CYCLES, call_limits
from coexplore.models.ir import Layer, conv, gemm, matmul
from coexplore.models.zoo import get_network
from coexplore.sim import decomposed
from coexplore.sim.analytical import evaluate_batch
from coexplore.sim.cycle.simulator import simulate_layer

RTL = resolve_profile("rtl")
# A sub-layer that runs as several calls is costed by sim/tiled.py's post-pass, whose band sub-layers
# read their padded rows (the simulator's calls only the rows they hold): up to 1.2 % on these layers
# at 32x32 (a 14x14 depthwise on WS), 4 % on the small ones; where no piece is tiled the two are equal.
TILED_REL = {True: 0.015, False: 0.05}

SMALL = [
    conv("dw", c=24, k=24, h=9, r=3, pad=1, groups=24),
    conv("dws2", c=16, k=16, h=10, r=3, stride=2, pad=1, groups=16),
    conv("gc", c=12, k=18, h=8, r=3, pad=1, groups=3),
    matmul("mm", m=20, k=12, n=10, batch=4),
    dataclasses.replace(conv("b2", c=6, k=10, h=8, r=3, pad=1), n=2),
    dataclasses.replace(gemm("lb", m=12, k=40, n=24), n=3),
]


def _acc(template: str, size: int = 8, kb: float = 2.0, bw: float | None = 8.0) -> Accelerator:
    return square_acc(template, size, kb, bw)


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os"])
def test_the_simulator_runs_the_sub_layers(template: str) -> None:
    """Every figure is count x the sub-layer's own plus the gaps between pieces, at the block it reports."""
    acc = _acc(template)
    for layer in SMALL:
        sim = simulate_layer(layer, acc, RTL)
        dec = decompose(layer, sim.extra["block"])
        assert sim.extra["pieces"] == dec.pieces and sim.macs == layer.macs, layer.name
        subs = [(part.count, simulate_layer(part.layer, acc, RTL)) for part in dec.parts]
        assert sim.total_cycles == sum(n * s.total_cycles for n, s in subs) + CALL_GAP_CYCLES * (dec.pieces - 1)
        assert sim.busy_cycles == sum(n * s.busy_cycles for n, s in subs) + CALL_GAP_CYCLES * (dec.pieces - 1)
        assert sim.dram_reads == pytest.approx(sum(n * s.dram_reads for n, s in subs)), layer.name
        assert sim.extra["calls"] == sum(n * s.extra.get("calls", 1) for n, s in subs), layer.name
        assert sim.extra["wasted_macs"] == dec.wasted_macs


def test_the_block_is_the_cheapest_for_the_simulator() -> None:
    """No other block of groups takes fewer simulated cycles than the one the simulator runs."""
    acc = _acc("systolic-ws")
    layer = SMALL[0]
    chosen = simulate_layer(layer, acc, RTL)
    for b in (1, 2, 4, 8):
        dec = decompose(layer, b)
        cost = dec.cycles(lambda sub: simulate_layer(sub, acc, RTL).total_cycles)
        assert chosen.total_cycles <= cost, b


def _zoo_layers() -> list[Layer]:
    seen, out = set(), []
    for net in ("mobilenetv2", "vit"):
        for layer in get_network(net).layers:
            if needs_decomposition(layer) and layer.describe() not in seen:
                seen.add(layer.describe())
                out.append(layer)
    return out


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os", "systolic-is", "shidiannao", "eyeriss", "nvdla"])
@pytest.mark.parametrize(("size", "kb", "bw", "zoo"), [(32, 64.0, 32.0, True), (8, 2.0, 8.0, False)])
def test_analytical_latency_equals_the_simulator(template: str, size: int, kb: float, bw: float, zoo: bool) -> None:
    """The zoo's depthwise and matmul layers at 32x32 / 64 kB / 32 B per cycle, and small depthwise,
    grouped, matmul and batched layers on an 8x8 array: latency of the post-pass against the simulator's
    rtl profile (and DRAM bytes where no piece is tiled: then both are equal)."""
    acc = _acc(template, size, kb, bw)
    kind = call_limits(acc).kind  # type: ignore[union-attr]
    layers = [la for la in (_zoo_layers() if zoo else SMALL) if decomposes_on(la, kind)]  # is: batch native
    batch = evaluate_batch(layers, [acc], RTL, detail=True)
    exact = 0
    for j, layer in enumerate(layers):
        sim = simulate_layer(layer, acc, RTL)
        assert "pieces" in sim.extra, layer.name
        rel = 1e-12 if sim.extra["calls"] == sim.extra["pieces"] else TILED_REL[zoo]
        exact += rel < 1e-9
        assert batch.latency_cycles[0, j] == pytest.approx(sim.total_cycles, rel=rel), layer.name
        if rel < 1e-9:  # a tiled sub-layer's DRAM bytes include its padded rows (2-9 % here): latency only
            assert batch.dram_bytes[0, j] == pytest.approx(sim.dram_reads + sim.dram_writes, rel=rel), layer.name
    assert exact >= zoo  # the zoo's matmul layers run untiled pieces


TAPS = [  # more taps than an nvdla PE holds (9 at these sizes, 4 with 0.5 kB at 8x8): tap groups
    conv("t5", c=3, k=5, h=9, w=7, r=5, pad=2),
    conv("dw5", c=8, k=8, h=8, r=5, pad=2, groups=8),
    conv("pe", c=3, k=6, h=16, r=4, stride=4),
    conv("t7", c=2, k=5, h=11, r=7, stride=2, pad=3),
]


@pytest.mark.parametrize(("size", "kb", "bw"), [(32, 64.0, 32.0), (8, 2.0, 8.0), (8, 0.5, 8.0)])
def test_nvdla_tap_groups_analytical_equals_the_simulator(size: int, kb: float, bw: float) -> None:
    """Kernels of more taps than a PE holds (vit's 4x4 patch embedding among them) on nvdla: the
    post-pass equals the simulator's rtl profile on latency and DRAM bytes, at the tap groups and
    block the simulator reports."""
    acc = _acc("nvdla", size, kb, bw)
    lim = call_limits(acc)
    patch = [la for la in get_network("vit").layers if la.name == "patch_embed"]
    layers = [la for la in TAPS + patch if decomposes(la, lim)]
    assert len(layers) == len(TAPS) + 1 and lim is not None and lim.reduction < 16
    batch = evaluate_batch(layers, [acc], RTL, detail=True)
    for j, layer in enumerate(layers):
        sim = simulate_layer(layer, acc, RTL)
        dec = decompose(layer, sim.extra["block"], lim.reduction)
        assert sim.extra["pieces"] == dec.pieces > 1 and dec.taps, layer.name
        assert batch.latency_cycles[0, j] == pytest.approx(sim.total_cycles, rel=1e-12), layer.name
        assert batch.dram_bytes[0, j] == pytest.approx(sim.dram_reads + sim.dram_writes, rel=1e-12), layer.name


def test_a_decomposed_pair_is_the_sum_of_its_sub_layers() -> None:
    """Every figure of the post-pass: count x the sub-layer's own analytical figures plus the gaps, at
    the cheapest block by the analytical latency."""
    acc = _acc("systolic-ws", 8, 2.0, 8.0)
    for layer in SMALL:
        got = evaluate_batch([layer], [acc], RTL, detail=True)
        best = None
        for b in (1, 2, 4, 8):
            dec = decompose(layer, b)
            parts = evaluate_batch([p.layer for p in dec.parts], [acc], RTL, detail=True)
            counts = np.array([p.count for p in dec.parts], dtype=float)
            lat = float(parts.latency_cycles[0] @ counts) + CALL_GAP_CYCLES * (dec.pieces - 1)
            if best is None or lat < best[0]:
                best = (lat, parts, counts, dec)
        assert best is not None
        lat, parts, counts, dec = best
        assert got.latency_cycles[0, 0] == pytest.approx(lat), layer.name
        assert got.compute_cycles[0, 0] == pytest.approx(parts.compute_cycles[0] @ counts + dec.gap_cycles())
        assert got.energy_pj[0, 0] == pytest.approx(parts.energy_pj[0] @ counts), layer.name
        for key, value in got.detail.items():
            assert value[0, 0] == pytest.approx(parts.detail[key][0] @ counts), (layer.name, key)


def test_many_designs_at_once_equal_one_at_a_time() -> None:
    """The post-pass vectorized over designs of several templates, shapes and sizes (the cheapest block
    per design) equals each design evaluated alone."""
    accs = [
        _acc(t, size, kb, bw)
        for t in ("systolic-ws", "systolic-os")
        for size, kb, bw in ((4, 1.0, 4.0), (8, 2.0, 8.0), (8, 0.5, 8.0), (16, 4.0, 16.0))
    ]
    accs += [_acc("nvdla", 8, 2.0, 8.0), _acc("nvdla", 8, 0.5, 8.0)]  # 9 and 4 taps per PE: other tap groups
    layers = [*SMALL, gemm("dense", m=16, k=24, n=12), *TAPS]
    together = evaluate_batch(layers, accs, RTL, detail=True)
    for i, acc in enumerate(accs):
        alone = evaluate_batch(layers, [acc], RTL, detail=True)
        np.testing.assert_allclose(together.latency_cycles[i], alone.latency_cycles[0], rtol=1e-12)
        np.testing.assert_allclose(together.energy_pj[i], alone.energy_pj[0], rtol=1e-12)


def test_nothing_changes_where_the_array_does_not_decompose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unlimited bandwidth, other profiles and dense layers keep the model's own figures; the WS, OS
    and nvdla pairs do change."""
    accs = [_acc("systolic-ws"), _acc("systolic-os"), _acc("nvdla"), _acc("systolic-ws", bw=None)]
    layers = [*SMALL, gemm("dense", m=16, k=24, n=12)]
    for profile in ("rtl", "ideal"):
        post = evaluate_batch(layers, accs, profile, detail=True)
        with monkeypatch.context() as m:
            m.setattr(decomposed, "_kind_designs", lambda accs, prof: {})
            plain = evaluate_batch(layers, accs, profile, detail=True)
        changed = post.latency_cycles != plain.latency_cycles
        assert not changed[3:].any() and not changed[:, -1].any(), profile
        assert changed[:3, :-1].any(axis=1).all() == (profile == "rtl"), profile
        for acc in accs[3:]:
            assert decomposed.decomposed_limits(SMALL[0], acc, resolve_profile(profile)) is None


def test_a_traced_run_places_every_piece_where_it_runs() -> None:
    """With a tracer every piece runs on its own, its events shifted past the pieces before it: the
    same total, events under the layer's name, the last one ending at the layer's last cycle."""
    import io

    from coexplore.models.ir import Network
    from coexplore.sim.cycle.simulator import simulate_network

    layer, acc = SMALL[0], _acc("systolic-ws", 4, 0.5, 4.0)
    buf = io.StringIO()
    traced = simulate_network(Network.chain("n", [layer]), acc, RTL, trace=buf).layers[0]
    rows = [line.split(",") for line in buf.getvalue().splitlines()[1:]]
    assert traced.total_cycles == simulate_layer(layer, acc, RTL).total_cycles and traced.extra["pieces"] > 1
    assert {r[0] for r in rows} == {layer.name} and max(int(r[4]) for r in rows) == traced.total_cycles
