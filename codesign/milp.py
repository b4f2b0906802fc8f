"""Hardware allocation as a MILP (Pyomo, HiGHS through ``appsi_highs``): NASAIC's hardware side.

Given sub-accelerator *slots* (one template each), the discrete options for each slot's PEs, array
shape (rows x cols: tall, near-square or wide) and DRAM bandwidth slice, the budgets, and several
networks, choose one option per slot and assign every unit (a layer, or a segment of consecutive
layers; see ``coexplore.sim.system.build_problem``) to a slot.

Variables: ``y[s,o]`` slot ``s`` takes option ``o``; ``x[u,s]`` unit ``u`` runs on slot ``s``;
``D[u,s] >= d[u,s,o] (x[u,s] + y[s,o] - 1)`` its duration there (``E`` likewise its energy);
``f[u]`` its earliest finish. Constraints: PE, bandwidth and area budgets over the chosen options;
``T >=`` every slot's load; ``f[u] >= f[p] + D[u] (+ link transfer when p and u are on different
slots)`` along the networks' edges, ``T >= f[u]``; optionally energy <= cap. Objective: minimize ``T``,
the makespan *lower bound* of the allocation (max of load and critical path: it ignores the waiting
that sharing a slot causes), then energy as a tie-break; or minimize energy under a latency cap.
``coexplore.codesign.schedule`` then schedules the chosen system exactly (CP-SAT), since
HiGHS is weak at the disjunctive scheduling part (a 43 % gap after 180 s, measured here).
Since the MILP's latency is only a bound, its design is checked with the real (list) scheduler against
given candidate designs (by default the shipped systems of the same templates within the budgets), and
the shortest schedule wins: the result is never worse than a shipped design under the same budget.

Bandwidth here is partitioned (each slot owns its slice), as in NASAIC; the chosen ``System`` says so.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator, Dataflow, SpecError
from coexplore.dataflows.system import BandwidthSharing, Budget, Link, System, array_shape, buildable_bw_bytes_per_cycle
from coexplore.models.ir import CoexploreError, Network
from coexplore.sim.system import CostFn, CostTable, MappingProblem, analytical_costs, build_problem

CHECK_ITERATIONS = 400  # list-scheduler decodes per candidate design in allocate's check


@dataclass(frozen=True, slots=True)
class SlotOption:
    """One choice for a slot: its PE count, array rows (None: the near-square ``array_shape``) and
    DRAM bandwidth slice."""

    pes: int
    dram_bw_bytes_per_cycle: float
    rows: int | None = None

    def __post_init__(self) -> None:
        if self.rows is not None and (self.rows <= 0 or self.pes % self.rows):
            raise CoexploreError(f"slot option: {self.rows} rows do not divide {self.pes} PEs")

    @property
    def shape(self) -> tuple[int, int]:
        if self.rows is None:
            return array_shape(self.pes)
        return self.rows, self.pes // self.rows


@dataclass(frozen=True, eq=False)
class Allocation:
    system: System  # the chosen sub-accelerators (unused slots left out)
    problem: MappingProblem  # the networks' units on that system
    assignment: tuple[int, ...]  # unit -> sub-accelerator of ``system``
    makespan_bound_cycles: float  # the MILP's T: max(load, critical path) of the assignment
    energy_pj: float  # units + link transfers
    status: str  # optimal | feasible
    gap: float | None
    seconds: float  # in all: costs, units, model and solve
    model_seconds: float = 0.0  # building the Pyomo model
    solve_seconds: float = 0.0  # HiGHS
    solver: str = "highs"
    chosen: str = "milp"  # which candidate won the list-scheduled check: milp, or a given design's name
    candidates: tuple[tuple[str, float], ...] = ()  # (design, list-scheduled makespan) of every candidate


def array_shapes(pes: int, row_factors: Sequence[float] = (0.5, 1.0, 2.0)) -> list[int]:
    """Row counts of a ``pes``-PE array: the near-square one times each factor (powers of two that
    divide ``pes``), so a template may take a tall, square or wide array (NVDLA-like arrays want rows
    for channels, ShiDianNao-like ones columns for pixels)."""
    base = array_shape(pes)[0]
    out = []
    for f in row_factors:
        rows = int(round(base * f))
        if rows >= 1 and pes % rows == 0 and rows not in out:
            out.append(rows)
    return out


def default_options(
    pe_budget: int,
    bw_budget: float,
    pe_steps: int = 8,
    bw_steps: int = 4,
    row_factors: Sequence[float] = (0.5, 1.0, 2.0),
) -> list[SlotOption]:
    """PE counts in ``1/pe_steps`` fractions of the budget (multiples of 16 so arrays stay regular), each
    in the array shapes of ``array_shapes``, and bandwidth slices in ``1/bw_steps`` fractions of it, rounded
    down to a power of two bytes/cycle (``buildable_bw_bytes_per_cycle``: stream widths the RTL builds)."""
    pes = sorted({max(16, (pe_budget * k // pe_steps) // 16 * 16) for k in range(1, pe_steps + 1)})
    bws = sorted({buildable_bw_bytes_per_cycle(bw_budget * k / bw_steps) for k in range(1, bw_steps + 1)})
    return [SlotOption(p, b, r) for p in pes for r in array_shapes(p, row_factors) for b in bws]


def _accelerator(template: Dataflow, option: SlotOption, name: str, base: dict) -> Accelerator:
    rows, cols = option.shape
    return Accelerator(
        dataflow=template,
        rows=rows,
        cols=cols,
        dram_bw_bytes_per_cycle=option.dram_bw_bytes_per_cycle,
        dram_ports="shared",
        name=name,
        **base,
    )


def allocate(
    networks: Sequence[Network],
    templates: Sequence[str | Dataflow],
    *,
    pe_budget: int,
    bw_budget_bytes_per_cycle: float,
    options: Sequence[SlotOption] | None = None,
    area_budget_um2: float | None = None,
    energy_cap_pj: float | None = None,
    latency_cap_cycles: float | None = None,
    objective: str = "makespan",
    costs: CostFn | None = None,
    max_units_per_task: int | None = 20,
    allow_unused: bool = False,
    link: Link = Link(),
    time_limit_s: float = 60.0,
    gap_limit: float = 0.01,
    accelerator_fields: dict | None = None,
    name: str = "allocated",
    candidates: Sequence[System] | None = None,
    check_iterations: int = CHECK_ITERATIONS,
) -> Allocation:
    """Choose each slot's PEs, array shape and bandwidth and assign the networks' units; see the module
    docstring. With the makespan objective, the MILP's design and ``candidates`` (default: the shipped
    systems of the same templates within the budgets) are list-scheduled, and the shortest makespan
    wins: the MILP's latency (load and critical path) ignores waiting, so a design it ranks lower can
    schedule shorter, and the result is never worse than a shipped design under the same budget."""
    t0 = time.perf_counter()
    if objective not in ("makespan", "energy"):
        raise CoexploreError(f"unknown allocation objective {objective!r} (expected makespan or energy)")
    dataflows = [get_template(t) if isinstance(t, str) else t for t in templates]
    if not dataflows:
        raise CoexploreError("no templates given (expected at least one sub-accelerator slot)")
    opts = list(options) if options is not None else default_options(pe_budget, bw_budget_bytes_per_cycle)
    opts = [o for o in opts if o.pes <= pe_budget and o.dram_bw_bytes_per_cycle <= bw_budget_bytes_per_cycle + 1e-9]
    n_s = len(dataflows)
    min_pes = min((o.pes for o in opts), default=math.inf)
    min_bw = min((o.dram_bw_bytes_per_cycle for o in opts), default=math.inf)
    need_slots = 1 if allow_unused else n_s
    if not opts or need_slots * min_pes > pe_budget:
        raise SpecError(
            f"PE budget {pe_budget} exceeded: {need_slots} sub-accelerators need at least "
            f"{need_slots * min_pes if opts else 'more'} PEs"
        )
    if need_slots * min_bw > bw_budget_bytes_per_cycle + 1e-9:
        raise SpecError(
            f"bandwidth budget {bw_budget_bytes_per_cycle:g} bytes/cycle exceeded: {need_slots} "
            f"sub-accelerators need at least {need_slots * min_bw:g} bytes/cycle"
        )
    base = dict(accelerator_fields or {})
    cost_fn = costs or analytical_costs()

    # Costs of every layer on every (slot, option): one batch per template, options deduplicated.
    all_layers = [l for net in networks for l in net.layers]
    accs = [_accelerator(df, o, f"{df.name}{s}", base) for s, df in enumerate(dataflows) for o in opts]
    table = cost_fn(all_layers, accs)
    n_o = len(opts)

    def slot_table(s: int, o: int) -> CostTable:
        i = s * n_o + o
        return CostTable(
            table.compute_cycles[i : i + 1],
            table.energy_pj[i : i + 1],
            table.dram_bytes[i : i + 1],
            table.area_um2[i : i + 1],
        )

    # Units: fixed once, from a reference system of every slot at its largest option.
    big = max(range(n_o), key=lambda o: (opts[o].pes, opts[o].dram_bw_bytes_per_cycle))
    ref = System(
        f"{name}-ref",
        tuple(accs[s * n_o + big] for s in range(n_s)),
        Budget(dram_bw_bytes_per_cycle=max(bw_budget_bytes_per_cycle, opts[big].dram_bw_bytes_per_cycle)),
        BandwidthSharing.SHARED,
        link,
    )
    compute, energy_ref, dram = (
        np.stack([getattr(slot_table(s, big), k)[0] for s in range(n_s)])
        for k in ("compute_cycles", "energy_pj", "dram_bytes")
    )
    ref_table = CostTable(
        compute_cycles=compute,
        energy_pj=energy_ref,
        dram_bytes=dram,
        area_um2=np.array([table.area_um2[s * n_o + big] for s in range(n_s)]),
    )
    ref_problem = build_problem(networks, ref, ref_table, max_units_per_task=max_units_per_task, bw_levels=None)
    units = ref_problem.units
    n_u = len(units)
    # Per (unit, slot, option): duration and energy, from a one-slot problem with the same units.
    dur = np.zeros((n_u, n_s, n_o))
    energy = np.zeros((n_u, n_s, n_o))
    area = np.zeros((n_s, n_o))
    offsets = np.cumsum([0] + [len(net.layers) for net in networks])
    for s in range(n_s):
        for o in range(n_o):
            t = slot_table(s, o)
            bw = opts[o].dram_bw_bytes_per_cycle
            per_layer = np.maximum(np.ceil(t.compute_cycles[0]), np.ceil(t.dram_bytes[0] / bw))
            for u, unit in enumerate(units):
                cols = slice(offsets[unit.task] + unit.first, offsets[unit.task] + unit.last + 1)
                dur[u, s, o] = max(1.0, per_layer[cols].sum())
                energy[u, s, o] = t.energy_pj[0, cols].sum()
            area[s, o] = t.area_um2[0]
    if not np.all(np.isfinite(dur)) or not np.all(np.isfinite(energy)):
        raise SpecError("some layer cannot run on some template option (non-finite cost); drop that template")
    if area_budget_um2 is not None:
        least = sum(area[s].min() for s in range(n_s)) if not allow_unused else area.min()
        if least > area_budget_um2:
            raise SpecError(
                f"area budget {area_budget_um2 / 1e6:g} mm2 exceeded: the smallest sub-accelerators "
                f"need {least / 1e6:.3g} mm2"
            )
    xfer = [ref_problem.transfer_cycles(e) for e in range(len(ref_problem.edges))]
    xfer_e = [ref_problem.transfer_energy_pj(e) for e in range(len(ref_problem.edges))]

    data = dict(
        dur=dur,
        energy=energy,
        area=area,
        pes=[o.pes for o in opts],
        bws=[o.dram_bw_bytes_per_cycle for o in opts],
        edges=list(ref_problem.edges),
        xfer=xfer,
        xfer_e=xfer_e,
        pe_budget=pe_budget,
        bw_budget=bw_budget_bytes_per_cycle,
        area_budget=area_budget_um2,
        energy_cap=energy_cap_pj,
        latency_cap=latency_cap_cycles,
        allow_unused=allow_unused,
        same_template=[dataflows[s] == dataflows[s + 1] for s in range(n_s - 1)],
        objective=objective,
        time_limit=max(1.0, time_limit_s - (time.perf_counter() - t0)),
        gap_limit=gap_limit,
    )
    out = _run_isolated(data)
    if out["status"] == "infeasible":
        caps = [f"PE budget {pe_budget}", f"bandwidth budget {bw_budget_bytes_per_cycle:g} bytes/cycle"]
        if area_budget_um2 is not None:
            caps.append(f"area budget {area_budget_um2 / 1e6:g} mm2")
        if energy_cap_pj is not None:
            caps.append(f"energy cap {energy_cap_pj:.4g} pJ")
        if latency_cap_cycles is not None:
            caps.append(f"latency cap {latency_cap_cycles:.0f} cycles")
        raise SpecError(f"no allocation meets {', '.join(caps)} together (HiGHS proved it infeasible)")
    if out["status"] == "none":
        raise SpecError(
            f"HiGHS found no allocation within {time_limit_s:g} s ({out['condition']}); raise the time limit"
        )
    status, gap = out["status"], out["gap"]
    chosen = [(s, o) for s, o in enumerate(out["options"]) if o is not None]
    slot_index = {s: i for i, (s, _) in enumerate(chosen)}
    assign = [slot_index[s] for s in out["assignment"]]
    system = System(
        name=name,
        accelerators=tuple(
            _accelerator(dataflows[s], opts[o], f"{dataflows[s].name}{i}", base) for i, (s, o) in enumerate(chosen)
        ),
        budget=Budget(dram_bw_bytes_per_cycle=bw_budget_bytes_per_cycle, pes=pe_budget, area_um2=area_budget_um2),
        sharing=BandwidthSharing.PARTITIONED,
        link=link,
        description=f"allocated by HiGHS from templates {', '.join(d.name for d in dataflows)}",
    )
    sys_table = CostTable(
        compute_cycles=np.stack([table.compute_cycles[s * n_o + o] for s, o in chosen]),
        energy_pj=np.stack([table.energy_pj[s * n_o + o] for s, o in chosen]),
        dram_bytes=np.stack([table.dram_bytes[s * n_o + o] for s, o in chosen]),
        area_um2=np.array([table.area_um2[s * n_o + o] for s, o in chosen]),
    )
    problem = _same_units_problem(networks, system, sys_table, ref_problem)
    e_total = float(sum(problem.energy_pj[u, assign[u]] for u in range(n_u)))
    e_total += sum(problem.transfer_energy_pj(e) for e, (p, c) in enumerate(problem.edges) if assign[p] != assign[c])
    milp = Allocation(
        system=system,
        problem=problem,
        assignment=tuple(assign),
        makespan_bound_cycles=out["T_cycles"],
        energy_pj=e_total,
        status=status,
        gap=gap,
        seconds=time.perf_counter() - t0,
        model_seconds=out["model_seconds"],
        solve_seconds=out["solve_seconds"],
    )
    if objective != "makespan" or check_iterations <= 0:
        return milp
    if candidates is None:
        candidates = shipped_candidates(dataflows, pe_budget, bw_budget_bytes_per_cycle)
    return _best_scheduled(
        milp,
        networks,
        candidates,
        cost_fn,
        max_units_per_task,
        area_budget_um2,
        energy_cap_pj,
        latency_cap_cycles,
        check_iterations,
        t0,
    )


def shipped_candidates(dataflows: Sequence[Dataflow], pe_budget: int, bw_budget: float) -> list[System]:
    """The shipped systems of exactly these templates, with partitioned bandwidth as the MILP allocates it
    (a shared pool is another kind of design), whose PEs and bandwidth slices fit the budgets."""
    from coexplore.dataflows.system import builtin_systems

    want = sorted(d.name for d in dataflows)
    out = []
    for system in builtin_systems().values():
        if system.sharing is not BandwidthSharing.PARTITIONED:
            continue
        bw = sum(system.port_bw_bytes_per_cycle(i) for i in range(len(system.accelerators)))
        if (
            sorted(a.dataflow.name for a in system.accelerators) == want
            and system.pes <= pe_budget
            and bw <= bw_budget + 1e-9
        ):
            out.append(system)
    return out


def _assignment_figures(problem: MappingProblem, assign: Sequence[int]) -> tuple[float, float]:
    """(max of loads and critical path with transfers, energy with transfers) of an assignment: the
    MILP's own figures, for a design it did not choose."""
    d = problem.duration_cycles
    loads = [0.0] * problem.n_accs
    finish = [0.0] * problem.n_units
    preds = problem.predecessors()
    for u in range(problem.n_units):
        a = assign[u]
        loads[a] += float(d[u, a])
        begin = max(
            (
                finish[problem.edges[e][0]] + (problem.transfer_cycles(e) if assign[problem.edges[e][0]] != a else 0)
                for e in preds[u]
            ),
            default=0.0,
        )
        finish[u] = begin + float(d[u, a])
    energy = float(sum(problem.energy_pj[u, assign[u]] for u in range(problem.n_units)))
    energy += sum(problem.transfer_energy_pj(e) for e, (p, c) in enumerate(problem.edges) if assign[p] != assign[c])
    return max(max(loads), max(finish)), energy


