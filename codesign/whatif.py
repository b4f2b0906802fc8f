"""System what-if studies: template pairs, PE split and DRAM bandwidth for a set of tasks; Pareto front.

Every design spends the same budget (total PEs, DRAM bytes per cycle): one sub-accelerator with all of
it, or two (a *pair*, same template = homogeneous) splitting the PEs by each fraction of
``pe_splits`` and the bandwidth either as one shared pool or partitioned by each fraction of
``bw_splits``; optionally three (equal thirds, shared pool). Each design's schedule of the networks
comes from ``coexplore.codesign.schedule`` (greedy by default: hundreds of designs; ``exact`` for few).
Costs come from one batched call of the cost provider over every distinct array (bandwidth does not
change them: durations apply each design's bandwidth by roofline).

Outputs in ``out_dir``: ``system_sweep.csv`` and ``system_sweep.json`` (one row per design, with
``pareto`` marking the designs no other beats on makespan, energy and area together) and
``system_pareto.png``. ``plot_gantt`` draws one schedule.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator, Dataflow
from coexplore.dataflows.system import BandwidthSharing, Budget, Link, System, array_shape
from coexplore.models.ir import CoexploreError, Network
from coexplore.sim.system import CostFn, CostTable, MappingProblem, SystemResult, analytical_costs, build_problem

DEFAULT_TEMPLATES = ("nvdla", "shidiannao", "eyeriss", "systolic-os", "systolic-ws", "systolic-is")
SHARED = "shared"


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (designs x objectives, all minimized) that no other row dominates."""
    keep = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        dominated = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def _round_pes(pes: float) -> int:
    return max(16, int(round(pes / 16)) * 16)


def design_grid(
    templates: Sequence[str],
    pe_budget: int,
    bw_budget: float,
    *,
    pe_splits: Sequence[float] = (0.25, 0.5, 0.75),
    bw_splits: Sequence[float | str] = (SHARED, 0.5),
    bw_totals: Sequence[float] | None = None,
    group_sizes: Sequence[int] = (1, 2),
) -> list[tuple[tuple[str, ...], tuple[int, ...], float, tuple[float, ...] | None]]:
    """(templates, PEs per sub-accelerator, total bandwidth, bandwidth slices or None for shared)."""
    out: list[tuple[tuple[str, ...], tuple[int, ...], float, tuple[float, ...] | None]] = []
    for total in bw_totals or [bw_budget]:
        for k in group_sizes:
            for combo in itertools.combinations_with_replacement(list(templates), k):
                if k == 1:
                    out.append((combo, (pe_budget,), total, (total,)))
                    continue
                if k == 2:
                    splits = sorted({f for f in pe_splits if 0 < f < 1})
                    if combo[0] == combo[1]:  # homogeneous: f and 1 - f are the same design
                        splits = sorted({min(f, 1 - f) for f in splits})
                    pe_sets: list[tuple[int, ...]] = [
                        (_round_pes(f * pe_budget), pe_budget - _round_pes(f * pe_budget)) for f in splits
                    ]
                else:
                    share = _round_pes(pe_budget / k)
                    pe_sets = [tuple([share] * (k - 1) + [pe_budget - share * (k - 1)])]
                for pes in pe_sets:
                    for bw in bw_splits:
                        if bw == SHARED:
                            out.append((combo, pes, total, None))
                        elif k == 2 and 0 < float(bw) < 1:
                            out.append((combo, pes, total, (float(bw) * total, (1 - float(bw)) * total)))
    return out


