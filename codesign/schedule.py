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
  redundant bounds that tighten the relaxation: makespan >= each sub-accelerator's busy time, all work
  / sub-accelerators, all DRAM bytes / pool, each task's critical path at its units' fastest with the
  link transfers of every change of sub-accelerator (``critical_paths``). When the pool can run short,
  the problem without it is solved first (30 % of the time left): its optimum bounds the full problem
  and enters it as makespan >= bound (CP-SAT's own bound through the pool's cumulative is weak); so
  does the preemptive configuration LP (``configuration_bound``), which sees which draws fit the pool
  side by side. Then 15 % of the time goes to the tie-break: least energy with the objective
  held at its best (lexicographic, so no weight has to be proved safe).
  The greedy schedule (``solve(solver="greedy")``'s own search with the same seed, on at most half
  the time) is the horizon and a *complete* hint (every variable, so CP-SAT takes it as its first
  solution), and the answer is never worse than it on (objective, energy): when CP-SAT finds nothing
  strictly better, the hint returns, marked ``schedule_from`` = greedy (or hint), with CP-SAT's bound
  and the resulting gap. ``deterministic`` makes a run reproducible for a seed: the hint on a fixed
  decode budget, every CP-SAT stage stopped by deterministic time, one worker.
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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from coexplore.dataflows.spec import SpecError
from coexplore.models.ir import CoexploreError
from coexplore.sim.system import MappingProblem, Policy, SystemResult, simulate

if TYPE_CHECKING:  # OR-Tools loads lazily (see _cp_model); its types only for the checker
    from ortools.sat.python.cp_model import IntVar


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
    schedule_from: str = ""  # who found the schedule: cp-sat, or greedy / hint when CP-SAT found nothing better
    deterministic: bool = False  # stopped on deterministic time only: the same schedule every run for a seed

    def solver_json(self) -> dict:
        cycles = self.objective is Objective.MAKESPAN  # a makespan and its bound are whole cycles
        return {
            "name": self.solver,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "gap": None if self.gap is None else round(self.gap, 6),
            "objective": self.objective.value,
            "objective_value": int(round(self.objective_value)) if cycles else self.objective_value,
            "bound": int(math.ceil(self.bound - 1e-9)) if cycles else self.bound,
            "schedule_from": self.schedule_from or self.solver,
            "deterministic": self.deterministic,
        }


def objective_value(problem: MappingProblem, result: SystemResult, objective: Objective) -> float:
    if objective is Objective.MAKESPAN:
        return float(result.makespan_cycles)
    return result.weighted_latency(problem.task_weights)


def replay(problem: MappingProblem, schedule: Schedule) -> SystemResult:
    """The schedule run by the system model under the reserved policy (it must reproduce the plan)."""
    return simulate(
        problem,
        schedule.assignment,
        policy=Policy.RESERVED,
        not_before=schedule.start_cycles,
        modes=schedule.modes or None,
    )


# ---- lower bounds and spec checks ------------------------------------------------------------------
def _min_durations(problem: MappingProblem) -> np.ndarray:
    return np.where(problem.allowed, problem.duration_cycles, np.iinfo(np.int64).max).min(axis=1)


def critical_paths(problem: MappingProblem) -> list[int]:
    """Per task, a lower bound on its completion: its dependency paths at full speed, with the link
    transfers a path pays when it changes sub-accelerator.

    ``finish[u, a]``: the earliest unit ``u`` can end on ``a``, each producer on whichever
    sub-accelerator lets ``u`` start soonest (a transfer when that is not ``a``). Without the transfers
    a network whose layers alternate between sub-accelerators (a depthwise conv fast on one, the
    pointwise conv after it on another) looks several link latencies shorter than any schedule.
    """
    p = problem
    never = np.iinfo(np.int64).max // 4
    finish = np.full((p.n_units, p.n_accs), never, dtype=np.int64)
    preds = p.predecessors()
    for u in range(p.n_units):  # units are topological: edges go forward
        for a in range(p.n_accs):
            if not p.allowed[u, a]:
                continue
            start = 0
            for e in preds[u]:
                q, hop = p.edges[e][0], p.transfer_cycles(e)
                start = max(start, min(int(finish[q, b]) + (hop if b != a else 0) for b in range(p.n_accs)))
            finish[u, a] = start + int(p.duration_cycles[u, a])
    out = [0] * len(p.task_names)
    for u, unit in enumerate(p.units):
        out[unit.task] = max(out[unit.task], int(finish[u].min()))
    return out


