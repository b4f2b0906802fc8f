"""The commands agree with each other (issue 12, item 6): name options list their choices, every --json
is versioned and carries its seeds with whole cycle counts, verify states the DRAM width it used, and a
system sweep refuses the accelerator-sweep flags it would ignore."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from coexplore.cli import cli

REPO = Path(__file__).resolve().parents[1]
TRI = str(REPO / "dataflows" / "systems" / "tri-template.yaml")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _one_line_error(args: list[str], fragment: str) -> None:
    code, out = _run(*args)
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert code != 0 and "Traceback" not in out and len(lines) == 1, out
    assert fragment in lines[0], out


def _cycle_counts(obj: Any, key: str | None = None) -> list[tuple[str, Any]]:
    """Every value under a key naming cycles (``cycles``, ``*_cycles``, ``*_cycle``), lists walked."""
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in _cycle_counts(v, str(k))]
    if isinstance(obj, list):
        return [kv for v in obj for kv in _cycle_counts(v, key)]
    if key is not None and (key == "cycles" or key.endswith(("_cycles", "_cycle"))) and obj is not None:
        return [(key, obj)]
    return []


@pytest.mark.parametrize(
    "command, flag, names",
    [
        ("evaluate", "--template", "[eyeriss|nvdla|shidiannao|systolic-is|systolic-os|systolic-ws|FILE.yaml]"),
        ("evaluate", "--profile", "[ideal|rtl|scalesim]"),
        ("simulate", "--template", "|systolic-ws|"),
        ("verify", "--profile", "[ideal|rtl|scalesim]"),
        ("system", "--profile", "[ideal|rtl|scalesim]"),
        ("sweep", "--profile", "[ideal|rtl|scalesim]"),
        ("sweep", "--templates", "[eyeriss|nvdla|shidiannao|systolic-is|systolic-os|systolic-ws],..."),
        ("validate", "--profile", "[ideal|rtl|scalesim],..."),
        ("validate", "--templates", "[eyeriss|nvdla|shidiannao|systolic-is|systolic-os|systolic-ws],..."),
    ],
)
def test_help_lists_the_choices_of_template_and_profile(command: str, flag: str, names: str) -> None:
    code, out = _run(command, "--help")
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.strip().startswith(flag + " "))
    assert names in line, line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["system", "--models", "resnet9", "--system", TRI, "--solver", "greedy", "--profile", "fast"],
            "unknown timing profile 'fast' (expected one of ideal, rtl, scalesim)",
        ),
        (["validate", "--profile", "fast", "--limit", "1"], "unknown timing profile 'fast' (expected one of"),
        (["validate", "--templates", "tpu", "--limit", "1"], "unknown template 'tpu' (expected one of eyeriss,"),
        (["sweep", "--tasks", "resnet9", "--templates", "tpu"], "unknown template 'tpu' (expected one of eyeriss,"),
        (["sweep", "--model", "resnet9", "--profile", "fast"], "unknown timing profile 'fast' (expected one of"),
    ],
)
def test_a_bad_name_lists_the_choices_in_one_line(args: list[str], fragment: str) -> None:
    _one_line_error(args, fragment)


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--model", "resnet18"),
        ("--layer", "gemm:m=4,k=4,n=4"),
        ("--input-shape", "1x3x32x32"),
        ("--sizes", "8x8"),
        ("--dram-bw", "8"),
        ("--sram-kb", "32"),
        ("--noc-bw", "8"),
    ],
)
def test_sweep_tasks_refuses_each_flag_it_ignores(flag: str, value: str) -> None:
    _one_line_error(["sweep", "--tasks", "resnet9", flag, value], f"sweep: {flag} does not apply with --tasks")


def test_system_json_carries_version_solver_seed_and_whole_cycles() -> None:
    code, out = _run(
        "system",
        "--models",
        "resnet9",
        "--system",
        TRI,
        "--solver",
        "greedy",
        "--seed",
        "5",
        "--time-limit",
        "1",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert list(data)[:2] == ["coexplore_version", "seeds"] and data["seeds"] == {"solver": 5}
    counts = _cycle_counts(data)
    assert {"makespan_cycles", "start_cycle", "end_cycle"} <= {k for k, _ in counts}
    assert all(isinstance(v, int) for _, v in counts), [kv for kv in counts if not isinstance(kv[1], int)]
    solver = data["solver"]  # a makespan objective: its value and bound are cycles too
    assert solver["objective"] == "makespan"
    assert isinstance(solver["objective_value"], int) and isinstance(solver["bound"], int)
    assert solver["objective_value"] == data["makespan_cycles"]


def test_search_json_carries_the_search_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign itself is tested in tests/codesign; here only what ``search --json`` prints around it."""
    import coexplore.cli_search as cli_search

    seen: dict[str, Any] = {}

    def fake_run(out_dir: str, *args: Any, **options: Any) -> Any:
        seen.update(options)
        (Path(out_dir) / "summary.json").write_text(json.dumps({"best": "x.yaml", "trainings": 0}))
        return SimpleNamespace(main=SimpleNamespace(final={"spec_met": True}))

    monkeypatch.setattr(cli_search, "run", fake_run)
    out = tmp_path / "run"
    out.mkdir()
    code, text = _run("search", "--spec", "latency=1e9", "--seed", "7", "--out", str(out), "--json")
    assert code == 0, text
    data = json.loads(text)
    assert seen["seed"] == 7
    assert data["coexplore_version"] and data["seeds"] == {"search": 7} and data["trainings"] == 0


@pytest.mark.rtl
def test_verify_states_the_dram_width_it_used_and_simulate_agrees_at_it(tmp_path: Path) -> None:
    pytest.importorskip("cocotb")
    layer = "gemm:m=5,k=6,n=7"
    args = ["--layer", layer, "--rows", "4", "--cols", "4"]
    code, out = _run("verify", *args, "--work-dir", str(tmp_path), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["passed"] and data["seeds"] == {"operands": 0}
    assert "stream width" in data["dram_bw_source"]  # no --dram-bw: simulate's default would be unlimited
    bw = data["dram_bw_bytes_per_cycle"]
    assert bw == data["stream_bytes_per_cycle"]
    code, out = _run("simulate", *args, "--dram-bw", f"{bw:g}", "--json")
    assert code == 0, out
    assert json.loads(out)["total"]["total_cycles"] == data["rtl_cycles"]
    code, text = _run("verify", *args, "--work-dir", str(tmp_path))
    assert code == 0 and f"DRAM {bw:g} B/cycle" in text, text
