"""The technology table: its figures match the cited sources, scale sanely, and cite a source each."""

from __future__ import annotations

import ast
import inspect
from dataclasses import fields, replace

import pytest

import coexplore.sim.tech as tech_module
from coexplore.models.ir import CoexploreError
from coexplore.sim.tech import DEFAULT_TECH, TechTable, tech_for


def test_horowitz_figures_at_45nm() -> None:
    t = DEFAULT_TECH
    assert t.node_nm == 45.0
    assert t.mac_pj(8, 8, 32) == pytest.approx(0.2 + 0.1)  # 8-bit mult + 32-bit add
    assert t.mac_pj(32, 32, 0) == pytest.approx(3.1, rel=0.05)  # bits^2 rule vs the 32-bit mult's 3.1 pJ
    assert t.add_pj(8) == pytest.approx(0.03)
    for kb, pj_per_64b in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert t.sram_pj_per_bit(kb) * 64 == pytest.approx(pj_per_64b, rel=0.05)
    assert 1300 / 64 <= t.dram_pj_per_bit <= 2600 / 64
    assert t.pe_um2(8, 8, 32) == pytest.approx(282 + 137 + 48 * 4.522 + 451.5)  # + [RTL] glue
    assert t.sram_um2(1.0) == pytest.approx(600 * 0.045**2 * 8192)


def test_eyeriss_ratios_and_the_maestro_cross_check() -> None:
    t = DEFAULT_TECH
    assert t.rf_pj_per_bit * 16 == pytest.approx(1.0 * t.mac16_pj)
    assert t.noc_pj_per_bit * 16 == pytest.approx(2.0 * t.mac16_pj)
    assert t.rf_pj_per_bit < 1.68 * t.mac16_pj / 16 < t.noc_pj_per_bit  # MAESTRO's L1 between RF and NoC
    assert t.dram_pj_per_bit * 16 > 6 * t.sram_pj_per_bit(108)  # DRAM far above a 108 kB global buffer


def test_scaling_to_another_node() -> None:
    t22 = DEFAULT_TECH.scaled(22)
    assert DEFAULT_TECH.scaled(45) is DEFAULT_TECH
    assert t22.node_nm == 22
    assert t22.mac_pj(8, 8, 32) == pytest.approx(DEFAULT_TECH.mac_pj(8, 8, 32) * 22 / 45)
    assert t22.sram_pj_per_bit(64) == pytest.approx(DEFAULT_TECH.sram_pj_per_bit(64) * 22 / 45)
    assert t22.pe_um2(8, 8, 32) == pytest.approx(DEFAULT_TECH.pe_um2(8, 8, 32) * (22 / 45) ** 2)
    assert t22.dram_pj_per_bit == DEFAULT_TECH.dram_pj_per_bit  # off-chip: not scaled
    assert tech_for(22.0) == t22 and tech_for(22.0) is tech_for(22.0)
    assert DEFAULT_TECH.scaled(90).mac_pj(8, 8, 32) > DEFAULT_TECH.mac_pj(8, 8, 32)


def test_bit_width_scaling() -> None:
    t = DEFAULT_TECH
    assert t.mac_pj(16, 16, 32) - t.add_32b_pj == pytest.approx(4 * (t.mac_pj(8, 8, 32) - t.add_32b_pj))
    assert t.pe_um2(16, 16, 32) > t.pe_um2(8, 8, 32)


def test_calibration_changes_model_outputs() -> None:
    from coexplore.dataflows.io import get_template
    from coexplore.dataflows.spec import Accelerator
    from coexplore.models.ir import conv
    from coexplore.sim.analytical import evaluate_layer

    layer = conv("c", c=16, k=16, h=16, r=3)
    acc = Accelerator(dataflow=get_template("nvdla"), rows=8, cols=8)
    cheap_dram = replace(DEFAULT_TECH, dram_64b_pj=640.0)
    a = evaluate_layer(layer, acc, "rtl")
    b = evaluate_layer(layer, acc, "rtl", tech=cheap_dram)
    assert b.energy_breakdown_pj["dram"] == pytest.approx(a.energy_breakdown_pj["dram"] * 640 / 1300)
    assert b.energy_breakdown_pj["mac"] == a.energy_breakdown_pj["mac"]


@pytest.mark.parametrize("bad", [2, 400, "45"])
def test_bad_node_is_a_one_line_error(bad: object) -> None:
    with pytest.raises(CoexploreError, match=r"node_nm=.*expected 3\.\.180 nm") as info:
        DEFAULT_TECH.scaled(bad)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    with pytest.raises(CoexploreError, match="mult_8x8_pj=-1"):
        TechTable(mult_8x8_pj=-1)


def test_every_figure_cites_its_source_in_a_comment() -> None:
    source = inspect.getsource(tech_module.TechTable)
    lines = source.splitlines()
    tree = ast.parse(inspect.cleandoc("\n" + source) if source.startswith(" ") else source)
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    numeric = {f.name for f in fields(TechTable) if f.name != "node_nm"}
    seen = set()
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in numeric:
            line = lines[node.lineno - 1]
            assert "#" in line and any(
                tag in line for tag in ("[H14]", "[E16]", "[G12]", "[N45]", "[SB17]", "[RTL]", "fit")
            ), line
            seen.add(node.target.id)
    assert seen == numeric
