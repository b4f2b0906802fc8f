"""The table of hardware kinds (rtl/kinds.py): a template's generator is chosen from its structure,
every row is complete, and a template no generator builds gets a one-line error naming the kinds."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from rtl_helpers import small_acc

from coexplore.dataflows.io import builtin_templates, get_template
from coexplore.rtl import kinds
from coexplore.rtl.params import RtlError, params_from_accelerator

RTL = Path(kinds.__file__).resolve().parent


def test_shipped_templates_get_their_kind_from_structure():
    shipped = kinds.shipped_template_kinds()
    assert {"systolic-ws": "ws", "systolic-os": "os", "eyeriss": "rs"}.items() <= shipped.items()
    assert shipped == {k.template: k.name for k in kinds.KINDS}
    for kind in kinds.KINDS:
        assert kinds.kind_for(get_template(kind.template)) is kind


def test_a_renamed_template_with_the_same_structure_is_built_by_the_same_generator():
    df = dataclasses.replace(get_template("systolic-os"), name="my-os")
    params = params_from_accelerator(dataclasses.replace(small_acc("systolic-os"), dataflow=df))
    assert params.kind == "os" and params.template == "my-os"


def test_a_template_that_times_differently_is_refused():
    from coexplore.dataflows.expr import Expr

    ws = get_template("systolic-ws")
    df = dataclasses.replace(ws, name="ws-fast", timing=dataclasses.replace(ws.timing, fill=Expr("cols")))
    with pytest.raises(RtlError, match="ws-fast"):
        kinds.kind_for(df)


def test_every_shipped_template_has_a_generator():
    """Every template the package ships is built by some kind (unbuilt ones: the test below)."""
    assert set(kinds.shipped_template_kinds()) == set(builtin_templates())


def test_a_template_no_row_builds_names_itself_and_the_kinds():
    """shidiannao's structure with another fill, and one whose linear and matmul layers map differently."""
    from coexplore.dataflows.expr import Expr

    sdn = get_template("shidiannao")
    slow = dataclasses.replace(sdn, name="odd-sdn", timing=dataclasses.replace(sdn.timing, fill=Expr("2")))
    split = dataclasses.replace(sdn, name="split-sdn", overrides=sdn.overrides[:1])
    for df, why in ((slow, "rows P (flatten), cols Q"), (split, "linear and matmul layers map differently")):
        with pytest.raises(RtlError) as err:
            params_from_accelerator(dataclasses.replace(small_acc("shidiannao"), dataflow=df))
        msg = str(err.value)
        assert "\n" not in msg and repr(df.name) in msg and why in msg
        assert all(f"{k.name} ({k.template})" in msg for k in kinds.KINDS)


def test_every_row_is_complete():
    """A row names a component class and a host module with the whole host protocol."""
    for kind in kinds.KINDS:
        host = kind.program_module()
        for fn in ("scratchpads", "check_layer", "layout", "cycles", "out_beats", "decode_output"):
            assert callable(getattr(host, fn)), (kind.name, fn)
        assert kind.cfg and len(set(kind.cfg)) == len(kind.cfg)
        assert kind.component_class().__name__
        assert kind.template in builtin_templates()


def test_nothing_outside_the_table_dispatches_on_a_kind_or_template_name():
    """No if-chains keyed on kinds or template names in the generator's modules."""
    names = {k.name for k in kinds.KINDS} | {k.template for k in kinds.KINDS}
    for path in sorted(RTL.glob("*.py")):
        if path.name == "kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)}
                assert not (consts & names), f"{path.name}:{node.lineno} compares against {consts & names}"
            if isinstance(node, ast.Attribute) and node.attr == "ArrayKind":
                raise AssertionError(f"{path.name}:{node.lineno} uses ArrayKind")
