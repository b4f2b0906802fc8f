"""System model: several networks (one per task) on the sub-accelerators of a ``System``.

Three steps, each a pure function over values:

1. **Costs.** A *cost provider* maps (layers, accelerators) to a ``CostTable``: per pair the cycles
   *at that accelerator's own DRAM bandwidth*, the energy and the DRAM bytes; per accelerator the area.
   ``build_problem`` asks it about the system's sub-accelerators as they run there
   (``port_accelerators``: one shared DRAM port each, at the port's bandwidth, or at a fraction of it
   for the slower bandwidth modes), so a unit's cost is the model's own figure, the same that
   ``coexplore evaluate`` prints for that accelerator. ``analytical_costs`` wraps
   ``coexplore.sim.analytical.evaluate_batch``, ``cycle_costs`` the cycle-level simulator.
   Synthetic tables (tests, toy models) may instead hold cycles with no DRAM bound
   (``bandwidth_bound=False``); ``build_problem`` then bounds them by the roofline
   ``max(cycles, dram_bytes / bandwidth)``.
2. **Problem.** ``build_problem`` turns networks + system + costs into a ``MappingProblem`` over
   *units*: a unit is a run of consecutive layers of one network that goes to one sub-accelerator.
   By default a pooling or element-wise layer rides with the compute layer before it (it runs on that
   sub-accelerator's vector path), and ``max_units_per_task`` groups long networks into at most that
   many segments of consecutive layers to keep exact scheduling tractable: neighbours that run best
   on the same sub-accelerator merge first (see ``_merge_ranges``), so grouping loses little. The
   schedule is then optimal for the grouped problem; the per-layer problem can only be as good or
   better (every grouped schedule is a per-layer schedule).
   A unit's duration on sub-accelerator ``a`` is the sum over its layers of their cycles there (each
   rounded up to whole cycles); while it runs it draws its average bandwidth ``dram_bytes / duration``
   from the DRAM pool.
3. **Simulation.** ``simulate`` runs an assignment (unit -> sub-accelerator) and an order per
   sub-accelerator under one of two bandwidth policies:

   * ``reserved``: a unit starts only when its sub-accelerator is free, its inputs have arrived
     (producers done, plus a link transfer when the producer ran elsewhere) and the DRAM pool has
     its bandwidth free; it then runs at full speed. This is the model the schedulers optimize, so a
     schedule replays exactly.
   * ``fair``: a unit starts as soon as its sub-accelerator and inputs allow; when the busy units want
     more bandwidth than the pool has, the pool is split max-min fairly and each unit slows in
     proportion (roofline). This measures contention of a given order.

   The result holds each task's completion time, the makespan, energy (units + link transfers),
   area, per-unit timings and contention figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from coexplore.dataflows.spec import Accelerator, SpecError
from coexplore.dataflows.system import BandwidthSharing, Link, System, check_area
from coexplore.models.ir import CoexploreError, Layer, Network

BW_SCALE = 1000  # bandwidth demands are integers in bytes per 1000 cycles (exact for CP-SAT)


# ---- costs -----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CostTable:
    """Costs of layers on accelerators: arrays of shape (accelerators, layers), except ``area_um2``
    (accelerators,).

    ``compute_cycles`` are, when ``bandwidth_bound``, the cost model's own cycles of each layer at each
    accelerator's DRAM bandwidth as the provider was given it (what the providers here return);
    otherwise cycles with no DRAM bound (synthetic tables), which ``build_problem`` bounds by the
    roofline ``max(cycles, dram_bytes / bandwidth)``.
    """

    compute_cycles: np.ndarray
    energy_pj: np.ndarray
    dram_bytes: np.ndarray  # bytes read + written
    area_um2: np.ndarray
    bandwidth_bound: bool = False

    def __post_init__(self) -> None:
        shape = np.shape(self.compute_cycles)
        for name in ("energy_pj", "dram_bytes"):
            if np.shape(getattr(self, name)) != shape:
                raise CoexploreError(f"cost table: {name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        if np.shape(self.area_um2) != shape[:1]:
            raise CoexploreError(f"cost table: area_um2 has shape {np.shape(self.area_um2)}, expected {shape[:1]}")

    def rows(self, index: Sequence[int] | slice) -> CostTable:
        """The table of some accelerators (rows), in the order given."""
        idx = index if isinstance(index, slice) else np.asarray(index, dtype=np.intp)
        return CostTable(
            self.compute_cycles[idx],
            self.energy_pj[idx],
            self.dram_bytes[idx],
            self.area_um2[idx],
            self.bandwidth_bound,
        )


CostFn = Callable[[Sequence[Layer], Sequence[Accelerator]], CostTable]
"""A cost provider: every layer on every accelerator, each at its own DRAM bandwidth."""


def port_accelerators(system: System, level: float = 1.0) -> tuple[Accelerator, ...]:
    """The system's sub-accelerators as a cost provider is asked about them: one DRAM port for all
    operands (``dram_ports="shared"``) at ``level`` x its port bandwidth (its slice, or the pool)."""
    return tuple(
        replace(a, dram_bw_bytes_per_cycle=system.port_bw_bytes_per_cycle(i) * level, dram_ports="shared")
        for i, a in enumerate(system.accelerators)
    )


def analytical_costs(profile: object = "rtl") -> CostFn:
    """A cost provider over the analytical model, each accelerator at its own DRAM bandwidth."""

    def provider(layers: Sequence[Layer], accs: Sequence[Accelerator]) -> CostTable:
        from coexplore.sim.analytical import evaluate_batch

        res = evaluate_batch(list(layers), list(accs), profile)  # type: ignore[arg-type]
        return CostTable(
            compute_cycles=np.asarray(res.latency_cycles, dtype=float),
            energy_pj=np.asarray(res.energy_pj, dtype=float),
            dram_bytes=np.asarray(res.dram_bytes, dtype=float),
            area_um2=np.asarray(res.area_um2, dtype=float),
            bandwidth_bound=True,
        )

    return provider


def cycle_costs(profile: object = "rtl") -> CostFn:
    """A cost provider whose cycles and DRAM bytes come from the cycle-level simulator (each distinct
    layer shape on each distinct accelerator once; slower than the analytical model), with energy and
    area from the analytical model (the simulator counts no energy)."""

    def provider(layers: Sequence[Layer], accs: Sequence[Accelerator]) -> CostTable:
        from coexplore.sim.cycle import simulate_layer

        base = analytical_costs(profile)(layers, accs)
        cycles = np.empty(base.compute_cycles.shape)
        nbytes = np.empty(base.dram_bytes.shape)
        cache: dict[tuple, tuple[float, float]] = {}
        for i, acc in enumerate(accs):
            plain = replace(acc, name="")
            for j, layer in enumerate(layers):
                key = (plain, replace(layer, name=""))
                if key not in cache:
                    sim = simulate_layer(layer, plain, profile)  # type: ignore[arg-type]
                    cache[key] = (float(sim.total_cycles), float(sim.dram_reads + sim.dram_writes))
                cycles[i, j], nbytes[i, j] = cache[key]
        return CostTable(
            compute_cycles=cycles,
            energy_pj=base.energy_pj,
            dram_bytes=nbytes,
            area_um2=base.area_um2,
            bandwidth_bound=True,
        )

    return provider


# ---- problem ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Unit:
    """Layers ``first..last`` (inclusive) of task ``task``, scheduled as one piece."""

    task: int
    first: int
    last: int
    name: str


@dataclass(frozen=True, eq=False)
class MappingProblem:
    """Everything a scheduler needs; arrays have shape (units, accelerators) unless noted."""

    task_names: tuple[str, ...]
    acc_names: tuple[str, ...]
    units: tuple[Unit, ...]
    edges: tuple[tuple[int, int], ...]  # (producer unit, consumer unit)
    edge_bytes: tuple[float, ...]
    mode_duration_cycles: np.ndarray  # int64 (modes, units, accelerators): at bw_levels[m] x port bandwidth
    mode_bw_demand: np.ndarray  # int64 (modes, units, accelerators): bytes per BW_SCALE cycles drawn meanwhile
    energy_pj: np.ndarray
    dram_bytes: np.ndarray
    allowed: np.ndarray  # bool
    area_um2: np.ndarray  # (accelerators,)
    port_bw_bytes_per_cycle: np.ndarray  # (accelerators,)
    pool_bw_bytes_per_cycle: float
    link: Link
    task_weights: tuple[float, ...]
    bw_levels: tuple[float, ...] = (1.0,)  # bandwidth modes, as fractions of the port; mode 0 = full
    layer_names: tuple[tuple[str, ...], ...] = ()  # per task, for reports

    @property
    def duration_cycles(self) -> np.ndarray:
        """(units, accelerators): full-speed durations (mode 0)."""
        return self.mode_duration_cycles[0]

    @property
    def bw_demand(self) -> np.ndarray:
        """(units, accelerators): full-speed bandwidth draws (mode 0), bytes per BW_SCALE cycles."""
        return self.mode_bw_demand[0]

    @property
    def n_modes(self) -> int:
        return len(self.bw_levels)

    def mode_allowed(self, mode: int, unit: int, acc: int) -> bool:
        """A slower mode is offered only where it is really slower (and so draws less)."""
        if not self.allowed[unit, acc]:
            return False
        if mode == 0:
            return True
        return bool(self.mode_duration_cycles[mode, unit, acc] > self.mode_duration_cycles[mode - 1, unit, acc])

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_accs(self) -> int:
        return len(self.acc_names)

    @property
    def pool_bw_scaled(self) -> int:
        return int(math.floor(self.pool_bw_bytes_per_cycle * BW_SCALE + 1e-6))

    @property
    def bandwidth_binds(self) -> bool:
        """Whether the pool can run short: only when the busiest unit of every accelerator together
        would draw more than it has (never under partitioned bandwidth)."""
        return int(np.where(self.allowed, self.bw_demand, 0).max(axis=0).sum()) > self.pool_bw_scaled

    def transfer_cycles(self, edge: int) -> int:
        nbytes = self.edge_bytes[edge]
        if nbytes <= 0:
            return 0
        return int(self.link.latency_cycles + math.ceil(nbytes / self.link.bw_bytes_per_cycle))

    def transfer_energy_pj(self, edge: int) -> float:
        return float(self.edge_bytes[edge] * self.link.energy_pj_per_byte)

    def predecessors(self) -> list[list[int]]:
        """Per unit, the indices of its incoming edges."""
        out: list[list[int]] = [[] for _ in self.units]
        for e, (_, c) in enumerate(self.edges):
            out[c].append(e)
        return out

    def successors(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.units]
        for e, (p, _) in enumerate(self.edges):
            out[p].append(e)
        return out

    def task_units(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.task_names]
        for u, unit in enumerate(self.units):
            out[unit.task].append(u)
        return out


def _network_edges(net: Network) -> tuple[tuple[int, int], ...]:
    """The network's edges; a multi-layer network without edges is taken as a chain."""
    if net.edges or len(net.layers) == 1:
        return net.edges
    return tuple((i, i + 1) for i in range(len(net.layers) - 1))


