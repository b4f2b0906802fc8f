"""Pieces every CLI command shares: layer SPEC parsing, workload loading, accelerator flags.

Kept apart from the commands so each command module (evaluate, simulate, system, rtl...) stays
small and owns only its own behaviour.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    "conv": ("h", "c", "k"),
    "dw": ("h", "c"),
    "gemm": ("m", "k", "n"),
    "matmul": ("m", "k", "n"),
    "pool": ("h", "c"),
    "eltwise": ("h", "c"),
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
            raise IRError(
                f"layer spec {spec!r}: unknown field {key!r} for {kind} (expected {', '.join(_SPEC_KEYS[kind])})"
            )
        try:
            values[key] = int(raw)
        except ValueError:
            raise IRError(f"layer spec {spec!r}: {key}={raw!r} is not an integer") from None
    missing = [k for k in _REQUIRED[kind] if k not in values]
    if missing:
        raise IRError(
            f"layer spec {spec!r}: missing {', '.join(missing)} (a {kind} needs {', '.join(_REQUIRED[kind])})"
        )
    label = name or kind
    bits = values.get("bits", 8)
    b = dict(input_bits=bits, weight_bits=bits, output_bits=bits)
    if kind == "gemm":
        return Layer(label, OpKind.LINEAR, k=values["n"], c=values["k"], h=values["m"], w=1, **b)
    if kind == "matmul":
        batch = values.get("batch", 1)
        return Layer(
            label, OpKind.MATMUL, k=values["n"] * batch, c=values["k"] * batch, h=values["m"], w=1, groups=batch, **b
        )
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
    return Layer(
        label, op, k=values["k"], c=values["c"], groups=groups, dilation_h=dil, dilation_w=dil, **geo, **common
    )


def parse_input_shapes(specs: tuple[str, ...]) -> dict[str, tuple[int, ...]] | tuple[int, ...] | None:
    """``--input-shape`` values: ``1x3x224x224`` (the only input) or ``NAME=1x3x224x224`` (repeatable)."""
    if not specs:
        return None
    named: dict[str, tuple[int, ...]] = {}
    plain: tuple[int, ...] | None = None
    for spec in specs:
        name, eq, dims_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        try:
            dims = tuple(int(d) for d in dims_text.lower().split("x"))
        except ValueError:
            dims = ()
        if not dims or any(d <= 0 for d in dims):
            raise CoexploreError(
                f"--input-shape {spec!r}: expected positive integers joined by 'x', "
                f"optionally after the input's name (e.g. 1x3x224x224 or input=1x3x224x224)"
            )
        if eq:
            named[name.strip()] = dims
        elif plain is not None or len(specs) > 1:
            raise CoexploreError(
                f"--input-shape {spec!r}: several shapes given; name each one's input (NAME=1x3x224x224)"
            )
        else:
            plain = dims
    return named if named else plain


def load_workload(model: str | None, layer_specs: tuple[str, ...] = (), input_shapes: tuple[str, ...] = ()) -> Network:
    """A network from ``--layer`` specs, a zoo name, a Python file building an nn.Module, or an ONNX file
    (``input_shapes``: the ``--input-shape`` values, for ONNX inputs with symbolic dims)."""
    if layer_specs and model:
        raise CoexploreError("give either --layer or --model, not both")
    if input_shapes and not (model or "").endswith(".onnx"):
        raise CoexploreError(
            f"--input-shape {input_shapes[0]!r}: only an .onnx model takes input shapes "
            f"(got {'--layer' if layer_specs else repr(model)})"
        )
    if layer_specs:
        layers = [
            parse_layer_spec(s, name=f"L{i}" if len(layer_specs) > 1 else None) for i, s in enumerate(layer_specs)
        ]
        return Network.chain("layers", layers)
    if not model:
        raise CoexploreError("no workload: give --layer SPEC or --model NAME|FILE.py|FILE.onnx")
    if model.endswith(".onnx"):
        from coexplore.models.from_onnx import from_onnx

        return from_onnx(model, input_shapes=parse_input_shapes(input_shapes))
    if model.endswith(".py"):
        from coexplore.models.from_torch import from_python_file

        return from_python_file(model)
    from coexplore.models.zoo import get_network

    return get_network(model)


def input_shape_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--input-shape``: shapes of an ONNX model's inputs (needed when one has a symbolic dim)."""
    return click.option(
        "--input-shape",
        "input_shapes",
        multiple=True,
        metavar="[NAME=]DxDx...",
        help="ONNX input shape, e.g. 1x3x224x224 (NAME=... per input when there are several); "
        "needed when an input has symbolic dims other than the batch.",
    )(fn)


