"""What a search leaves in its folder: ``summary.json``, ``best.yaml``, the Pareto plot, the report.

``best.yaml`` is a system YAML (``coexplore rtl --design DIR/best.yaml`` takes it) with a ``codesign``
entry holding the architectures, the mapping of layers to sub-accelerators and the costs.
The report (``report.md`` and ``report.html``) is NASAIC's table: each optimizer and baseline with its
accuracies, latency, energy, area, whether it meets the spec, and the reductions against NAS then ASIC.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coexplore.codesign.problem import Spec


@dataclass(frozen=True)
class RunSummary:
    """One row of the report: a run's final design (``final`` holds its hardware fields)."""

    label: str  # e.g. "co-exploration (rl)", "NAS then ASIC"
    kind: str  # joint | nas-then-asic | asic-then-hwnas
    optimizer: str
    final: dict[str, Any] | None  # a log record with hardware fields, or None when nothing met the spec
    evaluated: int
    pruned: int
    trained: int
    proposals: int
    seconds: float
    folder: str = ""


def version() -> str:
    try:
        from importlib.metadata import version as _v

        return _v("coexplore")
    except Exception:  # noqa: BLE001 - an uninstalled checkout
        return "unknown"


def best_json(final: dict[str, Any] | None) -> dict[str, Any] | None:
    if final is None:
        return None
    return {
        "accuracy": final.get("accuracy", {}),
        "score": final.get("score"),
        "latency_cycles": final.get("latency_cycles"),
        "task_latency_cycles": final.get("task_latency_cycles", {}),
        "energy_uj": final.get("energy_uj"),
        "area_mm2": final.get("area_mm2"),
        "spec_met": final.get("spec_met"),
        "violation": final.get("violation"),
        "architectures": final.get("archs", []),
        "system": (final.get("system") or {}).get("name"),
        "sub_accelerators": [_sub_text(s) for s in (final.get("system") or {}).get("sub_accelerators", [])],
    }


def _sub_text(sub: dict[str, Any]) -> str:
    bw = sub.get("dram_bw_bytes_per_cycle")
    return (
        f"{sub.get('name')}={sub.get('template')} {sub.get('rows')}x{sub.get('cols')}, "
        f"{sub.get('ifmap_sram_kb', 64):g} kB" + (f", {bw:g} B/cycle" if bw else "")
    )


def write_summary(path: Path, run: RunSummary, spec: Spec, extra: dict[str, Any] | None = None) -> None:
    payload = {
        "best": best_json(run.final),
        "evaluated": run.evaluated,
        "pruned": run.pruned,
        "trained": run.trained,
        "proposals": run.proposals,
        "seconds": round(run.seconds, 3),
        "optimizer": run.optimizer,
        "kind": run.kind,
        "spec": spec.to_text(),
        "coexplore_version": version(),
    }
    payload.update(extra or {})
    path.write_text(json.dumps(payload, indent=2, default=_default, allow_nan=False))


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_best_yaml(path: Path, final: dict[str, Any], spec: Spec) -> None:
    """The chosen system as a system YAML plus its ``codesign`` provenance."""
    system = dict(final["system"])
    system["name"] = "codesign-best"
    system["codesign"] = {
        "spec": spec.to_text(),
        "spec_met": bool(final.get("spec_met")),
        "architectures": final.get("archs", []),
        "accuracy": final.get("accuracy", {}),
        "score": final.get("score"),
        "latency_cycles": final.get("latency_cycles"),
        "task_latency_cycles": final.get("task_latency_cycles", {}),
        "energy_uj": final.get("energy_uj"),
        "area_mm2": final.get("area_mm2"),
        "mapping": final.get("assignment", []),
    }
    path.write_text(yaml.safe_dump(_plain(system), sort_keys=False))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "value") and not isinstance(obj, (int, float, str, bool)):
        return obj.value
    return obj