def _best_scheduled(
    milp: Allocation,
    networks: Sequence[Network],
    candidates: Sequence[System],
    cost_fn: CostFn,
    max_units_per_task: int | None,
    area_budget_um2: float | None,
    energy_cap_pj: float | None,
    latency_cap_cycles: float | None,
    iterations: int,
    t0: float,
) -> Allocation:
    """List-schedule the MILP's design and every candidate (a fixed decode budget: reproducible); keep
    the shortest makespan that meets the caps, the MILP's on a tie."""
    from coexplore.codesign.schedule import solve_greedy

    def check(problem: MappingProblem):
        res = solve_greedy(problem, time_limit_s=1e6, iterations=iterations, stall_iterations=iterations, seed=0)
        r = res.result
        ok = (latency_cap_cycles is None or r.makespan_cycles <= latency_cap_cycles) and (
            energy_cap_pj is None or r.energy_pj <= energy_cap_pj * (1 + 1e-9)
        )
        return (0 if ok else 1, r.makespan_cycles), res

    best_key, _ = check(milp.problem)
    best, scored = milp, [(milp.system.name, float(best_key[1]))]
    for system in candidates:
        problem = build_problem(networks, system, cost_fn, max_units_per_task=max_units_per_task)
        if area_budget_um2 is not None and float(np.sum(problem.area_um2)) > area_budget_um2:
            continue
        key, res = check(problem)
        scored.append((system.name, float(key[1])))
        if key < best_key:
            bound, energy = _assignment_figures(problem, res.schedule.assignment)
            best_key = key
            best = replace(
                milp,
                system=system,
                problem=problem,
                assignment=tuple(res.schedule.assignment),
                makespan_bound_cycles=bound,
                energy_pj=energy,
                chosen=system.name,
            )
    return replace(best, candidates=tuple(scored), seconds=time.perf_counter() - t0)


