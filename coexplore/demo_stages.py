"""The demo's later stages: the three tiers side by side, a heterogeneous system, one RTL check.

Each stage returns markdown for the report and never raises for a missing optional tool: a stage that
cannot run here (no iverilog, no OR-Tools) says so in the report instead.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Network, conv
from coexplore.report import markdown_table


def simulator_crosscheck(net: Network, accs: Sequence[Accelerator]) -> str:
    """Analytical latency vs the cycle-level simulator (profile rtl) for ``net`` on each accelerator."""
    from coexplore.sim.analytical import evaluate_network
    from coexplore.sim.cycle import simulate_network

    rows = []
    for acc in accs:
        a = evaluate_network(net, acc, "rtl")
        s = simulate_network(net, acc, "rtl")
        rows.append(
            {
                "template": acc.dataflow.name,
                "analytical_cycles": a.latency_cycles,
                "simulated_cycles": s.total_cycles,
                "stall_cycles": s.stall_cycles,
                "error_pct": 100.0 * (a.latency_cycles / s.total_cycles - 1.0),
            }
        )
    return "\n".join(
        [
            f"{net.name}, every layer, analytical model vs cycle-level simulator (profile `rtl`, the generated "
            "hardware's timing); `coexplore validate` runs the full suite.",
            "",
            markdown_table(
                rows,
                ["template", "analytical_cycles", "simulated_cycles", "stall_cycles", "error_pct"],
                {"analytical_cycles": ",.0f", "simulated_cycles": ",", "stall_cycles": ",", "error_pct": "+.2f"},
            ),
        ]
    )


def system_schedule(networks: Sequence[Network], system_name: str, out: Path, time_limit_s: float = 10.0) -> str:
    """Schedule ``networks`` at once on a shipped heterogeneous system with CP-SAT; Gantt chart."""
    from coexplore.codesign.schedule import solve
    from coexplore.codesign.whatif import plot_gantt
    from coexplore.dataflows.system import get_system
    from coexplore.sim.system import analytical_costs, build_problem

    system = get_system(system_name)
    problem = build_problem(list(networks), system, analytical_costs("rtl"))
    res = solve(problem, "exact", time_limit_s=time_limit_s)
    greedy = solve(problem, "greedy", time_limit_s=2.0)
    r = res.result
    plot_gantt(
        problem,
        r,
        out / "gantt.png",
        title=f"{', '.join(problem.task_names)} on {system.name}: makespan "
        f"{r.makespan_cycles:,.0f} cycles ({res.solver}, {res.status})",
    )
    rows = [
        {"task": name, "latency_cycles": r.task_latency_cycles[t], "energy_uj": r.task_energy_pj[t] / 1e6}
        for t, name in enumerate(problem.task_names)
    ]
    subs = ", ".join(f"{a.name} = {a.dataflow.name} {a.rows}x{a.cols}" for a in system.accelerators)
    gap = "unknown" if res.gap is None else f"{100 * res.gap:.2f} %"
    return "\n".join(
        [
            f"{', '.join(n.name for n in networks)} running at once on `{system.name}`: {subs}. CP-SAT: "
            f"{res.status}, gap {gap}, {res.seconds:.1f} s; makespan {r.makespan_cycles:,.0f} cycles, "
            f"energy {r.energy_pj / 1e6:,.1f} uJ, area {r.area_um2 / 1e6:.2f} mm2. The Herald-like list scheduler "
            f"reaches {greedy.result.makespan_cycles:,.0f} cycles "
            f"({100 * (greedy.result.makespan_cycles / r.makespan_cycles - 1):+.2f} %).",
            "",
            markdown_table(
                rows, ["task", "latency_cycles", "energy_uj"], {"latency_cycles": ",.0f", "energy_uj": ",.1f"}
            ),
            "",
            "![schedule](gantt.png)",
        ]
    )


def rtl_check(out: Path) -> str:
    """Emit a 4x4 weight-stationary array and run one strided, padded conv on it in cocotb (Icarus)."""
    if shutil.which("iverilog") is None:
        return "Skipped: Icarus Verilog (`iverilog`) is not installed (`make` installs it when run as root)."
    from coexplore.dataflows.io import get_template
    from coexplore.rtl.verify import verify_layer
    from coexplore.sim.cycle import simulate_layer

    acc = Accelerator(dataflow=get_template("systolic-ws"), rows=4, cols=4, dram_bw_bytes_per_cycle=2.0)
    layer = conv("demo-conv", c=3, k=6, h=8, r=3, stride=2, pad=1)
    expected = int(simulate_layer(layer, acc, "rtl").total_cycles)
    work = Path(tempfile.mkdtemp(prefix="coexplore_demo_rtl_"))
    try:
        result, program = verify_layer(acc, layer, work, expected_cycles=expected)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed = result.passed and result.mismatches == 0 and result.rtl_cycles == expected
    return (
        f"{'PASSED' if passed else 'FAILED'}: {layer.describe()} on the generated {acc.label} RTL "
        f"(2-byte streams, so memory stalls): {result.mismatches} of {program.expected_out.size} int32 outputs "
        f"differ from numpy; {result.rtl_cycles} cycles measured in the RTL vs {expected} from the cycle-level "
        f"simulator. `coexplore verify` runs the same check for any layer and accelerator."
    )
