"""Depthwise, grouped, matmul and batched layers on the generated arrays, costed as their sub-layers.

The generated WS, OS, IS, ShiDianNao and RS arrays (``dataflows.decompose.KINDS``) run such a layer as
dense sub-layers back to back (``dataflows.decompose``:
block-diagonal pieces of ``b`` groups, one piece per head or sample, a linear layer's batch folded
into its rows), each sub-layer the calls of its tiling plan. Both simulator tiers cost it the way the
RTL host runs it: ``count x cost`` of every distinct sub-layer plus ``CALL_GAP_CYCLES`` between
consecutive pieces, with ``b`` chosen for the fewest cycles (``choose_block``) by each tier's own
cost of the sub-layers:

* ``decomposed_layer``: the cycle simulator's ``rtl`` profile (``sim.cycle.simulator.simulate_layer``
  hands such a layer here); each sub-layer is ``simulate_layer`` itself (tiled when it needs calls);
* ``cost_decomposed``: the analytical post-pass (called at the start of ``sim.tiled.cost_calls``,
  at the end of ``evaluate_batch``): every candidate sub-layer is evaluated by ``evaluate_batch``
  (whose own post-pass costs a tiled sub-layer as its calls) for the designs of one template and
  array shape at once, and the cheapest feasible ``b`` is picked per design, all as numpy arrays.

Which designs: generated hardware in the profile, a DRAM limit, a kind of ``dataflows.decompose.KINDS``
(as ``sim.cycle.simulator.tiling_plan``: unlimited bandwidth keeps the idealized closed forms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from coexplore.dataflows.decompose import (
    KINDS,
    TAP_KINDS,
    block_sizes,
    decompose,
    decomposes,
    decomposes_on,
    needs_decomposition,
    plan_decomposed,
)
from coexplore.dataflows.spec import Accelerator, TimingProfile
from coexplore.dataflows.tiling import (
    CALL_GAP_CYCLES,
    CallLimits,
    LimitArrays,
    TilingError,
    TilingPlan,
    band_plans,
    call_limits,
    plan_calls,
)
from coexplore.models.ir import Layer
from coexplore.sim.tech import DEFAULT_TECH, TechTable

if TYPE_CHECKING:
    from coexplore.sim.cycle.result import LayerSim
    from coexplore.sim.cycle.simulator import Tracer

__all__ = ["cost_decomposed", "decomposed_layer", "decomposed_limits"]

_GAP_KEYS = ("latency_cycles", "compute_cycles")  # the idle cycles between pieces count in both


def decomposed_limits(layer: Layer, acc: Accelerator, prof: TimingProfile) -> CallLimits | None:
    """The call limits of ``acc`` when it runs ``layer`` as sub-layers in ``prof``, else None."""
    if acc.dram_bw_bytes_per_cycle is None or not prof.for_template(acc.dataflow.name).generated_hardware:
        return None
    lim = call_limits(acc)
    return lim if decomposes(layer, lim) else None


def decomposed_layer(
    layer: Layer, acc: Accelerator, prof: TimingProfile, tracer: Tracer | None = None
) -> LayerSim | None:
    """``layer`` as its sub-layers on ``acc`` (None when ``acc`` runs it otherwise, or no block of
    groups fits a call: the fold model's own estimate); cycles and traffic add up, plus the gaps."""
    from coexplore.sim.cycle.simulator import combine_runs, simulate_layer

    lim = decomposed_limits(layer, acc, prof)
    if lim is None:
        return None
    sims: dict[Layer, LayerSim] = {}

    def part(sub: Layer) -> LayerSim:
        if sub not in sims:
            sims[sub] = simulate_layer(sub, acc, prof)
        return sims[sub]

    try:
        plan = plan_decomposed(layer, lim, lambda sub: part(sub).total_cycles, plan_of=lambda s: _plan(s, acc, prof))
    except TilingError:
        return None
    dec = plan.decomposition
    runs = [part(dec.parts[i].layer) for i, _ in dec.order]
    if tracer is not None:  # every piece on its own, its events shifted to where it runs
        runs, offset = [], 0
        for i, _ in dec.order:

            def shifted(name: str, event: str, index: int, start: int, end: int, at: int = offset) -> None:
                tracer(layer.name, event, index, start + at, end + at)

            runs.append(simulate_layer(dec.parts[i].layer, acc, prof, shifted))
            offset += runs[-1].total_cycles + CALL_GAP_CYCLES

    extra = {"calls": len(plan.calls), "pieces": dec.pieces, "block": dec.block, "wasted_macs": dec.wasted_macs}
    return combine_runs(layer, acc, runs, dec.gap_cycles(), extra)


def _plan(sub: Layer, acc: Accelerator, prof: TimingProfile) -> TilingPlan:
    """The plan the simulator runs a dense sub-layer by (``tiling_plan``: the fewest cycles), or its one call."""
    from coexplore.sim.cycle.simulator import tiling_plan

    return tiling_plan(sub, acc, prof) or plan_calls(sub, call_limits(acc))


def _kind_designs(accs: Sequence[Accelerator], prof: TimingProfile) -> dict[tuple[int, int], list[int]]:
    """The designs that decompose (see the module docstring), by array width (which sets the blocks)
    and the kernel taps one call holds on a kind of ``TAP_KINDS`` (which sets the tap groups; else 0)."""
    groups: dict[tuple[int, int], list[int]] = {}
    known: dict[tuple, tuple[int, int] | None] = {}
    for i, acc in enumerate(accs):
        if acc.dram_bw_bytes_per_cycle is None:
            continue
        kb = (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)
        key = (id(acc.dataflow), acc.dataflow.name, acc.rows, acc.cols, acc.dram_bw_bytes_per_cycle, acc.acc_bits, *kb)
        if key not in known:
            lim = call_limits(acc) if prof.for_template(acc.dataflow.name).generated_hardware else None
            ok = lim is not None and lim.kind in KINDS
            known[key] = (acc.cols, lim.reduction if lim.kind in TAP_KINDS else 0) if ok and lim else None
        if (at := known[key]) is not None:
            groups.setdefault(at, []).append(i)
    return groups


def cost_decomposed(
    layers: Sequence[Layer],
    accs: Sequence[Accelerator],
    prof: TimingProfile,
    res: dict[str, np.ndarray],
    tech: TechTable = DEFAULT_TECH,
) -> int:
    """Replace, in ``res`` (``evaluate_batch``'s arrays of shape (designs, layers)), the entries of the
    (layer, design) pairs the generated arrays of ``KINDS`` run as sub-layers by ``count x`` each
    sub-layer's figures plus the gaps, for the cheapest ``b`` per design. Returns the number of pairs
    replaced.

    Per array width (it sets the candidate blocks): every candidate decomposition of every layer,
    the distinct sub-layer shapes among them that some design can plan (repeated blocks and the
    heads of every transformer block are one shape), one ``evaluate_batch`` of those over the
    width's designs (whose own post-pass costs a tiled sub-layer as its calls), then per design the
    cheapest feasible block, as arrays."""
    from coexplore.sim.analytical import evaluate_batch  # that module calls this one at its end

    some_j = [j for j, la in enumerate(layers) if la.kind.has_macs and (needs_decomposition(la) or la.r * la.s > 1)]
    groups = _kind_designs(accs, prof) if some_j else {}
    replaced = 0
    for (cols, taps), designs in groups.items():
        split = {j for j in some_j if 0 < taps < layers[j].r * layers[j].s}  # kernels run as tap groups
        cols_j = [j for j in some_j if j in split or needs_decomposition(layers[j])]
        if not cols_j:
            continue
        d_arr = np.asarray(designs, dtype=np.intp)
        picked = [accs[i] for i in designs]
        cands = {
            j: [decompose(layers[j], b, taps * (j in split)) for b in block_sizes(layers[j], cols)] for j in cols_j
        }
        shape_of = {p.layer: replace(p.layer, name="sub") for decs in cands.values() for d in decs for p in d.parts}
        shapes = list(dict.fromkeys(shape_of.values()))
        lim = LimitArrays.of([call_limits(a) for a in picked])  # type: ignore[misc]
        feasible = np.zeros((len(shapes), len(picked)), dtype=bool)
        for n, shape in enumerate(shapes):
            try:
                feasible[n] = band_plans(shape, lim)[-1] > 0  # the number of calls (0: no plan)
            except TilingError:
                pass
        some = np.flatnonzero(feasible.any(axis=1))  # shapes no design plans are not evaluated
        if not len(some):
            continue
        col = np.full(len(shapes), -1)
        col[some] = np.arange(len(some))
        where = {shape: n for n, shape in enumerate(shapes)}  # (a list's index() is a scan per sub-layer)
        at = {sub: int(col[where[shape]]) for sub, shape in shape_of.items()}
        fit = {sub: feasible[where[shape]] for sub, shape in shape_of.items()}
        r = evaluate_batch([shapes[n] for n in some], picked, prof, tech, "dram_read_bytes" in res)
        got = {k: getattr(r, k) for k in ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj")}
        got.update(r.detail)
        keys = [key for key in res if key in got]  # a key the result does not carry keeps its value
        for j in cols_j:
            mine = [dec for dec in cands[j] if all(at[p.layer] >= 0 for p in dec.parts)]
            if not mine:
                continue
            cost = np.full((len(mine), len(picked)), np.inf)
            for m, dec in enumerate(mine):
                ok = np.all([fit[p.layer] for p in dec.parts], axis=0)
                lat = sum(p.count * got["latency_cycles"][:, at[p.layer]] for p in dec.parts) + dec.gap_cycles()
                cost[m] = np.where(ok, lat, np.inf)
            pick = np.argmin(cost, axis=0)  # ties: the smaller b (first), as choose_block
            run = np.isfinite(cost[pick, np.arange(len(picked))])
            kinds, kind_at = np.unique(lim.kind, return_inverse=True)  # a kind may run this batch itself
            on_kind = [j in split or decomposes_on(layers[j], str(k)) for k in kinds]
            run &= np.array(on_kind, dtype=bool)[kind_at.reshape(-1)]
            for m, dec in enumerate(mine):
                on = np.flatnonzero(run & (pick == m))
                if not len(on):
                    continue
                for key in keys:
                    val = sum(p.count * got[key][on, at[p.layer]] for p in dec.parts)
                    res[key][d_arr[on], j] = val + (dec.gap_cycles() if key in _GAP_KEYS else 0.0)
            replaced += int(run.sum())
    return replaced
