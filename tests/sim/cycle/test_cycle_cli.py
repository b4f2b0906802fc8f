"""`coexplore simulate` and `coexplore validate`: JSON shape, traces, and one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli
from click.testing import CliRunner

from coexplore.cli import cli

CONV = "conv:h=32,w=32,c=64,k=64,r=3,s=3,stride=1,pad=0"


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_simulate_json_reproduces_a_bandwidth_limited_scalesim_case() -> None:
    res = _invoke(
        "simulate",
        "--layer",
        CONV,
        "--template",
        "systolic-os",
        "--rows",
        "16",
        "--cols",
        "16",
        "--profile",
        "scalesim",
        "--dram-bw",
        "10",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    total = out["total"]
    assert set(total) >= {"compute_cycles", "stall_cycles", "total_cycles", "dram_reads", "dram_writes", "utilization"}
    assert (total["compute_cycles"], total["stall_cycles"]) == (414953, 276786)  # SCALE-Sim's figures
    assert len(out["layers"]) == 1 and out["layers"][0]["model"] == "scalesim"


def test_simulate_defaults_to_the_rtl_profile_and_prints_a_table() -> None:
    res = _invoke("simulate", "--layer", "gemm:m=64,k=128,n=32", "--layer", CONV, "--dram-bw", "8")
    assert res.exit_code == 0, res.output
    assert "profile rtl" in res.output and "total" in res.output


def test_simulate_streams_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    res = _invoke(
        "simulate",
        "--layer",
        "conv:h=12,c=8,k=8",
        "--template",
        "systolic-ws",
        "--rows",
        "4",
        "--cols",
        "4",
        "--dram-bw",
        "4",
        "--trace",
        str(trace),
        "--json",
    )
    assert res.exit_code == 0, res.output
    lines = trace.read_text().splitlines()
    assert lines[0] == "layer,event,index,start,end"
    passes = [l for l in lines if ",pass," in l]
    assert len(passes) == json.loads(res.output)["layers"][0]["passes"]
    assert any(",drain," in l for l in lines) and any(",load-weight," in l for l in lines)


def test_validate_runs_a_small_suite_and_reports_a_summary(tmp_path: Path) -> None:
    plot = tmp_path / "v.png"
    res = _invoke(
        "validate",
        "--profile",
        "rtl",
        "--templates",
        "systolic-ws",
        "--models",
        "resnet9",
        "--limit",
        "4",
        "--json",
        "--plot",
        str(plot),
    )
    out = json.loads(res.output[: res.output.rindex("}") + 1])
    assert len(out["cases"]) == 4 and out["summary"][0]["cases"] == 4
    assert {"mean_error_pct", "max_error_pct", "within_bound"} <= set(out["summary"][0])
    assert (res.exit_code == 0) == out["summary"][0]["within_bound"]
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["simulate", "--layer", "conv:h=0,c=3,k=4"], "h=0"),
        (["simulate", "--layer", "conv:h=8,c=3,k=4", "--template", "tpu"], "unknown template 'tpu'"),
        (["simulate", "--layer", "conv:h=8,c=3,k=4", "--rows", "-4"], "rows=-4"),
        (["simulate", "--layer", "conv:h=8,c=3,k=4", "--profile", "fast"], "unknown timing profile 'fast'"),
        (["simulate", "--layer", "conv:h=8,c=3,k=4", "--dram-bw", "0"], "dram_bw_bytes_per_cycle=0"),
        (["simulate", "--layer", "conv:h=3,c=3,k=4,r=5"], "larger than"),
        (["simulate"], "no workload"),
        (["validate", "--templates", "nope", "--limit", "1"], "unknown template 'nope'"),
        (["validate", "--sizes", "big", "--limit", "1"], "--sizes"),
        (["validate", "--limited-bw", "-1", "--limit", "1"], "--limited-bw"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args: list[str], fragment: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr


def test_scalesim_trace_is_valid_csv(tmp_path: Path) -> None:
    import csv

    trace = tmp_path / "scalesim.csv"
    res = _invoke(
        "simulate",
        "--layer",
        "conv:h=16,c=8,k=8",
        "--template",
        "systolic-os",
        "--rows",
        "4",
        "--cols",
        "4",
        "--profile",
        "scalesim",
        "--dram-bw",
        "2",
        "--sram-kb",
        "1",
        "--trace",
        str(trace),
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(trace.open()))
    assert len(rows) > 10 and {len(r) for r in rows} == {5}
    assert all(int(r[4]) >= int(r[3]) for r in rows[1:])  # each stalled row: start cycle, end after its delay


# ---- the size guard lives in the simulator ------------------------------------------------------------
def _acc(template: str, bw: float | None = 4.0):
    from coexplore.dataflows.io import get_template
    from coexplore.dataflows.spec import Accelerator

    return Accelerator(get_template(template), 8, 8, dram_bw_bytes_per_cycle=bw)


@pytest.mark.parametrize(
    ("template", "profile", "limit"),
    [("systolic-os", "scalesim", "MAX_SCALESIM_STEPS"), ("eyeriss", "rtl", "MAX_FOLD_PASSES")],
)
def test_simulate_layer_refuses_a_layer_over_the_limit_in_one_line(
    template: str, profile: str, limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the limit lowered, a small layer is refused before any simulation, naming layer, folds, limit."""
    from coexplore.models.ir import conv
    from coexplore.sim.cycle import simulator

    monkeypatch.setattr(simulator, limit, 4)
    layer = conv("tiny", c=16, k=16, h=8, r=3, pad=1)
    with pytest.raises(simulator.SimulationSizeError) as err:
        simulator.simulate_layer(layer, _acc(template), profile)
    msg = str(err.value)
    assert "\n" not in msg and "layer 'tiny'" in msg and "folds" in msg and "holds at most 4" in msg, msg


def test_simulate_layer_refuses_a_huge_layer_at_the_real_limit_and_runs_an_ordinary_one() -> None:
    from coexplore.models.ir import conv
    from coexplore.sim.cycle.simulator import MAX_SCALESIM_STEPS, SimulationSizeError, simulate_layer

    huge = conv("huge", c=512, k=512, h=512, r=3, pad=1)
    with pytest.raises(SimulationSizeError, match=f"holds at most {MAX_SCALESIM_STEPS:,}"):
        simulate_layer(huge, _acc("systolic-os"), "scalesim")
    assert simulate_layer(huge, _acc("systolic-os", None), "scalesim").compute_cycles > 0  # CALC: closed form
    assert simulate_layer(conv("ok", c=8, k=8, h=8), _acc("systolic-os"), "scalesim").compute_cycles > 0


def test_cli_simulate_refuses_a_huge_layer_in_one_line() -> None:
    res = _invoke(
        "simulate", "--layer", "conv:h=512,c=512,k=512,r=3,pad=1", "--template", "systolic-os",
        "--rows", "8", "--cols", "8", "--profile", "scalesim", "--dram-bw", "4",
    )  # fmt: skip
    assert res.exit_code != 0
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert "layer 'conv'" in lines[0] and "folds" in lines[0] and "holds at most 67,108,864" in lines[0], lines[0]
