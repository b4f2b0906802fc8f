"""Honest inputs: ONNX symbolic dims, template formulas checked at load, JSON without NaN and with integer
cycles, the cycle simulator's size limit and NoC refusal, and the flags each command refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from coexplore.cli import cli
from coexplore.cli_common import json_ready, parse_input_shapes, versioned
from coexplore.models.ir import CoexploreError, conv


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def _one_line_error(args: list[str], *fragments: str) -> str:
    code, out = _run(*args)
    assert code != 0, out
    assert "Traceback" not in out
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out
    for fragment in fragments:
        assert fragment in lines[0], out
    return lines[0]


# ---- ONNX symbolic dims ---------------------------------------------------------------------------
def _onnx_conv(path: Path, dims: list) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), dtype=np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_symbolic_spatial_dims_need_a_shape(tmp_path: Path) -> None:
    from coexplore.models.from_onnx import from_onnx

    path = _onnx_conv(tmp_path / "dyn.onnx", ["batch", 3, "height", "width"])
    with pytest.raises(CoexploreError, match=r"input 'x' has symbolic dim 'height' at position 2") as info:
        from_onnx(path)
    assert "--input-shape" in str(info.value) and "\n" not in str(info.value)
    (layer,) = from_onnx(path, input_shapes=(2, 3, 10, 12)).layers
    assert (layer.n, layer.p, layer.q, layer.macs) == (2, 8, 10, 2 * 4 * 3 * 9 * 8 * 10)
    (layer,) = from_onnx(path, input_shapes={"x": (1, 3, 5, 5)}).layers
    assert (layer.p, layer.q) == (3, 3)


def test_symbolic_batch_alone_is_one_sample(tmp_path: Path) -> None:
    from coexplore.models.from_onnx import from_onnx

    (layer,) = from_onnx(_onnx_conv(tmp_path / "b.onnx", ["batch", 3, 7, 7])).layers
    assert (layer.n, layer.p) == (1, 5)


@pytest.mark.parametrize(
    "shapes, fragment",
    [
        ((1, 3, 8), "has rank 4"),
        ((1, 4, 8, 8), "dim 1 is fixed at 3, but --input-shape gives 4"),
        ({"image": (1, 3, 8, 8)}, "'image', which is not an input (expected one of x)"),
        ((1, 3, 0, 8), "expected positive integers"),
    ],
)
def test_bad_input_shapes_are_named(tmp_path: Path, shapes, fragment: str) -> None:
    from coexplore.models.from_onnx import from_onnx

    with pytest.raises(CoexploreError, match=None) as info:
        from_onnx(_onnx_conv(tmp_path / "m.onnx", ["batch", 3, "h", "w"]), input_shapes=shapes)
    assert fragment in str(info.value)


def test_cli_input_shape(tmp_path: Path) -> None:
    path = str(_onnx_conv(tmp_path / "dyn.onnx", ["batch", 3, "h", "w"]))
    _one_line_error(["layers", path], "symbolic dim 'h'", "--input-shape x=1x3xNxN")
    code, out = _run("layers", path, "--input-shape", "1x3x16x16", "--json")
    assert code == 0, out
    (layer,) = json.loads(out)["layers"]
    assert layer["macs"] == 4 * 3 * 9 * 14 * 14
    code, out = _run("evaluate", "--model", path, "--input-shape", "x=1x3x16x16", "--json")
    assert code == 0 and json.loads(out)["layers"][0]["macs"] == 4 * 3 * 9 * 14 * 14
    _one_line_error(["layers", path, "--input-shape", "1x3xbig"], "--input-shape '1x3xbig'", "positive integers")
    _one_line_error(["evaluate", "--layer", "conv:h=8,c=4,k=4", "--input-shape", "1x3x8x8"], "only an .onnx model")


def test_parse_input_shapes() -> None:
    assert parse_input_shapes(()) is None
    assert parse_input_shapes(("1x3x224x224",)) == (1, 3, 224, 224)
    assert parse_input_shapes(("a=1x8", "b=2x8")) == {"a": (1, 8), "b": (2, 8)}
    with pytest.raises(CoexploreError, match="name each one's input"):
        parse_input_shapes(("1x8", "2x8"))


# ---- template formulas --------------------------------------------------------------------------
def _template(tmp_path: Path, **timing: str) -> Path:
    from coexplore.dataflows.io import _builtin_dir

    text = (_builtin_dir("templates") / "systolic-ws.yaml").read_text().replace("name: systolic-ws", "name: mine")
    import yaml

    data = yaml.safe_load(text)
    data["timing"] = {**data.get("timing", {}), **timing}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "field, formula, problem",
    [
        ("fill", "rows - 4", "negative (-3) at rows=1"),
        ("drain", "cols / (rows - 1)", "infinite (division by zero) at rows=1"),
        ("preload", "(rows - 1) / (cols - 1)", "not a number"),
        ("pipeline", "T / ((cols - 2) * (cols - 2))", "infinite (division by zero) at rows=1, cols=2, T=1"),
        ("fill", "T - 100", "negative (-99) at rows=1, cols=1, T=1"),
    ],
)
def test_template_formulas_checked_at_load(tmp_path: Path, field: str, formula: str, problem: str) -> None:
    from coexplore.dataflows.io import load_dataflow

    path = _template(tmp_path, **{field: formula})
    with pytest.raises(CoexploreError) as info:
        load_dataflow(path)
    msg = str(info.value)
    assert f"template 'mine' field 'timing.{field}' = {formula!r}" in msg and problem in msg, msg
    assert str(path) in msg and "\n" not in msg
    _one_line_error(["evaluate", "--layer", "conv:h=8,c=4,k=4", "--template", str(path)], f"timing.{field}", problem)


def test_shipped_templates_and_profiles_pass_the_range_check() -> None:
    from coexplore.dataflows.expr import CHECK_T, Expr, range_problem
    from coexplore.dataflows.io import builtin_templates, profiles

    assert len(builtin_templates()) >= 6 and {"rtl", "scalesim", "ideal"} <= set(profiles())
    assert CHECK_T[0] == 1 and CHECK_T[-1] == 4096 and 2048 in CHECK_T and 2047 in CHECK_T
    assert range_problem(Expr("rows + cols - 2")) is None
    assert range_problem(Expr("ceil(log2(rows)) + 1")) is None


# ---- JSON ------------------------------------------------------------------------------------------
def test_json_ready_makes_cycles_integral_and_drops_non_finite() -> None:
    out = json_ready(
        {
            "latency_cycles": 561209.5,
            "compute_cycles": 129936.0,
            "stall_cycles": 431273.5,
            "utilization": float("nan"),
            "energy_pj": np.float64(np.inf),
            "layers": [{"cycles": 2.2}],
            "macs": np.int64(7),
            "array": np.array([1.0, 2.0]),
        }
    )
    assert out["latency_cycles"] == 561210 and isinstance(out["latency_cycles"], int)
    assert out["compute_cycles"] == 129936 and out["stall_cycles"] == 561210 - 129936
    assert out["utilization"] is None and out["energy_pj"] is None
    assert out["layers"] == [{"cycles": 3}] and out["macs"] == 7 and out["array"] == [1.0, 2.0]
    json.dumps(out, allow_nan=False)
    assert list(versioned({"a": 1}, {"seed": 3}))[:2] == ["coexplore_version", "seeds"]


def test_every_json_output_is_versioned_with_integer_cycles() -> None:
    code, out = _run("evaluate", "--layer", "conv:h=32,c=64,k=64", "--template", "nvdla", "--dram-bw", "3", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["coexplore_version"]

    def walk(obj, key=None):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, k)
        elif isinstance(obj, list):
            for v in obj:
                walk(v, key)
        elif key is not None and key.endswith("cycles") and obj is not None:
            assert isinstance(obj, int), (key, obj)
        elif isinstance(obj, float):
            assert math.isfinite(obj)

    walk(data)
    for args in (
        ["templates", "--json"],
        ["layers", "resnet9", "--json"],
        ["simulate", "--layer", "conv:h=8,c=4,k=4", "--json"],
    ):
        code, out = _run(*args)
        assert code == 0, out
        data = json.loads(out)
        assert data["coexplore_version"], args
        walk(data)


# ---- simulate: size limit and NoC ---------------------------------------------------------------
def test_simulate_refuses_a_layer_it_cannot_hold() -> None:
    line = _one_line_error(
        ["simulate", "--layer", "conv:h=1024,c=512,k=512", "--template", "eyeriss"],
        "layer 'conv'",
        "3,375,104 folds",
        "holds at most 16,777,216",
    )
    assert "coexplore evaluate" in line


def test_simulation_size_check_passes_ordinary_layers() -> None:
    from coexplore.cli_common import build_accelerator
    from coexplore.cli_sim import simulation_size_problem
    from coexplore.dataflows.io import get_profile

    acc = build_accelerator(None, "systolic-ws", 8, 8, 64, None, 8.0, "per_operand", 8, 45, 1000)
    layer = conv("c", c=256, k=256, h=56, r=3, pad=1)
    for prof in ("rtl", "scalesim"):
        assert simulation_size_problem(layer, acc, get_profile(prof)) is None
    big = conv("big", c=512, k=512, h=512, r=3, pad=1)
    assert "stream steps" in simulation_size_problem(big, acc, get_profile("scalesim"))


def test_simulate_states_it_does_not_model_the_noc() -> None:
    _one_line_error(
        ["simulate", "--layer", "conv:h=8,c=4,k=4", "--noc-bw", "1"], "--noc-bw 1", "does not model the NoC"
    )
    code, out = _run("simulate", "--layer", "conv:h=8,c=4,k=4", "--dram-bw", "4")
    assert code == 0 and "NoC not modeled" in out and "DRAM 4 B/cycle" in out
    code, out = _run("simulate", "--layer", "conv:h=8,c=4,k=4", "--json")
    assert json.loads(out)["noc_modeled"] is False


# ---- flags each command refuses, and the names --help lists -------------------------------------
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["sweep", "--tasks", "resnet9,unet", "--sizes", "8x8"], "--sizes does not apply with --tasks"),
        (["sweep", "--tasks", "resnet9,unet", "--dram-bw", "8"], "--dram-bw does not apply with --tasks"),
        (["sweep", "--tasks", "resnet9", "--model", "resnet18"], "--model does not apply with --tasks"),
        (["sweep", "--model", "resnet9", "--pe-budget", "1024"], "--pe-budget does not apply without --tasks"),
        (["validate", "--against", "maestro", "--limit", "3"], "--limit belongs to the analytical-vs-simulator suite"),
        (["validate", "--out", "x"], "--out applies only with --against"),
    ],
)
def test_ignored_flags_are_refused(args: list[str], fragment: str) -> None:
    _one_line_error(args, fragment)


def test_help_lists_templates_and_profiles() -> None:
    code, out = _run("evaluate", "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert "[eyeriss|nvdla|shidiannao|systolic-is|systolic-os|systolic-ws|FILE.yaml]" in flat
    assert "[ideal|rtl|scalesim]" in flat
