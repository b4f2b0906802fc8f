"""CLI commands over the analytical model: templates, layers, evaluate, sweep, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coexplore.cli_common import (
    PROFILE,
    TEMPLATES,
    accelerator_options,
    build_accelerator,
    emit_json,
    input_shape_option,
    load_workload,
    user_errors,
)
from coexplore.models.ir import CoexploreError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@user_errors
def templates(as_json: bool) -> None:
    """List the dataflow templates (built-in and from $COEXPLORE_TEMPLATES)."""
    from coexplore.dataflows.io import templates as all_templates

    rows = []
    for name, df in sorted(all_templates().items()):
        m = df.mapping
        rows.append(
            {
                "name": name,
                "stationary": df.stationary.value,
                "interconnect": df.interconnect.value,
                "rows": "*".join(d.value for d in m.rows.dims),
                "cols": "*".join(d.value for d in m.cols.dims),
                "temporal": "*".join(d.value for d in m.temporal),
                "description": df.description,
            }
        )
    if as_json:
        emit_json({"templates": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dataflow templates")
    for col in ("name", "stationary", "rows", "cols", "temporal", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(r[c] for c in ("name", "stationary", "rows", "cols", "temporal", "description")))
    Console().print(table)


@click.command()
@click.argument("model")
@input_shape_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@user_errors
def layers(model: str, input_shapes: tuple[str, ...], as_json: bool) -> None:
    """Print the layer table of MODEL (a zoo name, a .py file building an nn.Module, or a .onnx file)."""
    net = load_workload(model, input_shapes=input_shapes)
    rows: list[dict[str, Any]] = [
        {
            "index": i,
            "name": l.name,
            "kind": l.kind.value,
            "shape": l.describe(),
            "macs": l.macs,
            "weights": l.weight_words if l.kind.has_weights else 0,
            "vector_ops": l.vector_ops,
            "inputs": list(net.predecessors(i)),
        }
        for i, l in enumerate(net.layers)
    ]
    if as_json:
        emit_json({"network": net.name, "layers": rows, "total_macs": net.macs})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{net.name}: {len(rows)} layers, {net.macs / 1e6:,.1f} M MACs, {net.weight_words / 1e6:,.2f} M weights"
    )
    for col in ("#", "name", "kind", "shape", "MACs", "weights", "inputs"):
        table.add_column(col, justify="right" if col in ("#", "MACs", "weights") else "left")
    for r in rows:
        table.add_row(
            str(r["index"]),
            r["name"],
            r["kind"],
            r["shape"],
            f"{r['macs']:,}",
            f"{r['weights']:,}",
            ",".join(map(str, r["inputs"])),
        )
    Console().print(table)


@click.command()
@click.option("--model", default=None, help="Zoo name, a .py file building an nn.Module, or a .onnx file.")
@click.option(
    "--layer",
    "layer_specs",
    multiple=True,
    help="Layer SPEC, e.g. conv:h=32,w=32,c=64,k=64,r=3,s=3,stride=1,pad=0 or gemm:m=256,k=512,n=128.",
)
@input_shape_option
@accelerator_options(default_profile="rtl")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {layers: [...], total: {...}}.")
@user_errors
def evaluate(
    model: str | None,
    layer_specs: tuple[str, ...],
    input_shapes: tuple[str, ...],
    profile: str,
    as_json: bool,
    **acc_flags,
) -> None:
    """Latency, energy, area and utilization of a workload on one accelerator (analytical model)."""
    from coexplore.dataflows.io import get_profile

    net = load_workload(model, layer_specs, input_shapes)
    acc = build_accelerator(profile=profile, **acc_flags)
    timing = get_profile(profile)
    from coexplore.sim.analytical import evaluate_network

    result = evaluate_network(net, acc, timing)
    if as_json:
        emit_json(result.to_json())
        return
    from rich.console import Console

    from coexplore.report import network_table

    Console(width=max(Console().width, 140)).print(network_table(result))


def _parse_list(text: str, cast, what: str) -> list:
    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            value = cast(item)
        except ValueError:
            raise CoexploreError(f"{what}: {item!r} is not valid (expected a comma-separated list)") from None
        out.append(value)
    if not out:
        raise CoexploreError(f"{what}: empty list")
    return out


def _parse_size(item: str) -> tuple[int, int]:
    rows, sep, cols = item.lower().partition("x")
    return (int(rows), int(cols) if sep else int(rows))


def _parse_bw(item: str) -> float | None:
    return None if item.lower() in ("inf", "none", "unlimited") else float(item)


@click.command()
@click.option("--model", default=None, help="Workload (zoo name, .py or .onnx); default resnet18.")
@click.option("--layer", "layer_specs", multiple=True, help="Layer SPEC instead of a model.")
@input_shape_option
@click.option(
    "--templates",
    "template_list",
    type=TEMPLATES,
    default="systolic-os,systolic-ws,systolic-is,nvdla,shidiannao,eyeriss",
    show_default=True,
    help="Comma-separated template names.",
)
@click.option("--sizes", default="8x8,16x16,32x32,64x64", show_default=True, help="Array sizes ROWSxCOLS.")
@click.option(
    "--dram-bw",
    "dram_bws",
    default="8,16,32,64,inf",
    show_default=True,
    help="DRAM bandwidths in bytes/cycle ('inf' = unlimited).",
)
@click.option("--sram-kb", "sram_kbs", default="32,128", show_default=True, help="Scratchpad sizes per operand (kB).")
@click.option("--noc-bw", "noc_bws", default="inf", show_default=True, help="NoC bandwidths in bytes/cycle.")
@click.option(
    "--tasks",
    default=None,
    help="Comma-separated models: sweep heterogeneous systems (PE split, bandwidth, template pairs) instead.",
)
@click.option("--pe-budget", type=int, default=4096, show_default=True, help="System sweep: total PEs.")
@click.option("--bw-budget", type=float, default=64.0, show_default=True, help="System sweep: bytes/cycle in total.")
@click.option("--profile", type=PROFILE, default="rtl", show_default=True, help="Timing profile.")
@click.option("--out", "out_dir", default="sweep_out", show_default=True, help="Output folder.")
@user_errors
def sweep(
    model: str | None,
    layer_specs: tuple[str, ...],
    input_shapes: tuple[str, ...],
    template_list: str,
    sizes: str,
    dram_bws: str,
    sram_kbs: str,
    noc_bws: str,
    tasks: str | None,
    pe_budget: int,
    bw_budget: float,
    profile: str,
    out_dir: str,
) -> None:
    """What-if study: every combination of template, array size, bandwidth and buffer; CSV, JSON and plots.

    With --tasks: heterogeneous systems instead (template pairs, PE and bandwidth splits); then
    --model, --layer, --input-shape, --sizes, --dram-bw, --sram-kb and --noc-bw do not apply and are
    refused, as --pe-budget and --bw-budget are without --tasks.
    """
    from coexplore.codesign.whatif import ACCELERATOR_SWEEP_ONLY, SYSTEM_SWEEP_ONLY

    ctx = click.get_current_context()
    explicit = {name for name in ctx.params if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    ignored = ACCELERATOR_SWEEP_ONLY if tasks else SYSTEM_SWEEP_ONLY
    for name, flag in ignored.items():
        if name in explicit:
            raise CoexploreError(
                f"sweep: {flag} does not apply "
                + (
                    "with --tasks (a system sweep uses --templates, --pe-budget, --bw-budget, --profile, --out)"
                    if tasks
                    else "without --tasks (it sizes a system sweep)"
                )
            )
    out = Path(out_dir)
    if tasks:
        from coexplore.codesign.whatif import run_system_sweep

        networks = [load_workload(name) for name in _parse_list(tasks, str, "--tasks")]
        from coexplore.dataflows.io import get_profile, get_template

        names = _parse_list(template_list, str, "--templates")
        for name in names:
            get_template(name)  # one-line error for an unknown template before any work
        get_profile(profile)
        rows = run_system_sweep(
            networks,
            out,
            pe_budget=pe_budget,
            bw_budget_bytes_per_cycle=bw_budget,
            templates=names,
            profile=profile,
            progress=True,
        )
        best = rows[0] if rows else None
        click.echo(
            f"{len(rows)} system designs evaluated for {', '.join(n.name for n in networks)}; "
            + (f"best makespan: {best.get('design', best)} " if best else "")
            + f"results in {out}/"
        )
        return
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.report import run_accelerator_sweep

    net = load_workload(model or ("resnet18" if not layer_specs else None), layer_specs, input_shapes)
    summary = run_accelerator_sweep(
        net,
        out,
        templates=[get_template(t) for t in _parse_list(template_list, str, "--templates")],
        sizes=_parse_list(sizes, _parse_size, "--sizes"),
        dram_bws=_parse_list(dram_bws, _parse_bw, "--dram-bw"),
        sram_kbs=_parse_list(sram_kbs, float, "--sram-kb"),
        noc_bws=_parse_list(noc_bws, _parse_bw, "--noc-bw"),
        profile=get_profile(profile),
    )
    click.echo(summary)


@click.command()
@click.option("--out", "out_dir", default="tour_out", show_default=True, help="Report folder.")
@click.option(
    "--models", default="resnet9,resnet18,mobilenetv2,unet,vit", show_default=True, help="Comma-separated zoo models."
)
@user_errors
def tour(out_dir: str, models: str) -> None:
    """The evaluation tour: every zoo network on every template, a what-if sweep, the simulator tiers, a
    CP-SAT schedule and one RTL check; a report with plots (about 10 s)."""
    from coexplore.report import run_demo

    path = run_demo(Path(out_dir), _parse_list(models, str, "--models"))
    click.echo(f"report written: {path}")