def _system(
    combo: tuple[str, ...],
    pes: tuple[int, ...],
    total: float,
    slices: tuple[float, ...] | None,
    dataflows: dict[str, Dataflow],
    pe_budget: int,
    link: Link,
    base: dict,
) -> System:
    accs = []
    for i, (t, p) in enumerate(zip(combo, pes)):
        rows, cols = array_shape(p)
        accs.append(
            Accelerator(
                dataflow=dataflows[t],
                rows=rows,
                cols=cols,
                dram_ports="shared",
                dram_bw_bytes_per_cycle=None if slices is None else slices[i],
                name=f"{t}{i}",
                **base,
            )
        )
    bw_text = SHARED if slices is None else "+".join(f"{b:g}" for b in slices)
    name = "+".join(f"{t}@{p}" for t, p in zip(combo, pes)) + f"|bw{total:g}:{bw_text}"
    sharing = BandwidthSharing.SHARED if slices is None or len(combo) == 1 else BandwidthSharing.PARTITIONED
    return System(
        name=name,
        accelerators=tuple(accs),
        budget=Budget(dram_bw_bytes_per_cycle=total, pes=pe_budget),
        sharing=sharing,
        link=link,
    )


def _cost_key(acc: Accelerator) -> tuple:
    return (
        acc.dataflow.name,
        acc.rows,
        acc.cols,
        acc.ifmap_sram_kb,
        acc.filter_sram_kb,
        acc.ofmap_sram_kb,
        acc.noc_bw_bytes_per_cycle,
        acc.input_bits,
        acc.weight_bits,
        acc.acc_bits,
        acc.clock_mhz,
        acc.tech_node_nm,
    )


# The ``coexplore sweep`` parameters (click names -> flags) only one kind of sweep reads; the CLI refuses
# the other kind's when given explicitly rather than ignore them.
ACCELERATOR_SWEEP_ONLY: dict[str, str] = {
    "model": "--model",
    "layer_specs": "--layer",
    "input_shapes": "--input-shape",
    "sizes": "--sizes",
    "dram_bws": "--dram-bw",
    "sram_kbs": "--sram-kb",
    "noc_bws": "--noc-bw",
}
SYSTEM_SWEEP_ONLY: dict[str, str] = {"pe_budget": "--pe-budget", "bw_budget": "--bw-budget"}