def _same_units_problem(
    networks: Sequence[Network], system: System, table: CostTable, ref: MappingProblem
) -> MappingProblem:
    """The networks on ``system`` cut into ``ref``'s units (so the assignment carries over)."""
    ranges = [[(ref.units[u].first, ref.units[u].last) for u in units] for units in ref.task_units()]
    return build_problem(networks, system, table, unit_ranges=ranges)


def _run_isolated(data: dict) -> dict:
    """Solve in a fresh Python process: OR-Tools 9.15 and highspy 1.15 each ship a ``libhighs.so.1``
    (HiGHS 1.12 and 1.15), and whichever loads second in a process fails to import (undefined
    symbols), so HiGHS runs where OR-Tools never loaded. Plain subprocess + pickle, so no caller needs
    a ``__main__`` guard (as multiprocessing's spawn would)."""
    import pickle
    import subprocess
    import sys

    code = "from coexplore.codesign.milp import _child_main; _child_main()"
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(data), capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"allocation MILP process failed: {tail[0]}")
    return pickle.loads(proc.stdout)


def _child_main() -> None:
    import os
    import pickle
    import sys

    data = pickle.load(sys.stdin.buffer)
    result_fd = os.dup(1)
    os.dup2(2, 1)  # anything the solver prints goes to stderr, never into the pickled result
    out = _solve_model(data)
    sys.stdout.flush()
    with os.fdopen(result_fd, "wb") as result:
        result.write(pickle.dumps(out))


