"""Mapping and scheduling of several networks' units on a system: exact (OR-Tools CP-SAT) and greedy.

Both solve the same model, the ``reserved`` policy of ``coexplore.sim.system``: each unit goes to one
sub-accelerator (duration and bandwidth draw depend on which), sub-accelerators run one unit at a
time, a unit starts after its producers end (plus a link transfer when they ran elsewhere), and the
units running at any time draw at most the DRAM pool. Objective: the makespan, or the weighted sum
of the tasks' completion times. Every schedule returned is replayed by ``simulate`` and its figures
come from that replay.

* ``solve_exact``: CP-SAT with one optional fixed-size interval per (unit, sub-accelerator) sharing
  the unit's start variable, ``NoOverlap`` per sub-accelerator, a ``Cumulative`` on the DRAM pool when
  it can run short, precedences with transfer delays enforced per pair of sub-accelerators, and
  redundant load bounds (makespan >= each sub-accelerator's busy time, all DRAM bytes / pool) that
  tighten the relaxation. When the pool can run short, the problem without it is solved first (30 % of
  the time): its optimum bounds the full problem and enters it as makespan >= bound (CP-SAT's own
  bound through the pool's cumulative is weak). The greedy schedule is the hint and the horizon.
  Status and gap come from the solver (``ObjectiveValue``, and the larger of ``BestObjectiveBound``
  and the relaxation's bound). On a time limit the best schedule found returns with its gap; if
  CP-SAT found none, the greedy schedule returns with the bound.
  (Measured on this project: HiGHS left a 43 % gap after 180 s on such a model, CP-SAT proved it.)
* ``solve_greedy``: Herald-like list scheduling: units by upward rank (longest remaining path), each
  placed where it finishes earliest (insertion into idle gaps, bandwidth checked), then a seeded
  search over perturbed priorities and single-unit reassignments keeps the best.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Sequence

import numpy as np

from coexplore.dataflows.spec import SpecError
from coexplore.models.ir import CoexploreError
from coexplore.sim.system import MappingProblem, Policy, SystemResult, simulate


class Objective(str, Enum):
    MAKESPAN = "makespan"
    WEIGHTED = "weighted"  # sum of task weight x task completion time


@dataclass(frozen=True, slots=True)
class Schedule:
    assignment: tuple[int, ...]  # unit -> sub-accelerator
    start_cycles: tuple[int, ...]  # unit -> planned start
    modes: tuple[int, ...] = ()  # unit -> bandwidth mode (empty: all full speed)


@dataclass(frozen=True, eq=False)
class SolveResult:
    schedule: Schedule
    result: SystemResult  # the replay of the schedule (reserved policy)
    objective: Objective
    objective_value: float
    bound: float  # proven lower bound on the objective (0 when none is known)
    gap: float | None  # (value - bound) / value; None when no bound is known
    status: str  # optimal | feasible | heuristic
    solver: str
    seconds: float

    def solver_json(self) -> dict:
        return {"name": self.solver, "status": self.status, "seconds": round(self.seconds, 3),
                "gap": None if self.gap is None else round(self.gap, 6), "objective": self.objective.value,
                "objective_value": self.objective_value, "bound": self.bound}


def objective_value(problem: MappingProblem, result: SystemResult, objective: Objective) -> float:
    if objective is Objective.MAKESPAN:
        return float(result.makespan_cycles)
    return result.weighted_latency(problem.task_weights)


def replay(problem: MappingProblem, schedule: Schedule) -> SystemResult:
    """The schedule run by the system model under the reserved policy (it must reproduce the plan)."""
    return simulate(problem, schedule.assignment, policy=Policy.RESERVED, not_before=schedule.start_cycles,
                    modes=schedule.modes or None)


# ---- lower bounds and spec checks ------------------------------------------------------------------
def _min_durations(problem: MappingProblem) -> np.ndarray:
    return np.where(problem.allowed, problem.duration_cycles, np.iinfo(np.int64).max).min(axis=1)


def critical_paths(problem: MappingProblem) -> list[int]:
    """Per task, its longest dependency path with every unit at its fastest (transfers free)."""
    d = _min_durations(problem)
    finish = [0] * problem.n_units
    preds = problem.predecessors()
    for u in range(problem.n_units):  # units are topological: edges go forward
        start = max((finish[problem.edges[e][0]] for e in preds[u]), default=0)
        finish[u] = start + int(d[u])
    out = [0] * len(problem.task_names)
    for u, unit in enumerate(problem.units):
        out[unit.task] = max(out[unit.task], finish[u])
    return out


def check_caps(problem: MappingProblem, latency_cap_cycles: float | None, energy_cap_pj: float | None) -> None:
    """Raise ``SpecError`` naming the cap when a simple bound already shows it cannot be met."""
    if energy_cap_pj is not None:
        least = float(np.where(problem.allowed, problem.energy_pj, np.inf).min(axis=1).sum())
        if least > energy_cap_pj:
            raise SpecError(f"energy cap {energy_cap_pj:.4g} pJ cannot be met: the least-energy mapping needs "
                            f"{least:.4g} pJ")
    if latency_cap_cycles is not None:
        paths = critical_paths(problem)
        t = int(np.argmax(paths))
        if paths[t] > latency_cap_cycles:
            raise SpecError(f"latency cap {latency_cap_cycles:.0f} cycles cannot be met: task "
                            f"{problem.task_names[t]!r} alone needs {paths[t]} cycles on its fastest mapping")
        work = float(_min_durations(problem).sum()) / problem.n_accs
        if work > latency_cap_cycles:
            raise SpecError(f"latency cap {latency_cap_cycles:.0f} cycles cannot be met: the work needs "
                            f"{work:.0f} cycles even spread evenly over {problem.n_accs} sub-accelerators")


def _check_result_caps(problem: MappingProblem, result: SystemResult, latency_cap_cycles: float | None,
                       energy_cap_pj: float | None, who: str) -> None:
    if latency_cap_cycles is not None and result.makespan_cycles > latency_cap_cycles:
        raise SpecError(f"latency cap {latency_cap_cycles:.0f} cycles not met: the {who} schedule takes "
                        f"{result.makespan_cycles:.0f} cycles")
    if energy_cap_pj is not None and result.energy_pj > energy_cap_pj * (1 + 1e-9):
        raise SpecError(f"energy cap {energy_cap_pj:.4g} pJ not met: the {who} schedule needs "
                        f"{result.energy_pj:.4g} pJ")


# ---- greedy (Herald-like list scheduling) -----------------------------------------------------------
class _Profile:
    """Step function of DRAM bandwidth in use: usage[i] holds on [times[i], times[i + 1])."""

    def __init__(self) -> None:
        self.times = [0]
        self.usage = [0]

    def _split(self, t: int) -> int:
        i = bisect.bisect_right(self.times, t) - 1
        if self.times[i] != t:
            self.times.insert(i + 1, t)
            self.usage.insert(i + 1, self.usage[i])
            i += 1
        return i

    def add(self, s: int, e: int, q: int) -> None:
        i, j = self._split(s), self._split(e)
        for k in range(i, j):
            self.usage[k] += q

    def first_conflict(self, s: int, e: int, q: int, pool: int) -> int | None:
        """End of the first segment in [s, e) where q more would exceed the pool, or None."""
        times, usage = self.times, self.usage
        i = bisect.bisect_right(times, s) - 1
        n = len(times)
        while i < n and times[i] < e:
            if usage[i] + q > pool:
                return times[i + 1] if i + 1 < n else None
            i += 1
        return None


class _Builder:
    """Serial schedule generation: units by priority, each placed at its earliest finish (insertion into
    idle gaps, DRAM pool checked), over every allowed sub-accelerator and bandwidth mode."""

    def __init__(self, problem: MappingProblem) -> None:
        p = problem
        self.p = p
        self.preds = p.predecessors()
        self.succs = p.successors()
        self.pred_info = [[(p.edges[e][0], p.transfer_cycles(e)) for e in self.preds[u]] for u in range(p.n_units)]
        self.succ_units = [[p.edges[e][1] for e in self.succs[u]] for u in range(p.n_units)]
        self.pool = p.pool_bw_scaled
        self.bw = p.bandwidth_binds
        self.options = [
            [(a, m, int(p.mode_duration_cycles[m, u, a]), int(p.mode_bw_demand[m, u, a]))
             for a in range(p.n_accs) for m in range(p.n_modes) if p.mode_allowed(m, u, a)]
            for u in range(p.n_units)
        ]

    def run(self, priority: Sequence[float], fixed: Sequence[int] | None = None, etf: float | None = None
            ) -> tuple[list[int], list[int], list[int], list[int]]:
        """Decode a priority list. ``etf=None``: serial, the ready unit of highest priority goes next.
        ``etf=beta``: the ready unit that can start earliest goes next (start - beta * priority), which
        interleaves the tasks in time instead of scheduling one task's whole chain first."""
        p = self.p
        n = p.n_units
        busy: list[list[tuple[int, int]]] = [[] for _ in range(p.n_accs)]
        prof = _Profile()
        assign, mode, start, end = [-1] * n, [0] * n, [0] * n, [0] * n
        missing = [len(x) for x in self.preds]
        ready = [u for u in range(n) if missing[u] == 0]

        def place(u: int) -> tuple[int, int, int, int, int, int]:
            best: tuple[int, int, int, int, int, int] | None = None  # (finish, demand, a, m, s, d)
            for a, m, d, q in self.options[u]:
                if fixed is not None and a != fixed[u]:
                    continue
                est = 0
                for qu, tr in self.pred_info[u]:
                    est = max(est, end[qu] + (tr if assign[qu] != a else 0))
                s = self._earliest(busy[a], prof, est, d, q)
                key = (s + d, q, a, m, s, d)
                if best is None or key < best:
                    best = key
            assert best is not None
            return best

        for _ in range(n):
            if etf is None:
                u = max(ready, key=lambda v: (priority[v], -v))
                spot = place(u)
            else:
                u, spot = -1, None
                for v in ready:
                    cand = place(v)
                    if spot is None or (cand[4] - etf * priority[v], v) < (spot[4] - etf * priority[u], u):
                        u, spot = v, cand
            ready.remove(u)
            _, q, a, m, s, d = spot  # type: ignore[misc]
            assign[u], mode[u], start[u], end[u] = a, m, s, s + d
            bisect.insort(busy[a], (s, s + d))
            if self.bw and q > 0:
                prof.add(s, s + d, q)
            for c in self.succ_units[u]:
                missing[c] -= 1
                if missing[c] == 0:
                    ready.append(c)
        return assign, mode, start, end

    def _earliest(self, busy: list[tuple[int, int]], prof: _Profile, est: int, d: int, q: int) -> int:
        t = est
        while True:
            moved = False
            i = bisect.bisect_left(busy, (t, -1))
            if i > 0 and busy[i - 1][1] > t:
                t, moved = busy[i - 1][1], True
            else:
                while i < len(busy) and busy[i][0] < t + d:
                    if busy[i][1] > t:
                        t, moved = busy[i][1], True
                        break
                    i += 1
            if moved:
                continue
            if self.bw and q > 0:
                nxt = prof.first_conflict(t, t + d, q, self.pool)
                if nxt is not None:
                    t = nxt
                    continue
            return t


