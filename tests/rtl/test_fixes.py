"""Review fixes of the generator's plumbing, each with the check that failed before it:
the Verilog cache key covers every generator file, module names are unique per parameter set, a
cached manifest carries the asked accelerator, the fault switch is not a production parameter,
verify requires every input beat consumed, and rtl/verify refuse flags that change no hardware."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rtl_helpers import small_acc

from coexplore.cli import cli
from coexplore.models.ir import gemm
from coexplore.rtl import params as params_mod
from coexplore.rtl.emit import emit, emit_accelerator
from coexplore.rtl.faults import FaultyParams, faulty
from coexplore.rtl.params import RtlParams, params_from_accelerator
from coexplore.rtl.program import prepare
from coexplore.rtl.verify import random_tensors, run_bench

RTL = Path(params_mod.__file__).resolve().parent
SMALL = ["--rows", "4", "--cols", "4", "--dram-bw", "4", "--sram-kb", "1"]


@pytest.mark.parametrize("name", sorted(p.name for p in RTL.glob("*.py")))
def test_cache_key_covers_every_generator_module(name, tmp_path, monkeypatch):
    """Editing any module of the generator (control.py included) changes the Verilog cache key, so a
    broken design never passes from a warm cache."""
    copy = tmp_path / "rtl"
    copy.mkdir()
    for path in RTL.glob("*.py"):
        shutil.copy2(path, copy / path.name)
    monkeypatch.setattr(params_mod, "RTL_DIR", copy)
    params = params_from_accelerator(small_acc())
    params_mod.generator_fingerprint.cache_clear()
    before = params.digest()
    (copy / name).write_text((copy / name).read_text() + "\n# edited\n")
    params_mod.generator_fingerprint.cache_clear()
    try:
        assert params.digest() != before
    finally:
        monkeypatch.undo()
        params_mod.generator_fingerprint.cache_clear()


def test_module_and_file_names_are_unique_per_parameter_set(tmp_path):
    """Two sub-accelerators that differ only in a scratchpad size no longer overwrite each other."""
    a = params_from_accelerator(small_acc(kb=1))
    b = params_from_accelerator(dataclasses.replace(small_acc(kb=1), ofmap_sram_kb=2.0))
    assert a != b and a.module_name != b.module_name
    assert a.module_name.startswith("coexplore_ws_4x4_b4_")
    design = {
        "name": "two",
        "budget": {"pes": 32, "dram_bw_bytes_per_cycle": 8},
        "sub_accelerators": [
            {
                "name": f"s{i}",
                "template": "systolic-ws",
                "rows": 4,
                "cols": 4,
                "dram_bw_bytes_per_cycle": 4,
                "ifmap_sram_kb": 1,
                "filter_sram_kb": 1,
                "ofmap_sram_kb": kb,
            }
            for i, kb in enumerate((1, 2))
        ],
    }
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(design))
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
    files = [m["verilog"] for m in json.loads(res.output)["modules"]]
    assert len(set(files)) == 3 and all(Path(f).exists() for f in files)


def test_cached_manifest_carries_the_asked_accelerator(tmp_path):
    first = dataclasses.replace(small_acc(), name="first", clock_mhz=500.0)
    second = dataclasses.replace(small_acc(), name="second", clock_mhz=800.0)
    e1 = emit_accelerator(first, tmp_path)
    e2 = emit_accelerator(second, tmp_path)
    assert not e1.cached and e2.cached and e1.verilog_path == e2.verilog_path
    assert e2.manifest["accelerator"]["name"] == "second" and e2.manifest["accelerator"]["clock_mhz"] == 800.0
    assert e2.manifest["ports"] == e1.manifest["ports"]
    plain = emit(params_from_accelerator(first), tmp_path)  # e.g. verify's emission: no accelerator fields
    assert plain.cached and plain.manifest["accelerator"] is None
    assert emit_accelerator(first, tmp_path).manifest["accelerator"]["name"] == "first"


def test_fault_switch_is_not_a_production_parameter():
    fields = {f.name for f in dataclasses.fields(RtlParams)}
    assert "fault" not in fields
    assert "fault" not in params_from_accelerator.__code__.co_varnames
    good = params_from_accelerator(small_acc())
    bad = faulty(good, "flip_bit")
    assert isinstance(bad, FaultyParams) and bad.digest() != good.digest() and bad.module_name != good.module_name
    assert RtlParams.from_dict(bad.to_dict()) == good
    with pytest.raises(Exception, match="fault"):
        faulty(good, "melt")


def test_verify_fails_when_an_input_beat_is_left_over(tmp_path, rtl_cache):
    """A weight beat the hardware never takes must turn the check red (outputs alone look fine)."""
    acc, layer = small_acc(), gemm("g", 5, 6, 7)
    params = params_from_accelerator(acc)
    x, w = random_tensors(params, layer, __import__("numpy").random.default_rng(0))
    program = prepare(params, layer, ifmap=x, weights=w)
    extra = dataclasses.replace(program, weight_beats=program.weight_beats + [0x5A5A5A5A])
    result = run_bench(params, extra, x, w, tmp_path, expected_cycles=program.expected_cycles, cache_dir=rtl_cache)
    assert result.mismatches == 0 and result.rtl_cycles == program.expected_cycles, result.raw
    assert not result.inputs_consumed and not result.passed
    assert result.raw["inputs_consumed"] == [len(program.ifmap_beats), len(program.weight_beats)]


@pytest.mark.parametrize(
    "command,extra,flag",
    [
        ("rtl", ["--noc-bw", "8"], "--noc-bw"),
        ("rtl", ["--clock-mhz", "500"], "--clock-mhz"),
        ("rtl", ["--node-nm", "7"], "--node-nm"),
        ("rtl", ["--profile", "scalesim"], "--profile"),
        ("rtl", ["--no-ecp5"], "--no-ecp5"),
        ("verify", ["--noc-bw", "8"], "--noc-bw"),
        ("verify", ["--clock-mhz", "500"], "--clock-mhz"),
        ("verify", ["--profile", "ideal"], "--profile"),
    ],
)
def test_flags_that_change_no_hardware_are_refused(command, extra, flag, tmp_path):
    args = [command, *SMALL, *extra]
    args += ["--out", str(tmp_path / "o")] if command == "rtl" else ["--layer", "gemm:m=2,k=2,n=2"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and flag in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_accelerator_flags_with_a_design_are_refused(tmp_path):
    path = tmp_path / "design.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "one",
                "budget": {"pes": 16, "dram_bw_bytes_per_cycle": 4},
                "sub_accelerators": [
                    {"name": "a", "template": "systolic-ws", "rows": 4, "cols": 4, "dram_bw_bytes_per_cycle": 4}
                ],
            }
        )
    )
    res = CliRunner().invoke(cli, ["rtl", "--design", str(path), "--rows", "8", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "--rows" in res.output and "--design" in res.output, res.output


def test_benches_ship_in_the_package():
    """verify reads its cocotb benches from the package (package data), never from tests/."""
    import tomllib

    from coexplore.rtl import verify

    assert verify.BENCH_DIR == RTL / "benches" and "tests" not in verify.BENCH_DIR.parts
    assert {p.name for p in verify.BENCH_DIR.glob("*.py")} >= {"accel_bench.py", "top_bench.py"}
    data = tomllib.loads((RTL.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "benches/*.py" in data["coexplore.rtl"]


def test_ws_one_by_one_array_with_one_pixel(tmp_path, rtl_cache):
    """A 1x1 WS array on a one-pixel layer reads a partial sum in the cycle it is written (row fold
    f+1 follows fold f back to back): the output bank's read port must be transparent for its write."""
    from rtl_helpers import simulated_cycles

    from coexplore.rtl.verify import verify_layer

    acc, layer = small_acc(rows=1, cols=1), gemm("g", 1, 3, 2)
    simulated = simulated_cycles(acc, layer)
    result, program = verify_layer(acc, layer, tmp_path, seed=2, expected_cycles=simulated, cache_dir=rtl_cache)
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == program.expected_cycles and result.passed, result.raw
