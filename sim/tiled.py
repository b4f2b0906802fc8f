"""Layers the generated arrays run as several calls, costed as those calls (docs/rtl.md, "Whole networks").

A layer that one call of the generated WS/OS hardware cannot hold runs as the calls of
``dataflows.tiling.plan_calls`` (output-row bands, K tiles when the fold-count register needs them),
one after another. The cycle simulator's ``rtl`` profile charges the sum of the calls plus
``CALL_GAP_CYCLES`` per boundary; ``cost_calls`` is the same post-pass for the analytical model:
it replaces what ``evaluate_batch`` assumed for such a layer (input tiling and partial-sum spills the
hardware does not have) by count x cost of each distinct call shape, each shape a sub-layer of the
call's output rows and channels over the unpadded input rows it reads (as ``sim.cycle.simulator``'s
``_tiled_layer`` builds it), evaluated by ``evaluate_batch`` for the designs that run it.

Vectorized: the plans come from ``dataflows.tiling.band_plans`` (arrays over designs), and every
distinct sub-layer is one ``evaluate_batch`` call over the designs that need it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

import numpy as np

from coexplore.dataflows.spec import Accelerator, TimingProfile
from coexplore.dataflows.tiling import CALL_GAP_CYCLES, CallLimits, LimitArrays, TilingError, band_plans, call_limits
from coexplore.models.ir import Layer
from coexplore.sim.tech import DEFAULT_TECH, TechTable

__all__ = ["cost_calls", "tiled_designs", "without_calls"]

_INSIDE: ContextVar[list[np.ndarray] | None] = ContextVar("coexplore_sim_tiled_inside", default=None)
_GAP_KEYS = ("latency_cycles", "compute_cycles")  # the idle cycles between calls count in both


@contextmanager
def without_calls() -> Iterator[list[np.ndarray]]:
    """``evaluate_batch`` inside costs every layer by the model's own tiles, not as calls (the
    sub-layers' own evaluation, which fit one call; or to see what the calls change). Yields the
    NoC excess cycles arrays those evaluations kept (their results do not carry them)."""
    seen: list[np.ndarray] = []
    token = _INSIDE.set(seen)
    try:
        yield seen
    finally:
        _INSIDE.reset(token)


def tiled_designs(
    accs: Sequence[Accelerator], prof: TimingProfile
) -> tuple[np.ndarray, np.ndarray, LimitArrays | None]:
    """The designs whose calls are tiled (generated hardware in ``prof``, a DRAM limit, a kind
    ``call_limits`` tiles; as ``sim.cycle.simulator.tiling_plan``): their indices, the index of each
    one's limits among the distinct limits, and those (designs that differ elsewhere plan alike)."""
    idx, which = [], []
    distinct: dict[CallLimits, int] = {}
    generated: dict[str, bool] = {}
    known: dict[tuple, int | None] = {}  # designs alike in what call_limits reads
    for i, acc in enumerate(accs):
        name = acc.dataflow.name
        if name not in generated:
            generated[name] = prof.for_template(name).generated_hardware
        bw = acc.dram_bw_bytes_per_cycle
        if not generated[name] or bw is None:
            continue
        kb = (acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb)
        key = (id(acc.dataflow), acc.rows, acc.cols, bw, acc.acc_bits, *kb)
        if key not in known:
            lim = call_limits(acc)
            known[key] = None if lim is None else distinct.setdefault(lim, len(distinct))
        at = known[key]
        if at is not None:
            idx.append(i)
            which.append(at)
    lims = LimitArrays.of(list(distinct)) if distinct else None
    return np.asarray(idx, dtype=np.intp), np.asarray(which, dtype=np.intp), lims