# ---- the NASAIC table ------------------------------------------------------------------------
def table_rows(runs: Sequence[RunSummary], task_names: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per run, with reductions against the NAS-then-ASIC row (NASAIC's comparison)."""
    ref = next((r.final for r in runs if r.kind == "nas-then-asic" and r.final), None)
    rows = []
    for run in runs:
        f = run.final
        row: dict[str, Any] = {"method": run.label, "trained": run.trained, "pruned": run.pruned}
        if f is None:
            row.update(
                {t: "-" for t in task_names},
                score="-",
                latency_cycles="-",
                energy_uj="-",
                area_mm2="-",
                spec_met="no design",
                vs_nas_latency="-",
                vs_nas_energy="-",
                vs_nas_area="-",
                vs_nas_accuracy="-",
            )
            rows.append(row)
            continue
        for t in task_names:
            row[t] = 100 * f["accuracy"][t] if t in f.get("accuracy", {}) else "-"
        row.update(
            score=100 * f["score"] if f.get("score") is not None else "-",
            latency_cycles=f.get("latency_cycles", "-"),
            energy_uj=f.get("energy_uj", "-"),
            area_mm2=f.get("area_mm2", "-"),
            spec_met="yes" if f.get("spec_met") else "NO",
        )
        if ref is not None and ref is not f and "latency_cycles" in f:
            row["vs_nas_latency"] = f"{100 * (1 - f['latency_cycles'] / ref['latency_cycles']):+.2f} %"
            row["vs_nas_energy"] = f"{ref['energy_uj'] / f['energy_uj']:.2f}x"
            row["vs_nas_area"] = f"{ref['area_mm2'] / f['area_mm2']:.2f}x"
            row["vs_nas_accuracy"] = f"{100 * (f['score'] - ref['score']):+.2f} pt"
        else:
            row.update(vs_nas_latency="-", vs_nas_energy="-", vs_nas_area="-", vs_nas_accuracy="-")
        rows.append(row)
    return rows


def table_columns(task_names: Sequence[str]) -> list[str]:
    return (
        ["method"]
        + list(task_names)
        + [
            "score",
            "latency_cycles",
            "energy_uj",
            "area_mm2",
            "spec_met",
            "vs_nas_latency",
            "vs_nas_energy",
            "vs_nas_area",
            "vs_nas_accuracy",
            "trained",
            "pruned",
        ]
    )


TABLE_FORMATS = {"score": ".2f", "latency_cycles": ",.0f", "energy_uj": ",.1f", "area_mm2": ".3f"}


def _fmt(col: str, value: Any, task_names: Sequence[str]) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if col in TABLE_FORMATS:
            return format(value, TABLE_FORMATS[col])
        if col in task_names:
            return f"{value:.2f}"
        return str(value)
    return str(value)


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str], task_names: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(c, r.get(c, ""), task_names) for c in columns) + " |")
    return "\n".join(lines)


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], task_names: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            text = _fmt(c, r.get(c, ""), task_names)
            style = ' style="color:#b00;font-weight:bold"' if c == "spec_met" and text == "NO" else ""
            cells.append(f"<td{style}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# ---- plots -----------------------------------------------------------------------------------
def plot_front(
    records: Sequence[dict[str, Any]], runs: Sequence[RunSummary], spec: Spec, path: Path, title: str
) -> bool:
    """Score against latency, energy and area for every evaluated candidate of the main run, the spec's
    limits as lines, and each run's final design marked. False when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in records if r["status"] == "trained" and "latency_cycles" in r]
    if not trained and not any(r.final for r in runs):
        return False
    axes_spec = [
        ("latency_cycles", "latency (cycles)", spec.system.latency_cycles, 1.0),
        ("energy_uj", "energy (uJ)", spec.system.energy_pj, 1e-6),
        ("area_mm2", "area (mm2)", spec.system.area_um2, 1e-6),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), sharey=True)
    markers = ["*", "X", "P", "D", "s", "^", "v"]
    for ax, (key, label, limit, scale) in zip(axes, axes_spec):
        for met, color, name in ((True, "tab:blue", "meets spec"), (False, "tab:gray", "misses spec")):
            pts = [(r[key], 100 * r["score"]) for r in trained if bool(r.get("spec_met")) is met]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=14, c=color, alpha=0.7, label=f"trained, {name}")
        for i, run in enumerate(runs):
            f = run.final
            if f and key in f and f.get("score") is not None:
                ax.scatter(
                    [f[key]],
                    [100 * f["score"]],
                    s=140,
                    marker=markers[i % len(markers)],
                    edgecolors="black",
                    label=run.label,
                    zorder=5,
                )
        if limit is not None:
            ax.axvline(limit * scale, color="tab:red", linestyle="--", linewidth=1, label="spec limit")
        ax.set_xlabel(label)
        if key != "area_mm2":  # area spans less than a decade: a log axis only crowds its tick labels
            ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("weighted accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=min(6, len(uniq)), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---- report ----------------------------------------------------------------------------------
def write_report(
    out: Path,
    runs: Sequence[RunSummary],
    spec: Spec,
    task_names: Sequence[str],
    sections: Sequence[tuple[str, str]] = (),
    plot: str | None = None,
) -> tuple[Path, Path]:
    """``report.md`` and ``report.html``: the table, the plot, then extra (title, markdown) sections."""
    rows = table_rows(runs, task_names)
    cols = table_columns(task_names)
    met = [r for r in runs if r.final and r.final.get("spec_met")]
    verdict = (
        "No method found a design that meets the spec."
        if not met
        else f"{len(met)} of {len(runs)} methods end at a design that meets the spec."
    )
    md = [
        f"# Co-design search: {', '.join(task_names)}",
        "",
        f"Spec: `{spec.to_text()}`. {verdict}",
        "",
        "Accuracies are proxy-trained held-out accuracy (classification) or IoU (segmentation), in %; `score` is "
        "their weighted mean. Latency is the makespan of all tasks running at once on the chosen heterogeneous "
        "system; `vs_nas_*` compare with NAS then ASIC as NASAIC does (latency reduction, energy and area "
        "ratios, accuracy difference).",
        "",
        markdown(rows, cols, task_names),
        "",
    ]
    if plot:
        md += [f"![front]({plot})", ""]
    for run in runs:
        f = run.final
        if f:
            archs = "; ".join(f"{a['task']}: {a['space']} {a['describe']}" for a in f.get("archs", []))
            subs = "; ".join(_sub_text(s) for s in (f.get("system") or {}).get("sub_accelerators", []))
            md.append(f"- **{run.label}**: {archs}. Hardware: {subs}.")
        else:
            md.append(f"- **{run.label}**: no candidate met the spec ({run.pruned} pruned of {run.evaluated}).")
    md.append("")
    for title, text in sections:
        md += [f"## {title}", "", text, ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))
    body = [
        f"<h1>Co-design search: {html.escape(', '.join(task_names))}</h1>",
        f"<p>Spec: <code>{html.escape(spec.to_text())}</code>. {html.escape(verdict)}</p>",
        html_table(rows, cols, task_names),
    ]
    if plot:
        body.append(f'<p><img src="{html.escape(plot)}" style="max-width:100%"></p>')
    body.append(
        "<ul>" + "".join(f"<li>{html.escape(line[2:])}</li>" for line in md if line.startswith("- **")) + "</ul>"
    )
    for title, text in sections:
        body.append(f"<h2>{html.escape(title)}</h2><pre>{html.escape(text)}</pre>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
    )
    html_path = out / "report.html"
    html_path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>coexplore search</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    return md_path, html_path
