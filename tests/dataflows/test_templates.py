"""Dataflow templates as data: the shipped ones load, a user's YAML adds one, bad YAML is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from coexplore.dataflows.io import builtin_templates, get_profile, get_template, load_accelerator, load_dataflow
from coexplore.dataflows.spec import Accelerator, Operand, SpecError
from coexplore.models.ir import Dim, OpKind

SHIPPED = {"systolic-os", "systolic-ws", "systolic-is", "nvdla", "shidiannao", "eyeriss"}

USER_TEMPLATE = """
name: my-kc
description: K on rows, C on columns, pixels streamed.
stationary: weight
interconnect: broadcast
mapping:
  rows: {dims: [K]}
  cols: {dims: [C]}
  temporal: [P, Q, R, S]
timing:
  preload: cols
  pipeline: ceil(log2(cols))
"""


def test_all_shipped_templates_load() -> None:
    loaded = builtin_templates()
    assert SHIPPED <= set(loaded)
    assert loaded["systolic-ws"].stationary is Operand.WEIGHT
    assert loaded["shidiannao"].mapping.rows.dims == (Dim.P,)
    assert loaded["shidiannao"].mapping_for(OpKind.LINEAR).cols.dims == (Dim.K,)
    assert loaded["eyeriss"].mapping.rows.dims == (Dim.R, Dim.C)
    assert set(get_profile("scalesim").__slots__) >= {"overlap_folds", "preload_next_stationary"}


def test_user_template_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "my-kc.yaml"
    path.write_text(USER_TEMPLATE)
    df = load_dataflow(path)
    assert df.name == "my-kc" and df.mapping.outer == (Dim.G, Dim.N)
    assert df.timing.pipeline(rows=4, cols=16, T=1) == 4
    assert get_template(str(path)).name == "my-kc"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("name: x\n  bad: [indent", "malformed YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        (USER_TEMPLATE.replace("stationary:", "stationry:"), "unknown field 'stationry'"),
        (USER_TEMPLATE.replace("stationary: weight", "stationary: psum"), "field 'stationary' = 'psum'"),
        (USER_TEMPLATE.replace("dims: [K]", "dims: [Z]"), "field 'mapping.rows.dims.0' = 'Z'"),
        (USER_TEMPLATE.replace("dims: [C]", "dims: [K]"), "more than once"),
        (USER_TEMPLATE.replace("preload: cols", "preload: __import__('os')"), "unknown function '__import__'"),
        (USER_TEMPLATE.replace("preload: cols", "preload: rows + pes"), "unknown name 'pes'"),
        (
            USER_TEMPLATE.replace("description: K on rows, C on columns, pixels streamed.\n", ""),
            "missing required field 'description'",
        ),
    ],
)
def test_bad_template_yaml_is_one_line_naming_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_dataflow(path)
    message = str(info.value)
    assert fragment in message and "\n" not in message and str(path) in message


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown template 'tpu'.*systolic-ws"):
        get_template("tpu")


def test_accelerator_yaml_and_bad_values(tmp_path: Path) -> None:
    good = tmp_path / "acc.yaml"
    good.write_text("template: nvdla\nrows: 16\ncols: 32\ndram_bw_bytes_per_cycle: 16\n")
    acc = load_accelerator(good)
    assert acc.pes == 512 and acc.dataflow.name == "nvdla" and acc.dram_bw_bytes_per_cycle == 16
    bad = tmp_path / "bad.yaml"
    bad.write_text("template: nvdla\nrows: -4\ncols: 32\n")
    with pytest.raises(SpecError, match="field 'rows' = -4"):
        load_accelerator(bad)
    bad.write_text("template: nvdla\nrows: 4\ncols: 32\nsram: 8\n")
    with pytest.raises(SpecError, match="unknown field 'sram'"):
        load_accelerator(bad)
    with pytest.raises(SpecError, match="rows=0"):
        Accelerator(dataflow=get_template("nvdla"), rows=0, cols=4)
    with pytest.raises(SpecError, match="no such file"):
        load_accelerator(tmp_path / "missing.yaml")
