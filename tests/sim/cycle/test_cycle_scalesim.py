"""Profile ``scalesim`` against SCALE-Sim's own outputs: the 18 reference cases and 36 more runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reference_cases import reference_layer

from coexplore.dataflows.io import get_profile, get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import conv
from coexplore.sim.cycle import simulate_layer
from coexplore.sim.cycle.scalesim_mem import Buffers, ConvGeometry, run_layer

EXTRA = Path(__file__).with_name("scalesim_extra.json")


def _acc(case: dict, bw: float | None, sram_kb: float = 64) -> Accelerator:
    return Accelerator(
        get_template(f"systolic-{case['dataflow']}"),
        case["array_rows"],
        case["array_cols"],
        ifmap_sram_kb=sram_kb,
        filter_sram_kb=sram_kb,
        ofmap_sram_kb=sram_kb,
        dram_bw_bytes_per_cycle=bw,
    )


def test_all_18_reference_cases_exact(scalesim_reference: dict) -> None:
    """Stall-free cases exact; the 6 bandwidth-limited ones (10 words/cycle per port) exact too."""
    prof = get_profile("scalesim")
    limited = 0
    for case in scalesim_reference["cases"]:
        bw = None if "CALC" in case["bandwidth"] else 10.0
        limited += bw is not None
        got = simulate_layer(reference_layer(case["layer"]), _acc(case, bw), prof)
        assert (got.compute_cycles, got.stall_cycles) == (case["compute_cycles"], case["stall_cycles"]), case
        assert got.total_cycles == got.compute_cycles  # SCALE-Sim's compute cycles include the stalls
    assert limited == 6


def _extra_geometry(case: dict) -> ConvGeometry:
    lay = case["layer"]
    if case["kind"] == "conv":
        p = (lay["h"] - lay["r"]) // lay["stride"] + 1
        q = (lay["w"] - lay["s"]) // lay["stride"] + 1
        return ConvGeometry(
            1, lay["h"], lay["w"], lay["c"], lay["r"], lay["s"], p, q, lay["k"], lay["stride"], lay["stride"]
        )
    return ConvGeometry(1, lay["m"], lay["k"], 1, 1, lay["k"], lay["m"], 1, lay["n"])


def test_random_small_cases_match_scalesim_exactly() -> None:
    """36 more SCALE-Sim runs: odd array shapes, strides, partial folds, 1-8 kB buffers, write stalls."""
    cases = json.loads(EXTRA.read_text())["cases"]
    assert sum(c["stall_cycles"] > 0 for c in cases) >= 30
    for case in cases:
        words = case["sram_kb"] * 1024
        run = run_layer(
            case["dataflow"],
            _extra_geometry(case),
            case["rows"],
            case["cols"],
            Buffers(words, words, words, case["bw"]),
        )
        assert (run.compute_cycles, run.stall_cycles) == (case["compute_cycles"], case["stall_cycles"]), case


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_the_ir_layer_path_equals_the_emulation_on_an_extra_case(dataflow: str) -> None:
    """The public API (Layer + Accelerator) feeds the emulation the same geometry as SCALE-Sim's files."""
    case = next(
        c
        for c in json.loads(EXTRA.read_text())["cases"]
        if c["dataflow"] == dataflow and c["kind"] == "conv" and c["stall_cycles"] > 0
    )
    lay = case["layer"]
    layer = conv("x", c=lay["c"], k=lay["k"], h=lay["h"], w=lay["w"], r=lay["r"], stride=lay["stride"])
    acc = Accelerator(
        get_template(f"systolic-{dataflow}"),
        case["rows"],
        case["cols"],
        ifmap_sram_kb=case["sram_kb"],
        filter_sram_kb=case["sram_kb"],
        ofmap_sram_kb=case["sram_kb"],
        dram_bw_bytes_per_cycle=case["bw"],
    )
    got = simulate_layer(layer, acc, "scalesim")
    assert (got.compute_cycles, got.stall_cycles) == (case["compute_cycles"], case["stall_cycles"])


def test_groups_run_as_separate_layers_like_scalesim_depthwise() -> None:
    """SCALE-Sim runs a depthwise layer channel by channel: cycles scale with the group count."""
    acc = Accelerator(
        get_template("systolic-ws"), 8, 8, ifmap_sram_kb=2, filter_sram_kb=2, ofmap_sram_kb=2, dram_bw_bytes_per_cycle=2
    )
    one = simulate_layer(conv("one", c=1, k=1, h=12, r=3), acc, "scalesim")
    dw = simulate_layer(conv("dw", c=6, k=6, h=12, r=3, groups=6), acc, "scalesim")
    assert dw.compute_cycles == 6 * one.compute_cycles and dw.stall_cycles == 6 * one.stall_cycles


def test_more_scratchpad_never_adds_reads_in_a_stall_free_run() -> None:
    layer = conv("c", c=32, k=32, h=18, r=3)
    acc = Accelerator(get_template("systolic-os"), 8, 8, dram_bw_bytes_per_cycle=None)
    got = simulate_layer(layer, acc, "scalesim")
    assert got.stall_cycles == 0 and got.dram_read_bytes["input"] >= layer.n * layer.c * layer.h * layer.w


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_stamp_table_cleared_when_window_ids_run_out_changes_nothing(
    dataflow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate-address check stamps each window with a uint8 id and clears the table when ids run
    out (here after 2 windows instead of 255, over ~300-1200 windows): the same cycles either way."""
    from coexplore.sim.cycle import scalesim_mem

    g = ConvGeometry(n=1, hp=18, wp=18, c=8, r=3, s=3, p=16, q=16, k=8)
    bufs = Buffers(64, 256, 256, 2.0)
    want = run_layer(dataflow, g, 4, 4, bufs)
    monkeypatch.setattr(scalesim_mem, "STAMP_IDS", 2)
    assert run_layer(dataflow, g, 4, 4, bufs) == want
