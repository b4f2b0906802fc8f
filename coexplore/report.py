"""Reports at the edge: accelerator what-if sweeps and the demo report (tables, CSV/JSON, plots).

Pure computation stays in coexplore.sim; this module only arranges results, writes files and draws.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coexplore.dataflows.spec import Accelerator, Dataflow, TimingProfile
from coexplore.models.ir import Network


def demo_accelerator(dataflow: Dataflow) -> Accelerator:
    """The demo's design for ``dataflow``: a 32x32 array, 64 KB per buffer, 32 B/cycle of DRAM, no NoC bound."""
    return Accelerator(
        dataflow=dataflow,
        rows=32,
        cols=32,
        ifmap_sram_kb=64.0,
        filter_sram_kb=64.0,
        ofmap_sram_kb=64.0,
        dram_bw_bytes_per_cycle=32.0,
        noc_bw_bytes_per_cycle=None,
    )


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    )


# ---- tables --------------------------------------------------------------------------------------
def network_table(result: Any):
    """A rich table of one NetworkMetrics: per layer and total."""
    from rich.table import Table

    table = Table(
        title=f"{result.network} on {result.accelerator} (profile {result.profile}); "
        f"area {result.area_um2 / 1e6:.3f} mm2"
    )
    for col in ("layer", "kind", "MACs", "cycles", "stall", "util", "energy uJ", "DRAM kB"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    for m in result.layers:
        table.add_row(
            m.name,
            m.kind,
            f"{m.macs:,}",
            f"{m.latency_cycles:,.0f}",
            f"{m.stall_cycles:,.0f}",
            f"{m.utilization:.2f}",
            f"{m.energy_pj / 1e6:.3f}",
            f"{(m.dram_read_bytes + m.dram_write_bytes) / 1024:,.1f}",
        )
    table.add_row(
        "total",
        "",
        f"{result.macs:,}",
        f"{result.latency_cycles:,.0f}",
        f"{sum(m.stall_cycles for m in result.layers):,.0f}",
        f"{result.utilization:.2f}",
        f"{result.energy_pj / 1e6:.3f}",
        f"{result.dram_bytes / 1024:,.1f}",
        style="bold",
    )
    return table


def markdown_table(rows: Sequence[dict], columns: Sequence[str], formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(format(v, formats[c]) if c in formats and isinstance(v, (int, float)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (n x objectives, all minimized) that no other row dominates."""
    n = len(points)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        dominated_by = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        if dominated_by.any():
            keep[i] = False
    return keep


def write_rows(rows: Sequence[dict], csv_path: Path, json_path: Path) -> None:
    if not rows:
        return
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from coexplore.cli_common import json_ready

    json_path.write_text(json.dumps(json_ready(list(rows)), indent=1, allow_nan=False))


# ---- accelerator sweep ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SweepPoint:
    template: str
    rows: int
    cols: int
    dram_bw: float | None
    sram_kb: float
    noc_bw: float | None


def run_accelerator_sweep(
    net: Network,
    out: Path,
    templates: Sequence[Dataflow],
    sizes: Sequence[tuple[int, int]],
    dram_bws: Sequence[float | None],
    sram_kbs: Sequence[float],
    noc_bws: Sequence[float | None],
    profile: TimingProfile,
) -> str:
    """Evaluate every combination, write sweep.csv/json, pareto.csv, heat maps and a Pareto plot."""
    from coexplore.sim.analytical import evaluate_batch

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with _progress() as bar:
        task = bar.add_task(f"sweep {net.name}", total=len(templates))
        for df in templates:
            points = [
                SweepPoint(df.name, r, c, bw, kb, noc)
                for (r, c), bw, kb, noc in itertools.product(sizes, dram_bws, sram_kbs, noc_bws)
            ]
            accs = [
                Accelerator(
                    dataflow=df,
                    rows=p.rows,
                    cols=p.cols,
                    ifmap_sram_kb=p.sram_kb,
                    filter_sram_kb=p.sram_kb,
                    ofmap_sram_kb=p.sram_kb,
                    dram_bw_bytes_per_cycle=p.dram_bw,
                    noc_bw_bytes_per_cycle=p.noc_bw,
                )
                for p in points
            ]
            res = evaluate_batch(net.layers, accs, profile)
            latency = np.asarray(res.latency_cycles).sum(axis=1)
            energy = np.asarray(res.energy_pj).sum(axis=1)
            for i, p in enumerate(points):
                pes = p.rows * p.cols
                rows.append(
                    {
                        "template": p.template,
                        "rows": p.rows,
                        "cols": p.cols,
                        "pes": pes,
                        "dram_bw_bytes_per_cycle": "inf" if p.dram_bw is None else p.dram_bw,
                        "sram_kb": p.sram_kb,
                        "noc_bw_bytes_per_cycle": "inf" if p.noc_bw is None else p.noc_bw,
                        "latency_cycles": float(latency[i]),
                        "energy_pj": float(energy[i]),
                        "area_um2": float(np.asarray(res.area_um2)[i]),
                        "utilization": float(net.macs / (pes * latency[i])) if latency[i] > 0 else 0.0,
                    }
                )
            bar.advance(task)
    objectives = np.array([[r["latency_cycles"], r["energy_pj"], r["area_um2"]] for r in rows])
    mask = pareto_mask(objectives)
    for r, m in zip(rows, mask):
        r["pareto"] = bool(m)
        r["edp"] = r["latency_cycles"] * r["energy_pj"]
    write_rows(rows, out / "sweep.csv", out / "sweep.json")
    write_rows([r for r in rows if r["pareto"]], out / "pareto.csv", out / "pareto.json")
    _plot_heatmaps(rows, out, net.name)
    _plot_pareto(rows, out / "pareto.png", f"{net.name}: latency vs energy (Pareto over latency, energy, area)")
    best = min(rows, key=lambda r: r["edp"])
    return (
        f"{len(rows)} designs of {net.name}; {int(mask.sum())} on the Pareto front; best EDP: "
        f"{best['template']} {best['rows']}x{best['cols']}, DRAM {best['dram_bw_bytes_per_cycle']} B/cycle, "
        f"{best['sram_kb']} kB: {best['latency_cycles']:,.0f} cycles, {best['energy_pj'] / 1e6:,.1f} uJ. "
        f"Files in {out}/ (sweep.csv, sweep.json, pareto.csv, heatmap_latency.png, heatmap_energy.png, pareto.png)"
    )


def _plot_heatmaps(rows: list[dict], out: Path, title: str) -> None:
    plt = _plt()
    templates = list(dict.fromkeys(r["template"] for r in rows))
    sizes = list(dict.fromkeys(f"{r['rows']}x{r['cols']}" for r in rows))
    bws = list(dict.fromkeys(str(r["dram_bw_bytes_per_cycle"]) for r in rows))
    sram = max(r["sram_kb"] for r in rows)
    noc = rows[0]["noc_bw_bytes_per_cycle"]
    for metric, label in (("latency_cycles", "latency (cycles, log10)"), ("energy_pj", "energy (pJ, log10)")):
        fig, axes = plt.subplots(1, len(templates), figsize=(3.2 * len(templates) + 1, 3.4), squeeze=False)
        grids = []
        for t in templates:
            grid = np.full((len(sizes), len(bws)), np.nan)
            for r in rows:
                if r["template"] == t and r["sram_kb"] == sram and r["noc_bw_bytes_per_cycle"] == noc:
                    grid[sizes.index(f"{r['rows']}x{r['cols']}"), bws.index(str(r["dram_bw_bytes_per_cycle"]))] = r[
                        metric
                    ]
            grids.append(np.log10(grid))
        vmin = np.nanmin([np.nanmin(g) for g in grids])
        vmax = np.nanmax([np.nanmax(g) for g in grids])
        for ax, t, g in zip(axes[0], templates, grids):
            im = ax.imshow(g, cmap="viridis_r", vmin=vmin, vmax=vmax, aspect="auto")
            ax.set_title(t, fontsize=9)
            ax.set_xticks(range(len(bws)), bws, fontsize=7)
            ax.set_yticks(range(len(sizes)), sizes, fontsize=7)
            ax.set_xlabel("DRAM B/cycle", fontsize=8)
        axes[0][0].set_ylabel("array", fontsize=8)
        fig.colorbar(im, ax=axes[0].tolist(), label=label)
        fig.suptitle(f"{title}: {label.split(' (')[0]} at {sram:g} kB/operand", fontsize=10)
        fig.savefig(out / f"heatmap_{metric.split('_')[0]}.png", dpi=110, bbox_inches="tight")
        plt.close(fig)


def _plot_pareto(rows: list[dict], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    templates = list(dict.fromkeys(r["template"] for r in rows))
    cmap = plt.get_cmap("tab10")
    for i, t in enumerate(templates):
        sub = [r for r in rows if r["template"] == t]
        ax.scatter(
            [r["latency_cycles"] for r in sub],
            [r["energy_pj"] / 1e6 for r in sub],
            s=10,
            alpha=0.35,
            color=cmap(i),
            label=t,
        )
        front = [r for r in sub if r["pareto"]]
        ax.scatter(
            [r["latency_cycles"] for r in front],
            [r["energy_pj"] / 1e6 for r in front],
            s=40,
            color=cmap(i),
            edgecolor="black",
            linewidth=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (cycles)")
    ax.set_ylabel("energy (uJ)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, title="outlined: Pareto-optimal", title_fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---- demo ----------------------------------------------------------------------------------------
def run_demo(out: Path, model_names: Sequence[str]) -> Path:
    """Every zoo network on every template at one default budget, plus a what-if sweep: report.md."""
    from coexplore.dataflows.io import builtin_templates, get_profile
    from coexplore.models.zoo import get_network
    from coexplore.sim.analytical import evaluate_network

    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile("rtl")
    templates = builtin_templates()
    results: list[dict] = []
    breakdowns: dict[tuple[str, str], dict[str, float]] = {}
    with _progress() as bar:
        load = bar.add_task("importing networks", total=len(model_names))
        nets = []
        for name in model_names:
            nets.append(get_network(name))
            bar.advance(load)
        task = bar.add_task("evaluating network x template", total=len(nets) * len(templates))
        for net in nets:
            for tname, df in templates.items():
                acc = demo_accelerator(df)
                m = evaluate_network(net, acc, profile)
                seconds = m.latency_cycles / (acc.clock_mhz * 1e6)
                results.append(
                    {
                        "network": net.name,
                        "template": tname,
                        "macs": m.macs,
                        "latency_cycles": m.latency_cycles,
                        "latency_ms": seconds * 1e3,
                        "energy_uj": m.energy_pj / 1e6,
                        "area_mm2": m.area_um2 / 1e6,
                        "utilization": m.utilization,
                        "dram_mb": m.dram_bytes / 2**20,
                        "edp_uj_ms": m.energy_pj / 1e6 * seconds * 1e3,
                    }
                )
                totals: dict[str, float] = {}
                for layer in m.layers:
                    for k, v in layer.energy_breakdown_pj.items():
                        totals[k] = totals.get(k, 0.0) + v
                breakdowns[(net.name, tname)] = totals
                bar.advance(task)
    write_rows(results, out / "results.csv", out / "results.json")
    _plot_demo_bars(results, out)
    _plot_energy_breakdown(breakdowns, out)
    sweep_text = run_accelerator_sweep(
        nets[0],
        out / "sweep",
        templates=list(templates.values()),
        sizes=[(8, 8), (16, 16), (32, 32), (64, 64)],
        dram_bws=[8.0, 16.0, 32.0, 64.0, None],
        sram_kbs=[32.0, 128.0],
        noc_bws=[None],
        profile=profile,
    )
    maestro = _maestro_comparison()
    from coexplore import demo_stages

    by_name = {n.name: n for n in nets}
    stages = [
        (
            "Three tiers: analytical model vs cycle-level simulator",
            lambda: demo_stages.simulator_crosscheck(nets[0], [demo_accelerator(df) for df in templates.values()]),
        )
    ]
    pair = [by_name[n] for n in ("resnet9", "unet") if n in by_name] or list(nets[:2])
    stages.append(
        (
            "Heterogeneous system: several networks at once",
            lambda: demo_stages.system_schedule(pair, "nasaic-pair", out),
        )
    )
    stages.append(("Generated RTL: bit-exact and cycle-exact", lambda: demo_stages.rtl_check(out)))
    sections = []
    with _progress() as bar:
        task = bar.add_task("simulator, system schedule, RTL check", total=len(stages))
        for title, stage in stages:
            sections.append((title, stage()))
            bar.advance(task)
    path = out / "report.md"
    text = _demo_markdown(results, sweep_text, maestro, nets)
    text += "\n".join(f"\n## {title}\n\n{body}\n" for title, body in sections)
    path.write_text(text)
    return path


def _maestro_comparison() -> list[dict]:
    """The layer NASAIC.md gives MAESTRO figures for (K=C=64, 34x34 input, 3x3, 256 PEs, NoC 64)."""
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.models.ir import conv
    from coexplore.sim.analytical import evaluate_layer

    # MAESTRO figures as reported in shared/NASAIC.md (measured by the project with MAESTRO).
    maestro_cycles = {"nvdla": 442_548, "shidiannao": 192_528, "eyeriss": 417_799}
    layer = conv("maestro-conv", c=64, k=64, h=34, r=3)
    rows = []
    for name, ref in maestro_cycles.items():
        acc = Accelerator(dataflow=get_template(name), rows=16, cols=16, noc_bw_bytes_per_cycle=64.0)
        m = evaluate_layer(layer, acc, get_profile("rtl"))
        rows.append(
            {
                "template": name,
                "coexplore_cycles": m.latency_cycles,
                "maestro_cycles": ref,
                "ratio": m.latency_cycles / ref,
                "utilization": m.utilization,
            }
        )
    return rows


def _plot_demo_bars(results: list[dict], out: Path) -> None:
    plt = _plt()
    nets = list(dict.fromkeys(r["network"] for r in results))
    templates = list(dict.fromkeys(r["template"] for r in results))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    width = 0.8 / len(templates)
    for ax, metric, label, log in (
        (axes[0], "latency_ms", "latency (ms)", True),
        (axes[1], "energy_uj", "energy (uJ)", True),
        (axes[2], "utilization", "PE utilization", False),
    ):
        for j, t in enumerate(templates):
            vals = [next(r[metric] for r in results if r["network"] == n and r["template"] == t) for n in nets]
            ax.bar(np.arange(len(nets)) + j * width - 0.4 + width / 2, vals, width, label=t)
        ax.set_xticks(range(len(nets)), nets, rotation=20)
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("zoo networks on each dataflow template (32x32 PEs, 64 kB/operand, DRAM 32 B/cycle, 45 nm, 1 GHz)")
    fig.savefig(out / "networks_by_template.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_energy_breakdown(breakdowns: dict[tuple[str, str], dict[str, float]], out: Path) -> None:
    plt = _plt()
    nets = list(dict.fromkeys(n for n, _ in breakdowns))
    templates = list(dict.fromkeys(t for _, t in breakdowns))
    comps = list(dict.fromkeys(k for b in breakdowns.values() for k in b))
    fig, axes = plt.subplots(1, len(nets), figsize=(3.3 * len(nets), 3.8), squeeze=False, sharey=False)
    for ax, n in zip(axes[0], nets):
        bottom = np.zeros(len(templates))
        for comp in comps:
            vals = np.array([breakdowns[(n, t)].get(comp, 0.0) / 1e6 for t in templates])
            ax.bar(range(len(templates)), vals, bottom=bottom, label=comp)
            bottom += vals
        ax.set_xticks(range(len(templates)), templates, rotation=60, fontsize=7)
        ax.set_title(n, fontsize=9)
    axes[0][0].set_ylabel("energy (uJ)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("energy by component")
    fig.savefig(out / "energy_breakdown.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _demo_markdown(results: list[dict], sweep_text: str, maestro: list[dict], nets: Sequence[Network]) -> str:
    fmt = {
        "latency_ms": ".3f",
        "energy_uj": ",.1f",
        "area_mm2": ".3f",
        "utilization": ".2f",
        "dram_mb": ",.2f",
        "edp_uj_ms": ",.2f",
        "macs": ",",
    }
    best: dict[str, dict] = {}
    for r in results:
        if r["network"] not in best or r["edp_uj_ms"] < best[r["network"]]["edp_uj_ms"]:
            best[r["network"]] = r
    lines = [
        "# coexplore demo report",
        "",
        "Every zoo network on every dataflow template, one default sub-accelerator: 32x32 PEs, 64 kB scratchpad per "
        "operand (double-buffered), DRAM 32 bytes/cycle per operand port, int8, 45 nm, 1 GHz; analytical model, "
        "timing profile `rtl`.",
        "",
        "## Networks",
        "",
        markdown_table(
            [
                {
                    "network": n.name,
                    "layers": len(n.layers),
                    "compute layers": len(n.compute_layers()),
                    "MACs": n.macs,
                    "weights": n.weight_words,
                }
                for n in nets
            ],
            ["network", "layers", "compute layers", "MACs", "weights"],
            {"MACs": ",", "weights": ","},
        ),
        "",
        "## Results",
        "",
        markdown_table(
            results,
            ["network", "template", "latency_ms", "energy_uj", "area_mm2", "utilization", "dram_mb", "edp_uj_ms"],
            fmt,
        ),
        "",
        "Best template per network by energy-delay product: "
        + ", ".join(f"{n}: **{r['template']}**" for n, r in best.items())
        + ".",
        "",
        "![networks by template](networks_by_template.png)",
        "",
        "![energy breakdown](energy_breakdown.png)",
        "",
        "## What-if sweep",
        "",
        sweep_text,
        "",
        "![latency heat map](sweep/heatmap_latency.png)",
        "",
        "![energy heat map](sweep/heatmap_energy.png)",
        "",
        "![Pareto front](sweep/pareto.png)",
        "",
        "## Against MAESTRO",
        "",
        "One conv layer (K=C=64, 34x34 input, 3x3, 256 PEs as 16x16, NoC 64 bytes/cycle) as MAESTRO reports it "
        "(figures from shared/NASAIC.md). MAESTRO does not check mapping legality and assumes its own NoC model, so "
        "the ratio is a sanity check, not a target.",
        "",
        markdown_table(
            maestro,
            ["template", "coexplore_cycles", "maestro_cycles", "ratio", "utilization"],
            {"coexplore_cycles": ",.0f", "maestro_cycles": ",", "ratio": ".2f", "utilization": ".2f"},
        ),
        "",
        "Files: results.csv / results.json (the table above), sweep/ (every swept design, the Pareto set, plots).",
        "",
    ]
    return "\n".join(lines)