def _upward_rank(problem: MappingProblem, assign: Sequence[int] | None = None) -> list[float]:
    """Longest path from each unit to its task's end (HEFT's upward rank): with the durations of
    ``assign`` when given, else each unit at its fastest (a mean would let one very slow option,
    such as a depthwise layer on a weight-stationary array, dominate)."""
    if assign is None:
        d = np.where(problem.allowed, problem.duration_cycles, np.iinfo(np.int64).max).min(axis=1)
    else:
        d = problem.duration_cycles[np.arange(problem.n_units), np.asarray(assign)]
    succs = problem.successors()
    rank = [0.0] * problem.n_units
    for u in reversed(range(problem.n_units)):
        tail = 0.0
        for e in succs[u]:
            c = problem.edges[e][1]
            cross = assign is None or assign[c] != assign[u]
            tail = max(tail, (problem.transfer_cycles(e) if cross and assign is not None else 0) + rank[c])
        rank[u] = float(d[u]) + tail
    return rank


def _score(problem: MappingProblem, sol: tuple, objective: Objective) -> tuple[float, float]:
    """(objective, tie-break) of a decoded schedule; the tie-break steers the search off plateaus."""
    end = sol[3]
    done = [0] * len(problem.task_names)
    for u, unit in enumerate(problem.units):
        done[unit.task] = max(done[unit.task], end[u])
    if objective is Objective.MAKESPAN:
        return float(max(done)), float(sum(done))
    return float(sum(w * c for w, c in zip(problem.task_weights, done))), float(max(done))


