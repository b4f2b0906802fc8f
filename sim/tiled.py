"""Layers the generated arrays run as several calls, costed as those calls (docs/rtl.md, "Whole networks").

A layer that one call of the generated WS/OS hardware cannot hold runs as the calls of
``dataflows.tiling.plan_calls`` (output tiles, K tiles when the fold-count register needs them,
channel groups whose partial sums the host adds), one after another. The cycle simulator's ``rtl``
profile charges the sum of the calls plus ``CALL_GAP_CYCLES`` per boundary; ``cost_calls`` is the
same post-pass for the analytical model: it replaces what ``evaluate_batch`` assumed for such a
layer (input tiling and partial-sum spills the hardware does not have) by count x cost of each
distinct call shape, each shape a sub-layer of the call's input channels, output rows, columns and
filters over the unpadded input it reads (as ``sim.cycle.simulator``'s ``_tiled_layer`` builds it),
evaluated by ``evaluate_pairs`` for the designs that run it. A channel group's partial output is
written at accumulator width like any call's output, so its write traffic is the sub-layer's own.

Vectorized: the plans come from ``dataflows.tiling.band_options`` (arrays over designs, a few options
each), every distinct sub-layer is evaluated (``evaluate_pairs``) on just the designs that need it,
and each pair keeps its option of the fewest cycles (as ``tiling.cheapest_option``, the simulator's
and the RTL host's choice).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, replace
from functools import lru_cache
from operator import attrgetter

import numpy as np

from coexplore.dataflows.spec import Accelerator, TimingProfile
from coexplore.dataflows.tiling import (
    CALL_GAP_CYCLES,
    CallLimits,
    LimitArrays,
    TilingError,
    band_options,
    call_limits,
    call_shapes,
)
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

    Every distinct sub-layer is evaluated on just the designs that run it, in one ``evaluate_pairs``
    call (a grid of sub-layers x designs per template and array shape evaluated ~4.6x the pairs
    needed). The sub-layers are the plan's calls, which fit one call each: ``evaluate_pairs`` does
    not run this post-pass (no recursion)."""
    from coexplore.sim.analytical import evaluate_pairs  # that module calls this one at its end

    seen = _INSIDE.get()
    if seen is not None:  # the sub-layers' own evaluation (they fit one call): hand back the NoC excess
        seen.append(res["noc_excess_cycles"].copy())
        return 0
    from coexplore.dataflows.decompose import decomposes_on, needs_decomposition
    from coexplore.sim.decomposed import cost_decomposed  # depthwise, grouped, matmul, batch (decompose)

    cost_decomposed(layers, accs, prof, res, tech)
    d_idx, which, lim = tiled_designs(accs, prof)
    if lim is None:
        return 0
    # every call shape of every pair that needs several calls, as entries (pair, design, sub-layer, count):
    # per layer, the distinct plans among the distinct limits, each plan's call shapes a block of rows of
    # a table (sub-layer, count), and each pair's entries that block (numpy repeats, no loop over pairs)
    parts: list[tuple[np.ndarray, ...]] = []  # entries (slot, design, sub-layer, count)
    slots: list[tuple[np.ndarray, ...]] = []  # per slot (a pair under one of its plans): design, layer, gaps, groups
    subs: dict[tuple[int, ...], int] = {}  # (layer, call shape) -> its index in ``made``
    made: list[Layer] = []
    n_pairs = 0
    for j, layer in enumerate(layers):
        if not layer.kind.has_macs:
            continue
        try:
            options = band_options(layer, lim)  # per distinct limits: (limits, options, 5)
        except TilingError:
            continue  # a kind, grouping or stride the hardware does not tile: the model's own estimate
        need = options[:, :, 4].max(axis=1) > 1  # one option of one call: the whole layer
        if needs_decomposition(layer):  # its pairs on the arrays that decompose were costed above
            need &= ~np.array([decomposes_on(layer, str(kind)) for kind in lim.kind], dtype=bool)
        # every (limits, option) a plan of its own: each design's slots, one per option, in one pass
        n_opt = options.shape[1]
        on = np.flatnonzero((need[:, None] & (options[:, :, 4] > 0)).reshape(-1))
        if len(on):
            which_all = (which[:, None] * n_opt + np.arange(n_opt)).reshape(-1)
            flat = options.reshape(-1, 5).T
            n_pairs = _add_plans(
                layer, j, flat, on, which_all, np.repeat(d_idx, n_opt), subs, made, parts, slots, n_pairs
            )
    if not parts:
        return 0
    e_pair, e_d, e_sub, e_cnt = (np.concatenate(x) for x in zip(*parts))
    # each distinct sub-layer on just the designs that run it, all in one evaluate_pairs call
    r = evaluate_pairs(made, accs, e_sub, e_d, prof, tech, "dram_read_bytes" in res)
    got = {
        k: getattr(r, k) for k in ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj", "noc_excess_cycles")
    }
    got.update(r.detail)
    summed = [key for key in res if key in got]  # a key the result does not carry keeps its value
    e_val = {key: got[key] for key in summed}
    rows, cols, gaps, n_groups = (np.concatenate(x) for x in zip(*slots))
    # each pair's cheapest plan (ties as dataflows.tiling.cheapest_plan: fewest groups, calls, widest first)
    lat = np.bincount(e_pair, weights=e_cnt * got["latency_cycles"], minlength=n_pairs) + gaps
    pair = rows * len(layers) + cols
    order = np.lexsort((np.arange(n_pairs), gaps, n_groups, lat, pair))
    keep = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
    for key in summed:
        total = np.bincount(e_pair, weights=e_cnt * e_val[key], minlength=n_pairs)
        res[key][rows[keep], cols[keep]] = total[keep] + (gaps[keep] if key in _GAP_KEYS else 0.0)
    return len(keep)


