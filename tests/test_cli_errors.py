"""Bad input through the CLI: one line naming the bad value, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import Finished, run_cli

from coexplore.cli_common import parse_layer_spec
from coexplore.models.ir import IRError, OpKind


def _run(*args: str) -> Finished:
    return run_cli(*args)


def _assert_one_line_error(proc: Finished | subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0], proc.stderr


def test_layer_spec_parses_conv_gemm_and_matmul() -> None:
    conv = parse_layer_spec("conv:h=32,w=32,c=64,k=64,r=3,s=3,stride=1,pad=0")
    assert conv.kind is OpKind.CONV and (conv.p, conv.q) == (30, 30) and conv.macs == 33_177_600
    g = parse_layer_spec("gemm:m=256,k=512,n=128")
    assert g.kind is OpKind.LINEAR and g.macs == 256 * 512 * 128
    mm = parse_layer_spec("matmul:m=64,k=32,n=64,batch=4")
    assert mm.kind is OpKind.MATMUL and mm.macs == 4 * 64 * 32 * 64
    dw = parse_layer_spec("dw:h=16,c=32,r=3,pad=1")
    assert dw.kind is OpKind.DEPTHWISE and dw.macs == 32 * 16 * 16 * 9


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("lstm:h=3", "unknown layer type 'lstm'"),
        ("conv:h=32,c=64", "missing k"),
        ("conv:h=32,c=64,k=-8", "k=-8"),
        ("conv:h=32,c=64,k=8,q=3", "unknown field 'q'"),
        ("conv:h=2,c=4,k=4,r=5", "larger than its padded input"),
        ("gemm:m=2,k=x,n=3", "k='x' is not an integer"),
        ("gemm:m=0,k=2,n=3", "h=0"),
    ],
)
def test_bad_layer_specs(spec: str, fragment: str) -> None:
    with pytest.raises(IRError, match=None) as info:
        parse_layer_spec(spec)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["evaluate", "--layer", "conv:h=32,c=64,k=0", "--json"], "k=0"),
        (["evaluate", "--layer", "conv:h=32,c=64,k=8", "--template", "tpu"], "unknown template 'tpu'"),
        (["evaluate", "--layer", "conv:h=32,c=64,k=8", "--rows", "-4"], "rows=-4"),
        (["evaluate", "--layer", "conv:h=32,c=64,k=8", "--profile", "fast"], "unknown timing profile 'fast'"),
        (["evaluate", "--layer", "conv:h=32,c=64,k=8", "--accelerator", "/nonexistent/acc.yaml"], "no such file"),
        (["evaluate"], "no workload"),
        (["layers", "alexnet-9000"], "unknown model 'alexnet-9000'"),
        (["simulate", "--layer", "conv:h=8,c=4,k=4", "--noc-bw", "2"], "does not model the NoC"),
        (["simulate", "--layer", "conv:h=1024,c=512,k=512", "--template", "eyeriss"], "3,375,104 folds"),
        (["sweep", "--tasks", "resnet9", "--sram-kb", "32"], "--sram-kb does not apply with --tasks"),
        (
            ["validate", "--against", "scalesim", "--reference-dir", "/nonexistent"],
            "'/nonexistent/scalesim.json' not found",
        ),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], fragment: str) -> None:
    _assert_one_line_error(_run(*args), fragment)


def test_cli_rejects_malformed_template_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmapping: [unclosed\n")
    _assert_one_line_error(_run("evaluate", "--layer", "conv:h=8,c=4,k=4", "--template", str(bad)), "malformed YAML")


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The in-process runs above stand for processes; this one is a real process (exit code, stderr)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmapping: [unclosed\n")
    args = ["evaluate", "--layer", "conv:h=8,c=4,k=4", "--template", str(bad)]
    proc = subprocess.run([sys.executable, "-m", "coexplore.cli", *args], capture_output=True, text=True)
    _assert_one_line_error(proc, "malformed YAML")
