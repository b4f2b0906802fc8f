"""Pipelined PEs (``Accelerator.pe_stages``): the WS and OS RTL with the product register (1) and the
edge operand registers (2) stay bit-exact against numpy and cycle-exact against ``simulate --profile
rtl``, whose fill charges the same stages from the template (WS ``rows + cols - 2 + stages``; OS
``rows + cols - 2 + max(stages - max(rows - 2, 0), 0)``: its drain hides them)."""

from __future__ import annotations

import dataclasses

import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.dataflows.io import accelerator_to_dict, get_template, parse_accelerator
from coexplore.dataflows.spec import Accelerator, SpecError
from coexplore.models.ir import conv, gemm
from coexplore.rtl.os_program import os_cycles
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.program import geometry
from coexplore.rtl.verify import verify_layer
from coexplore.rtl.ws_program import cycles as ws_cycles
from coexplore.sim.cycle import simulate_layer

WS, OS = "systolic-ws", "systolic-os"
MODEL = {WS: ws_cycles, OS: os_cycles}
CASES = {
    "ws-s1-conv-s2-p1": (small_acc(pe_stages=1), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "ws-s1-gemm-bw1": (small_acc(bw=1, pe_stages=1), gemm("g", 5, 6, 7), "extremes"),
    "ws-s2-3x5-bw16": (small_acc(rows=3, cols=5, bw=16, pe_stages=2), gemm("g", 7, 8, 12), "random"),
    # 1x1, T = 1: a row fold reads the partial sum the previous one writes in the same cycle
    "ws-s1-1x1-t1": (small_acc(rows=1, cols=1, pe_stages=1), gemm("g", 1, 3, 2), "random"),
    "os-s1-conv-s2-p1": (small_acc(OS, pe_stages=1), conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), "random"),
    "os-s2-2x2-bw2": (small_acc(OS, rows=2, cols=2, bw=2, pe_stages=2), gemm("g", 7, 9, 5), "extremes"),  # +1/fold
    "os-s2-4x4-hidden": (small_acc(OS, pe_stages=2), conv("c", c=2, k=5, h=5, r=3, stride=1, pad=1), "random"),
    # does not fit one call: output-row bands, each call pipelined
    "ws-s1-tiled": (small_acc(kb=0.5, pe_stages=1), conv("b", c=2, k=5, h=9, w=8, r=3, stride=1, pad=1), "random"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pipelined_bit_and_cycle_exact(name, tmp_path, rtl_cache):
    acc, layer, pattern = CASES[name]
    params = params_from_accelerator(acc)
    assert params.pe_stages == acc.pe_stages > 0
    simulated = simulated_cycles(acc, layer)  # coexplore simulate --profile rtl, with the stages
    result, program = verify_layer(
        acc, layer, tmp_path, pattern=pattern, seed=5, expected_cycles=simulated, cache_dir=rtl_cache
    )
    assert result.mismatches == 0, result.raw
    assert result.rtl_cycles == simulated == program.expected_cycles, result.raw
    if not name.endswith("tiled"):
        assert simulated == MODEL[acc.dataflow.name](params, geometry(layer))
    assert result.passed, result.raw


def test_stages_cost_the_same_cycles_in_every_model():
    """A WS stage adds one cycle per fold; an OS stage hides behind the row-by-row drain up to rows - 2
    stages. The cycle simulator, the analytical model (both read the template's formula) and the
    RTL's timing model agree; pe_stages=0 is the template itself."""
    from coexplore.sim.analytical import evaluate_layer

    extra = {WS: lambda rows, s: s, OS: lambda rows, s: max(s - rows + 2, 0)}
    layer = gemm("g", 9, 6, 7)
    for template, model in MODEL.items():
        for rows in (2, 3, 4):
            base = small_acc(template, rows=rows, bw=64)  # ample bandwidth: no stall hides the fill
            assert dataclasses.replace(base, pe_stages=0).dataflow == get_template(template)
            runs = {s: dataclasses.replace(base, pe_stages=s) for s in (0, 1, 2)}
            sim = {s: int(simulate_layer(layer, a, "rtl").total_cycles) for s, a in runs.items()}
            folds = simulate_layer(layer, runs[0], "rtl").folds
            assert [sim[s] - sim[0] for s in (1, 2)] == [folds * extra[template](rows, s) for s in (1, 2)], sim
            for s, a in runs.items():
                assert model(params_from_accelerator(a), geometry(layer)) == sim[s]
                assert float(evaluate_layer(layer, a, "rtl").latency_cycles) == sim[s]


def test_pe_stages_round_trips_and_refuses_unpipelined_templates():
    acc = small_acc(OS, pe_stages=2)
    data = accelerator_to_dict(acc)
    assert data["pe_stages"] == 2 and parse_accelerator(data) == acc
    assert "pe_stages" not in accelerator_to_dict(small_acc(OS))  # unpipelined files stay as they were
    with pytest.raises(SpecError, match=r"pe_stages=1: template 'nvdla' has no pipelined PEs"):
        Accelerator(dataflow=get_template("nvdla"), rows=4, cols=4, pe_stages=1)
    with pytest.raises(SpecError, match=r"pe_stages=3: expected an integer in 0\.\.2"):
        small_acc(pe_stages=3)
    with pytest.raises(SpecError, match="pe_stages"):
        parse_accelerator({"template": WS, "rows": 4, "cols": 4, "pe_stages": -1})


def test_pipelined_hardware_against_unpipelined_timing_goes_red(tmp_path, rtl_cache):
    """The cycle check sees the stage: pipelined RTL checked against the unpipelined simulator fails
    (results right, one cycle late per fold)."""
    acc, layer = small_acc(), gemm("g", 5, 6, 7)
    piped = params_from_accelerator(dataclasses.replace(acc, pe_stages=1))
    result, _ = verify_layer(
        acc, layer, tmp_path, seed=2, expected_cycles=simulated_cycles(acc, layer), params=piped, cache_dir=rtl_cache
    )
    assert result.mismatches == 0 and not result.passed, result.raw
    assert result.rtl_cycles > simulated_cycles(acc, layer)


@pytest.mark.parametrize("name", ["area_calibration.json", "area_calibration_os.json"])
def test_pipelined_area_model_within_three_percent(name):
    """The analytical area model (the template's logic_area with its pe_stage / col_stage terms) against
    the synthesized logic of the pipelined samples (rtl/calibrate.py --pe-stages; data, not a synthesis)."""
    import json
    from pathlib import Path

    from coexplore.sim.analytical import area

    data = json.loads((Path(__file__).resolve().parents[2] / "rtl" / name).read_text())
    df = get_template(data["template"])
    samples = data["pipelined"]["samples"]
    assert {s.get("pe_stages", 0) for s in samples} >= {0, 1, 2}
    errs = []
    for s in samples:
        acc = Accelerator(dataflow=df, rows=s["rows"], cols=s["cols"], pe_stages=s.get("pe_stages", 0))
        _, parts = area(acc)
        errs.append((parts["pe"] + parts["noc"] + parts["control"]) / s["logic_um2_45nm"] - 1.0)
    assert max(abs(e) for e in errs) < 0.03, errs


def test_critical_path_is_read_from_the_nextpnr_report():
    """rtl.synth.critical_path keeps the steps that matter (the carry chain's tiny ones left out)."""
    from coexplore.rtl.synth import critical_path

    log = """Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source pe_0_4.a_in_TRELLIS_FF_Q_1.Q
Info:    routing  1.26  1.78 Net pe_0_4.a_in[1] (55,14) -> (78,34)
Info:                          Sink pe_0_4.$1_MULT18X18D_P9.A1
Info:      logic  3.93  5.71 Source pe_0_4.$1_MULT18X18D_P9.P15
Info:    routing  0.07  5.78 Net pe_0_4.$1[15] (78,34) -> (78,34)
Info:      setup  0.00  5.78 Source pe_0_4.prod_q_TRELLIS_FF_Q_14.M
Info: 4.45 ns logic, 1.33 ns routing

Warning: Max frequency for clock 'clk': 173.01 MHz (PASS at 100.00 MHz)
"""
    assert critical_path(log) == [
        "clk-to-q 0.52 pe_0_4.a_in_TRELLIS_FF_Q_1.Q",
        "routing 1.26 pe_0_4.a_in[1]",
        "logic 3.93 pe_0_4.$1_MULT18X18D_P9.P15",
        "setup 0.00 pe_0_4.prod_q_TRELLIS_FF_Q_14.M",
        "total 4.45 ns logic + 1.33 ns routing",
    ]
    assert critical_path("no timing report") == []