def _call_shapes(p: int, k: int, pb: np.ndarray, kt: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows, channels, count) of every call shape: full and last band x full and last K tile."""
    nb, rb, nk, rk = p // pb, p % pb, k // kt, k % kt
    return [(pb, kt, nb * nk), (pb, rk, nb * (rk > 0)), (rb, kt, nk * (rb > 0)), (rb, rk, (rb > 0) * (rk > 0))]


def cost_calls(
    layers: Sequence[Layer],
    accs: Sequence[Accelerator],
    prof: TimingProfile,
    res: dict[str, np.ndarray],
    tech: TechTable = DEFAULT_TECH,
) -> int:
    """Replace, in ``res`` (``evaluate_batch``'s arrays of shape (designs, layers), every key a sum
    over calls), the entries of the (layer, design) pairs that run as several calls by the sums over
    those calls plus the gap cycles. Returns the number of pairs replaced.

    The distinct sub-layers of the designs of one template and array shape are one ``evaluate_batch``
    call over those designs (its fixed cost per call is far above its cost per pair, so one call beats
    one per sub-layer even though it also evaluates pairs no design runs: 0.7 s instead of 10 s on
    benchmarks/bench_analytical.py's 116k tiled pairs). The sub-layers are the plan's calls, which
    fit one call each: their own evaluation skips this post-pass (no recursion)."""
    from coexplore.sim.analytical import evaluate_batch  # that module calls this one at its end

    seen = _INSIDE.get()
    if seen is not None:  # the sub-layers' own evaluation (they fit one call): hand back the NoC excess
        seen.append(res["noc_excess_cycles"].copy())
        return 0
    d_idx, which, lim = tiled_designs(accs, prof)
    if lim is None:
        return 0
    # every call shape of every pair that needs several calls: (pair, design, layer, band rows, channels, count)
    parts: list[tuple[np.ndarray, ...]] = []
    pair_rows, pair_cols, pair_gaps = [], [], []
    n_pairs = 0
    for j, layer in enumerate(layers):
        if not layer.kind.has_macs:
            continue
        try:
            pb, kt, n_calls = (x[which] for x in band_plans(layer, lim))
        except TilingError:
            continue  # a kind, grouping or stride the hardware does not tile: the model's own estimate
        need = n_calls > 1
        if not need.any():
            continue
        rows, pb, kt, n_calls = d_idx[need], pb[need], kt[need], n_calls[need]
        assert (pb > 0).all() and (kt > 0).all()  # a plan of calls that each fit (band_plans' checks)
        pair_rows.append(rows)
        pair_cols.append(np.full(len(rows), j, dtype=np.intp))
        pair_gaps.append(CALL_GAP_CYCLES * (n_calls - 1.0))
        for band, chans, cnt in _call_shapes(layer.p, layer.k, pb, kt):
            on = np.flatnonzero(cnt)
            parts.append((n_pairs + on, rows[on], np.full(len(on), j), band[on], chans[on], cnt[on]))
        n_pairs += len(rows)
    if not parts:
        return 0
    e_pair, e_d, e_j, e_band, e_k, e_cnt = (np.concatenate(x) for x in zip(*parts))
    e_val = {key: np.empty(len(e_pair)) for key in res}
    code = (e_j * (e_band.max() + 1) + e_band) * (e_k.max() + 1) + e_k  # the sub-layer (layer, band, channels)
    made: dict[int, Layer] = {}
    summed: list[str] = []
    # one evaluate_batch per template and array shape (it evaluates each shape in its own chunks anyway)
    group_of: dict[tuple[str, int, int], int] = {}
    group = np.array([group_of.setdefault((a.dataflow.name, a.rows, a.cols), len(group_of)) for a in accs])[e_d]
    for g in range(len(group_of)):
        on = np.flatnonzero(group == g)
        if not len(on):
            continue
        designs, d_pos = np.unique(e_d[on], return_inverse=True)
        subs, first, s_pos = np.unique(code[on], return_index=True, return_inverse=True)
        for c, i in zip(subs.tolist(), on[first].tolist()):
            if c not in made:
                made[c] = _sub_layer(layers[int(e_j[i])], int(e_band[i]), int(e_k[i]))
        with without_calls() as noc:
            r = evaluate_batch(
                [made[c] for c in subs.tolist()], [accs[i] for i in designs], prof, tech, "dram_read_bytes" in res
            )
        got = {k: getattr(r, k) for k in ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj")}
        got["noc_excess_cycles"] = noc[0] if noc else np.zeros_like(r.latency_cycles)  # hook absent: no record
        got.update(r.detail)
        summed = [key for key in res if key in got]  # a key the result does not carry keeps its value
        for key in summed:
            e_val[key][on] = got[key][d_pos, s_pos]
    rows, cols, gaps = np.concatenate(pair_rows), np.concatenate(pair_cols), np.concatenate(pair_gaps)
    for key in summed:
        total = np.bincount(e_pair, weights=e_cnt * e_val[key], minlength=n_pairs)
        res[key][rows, cols] = total + (gaps if key in _GAP_KEYS else 0.0)
    return n_pairs


def _sub_layer(layer: Layer, band: int, chans: int) -> Layer:
    """One call's sub-layer (as the simulator's ``_tiled_layer``): ``band`` output rows and ``chans``
    channels over the unpadded input rows and columns they read."""
    return replace(
        layer,
        name=f"{layer.name}[{band}x{chans}]",
        k=chans,
        h=(band - 1) * layer.stride_h + layer.r,
        w=(layer.q - 1) * layer.stride_w + layer.s,
        pad_h=0,
        pad_w=0,
    )
