"""``coexplore rtl`` and ``coexplore verify`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import run_cli
from click.testing import CliRunner

from coexplore.cli import cli

EXE = [sys.executable, "-m", "coexplore.cli"]
SMALL = ["--rows", "4", "--cols", "4", "--dram-bw", "4", "--sram-kb", "1"]


def test_rtl_emits_verilog_and_manifest_and_caches(tmp_path):
    cache = tmp_path / "cache"
    args = ["rtl", *SMALL, "--out", str(tmp_path / "out"), "--cache-dir", str(cache), "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    mod = summary["modules"][0]
    assert not mod["cached"]
    verilog = Path(mod["verilog"]).read_text()
    assert f"module {mod['module']}" in verilog
    manifest = json.loads(Path(mod["manifest"]).read_text())
    assert manifest["params"]["rows"] == 4 and manifest["stream_bytes_per_cycle"] == 4
    assert manifest["accelerator"]["template"] == "systolic-ws"
    names = {p["name"] for p in manifest["ports"]}
    assert {"start", "done", "cycles", "ifmap__payload", "weight__ready", "ofmap__valid"} <= names
    second = CliRunner().invoke(cli, args)
    assert json.loads(second.output)["modules"][0]["cached"] is True


def _unbuilt_template(tmp_path) -> str:
    """A template no generator builds: shidiannao's structure with another fill (it times differently)."""
    text = (Path(__file__).resolve().parents[2] / "dataflows" / "templates" / "shidiannao.yaml").read_text()
    path = tmp_path / "odd-sdn.yaml"
    path.write_text(text.replace("name: shidiannao", "name: odd-sdn").replace('fill: "1"', 'fill: "2"'))
    return str(path)


def test_rtl_rejects_what_it_cannot_build(tmp_path):
    for extra, word in ((["--template", _unbuilt_template(tmp_path)], "odd-sdn"), (["--dram-bw", "6"], "power of two")):
        res = CliRunner().invoke(cli, ["rtl", *SMALL, *extra, "--out", str(tmp_path)])
        assert res.exit_code != 0
        assert word in res.output and "Traceback" not in res.output


def test_verify_prints_the_check(tmp_path):
    out = subprocess.run(
        [
            *EXE,
            "verify",
            "--layer",
            "conv:h=6,c=2,k=5,r=3,stride=2,pad=1",
            *SMALL,
            "--json",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout)
    assert payload["passed"] is True and payload["mismatches"] == 0
    assert payload["rtl_cycles"] == payload["simulated_cycles"] > 0


def test_verify_rejects_unsupported_layer(tmp_path):
    out = subprocess.run(
        [*EXE, "verify", "--layer", "pool:h=6,c=4", *SMALL, "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "'pool'" in out.stderr and "expected conv, depthwise or grouped conv, gemm or matmul" in out.stderr


@pytest.mark.parametrize(
    "spec", ["conv:h=6,c=4,k=4,groups=2", "dw:c=6,h=6,r=3,stride=2,pad=1", "matmul:m=5,k=6,n=7,batch=2"]
)
def test_verify_runs_grouped_depthwise_and_matmul_layers_as_the_hosts_sub_layers(spec, tmp_path):
    """The layers the host runs as dense sub-layers (dataflows.decompose): every output of the whole
    layer bit-exact against numpy, and the sub-layers' summed cycles equal to the simulator's."""
    out = run_cli("verify", "--layer", spec, *SMALL, "--json", "--work-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout)
    assert payload["passed"] is True and payload["mismatches"] == 0 and payload["inputs_consumed"] is True
    assert payload["rtl_cycles"] == payload["simulated_cycles"] > 0


def _design(tmp_path, templates):
    import yaml

    subs = [
        {
            "name": f"a{i}",
            "template": t,
            "rows": 4,
            "cols": 4,
            "dram_bw_bytes_per_cycle": 4,
            "ifmap_sram_kb": 4,
            "filter_sram_kb": 1,
            "ofmap_sram_kb": 1,
        }
        for i, t in enumerate(templates)
    ]
    path = tmp_path / "design.yaml"
    path.write_text(
        yaml.safe_dump({"name": "trio", "budget": {"pes": 64, "dram_bw_bytes_per_cycle": 8}, "sub_accelerators": subs})
    )
    return path


def test_rtl_design_emits_every_sub_accelerator_and_the_top(tmp_path):
    path = _design(tmp_path, ["systolic-ws", "systolic-os", "eyeriss"])
    res = CliRunner().invoke(
        cli,
        [
            "rtl",
            "--design",
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--json",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert len(summary["modules"]) == 4 and summary["top"] == "coexplore_top_trio"
    for mod in summary["modules"]:
        assert f"module {mod['module']}" in Path(mod["verilog"]).read_text()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["memory_port"]["arbiter"] == "round-robin"


def test_rtl_design_names_the_sub_accelerator_it_cannot_build(tmp_path):
    path = _design(tmp_path, ["systolic-ws", _unbuilt_template(tmp_path)])
    res = CliRunner().invoke(cli, ["rtl", "--design", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "a1" in res.output and "odd-sdn" in res.output
    assert "Traceback" not in res.output