def _solve_model(data: dict) -> dict:
    """Build and solve the allocation MILP from plain arrays (runs in the child process)."""
    import pyomo.environ as pyo

    t_model = time.perf_counter()
    dur, energy, area = data["dur"], data["energy"], data["area"]
    n_u, n_s, n_o = dur.shape
    pes, bws, edges, xfer, xfer_e = data["pes"], data["bws"], data["edges"], data["xfer"], data["xfer_e"]
    allow_unused = data["allow_unused"]
    m = pyo.ConcreteModel()
    m.S, m.O, m.U = pyo.RangeSet(0, n_s - 1), pyo.RangeSet(0, n_o - 1), pyo.RangeSet(0, n_u - 1)
    m.y = pyo.Var(m.S, m.O, domain=pyo.Binary)
    m.x = pyo.Var(m.U, m.S, domain=pyo.Binary)
    m.D = pyo.Var(m.U, m.S, domain=pyo.NonNegativeReals)
    m.E = pyo.Var(m.U, m.S, domain=pyo.NonNegativeReals)
    m.f = pyo.Var(m.U, domain=pyo.NonNegativeReals)
    scale = float(dur.max())  # durations in units of the longest one keep HiGHS well conditioned
    m.T = pyo.Var(domain=pyo.NonNegativeReals)
    m.one = pyo.Constraint(
        m.S,
        rule=lambda m, s: (sum(m.y[s, o] for o in m.O) <= 1) if allow_unused else (sum(m.y[s, o] for o in m.O) == 1),
    )
    m.assign = pyo.Constraint(m.U, rule=lambda m, u: sum(m.x[u, s] for s in m.S) == 1)
    m.used = pyo.Constraint(m.U, m.S, rule=lambda m, u, s: m.x[u, s] <= sum(m.y[s, o] for o in m.O))
    m.dur = pyo.Constraint(
        m.U, m.S, m.O, rule=lambda m, u, s, o: m.D[u, s] >= dur[u, s, o] / scale * (m.x[u, s] + m.y[s, o] - 1)
    )
    e_scale = float(energy.max()) or 1.0
    m.en = pyo.Constraint(
        m.U, m.S, m.O, rule=lambda m, u, s, o: m.E[u, s] >= energy[u, s, o] / e_scale * (m.x[u, s] + m.y[s, o] - 1)
    )
    m.pes = pyo.Constraint(expr=sum(pes[o] * m.y[s, o] for s in m.S for o in m.O) <= data["pe_budget"])
    m.bw = pyo.Constraint(expr=sum(bws[o] * m.y[s, o] for s in m.S for o in m.O) <= data["bw_budget"] + 1e-9)
    if data["area_budget"] is not None:
        m.area = pyo.Constraint(
            expr=sum(area[s, o] / 1e6 * m.y[s, o] for s in m.S for o in m.O) <= data["area_budget"] / 1e6
        )
    m.loads = pyo.Constraint(m.S, rule=lambda m, s: m.T >= sum(m.D[u, s] for u in m.U))
    m.fin0 = pyo.Constraint(m.U, rule=lambda m, u: m.f[u] >= sum(m.D[u, s] for s in m.S))
    m.path = pyo.ConstraintList()
    for e, (p, c) in enumerate(edges):
        m.path.add(m.f[c] >= m.f[p] + sum(m.D[c, s] for s in m.S))
        if xfer[e] > 0:
            for s in range(n_s):
                m.path.add(m.f[c] >= m.f[p] + sum(m.D[c, r] for r in m.S) + xfer[e] / scale * (m.x[p, s] - m.x[c, s]))
    m.span = pyo.Constraint(m.U, rule=lambda m, u: m.T >= m.f[u])
    # link energy: cross[e] >= x[p,s] - x[c,s]
    m.cross = pyo.Var(range(len(edges)), domain=pyo.NonNegativeReals)
    m.crossc = pyo.ConstraintList()
    for e, (p, c) in enumerate(edges):
        for s in range(n_s):
            m.crossc.add(m.cross[e] >= m.x[p, s] - m.x[c, s])
    total_e = sum(m.E[u, s] for u in m.U for s in m.S) + sum(
        xfer_e[e] / e_scale * m.cross[e] for e in range(len(edges))
    )
    if data["energy_cap"] is not None:
        m.ecap = pyo.Constraint(expr=total_e <= data["energy_cap"] / e_scale)
    if data["latency_cap"] is not None:
        m.lcap = pyo.Constraint(expr=m.T <= data["latency_cap"] / scale)
    # identical slots (same template): options in non-increasing order, so no two labelings of one design
    m.sym = pyo.ConstraintList()
    for s in range(n_s - 1):
        if data["same_template"][s]:
            m.sym.add(sum(o * m.y[s, o] for o in m.O) >= sum(o * m.y[s + 1, o] for o in m.O))
    n_e_total = max(1, n_u)
    if data["objective"] == "makespan":
        m.obj = pyo.Objective(expr=m.T + 1e-4 * total_e / n_e_total)
    else:
        m.obj = pyo.Objective(expr=total_e + 1e-4 * m.T)

    model_seconds = time.perf_counter() - t_model
    t_solve = time.perf_counter()
    opt = pyo.SolverFactory("appsi_highs")
    opt.config.mip_gap = data["gap_limit"]
    res = opt.solve(m, load_solutions=False, timelimit=data["time_limit"], options={"mip_rel_gap": data["gap_limit"]})
    cond = str(res.solver.termination_condition)
    out = {"condition": cond, "model_seconds": model_seconds}
    if cond in ("infeasible", "infeasibleOrUnbounded"):
        return {**out, "status": "infeasible", "solve_seconds": time.perf_counter() - t_solve}
    try:
        m.solutions.load_from(res)
    except (RuntimeError, ValueError):
        return {**out, "status": "none", "solve_seconds": time.perf_counter() - t_solve}
    upper, lower = res.problem.upper_bound, res.problem.lower_bound
    gap = None
    if upper is not None and lower is not None and math.isfinite(upper) and math.isfinite(lower) and upper > 0:
        gap = max(0.0, (upper - lower) / abs(upper))
    options = [next((o for o in range(n_o) if pyo.value(m.y[s, o]) > 0.5), None) for s in range(n_s)]
    assignment = [next(s for s in range(n_s) if pyo.value(m.x[u, s]) > 0.5) for u in range(n_u)]
    return {
        **out,
        "status": "optimal" if cond == "optimal" else "feasible",
        "gap": gap,
        "options": options,
        "assignment": assignment,
        "T_cycles": float(pyo.value(m.T)) * scale,
        "solve_seconds": time.perf_counter() - t_solve,
    }


def template_combinations(templates: Sequence[str], sizes: Sequence[int] = (1, 2)) -> list[tuple[str, ...]]:
    """Every multiset of templates of the given sizes (a pair may repeat a template: homogeneous)."""
    out: list[tuple[str, ...]] = []
    for k in sizes:
        out += list(itertools.combinations_with_replacement(list(templates), k))
    return out
