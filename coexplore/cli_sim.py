"""CLI commands over the cycle-level simulator: simulate, validate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from coexplore.cli_common import (
    PROFILES,
    TEMPLATES,
    accelerator_options,
    build_accelerator,
    emit_json,
    input_shape_option,
    load_workload,
    user_errors,
)
from coexplore.models.ir import CoexploreError


def simulation_size_problem(layer: Any, acc: Any, profile: Any) -> str | None:
    """The simulator's own size guard (``coexplore.sim.cycle.simulator.simulation_size_problem``)."""
    from coexplore.sim.cycle.simulator import simulation_size_problem as problem

    return problem(layer, acc, profile)


def check_simulable(net: Any, acc: Any, profile: Any) -> None:
    """Raise CoexploreError for the first layer of ``net`` the cycle simulator cannot hold."""
    for layer in net.layers:
        problem = simulation_size_problem(layer, acc, profile)
        if problem is not None:
            raise CoexploreError(f"simulate: {problem}")


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
@click.option(
    "--trace",
    "trace_path",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Stream every simulated event (pass, transfer, stalled row) to this CSV file.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON: {"layers": [...], "total": {compute_cycles, stall_cycles, total_cycles, ...}}.',
)
@user_errors
def simulate(
    model: str | None,
    layer_specs: tuple[str, ...],
    input_shapes: tuple[str, ...],
    profile: str,
    trace_path: str | None,
    as_json: bool,
    **acc_flags: Any,
) -> None:
    """Cycle-level simulation of a workload on one accelerator: cycles, stalls, DRAM traffic.

    In profile scalesim the flags mean what SCALE-Sim means (--sram-kb per operand, --dram-bw words
    per cycle per operand port, none = unlimited) and compute_cycles counts stalls, as SCALE-Sim's.
    The simulator models no NoC: --noc-bw is refused (the analytical model, `coexplore evaluate`,
    bounds folds by it).
    """
    from coexplore.dataflows.io import get_profile
    from coexplore.sim.cycle import simulate_network

    if acc_flags.get("noc_bw") is not None:
        raise CoexploreError(
            f"simulate: --noc-bw {acc_flags['noc_bw']:g}: the cycle-level simulator does not model "
            f"the NoC (only DRAM ports and scratchpads); use `coexplore evaluate --noc-bw`"
        )
    net = load_workload(model, layer_specs, input_shapes)
    acc = build_accelerator(**acc_flags)
    if acc.noc_bw_bytes_per_cycle is not None:
        raise CoexploreError(
            f"simulate: {acc_flags.get('accelerator_yaml')}: noc_bw_bytes_per_cycle = "
            f"{acc.noc_bw_bytes_per_cycle:g}, but the cycle-level simulator does not model the NoC; "
            f"drop the field or use `coexplore evaluate`"
        )
    prof = get_profile(profile)
    check_simulable(net, acc, prof)
    result = simulate_network(net, acc, prof, trace=trace_path)
    if as_json:
        emit_json(
            {
                **result.to_json(),
                "dram_bw_bytes_per_cycle": acc.dram_bw_bytes_per_cycle,
                "dram_ports": acc.dram_ports,
                "noc_modeled": False,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    bw = acc.dram_bw_bytes_per_cycle
    table = Table(title=f"{result.network} on {result.accelerator}, profile {result.profile}")
    for col in ("layer", "kind", "model", "compute", "stalls", "total", "DRAM rd kB", "DRAM wr kB", "util"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "model") else "right")
    for lay in result.layers:
        table.add_row(
            lay.name,
            lay.kind,
            lay.model,
            f"{lay.compute_cycles:,}",
            f"{lay.stall_cycles:,}",
            f"{lay.total_cycles:,}",
            f"{lay.dram_reads / 1024:,.1f}",
            f"{lay.dram_writes / 1024:,.1f}",
            f"{lay.utilization:.1%}",
        )
    table.add_row(
        "total",
        "",
        "",
        f"{result.compute_cycles:,}",
        f"{result.stall_cycles:,}",
        f"{result.total_cycles:,}",
        f"{result.dram_reads / 1024:,.1f}",
        f"{result.dram_writes / 1024:,.1f}",
        f"{result.utilization:.1%}",
    )
    Console(width=max(Console().width, 140)).print(table)
    port = "shared port" if acc.dram_ports == "shared" else "operand port"
    click.echo(
        "DRAM "
        + (f"{bw:g} B/cycle per {port}" if bw is not None else "unlimited")
        + "; NoC not modeled (its bound: `coexplore evaluate --noc-bw`)"
    )


_SUITE_ONLY = {
    "template_list": "--templates",
    "models": "--models",
    "sizes": "--sizes",
    "limited_bw": "--limited-bw",
    "sram_kb": "--sram-kb",
    "max_macs": "--max-macs",
    "limit": "--limit",
    "plot_path": "--plot",
    "quiet": "--quiet",
}


@click.command()
@click.option(
    "--against",
    type=click.Choice(["maestro", "scalesim"]),
    default=None,
    help="Instead of the suite: coexplore's cycles over MAESTRO's (shared/NASAIC.md) or SCALE-Sim's "
    "(REFERENCE_DIR/scalesim.json) per case, with a reason for every ratio beyond 1.25x.",
)
@click.option(
    "--reference-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="With --against scalesim: the folder holding scalesim.json (default: shared/reference beside "
    "the repository, or $COEXPLORE_REFERENCE_DIR).",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="With --against: write fidelity_<tool>.png (log-scale ratio per case) and .json here.",
)
@click.option(
    "--profile",
    "profiles",
    type=PROFILES,
    default="scalesim,rtl",
    show_default=True,
    help="Comma-separated timing profiles to validate (with --against: default rtl for maestro, "
    "scalesim for scalesim).",
)
@click.option(
    "--templates",
    "template_list",
    type=TEMPLATES,
    default=",".join(("systolic-os", "systolic-ws", "systolic-is", "nvdla", "shidiannao", "eyeriss")),
    show_default=True,
    help="Comma-separated templates.",
)
@click.option(
    "--models",
    default="resnet9,resnet18,mobilenetv2,unet,vit",
    show_default=True,
    help="Zoo networks whose distinct compute layers form the suite.",
)
@click.option("--sizes", default="16,32", show_default=True, help="Square array sizes (alternating over layers).")
@click.option(
    "--limited-bw",
    type=float,
    default=8.0,
    show_default=True,
    help="DRAM bytes/cycle of the bandwidth-bound half of the suite.",
)
@click.option("--sram-kb", type=float, default=64.0, show_default=True, help="Scratchpad per operand (kB).")
@click.option("--max-macs", type=float, default=120e6, show_default=True, help="Skip layers with more MACs.")
@click.option("--limit", type=int, default=None, help="Run only the first N cases of the suite.")
@click.option(
    "--plot",
    "plot_path",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="Draw analytical vs simulated and the error histogram to this image file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every case and the summaries as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the summaries.")
@user_errors
def validate(
    against: str | None,
    reference_dir: str | None,
    out_dir: str | None,
    profiles: str,
    template_list: str,
    models: str,
    sizes: str,
    limited_bw: float,
    sram_kb: float,
    max_macs: float,
    limit: int | None,
    plot_path: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Analytical model vs cycle-level simulator on zoo layers x templates, compute- and bandwidth-bound.

    Exits non-zero when a profile's error exceeds the bound (mean 2 %, max 5 %). With --against
    maestro|scalesim: a fidelity report against that tool instead (table, plot, reasons).
    """
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.sim.cycle import validate as v

    ctx = click.get_current_context()
    given = {n for n in ctx.params if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT}
    names = [p.strip() for p in profiles.split(",") if p.strip()]
    if against:
        for param, flag in _SUITE_ONLY.items():
            if param in given:
                raise CoexploreError(
                    f"validate: {flag} belongs to the analytical-vs-simulator suite, not to "
                    f"--against {against} (which takes --profile, --reference-dir, --out, --json)"
                )
        from coexplore.cli_validate import fidelity_report
        from coexplore.sim.fidelity import DEFAULT_PROFILE

        chosen = names if "profiles" in given else [DEFAULT_PROFILE[against]]
        if not chosen:
            raise CoexploreError("validate: --profile must name at least one profile")
        for name in chosen:
            get_profile(name)  # one-line error for an unknown name
        if reference_dir is not None and against != "scalesim":
            raise CoexploreError(
                "validate: --reference-dir applies to --against scalesim (MAESTRO's figures are "
                "built in, from shared/NASAIC.md)"
            )
        fidelity_report(against, chosen, reference_dir, out_dir, as_json)
        return
    for param, flag in (("reference_dir", "--reference-dir"), ("out_dir", "--out")):
        if param in given:
            raise CoexploreError(f"validate: {flag} applies only with --against maestro|scalesim")
    templates = [t.strip() for t in template_list.split(",") if t.strip()]
    for t in templates:
        get_template(t)  # one-line error for an unknown name
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise CoexploreError(f"--sizes {sizes!r}: expected comma-separated integers") from None
    if not names or not templates or not size_list:
        raise CoexploreError("validate: --profile, --templates and --sizes must each name at least one value")
    if limited_bw <= 0 or sram_kb <= 0:
        raise CoexploreError(f"validate: --limited-bw {limited_bw:g} and --sram-kb {sram_kb:g} must be positive")
    cases = v.build_suite(
        templates, size_list, limited_bw, sram_kb, [m.strip() for m in models.split(",")], max_macs, limit
    )
    results: dict[str, Sequence[v.CaseResult]] = {}
    summaries = []
    for name in names:
        prof = get_profile(name)
        res = v.run_suite(cases, prof)
        results[name] = res
        summaries.append(v.summarize(res))
    if plot_path:
        v.plot(results, plot_path)
    if as_json:
        emit_json(
            {"cases": [r.to_dict() for rs in results.values() for r in rs], "summary": [s.to_dict() for s in summaries]}
        )
    else:
        if not quiet:
            for name, profile_results in results.items():
                for r in profile_results:
                    d = r.to_dict()
                    click.echo(
                        f"{name:8s} {d['network']:11s} {d['layer'][:28]:28s} {d['template']:11s} {d['array']:5s} "
                        f"bw={str(d['dram_bw']):5s} {d['bound']:9s} sim={d['simulated_cycles']:>12,.0f} "
                        f"ana={d['analytical_cycles']:>12,.0f} err={d['error_pct']:6.2f}%"
                    )
        for s in summaries:
            shared = (
                (
                    f"; {s.by_construction} of them run SCALE-Sim's buffers in both tiers (equal by construction), "
                    f"the other {s.cases - s.by_construction}: mean {s.independent_mean_pct:.2f} %, "
                    f"max {s.independent_max_pct:.2f} %"
                )
                if s.by_construction
                else ""
            )
            click.echo(
                f"summary {s.profile}: {s.cases} cases ({s.compute_bound} compute-bound, "
                f"{s.bandwidth_bound} bandwidth-bound): mean error {s.mean_pct:.2f} %, max {s.max_pct:.2f} % "
                f"(bound: mean {v.MEAN_BOUND_PCT:g} %, max {v.MAX_BOUND_PCT:g} %) "
                f"{'OK' if s.ok else 'FAILED'}; worst: {s.worst}{shared}"
            )
    failed = [s.profile for s in summaries if not s.ok]
    if failed:
        raise click.ClickException(f"agreement bound not met in profile(s): {', '.join(failed)}")