def check_caps(problem: MappingProblem, latency_cap_cycles: float | None, energy_cap_pj: float | None) -> None:
    """Raise ``SpecError`` naming the cap when a simple bound already shows it cannot be met."""
    if energy_cap_pj is not None:
        least = float(np.where(problem.allowed, problem.energy_pj, np.inf).min(axis=1).sum())
        if least > energy_cap_pj:
            raise SpecError(
                f"energy cap {energy_cap_pj:.4g} pJ cannot be met: the least-energy mapping needs {least:.4g} pJ"
            )
    if latency_cap_cycles is not None:
        paths = critical_paths(problem)
        t = int(np.argmax(paths))
        if paths[t] > latency_cap_cycles:
            raise SpecError(
                f"latency cap {latency_cap_cycles:.0f} cycles cannot be met: task "
                f"{problem.task_names[t]!r} alone needs {paths[t]} cycles on its fastest mapping"
            )
        work = float(_min_durations(problem).sum()) / problem.n_accs
        if work > latency_cap_cycles:
            raise SpecError(
                f"latency cap {latency_cap_cycles:.0f} cycles cannot be met: the work needs "
                f"{work:.0f} cycles even spread evenly over {problem.n_accs} sub-accelerators"
            )


def _meets_caps(result: SystemResult, latency_cap_cycles: float | None, energy_cap_pj: float | None) -> bool:
    return (latency_cap_cycles is None or result.makespan_cycles <= latency_cap_cycles) and (
        energy_cap_pj is None or result.energy_pj <= energy_cap_pj * (1 + 1e-9)
    )