def _surrogate(problem: MappingProblem, assign: Sequence[int], preds: list[list[tuple[int, int]]]) -> tuple:
    """Lower bound of an assignment, as a sorted vector: every sub-accelerator's load and every task's
    longest path (with transfers where producer and consumer are apart), largest first. Minimizing it
    lexicographically balances the bottleneck first and breaks its plateaus by the next largest."""
    d = problem.duration_cycles
    loads = [0] * problem.n_accs
    finish = [0] * problem.n_units
    paths = [0] * len(problem.task_names)
    for u in range(problem.n_units):
        a = assign[u]
        loads[a] += int(d[u, a])
        s = 0
        for q, tr in preds[u]:
            s = max(s, finish[q] + (tr if assign[q] != a else 0))
        finish[u] = s + int(d[u, a])
        t = problem.units[u].task
        paths[t] = max(paths[t], finish[u])
    return tuple(sorted(loads + paths, reverse=True))


def _balance(problem: MappingProblem, assign: list[int], preds: list[list[tuple[int, int]]],
             rng: np.random.Generator, moves_left: list[int]) -> tuple[tuple, list[int]]:
    """Steepest descent on the surrogate over single-unit moves."""
    key = _surrogate(problem, assign, preds)
    while moves_left[0] > 0:
        best = None
        for u in rng.permutation(problem.n_units):
            old = assign[u]
            for a in range(problem.n_accs):
                if a == old or not problem.allowed[u, a]:
                    continue
                assign[u] = a
                k = _surrogate(problem, assign, preds)
                moves_left[0] -= 1
                if k < key and (best is None or k < best[0]):
                    best = (k, int(u), a)
            assign[u] = old
        if best is None:
            break
        key, u, a = best
        assign[u] = a
    return key, assign


