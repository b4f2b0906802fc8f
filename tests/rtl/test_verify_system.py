"""A system's sub-accelerators all running at once on the partitioned-port top, each bit-exact and
cycle-exact against the simulator (``coexplore verify --design``, ``rtl.verify_system``)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from coexplore.cli import cli
from coexplore.dataflows.system import load_system
from coexplore.rtl import top as top_mod
from coexplore.rtl.faults import faulty
from coexplore.rtl.top import emit_design
from coexplore.rtl.verify_system import verify_design
from coexplore.sim.cycle.simulator import simulate_layer


def rtl_cycles(layer, acc):
    return simulate_layer(layer, acc, "rtl").total_cycles


DESIGN = {
    "name": "trio",
    "budget": {"pes": 64, "dram_bw_bytes_per_cycle": 8},
    "bandwidth": "partitioned",
    "sub_accelerators": [
        {"name": "dla", "template": "nvdla", "rows": 4, "cols": 4, "dram_bw_bytes_per_cycle": 4},
        {"name": "ws", "template": "systolic-ws", "rows": 4, "cols": 4, "dram_bw_bytes_per_cycle": 2},
        {"name": "eye", "template": "eyeriss", "rows": 3, "cols": 3, "dram_bw_bytes_per_cycle": 2, "ifmap_sram_kb": 4},
    ],
}
for _sub in DESIGN["sub_accelerators"]:
    _sub.setdefault("ifmap_sram_kb", 1)
    _sub.update(filter_sram_kb=1, ofmap_sram_kb=1)


@pytest.fixture
def design(tmp_path):
    path = tmp_path / "trio.yaml"
    path.write_text(yaml.safe_dump(DESIGN))
    return path


def test_partitioned_top_has_every_sub_accelerators_own_streams(design, tmp_path, rtl_cache):
    out = tmp_path / "out"
    out.mkdir()
    summary = emit_design(design, out, rtl_cache)  # a partitioned budget gets partitioned ports
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ports"] == "partitioned" and "memory_port" not in manifest
    assert [p["payload_bytes"] for p in manifest["memory_ports"]] == [4, 2, 2]
    text = (out / f"{summary['top']}.v").read_text()
    for i in range(3):
        for port in ("ifmap_valid", "weight_ready", "ofmap_payload"):
            assert f"s{i}_{port}" in text
    assert "rd_sel" not in text


def test_every_sub_accelerator_at_once_is_cycle_exact(design, tmp_path, rtl_cache):
    result = verify_design(design, tmp_path / "work", cache_dir=rtl_cache, simulated=rtl_cycles)
    assert result["passed"], result
    assert [r["template"] for r in result["subs"]] == ["nvdla", "systolic-ws", "eyeriss"]
    for r in result["subs"]:
        assert r["mismatches"] == 0 and r["inputs_consumed"]
        assert r["rtl_cycles"] == r["simulated_cycles"] == r["model_cycles"]
    # the three run at different speeds (their own widths and arrays): a real check of each one
    assert len({r["rtl_cycles"] for r in result["subs"]}) == 3


def test_a_late_sub_accelerator_turns_the_check_red(design, tmp_path, rtl_cache, monkeypatch):
    good = top_mod.design_params

    def with_a_slow_drain(system):
        subs = good(system)
        subs[1] = faulty(subs[1], "slow_drain")  # results right, every output beat one cycle late
        return subs

    monkeypatch.setattr(top_mod, "design_params", with_a_slow_drain)
    result = verify_design(design, tmp_path / "work", cache_dir=rtl_cache, simulated=rtl_cycles)
    assert not result["passed"]
    dla, ws, eye = result["subs"]
    assert dla["passed"] and eye["passed"]
    assert not ws["passed"] and ws["mismatches"] == 0 and ws["rtl_cycles"] > ws["simulated_cycles"]


def test_verify_design_cli(design, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["verify", "--design", str(design), "--layer", "gemm:m=3,k=5,n=4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["passed"] and len(out["subs"]) == 3 and "coexplore_version" in out
    assert all(r["layer"].startswith("gemm") or "3x5" in r["layer"] or r["passed"] for r in out["subs"])


@pytest.mark.parametrize(
    "args, part",
    [
        (["--rows", "4"], "--rows: ignored with --design"),
        (["--pattern", "zeros"], "--pattern zeros: not taken with --design"),
    ],
)
def test_verify_design_refuses_flags_it_does_not_take(design, args, part):
    res = CliRunner().invoke(cli, ["verify", "--design", str(design), *args])
    assert res.exit_code != 0 and part in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_verify_without_layer_or_design_is_a_one_line_error():
    res = CliRunner().invoke(cli, ["verify"])
    assert res.exit_code != 0 and "--layer: required" in res.output, res.output


def test_wrong_number_of_layers_is_refused(design, tmp_path):
    from coexplore.models.ir import conv
    from coexplore.rtl.params import RtlError

    layers = [conv("a", c=2, k=2, h=4, r=3, pad=1)] * 2
    with pytest.raises(RtlError, match="2 layers for system 'trio': expected one, or one per sub-accelerator"):
        verify_design(design, tmp_path / "w", layers)
    assert len(load_system(design).accelerators) == 3


def test_rtl_ports_flag_picks_the_top(design, tmp_path):
    res = CliRunner().invoke(cli, ["rtl", "--design", str(design), "--ports", "shared", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["ports"] == "shared"
    res = CliRunner().invoke(cli, ["rtl", "--ports", "shared", "--out", str(tmp_path / "p")])
    assert res.exit_code != 0 and "--ports shared: only with --design" in res.output, res.output