def _add_plans(
    layer: Layer,
    j: int,
    plan: np.ndarray,
    on: np.ndarray,
    which: np.ndarray,
    d_idx: np.ndarray,
    subs: dict[tuple[int, ...], int],
    made: list[Layer],
    parts: list[tuple[np.ndarray, ...]],
    slots: list[tuple[np.ndarray, ...]],
    n_pairs: int,
) -> int:
    """Append to ``parts`` / ``slots`` layer ``j`` under ``plan`` (cg, pb, qb, kt, calls: arrays over
    the distinct limits) on the designs whose limits are ``on``: every call shape of every pair as
    entries (slot, design, sub-layer, count), the distinct plans' shapes a table each pair's entries
    repeat (numpy repeats, no loop over pairs). Returns the slots counted so far."""
    cg, pb, qb, kt, n_calls = plan
    assert (cg[on] > 0).all() and (pb[on] > 0).all() and (qb[on] > 0).all() and (kt[on] > 0).all()
    code = ((cg[on] * (layer.p + 1) + pb[on]) * (layer.q + 1) + qb[on]) * (layer.k + 1) + kt[on]
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    t_sub: list[int] = []  # the table: sub-layer and count of every call shape of every plan
    t_cnt: list[int] = []
    t_start: list[int] = []  # each plan's first row and number of rows
    t_size: list[int] = []
    for i in on[first].tolist():  # the distinct plans
        shapes = call_shapes(layer, int(cg[i]), int(pb[i]), int(qb[i]), int(kt[i]))
        t_start.append(len(t_sub))
        t_size.append(len(shapes))
        for *shape, count in shapes:
            sub = (j, *shape)
            if sub not in subs:
                subs[sub] = len(made)
                made.append(_sub_layer(layer, *shape))
            t_sub.append(subs[sub])
            t_cnt.append(count)
    plan_of = np.full(len(n_calls), -1, dtype=np.intp)
    plan_of[on] = inv.reshape(-1)
    picked = plan_of[which]
    mine = np.flatnonzero(picked >= 0)
    rows, picked = d_idx[mine], picked[mine]
    gaps = CALL_GAP_CYCLES * (n_calls[which[mine]] - 1.0)
    slots.append((rows, np.full(len(rows), j, dtype=np.intp), gaps, -(-layer.c // cg[which[mine]])))
    size = np.asarray(t_size, dtype=np.intp)[picked]
    pair = np.repeat(np.arange(len(rows)), size)
    ends = np.cumsum(size)
    row = np.arange(int(ends[-1])) - np.repeat(ends - size - np.asarray(t_start, dtype=np.intp)[picked], size)
    parts.append((n_pairs + pair, rows[pair], np.asarray(t_sub, dtype=np.intp)[row], np.asarray(t_cnt)[row]))
    return n_pairs + len(rows)


_LAYER_FIELDS = tuple(f.name for f in fields(Layer))
_LAYER_VALUES = attrgetter(*_LAYER_FIELDS)


@lru_cache(maxsize=65536)  # layers repeat across runs: the same sub-layer object
def _sub_layer(layer: Layer, chans: int, filters: int, rows: int, held_h: int, cols: int, held_w: int) -> Layer:
    """One call's sub-layer (as the simulator's ``_tiled_layer``): ``chans`` input channels,
    ``rows x cols`` output pixels and ``filters`` output channels, its windows over an unpadded
    input; then its input set to the ``held_h x held_w`` pixels the call holds (an edge tile's other
    rows and columns are padding), as the simulator overrides the call's input words: the sub-layer
    keeps its P, Q (derived at construction) and reads only what the hardware loads."""
    if layer.dilation_h == 1 and layer.dilation_w == 1:  # P = rows, Q = cols: built without revalidating
        sub = object.__new__(Layer)
        for f, v in zip(_LAYER_FIELDS, _LAYER_VALUES(layer)):
            object.__setattr__(sub, f, v)
        name = f"{layer.name}[{chans}x{rows}x{cols}x{filters}]"
        for f, v in (("name", name), ("c", chans), ("k", filters), ("h", held_h), ("w", held_w), ("p", rows)):
            object.__setattr__(sub, f, v)
        for f, v in (("q", cols), ("pad_h", 0), ("pad_w", 0)):
            object.__setattr__(sub, f, v)
        return sub
    sub = replace(
        layer,
        name=f"{layer.name}[{chans}x{rows}x{cols}x{filters}]",
        c=chans,
        k=filters,
        h=(rows - 1) * layer.stride_h + layer.r,
        w=(cols - 1) * layer.stride_w + layer.s,
        pad_h=0,
        pad_w=0,
    )
    object.__setattr__(sub, "h", held_h)  # frozen: P, Q were derived above and stay
    object.__setattr__(sub, "w", held_w)
    return sub