def _layer_out_bytes(layer: Layer) -> float:
    return layer.output_words * layer.output_bits / 8


def _fused_ranges(net: Network) -> list[tuple[int, int]]:
    """Consecutive-layer ranges where each pooling/element-wise layer rides with the layer before it."""
    starts = [i for i, l in enumerate(net.layers) if l.kind.has_macs]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    bounds = starts + [len(net.layers)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(len(starts))]


def _merge_ranges(ranges: list[tuple[int, int]], dur: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Merge adjacent ranges until at most ``parts`` remain, cheapest merge first.

    ``dur`` has shape (accelerators, layers of the network). Merging two neighbours costs how much
    longer the pair takes on its best common sub-accelerator than each on its own best
    (``min_a(d1 + d2) - (min d1 + min d2)``): 0 when both prefer the same one, so a depthwise layer that
    runs best on one template and the pointwise layer that runs best on another stay apart while
    other units are left. Ties go to the smallest merged unit, keeping segments balanced.
    """
    cols = [dur[:, a : b + 1].sum(axis=1) for a, b in ranges]
    ranges = list(ranges)
    while len(ranges) > parts:
        best_i, best_key = 0, (math.inf, math.inf)
        for i in range(len(ranges) - 1):
            merged = cols[i] + cols[i + 1]
            key = (float(merged.min() - cols[i].min() - cols[i + 1].min()), float(merged.min()))
            if key < best_key:
                best_i, best_key = i, key
        i = best_i
        ranges[i : i + 2] = [(ranges[i][0], ranges[i + 1][1])]
        cols[i : i + 2] = [cols[i] + cols[i + 1]]
    return ranges


DEFAULT_BW_LEVELS = (1.0, 0.5, 0.25)


def _mode_tables(
    level_cycles: Sequence[np.ndarray],
    dram_bytes: np.ndarray,
    port: np.ndarray,
    levels: Sequence[float],
    unit_cols: Sequence[slice],
) -> tuple[np.ndarray, np.ndarray]:
    """(modes, units, accelerators) durations and bandwidth draws from per-level (accelerators, layers) cycles."""
    n_m, n_u, n_a = len(levels), len(unit_cols), len(port)
    dur = np.empty((n_m, n_u, n_a), dtype=np.int64)
    dem = np.empty((n_m, n_u, n_a), dtype=np.int64)
    for m, level in enumerate(levels):
        bw = port * level
        per_layer = level_cycles[m]
        for u, cols in enumerate(unit_cols):
            d = np.maximum(1, per_layer[:, cols].sum(axis=1)).astype(np.int64)
            nbytes = dram_bytes[:, cols].sum(axis=1)
            q = np.ceil(nbytes * BW_SCALE / d - 1e-9).astype(np.int64)
            dur[m, u] = d
            dem[m, u] = np.minimum(q, np.floor(bw * BW_SCALE + 1e-6).astype(np.int64))
    return dur, dem


def layer_durations(costs: CostTable, port_bw: np.ndarray) -> np.ndarray:
    """Per (accelerator, layer) whole cycles at each accelerator's port bandwidth: a bandwidth-bound
    table's own cycles (it was evaluated at those bandwidths), else the roofline over its cycles."""
    cycles = np.ceil(costs.compute_cycles)
    if costs.bandwidth_bound:
        return cycles
    return np.maximum(cycles, np.ceil(costs.dram_bytes / np.asarray(port_bw, dtype=float)[:, None]))


def _slow_durations(
    costs: CostFn | CostTable,
    table: CostTable,
    layers: Sequence[Layer],
    system: System,
    port: np.ndarray,
    levels: Sequence[float],
) -> list[np.ndarray]:
    """Per slower bandwidth level, (accelerators, layers) whole cycles at that fraction of each port:
    the provider's own figures (one call for all levels), or the roofline of a table with no DRAM bound."""
    if not table.bandwidth_bound:
        return [layer_durations(table, port * level) for level in levels]
    if isinstance(costs, CostTable):
        raise CoexploreError(
            f"system {system.name!r}: the DRAM pool can run short, and a ready cost table holds "
            f"cycles at full port bandwidth only (expected a cost provider, or bw_levels=None)"
        )
    n_a = len(system.accelerators)
    slow = costs(layers, [a for level in levels for a in port_accelerators(system, level)])
    if slow.compute_cycles.shape != (len(levels) * n_a, len(layers)):
        raise CoexploreError(
            f"cost table has shape {slow.compute_cycles.shape}, expected ({len(levels) * n_a}, {len(layers)})"
        )
    cycles = slow.compute_cycles.reshape(len(levels), n_a, len(layers))
    return [np.ceil(np.where(np.isfinite(c), c, 0.0)) for c in cycles]  # not finite: never offered (not slower)


def build_problem(
    networks: Sequence[Network],
    system: System,
    costs: CostFn | CostTable,
    *,
    fuse: bool = True,
    max_units_per_task: int | None = None,
    task_weights: Sequence[float] | None = None,
    bw_levels: Sequence[float] | None = DEFAULT_BW_LEVELS,
    unit_ranges: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> MappingProblem:
    """The scheduling problem of ``networks`` (one task each) on ``system``; see the module docstring.

    ``bw_levels``: the bandwidth modes a unit may run in when the DRAM pool can run short (fractions
    of its port; only full speed when it cannot).

    ``costs`` is a provider (asked about ``port_accelerators(system)``, and at the slower levels when
    they are needed), or a ready table over the networks' layers concatenated in order: bandwidth-bound
    (at the ports' full bandwidth) or with no DRAM bound (roofline).
    ``unit_ranges`` fixes the units instead: per network, (first, last) layer ranges covering it in order.
    """
    if not networks:
        raise CoexploreError("no networks given (expected one network per task)")
    if max_units_per_task is not None and max_units_per_task < 1:
        raise CoexploreError(f"max_units_per_task={max_units_per_task}: expected a positive integer")
    accs = system.accelerators
    all_layers = [l for net in networks for l in net.layers]
    table = costs if isinstance(costs, CostTable) else costs(all_layers, port_accelerators(system))
    if table.compute_cycles.shape != (len(accs), len(all_layers)):
        raise CoexploreError(
            f"cost table has shape {table.compute_cycles.shape}, expected ({len(accs)}, {len(all_layers)})"
        )
    check_area(system, float(np.sum(table.area_um2)))
    port = np.array([system.port_bw_bytes_per_cycle(a) for a in range(len(accs))], dtype=float)
    finite = np.isfinite(table.compute_cycles) & np.isfinite(table.energy_pj) & np.isfinite(table.dram_bytes)
    safe = CostTable(
        np.where(finite, table.compute_cycles, 0.0),
        np.where(finite, table.energy_pj, 0.0),
        np.where(finite, table.dram_bytes, 0.0),
        table.area_um2,
        table.bandwidth_bound,
    )
    dur_l = layer_durations(safe, port)

    units: list[Unit] = []
    unit_cols: list[slice] = []
    rows_bytes, rows_energy, rows_ok = [], [], []
    edges: dict[tuple[int, int], float] = {}
    offset = 0
    for t, net in enumerate(networks):
        n = len(net.layers)
        sl = slice(offset, offset + n)
        ranges = _fused_ranges(net) if fuse else [(i, i) for i in range(n)]
        if unit_ranges is not None:
            ranges = [tuple(r) for r in unit_ranges[t]]  # type: ignore[misc]
            covered = [i for a, b in ranges for i in range(a, b + 1)]
            if covered != list(range(n)):
                raise CoexploreError(f"unit ranges of {net.name!r} must cover layers 0..{n - 1} in order, once each")
        elif max_units_per_task is not None and len(ranges) > max_units_per_task:
            ranges = _merge_ranges(ranges, np.where(finite[:, sl], dur_l[:, sl], 1e18), max_units_per_task)
        unit_of_layer = np.empty(n, dtype=int)
        for a, b in ranges:
            unit_of_layer[a : b + 1] = len(units)
            first, last = net.layers[a].name, net.layers[b].name
            units.append(Unit(t, a, b, f"{net.name}:{first}" + ("" if a == b else f"..{last}")))
            cols = slice(offset + a, offset + b + 1)
            unit_cols.append(cols)
            rows_bytes.append(safe.dram_bytes[:, cols].sum(axis=1))
            rows_energy.append(safe.energy_pj[:, cols].sum(axis=1))
            rows_ok.append(finite[:, cols].all(axis=1))
        for p, c in _network_edges(net):
            up, uc = int(unit_of_layer[p]), int(unit_of_layer[c])
            if up != uc:
                edges[(up, uc)] = edges.get((up, uc), 0.0) + _layer_out_bytes(net.layers[p])
        offset += n

    dram = np.array(rows_bytes, dtype=float)
    allowed = np.array(rows_ok, dtype=bool)
    levels = tuple(float(b) for b in bw_levels) if bw_levels else (1.0,)
    if levels[0] != 1.0 or any(not (0 < b < a) for a, b in zip(levels, levels[1:])):
        raise CoexploreError(f"bandwidth levels {levels}: expected 1.0 first, then decreasing positive fractions")
    mode_dur, mode_dem = _mode_tables([dur_l], safe.dram_bytes, port, (1.0,), unit_cols)
    pool_scaled = int(math.floor(system.budget.dram_bw_bytes_per_cycle * BW_SCALE + 1e-6))
    if len(levels) > 1 and int(np.where(allowed, mode_dem[0], 0).max(axis=0).sum()) > pool_scaled:
        slow = _slow_durations(costs, safe, all_layers, system, port, levels[1:])
        mode_dur, mode_dem = _mode_tables([dur_l, *slow], safe.dram_bytes, port, levels, unit_cols)
    else:
        levels = (1.0,)
    for u, unit in enumerate(units):
        if not allowed[u].any():
            raise SpecError(f"unit {unit.name!r} cannot run on any sub-accelerator of system {system.name!r}")
    weights = tuple(float(w) for w in (task_weights if task_weights is not None else [1.0] * len(networks)))
    if len(weights) != len(networks) or any(w < 0 for w in weights):
        raise CoexploreError(f"task weights {weights}: expected {len(networks)} non-negative numbers")
    edge_list = sorted(edges)
    return MappingProblem(
        task_names=tuple(net.name for net in networks),
        acc_names=tuple(a.name for a in accs),
        units=tuple(units),
        edges=tuple(edge_list),
        edge_bytes=tuple(edges[e] for e in edge_list),
        mode_duration_cycles=mode_dur,
        mode_bw_demand=mode_dem,
        energy_pj=np.array(rows_energy, dtype=float),
        dram_bytes=dram,
        bw_levels=levels,
        allowed=allowed,
        area_um2=np.asarray(table.area_um2, dtype=float),
        port_bw_bytes_per_cycle=port,
        pool_bw_bytes_per_cycle=float(system.budget.dram_bw_bytes_per_cycle),
        link=system.link,
        task_weights=weights,
        layer_names=tuple(tuple(l.name for l in net.layers) for net in networks),
    )


def synthetic_problem(
    durations: np.ndarray,
    edges: Sequence[tuple[int, int]],
    tasks: Sequence[int],
    *,
    energy_pj: np.ndarray | None = None,
    bw_demand: np.ndarray | None = None,
    pool_bw_bytes_per_cycle: float = 1e9,
    edge_bytes: Sequence[float] | None = None,
    link: Link | None = None,
    task_weights: Sequence[float] | None = None,
    area_um2: Sequence[float] | None = None,
) -> MappingProblem:
    """A problem straight from matrices (units x accelerators), for tests and benchmarks.

    ``bw_demand`` is in bytes per cycle; ``edge_bytes`` default to 0 (free transfers).
    """
    durations = np.maximum(1, np.asarray(durations, dtype=np.int64))
    n_u, n_a = durations.shape
    n_t = max(tasks) + 1
    demand = np.zeros((n_u, n_a)) if bw_demand is None else np.asarray(bw_demand, dtype=float)
    energy = np.zeros((n_u, n_a)) if energy_pj is None else np.asarray(energy_pj, dtype=float)
    pool = float(pool_bw_bytes_per_cycle)
    return MappingProblem(
        task_names=tuple(f"task{t}" for t in range(n_t)),
        acc_names=tuple(f"acc{a}" for a in range(n_a)),
        units=tuple(Unit(t, i, i, f"task{t}:u{i}") for i, t in enumerate(tasks)),
        edges=tuple(tuple(e) for e in edges),  # type: ignore[misc]
        edge_bytes=tuple(edge_bytes) if edge_bytes is not None else tuple(0.0 for _ in edges),
        mode_duration_cycles=durations[None],
        mode_bw_demand=np.ceil(demand * BW_SCALE - 1e-9).astype(np.int64)[None],
        energy_pj=energy,
        dram_bytes=demand * durations,
        allowed=np.ones((n_u, n_a), dtype=bool),
        area_um2=np.asarray(area_um2 if area_um2 is not None else [0.0] * n_a, dtype=float),
        port_bw_bytes_per_cycle=np.full(n_a, pool),
        pool_bw_bytes_per_cycle=pool,
        link=link or Link(bw_bytes_per_cycle=1e9, latency_cycles=0, energy_pj_per_byte=0.0),
        task_weights=tuple(task_weights) if task_weights is not None else tuple(1.0 for _ in range(n_t)),
    )


# ---- simulation ------------------------------------------------------------------------------------
class Policy(str, Enum):
    RESERVED = "reserved"
    FAIR = "fair"


@dataclass(frozen=True, slots=True)
class UnitTiming:
    unit: int
    acc: int
    start_cycle: float
    end_cycle: float
    mode: int = 0  # bandwidth mode (reserved policy)


@dataclass(frozen=True, slots=True)
class Contention:
    """How the DRAM pool was used: peak and mean draw, cycles lost to sharing it."""

    pool_bw_bytes_per_cycle: float
    peak_bw_bytes_per_cycle: float
    mean_bw_bytes_per_cycle: float
    slowdown_cycles: float  # sum over units of (actual - full-speed duration): sharing (fair) or modes
    bw_wait_cycles: float  # reserved: sum over units of time spent ready but waiting for bandwidth


@dataclass(frozen=True, eq=False)
class SystemResult:
    makespan_cycles: float
    energy_pj: float
    area_um2: float
    task_latency_cycles: tuple[float, ...]
    task_energy_pj: tuple[float, ...]
    timings: tuple[UnitTiming, ...]  # indexed by unit
    transfer_energy_pj: float
    transfers: int
    contention: Contention
    policy: Policy

    def weighted_latency(self, weights: Sequence[float]) -> float:
        return float(sum(w * c for w, c in zip(weights, self.task_latency_cycles)))

    def orders(self, n_accs: int) -> list[list[int]]:
        """Per accelerator, its units by start time."""
        out: list[list[int]] = [[] for _ in range(n_accs)]
        for t in sorted(self.timings, key=lambda t: (t.start_cycle, t.unit)):
            out[t.acc].append(t.unit)
        return out


class ScheduleError(CoexploreError):
    """An assignment or order that cannot run (unknown accelerator, order against a dependency...)."""


def _check_assignment(problem: MappingProblem, assignment: Sequence[int]) -> None:
    if len(assignment) != problem.n_units:
        raise ScheduleError(f"assignment has {len(assignment)} entries, expected one per unit ({problem.n_units})")
    for u, a in enumerate(assignment):
        if not (0 <= a < problem.n_accs):
            raise ScheduleError(
                f"unit {problem.units[u].name!r} assigned to accelerator {a}, expected 0..{problem.n_accs - 1}"
            )
        if not problem.allowed[u, a]:
            raise ScheduleError(f"unit {problem.units[u].name!r} cannot run on {problem.acc_names[a]!r}")


def default_orders(
    problem: MappingProblem, assignment: Sequence[int], start_cycles: Sequence[float] | None = None
) -> list[list[int]]:
    """Per accelerator, its units by planned start (when given), else by unit index (topological)."""
    key = (lambda u: (start_cycles[u], u)) if start_cycles is not None else (lambda u: u)
    out: list[list[int]] = [[] for _ in range(problem.n_accs)]
    for u in sorted(range(problem.n_units), key=key):
        out[assignment[u]].append(u)
    return out


def _water_fill(demands: dict[int, float], capacity: float) -> dict[int, float]:
    """Max-min fair split of ``capacity`` among ``demands``."""
    alloc: dict[int, float] = {}
    left = dict(demands)
    cap = capacity
    while left:
        share = cap / len(left)
        small = {u: d for u, d in left.items() if d <= share + 1e-12}
        if not small:
            for u in left:
                alloc[u] = share
            return alloc
        for u, d in small.items():
            alloc[u] = d
            cap -= d
            del left[u]
    return alloc


def simulate(
    problem: MappingProblem,
    assignment: Sequence[int],
    orders: Sequence[Sequence[int]] | None = None,
    *,
    policy: Policy | str = Policy.RESERVED,
    not_before: Sequence[float] | None = None,
    modes: Sequence[int] | None = None,
) -> SystemResult:
    """Run the units under ``policy``; see the module docstring.

    ``not_before`` holds planned starts; ``modes`` the bandwidth mode of each unit under the reserved
    policy (default full speed; the fair policy always starts at full speed and lets sharing slow it).
    """
    policy = Policy(policy)
    _check_assignment(problem, assignment)
    if modes is None or policy is Policy.FAIR:
        modes = [0] * problem.n_units
    if len(modes) != problem.n_units:
        raise ScheduleError(f"modes has {len(modes)} entries, expected one per unit ({problem.n_units})")
    for u, m in enumerate(modes):
        if not (0 <= m < problem.n_modes) or not problem.mode_allowed(m, u, assignment[u]):
            raise ScheduleError(
                f"unit {problem.units[u].name!r}: bandwidth mode {m} is not offered on "
                f"{problem.acc_names[assignment[u]]!r}"
            )
    if orders is None:
        orders = default_orders(problem, assignment, not_before)
    seen = sorted(u for order in orders for u in order)
    if seen != list(range(problem.n_units)):
        raise ScheduleError("orders must list every unit exactly once")
    for a, order in enumerate(orders):
        for u in order:
            if assignment[u] != a:
                raise ScheduleError(
                    f"unit {problem.units[u].name!r} is in the order of {problem.acc_names[a]!r} "
                    f"but assigned to {problem.acc_names[assignment[u]]!r}"
                )
    preds = problem.predecessors()
    n = problem.n_units
    dur = [int(problem.mode_duration_cycles[modes[u], u, assignment[u]]) for u in range(n)]
    dem = [int(problem.mode_bw_demand[modes[u], u, assignment[u]]) for u in range(n)]
    xfer = [problem.transfer_cycles(e) for e in range(len(problem.edges))]
    release = [0.0 if not_before is None else float(not_before[u]) for u in range(n)]
    pool = problem.pool_bw_scaled
    start = [math.nan] * n
    end = [math.nan] * n
    heads = [0] * problem.n_accs
    busy: list[int | None] = [None] * problem.n_accs
    done = [False] * n
    remaining = [1.0] * n  # fair: fraction of work left
    running: set[int] = set()
    t = 0.0
    peak = 0.0
    slowdown = 0.0
    wait_bw = 0.0
    wait_since: dict[int, float] = {}

    def ready_time(u: int) -> float:
        r = release[u]
        for e in preds[u]:
            p = problem.edges[e][0]
            if not done[p]:
                return math.inf
            r = max(r, end[p] + (xfer[e] if assignment[p] != assignment[u] else 0))
        return r

    def draw() -> float:
        return sum(dem[u] for u in running) / BW_SCALE

    finished = 0
    while finished < n:
        # start every head that can start now
        started = True
        while started:
            started = False
            for a in range(problem.n_accs):
                if busy[a] is not None or heads[a] >= len(orders[a]):
                    continue
                u = orders[a][heads[a]]
                if ready_time(u) > t + 1e-9:
                    continue
                if policy is Policy.RESERVED and sum(dem[v] for v in running) + dem[u] > pool:
                    wait_since.setdefault(u, t)
                    continue
                if u in wait_since:
                    wait_bw += t - wait_since.pop(u)
                start[u] = t
                busy[a] = u
                heads[a] += 1
                running.add(u)
                started = True
        if policy is Policy.RESERVED:
            peak = max(peak, draw())
            next_end = min((start[u] + dur[u] for u in running), default=math.inf)
            rates = None
        else:
            want = {u: dem[u] / BW_SCALE for u in running}
            alloc = _water_fill(want, pool / BW_SCALE) if sum(want.values()) > pool / BW_SCALE else want
            peak = max(peak, sum(alloc.values()))
            rates = {u: (alloc[u] / want[u] if want[u] > 0 else 1.0) / dur[u] for u in running}
            next_end = min((t + remaining[u] / rates[u] for u in running), default=math.inf)
        next_ready = math.inf
        for a in range(problem.n_accs):
            if busy[a] is None and heads[a] < len(orders[a]):
                r = ready_time(orders[a][heads[a]])
                if r > t + 1e-9:
                    next_ready = min(next_ready, r)
        t_next = min(next_end, next_ready)
        if t_next == math.inf:
            stuck = [
                problem.units[orders[a][heads[a]]].name for a in range(problem.n_accs) if heads[a] < len(orders[a])
            ]
            raise ScheduleError(f"the order deadlocks: {', '.join(stuck)} wait for units queued behind them")
        if rates is not None:
            for u in running:
                remaining[u] -= rates[u] * (t_next - t)
        t = t_next
        for u in list(running):
            ended = (start[u] + dur[u] <= t + 1e-9) if policy is Policy.RESERVED else remaining[u] <= 1e-9
            if ended:
                end[u] = float(start[u] + dur[u]) if policy is Policy.RESERVED else t
                full = int(problem.duration_cycles[u, assignment[u]])
                slowdown += max(0.0, end[u] - start[u] - full)
                running.discard(u)
                busy[assignment[u]] = None
                done[u] = True
                finished += 1
    return _result(problem, assignment, modes, start, end, peak, slowdown, wait_bw, policy)


def _result(
    problem: MappingProblem,
    assignment: Sequence[int],
    modes: Sequence[int],
    start: list[float],
    end: list[float],
    peak: float,
    slowdown: float,
    wait_bw: float,
    policy: Policy,
) -> SystemResult:
    n_t = len(problem.task_names)
    latency = [0.0] * n_t
    energy_t = [0.0] * n_t
    for u, unit in enumerate(problem.units):
        latency[unit.task] = max(latency[unit.task], end[u])
        energy_t[unit.task] += float(problem.energy_pj[u, assignment[u]])
    xfer_e, transfers = 0.0, 0
    for e, (p, c) in enumerate(problem.edges):
        if assignment[p] != assignment[c]:
            transfers += 1
            ej = problem.transfer_energy_pj(e)
            xfer_e += ej
            energy_t[problem.units[c].task] += ej
    makespan = max(end)
    total_bytes = float(sum(problem.dram_bytes[u, assignment[u]] for u in range(problem.n_units)))
    contention = Contention(
        pool_bw_bytes_per_cycle=problem.pool_bw_bytes_per_cycle,
        peak_bw_bytes_per_cycle=peak,
        mean_bw_bytes_per_cycle=total_bytes / makespan if makespan > 0 else 0.0,
        slowdown_cycles=slowdown,
        bw_wait_cycles=wait_bw,
    )
    timings = tuple(UnitTiming(u, int(assignment[u]), start[u], end[u], int(modes[u])) for u in range(problem.n_units))
    return SystemResult(
        makespan_cycles=makespan,
        energy_pj=float(sum(energy_t)),
        area_um2=float(np.sum(problem.area_um2)),
        task_latency_cycles=tuple(latency),
        task_energy_pj=tuple(energy_t),
        timings=timings,
        transfer_energy_pj=xfer_e,
        transfers=transfers,
        contention=contention,
        policy=policy,
    )


def evaluate_system(
    networks: Sequence[Network],
    system: System,
    assignment: Sequence[int] | None = None,
    costs: CostFn | None = None,
    *,
    policy: Policy | str = Policy.FAIR,
    fuse: bool = True,
) -> SystemResult:
    """One-call evaluation: the networks on ``system`` with a given unit assignment (default: every unit on
    the sub-accelerator where it is fastest), each sub-accelerator running its units in network order."""
    problem = build_problem(networks, system, costs or analytical_costs(), fuse=fuse)
    if assignment is None:
        masked = np.where(problem.allowed, problem.duration_cycles, np.iinfo(np.int64).max)
        assignment = [int(a) for a in masked.argmin(axis=1)]
    return simulate(problem, assignment, policy=policy)


__all__ = [
    "BW_SCALE",
    "BandwidthSharing",
    "Contention",
    "CostFn",
    "CostTable",
    "MappingProblem",
    "Policy",
    "ScheduleError",
    "SystemResult",
    "Unit",
    "UnitTiming",
    "analytical_costs",
    "build_problem",
    "cycle_costs",
    "default_orders",
    "evaluate_system",
    "layer_durations",
    "port_accelerators",
    "simulate",
    "synthetic_problem",
]


def random_problem(
    seed: int,
    n_tasks: int = 3,
    units_per_task: int = 20,
    n_accs: int = 3,
    *,
    skip_every: int = 4,
    bw_pressure: float = 0.0,
    link: Link | None = None,
) -> MappingProblem:
    """A seeded synthetic problem shaped like CNNs on heterogeneous sub-accelerators (tests, benchmarks).

    Each task is a chain with a skip edge every ``skip_every`` units; a unit's work falls along the
    network (as feature maps shrink) and each sub-accelerator is fast on a different phase (early,
    spatially large layers vs late, channel-heavy ones), within a factor of about 3.
    ``bw_pressure`` > 0 gives units DRAM demands of up to that fraction of the pool each.
    """
    rng = np.random.default_rng(seed)
    durations: list[np.ndarray] = []
    demand: list[np.ndarray] = []
    energy: list[np.ndarray] = []
    tasks: list[int] = []
    edges: list[tuple[int, int]] = []
    affinity = rng.uniform(0.0, 1.0, size=n_accs)  # which phase each accelerator prefers
    for t in range(n_tasks):
        base = len(tasks)
        scale = rng.uniform(0.5, 2.0)
        for i in range(units_per_task):
            phase = i / max(1, units_per_task - 1)
            work = scale * rng.lognormal(10.5, 0.5)
            eff = 1.0 / (1.0 + 2.0 * np.abs(phase - affinity) + rng.uniform(0, 0.3, size=n_accs))
            durations.append(np.round(work / eff).astype(np.int64))
            energy.append(work * (1.0 + rng.uniform(0, 0.5, size=n_accs)))
            demand.append(rng.uniform(0, bw_pressure, size=n_accs) * 64.0 if bw_pressure > 0 else np.zeros(n_accs))
            tasks.append(t)
            if i > 0:
                edges.append((base + i - 1, base + i))
            if skip_every and i >= skip_every and i % skip_every == 0:
                edges.append((base + i - skip_every, base + i))
    return synthetic_problem(
        np.array(durations),
        edges,
        tasks,
        energy_pj=np.array(energy),
        bw_demand=np.array(demand),
        pool_bw_bytes_per_cycle=64.0 if bw_pressure > 0 else 1e9,
        edge_bytes=[4096.0] * len(edges) if link is not None else None,
        link=link,
    )