def run_system_sweep(
    networks: Sequence[Network],
    out_dir: str | Path,
    pe_budget: int = 4096,
    bw_budget_bytes_per_cycle: float = 64.0,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    pe_splits: Sequence[float] = (0.25, 0.5, 0.75),
    bw_splits: Sequence[float | str] = (SHARED, 0.5),
    bw_totals: Sequence[float] | None = None,
    group_sizes: Sequence[int] = (1, 2),
    solver: str = "greedy",
    time_limit_s: float = 0.5,
    max_units_per_task: int | None = 20,
    profile: str = "rtl",
    costs: CostFn | None = None,
    link: Link = Link(),
    accelerator_fields: dict | None = None,
    plot: bool = True,
    progress: bool = True,
) -> list[dict]:
    """Evaluate every design of ``design_grid`` on ``networks``; write CSV, JSON and the Pareto plot.

    Returns the rows (one dict per design, sorted by makespan). ``time_limit_s`` is per design.
    """
    from coexplore.codesign.schedule import solve

    if not networks:
        raise CoexploreError("no tasks given (expected at least one network)")
    if pe_budget < 16 * max(group_sizes):
        raise CoexploreError(f"PE budget {pe_budget}: too small to split among {max(group_sizes)} sub-accelerators")
    if not bw_budget_bytes_per_cycle > 0:
        raise CoexploreError(f"bandwidth budget {bw_budget_bytes_per_cycle!r}: expected a positive number")
    for f in pe_splits:
        if not 0 < f < 1:
            raise CoexploreError(f"PE split {f!r}: expected a fraction strictly between 0 and 1")
    for b in bw_splits:
        try:
            ok = b == SHARED or 0 < float(b) < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise CoexploreError(f"bandwidth split {b!r}: expected 'shared' or a fraction strictly between 0 and 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataflows = {t: get_template(t) for t in templates}
    base = dict(accelerator_fields or {})
    grid = design_grid(
        list(dataflows),
        pe_budget,
        bw_budget_bytes_per_cycle,
        pe_splits=pe_splits,
        bw_splits=bw_splits,
        bw_totals=bw_totals,
        group_sizes=group_sizes,
    )
    systems = [_system(c, p, t, s, dataflows, pe_budget, link, base) for c, p, t, s in grid]

    # one batch of costs over every distinct array
    layers = [l for net in networks for l in net.layers]
    distinct: dict[tuple, Accelerator] = {}
    for sys_ in systems:
        for acc in sys_.accelerators:
            distinct.setdefault(_cost_key(acc), replace(acc, dram_bw_bytes_per_cycle=None, name=""))
    keys = list(distinct)
    table = (costs or analytical_costs(profile))(layers, [distinct[k] for k in keys])
    row_of = {k: i for i, k in enumerate(keys)}

    rows: list[dict] = []
    task_names = [net.name for net in networks]
    bar = _Progress(len(systems), "system designs", progress)
    for sys_, (combo, pes, total, slices) in zip(systems, grid):
        idx = [row_of[_cost_key(a)] for a in sys_.accelerators]
        sub = CostTable(table.compute_cycles[idx], table.energy_pj[idx], table.dram_bytes[idx], table.area_um2[idx])
        problem = build_problem(networks, sys_, sub, max_units_per_task=max_units_per_task)
        res = solve(problem, solver, time_limit_s=time_limit_s)
        r = res.result
        row: dict[str, Any] = {
            "design": sys_.name,
            "templates": "+".join(combo),
            "sub_accelerators": len(combo),
            "heterogeneous": len(set(combo)) > 1,
            "pes": "+".join(str(p) for p in pes),
            "bw_total_bytes_per_cycle": total,
            "bw": SHARED if slices is None else "+".join(f"{b:g}" for b in slices),
            "makespan_cycles": r.makespan_cycles,
            "energy_pj": r.energy_pj,
            "area_um2": r.area_um2,
            "edp": r.makespan_cycles * r.energy_pj,
        }
        for name, lat in zip(task_names, r.task_latency_cycles):
            row[f"latency_{name}_cycles"] = lat
        row.update(
            {
                "solver": res.solver,
                "solver_status": res.status,
                "gap": res.gap,
                "units": problem.n_units,
                "transfers": r.transfers,
                "peak_dram_bw_bytes_per_cycle": r.contention.peak_bw_bytes_per_cycle,
            }
        )
        rows.append(row)
        bar.step()
    bar.close()
    rows.sort(key=lambda r: (r["makespan_cycles"], r["energy_pj"]))
    pts = np.array([[r["makespan_cycles"], r["energy_pj"], r["area_um2"]] for r in rows])
    for done, keep in zip(rows, pareto_mask(pts)):
        done["pareto"] = bool(keep)
    _write(
        rows,
        out / "system_sweep.csv",
        out / "system_sweep.json",
        meta={
            "tasks": task_names,
            "pe_budget": pe_budget,
            "bw_budget_bytes_per_cycle": bw_budget_bytes_per_cycle,
            "solver": solver,
            "time_limit_s_per_design": time_limit_s,
            "profile": profile,
            "summary": summarize(rows),
        },
    )
    if plot:
        plot_pareto(
            rows,
            out / "system_pareto.png",
            f"{', '.join(task_names)}: {pe_budget} PEs, {bw_budget_bytes_per_cycle:g} B/cycle",
        )
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """Best heterogeneous vs best homogeneous design (one template, one or two sub-accelerators), by makespan."""
    het = [r for r in rows if r["heterogeneous"]]
    hom = [r for r in rows if not r["heterogeneous"]]
    out: dict[str, Any] = {}
    if het:
        out["best_heterogeneous"] = min(het, key=lambda r: r["makespan_cycles"])["design"]
    if hom:
        out["best_homogeneous"] = min(hom, key=lambda r: r["makespan_cycles"])["design"]
    if het and hom:
        bh = min(r["makespan_cycles"] for r in het)
        bo = min(r["makespan_cycles"] for r in hom)
        out["makespan_heterogeneous_cycles"] = bh
        out["makespan_homogeneous_cycles"] = bo
        out["latency_reduction"] = 1.0 - bh / bo
    return out


def _write(rows: Sequence[dict], csv_path: Path, json_path: Path, meta: dict) -> None:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    payload = _finite({**meta, "designs": list(rows)})
    json_path.write_text(json.dumps(payload, indent=1, default=_json_default, allow_nan=False))


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (an infeasible design's inf) as ``None``: JSON has no inf."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


class _Progress:
    """A one-line progress counter on stderr (silent when disabled or not a terminal and tiny)."""

    def __init__(self, total: int, what: str, enabled: bool) -> None:
        self.total, self.what, self.enabled, self.done = total, what, enabled, 0
        self.t0 = time.perf_counter()

    def step(self) -> None:
        self.done += 1
        if self.enabled and (self.done == self.total or self.done % max(1, self.total // 20) == 0):
            sys.stderr.write(f"\r{self.what}: {self.done}/{self.total} ({time.perf_counter() - self.t0:.0f} s)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(rows: Sequence[dict], path: Path, title: str) -> None:
    """Makespan vs energy and vs area; colour = area / energy; Pareto designs ringed, best het/hom named."""
    plt = _plt()
    ms = np.array([r["makespan_cycles"] for r in rows]) / 1e6
    en = np.array([r["energy_pj"] for r in rows]) / 1e6
    ar = np.array([r["area_um2"] for r in rows]) / 1e6
    par = np.array([r["pareto"] for r in rows])
    het = np.array([r["heterogeneous"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, y, c, ylabel, clabel in (
        (axes[0], en, ar, "energy (uJ)", "area (mm2)"),
        (axes[1], ar, en, "area (mm2)", "energy (uJ)"),
    ):
        for mask, marker, label in ((het, "o", "heterogeneous"), (~het, "s", "homogeneous")):
            sc = ax.scatter(
                ms[mask],
                y[mask],
                c=c[mask],
                cmap="viridis",
                marker=marker,
                s=22,
                label=label,
                vmin=c.min(),
                vmax=c.max(),
            )
        ax.scatter(ms[par], y[par], facecolors="none", edgecolors="red", s=80, linewidths=1.2, label="Pareto")
        ax.set_xlabel("makespan (M cycles, log scale)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels collide over a short decade
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel(ylabel)
        fig.colorbar(sc, ax=ax, label=clabel)
        ax.grid(alpha=0.3)
    for flag, name in ((True, "best het."), (False, "best hom.")):
        idx = [i for i, r in enumerate(rows) if r["heterogeneous"] == flag]
        if idx:
            i = min(idx, key=lambda j: ms[j])
            axes[0].annotate(
                f"{name}: {rows[i]['templates']} {rows[i]['pes']}",
                (ms[i], en[i]),
                fontsize=7,
                xytext=(5, 5),
                textcoords="offset points",
            )
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_gantt(problem: MappingProblem, result: SystemResult, path: str | Path, title: str = "") -> None:
    """One bar per unit, a row per sub-accelerator, a colour per task."""
    plt = _plt()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(12, 1.6 + 0.6 * problem.n_accs))
    cmap = plt.get_cmap("tab10")
    for t in result.timings:
        task = problem.units[t.unit].task
        ax.barh(
            t.acc,
            t.end_cycle - t.start_cycle,
            left=t.start_cycle,
            color=cmap(task % 10),
            edgecolor="black",
            linewidth=0.3,
            hatch="//" if t.mode else None,
        )
    ax.set_yticks(range(problem.n_accs), problem.acc_names)
    ax.invert_yaxis()
    ax.set_xlabel("cycles")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i % 10)) for i in range(len(problem.task_names))]
    ax.legend(
        handles,
        problem.task_names,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35),
        ncol=len(problem.task_names),
        frameon=False,
    )
    ax.set_title(title or f"makespan {result.makespan_cycles:,.0f} cycles")
    ax.set_xlim(0, result.makespan_cycles * 1.02 if math.isfinite(result.makespan_cycles) else None)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
