"""``coexplore system``: several networks on a heterogeneous system, mapped and scheduled."""

from __future__ import annotations

import click

from coexplore.cli_common import PROFILE, emit_json, load_workload, user_errors
from coexplore.models.ir import CoexploreError


def _split(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise CoexploreError(f"{what}: empty list (expected comma-separated names)")
    return items


def _floats(text: str, what: str) -> list[float]:
    out = []
    for item in _split(text, what):
        try:
            out.append(float(item))
        except ValueError:
            raise CoexploreError(f"{what}: {item!r} is not a number") from None
    return out


@click.command()
@click.option("--models", required=True, help="Comma-separated workloads, one per task (zoo names, .py or .onnx).")
@click.option(
    "--system",
    "system_spec",
    default=None,
    help="System YAML, or a shipped system name (nasaic-pair, dla-sdn-shared, tri-template).",
)
@click.option(
    "--allocate",
    "allocate_templates",
    default=None,
    help="Instead of --system: templates (comma-separated) whose PEs and bandwidth the MILP chooses.",
)
@click.option("--pe-budget", type=int, default=4096, show_default=True, help="With --allocate: total PEs.")
@click.option(
    "--bw-budget", type=float, default=64.0, show_default=True, help="With --allocate: DRAM bytes/cycle in total."
)
@click.option(
    "--solver",
    type=click.Choice(["exact", "greedy"]),
    default="exact",
    show_default=True,
    help="exact: CP-SAT with proven gap; greedy: Herald-like list scheduling.",
)
@click.option(
    "--time-limit",
    "time_limit_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds for the solver; on expiry the best schedule found returns with its gap.",
)
@click.option(
    "--gap",
    "gap_limit",
    type=float,
    default=0.0,
    show_default=True,
    help="Exact solver: stop once the proven relative gap is at most this.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Reproducible run: the same schedule every time for a seed (exact: CP-SAT stops on its "
    "deterministic time, one worker; the wall clock only at 3x --time-limit, then reported).",
)
@click.option(
    "--objective",
    type=click.Choice(["makespan", "weighted"]),
    default="makespan",
    show_default=True,
    help="Minimize the makespan, or the weighted sum of task latencies (--weights).",
)
@click.option("--weights", default=None, help="Task weights for --objective weighted (default 1 each).")
@click.option(
    "--max-units",
    type=int,
    default=20,
    show_default=True,
    help="Group each network into at most this many segments of consecutive layers (0: no grouping).",
)
@click.option(
    "--bw-modes",
    default="1,0.5,0.25",
    show_default=True,
    help="Bandwidth modes (fractions of a port) a unit may run in when the shared DRAM pool binds.",
)
@click.option("--latency-cap", type=float, default=None, help="Makespan limit in cycles (a spec).")
@click.option("--energy-cap", type=float, default=None, help="Energy limit in pJ (a spec).")
@click.option("--profile", type=PROFILE, default="rtl", show_default=True, help="Timing profile of the cost model.")
@click.option(
    "--costs",
    "cost_model",
    type=click.Choice(["analytical", "cycle"]),
    default="analytical",
    show_default=True,
    help="Per-layer cycles and DRAM bytes from the analytical model or the cycle "
    "simulator (slower); energy and area always analytical.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--gantt", "gantt_path", default=None, help="Draw the schedule to this PNG file.")
@user_errors
def system(
    models: str,
    system_spec: str | None,
    allocate_templates: str | None,
    pe_budget: int,
    bw_budget: float,
    solver: str,
    time_limit_s: float,
    gap_limit: float,
    seed: int | None,
    objective: str,
    weights: str | None,
    max_units: int,
    bw_modes: str,
    latency_cap: float | None,
    energy_cap: float | None,
    profile: str,
    cost_model: str,
    as_json: bool,
    gantt_path: str | None,
) -> None:
    """Map and schedule several networks (one per task) on a heterogeneous multi-accelerator system.

    Prints each task's latency, the makespan, energy, area and the schedule; with --json
    {"makespan_cycles", "energy_pj", "area_um2", "tasks", "schedule", "solver", ...}.
    """
    if (system_spec is None) == (allocate_templates is None):
        raise CoexploreError("give either --system SYSTEM.yaml or --allocate TEMPLATES")
    if time_limit_s <= 0:
        raise CoexploreError(f"--time-limit {time_limit_s:g}: expected a positive number of seconds")
    if max_units < 0:
        raise CoexploreError(f"--max-units {max_units}: expected 0 (no grouping) or a positive count")
    from coexplore.dataflows.io import get_profile
    from coexplore.dataflows.system import get_system, system_to_dict

    timing = get_profile(profile)
    sys_ = get_system(system_spec) if system_spec is not None else None  # bad YAML fails before any tracing
    networks = [load_workload(name) for name in _split(models, "--models")]
    task_weights = _floats(weights, "--weights") if weights else None
    if task_weights is not None and len(task_weights) != len(networks):
        raise CoexploreError(f"--weights: {len(task_weights)} given, expected one per model ({len(networks)})")
    levels = _floats(bw_modes, "--bw-modes")
    from coexplore.codesign.schedule import solve
    from coexplore.sim.system import analytical_costs, build_problem, cycle_costs, simulate

    costs = (cycle_costs if cost_model == "cycle" else analytical_costs)(timing)
    allocation = None
    if sys_ is not None:
        problem = build_problem(
            networks, sys_, costs, max_units_per_task=max_units or None, task_weights=task_weights, bw_levels=levels
        )
    else:
        from coexplore.codesign.milp import allocate

        allocation = allocate(
            networks,
            _split(allocate_templates or "", "--allocate"),
            pe_budget=pe_budget,
            bw_budget_bytes_per_cycle=bw_budget,
            costs=costs,
            max_units_per_task=max_units or None,
            energy_cap_pj=energy_cap,
            latency_cap_cycles=latency_cap,
            time_limit_s=max(10.0, time_limit_s),
        )
        sys_ = allocation.system
        problem = allocation.problem
        if task_weights is not None:
            from dataclasses import replace

            problem = replace(problem, task_weights=tuple(task_weights))
    res = solve(
        problem,
        solver,
        objective,
        time_limit_s=time_limit_s,
        gap_limit=gap_limit,
        latency_cap_cycles=latency_cap,
        energy_cap_pj=energy_cap,
        seed=seed or 0,
        deterministic=seed is not None,
    )
    r = res.result
    fair = simulate(problem, res.schedule.assignment, r.orders(problem.n_accs), policy="fair")
    payload = _payload(problem, res, fair, system_to_dict(sys_), allocation)
    if gantt_path:
        from coexplore.codesign.whatif import plot_gantt

        plot_gantt(
            problem,
            r,
            gantt_path,
            title=f"{', '.join(problem.task_names)} on {sys_.name}: makespan "
            f"{r.makespan_cycles:,.0f} cycles ({res.solver}, {res.status})",
        )
    if as_json:
        emit_json(payload, seeds={"solver": seed or 0})  # CP-SAT's and the list scheduler's seed
        return
    _print_text(payload, gantt_path)


def _payload(problem, res, fair, system_dict: dict, allocation) -> dict:
    r = res.result
    tasks = []
    for t, name in enumerate(problem.task_names):
        tasks.append(
            {
                "name": name,
                "latency_cycles": r.task_latency_cycles[t],
                "energy_pj": r.task_energy_pj[t],
                "units": sum(1 for u in problem.units if u.task == t),
            }
        )
    schedule = []
    for tm in sorted(r.timings, key=lambda x: (x.start_cycle, x.acc)):
        unit = problem.units[tm.unit]
        names = problem.layer_names[unit.task] if problem.layer_names else ()
        schedule.append(
            {
                "task": problem.task_names[unit.task],
                "unit": unit.name,
                "layers": [names[unit.first], names[unit.last]] if names else [unit.first, unit.last],
                "accelerator": problem.acc_names[tm.acc],
                "bw_mode": problem.bw_levels[tm.mode],
                "start_cycle": tm.start_cycle,
                "end_cycle": tm.end_cycle,
            }
        )
    c = r.contention
    payload = {
        "makespan_cycles": r.makespan_cycles,
        "energy_pj": r.energy_pj,
        "area_um2": r.area_um2,
        "tasks": tasks,
        "schedule": schedule,
        "solver": res.solver_json(),
        "contention": {
            "pool_bw_bytes_per_cycle": c.pool_bw_bytes_per_cycle,
            "peak_bw_bytes_per_cycle": c.peak_bw_bytes_per_cycle,
            "mean_bw_bytes_per_cycle": c.mean_bw_bytes_per_cycle,
            "mode_slowdown_cycles": c.slowdown_cycles,
            "fair_sharing_makespan_cycles": fair.makespan_cycles,
            "fair_sharing_slowdown_cycles": fair.contention.slowdown_cycles,
        },
        "transfers": r.transfers,
        "transfer_energy_pj": r.transfer_energy_pj,
        "system": system_dict,
    }
    if allocation is not None:
        payload["allocation"] = {
            "solver": allocation.solver,
            "status": allocation.status,
            "gap": allocation.gap,
            "seconds": round(allocation.seconds, 3),
            "makespan_bound_cycles": allocation.makespan_bound_cycles,
            "chosen": allocation.chosen,
            "candidates": [
                {"design": name, "list_scheduled_makespan_cycles": value} for name, value in allocation.candidates
            ],
        }
    return payload


def _print_text(p: dict, gantt_path: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s = p["solver"]
    gap = "n/a" if s["gap"] is None else f"{100 * s['gap']:.2f} %"
    console.print(
        f"system {p['system']['name']}: makespan {p['makespan_cycles']:,.0f} cycles, "
        f"energy {p['energy_pj'] / 1e6:,.1f} uJ, area {p['area_um2'] / 1e6:.3f} mm2"
    )
    found = (
        "" if s["schedule_from"] == s["name"] else f" (schedule from {s['schedule_from']}: CP-SAT found none better)"
    )
    if s["deterministic"]:
        found += ", reproducible for its seed"
    console.print(f"solver {s['name']}: {s['status']}, gap {gap}, {s['seconds']:.2f} s{found}")
    if "allocation" in p:
        a = p["allocation"]
        subs = ", ".join(
            f"{x['name']} {x['rows']}x{x['cols']} @ {x.get('dram_bw_bytes_per_cycle', 0):g} B/cycle"
            for x in p["system"]["sub_accelerators"]
        )
        console.print(f"allocation (HiGHS, {a['status']}, {a['seconds']:.1f} s): {subs}")
        if a["candidates"]:
            tried = ", ".join(f"{c['design']} {c['list_scheduled_makespan_cycles']:,.0f}" for c in a["candidates"])
            console.print(f"designs list-scheduled (cycles): {tried}; kept {a['chosen']}")
    tasks = Table(title="tasks")
    for col in ("task", "latency (cycles)", "energy (uJ)", "units"):
        tasks.add_column(col, justify="left" if col == "task" else "right")
    for t in p["tasks"]:
        tasks.add_row(t["name"], f"{t['latency_cycles']:,.0f}", f"{t['energy_pj'] / 1e6:,.1f}", str(t["units"]))
    console.print(tasks)
    sched = Table(title="schedule")
    for col in ("start", "end", "sub-accelerator", "bw", "task", "layers"):
        sched.add_column(col, justify="right" if col in ("start", "end", "bw") else "left")
    for e in p["schedule"]:
        first, last = e["layers"]
        sched.add_row(
            f"{e['start_cycle']:,.0f}",
            f"{e['end_cycle']:,.0f}",
            e["accelerator"],
            f"{e['bw_mode']:g}",
            e["task"],
            str(first) if first == last else f"{first} .. {last}",
        )
    console.print(sched)
    c = p["contention"]
    console.print(
        f"DRAM pool {c['pool_bw_bytes_per_cycle']:g} B/cycle: peak {c['peak_bw_bytes_per_cycle']:.1f}, "
        f"mean {c['mean_bw_bytes_per_cycle']:.1f}; the same order under fair sharing: "
        f"{c['fair_sharing_makespan_cycles']:,.0f} cycles; {p['transfers']} link transfers"
    )
    if gantt_path:
        console.print(f"Gantt chart: {gantt_path}")
