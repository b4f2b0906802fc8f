"""``coexplore search`` end to end: outputs, resume after a killed process, impossible specs, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from coexplore.cli import cli

# A small, quick configuration: digits only, one-epoch proxy training, 1-2 sub-accelerators.
FAST = ["--tasks", "digits", "--epochs", "digits=1", "--pe-budget", "256", "--bw-budget", "16", "--batch-size", "2"]
LOOSE = "latency=1e9,energy=1e9uJ,area=1000mm2"


def _search(args: list[str], cache: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["search", *FAST, "--cache-dir", str(cache), *args])
    return result.exit_code, result.output


@pytest.mark.heavy
def test_search_writes_log_summary_best_yaml_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = _search(
        ["--spec", LOOSE, "--optimizer", "random", "--budget", "3", "--seed", "1", "--out", str(out)],
        tmp_path / "cache",
    )
    assert code == 0, text
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum(r["status"] == "trained" for r in records) == 3
    for r in records:
        assert set(r) >= {
            "vector",
            "archs",
            "status",
            "latency_cycles",
            "energy_uj",
            "area_mm2",
            "seconds",
            "system",
            "accuracy",
        }
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    assert best["spec_met"] is True and 0 < best["accuracy"]["digits"] <= 1
    assert best["accuracy"]["digits"] == max(r["accuracy"]["digits"] for r in records)
    assert summary["trained"] == 3 and summary["evaluated"] == len(records)
    design = yaml.safe_load((out / "best.yaml").read_text())
    assert design["sub_accelerators"] and design["codesign"]["architectures"][0]["task"] == "digits"
    from coexplore.dataflows.system import load_system

    assert load_system(out / "best.yaml").accelerators  # a system YAML the hardware commands take
    assert "| method |" in (out / "report.md").read_text()
    assert "<table>" in (out / "report.html").read_text()


@pytest.mark.heavy
def test_impossible_spec_ends_non_zero_with_a_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = _search(
        ["--spec", "latency=100", "--optimizer", "random", "--budget", "2", "--max-proposals", "4", "--out", str(out)],
        tmp_path / "cache",
    )
    assert code != 0
    assert "no candidate met the spec" in text and "Traceback" not in text
    assert "No method found a design that meets the spec" in (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] is None and summary["trained"] == 0 and summary["pruned"] == 4
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(r["status"] == "pruned" and r["proven_infeasible"] for r in records)


@pytest.mark.parametrize(
    "spec, part",
    [
        ("latency=abc", "abc"),
        ("energy=4e4uF", "uF"),
        ("speed=3", "speed"),
        ("latency=-5", "-5"),
        ("area=12", "area"),
        ("", "spec"),
    ],
)
def test_bad_spec_strings_are_one_line_errors(tmp_path: Path, spec: str, part: str) -> None:
    code, text = _search(["--spec", spec, "--out", str(tmp_path / "o")], tmp_path / "cache")
    assert code != 0 and "Traceback" not in text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and part in lines[0], text


@pytest.mark.parametrize(
    "args, part",
    [
        (["--tasks", "mnist"], "mnist"),
        (["--optimizer", "sgd"], "sgd"),
        (["--budget", "0"], "budget"),
        (["--tasks", "digits=nospace"], "nospace"),
        (["--tasks", "cifar10", "--data", "/nonexistent/dir"], "nonexistent"),
        (["--epochs", "digits=x"], "epochs"),
        (["--templates", "tpu"], "tpu"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], part: str) -> None:
    code, text = _search(["--spec", LOOSE, "--out", str(tmp_path / "o"), *args], tmp_path / "cache")
    assert code != 0 and "Traceback" not in text, text
    assert part in text


@pytest.mark.heavy
def test_existing_log_needs_resume_and_resume_checks_the_configuration(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["--spec", LOOSE, "--optimizer", "random", "--budget", "2", "--out", str(out)]
    assert _search(base, tmp_path / "cache")[0] == 0
    code, text = _search(base, tmp_path / "cache")
    assert code != 0 and "--resume" in text
    code, text = _search([*base, "--resume", "--seed", "5"], tmp_path / "cache")
    assert code != 0 and "seed" in text
    code, text = _search([*base[:-4], "--budget", "4", "--out", str(out), "--resume"], tmp_path / "cache")
    assert code == 0, text
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum(r["status"] == "trained" for r in records) == 4


def _cmd(out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coexplore.cli",
        "search",
        *FAST,
        "--spec",
        LOOSE,
        "--optimizer",
        "evolution",
        "--budget",
        "8",
        "--seed",
        "3",
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        *extra,
    ]


@pytest.mark.heavy
def test_resume_after_killing_the_process_ends_at_the_same_best_design(tmp_path: Path) -> None:
    env = dict(os.environ, COEXPLORE_CACHE=str(tmp_path / "unused"))
    whole = tmp_path / "whole"
    subprocess.run(_cmd(whole, tmp_path / "cache-a"), check=True, env=env, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(killed, tmp_path / "cache-b"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = killed / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if log.exists() and sum(1 for line in log.read_text().splitlines() if '"trained"' in line) >= 3:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(log.read_text().splitlines())
    assert done_before < len((whole / "log.jsonl").read_text().splitlines())
    subprocess.run(
        _cmd(killed, tmp_path / "cache-b", "--resume"), check=True, env=env, capture_output=True, timeout=600
    )
    a = json.loads((whole / "summary.json").read_text())["best"]
    b = json.loads((killed / "summary.json").read_text())["best"]
    assert a == b
    va = [json.loads(x)["vector"] for x in (whole / "log.jsonl").read_text().splitlines()]
    vb = [json.loads(x)["vector"] for x in (killed / "log.jsonl").read_text().splitlines()]
    assert sorted(va) == sorted(vb)


@pytest.mark.heavy
def test_best_yaml_goes_to_the_rtl_generator(tmp_path: Path) -> None:
    pytest.importorskip("amaranth")
    out = tmp_path / "run"
    code, text = _search(
        [
            "--spec",
            LOOSE,
            "--optimizer",
            "random",
            "--budget",
            "1",
            "--templates",
            "systolic-ws",
            "--max-accelerators",
            "1",
            "--out",
            str(out),
        ],
        tmp_path / "cache",
    )
    assert code == 0, text
    result = CliRunner().invoke(
        cli,
        [
            "rtl",
            "--design",
            str(out / "best.yaml"),
            "--out",
            str(tmp_path / "rtl"),
            "--cache-dir",
            str(tmp_path / "rtl-cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "rtl").glob("coexplore_ws_*.v"))