# ---- accelerator flags ---------------------------------------------------------------------------
class _NamesType(click.ParamType):
    """A string option whose help lists the names it knows, read lazily (only when help is shown).

    Conversion stays a pass-through: the command resolves the value and a bad one ends in the
    project's one-line error (click's own usage errors print several lines).
    """

    def __init__(self, name: str, names: Callable[[], list[str]], extra: str = "", many: bool = False) -> None:
        self.name = name
        self._names = names
        self._extra = extra
        self._many = many  # a comma-separated list of the names

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        try:
            names = self._names()
        except Exception:  # a broken user template must not break --help
            names = []
        one = "[" + "|".join([*names, *([self._extra] if self._extra else [])]) + "]"
        return f"{one},..." if self._many else one

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


def template_names() -> list[str]:
    """Names of the shipped templates and those in $COEXPLORE_TEMPLATES."""
    from coexplore.dataflows.io import templates as all_templates

    return sorted(all_templates())


def profile_names() -> list[str]:
    """Names of the timing profiles."""
    from coexplore.dataflows.io import profiles

    return sorted(profiles())


TEMPLATE = _NamesType("template", template_names, "FILE.yaml")
PROFILE = _NamesType("profile", profile_names)
TEMPLATES = _NamesType("templates", template_names, many=True)
PROFILES = _NamesType("profiles", profile_names, many=True)


def accelerator_options(default_profile: str = "rtl") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags that describe one accelerator, shared by evaluate, simulate and verify."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        opts = [
            click.option(
                "--accelerator",
                "accelerator_yaml",
                type=str,
                default=None,
                help="Accelerator YAML (overrides the flags below).",
            ),
            click.option(
                "--template",
                type=TEMPLATE,
                default="systolic-ws",
                show_default=True,
                help="Dataflow template: a shipped or $COEXPLORE_TEMPLATES name, or a template YAML file.",
            ),
            click.option("--rows", type=int, default=16, show_default=True, help="PE array rows."),
            click.option("--cols", type=int, default=16, show_default=True, help="PE array columns."),
            click.option(
                "--sram-kb",
                type=float,
                default=64.0,
                show_default=True,
                help="Scratchpad per operand (ifmap, filter, ofmap) in kB, double-buffered.",
            ),
            click.option("--noc-bw", type=float, default=None, help="NoC bandwidth, bytes/cycle (default unlimited)."),
            click.option(
                "--dram-bw",
                type=float,
                default=None,
                help="DRAM bandwidth, bytes/cycle per operand port (default unlimited).",
            ),
            click.option(
                "--dram-ports",
                type=click.Choice(["per_operand", "shared"]),
                default="per_operand",
                show_default=True,
                help="One DRAM port per operand, or one shared port.",
            ),
            click.option("--bits", type=int, default=8, show_default=True, help="Operand bit width."),
            click.option(
                "--pe-stages",
                type=int,
                default=0,
                show_default=True,
                help="Pipeline registers in each PE (0: multiply-accumulate in one cycle; 1: between them).",
            ),
            click.option("--node-nm", type=float, default=45.0, show_default=True, help="Technology node (nm)."),
            click.option("--clock-mhz", type=float, default=1000.0, show_default=True, help="Clock (MHz)."),
            click.option(
                "--profile",
                type=PROFILE,
                default=default_profile,
                show_default=True,
                help="Timing profile (dataflows/templates/profiles.yml).",
            ),
        ]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


