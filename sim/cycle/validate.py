"""Analytical model versus cycle-level simulator on a fixed suite of layer/design pairs.

The suite: the distinct compute layers of the zoo networks (``coexplore.models.zoo``; plain
``ir.conv``/``ir.gemm`` layers when the zoo cannot load), each on every template, at two array sizes,
once with unlimited DRAM bandwidth (compute-bound) and once with little (bandwidth-bound). The
error of a pair is ``|analytical latency - simulated total cycles| / simulated total cycles``.
The agreement bound of issue 3: mean <= 2 % and max <= 5 % per profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coexplore.dataflows.spec import Accelerator, TimingProfile
from coexplore.models.ir import CoexploreError, Layer, conv, gemm, matmul

ALL_TEMPLATES = ("systolic-os", "systolic-ws", "systolic-is", "nvdla", "shidiannao", "eyeriss")
ZOO = ("resnet9", "resnet18", "mobilenetv2", "unet", "vit")
MEAN_BOUND_PCT = 2.0
MAX_BOUND_PCT = 5.0


@dataclass(frozen=True, slots=True)
class Case:
    network: str
    layer: Layer
    acc: Accelerator
    bandwidth: str  # "unlimited" or "limited"


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    profile: str
    simulated: float
    analytical: float
    stall_fraction: float  # simulated stalls / total: > 0.05 counts as bandwidth-bound
    seconds: float
    by_construction: bool = False  # profile scalesim, SCALE-Sim's arrays, DRAM limit: both run its buffers

    @property
    def error_pct(self) -> float:
        return 100.0 * abs(self.analytical - self.simulated) / max(self.simulated, 1.0)

    @property
    def bound(self) -> str:
        return "bandwidth" if self.stall_fraction > 0.05 else "compute"

    def to_dict(self) -> dict:
        a = self.case.acc
        return {
            "profile": self.profile,
            "network": self.case.network,
            "layer": self.case.layer.name,
            "shape": self.case.layer.describe(),
            "template": a.dataflow.name,
            "array": f"{a.rows}x{a.cols}",
            "dram_bw": a.dram_bw_bytes_per_cycle,
            "simulated_cycles": self.simulated,
            "analytical_cycles": self.analytical,
            "error_pct": self.error_pct,
            "bound": self.bound,
        }


def _fallback_layers() -> list[tuple[str, Layer]]:
    layers = [
        conv("conv3x3_64", c=64, k=64, h=32, r=3, pad=1),
        conv("conv3x3_s2", c=64, k=128, h=32, r=3, stride=2, pad=1),
        conv("conv1x1", c=128, k=256, h=16, r=1),
        conv("dw3x3", c=96, k=96, h=28, r=3, pad=1, groups=96),
        conv("stem", c=3, k=32, h=64, r=3, pad=1),
        gemm("fc", m=64, k=512, n=256),
        gemm("proj", m=64, k=192, n=576),
        matmul("scores", m=64, k=48, n=64, batch=4),
        conv("conv5x5", c=16, k=32, h=24, r=5, pad=2),
    ]
    return [("builtin", layer) for layer in layers]


def suite_layers(networks: Sequence[str] = ZOO, max_macs: float = 120e6) -> list[tuple[str, Layer]]:
    """Distinct compute layers of the zoo (at most ``max_macs`` MACs each, to keep the suite quick)."""
    try:
        from coexplore.models.zoo import get_network
    except ImportError:  # the zoo needs torch
        return _fallback_layers()
    out: list[tuple[str, Layer]] = []
    seen: set = set()
    for name in networks:
        try:
            net = get_network(name)
        except CoexploreError:
            continue
        for layer in net.compute_layers():
            key = (layer.kind, layer.describe(), layer.stride_h, layer.pad_h)
            if key in seen or layer.macs > max_macs:
                continue
            seen.add(key)
            out.append((name, layer))
    return out or _fallback_layers()


def build_suite(
    templates: Sequence[str] = ALL_TEMPLATES,
    sizes: Sequence[int] = (16, 32),
    limited_bw: float = 8.0,
    sram_kb: float = 64.0,
    networks: Sequence[str] = ZOO,
    max_macs: float = 120e6,
    limit: int | None = None,
) -> list[Case]:
    """Every suite layer x template; array size alternates over layers; unlimited and limited DRAM."""
    from coexplore.dataflows.io import get_template

    cases: list[Case] = []
    layers = suite_layers(networks, max_macs)
    for li, (net, layer) in enumerate(layers):
        for ti, tname in enumerate(templates):
            size = sizes[(li + ti) % len(sizes)]
            df = get_template(tname)
            for label, bw in (("unlimited", None), ("limited", limited_bw)):
                acc = Accelerator(
                    df,
                    size,
                    size,
                    ifmap_sram_kb=sram_kb,
                    filter_sram_kb=sram_kb,
                    ofmap_sram_kb=sram_kb,
                    dram_bw_bytes_per_cycle=bw,
                )
                cases.append(Case(net, layer, acc, label))
    return cases[:limit] if limit else cases


def run_suite(
    cases: Sequence[Case], profile: TimingProfile, progress: Callable[[int, int], None] | None = None
) -> list[CaseResult]:
    from coexplore.sim.analytical import evaluate_layer
    from coexplore.sim.cycle.simulator import scalesim_dataflow, simulate_layer

    results = []
    for i, case in enumerate(cases):
        start = time.process_time()
        sim = simulate_layer(case.layer, case.acc, profile)
        seconds = time.process_time() - start
        ana = evaluate_layer(case.layer, case.acc, profile)
        total = float(sim.total_cycles)
        shared = (
            profile.memory_model == "scalesim"
            and case.acc.dram_bw_bytes_per_cycle is not None
            and scalesim_dataflow(case.acc, case.layer) is not None
        )
        results.append(
            CaseResult(
                case,
                profile.name,
                total,
                float(ana.latency_cycles),
                sim.stall_cycles / total if total else 0.0,
                seconds,
                shared,
            )
        )
        if progress is not None:
            progress(i + 1, len(cases))
    return results


@dataclass(frozen=True, slots=True)
class Summary:
    profile: str
    cases: int
    compute_bound: int
    bandwidth_bound: int
    mean_pct: float
    max_pct: float
    worst: str
    by_construction: int = 0  # pairs where both tiers run SCALE-Sim's buffers (see sim.analytical)
    independent_mean_pct: float = 0.0  # the error over the other pairs
    independent_max_pct: float = 0.0

    @property
    def ok(self) -> bool:
        return self.mean_pct <= MEAN_BOUND_PCT and self.max_pct <= MAX_BOUND_PCT

    def to_dict(self) -> dict:
        return {
            "profile": self.profile,
            "cases": self.cases,
            "compute_bound": self.compute_bound,
            "bandwidth_bound": self.bandwidth_bound,
            "mean_error_pct": self.mean_pct,
            "max_error_pct": self.max_pct,
            "worst_case": self.worst,
            "within_bound": self.ok,
            "by_construction": self.by_construction,
            "independent_mean_error_pct": self.independent_mean_pct,
            "independent_max_error_pct": self.independent_max_pct,
        }


def summarize(results: Sequence[CaseResult]) -> Summary:
    if not results:
        raise CoexploreError("validate: no cases to summarize")
    err = np.array([r.error_pct for r in results])
    worst = results[int(err.argmax())]
    d = worst.to_dict()
    text = f"{d['layer']} ({d['shape']}) on {d['template']} {d['array']} bw={d['dram_bw']}"
    bw = sum(r.bound == "bandwidth" for r in results)
    own = (
        np.array([r.error_pct for r in results if not r.by_construction])
        if any(not r.by_construction for r in results)
        else np.zeros(1)
    )
    return Summary(
        results[0].profile,
        len(results),
        len(results) - bw,
        bw,
        float(err.mean()),
        float(err.max()),
        text,
        sum(r.by_construction for r in results),
        float(own.mean()),
        float(own.max()),
    )


def plot(results_by_profile: dict[str, Sequence[CaseResult]], path: str) -> None:
    """Scatter of analytical vs simulated cycles and the error distribution, one row per profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results_by_profile)
    fig, axes = plt.subplots(n, 2, figsize=(11, 4.2 * n), squeeze=False)
    for row, (name, results) in enumerate(results_by_profile.items()):
        sim = np.array([r.simulated for r in results])
        ana = np.array([r.analytical for r in results])
        err = np.array([r.error_pct for r in results])
        bwb = np.array([r.bound == "bandwidth" for r in results])
        ax = axes[row][0]
        ax.loglog(sim[~bwb], ana[~bwb], ".", label="compute-bound", alpha=0.7)
        ax.loglog(sim[bwb], ana[bwb], ".", label="bandwidth-bound", alpha=0.7)
        lo, hi = max(1.0, min(sim.min(), ana.min())), max(sim.max(), ana.max())
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlabel("simulated cycles")
        ax.set_ylabel("analytical cycles")
        ax.set_title(f"profile {name}: {len(results)} layer/design pairs")
        ax.legend()
        ax = axes[row][1]
        ax.hist(err, bins=40)
        ax.axvline(MAX_BOUND_PCT, color="r", ls="--", label=f"max bound {MAX_BOUND_PCT:g} %")
        ax.axvline(err.mean(), color="k", ls=":", label=f"mean {err.mean():.2f} %")
        ax.set_xlabel("|analytical - simulated| / simulated (%)")
        ax.set_ylabel("pairs")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
