"""Mapping and scheduling of several networks on heterogeneous systems: solve times, gaps, het vs hom.

Part 1, per task mix (three zoo networks, each grouped into at most --max-units segments) on each
three-sub-accelerator system:
  exact (CP-SAT) with a 1 % gap limit: seconds, status, proven gap; the heuristic (Herald-like list
  scheduling) with its own time and its makespan over the exact solver's best.
Part 2, heterogeneous vs homogeneous (as Herald and NASAIC compare): for each mix, the what-if sweep
  (every template alone with the whole budget, every pair with PE splits 1/4, 1/2, 3/4 and the DRAM pool
  shared or halved; greedy schedules), then the best two-template design and the best one-template
  design (alone or a homogeneous pair) re-solved exactly; printed with the latency reduction.

Usage: .venv/bin/python benchmarks/bench_mapping.py [--quick] [--time-limit 30] [--max-units 20]
Figures depend on the machine's load; CP-SAT uses COEXPLORE_CPSAT_WORKERS workers (default 8).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from coexplore.codesign.schedule import solve_exact, solve_greedy
from coexplore.codesign.whatif import run_system_sweep
from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.system import BandwidthSharing, Budget, System, array_shape, get_system
from coexplore.models.zoo import get_network
from coexplore.sim.system import analytical_costs, build_problem

MIXES = [
    ("resnet9", "unet", "mobilenetv2"),
    ("resnet18", "resnet9", "mobilenetv2"),
    ("resnet18", "unet", "vit"),
    ("resnet9", "resnet18", "unet"),  # three CNNs competing for the weight-stationary array
    ("mobilenetv2", "vit", "resnet18"),
]
SYSTEMS = ("tri-partitioned", "tri-template")
HET_MIXES = [("resnet9", "unet"), ("resnet9", "unet", "mobilenetv2"), ("resnet18", "mobilenetv2", "vit")]
TEMPLATES = ("nvdla", "shidiannao", "eyeriss", "systolic-os", "systolic-ws", "systolic-is")


def part1(mixes, systems, time_limit: float, max_units: int) -> None:
    print(
        f"== exact vs heuristic: {len(mixes)} task mixes x {len(systems)} systems, <= {max_units} units/task, "
        f"exact stops at a proven 1 % gap or {time_limit:g} s =="
    )
    head = (
        f"{'mix':34s} {'system':16s} {'units':>9s} {'exact s':>8s} {'status':>9s} {'gap %':>6s} "
        f"{'makespan':>11s} {'greedy s':>8s} {'greedy +%':>9s}"
    )
    print(head)
    costs = analytical_costs()
    worst_gap, worst_heur, slowest, heur = 0.0, 0.0, 0.0, []
    for mix in mixes:
        nets = [get_network(n) for n in mix]
        for name in systems:
            problem = build_problem(nets, get_system(name), costs, max_units_per_task=max_units)
            g = solve_greedy(problem)
            e = solve_exact(problem, time_limit_s=time_limit, gap_limit=0.01, hint=g.schedule)
            over = g.objective_value / e.objective_value - 1.0
            heur.append(over)
            worst_gap, worst_heur, slowest = max(worst_gap, e.gap), max(worst_heur, over), max(slowest, e.seconds)
            units = "+".join(str(len(u)) for u in problem.task_units())
            print(
                f"{','.join(mix):34s} {name:16s} {units:>9s} {e.seconds:8.1f} {e.status:>9s} {100 * e.gap:6.2f} "
                f"{e.objective_value:11,.0f} {g.seconds:8.1f} {100 * over:9.2f}",
                flush=True,
            )
    print(
        f"worst exact gap {100 * worst_gap:.2f} %, slowest exact solve {slowest:.1f} s; heuristic over exact: "
        f"mean {100 * sum(heur) / len(heur):.2f} %, worst {100 * worst_heur:.2f} %"
    )


def _system_from_row(row: dict, pe_budget: int, bw: float) -> System:
    templates = row["templates"].split("+")
    pes = [int(p) for p in row["pes"].split("+")]
    slices = None if row["bw"] == "shared" else [float(b) for b in row["bw"].split("+")]
    accs = []
    for i, (t, p) in enumerate(zip(templates, pes)):
        r, c = array_shape(p)
        accs.append(
            Accelerator(
                get_template(t),
                r,
                c,
                dram_ports="shared",
                name=f"{t}{i}",
                dram_bw_bytes_per_cycle=None if slices is None else slices[i],
            )
        )
    sharing = BandwidthSharing.PARTITIONED if slices is not None and len(accs) > 1 else BandwidthSharing.SHARED
    return System(row["design"], tuple(accs), Budget(dram_bw_bytes_per_cycle=bw, pes=pe_budget), sharing)


def part2(mixes, templates, time_limit: float, max_units: int, pe_budget: int = 4096, bw: float = 64.0) -> None:
    print(f"\n== heterogeneous vs homogeneous: {pe_budget} PEs, {bw:g} B/cycle, templates {', '.join(templates)} ==")
    costs = analytical_costs()
    for mix in mixes:
        nets = [get_network(n) for n in mix]
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rows = run_system_sweep(
                nets,
                tmp,
                pe_budget=pe_budget,
                bw_budget_bytes_per_cycle=bw,
                templates=templates,
                max_units_per_task=max_units,
                time_limit_s=0.5,
                plot=False,
                progress=False,
            )
        sweep_s = time.perf_counter() - t0
        best = {}
        for flag in (True, False):
            row = min((r for r in rows if r["heterogeneous"] == flag), key=lambda r: r["makespan_cycles"])
            problem = build_problem(nets, _system_from_row(row, pe_budget, bw), costs, max_units_per_task=max_units)
            e = solve_exact(problem, time_limit_s=time_limit, gap_limit=0.01)
            best[flag] = (row, e)
        (hr, he), (orow, oe) = best[True], best[False]
        print(f"{','.join(mix)}: {len(rows)} designs swept in {sweep_s:.0f} s")
        print(
            f"  best heterogeneous: {hr['design']:48s} makespan {he.objective_value:12,.0f} cycles "
            f"({he.status}, gap {100 * he.gap:.2f} %), energy {he.result.energy_pj / 1e6:,.0f} uJ"
        )
        print(
            f"  best homogeneous:   {orow['design']:48s} makespan {oe.objective_value:12,.0f} cycles "
            f"({oe.status}, gap {100 * oe.gap:.2f} %), energy {oe.result.energy_pj / 1e6:,.0f} uJ"
        )
        print(
            f"  heterogeneous latency reduction: {100 * (1 - he.objective_value / oe.objective_value):.1f} %, "
            f"energy ratio hom/het {oe.result.energy_pj / he.result.energy_pj:.2f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two mixes, one system, two templates pairs")
    ap.add_argument("--time-limit", type=float, default=30.0, help="exact solver seconds per solve")
    ap.add_argument("--max-units", type=int, default=20, help="segments per network")
    ap.add_argument("--skip-part2", action="store_true")
    args = ap.parse_args()
    mixes = MIXES[:2] if args.quick else MIXES
    systems = SYSTEMS[:1] if args.quick else SYSTEMS
    part1(mixes, systems, args.time_limit, args.max_units)
    if not args.skip_part2:
        part2(
            HET_MIXES[:1] if args.quick else HET_MIXES,
            TEMPLATES[:3] if args.quick else TEMPLATES,
            args.time_limit,
            args.max_units,
        )


if __name__ == "__main__":
    main()