def _check_result_caps(
    problem: MappingProblem,
    result: SystemResult,
    latency_cap_cycles: float | None,
    energy_cap_pj: float | None,
    who: str,
) -> None:
    if latency_cap_cycles is not None and result.makespan_cycles > latency_cap_cycles:
        raise SpecError(
            f"latency cap {latency_cap_cycles:.0f} cycles not met: the {who} schedule takes "
            f"{result.makespan_cycles:.0f} cycles"
        )
    if energy_cap_pj is not None and result.energy_pj > energy_cap_pj * (1 + 1e-9):
        raise SpecError(
            f"energy cap {energy_cap_pj:.4g} pJ not met: the {who} schedule needs {result.energy_pj:.4g} pJ"
        )


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
            [
                (a, m, int(p.mode_duration_cycles[m, u, a]), int(p.mode_bw_demand[m, u, a]))
                for a in range(p.n_accs)
                for m in range(p.n_modes)
                if p.mode_allowed(m, u, a)
            ]
            for u in range(p.n_units)
        ]

    def run(
        self, priority: Sequence[float], fixed: Sequence[int] | None = None, etf: float | None = None
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


def _balance(
    problem: MappingProblem,
    assign: list[int],
    preds: list[list[tuple[int, int]]],
    rng: np.random.Generator,
    moves_left: list[int],
) -> tuple[tuple, list[int]]:
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


def _chain_moves(
    problem: MappingProblem, sol: tuple, pred_info: list[list[tuple[int, int]]], rng: np.random.Generator
) -> list[tuple[str, int, int]]:
    """Moves on the critical chain of a decoded schedule, in random order: for each link where a unit
    waited for the unit before it on its sub-accelerator, swap the two (the job-shop N1 move); for
    each unit on the chain, move it to another sub-accelerator."""
    assign, _, start, end = sol
    n = problem.n_units
    by_acc: dict[int, list[int]] = {}
    for v in sorted(range(n), key=lambda v: start[v]):
        by_acc.setdefault(assign[v], []).append(v)
    prev_on_acc: dict[int, int] = {}
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
        before = prev_on_acc.get(u)
        if before is not None and end[before] == start[u]:
            moves.append(("swap", u, before))
            u = before
            continue
        parent = next((q for q, tr in pred_info[u] if end[q] + (tr if assign[q] != assign[u] else 0) == start[u]), None)
        if parent is None:  # started at a release of the DRAM pool, or at 0
            blockers = [x for x in range(n) if end[x] == start[u] and x not in seen]
            if not blockers:
                break
            parent = blockers[0]
        u = parent
    order = rng.permutation(len(moves))
    return [moves[i] for i in order]


def solve_greedy(
    problem: MappingProblem,
    objective: Objective | str = Objective.MAKESPAN,
    *,
    time_limit_s: float = 2.0,
    iterations: int = 20_000,
    stall_iterations: int = 4000,
    grasp_share: float = 0.5,
    seed: int = 0,
    latency_cap_cycles: float | None = None,
    energy_cap_pj: float | None = None,
) -> SolveResult:
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
    while (
        not out_of_time() and time.perf_counter() < deadline_grasp and budget[0] > grasp_budget and best_key[0] > floor
    ):
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
    return SolveResult(
        schedule=schedule,
        result=result,
        objective=objective,
        objective_value=value,
        bound=bound,
        gap=(value - bound) / value if value > 0 else 0.0,
        status="heuristic",
        solver="list-greedy",
        seconds=time.perf_counter() - t0,
    )


def _simple_bound(problem: MappingProblem, objective: Objective) -> float:
    """A cheap valid lower bound: critical paths, and for the makespan the work spread evenly."""
    paths = critical_paths(problem)
    if objective is Objective.WEIGHTED:
        return float(sum(w * c for w, c in zip(problem.task_weights, paths)))
    work = float(_min_durations(problem).sum()) / problem.n_accs
    return float(max(max(paths), math.ceil(work)))


CONFIGURATION_COLUMNS_MAX = 200_000  # configuration bound: skipped when it would need more LP columns


def configuration_bound(problem: MappingProblem) -> float:
    """A lower bound on the makespan from the preemptive *configuration* LP (0.0 when too large to build).

    At every instant of any schedule the running units form a configuration: at most one per
    sub-accelerator, none two of which are ordered by the dependencies, each in one bandwidth mode,
    their DRAM draws within the pool. Give each configuration a duration, so that every unit gets its
    whole work done (a unit split over modes or sub-accelerators counts the fraction of each), and
    minimize the total: any schedule is one such solution, so the LP optimum (GLOP) bounds its
    makespan. Unlike the DRAM bytes over the pool it sees which draws can run side by side, and unlike
    the problem without the pool (``solve_exact``'s relaxed stage) it sees the pool at all: on
    dla-sdn-shared it lifts the bound above both, in well under a second.
    """
    from ortools.linear_solver import pywraplp

    p = problem
    n = p.n_units
    pool = p.pool_bw_scaled if p.bandwidth_binds else math.inf
    later = [0] * n  # bit v of later[u]: v depends on u, directly or not
    succs = p.successors()
    for u in range(n - 1, -1, -1):  # units are topological: edges go forward
        for e in succs[u]:
            c = p.edges[e][1]
            later[u] |= (1 << c) | later[c]
    per_acc = [[(u, k) for u in range(n) for k in range(p.n_modes) if p.mode_allowed(k, u, a)] for a in range(p.n_accs)]
    if math.prod(len(c) + 1 for c in per_acc) > CONFIGURATION_COLUMNS_MAX:
        return 0.0
    # configurations, built one sub-accelerator at a time: (choices (u, a, k), units as a bit set, draw)
    configs: list[tuple[tuple[tuple[int, int, int], ...], int, int]] = [((), 0, 0)]
    for a, options in enumerate(per_acc):
        grown = []
        for chosen, units, draw in configs:
            for u, k in options:
                d = draw + int(p.mode_bw_demand[k, u, a])
                if d > pool or (units >> u) & 1 or later[u] & units:
                    continue
                if any((later[v] >> u) & 1 for v, _, _ in chosen):
                    continue
                grown.append(((*chosen, (u, a, k)), units | (1 << u), d))
        configs += grown
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - GLOP ships with OR-Tools
        return 0.0
    mega = 1e6  # durations in millions of cycles: coefficients near 1 for the LP's tolerances
    lengths = [solver.NumVar(0.0, solver.infinity(), "") for chosen, _, _ in configs if chosen]
    work: list[list[tuple[object, float]]] = [[] for _ in range(n)]
    for var, (chosen, _, _) in zip(lengths, (c for c in configs if c[0])):
        for u, a, k in chosen:
            work[u].append((var, mega / float(p.mode_duration_cycles[k, u, a])))
    for u in range(n):
        row = solver.Constraint(1.0, 1.0)
        for var, coef in work[u]:
            row.SetCoefficient(var, coef)
    objective = solver.Objective()
    for var in lengths:
        objective.SetCoefficient(var, 1.0)
    objective.SetMinimization()
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return 0.0
    # makespans are whole cycles: round up, after a margin for the LP's tolerances (1e-7 relative)
    value = objective.Value() * mega
    return float(max(0, math.ceil(value * (1.0 - 1e-6) - 1e-6)))


# ---- exact (CP-SAT) ---------------------------------------------------------------------------------
_EXTRA_PARAMS: dict = {}  # extra CP-SAT parameters (experiments, benchmarks); max_deterministic_time: the total
DETERMINISTIC_PER_SECOND = 0.05  # deterministic mode: CP-SAT deterministic time per second of the time limit
# (one worker accrued about 0.06 per wall second on 2 cores shared by a dozen busy processes)
WALL_SAFETY = 3.0  # deterministic mode: the wall clock stops a run only at this many times the time limit
HINT_SHARE = 0.5  # of the time limit: the list scheduler's search for CP-SAT's hint (it mostly stops sooner)
HINT_ITERATIONS = 1000  # deterministic mode: list-scheduler decodes for the hint (a fixed budget: reproducible)


def default_workers() -> int:
    """CP-SAT search workers: its portfolio needs several even on few cores (8 measured best here)."""
    return int(os.environ.get("COEXPLORE_CPSAT_WORKERS", "8"))


def _identical_accs(problem: MappingProblem) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b adjacent in a class, of sub-accelerators no schedule can tell apart."""
    pairs = []
    for b in range(1, problem.n_accs):
        a = b - 1
        if (
            np.array_equal(problem.duration_cycles[:, a], problem.duration_cycles[:, b])
            and np.array_equal(problem.bw_demand[:, a], problem.bw_demand[:, b])
            and np.array_equal(problem.energy_pj[:, a], problem.energy_pj[:, b])
            and np.array_equal(problem.allowed[:, a], problem.allowed[:, b])
        ):
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
            f"coexplore.codesign.milp does ({exc})"
        ) from None
    return cp_model


def _greedy_hint(
    problem: MappingProblem,
    objective: Objective,
    time_limit_s: float,
    seed: int,
    deterministic: bool,
    latency_cap_cycles: float | None = None,
    energy_cap_pj: float | None = None,
) -> SolveResult:
    """The list scheduler's search as ``solve(solver="greedy")`` runs it: so the exact solver's hint is
    the greedy answer itself (when neither is cut by the wall clock), and exact is never worse."""
    if deterministic:
        return solve_greedy(
            problem,
            objective,
            time_limit_s=time_limit_s,
            iterations=HINT_ITERATIONS,
            stall_iterations=HINT_ITERATIONS // 2,
            seed=seed,
            latency_cap_cycles=latency_cap_cycles,
            energy_cap_pj=energy_cap_pj,
        )
    return solve_greedy(
        problem,
        objective,
        time_limit_s=time_limit_s,
        seed=seed,
        latency_cap_cycles=latency_cap_cycles,
        energy_cap_pj=energy_cap_pj,
    )


def solve_exact(
    problem: MappingProblem,
    objective: Objective | str = Objective.MAKESPAN,
    *,
    time_limit_s: float = 30.0,
    gap_limit: float = 0.0,
    workers: int | None = None,
    hint: Schedule | None = None,
    latency_cap_cycles: float | None = None,
    energy_cap_pj: float | None = None,
    fixed_assignment: Sequence[int] | None = None,
    seed: int = 0,
    deterministic: bool = False,
    deterministic_time: float | None = None,
    log: bool = False,
    relax_share: float = 0.3,
    energy_share: float = 0.15,
) -> SolveResult:
    """Optimal mapping and schedule by CP-SAT within ``time_limit_s``; see the module docstring.

    ``gap_limit`` stops the search once the proven relative gap is at most that (0: prove optimum).
    When the DRAM pool can run short, ``relax_share`` of the time first goes to the problem without it,
    whose optimum is a lower bound (CP-SAT's own bound with the pool's cumulative is weak). Then
    ``energy_share`` of the time goes to the tie-break: least energy with the objective held at its best.
    ``deterministic``: reproducible run to run (same schedule for a seed): one CP-SAT worker (or
    ``workers`` interleaved in fixed batches) and every stage stops on deterministic time
    (``deterministic_time`` in all, default ``time_limit_s`` x ``DETERMINISTIC_PER_SECOND``), the wall
    clock only as a safety net at ``WALL_SAFETY`` x ``time_limit_s`` (the result then says it is not).
    The schedule returned is never worse than the hint (the greedy one unless given) on (objective,
    energy); when CP-SAT finds nothing better, the hint returns, marked ``schedule_from`` = hint.
    """
    cp_model = _cp_model()
    objective = Objective(objective)
    t0 = time.perf_counter()
    check_caps(problem, latency_cap_cycles, energy_cap_pj)
    p = problem
    n, n_a, n_t = p.n_units, p.n_accs, len(p.task_names)
    # Deterministic: one worker unless told (CP-SAT's parallel portfolio is reproducible only when its
    # workers interleave in batches, which accrue deterministic time several times slower here).
    n_workers = workers or (1 if deterministic else default_workers())
    det_total = deterministic_time if deterministic_time is not None else _EXTRA_PARAMS.get("max_deterministic_time")
    if det_total is None and deterministic:
        det_total = time_limit_s * DETERMINISTIC_PER_SECOND
    # Wall-clock ceiling: the time limit, or in deterministic mode a safety net well above it (a run
    # stopped by the wall clock is no longer reproducible, and says so).
    wall_total = time_limit_s * (WALL_SAFETY if deterministic else 1.0)
    deadline = t0 + wall_total
    reproducible = [True]
    hint_from = "hint"
    if hint is None and fixed_assignment is None:
        # The list scheduler's own search (as ``solver=greedy`` runs it) on a share of the time; when
        # deterministic, on a fixed decode budget instead (the wall clock only as a safety net).
        share = HINT_SHARE * wall_total
        hint = _greedy_hint(p, objective, share, seed, deterministic).schedule
        reproducible[0] = not deterministic or time.perf_counter() - t0 < 0.99 * share
        hint_from = "greedy"
    hint_res = replay(p, hint) if hint is not None else None
    if hint_res is not None and not _meets_caps(hint_res, latency_cap_cycles, energy_cap_pj):
        hint_res = None  # a hint that breaks a cap guides the search but is no answer
    if fixed_assignment is not None and hint is not None and tuple(hint.assignment) != tuple(fixed_assignment):
        hint, hint_res = None, None

    def run(model, share_det: float, share_wall: float):
        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.num_workers = n_workers
        prm.relative_gap_limit = gap_limit
        prm.random_seed = seed
        prm.log_search_progress = log
        for key, value in _EXTRA_PARAMS.items():
            if key != "max_deterministic_time":
                setattr(prm, key, value)
        wall = max(0.1, min(share_wall, deadline - time.perf_counter()))
        prm.max_time_in_seconds = wall
        if det_total is not None:
            prm.max_deterministic_time = max(0.01, share_det * det_total)
        if deterministic and n_workers > 1:
            prm.interleave_search = True
        t_run = time.perf_counter()
        status = solver.Solve(model)
        if (
            det_total is not None
            and time.perf_counter() - t_run >= 0.98 * wall
            and solver.ResponseProto().deterministic_time < 0.98 * prm.max_deterministic_time
        ):
            reproducible[0] = False  # stopped by the wall clock, not by deterministic time
        return solver, status

    relaxed_bound = 0.0
    if p.bandwidth_binds and relax_share > 0:
        # The problem without the DRAM pool (every unit at full speed) is a relaxation: any schedule of
        # the full problem, its units shortened to full speed, is one of it. CP-SAT proves that one far
        # more easily, and its optimum (or bound) bounds the full problem from below.
        relaxed = replace(
            p,
            mode_duration_cycles=p.mode_duration_cycles[:1],
            mode_bw_demand=np.zeros_like(p.mode_bw_demand[:1]),
            bw_levels=(1.0,),
        )
        relaxed_hint = None if hint is None else Schedule(hint.assignment, hint.start_cycles)
        left = max(0.1, deadline - time.perf_counter()) / (WALL_SAFETY if deterministic else 1.0)
        r = solve_exact(
            relaxed,
            objective,
            time_limit_s=relax_share * left,
            workers=workers,
            hint=relaxed_hint,
            latency_cap_cycles=latency_cap_cycles,
            energy_cap_pj=energy_cap_pj,
            fixed_assignment=fixed_assignment,
            seed=seed,
            deterministic=deterministic,
            deterministic_time=None if det_total is None else relax_share * det_total,
            relax_share=0.0,
            energy_share=0.0,
        )
        relaxed_bound = r.bound
        reproducible[0] = reproducible[0] and r.deterministic == deterministic
    # The pool seen at every instant (configuration LP): a bound the relaxed stage cannot give.
    pool_bound = configuration_bound(p) if p.bandwidth_binds and objective is Objective.MAKESPAN else 0.0
    pairs = _identical_accs(p) if fixed_assignment is None else []
    if hint is not None and pairs:
        canon = _canonical(hint.assignment, pairs)
        if canon != list(hint.assignment):  # relabel the replayed plan as well
            hint = Schedule(tuple(canon), hint.start_cycles, hint.modes)
            hint_res = replay(p, hint) if hint_res is not None else None

    xfer = [p.transfer_cycles(e) for e in range(len(p.edges))]
    dmax = np.where(p.allowed[None], p.mode_duration_cycles, 0).max(axis=(0, 2))
    horizon = int(dmax.sum() + sum(xfer)) + 1
    if hint_res is not None and objective is Objective.MAKESPAN:
        horizon = min(horizon, int(hint_res.makespan_cycles))
    if latency_cap_cycles is not None:
        horizon = min(horizon, int(latency_cap_cycles))

    m = cp_model.CpModel()
    start = [m.NewIntVar(0, horizon, f"s{u}") for u in range(n)]
    end = [m.NewIntVar(0, horizon, f"e{u}") for u in range(n)]
    x: dict[tuple[int, int], IntVar] = {}  # unit on accelerator
    y: dict[tuple[int, int, int], IntVar] = {}  # unit on accelerator in bandwidth mode
    per_acc: list[list] = [[] for _ in range(n_a)]
    bw_intervals, bw_demands, bw_energy = [], [], []
    for u in range(n):
        options = (
            [int(fixed_assignment[u])] if fixed_assignment is not None else [a for a in range(n_a) if p.allowed[u, a]]
        )
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
    simple = _simple_bound(p, Objective.MAKESPAN)  # critical paths at each unit's fastest, work / machines
    makespan = m.NewIntVar(min(int(math.ceil(simple - 1e-9)), horizon), horizon, "makespan")
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
    if pool_bound > 0:
        m.Add(makespan >= int(math.ceil(pool_bound - 1e-6)))
    m.Add(sum(d * lit for a in range(n_a) for _, lit, d in per_acc[a]) <= n_a * makespan)  # all work / machines
    for a in range(n_a):  # redundant: each sub-accelerator's busy time <= makespan
        m.Add(sum(d * lit for _, lit, d in per_acc[a]) <= makespan)
    cross: dict[int, IntVar] = {}  # edge -> its producer and consumer run apart (only pushed down)
    for e, (q, c) in enumerate(p.edges):
        if p.transfer_energy_pj(e) > 0 and fixed_assignment is None:
            cross[e] = m.NewBoolVar(f"d{e}")
            for a in range(n_a):
                if (q, a) in x:
                    m.Add(cross[e] >= x[q, a] - x.get((c, a), 0))
    if energy_cap_pj is not None:
        scale = 1e6 / max(energy_cap_pj, 1e-30)  # energies in millionths of the cap, rounded up (safe side)
        terms = [math.ceil(float(p.energy_pj[u, a]) * scale - 1e-9) * x[u, a] for (u, a) in x]
        terms += [math.ceil(p.transfer_energy_pj(e) * scale - 1e-9) * v for e, v in cross.items()]
        fixed_transfers = 0  # with the assignment fixed, the transfers' energy is a constant
        if fixed_assignment is not None:
            apart = [e for e, (q, c) in enumerate(p.edges) if fixed_assignment[q] != fixed_assignment[c]]
            fixed_transfers = math.ceil(sum(p.transfer_energy_pj(e) for e in apart) * scale - 1e-9)
        m.Add(sum(terms) + fixed_transfers <= 1_000_000)
    if objective is Objective.MAKESPAN:
        primary = makespan
        obj_scale = 1.0
        weights_int = [0] * n_t
    else:
        w = [float(v) for v in p.task_weights]
        obj_scale = 1000.0 / max(max(w), 1e-30) if any(v != round(v) for v in w) else 1.0
        weights_int = [int(round(v * obj_scale)) for v in w]
        primary = sum(wi * done[t] for t, wi in enumerate(weights_int))
    m.Minimize(primary)

    def primary_int(res: SystemResult) -> int:
        if objective is Objective.MAKESPAN:
            return int(res.makespan_cycles)
        return int(sum(wi * int(c) for wi, c in zip(weights_int, res.task_latency_cycles)))

    def set_hint(res: SystemResult) -> None:
        """A complete hint (every variable) from a replayed schedule, so CP-SAT takes it as its first
        solution when it is feasible, and repairs it when not."""
        m.ClearHints()
        a_of = {tm.unit: (tm.acc, tm.mode) for tm in res.timings}
        for (u, a, k), lit in y.items():
            m.AddHint(lit, a_of[u] == (a, k))
        for (u, a), lit in x.items():
            if all(lit is not y.get((u, a, k)) for k in range(p.n_modes)):
                m.AddHint(lit, a_of[u][0] == a)
        for tm in res.timings:
            m.AddHint(start[tm.unit], int(tm.start_cycle))
            m.AddHint(end[tm.unit], int(tm.end_cycle))
        for t in range(n_t):
            m.AddHint(done[t], int(res.task_latency_cycles[t]))
        m.AddHint(makespan, int(res.makespan_cycles))
        for e, v in cross.items():
            q, c = p.edges[e]
            m.AddHint(v, a_of[q][0] != a_of[c][0])

    def extract(solver) -> tuple[Schedule, SystemResult]:
        chosen = [next((a, k) for (v, a, k), lit in y.items() if v == u and solver.Value(lit)) for u in range(n)]
        sched = Schedule(
            tuple(a for a, _ in chosen), tuple(int(solver.Value(s)) for s in start), tuple(k for _, k in chosen)
        )
        return sched, replay(p, sched)

    if hint_res is not None:
        set_hint(hint_res)
    elif hint is not None:  # a hint that breaks a cap: guide the search by its assignment and starts
        for (u, a, k), lit in y.items():
            m.AddHint(lit, hint.assignment[u] == a and (hint.modes or (0,) * n)[u] == k)
        for u in range(n):
            m.AddHint(start[u], int(hint.start_cycles[u]))

    stage1_share = 1.0 - relax_share * (p.bandwidth_binds and relax_share > 0) - energy_share
    stage1_wall = (deadline - time.perf_counter()) * (1.0 - energy_share / max(1e-9, stage1_share + energy_share))
    solver, status = run(m, stage1_share, stage1_wall)
    bound_raw = solver.BestObjectiveBound()
    if status == cp_model.INFEASIBLE:
        caps = []
        if latency_cap_cycles is not None:
            caps.append(f"latency cap {latency_cap_cycles:.0f} cycles")
        if energy_cap_pj is not None:
            caps.append(f"energy cap {energy_cap_pj:.4g} pJ")
        what = " and ".join(caps) if caps else "the problem"
        raise SpecError(f"{what} cannot be met (CP-SAT proved no schedule exists)")
    candidates: list[tuple[Schedule, SystemResult, str]] = []
    if hint is not None and hint_res is not None:
        candidates.append((hint, hint_res, hint_from))
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        sched, res = extract(solver)
        if objective is Objective.MAKESPAN and abs(solver.ObjectiveValue() - res.makespan_cycles) > 0.5:
            raise AssertionError(
                f"replay makespan {res.makespan_cycles} differs from CP-SAT's {solver.ObjectiveValue()}"
            )
        candidates.append((sched, res, "cp-sat"))
    if not candidates:
        raise SpecError(
            f"no schedule found within the time limit of {time_limit_s:g} s (not proved infeasible; raise --time-limit)"
        )

    def key(c: tuple[Schedule, SystemResult, str]) -> tuple[float, float]:
        return objective_value(p, c[1], objective), c[1].energy_pj

    best = min(candidates, key=key)  # min keeps the first of equals: the hint unless CP-SAT beat it
    if energy_share > 0 and deadline - time.perf_counter() > 0.05 and fixed_assignment is None:
        # Tie-break: least energy with the objective held at its best (lexicographic, no weights).
        m.Add(primary <= primary_int(best[1]))
        e_terms = {(u, a): float(p.energy_pj[u, a]) for (u, a) in x}
        total = sum(e_terms.values()) + sum(p.transfer_energy_pj(e) for e in cross) or 1.0
        e_scale = 1e9 / total
        m.ClearObjective()
        m.Minimize(
            sum(int(round(v * e_scale)) * x[u, a] for (u, a), v in e_terms.items())
            + sum(int(round(p.transfer_energy_pj(e) * e_scale)) * v for e, v in cross.items())
        )
        set_hint(best[1])
        solver2, status2 = run(m, energy_share, deadline - time.perf_counter())
        if status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            sched, res = extract(solver2)
            cand = (sched, res, "cp-sat")
            if key(cand) < key(best):
                best = cand
    seconds = time.perf_counter() - t0
    schedule, result, source = best
    value = objective_value(p, result, objective)
    bound = max(0.0, float(bound_raw) / obj_scale) if math.isfinite(bound_raw) else 0.0
    bound = min(max(bound, relaxed_bound, pool_bound, _simple_bound(p, objective)), value)
    gap = (value - bound) / value if value > 0 else 0.0
    label = "optimal" if gap <= 1e-9 else "feasible"  # CP-SAT says OPTIMAL at relative_gap_limit too
    _check_result_caps(p, result, latency_cap_cycles, energy_cap_pj, "exact")
    return SolveResult(
        schedule=schedule,
        result=result,
        objective=objective,
        objective_value=value,
        bound=bound,
        gap=gap,
        status=label,
        solver="cp-sat",
        seconds=seconds,
        schedule_from=source,
        deterministic=bool(deterministic and reproducible[0]),
    )


def solve(
    problem: MappingProblem,
    solver: str = "exact",
    objective: Objective | str = Objective.MAKESPAN,
    *,
    time_limit_s: float = 30.0,
    gap_limit: float = 0.0,
    latency_cap_cycles: float | None = None,
    energy_cap_pj: float | None = None,
    seed: int = 0,
    deterministic: bool = False,
) -> SolveResult:
    """``exact`` (CP-SAT) or ``greedy`` (list scheduling); ``deterministic``: reproducible for a seed
    (greedy: a fixed decode budget, the same search that gives exact its hint)."""
    if solver == "exact":
        return solve_exact(
            problem,
            objective,
            time_limit_s=time_limit_s,
            gap_limit=gap_limit,
            latency_cap_cycles=latency_cap_cycles,
            energy_cap_pj=energy_cap_pj,
            seed=seed,
            deterministic=deterministic,
        )
    if solver == "greedy":
        limit = time_limit_s * (WALL_SAFETY * HINT_SHARE if deterministic else 1.0)  # exact's hint limit
        res = _greedy_hint(
            problem,
            Objective(objective),
            limit,
            seed,
            deterministic,
            latency_cap_cycles=latency_cap_cycles,
            energy_cap_pj=energy_cap_pj,
        )
        return replace(res, deterministic=deterministic and res.seconds < 0.99 * limit)
    raise CoexploreError(f"unknown solver {solver!r} (expected exact or greedy)")
