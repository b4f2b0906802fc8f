"""``coexplore system`` end to end: JSON shape, Gantt file, and bad input as one line with non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import Finished, run_cli

GOOD = """
name: cli-pair
budget: {pes: 4096, dram_bw_bytes_per_cycle: 64}
bandwidth: partitioned
sub_accelerators:
  - {name: dla, template: nvdla, rows: 64, cols: 32, dram_bw_bytes_per_cycle: 32}
  - {name: sdn, template: shidiannao, rows: 32, cols: 64, dram_bw_bytes_per_cycle: 32}
"""


def _run(*args: str) -> Finished:
    return run_cli("system", *args)


def _assert_one_line_error(proc: Finished, fragment: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0], proc.stderr


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (
            lambda t: t.replace("bandwidth: partitioned", "bandwidth: partitioned\ncolour: red"),
            "unknown field 'colour'",
        ),
        (lambda t: t.replace("template: shidiannao", "template: tpu"), "unknown template 'tpu'"),
        (lambda t: t.replace("rows: 64, cols: 32", "rows: -64, cols: 32"), "'sub_accelerators.0.rows' = -64"),
        (
            lambda t: t.replace("rows: 64, cols: 32", "rows: 64, cols: 48"),
            "PE budget 4096 exceeded: sub-accelerators need 5120 PEs",
        ),
        (
            lambda t: t.replace("dram_bw_bytes_per_cycle: 32}", "dram_bw_bytes_per_cycle: 48}"),
            "bandwidth budget 64 bytes/cycle exceeded: sub-accelerators need 96 bytes/cycle",
        ),
    ],
)
def test_bad_system_yaml_through_the_cli(tmp_path: Path, edit, fragment: str) -> None:
    path = tmp_path / "sys.yaml"
    path.write_text(edit(GOOD))
    _assert_one_line_error(_run("--models", "resnet9", "--system", str(path)), fragment)


@pytest.mark.heavy
def test_other_bad_input_through_the_cli() -> None:
    _assert_one_line_error(_run("--models", "resnet9", "--system", "no-such-system"), "unknown system 'no-such-system'")
    _assert_one_line_error(_run("--models", "resnet9"), "give either --system SYSTEM.yaml or --allocate TEMPLATES")
    _assert_one_line_error(
        _run("--models", "resnet9", "--system", "nasaic-pair", "--latency-cap", "10"),
        "latency cap 10 cycles cannot be met: task 'resnet9' alone needs",
    )


@pytest.mark.heavy
def test_json_schedule_and_gantt(tmp_path: Path) -> None:
    gantt = tmp_path / "g.png"
    proc = _run(
        "--models",
        "resnet9,unet",
        "--system",
        "nasaic-pair",
        "--solver",
        "greedy",
        "--time-limit",
        "1",
        "--json",
        "--gantt",
        str(gantt),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"makespan_cycles", "energy_pj", "area_um2", "tasks", "schedule", "solver"} <= set(out)
    assert set(out["solver"]) >= {"name", "status", "seconds", "gap"} and out["solver"]["name"] == "list-greedy"
    assert [t["name"] for t in out["tasks"]] == ["resnet9", "unet"]
    assert out["makespan_cycles"] == max(t["latency_cycles"] for t in out["tasks"])
    ends = {}
    for entry in out["schedule"]:
        assert entry["accelerator"] in ("dla", "sdn") and entry["end_cycle"] > entry["start_cycle"]
        ends.setdefault(entry["accelerator"], []).append((entry["start_cycle"], entry["end_cycle"]))
    for spans in ends.values():  # one unit at a time per sub-accelerator
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert gantt.stat().st_size > 1000


@pytest.mark.heavy
def test_exact_solver_reports_its_status_and_gap() -> None:
    proc = _run("--models", "resnet9,resnet18", "--system", "nasaic-pair", "--time-limit", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    solver = json.loads(proc.stdout)["solver"]
    assert solver["name"] == "cp-sat" and solver["status"] in ("optimal", "feasible")
    assert 0.0 <= solver["gap"] <= 1.0 and (solver["status"] != "optimal" or solver["gap"] == 0.0)


@pytest.mark.heavy
def test_sweep_tasks_writes_the_system_study(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "coexplore.cli",
            "sweep",
            "--tasks",
            "resnet9,unet",
            "--templates",
            "nvdla,shidiannao",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "system_sweep.json").read_text())
    assert len(data["designs"]) == 2 + 3 * 2 + 2 * 2 * 2  # singles, hetero pair x 3 splits, 2 homo pairs x 2
    assert any(d["pareto"] for d in data["designs"]) and (tmp_path / "system_pareto.png").exists()


@pytest.mark.heavy
def test_seeded_exact_runs_repeat_and_each_task_reports_its_own_finish() -> None:
    from click.testing import CliRunner

    from coexplore.cli_system import system

    args = ["--models", "resnet9,unet", "--system", "nasaic-pair", "--time-limit", "5", "--seed", "3", "--json"]
    runs = []
    for _ in range(2):  # in process: the second run skips the imports
        out = CliRunner().invoke(system, args)
        assert out.exit_code == 0, out.output
        runs.append(json.loads(out.output))
    first, second = runs
    assert first["solver"]["deterministic"] is True and first["solver"]["schedule_from"] in ("cp-sat", "greedy")
    assert (first["makespan_cycles"], first["energy_pj"]) == (second["makespan_cycles"], second["energy_pj"])
    assert first["schedule"] == second["schedule"]
    for task in first["tasks"]:  # each task's latency is its own last unit's end, not the makespan
        ends = [e["end_cycle"] for e in first["schedule"] if e["task"] == task["name"]]
        assert task["latency_cycles"] == max(ends) <= first["makespan_cycles"]
    assert max(t["latency_cycles"] for t in first["tasks"]) == first["makespan_cycles"]
