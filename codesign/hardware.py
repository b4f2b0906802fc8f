"""The best hardware for a tuple of networks, with exact pruning: NASAIC's hardware side, made fast.

The space (``HardwareSpace``) is NASAIC's: systems of 1..``max_accelerators`` sub-accelerators, each a
template (every shipped one by default) with a share of a global PE budget and of a DRAM bandwidth
budget (partitioned: each sub-accelerator owns its slice, its one DRAM port), plus, as in NAAS, the
array's shape (``aspect_ratios``: columns per row, 1 = near-square) and its scratchpad per operand.
Shares come from ``pe_splits`` / ``bw_splits`` (and their complements) and add up to the budget; a
bandwidth share is rounded down to a power of two bytes/cycle, a stream width the RTL generator builds
(a 16 B/cycle budget gives 4 and 8, not 12: the search picks only hardware that can be emitted).

``best_hardware`` answers one network tuple in three steps:

1. **Costs, once.** Every layer on every *distinct* sub-accelerator of the space (a few hundred),
   each at its own DRAM slice, in one ``evaluate_batch`` call: the same figures ``build_problem``
   uses, so the bounds below hold for the problems scheduled later.
2. **Bounds, over all systems at once** (numpy over systems x sub-accelerators x layers): area
   (exact), energy >= the sum over layers of the least energy on any of the system's
   sub-accelerators (transfers cost >= 0), and makespan >= the largest of every task's critical path
   with each layer at its fastest, the work of all layers at their fastest over the number of
   sub-accelerators, and for two sub-accelerators the fractional (LP) optimum of splitting the
   layers' work between them (ratio-sorted, exact for the relaxation). Per-task latency and energy
   limits are bounded by the task's own path and least energy. A system whose bounds break a limit
   cannot meet the spec; when that is every system, the tuple is *proven* infeasible (NASAIC's early
   pruning, made exact: it is never trained).
3. **Scheduling the best few.** Survivors are ranked by their normalized cost (the sum over the
   spec's limits of bound / limit: latency, energy and area weigh alike); the top
   ``finalists`` are built (``build_problem``) and list-scheduled (``solve_greedy``), and with
   ``exact`` the best one or two are handed to CP-SAT when the spec limits latency (or the spec is not met yet:
   then with the system's latency and energy as caps). Among the designs that meet the spec, the one
   with the least normalized cost wins (then lower energy, then lower area): the largest margin alone
   picked, for a binding energy limit, designs 1 % more frugal and 70 % slower. When none meets the
   spec, the closest one (least violation) comes back with ``feasible=False``.

Deterministic for a given seed: the greedy search stops on an iteration budget and CP-SAT runs one
worker on a deterministic-time budget; the wall-clock limit is only a safety net.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from coexplore.codesign.problem import TOLERANCE, Candidate, Spec, SpecCheck, TaskChoice
from coexplore.codesign.schedule import Schedule, SolveResult, solve_exact, solve_greedy
from coexplore.dataflows.spec import Accelerator, SpecError
from coexplore.dataflows.system import BandwidthSharing, Budget, Link, System, buildable_bw_bytes_per_cycle
from coexplore.models.ir import CoexploreError, Layer, Network
from coexplore.sim.system import CostTable, MappingProblem, SystemResult, build_problem, port_accelerators

GREEDY_ITERATIONS = 150  # list-scheduler decodes per finalist (deterministic budget; 1000 gains < 0.1 %)
EXACT_DESIGNS = 2  # finalists handed to CP-SAT
EXACT_DETERMINISTIC_S = 0.3  # CP-SAT deterministic-time budget per design (1.0 found nothing more)
MIN_WALL_S = 0.5  # the wall-clock safety net never cuts a solver shorter than this (keeps runs reproducible)


# ---- the space --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SubConfig:
    """One sub-accelerator option: template, array, scratchpad per operand, DRAM slice (its port)."""

    template: str
    rows: int
    cols: int
    sram_kb: float
    dram_bw_bytes_per_cycle: float

    def accelerator(self, name: str = "") -> Accelerator:
        from coexplore.dataflows.io import get_template

        return Accelerator(
            dataflow=get_template(self.template),
            rows=self.rows,
            cols=self.cols,
            ifmap_sram_kb=self.sram_kb,
            filter_sram_kb=self.sram_kb,
            ofmap_sram_kb=self.sram_kb,
            dram_bw_bytes_per_cycle=self.dram_bw_bytes_per_cycle,
            dram_ports="shared",
            name=name,
        )

    @property
    def label(self) -> str:
        """e.g. ``nvdla-32x32-64kb-16bpc``: valid in a system name (lower case, digits, ``-``, ``_``)."""
        text = f"{self.template}-{self.rows}x{self.cols}-{self.sram_kb:g}kb-{self.dram_bw_bytes_per_cycle:g}bpc"
        return text.lower().replace(".", "p")


def array_rows(pes: int, aspect: int) -> int:
    """Rows of a ``pes``-PE array at least ``aspect`` times wider than tall: the largest power of two that
    divides ``pes`` with rows^2 x aspect <= pes (aspect 1: the near-square ``array_shape``)."""
    rows = 1
    while pes % (rows * 2) == 0 and (rows * 2) ** 2 * aspect <= pes:
        rows *= 2
    return rows


@dataclass(frozen=True, slots=True)
class HardwareSpace:
    """NASAIC's hardware space plus NAAS's array shape and scratchpad size; see the module docstring."""

    pe_budget: int = 1024
    dram_bw_budget_bytes_per_cycle: float = 32.0
    templates: tuple[str, ...] = ()  # () = every shipped template
    max_accelerators: int = 2
    pe_splits: tuple[float, ...] = (0.25, 0.5, 0.75)
    bw_splits: tuple[float, ...] = (0.25, 0.5, 0.75)
    aspect_ratios: tuple[int, ...] = (1, 4)  # columns per row: 1 near-square, 4 wide
    sram_kb: tuple[float, ...] = (16.0, 64.0)  # scratchpad per operand
    link: Link = Link()

    def __post_init__(self) -> None:
        for name in ("templates", "pe_splits", "bw_splits", "aspect_ratios", "sram_kb"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # lists in, hashable value out
        if not isinstance(self.pe_budget, int) or self.pe_budget < 16:
            raise CoexploreError(f"hardware space: PE budget {self.pe_budget!r}: expected an integer >= 16")
        if not (math.isfinite(self.dram_bw_budget_bytes_per_cycle) and self.dram_bw_budget_bytes_per_cycle > 0):
            raise CoexploreError(
                f"hardware space: bandwidth budget {self.dram_bw_budget_bytes_per_cycle!r}: "
                f"expected a positive number of bytes/cycle"
            )
        if not isinstance(self.max_accelerators, int) or self.max_accelerators < 1:
            raise CoexploreError(f"hardware space: max_accelerators {self.max_accelerators!r}: expected >= 1")
        for name in ("pe_splits", "bw_splits"):
            for f in getattr(self, name):
                if not 0 < f < 1:
                    raise CoexploreError(f"hardware space: {name} {f!r}: expected fractions strictly between 0 and 1")
        for a in self.aspect_ratios:
            if not isinstance(a, int) or a < 1:
                raise CoexploreError(f"hardware space: aspect ratio {a!r}: expected an integer >= 1 (columns per row)")
        for kb in self.sram_kb:
            if not kb > 0:
                raise CoexploreError(f"hardware space: scratchpad {kb!r} kB: expected a positive size")
        if not self.aspect_ratios or not self.sram_kb:
            raise CoexploreError("hardware space: aspect_ratios and sram_kb need at least one option each")

    @property
    def template_names(self) -> tuple[str, ...]:
        if self.templates:
            return tuple(self.templates)
        from coexplore.dataflows.io import templates

        return tuple(sorted(templates()))

    def size(self) -> int:
        """How many distinct systems the space holds."""
        return len(_enumerate(self).members)

    def systems(self) -> Iterator[System]:
        """Every system of the space, in a fixed order (the order ``best_hardware`` indexes them by)."""
        for i in range(self.size()):
            yield self.system(i)

    def system(self, index: int) -> System:
        """The ``index``-th system of the space (sub-accelerators named template + position)."""
        space = _enumerate(self)
        picked = [int(c) for c in space.members[index] if c >= 0]
        configs = [space.configs[c] for c in picked]
        accs = tuple(
            replace(space.accelerators[c], name=f"{cfg.template}{i}") for i, (c, cfg) in enumerate(zip(picked, configs))
        )
        return System(
            name="_".join(c.label for c in configs),
            accelerators=accs,
            budget=Budget(dram_bw_bytes_per_cycle=self.dram_bw_budget_bytes_per_cycle, pes=self.pe_budget),
            sharing=BandwidthSharing.PARTITIONED,
            link=self.link,
        )


@dataclass(frozen=True, eq=False)
class _Enumerated:
    configs: tuple[SubConfig, ...]  # distinct sub-accelerators
    accelerators: tuple[Accelerator, ...]  # per config, unnamed
    members: np.ndarray  # (systems, max accelerators) config indices, -1 padded


def _shares(splits: Sequence[float], k: int) -> list[tuple[float, ...]]:
    """Ordered k-tuples of shares (each a split or its complement) that add up to 1."""
    if k == 1:
        return [(1.0,)]
    grid = sorted({round(f, 12) for f in splits} | {round(1 - f, 12) for f in splits})
    return [t for t in itertools.product(grid, repeat=k) if abs(sum(t) - 1.0) < 1e-9]


@lru_cache(maxsize=16)
def _enumerate(space: HardwareSpace) -> _Enumerated:
    index: dict[SubConfig, int] = {}
    seen: dict[tuple[int, ...], None] = {}
    names = space.template_names
    for k in range(1, space.max_accelerators + 1):
        for pe_t in _shares(space.pe_splits, k):
            pes = [max(16, int(f * space.pe_budget) // 16 * 16) for f in pe_t]
            if sum(pes) > space.pe_budget:
                continue
            for bw_t in _shares(space.bw_splits, k):
                options = []
                for p, b in zip(pes, bw_t):
                    bw = buildable_bw_bytes_per_cycle(b * space.dram_bw_budget_bytes_per_cycle)
                    opts: dict[Any, Any] = {}
                    for t in names:
                        for a in space.aspect_ratios:
                            rows = array_rows(p, a)
                            if p // rows > 4096:
                                continue
                            for kb in space.sram_kb:
                                cfg = SubConfig(t, rows, p // rows, float(kb), bw)
                                opts[cfg] = None
                    options.append(list(opts))
                for combo in itertools.product(*options):
                    key = tuple(sorted(index.setdefault(c, len(index)) for c in combo))
                    seen.setdefault(key, None)
    configs = tuple(index)
    members = np.full((len(seen), space.max_accelerators), -1, dtype=np.intp)
    for s, key in enumerate(seen):
        members[s, : len(key)] = key
    return _Enumerated(configs, tuple(c.accelerator() for c in configs), members)


# ---- result -----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class HardwareResult:
    """The chosen (or closest) design for a network tuple, its schedule and how it was found."""

    feasible: bool  # the scheduled design meets the spec
    system: System
    assignment: tuple[int, ...]  # unit -> sub-accelerator of ``system``
    schedule: Schedule
    problem: MappingProblem
    makespan_cycles: float
    task_latency_cycles: dict[str, float]
    energy_pj: float
    area_um2: float
    check: SpecCheck
    proven_infeasible: bool  # bounds show no design of the space meets the spec
    reason: str
    designs: int  # systems in the space
    designs_after_bounds: int  # systems the bounds could not rule out
    seconds: float
    task_energy_pj: dict[str, float] = field(default_factory=dict)
    makespan_bound_cycles: float = 0.0  # the bound of the returned system
    solver: str = ""  # list-greedy | cp-sat

    def candidate(self, archs: Sequence[TaskChoice]) -> Candidate:
        """This design as a ``Candidate`` of the joint search."""
        return Candidate(
            archs=tuple(archs),
            system=self.system,
            assignment=self.assignment,
            schedule=self.schedule,
            makespan_cycles=self.makespan_cycles,
            task_latency_cycles=tuple(self.task_latency_cycles.items()),
            energy_pj=self.energy_pj,
            area_um2=self.area_um2,
            check=self.check,
        )


# ---- costs and bounds -------------------------------------------------------------------------------
def _acc_key(acc: Accelerator) -> tuple:
    """What an accelerator's costs depend on (template by name: hashing a whole Dataflow is slow)."""
    return (
        acc.dataflow.name,
        acc.rows,
        acc.cols,
        acc.ifmap_sram_kb,
        acc.filter_sram_kb,
        acc.ofmap_sram_kb,
        acc.noc_bw_bytes_per_cycle,
        acc.dram_bw_bytes_per_cycle,
        acc.dram_ports,
        acc.input_bits,
        acc.weight_bits,
        acc.acc_bits,
        acc.clock_mhz,
        acc.tech_node_nm,
    )


