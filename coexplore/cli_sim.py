"""CLI commands over the cycle-level simulator: simulate, validate."""

from __future__ import annotations

import click

from coexplore.cli_common import accelerator_options, build_accelerator, emit_json, load_workload, user_errors
from coexplore.models.ir import CoexploreError


@click.command()
@click.option("--model", default=None, help="Zoo name, a .py file building an nn.Module, or a .onnx file.")
@click.option("--layer", "layer_specs", multiple=True,
              help="Layer SPEC, e.g. conv:h=32,w=32,c=64,k=64,r=3,s=3,stride=1,pad=0 or gemm:m=256,k=512,n=128.")
@accelerator_options(default_profile="rtl")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False, writable=True),
              help="Stream every simulated event (pass, transfer, stalled row) to this CSV file.")
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON: {"layers": [...], "total": {compute_cycles, stall_cycles, total_cycles, ...}}.')
@user_errors
def simulate(model: str | None, layer_specs: tuple[str, ...], profile: str, trace_path: str | None, as_json: bool,
             **acc_flags) -> None:
    """Cycle-level simulation of a workload on one accelerator: cycles, stalls, DRAM traffic.

    In profile scalesim the flags mean what SCALE-Sim means (--sram-kb per operand, --dram-bw words
    per cycle per operand port, none = unlimited) and compute_cycles counts stalls, as SCALE-Sim's.
    """
    from coexplore.dataflows.io import get_profile
    from coexplore.sim.cycle import simulate_network

    net = load_workload(model, layer_specs)
    acc = build_accelerator(**acc_flags)
    result = simulate_network(net, acc, get_profile(profile), trace=trace_path)
    if as_json:
        emit_json(result.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.network} on {result.accelerator}, profile {result.profile}")
    for col in ("layer", "kind", "model", "compute", "stalls", "total", "DRAM rd kB", "DRAM wr kB", "util"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "model") else "right")
    for lay in result.layers:
        table.add_row(lay.name, lay.kind, lay.model, f"{lay.compute_cycles:,}", f"{lay.stall_cycles:,}",
                      f"{lay.total_cycles:,}", f"{lay.dram_reads / 1024:,.1f}", f"{lay.dram_writes / 1024:,.1f}",
                      f"{lay.utilization:.1%}")
    table.add_row("total", "", "", f"{result.compute_cycles:,}", f"{result.stall_cycles:,}", f"{result.total_cycles:,}",
                  f"{result.dram_reads / 1024:,.1f}", f"{result.dram_writes / 1024:,.1f}", f"{result.utilization:.1%}")
    Console().print(table)


@click.command()
@click.option("--profile", "profiles", default="scalesim,rtl", show_default=True,
              help="Comma-separated timing profiles to validate.")
@click.option("--templates", "template_list", default=",".join(
    ("systolic-os", "systolic-ws", "systolic-is", "nvdla", "shidiannao", "eyeriss")), show_default=True,
    help="Comma-separated templates.")
@click.option("--models", default="resnet9,resnet18,mobilenetv2,unet,vit", show_default=True,
              help="Zoo networks whose distinct compute layers form the suite.")
@click.option("--sizes", default="16,32", show_default=True, help="Square array sizes (alternating over layers).")
@click.option("--limited-bw", type=float, default=8.0, show_default=True,
              help="DRAM bytes/cycle of the bandwidth-bound half of the suite.")
@click.option("--sram-kb", type=float, default=64.0, show_default=True, help="Scratchpad per operand (kB).")
@click.option("--max-macs", type=float, default=120e6, show_default=True, help="Skip layers with more MACs.")
@click.option("--limit", type=int, default=None, help="Run only the first N cases of the suite.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False, writable=True),
              help="Draw analytical vs simulated and the error histogram to this image file.")
@click.option("--json", "as_json", is_flag=True, help="Print every case and the summaries as JSON.")
@click.option("--quiet", is_flag=True, help="Print only the summaries.")
@user_errors
def validate(profiles: str, template_list: str, models: str, sizes: str, limited_bw: float, sram_kb: float,
             max_macs: float, limit: int | None, plot_path: str | None, as_json: bool, quiet: bool) -> None:
    """Analytical model vs cycle-level simulator on zoo layers x templates, compute- and bandwidth-bound.

    Exits non-zero when a profile's error exceeds the bound (mean 2 %, max 5 %).
    """
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.sim.cycle import validate as v

    names = [p.strip() for p in profiles.split(",") if p.strip()]
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
    cases = v.build_suite(templates, size_list, limited_bw, sram_kb, [m.strip() for m in models.split(",")],
                          max_macs, limit)
    results, summaries = {}, []
    for name in names:
        prof = get_profile(name)
        res = v.run_suite(cases, prof)
        results[name] = res
        summaries.append(v.summarize(res))
    if plot_path:
        v.plot(results, plot_path)
    if as_json:
        emit_json({"cases": [r.to_dict() for rs in results.values() for r in rs],
                   "summary": [s.to_dict() for s in summaries]})
    else:
        if not quiet:
            for name, res in results.items():
                for r in res:
                    d = r.to_dict()
                    click.echo(f"{name:8s} {d['network']:11s} {d['layer'][:28]:28s} {d['template']:11s} {d['array']:5s} "
                               f"bw={str(d['dram_bw']):5s} {d['bound']:9s} sim={d['simulated_cycles']:>12,.0f} "
                               f"ana={d['analytical_cycles']:>12,.0f} err={d['error_pct']:6.2f}%")
        for s in summaries:
            shared = (f"; {s.by_construction} of them run SCALE-Sim's buffers in both tiers (equal by construction), "
                      f"the other {s.cases - s.by_construction}: mean {s.independent_mean_pct:.2f} %, "
                      f"max {s.independent_max_pct:.2f} %") if s.by_construction else ""
            click.echo(f"summary {s.profile}: {s.cases} cases ({s.compute_bound} compute-bound, "
                       f"{s.bandwidth_bound} bandwidth-bound): mean error {s.mean_pct:.2f} %, max {s.max_pct:.2f} % "
                       f"(bound: mean {v.MEAN_BOUND_PCT:g} %, max {v.MAX_BOUND_PCT:g} %) "
                       f"{'OK' if s.ok else 'FAILED'}; worst: {s.worst}{shared}")
    failed = [s.profile for s in summaries if not s.ok]
    if failed:
        raise click.ClickException(f"agreement bound not met in profile(s): {', '.join(failed)}")
