"""Pieces every CLI command shares: layer SPEC parsing, workload loading, accelerator flags.

Kept apart from the commands so each command module (evaluate, simulate, system, rtl...) stays
small and owns only its own behaviour.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import click

from coexplore.models.ir import CoexploreError, IRError, Layer, Network, OpKind

# ---- layer specs ---------------------------------------------------------------------------------
_SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "conv": ("h", "w", "c", "k", "r", "s", "stride", "pad", "groups", "n", "dilation", "bits"),
    "dw": ("h", "w", "c", "r", "s", "stride", "pad", "n", "dilation", "bits"),
    "gemm": ("m", "k", "n", "bits"),
    "matmul": ("m", "k", "n", "batch", "bits"),
    "pool": ("h", "w", "c", "r", "s", "stride", "pad", "n", "bits"),
    "eltwise": ("h", "w", "c", "n", "operands", "bits"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "conv": ("h", "c", "k"), "dw": ("h", "c"), "gemm": ("m", "k", "n"), "matmul": ("m", "k", "n"),
    "pool": ("h", "c"), "eltwise": ("h", "c"),
}


def parse_layer_spec(spec: str, name: str | None = None) -> Layer:
    """``conv:h=32,w=32,c=64,k=64,r=3,s=3,stride=1,pad=0`` or ``gemm:m=256,k=512,n=128`` -> Layer."""
    kind, sep, body = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in _SPEC_KEYS:
        raise IRError(f"layer spec {spec!r}: unknown layer type {kind!r} (expected one of {', '.join(_SPEC_KEYS)})")
    values: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise IRError(f"layer spec {spec!r}: {item!r} is not key=value")
        if key not in _SPEC_KEYS[kind]:
            raise IRError(f"layer spec {spec!r}: unknown field {key!r} for {kind} (expected {', '.join(_SPEC_KEYS[kind])})")
        try:
            values[key] = int(raw)
        except ValueError:
            raise IRError(f"layer spec {spec!r}: {key}={raw!r} is not an integer") from None
    missing = [k for k in _REQUIRED[kind] if k not in values]
    if missing:
        raise IRError(f"layer spec {spec!r}: missing {', '.join(missing)} (a {kind} needs {', '.join(_REQUIRED[kind])})")
    label = name or kind
    bits = values.get("bits", 8)
    b = dict(input_bits=bits, weight_bits=bits, output_bits=bits)
    if kind == "gemm":
        return Layer(label, OpKind.LINEAR, k=values["n"], c=values["k"], h=values["m"], w=1, **b)
    if kind == "matmul":
        batch = values.get("batch", 1)
        return Layer(label, OpKind.MATMUL, k=values["n"] * batch, c=values["k"] * batch, h=values["m"], w=1,
                     groups=batch, **b)
    h = values["h"]
    w = values.get("w", h)
    r = values.get("r", 3 if kind in ("conv", "dw") else 2 if kind == "pool" else 1)
    s = values.get("s", r)
    stride = values.get("stride", 1 if kind != "pool" else r)
    pad = values.get("pad", 0)
    dil = values.get("dilation", 1)
    common = dict(h=h, w=w, n=values.get("n", 1), **b)
    if kind == "eltwise":
        return Layer(label, OpKind.ELTWISE, k=values["c"], c=values["c"], operands=values.get("operands", 2), **common)
    geo = dict(r=r, s=s, stride_h=stride, stride_w=stride, pad_h=pad, pad_w=pad)
    if kind == "pool":
        return Layer(label, OpKind.POOL, k=values["c"], c=values["c"], groups=values["c"], **geo, **common)
    if kind == "dw":
        c = values["c"]
        return Layer(label, OpKind.DEPTHWISE, k=c, c=c, groups=c, dilation_h=dil, dilation_w=dil, **geo, **common)
    groups = values.get("groups", 1)
    op = OpKind.DEPTHWISE if groups > 1 and groups == values["c"] else OpKind.CONV
    return Layer(label, op, k=values["k"], c=values["c"], groups=groups, dilation_h=dil, dilation_w=dil,
                 **geo, **common)


def load_workload(model: str | None, layer_specs: tuple[str, ...] = ()) -> Network:
    """A network from ``--layer`` specs, a zoo name, a Python file building an nn.Module, or an ONNX file."""
    if layer_specs and model:
        raise CoexploreError("give either --layer or --model, not both")
    if layer_specs:
        layers = [parse_layer_spec(s, name=f"L{i}" if len(layer_specs) > 1 else None) for i, s in enumerate(layer_specs)]
        return Network.chain("layers", layers)
    if not model:
        raise CoexploreError("no workload: give --layer SPEC or --model NAME|FILE.py|FILE.onnx")
    if model.endswith(".onnx"):
        from coexplore.models.from_onnx import from_onnx

        return from_onnx(model)
    if model.endswith(".py"):
        from coexplore.models.from_torch import from_python_file

        return from_python_file(model)
    from coexplore.models.zoo import get_network

    return get_network(model)


# ---- accelerator flags ---------------------------------------------------------------------------
def accelerator_options(default_profile: str = "rtl") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags that describe one accelerator, shared by evaluate, simulate and verify."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        opts = [
            click.option("--accelerator", "accelerator_yaml", type=str, default=None,
                         help="Accelerator YAML (overrides the flags below)."),
            click.option("--template", default="systolic-ws", show_default=True,
                         help="Dataflow template name or a template YAML file."),
            click.option("--rows", type=int, default=16, show_default=True, help="PE array rows."),
            click.option("--cols", type=int, default=16, show_default=True, help="PE array columns."),
            click.option("--sram-kb", type=float, default=64.0, show_default=True,
                         help="Scratchpad per operand (ifmap, filter, ofmap) in kB, double-buffered."),
            click.option("--noc-bw", type=float, default=None, help="NoC bandwidth, bytes/cycle (default unlimited)."),
            click.option("--dram-bw", type=float, default=None,
                         help="DRAM bandwidth, bytes/cycle per operand port (default unlimited)."),
            click.option("--dram-ports", type=click.Choice(["per_operand", "shared"]), default="per_operand",
                         show_default=True, help="One DRAM port per operand, or one shared port."),
            click.option("--bits", type=int, default=8, show_default=True, help="Operand bit width."),
            click.option("--node-nm", type=float, default=45.0, show_default=True, help="Technology node (nm)."),
            click.option("--clock-mhz", type=float, default=1000.0, show_default=True, help="Clock (MHz)."),
            click.option("--profile", default=default_profile, show_default=True,
                         help="Timing profile: scalesim, rtl or ideal."),
        ]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


def build_accelerator(accelerator_yaml: str | None, template: str, rows: int, cols: int, sram_kb: float,
                      noc_bw: float | None, dram_bw: float | None, dram_ports: str, bits: int, node_nm: float,
                      clock_mhz: float, profile: str | None = None, **_: Any):
    """The ``Accelerator`` the accelerator flags describe.

    In profile ``scalesim`` every word is one ``bits``-wide word as in SCALE-Sim, partial sums included,
    so ``--sram-kb`` and ``--dram-bw`` count the same words SCALE-Sim counts.
    """
    from coexplore.dataflows.io import get_template, load_accelerator
    from coexplore.dataflows.spec import Accelerator

    if accelerator_yaml:
        return load_accelerator(accelerator_yaml)
    return Accelerator(
        dataflow=get_template(template), rows=rows, cols=cols, ifmap_sram_kb=sram_kb, filter_sram_kb=sram_kb,
        ofmap_sram_kb=sram_kb, noc_bw_bytes_per_cycle=noc_bw, dram_bw_bytes_per_cycle=dram_bw,
        dram_ports=dram_ports, input_bits=bits, weight_bits=bits, tech_node_nm=node_nm, clock_mhz=clock_mhz,
        acc_bits=bits if profile == "scalesim" else max(32, 2 * bits),
    )


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=_json_default))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad-input exceptions into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CoexploreError as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename}: no such file") from None

    return wrapper