class _Costs:
    """Every layer on a set of accelerators (analytical model, each at its own DRAM bandwidth; each
    distinct layer shape evaluated once), and a cost provider that serves ``build_problem`` from
    those rows (evaluating any accelerator it lacks)."""

    def __init__(self, layers: Sequence[Layer], accs: Sequence[Accelerator], profile: str) -> None:
        self.layers, self.profile = list(layers), profile
        shapes: dict[Layer, int] = {}
        self._col = np.array([shapes.setdefault(replace(l, name=""), len(shapes)) for l in self.layers], dtype=np.intp)
        self._unique = list(shapes)
        self._raw = self._evaluate(accs)
        self._row = {_acc_key(a): i for i, a in enumerate(accs)}
        latency, energy, _, self.area = self._raw
        self.cycles = np.where(np.isfinite(latency), np.ceil(latency), np.inf)
        self.energy = np.where(np.isfinite(energy), energy, np.inf)

    def _evaluate(self, accs: Sequence[Accelerator]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from coexplore.sim.analytical import evaluate_batch

        res = evaluate_batch(self._unique, list(accs), self.profile)
        cols = self._col
        return (
            np.asarray(res.latency_cycles, float)[:, cols],
            np.asarray(res.energy_pj, float)[:, cols],
            np.asarray(res.dram_bytes, float)[:, cols],
            np.asarray(res.area_um2, float),
        )

    def __call__(self, layers: Sequence[Layer], accs: Sequence[Accelerator]) -> CostTable:
        if len(layers) != len(self.layers):
            raise CoexploreError(f"cost cache holds {len(self.layers)} layers, asked about {len(layers)}")
        keys = [_acc_key(a) for a in accs]
        missing = {k: a for k, a in zip(keys, accs) if k not in self._row}
        if missing:
            new = self._evaluate(list(missing.values()))
            base = len(self._raw[3])
            merged = [np.concatenate([old, add]) for old, add in zip(self._raw, new)]
            self._raw = (merged[0], merged[1], merged[2], merged[3])
            for i, k in enumerate(missing):
                self._row[k] = base + i
        idx = np.array([self._row[k] for k in keys], dtype=np.intp)
        cyc, en, nbytes, area = self._raw
        return CostTable(cyc[idx], en[idx], nbytes[idx], area[idx], bandwidth_bound=True)


@dataclass(frozen=True, eq=False)
class SpaceBounds:
    """Per system: exact area, and lower bounds on makespan, energy, each task's latency and energy."""

    area_um2: np.ndarray  # (S,)
    makespan_cycles: np.ndarray  # (S,)
    energy_pj: np.ndarray  # (S,)
    task_latency_cycles: np.ndarray  # (S, T)
    task_energy_pj: np.ndarray  # (S, T)

    def ratios(self, spec: Spec, task_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """(S, limits) bound / limit, and the limit names (as ``Spec.check`` names them)."""
        cols, names = [], []
        s = spec.system
        for name, value, limit in (
            ("latency", self.makespan_cycles, s.latency_cycles),
            ("energy", self.energy_pj, s.energy_pj),
            ("area", self.area_um2, s.area_um2),
        ):
            if limit is not None:
                cols.append(value / limit)
                names.append(name)
        for task, limits in spec.tasks:
            t = list(task_names).index(task)
            for name, value, limit in (
                ("latency", self.task_latency_cycles[:, t], limits.latency_cycles),
                ("energy", self.task_energy_pj[:, t], limits.energy_pj),
            ):
                if limit is not None:
                    cols.append(value / limit)
                    names.append(f"{task}.{name}")
        n = len(self.area_um2)
        return (np.stack(cols, axis=1) if cols else np.zeros((n, 0))), names


def _edges(net: Network) -> tuple[tuple[int, int], ...]:
    if net.edges or len(net.layers) == 1:
        return net.edges
    return tuple((i, i + 1) for i in range(len(net.layers) - 1))


def _two_way_lp(d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """Per row, the least makespan of splitting the layers' work fractionally between two processors
    (layer i takes d0[i] on one, d1[i] on the other; inf = cannot run there): the LP relaxation of
    unrelated-machine scheduling, solved exactly by sorting layers by d0/d1 (fractional knapsack)."""
    inf0, inf1 = ~np.isfinite(d0), ~np.isfinite(d1)
    fixed0 = np.where(inf1 & ~inf0, d0, 0.0).sum(axis=1, keepdims=True)  # layers only the first can run
    fixed1 = np.where(inf0 & ~inf1, d1, 0.0).sum(axis=1, keepdims=True)
    flex = ~inf0 & ~inf1
    a = np.where(flex, d0, 0.0)
    b = np.where(flex, d1, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(a + b > 0, a / np.where(b > 0, b, 1e-300), 0.0)
    order = np.argsort(ratio, axis=1, kind="stable")
    a = np.take_along_axis(a, order, axis=1)
    b = np.take_along_axis(b, order, axis=1)
    before = np.cumsum(a, axis=1) - a  # work of the layers ahead of i, all on the first
    after = b[:, ::-1].cumsum(axis=1)[:, ::-1] - b  # work of the layers behind i, all on the second
    load0, load1 = fixed0 + before, fixed1 + after
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.clip(np.where(a + b > 0, (load1 + b - load0) / (a + b), 0.0), 0.0, 1.0)  # share of i on the first
    span = np.maximum(load0 + x * a, load1 + (1 - x) * b)
    return span.min(axis=1)


def _bounds(cycles: np.ndarray, energy: np.ndarray, area: np.ndarray, networks: Sequence[Network]) -> SpaceBounds:
    """Bounds of systems given as (S, K, L) cycles and energies (inf: no such sub-accelerator or cannot
    run) and (S,) areas; layers are the networks' concatenated in order."""
    n_s = cycles.shape[0]
    present = np.isfinite(cycles).any(axis=2) | np.isfinite(energy).any(axis=2)  # (S, K)
    n_acc = np.maximum(1, present.sum(axis=1))
    dmin = cycles.min(axis=1)  # (S, L)
    emin = energy.min(axis=1)
    paths, task_e = [], []
    offset = 0
    for net in networks:
        n = len(net.layers)
        preds: list[list[int]] = [[] for _ in range(n)]
        for p, c in _edges(net):
            preds[c].append(p)
        finish = np.empty((n_s, n))
        for j in range(n):
            start = np.max(finish[:, preds[j]], axis=1) if preds[j] else 0.0
            finish[:, j] = start + dmin[:, offset + j]
        paths.append(finish.max(axis=1))
        task_e.append(emin[:, offset : offset + n].sum(axis=1))
        offset += n
    path = np.stack(paths, axis=1)
    work = dmin.sum(axis=1) / n_acc
    two = present.sum(axis=1) == 2
    if two.any():  # the LP bound over the two sub-accelerators that are there
        cols = np.argsort(~present[two], axis=1, kind="stable")[:, :2]
        pair = np.take_along_axis(cycles[two], cols[:, :, None], axis=1)
        work[two] = np.maximum(work[two], _two_way_lp(pair[:, 0], pair[:, 1]))
    one = present.sum(axis=1) == 1
    work[one] = dmin[one].sum(axis=1)
    makespan = np.maximum(path.max(axis=1), work)
    return SpaceBounds(
        area_um2=area,
        makespan_cycles=makespan,
        energy_pj=emin.sum(axis=1),
        task_latency_cycles=path,
        task_energy_pj=np.stack(task_e, axis=1),
    )


def _space_costs(networks: Sequence[Network], space: HardwareSpace, profile: str) -> tuple[_Costs, SpaceBounds]:
    enum = _enumerate(space)
    costs = _Costs([l for net in networks for l in net.layers], enum.accelerators, profile)
    valid = enum.members >= 0
    idx = np.where(valid, enum.members, 0)
    cycles = np.where(valid[:, :, None], costs.cycles[idx], np.inf)
    energy = np.where(valid[:, :, None], costs.energy[idx], np.inf)
    area = np.where(valid, costs.area[idx], 0.0).sum(axis=1)
    return costs, _bounds(cycles, energy, area, networks)


def space_bounds(networks: Sequence[Network], space: HardwareSpace, profile: str = "rtl") -> SpaceBounds:
    """Area and lower bounds of every system of ``space`` (in ``space.systems()`` order) for ``networks``."""
    return _space_costs(networks, space, profile)[1]


# ---- scheduling a design ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Scheduled:
    index: int
    system: System
    problem: MappingProblem
    solved: SolveResult
    check: SpecCheck
    bound_cycles: float

    def key(self) -> tuple:
        """Smaller is better: met first, then the least normalized cost (or violation), energy, area."""
        c, r = self.check, self.solved.result
        cost = sum(v for _, v in c.ratios)
        return (not c.met, cost if c.met else c.violation, r.energy_pj, r.area_um2, self.index)


@contextmanager
def _deterministic_cpsat(seconds: float) -> Iterator[None]:
    """CP-SAT stops on deterministic time (reproducible), not only on the wall clock."""
    from coexplore.codesign import schedule

    saved = dict(schedule._EXTRA_PARAMS)
    schedule._EXTRA_PARAMS["max_deterministic_time"] = seconds
    try:
        yield
    finally:
        schedule._EXTRA_PARAMS.clear()
        schedule._EXTRA_PARAMS.update(saved)


def _check(spec: Spec, problem: MappingProblem, result: SystemResult) -> SpecCheck:
    names = problem.task_names
    return spec.check(
        makespan_cycles=result.makespan_cycles,
        energy_pj=result.energy_pj,
        area_um2=result.area_um2,
        task_latency_cycles=dict(zip(names, result.task_latency_cycles)),
        task_energy_pj=dict(zip(names, result.task_energy_pj)),
    )


def _schedule_greedy(
    index: int,
    system: System,
    networks: Sequence[Network],
    costs: _Costs,
    spec: Spec,
    bound_cycles: float,
    *,
    seed: int,
    time_limit_s: float,
    max_units_per_task: int | None,
) -> _Scheduled:
    problem = build_problem(networks, system, costs, max_units_per_task=max_units_per_task)
    solved = solve_greedy(
        problem,
        time_limit_s=max(time_limit_s, MIN_WALL_S),
        iterations=GREEDY_ITERATIONS,
        stall_iterations=GREEDY_ITERATIONS // 2,
        seed=seed,
    )
    return _Scheduled(index, system, problem, solved, _check(spec, problem, solved.result), bound_cycles)


def _latency_limited(check: SpecCheck) -> bool:
    """Whether the spec limits a latency (then a shorter schedule lowers the normalized cost)."""
    return any(name == "latency" or name.endswith(".latency") for name, _ in check.ratios)


def _improve_exact(s: _Scheduled, spec: Spec, *, seed: int, time_limit_s: float) -> _Scheduled:
    """CP-SAT on one design: the least makespan (when latency is the tightest limit), or any schedule
    under the system's latency and energy caps (when the greedy one breaks the spec)."""
    met = s.check.met
    if met and (not _latency_limited(s.check) or s.solved.objective_value <= s.solved.bound):
        return s  # scheduling cannot lower the cost, or the greedy makespan is already optimal
    if not met and dict(s.check.ratios).get("area", 0.0) > 1 + TOLERANCE:
        return s  # no schedule changes the area
    caps: dict[str, Any] = {}
    if not met:
        caps = {"latency_cap_cycles": spec.system.latency_cycles, "energy_cap_pj": spec.system.energy_pj}
    try:
        with _deterministic_cpsat(EXACT_DETERMINISTIC_S):
            solved = solve_exact(
                s.problem,
                time_limit_s=max(time_limit_s, MIN_WALL_S),
                workers=1,
                hint=s.solved.schedule,
                seed=seed,
                **caps,
            )
    except SpecError:  # caps proved unreachable, or no schedule found in time
        return s
    better = replace(s, solved=solved, check=_check(spec, s.problem, solved.result))
    return better if better.key() < s.key() else s


def _result(best: _Scheduled, *, proven: bool, reason: str, designs: int, survivors: int, t0: float) -> HardwareResult:
    r, p = best.solved.result, best.problem
    return HardwareResult(
        feasible=bool(best.check.met),
        system=best.system,
        assignment=tuple(best.solved.schedule.assignment),
        schedule=best.solved.schedule,
        problem=p,
        makespan_cycles=float(r.makespan_cycles),
        task_latency_cycles={n: float(v) for n, v in zip(p.task_names, r.task_latency_cycles)},
        energy_pj=float(r.energy_pj),
        area_um2=float(r.area_um2),
        check=best.check,
        proven_infeasible=proven,
        reason=reason,
        designs=designs,
        designs_after_bounds=survivors,
        seconds=time.perf_counter() - t0,
        task_energy_pj={n: float(v) for n, v in zip(p.task_names, r.task_energy_pj)},
        makespan_bound_cycles=float(best.bound_cycles),
        solver=best.solved.solver,
    )


_UNITS = {"latency": (1.0, "cycles"), "energy": (1e6, "uJ"), "area": (1e6, "mm2")}


def _fmt(name: str, value: float) -> str:
    scale, unit = _UNITS[name.rpartition(".")[2]]
    return f"{value / scale:.3g} {unit}"


def _infeasible_reason(
    ratios: np.ndarray, names: list[str], spec_limits: dict[str, float], runnable: np.ndarray, one: bool = False
) -> str:
    """Why the bounds rule out every design (or the one system when ``one``)."""
    if not runnable.any():
        return ("the system" if one else "no design") + " can run every layer (some layer has no finite cost)"
    alone = ratios[runnable].min(axis=0)
    broken = [k for k, v in enumerate(alone) if v > 1 + TOLERANCE]
    if broken:
        k = max(broken, key=lambda k: alone[k])
        limit = spec_limits[names[k]]
        head = f"the system cannot meet {names[k]}: its" if one else f"no design meets {names[k]}: best"
        return f"{head} lower bound {_fmt(names[k], alone[k] * limit)} > {_fmt(names[k], limit)}"
    worst = ratios[runnable].max(axis=1)
    return (
        f"{'the system cannot meet' if one else 'no design meets'} {', '.join(names)} together: the "
        f"{'' if one else 'closest '}bounds exceed the tightest limit by {100 * (worst.min() - 1):.3g} %"
    )


def _limit_values(spec: Spec) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, limit in (
        ("latency", spec.system.latency_cycles),
        ("energy", spec.system.energy_pj),
        ("area", spec.system.area_um2),
    ):
        if limit is not None:
            out[name] = limit
    for task, limits in spec.tasks:
        for name, limit in (("latency", limits.latency_cycles), ("energy", limits.energy_pj)):
            if limit is not None:
                out[f"{task}.{name}"] = limit
    return out


def _named(networks: Sequence[Network], task_names: Sequence[str], spec: Spec) -> list[Network]:
    if len(task_names) != len(networks):
        raise CoexploreError(f"{len(task_names)} task names for {len(networks)} networks (expected one per network)")
    if len(set(task_names)) != len(task_names):
        raise CoexploreError(f"task names {', '.join(task_names)}: expected distinct names")
    for task in spec.task_names:
        if task not in task_names:
            raise CoexploreError(f"spec limits task {task!r}, which is not one of {', '.join(task_names)}")
    if not networks:
        raise CoexploreError("no networks given (expected one network per task)")
    return [replace(net, name=name) for net, name in zip(networks, task_names)]


# ---- the entry points -------------------------------------------------------------------------------
def best_hardware(
    networks: Sequence[Network],
    spec: Spec,
    space: HardwareSpace,
    *,
    task_names: Sequence[str],
    finalists: int = 4,
    exact: bool = True,
    time_limit_s: float = 2.0,
    seed: int = 0,
    profile: str = "rtl",
    max_units_per_task: int | None = None,
) -> HardwareResult:
    """The design of ``space`` with the least normalized cost that meets the spec for ``networks`` (one per
    task); see the
    module docstring. ``time_limit_s`` is a wall-clock safety net for the scheduling."""
    t0 = time.perf_counter()
    nets = _named(networks, task_names, spec)
    if finalists < 1:
        raise CoexploreError(f"finalists={finalists}: expected at least 1")
    costs, bounds = _space_costs(nets, space, profile)
    ratios, names = bounds.ratios(spec, task_names)
    runnable = np.isfinite(bounds.makespan_cycles) & np.isfinite(bounds.energy_pj)
    worst = np.where(runnable, ratios.max(axis=1) if ratios.shape[1] else 0.0, np.inf)
    survivors = np.flatnonzero(worst <= 1 + TOLERANCE)
    n = len(bounds.area_um2)
    deadline = t0 + time_limit_s

    def schedule(i: int, share: float) -> _Scheduled:
        left = (deadline - time.perf_counter()) * share
        return _schedule_greedy(
            int(i),
            space.system(int(i)),
            nets,
            costs,
            spec,
            float(bounds.makespan_cycles[i]),
            seed=seed,
            time_limit_s=left,
            max_units_per_task=max_units_per_task,
        )

    if len(survivors) == 0:
        reason = _infeasible_reason(ratios, names, _limit_values(spec), runnable)
        closest = int(np.lexsort((np.arange(n), bounds.energy_pj, worst))[0])
        return _result(schedule(closest, 1.0), proven=True, reason=reason, designs=n, survivors=0, t0=t0)

    total = ratios.sum(axis=1) if ratios.shape[1] else np.zeros(n)
    order = np.lexsort(
        (
            survivors,
            bounds.area_um2[survivors],
            bounds.energy_pj[survivors],
            bounds.makespan_cycles[survivors],
            total[survivors],
        )
    )
    chosen = survivors[order[:finalists]]
    done = [schedule(i, 1.0 / (len(chosen) - k + (EXACT_DESIGNS if exact else 0))) for k, i in enumerate(chosen)]
    done.sort(key=_Scheduled.key)
    if exact:
        for k in range(min(EXACT_DESIGNS, len(done))):
            left = (deadline - time.perf_counter()) / (min(EXACT_DESIGNS, len(done)) - k)
            done[k] = _improve_exact(done[k], spec, seed=seed, time_limit_s=left)
        done.sort(key=_Scheduled.key)
    best = done[0]
    if best.check.met:
        reason = f"meets the spec with margin {best.check.margin:.3g}" + (
            f" ({best.check.binding} binds)" if best.check.binding else ""
        )
    else:
        reason = (
            f"no scheduled design meets the spec ({len(survivors)} of {n} not ruled out by bounds; "
            f"closest exceeds {best.check.binding} by {100 * best.check.violation:.3g} %)"
        )
    return _result(best, proven=False, reason=reason, designs=n, survivors=len(survivors), t0=t0)


def evaluate_on_system(
    networks: Sequence[Network],
    system: System,
    spec: Spec,
    *,
    task_names: Sequence[str],
    seed: int = 0,
    exact: bool = False,
    time_limit_s: float = 2.0,
    profile: str = "rtl",
    max_units_per_task: int | None = None,
) -> HardwareResult:
    """The networks on one given system (hardware fixed first): scheduled, checked against the spec,
    with ``proven_infeasible`` when the same bounds as ``best_hardware`` already rule it out."""
    t0 = time.perf_counter()
    nets = _named(networks, task_names, spec)
    layers = [l for net in nets for l in net.layers]
    accs = port_accelerators(system)
    costs = _Costs(layers, accs, profile)
    bounds = _bounds(costs.cycles[None], costs.energy[None], np.array([costs.area.sum()]), nets)
    ratios, names = bounds.ratios(spec, task_names)
    runnable = np.isfinite(bounds.makespan_cycles) & np.isfinite(bounds.energy_pj)
    proven = bool(not runnable[0] or (ratios.shape[1] and ratios[0].max() > 1 + TOLERANCE))
    s = _schedule_greedy(
        0,
        system,
        nets,
        costs,
        spec,
        float(bounds.makespan_cycles[0]),
        seed=seed,
        time_limit_s=time_limit_s,
        max_units_per_task=max_units_per_task,
    )
    if exact:
        s = _improve_exact(s, spec, seed=seed, time_limit_s=time_limit_s)
    if proven:
        reason = _infeasible_reason(ratios, names, _limit_values(spec), runnable, one=True)
    elif s.check.met:
        reason = f"meets the spec with margin {s.check.margin:.3g}"
    else:
        reason = f"the schedule exceeds {s.check.binding} by {100 * s.check.violation:.3g} %"
    return _result(s, proven=proven, reason=reason, designs=1, survivors=0 if proven else 1, t0=t0)


__all__ = [
    "HardwareResult",
    "HardwareSpace",
    "SpaceBounds",
    "SubConfig",
    "array_rows",
    "best_hardware",
    "evaluate_on_system",
    "space_bounds",
]