def _chain_moves(problem: MappingProblem, sol: tuple, pred_info: list[list[tuple[int, int]]],
                 rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Moves on the critical chain of a decoded schedule, in random order: for each link where a unit
    waited for the unit before it on its sub-accelerator, swap the two (the job-shop N1 move); for
    each unit on the chain, move it to another sub-accelerator."""
    assign, _, start, end = sol
    n = problem.n_units
    by_acc: dict[int, list[int]] = {}
    for v in sorted(range(n), key=lambda v: start[v]):
        by_acc.setdefault(assign[v], []).append(v)
    prev_on_acc = {}
    for units in by_acc.values():
        for a, b in zip(units, units[1:]):
            prev_on_acc[b] = a
    u = max(range(n), key=lambda v: end[v])
    moves: list[tuple[str, int, int]] = []
    seen = set()
    while u not in seen:
        seen.add(u)
        for a in range(problem.n_accs):
            if a != assign[u] and problem.allowed[u, a]:
                moves.append(("move", u, a))
        v = prev_on_acc.get(u)
        if v is not None and end[v] == start[u]:
            moves.append(("swap", u, v))
            u = v
            continue
        parent = next((q for q, tr in pred_info[u] if end[q] + (tr if assign[q] != assign[u] else 0) == start[u]),
                      None)
        if parent is None:  # started at a release of the DRAM pool, or at 0
            blockers = [x for x in range(n) if end[x] == start[u] and x not in seen]
            if not blockers:
                break
            parent = blockers[0]
        u = parent
    order = rng.permutation(len(moves))
    return [moves[i] for i in order]


def solve_greedy(problem: MappingProblem, objective: Objective | str = Objective.MAKESPAN, *,
                 time_limit_s: float = 2.0, iterations: int = 20_000, stall_iterations: int = 4000,
                 grasp_share: float = 0.5, seed: int = 0,
                 latency_cap_cycles: float | None = None, energy_cap_pj: float | None = None) -> SolveResult:
    """Herald-like list scheduling with assignment balancing; see the module docstring.

    1. List scheduling: units by upward rank, each where it finishes earliest (insertion).
    2. Balancing: from that assignment (and from everything-at-its-fastest), steepest descent on a
       lower bound of the assignment (sub-accelerator loads and task paths, largest first), then list
       scheduling with the assignment fixed.
    3. Iterated local search on the decoded schedule: move one unit (late-ending first) or perturb
       priorities; keep what lowers (objective, surrogate).
    ``iterations`` counts decodes and surrogate evaluations; the search stops there, at ``time_limit_s``,
    after ``stall_iterations`` without a better objective, or when it meets the simple lower bound.
    """
    objective = Objective(objective)
    check_caps(problem, latency_cap_cycles, energy_cap_pj)
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    rng = np.random.default_rng(seed)
    b = _Builder(problem)
    rank = _upward_rank(problem)
    if objective is Objective.WEIGHTED:
        rank = [r * (1.0 + problem.task_weights[problem.units[u].task]) for u, r in enumerate(rank)]
    n, n_a = problem.n_units, problem.n_accs
    budget = [iterations]

    def out_of_time() -> bool:
        return budget[0] <= 0 or time.perf_counter() > deadline

    def decode(prio: Sequence[float], fixed: Sequence[int] | None, etf: float | None = None) -> tuple[tuple, tuple]:
        budget[0] -= 1
        sol = b.run(prio, fixed=fixed, etf=etf)
        return _score(problem, sol, objective) + _surrogate(problem, sol[0], b.pred_info), sol

    tasks = np.array([u.task for u in problem.units])
    n_t = len(problem.task_names)
    rank_arr = np.array(rank, dtype=float)
    floor = _simple_bound(problem, objective)
    # 1. list scheduling by rank: serial, and earliest-start-first
    best_key, best_sol = decode(rank, None)
    best_prio = list(rank)
    key, sol = decode(rank, None, 0.0)
    if key < best_key:
        best_key, best_sol = key, sol
    # 2. randomized list scheduling: each task's ranks scaled by a random factor (which task goes first
    #    where they compete: plain ranks always put the longest network's whole chain first), units jittered
    deadline_grasp = t0 + grasp_share * time_limit_s
    grasp_budget = budget[0] - int(grasp_share * iterations)
    while not out_of_time() and time.perf_counter() < deadline_grasp and budget[0] > grasp_budget \
            and best_key[0] > floor:
        factors = np.exp(rng.uniform(-1.6, 1.6, size=n_t))
        prio = list(rank_arr * factors[tasks] * rng.uniform(0.9, 1.1, size=n))
        key, sol = decode(prio, None)
        if key < best_key:
            best_key, best_sol, best_prio = key, sol, prio
    # 3. local search from the best: move a late unit to another sub-accelerator (rest of the assignment
    #    fixed), jitter priorities, or swap a unit ahead of the one before it on the critical chain
    movable = [u for u in range(n) if problem.allowed[u].sum() > 1]
    cur_key, cur_sol, cur_prio = best_key, best_sol, best_prio
    last_gain = budget[0]
    while not out_of_time() and best_key[0] > floor and last_gain - budget[0] < stall_iterations:
        assign = list(cur_sol[0])
        r = rng.random()
        if r < 0.45 and movable:
            late = np.array([cur_sol[3][u] for u in movable], dtype=float) + 1.0
            u = movable[int(rng.choice(len(movable), p=late / late.sum()))]
            assign[u] = int(rng.choice([a for a in range(n_a) if a != assign[u] and problem.allowed[u, a]]))
            prio = cur_prio
        elif r < 0.75:
            prio = list(np.array(cur_prio) * rng.uniform(0.9, 1.1, size=n))
        else:
            moves = [m for m in _chain_moves(problem, cur_sol, b.pred_info, rng) if m[0] == "swap"]
            if not moves:
                continue
            _, u, v = moves[0]
            prio = [-float(x) for x in cur_sol[2]]
            prio[u] = prio[v] + 0.5
        key, sol = decode(prio, assign)
        if key <= cur_key:
            cur_key, cur_sol, cur_prio = key, sol, prio
            if key < best_key:
                if key[0] < best_key[0]:
                    last_gain = budget[0]
                best_key, best_sol, best_prio = key, sol, prio
        elif rng.random() < 0.01:
            cur_key, cur_sol, cur_prio = best_key, best_sol, best_prio
    assign, mode, start, _ = best_sol
    schedule = Schedule(tuple(assign), tuple(start), tuple(mode))
    result = replay(problem, schedule)
    value = objective_value(problem, result, objective)
    _check_result_caps(problem, result, latency_cap_cycles, energy_cap_pj, "greedy")
    bound = _simple_bound(problem, objective)
    return SolveResult(schedule=schedule, result=result, objective=objective, objective_value=value, bound=bound,
                       gap=(value - bound) / value if value > 0 else 0.0, status="heuristic",
                       solver="list-greedy", seconds=time.perf_counter() - t0)


def _simple_bound(problem: MappingProblem, objective: Objective) -> float:
    """A cheap valid lower bound: critical paths, and for the makespan the work spread evenly."""
    paths = critical_paths(problem)
    if objective is Objective.WEIGHTED:
        return float(sum(w * c for w, c in zip(problem.task_weights, paths)))
    work = float(_min_durations(problem).sum()) / problem.n_accs
    return float(max(max(paths), math.ceil(work)))


# ---- exact (CP-SAT) ---------------------------------------------------------------------------------
_EXTRA_PARAMS: dict = {}  # extra CP-SAT parameters (experiments, benchmarks)


def default_workers() -> int:
    """CP-SAT search workers: its portfolio needs several even on few cores (8 measured best here)."""
    return int(os.environ.get("COEXPLORE_CPSAT_WORKERS", "8"))


def _identical_accs(problem: MappingProblem) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b adjacent in a class, of sub-accelerators no schedule can tell apart."""
    pairs = []
    for b in range(1, problem.n_accs):
        a = b - 1
        if (np.array_equal(problem.duration_cycles[:, a], problem.duration_cycles[:, b])
                and np.array_equal(problem.bw_demand[:, a], problem.bw_demand[:, b])
                and np.array_equal(problem.energy_pj[:, a], problem.energy_pj[:, b])
                and np.array_equal(problem.allowed[:, a], problem.allowed[:, b])):
            pairs.append((a, b))
    return pairs


def _canonical(assign: Sequence[int], pairs: list[tuple[int, int]]) -> list[int]:
    """Relabel identical sub-accelerators so the first unit on ``a`` comes before the first on ``b``."""
    out = list(assign)
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            first_a = next((u for u, x in enumerate(out) if x == a), math.inf)
            first_b = next((u for u, x in enumerate(out) if x == b), math.inf)
            if first_b < first_a:
                out = [b if x == a else a if x == b else x for x in out]
                changed = True
    return out


def _cp_model():
    try:
        from ortools.sat.python import cp_model
    except ImportError as exc:  # pragma: no cover - depends on what the process loaded before
        raise RuntimeError(
            "OR-Tools CP-SAT cannot load in this process, most likely because highspy was loaded first "
            "(both ship a libhighs.so.1 of different versions); run HiGHS in a subprocess, as "
            f"coexplore.codesign.milp does ({exc})") from None
    return cp_model


def solve_exact(problem: MappingProblem, objective: Objective | str = Objective.MAKESPAN, *,
                time_limit_s: float = 30.0, gap_limit: float = 0.0, workers: int | None = None,
                hint: Schedule | None = None, latency_cap_cycles: float | None = None,
                energy_cap_pj: float | None = None, fixed_assignment: Sequence[int] | None = None,
                seed: int = 0, log: bool = False, relax_share: float = 0.3) -> SolveResult:
    """Optimal mapping and schedule by CP-SAT within ``time_limit_s``; see the module docstring.

    ``gap_limit`` stops the search once the proven relative gap is at most that (0: prove optimum).
    When the DRAM pool can run short, ``relax_share`` of the time first goes to the problem without it,
    whose optimum is a lower bound (CP-SAT's own bound with the pool's cumulative is weak).
    """
    cp_model = _cp_model()
    objective = Objective(objective)
    t0 = time.perf_counter()
    check_caps(problem, latency_cap_cycles, energy_cap_pj)
    p = problem
    n, n_a = p.n_units, p.n_accs
    if hint is None and fixed_assignment is None:
        hint = solve_greedy(p, objective, time_limit_s=min(1.0, time_limit_s / 20), seed=seed).schedule
    hint_ok = hint is not None and latency_cap_cycles is None and energy_cap_pj is None
    relaxed_bound = 0.0
    if p.bandwidth_binds and relax_share > 0:
        # The problem without the DRAM pool (every unit at full speed) is a relaxation: any schedule of
        # the full problem, its units shortened to full speed, is one of it. CP-SAT proves that one far
        # more easily, and its optimum (or bound) bounds the full problem from below.
        relaxed = replace(p, mode_duration_cycles=p.mode_duration_cycles[:1],
                          mode_bw_demand=np.zeros_like(p.mode_bw_demand[:1]), bw_levels=(1.0,))
        relaxed_hint = None if hint is None else Schedule(hint.assignment, hint.start_cycles)
        r = solve_exact(relaxed, objective, time_limit_s=relax_share * time_limit_s, workers=workers,
                        hint=relaxed_hint, latency_cap_cycles=latency_cap_cycles, energy_cap_pj=energy_cap_pj,
                        fixed_assignment=fixed_assignment, seed=seed, relax_share=0.0)
        relaxed_bound = r.bound
    pairs = _identical_accs(p) if fixed_assignment is None else []
    if hint is not None and pairs:
        hint = Schedule(tuple(_canonical(hint.assignment, pairs)), hint.start_cycles, hint.modes)

    xfer = [p.transfer_cycles(e) for e in range(len(p.edges))]
    dmax = np.where(p.allowed[None], p.mode_duration_cycles, 0).max(axis=(0, 2))
    horizon = int(dmax.sum() + sum(xfer)) + 1
    if hint_ok and objective is Objective.MAKESPAN:
        horizon = min(horizon, int(replay(p, hint).makespan_cycles))
    if latency_cap_cycles is not None:
        horizon = min(horizon, int(latency_cap_cycles))

    m = cp_model.CpModel()
    start = [m.NewIntVar(0, horizon, f"s{u}") for u in range(n)]
    end = [m.NewIntVar(0, horizon, f"e{u}") for u in range(n)]
    x: dict[tuple[int, int], object] = {}  # unit on accelerator
    y: dict[tuple[int, int, int], object] = {}  # unit on accelerator in bandwidth mode
    per_acc: list[list] = [[] for _ in range(n_a)]
    bw_intervals, bw_demands, bw_energy = [], [], []
    for u in range(n):
        options = [int(fixed_assignment[u])] if fixed_assignment is not None else \
            [a for a in range(n_a) if p.allowed[u, a]]
        dur_terms = []
        for a in options:
            modes = [k for k in range(p.n_modes) if p.mode_allowed(k, u, a)]
            lits = []
            for k in modes:
                lit = m.NewBoolVar(f"y{u}_{a}_{k}")
                d = int(p.mode_duration_cycles[k, u, a])
                q = int(p.mode_bw_demand[k, u, a])
                iv = m.NewOptionalFixedSizeIntervalVar(start[u], d, lit, f"i{u}_{a}_{k}")
                per_acc[a].append((iv, lit, d))
                if q > 0:
                    bw_intervals.append(iv)
                    bw_demands.append(q)
                    bw_energy.append(q * d * lit)
                y[u, a, k] = lit
                lits.append(lit)
                dur_terms.append(d * lit)
            if len(lits) == 1:
                x[u, a] = lits[0]
            else:
                x[u, a] = m.NewBoolVar(f"x{u}_{a}")
                m.Add(x[u, a] == sum(lits))
        m.AddExactlyOne(x[u, a] for a in options)
        m.Add(end[u] == start[u] + sum(dur_terms))
    for a in range(n_a):
        m.AddNoOverlap([iv for iv, _, _ in per_acc[a]])
    makespan = m.NewIntVar(0, horizon, "makespan")
    if p.bandwidth_binds and bw_intervals:
        m.AddCumulative(bw_intervals, bw_demands, p.pool_bw_scaled)
        m.Add(sum(bw_energy) <= p.pool_bw_scaled * makespan)  # redundant: all bytes / pool <= makespan
    for e, (q, c) in enumerate(p.edges):
        m.Add(start[c] >= end[q])
        if xfer[e] > 0:  # linear form: x[q,a] - x[c,a] is 1 exactly when q runs on a and c elsewhere
            for a in range(n_a):
                if (q, a) in x:
                    m.Add(start[c] >= end[q] + xfer[e] * (x[q, a] - x.get((c, a), 0)))
    for a, b in pairs:  # identical sub-accelerators: b takes a unit only after a has a lower-indexed one
        for u in range(n):
            if (u, b) in x:
                earlier = [x[v, a] for v in range(u) if (v, a) in x]
                m.Add(x[u, b] <= sum(earlier)) if earlier else m.Add(x[u, b] == 0)
    n_t = len(p.task_names)
    done = [m.NewIntVar(0, horizon, f"c{t}") for t in range(n_t)]
    succs = p.successors()
    for u, unit in enumerate(p.units):
        if not succs[u]:
            m.Add(done[unit.task] >= end[u])
    paths = critical_paths(p)
    for t in range(n_t):
        m.Add(makespan >= done[t])
        m.Add(done[t] >= paths[t])
    if relaxed_bound > 0 and objective is Objective.MAKESPAN:
        m.Add(makespan >= int(math.ceil(relaxed_bound - 1e-6)))
    for a in range(n_a):  # redundant: each sub-accelerator's busy time <= makespan
        m.Add(sum(d * lit for _, lit, d in per_acc[a]) <= makespan)
    if energy_cap_pj is not None:
        scale = 1e6 / max(energy_cap_pj, 1e-30)  # energies in millionths of the cap, rounded up (safe side)
        terms = [math.ceil(float(p.energy_pj[u, a]) * scale - 1e-9) * x[u, a] for (u, a) in x]
        for e, (q, c) in enumerate(p.edges):
            ej = p.transfer_energy_pj(e)
            if ej > 0:
                diff = m.NewBoolVar(f"d{e}")
                for a in range(n_a):
                    if (q, a) in x:
                        m.Add(diff >= x[q, a] - x.get((c, a), 0))
                terms.append(math.ceil(ej * scale - 1e-9) * diff)
        m.Add(sum(terms) <= 1_000_000)
    if objective is Objective.MAKESPAN:
        m.Minimize(makespan)
        obj_scale = 1.0
    else:
        w = [float(v) for v in p.task_weights]
        obj_scale = 1000.0 / max(max(w), 1e-30) if any(v != round(v) for v in w) else 1.0
        m.Minimize(sum(int(round(v * obj_scale)) * done[t] for t, v in enumerate(w)))
    if hint is not None:
        hint_modes = hint.modes or (0,) * n
        for (u, a, k), lit in y.items():
            m.AddHint(lit, hint.assignment[u] == a and hint_modes[u] == k)
        for (u, a), lit in x.items():
            if all(lit is not y.get((u, a, k)) for k in range(p.n_modes)):
                m.AddHint(lit, hint.assignment[u] == a)
        for u in range(n):
            m.AddHint(start[u], int(hint.start_cycles[u]))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit_s - (time.perf_counter() - t0))
    solver.parameters.num_workers = workers or default_workers()
    solver.parameters.relative_gap_limit = gap_limit
    solver.parameters.random_seed = seed
    solver.parameters.log_search_progress = log
    for key, value in _EXTRA_PARAMS.items():
        setattr(solver.parameters, key, value)
    status = solver.Solve(m)
    seconds = time.perf_counter() - t0
    bound_raw = solver.BestObjectiveBound()
    if status == cp_model.INFEASIBLE:
        caps = []
        if latency_cap_cycles is not None:
            caps.append(f"latency cap {latency_cap_cycles:.0f} cycles")
        if energy_cap_pj is not None:
            caps.append(f"energy cap {energy_cap_pj:.4g} pJ")
        what = " and ".join(caps) if caps else "the problem"
        raise SpecError(f"{what} cannot be met (CP-SAT proved no schedule exists)")
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = [next((a, k) for (v, a, k), lit in y.items() if v == u and solver.Value(lit)) for u in range(n)]
        schedule = Schedule(tuple(a for a, _ in chosen), tuple(int(solver.Value(s)) for s in start),
                            tuple(k for _, k in chosen))
        label = "optimal" if status == cp_model.OPTIMAL else "feasible"
    else:
        if not hint_ok:
            raise SpecError(f"no schedule found within the time limit of {time_limit_s:g} s "
                            f"(not proved infeasible; raise --time-limit)")
        schedule, label = hint, "heuristic"
    result = replay(p, schedule)
    value = objective_value(p, result, objective)
    bound = max(0.0, float(bound_raw) / obj_scale) if math.isfinite(bound_raw) else 0.0
    bound = min(max(bound, relaxed_bound), value)
    gap = (value - bound) / value if value > 0 else 0.0
    if label == "optimal" and gap > 1e-9:  # CP-SAT says OPTIMAL when it stops at relative_gap_limit
        label = "feasible"
    if label != "heuristic" and objective is Objective.MAKESPAN and abs(solver.ObjectiveValue() - value) > 0.5:
        raise AssertionError(f"replay makespan {value} differs from CP-SAT's {solver.ObjectiveValue()}")
    _check_result_caps(p, result, latency_cap_cycles, energy_cap_pj, "exact")
    return SolveResult(schedule=schedule, result=result, objective=objective, objective_value=value, bound=bound,
                       gap=gap, status=label, solver="cp-sat", seconds=seconds)


def solve(problem: MappingProblem, solver: str = "exact", objective: Objective | str = Objective.MAKESPAN, *,
          time_limit_s: float = 30.0, gap_limit: float = 0.0, latency_cap_cycles: float | None = None,
          energy_cap_pj: float | None = None, seed: int = 0) -> SolveResult:
    """``exact`` (CP-SAT) or ``greedy`` (list scheduling)."""
    if solver == "exact":
        return solve_exact(problem, objective, time_limit_s=time_limit_s, gap_limit=gap_limit,
                           latency_cap_cycles=latency_cap_cycles, energy_cap_pj=energy_cap_pj, seed=seed)
    if solver == "greedy":
        return solve_greedy(problem, objective, time_limit_s=time_limit_s, seed=seed,
                            latency_cap_cycles=latency_cap_cycles, energy_cap_pj=energy_cap_pj)
    raise CoexploreError(f"unknown solver {solver!r} (expected exact or greedy)")
