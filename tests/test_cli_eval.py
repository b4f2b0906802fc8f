"""The CLI interface other checks rely on: evaluate --json, sweep outputs, the tour report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from coexplore.cli import cli


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _spec(case: dict) -> str:
    l = case["layer"]
    if l["kind"] == "gemm":
        return f"gemm:m={l['M']},k={l['K']},n={l['N']}"
    return (
        f"conv:h={l['ifmap_h']},w={l['ifmap_w']},c={l['channels']},k={l['filters']},r={l['filter_h']},"
        f"s={l['filter_w']},stride={l['stride']},pad={l['padding']}"
    )


def test_evaluate_json_reproduces_scalesim_stall_free_cases(scalesim_reference: dict) -> None:
    checked = 0
    for case in scalesim_reference["cases"]:
        if case["stall_cycles"]:
            continue
        out = json.loads(
            _invoke(
                "evaluate",
                "--layer",
                _spec(case),
                "--template",
                f"systolic-{case['dataflow']}",
                "--rows",
                str(case["array_rows"]),
                "--cols",
                str(case["array_cols"]),
                "--sram-kb",
                str(case["sram_kb"]["ifmap"]),
                "--profile",
                "scalesim",
                "--json",
            )
        )
        total = out["total"]
        assert set(total) >= {"latency_cycles", "energy_pj", "area_um2", "macs", "utilization"}
        assert total["latency_cycles"] == case["compute_cycles"]
        assert total["macs"] == case["layer"]["macs"]
        assert len(out["layers"]) == 1
        checked += 1
    assert checked == 12


def test_evaluate_model_table_and_json_agree() -> None:
    out = json.loads(_invoke("evaluate", "--model", "resnet9", "--template", "nvdla", "--json"))
    assert len(out["layers"]) == 15
    assert out["total"]["latency_cycles"] == pytest.approx(sum(l["latency_cycles"] for l in out["layers"]))
    table = _invoke("evaluate", "--model", "resnet9", "--template", "nvdla")
    assert "total" in table and "layer1" in table


@pytest.mark.heavy
def test_sweep_writes_csv_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    text = _invoke(
        "sweep",
        "--layer",
        "conv:h=16,c=32,k=32",
        "--templates",
        "nvdla,systolic-os",
        "--sizes",
        "8x8,16x16",
        "--dram-bw",
        "8,inf",
        "--sram-kb",
        "32",
        "--out",
        str(out),
    )
    assert "8 designs" in text
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == 8 and any(r["pareto"] for r in rows)
    # more bandwidth is never slower, for every template and size
    for r in rows:
        if r["dram_bw_bytes_per_cycle"] == "inf":
            slow = next(
                s
                for s in rows
                if s["template"] == r["template"] and s["rows"] == r["rows"] and s["dram_bw_bytes_per_cycle"] == 8.0
            )
            assert r["latency_cycles"] <= slow["latency_cycles"]
    for name in ("sweep.csv", "pareto.csv", "heatmap_latency.png", "heatmap_energy.png", "pareto.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.heavy
def test_tour_writes_a_report(tmp_path: Path) -> None:
    _invoke("tour", "--out", str(tmp_path), "--models", "vit")
    report = (tmp_path / "report.md").read_text()
    assert "| vit | nvdla |" in report and "Pareto" in report
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["template"] for r in results} >= {"nvdla", "shidiannao", "eyeriss", "systolic-ws"}
    assert all(r["latency_ms"] > 0 and r["energy_uj"] > 0 for r in results)
    assert (tmp_path / "networks_by_template.png").stat().st_size > 0