def build_accelerator(
    accelerator_yaml: str | None,
    template: str,
    rows: int,
    cols: int,
    sram_kb: float,
    noc_bw: float | None,
    dram_bw: float | None,
    dram_ports: str,
    bits: int,
    node_nm: float,
    clock_mhz: float,
    profile: str | None = None,
    pe_stages: int = 0,
    **_: Any,
):
    """The ``Accelerator`` the accelerator flags describe.

    In profile ``scalesim`` every word is one ``bits``-wide word as in SCALE-Sim, partial sums included,
    so ``--sram-kb`` and ``--dram-bw`` count the same words SCALE-Sim counts.
    """
    from coexplore.dataflows.io import get_template, load_accelerator
    from coexplore.dataflows.spec import Accelerator

    if accelerator_yaml:
        return load_accelerator(accelerator_yaml)
    return Accelerator(
        dataflow=get_template(template),
        rows=rows,
        cols=cols,
        ifmap_sram_kb=sram_kb,
        filter_sram_kb=sram_kb,
        ofmap_sram_kb=sram_kb,
        noc_bw_bytes_per_cycle=noc_bw,
        dram_bw_bytes_per_cycle=dram_bw,
        dram_ports=dram_ports,
        input_bits=bits,
        weight_bits=bits,
        tech_node_nm=node_nm,
        clock_mhz=clock_mhz,
        acc_bits=bits if profile == "scalesim" else max(32, 2 * bits),
        pe_stages=pe_stages,
    )


def coexplore_version() -> str:
    """The installed distribution's version (``coexplore.__version__`` when metadata is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coexplore")
    except PackageNotFoundError:
        import coexplore

        return str(getattr(coexplore, "__version__", "unknown"))


def versioned(payload: dict[str, Any], seeds: dict[str, int] | None = None) -> dict[str, Any]:
    """``payload`` with ``coexplore_version`` first and, when given, the ``seeds`` of the inputs."""
    out: dict[str, Any] = {"coexplore_version": coexplore_version()}
    if seeds:
        out["seeds"] = dict(seeds)
    out.update((k, v) for k, v in payload.items() if k not in out)
    return out


def json_ready(obj: Any) -> Any:
    """``obj`` made plain and honest for JSON.

    - Cycle counts (keys ``cycles``, ``*_cycles`` or ``*_cycle``) become integers: a fractional count (the
      analytical model divides bytes by bandwidth) is rounded up, since no operation ends within a
      cycle; ``stall_cycles`` is then ``latency/total - compute`` so the three still add up.
    - Non-finite floats (NaN, ±inf) become ``null``: JSON has no such numbers, and none of our
      outputs means one (an unlimited bandwidth is already ``null``).
    - numpy scalars and arrays, paths and tuples become their plain JSON forms.
    """
    return _ready(obj, None)


def _ready(obj: Any, key: str | None) -> Any:
    import math

    import numpy as np

    if isinstance(obj, dict):
        out = {str(k): _ready(v, str(k)) for k, v in obj.items()}
        total = out.get("total_cycles", out.get("latency_cycles"))
        if (
            all(isinstance(out.get(k), int) for k in ("stall_cycles", "compute_cycles"))
            and isinstance(total, int)
            and total >= out["compute_cycles"]
            and abs(out["stall_cycles"] - (total - out["compute_cycles"])) <= 1
        ):
            out["stall_cycles"] = total - out["compute_cycles"]
        return out
    if isinstance(obj, (list, tuple)):
        return [_ready(v, key) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_ready(v, key) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        obj = int(obj)
    if isinstance(obj, (float, np.floating)):
        obj = float(obj)
        if not math.isfinite(obj):
            return None
        if key is not None and (key == "cycles" or key.endswith(("_cycles", "_cycle"))):
            return int(math.ceil(obj - 1e-9))
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit_json(payload: Any, seeds: dict[str, int] | None = None) -> None:
    """Print ``payload`` as JSON: versioned (a dict gains ``coexplore_version`` and ``seeds``), cycle
    counts integral, no NaN/Infinity (``allow_nan=False`` is the guard; ``json_ready`` converts)."""
    if not isinstance(payload, dict):
        raise TypeError("emit_json takes a dict (wrap lists under a key) so it can carry coexplore_version")
    text = json.dumps(json_ready(versioned(payload, seeds)), indent=2, default=_json_default, allow_nan=False)
    click.echo(text)


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
