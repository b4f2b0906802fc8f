"""Fidelity against other tools: coexplore's cycles over a reference tool's, case by case, with a reason.

Two references:

* ``maestro``: the MAESTRO figures quoted in ``shared/NASAIC.md`` (one 3x3 conv, K = C = 64, 34x34
  input, 256 PEs, NoC bandwidth 64 and unlimited). They are data of this module (``MAESTRO_CASES``):
  five numbers, each with what MAESTRO was run on and the known difference to coexplore.
* ``scalesim``: the 18 SCALE-Sim v3 runs of ``scalesim.json`` in a reference folder (by default
  ``shared/reference`` beside the repository; ``reference_dir`` / ``--reference-dir`` to point
  elsewhere). They are measurements of another tool, not shipped with the package.

A ratio is ``coexplore cycles / reference cycles``; a case is *large* when ``|ln ratio| > ln 1.25``,
and every large case carries a reason, written from what differs (the case's note, filled in with
figures computed for that case), never a generic excuse.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coexplore.dataflows.spec import Accelerator, TimingProfile
from coexplore.models.ir import CoexploreError, Layer, conv, gemm

LARGE_RATIO = 1.25
TOOLS = ("maestro", "scalesim")
DEFAULT_PROFILE = {"maestro": "rtl", "scalesim": "scalesim"}
REFERENCE_ENV = "COEXPLORE_REFERENCE_DIR"


@dataclass(frozen=True, slots=True)
class ReferenceCase:
    """One figure of a reference tool and the coexplore design that mirrors its setup.

    ``note`` explains a large ratio; it is a format string over the figures ``run_cases`` computes
    (``ref``, ``cycles``, ``ratio``, ``macs``, ``pes``, ``util``, ``ref_util``, ``noc_excess``,
    ``ref_stalls``, ``stalls``, ...), so the stated reason always quotes the numbers of this run.
    """

    tool: str
    name: str
    layer: Layer
    acc: Accelerator
    reference_cycles: float
    metric: str  # what the reference's figure counts
    note: str
    tiers: tuple[str, ...] = ("analytical",)  # coexplore tiers compared: "analytical", "cycle"
    extra: dict[str, float] = field(default_factory=dict)  # reference figures the note quotes


@dataclass(frozen=True, slots=True)
class FidelityRow:
    """One case on one coexplore tier."""

    case: ReferenceCase
    tier: str
    profile: str
    cycles: float
    figures: dict[str, Any]

    @property
    def ratio(self) -> float:
        return self.cycles / self.case.reference_cycles

    @property
    def log_ratio(self) -> float:
        return math.log(self.ratio)

    @property
    def large(self) -> bool:
        return abs(self.log_ratio) > math.log(LARGE_RATIO)

    @property
    def reason(self) -> str:
        """Why the ratio is large (empty when it is not)."""
        if not self.large:
            return ""
        return self.case.note.format(**self.figures)

    def to_dict(self) -> dict[str, Any]:
        a = self.case.acc
        return {
            "tool": self.case.tool,
            "case": self.case.name,
            "tier": self.tier,
            "profile": self.profile,
            "layer": self.case.layer.describe(),
            "template": a.dataflow.name,
            "array": f"{a.rows}x{a.cols}",
            "noc_bw_bytes_per_cycle": a.noc_bw_bytes_per_cycle,
            "dram_bw_bytes_per_cycle": a.dram_bw_bytes_per_cycle,
            "metric": self.case.metric,
            "reference_cycles": self.case.reference_cycles,
            "coexplore_cycles": self.cycles,
            "ratio": self.ratio,
            "large": self.large,
            "reason": self.reason,
        }


# ---- MAESTRO (shared/NASAIC.md) -------------------------------------------------------------------
_MAESTRO_LAYER = dict(c=64, k=64, h=34, r=3)  # 34x34 input, 3x3, no padding: 32x32 outputs
_MAESTRO_UNLIMITED = 163_841.0
_MAESTRO_SETUP = "MAESTRO, one conv K=C=64, 34x34 input, 3x3, 256 PEs"

_NOC_BOUND_NOTE = (
    "MAESTRO is NoC-bound here: {ref:,.0f} cycles is {ref_over_unlimited:.2f}x its own unlimited-bandwidth "
    "163,841, so at 64 B/cycle its NoC carries up to 64 x {ref:,.0f} = {ref_noc_mb:.1f} MB "
    "({ref_noc_per_mac:.2f} B per MAC). coexplore's NoC bound counts each fold's distinct input and weight "
    "words once (multicast along the array) plus output and partial-sum words: {noc_mb:.1f} MB, "
    "{noc_needed:.1f} B/cycle over its {compute:,.0f} compute cycles, so 64 B/cycle adds {noc_excess:,.0f} "
    "cycles ({util:.0%} of 256 PEs busy). MAESTRO charges up to {noc_traffic_ratio:.1f}x that traffic; how (per-PE "
    "delivery without multicast?) was not checked: its directives for NASAIC's templates were not at hand."
)
_MAESTRO_CASES: tuple[tuple[str, str, float | None, float, str], ...] = (
    ("nvdla-noc64", "nvdla", 64.0, 442_548.0, _NOC_BOUND_NOTE),
    ("shidiannao-noc64", "shidiannao", 64.0, 192_528.0, _NOC_BOUND_NOTE),
    (
        "eyeriss-noc64",
        "eyeriss",
        64.0,
        417_799.0,
        "MAESTRO's Eyeriss-like mapping uses 96 of the 256 PEs (NASAIC.md): {macs:,} MACs / 96 = 393,216 cycles at "
        "full use, so its {ref:,.0f} keeps those 96 PEs {ref_util96:.0%} busy. coexplore's eyeriss template puts "
        "{rows_dims} on the 16 rows and {cols_dims} on the 16 columns and keeps {util:.0%} of "
        "all 256 PEs busy on average ({busy_pes:.0f} PEs); the NoC at 64 B/cycle adds {noc_excess:,.0f} cycles. "
        "The ratio is mostly the PE count the two mappings use.",
    ),
    (
        "nvdla-unlimited",
        "nvdla",
        None,
        _MAESTRO_UNLIMITED,
        "MAESTRO's 163,841 cycles is {ref_util:.0%} of the ideal {ideal:,.0f} (MACs / 256 PEs); coexplore's nvdla "
        "fold timing keeps {util:.0%} busy.",
    ),
    (
        "shidiannao-unlimited",
        "shidiannao",
        None,
        _MAESTRO_UNLIMITED,
        "MAESTRO's 163,841 cycles is {ref_util:.0%} of the ideal {ideal:,.0f} (MACs / 256 PEs); coexplore's "
        "shidiannao fold timing keeps {util:.0%} busy.",
    ),
)


def maestro_cases() -> list[ReferenceCase]:
    """The five MAESTRO figures of NASAIC.md as cases: 16x16 arrays (256 PEs), 1-byte words, the NoC
    bandwidth of 64 taken as 64 B/cycle, DRAM unlimited (MAESTRO's figures bound only the NoC)."""
    from coexplore.dataflows.io import get_template

    layer = conv("maestro-conv3x3", **_MAESTRO_LAYER)
    out = []
    for name, template, noc, cycles, note in _MAESTRO_CASES:
        acc = Accelerator(get_template(template), 16, 16, noc_bw_bytes_per_cycle=noc)
        noc_text = f"NoC {noc:g}" if noc else "unlimited NoC"
        out.append(
            ReferenceCase(
                "maestro", name, layer, acc, cycles, f"{_MAESTRO_SETUP}, {noc_text}: cycles", note, ("analytical",)
            )
        )
    return out


# ---- SCALE-Sim (reference/scalesim.json) ---------------------------------------------------------
SCALESIM_FILE = "scalesim.json"
_SCALESIM_WORDS_PER_CYCLE = 10.0  # the USER-bandwidth runs: 10 words/cycle per port (see the file's README)

_SCALESIM_STALL_NOTE = (
    "SCALE-Sim stalls {ref_stalls:,.0f} of its {ref:,.0f} cycles at 10 words/cycle per port (its sliding-window "
    "buffers over each operand stream, waits counted as SCALE-Sim counts them); profile {profile} charges "
    "{stalls:,.0f} stall cycles on {compute:,.0f} stall-free ones with {profile_memory}. Profile scalesim "
    "emulates SCALE-Sim's buffers and matches these runs."
)
_SCALESIM_FREE_NOTE = (
    "SCALE-Sim's stall-free count is the closed form folds x (T + fill) - 1; profile {profile} times folds as "
    "{profile_memory} ({cycles:,.0f} cycles). Profile scalesim follows SCALE-Sim's fold timing and matches."
)


def default_reference_dir() -> Path:
    """``$COEXPLORE_REFERENCE_DIR``, else ``shared/reference`` beside the repository holding this package."""
    env = os.environ.get(REFERENCE_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "reference"


def _reference_layer(spec: dict[str, Any]) -> Layer:
    if spec["kind"] == "conv":
        if spec.get("padding", 0) != 0 or spec["filter_h"] != spec["filter_w"]:
            raise CoexploreError(f"scalesim reference case {spec}: only unpadded square filters are supported")
        return conv(
            "scalesim-conv",
            c=spec["channels"],
            k=spec["filters"],
            h=spec["ifmap_h"],
            w=spec["ifmap_w"],
            r=spec["filter_h"],
            stride=spec["stride"],
        )
    return gemm("scalesim-gemm", m=spec["M"], k=spec["K"], n=spec["N"])


def scalesim_cases(reference_dir: str | Path | None = None) -> list[ReferenceCase]:
    """The SCALE-Sim runs of ``reference_dir/scalesim.json``, on the systolic template of each dataflow,
    in SCALE-Sim's words: 1-byte words, partial sums included (``acc_bits = 8``), SRAM sizes as run."""
    from coexplore.dataflows.io import get_template

    folder = Path(reference_dir) if reference_dir is not None else default_reference_dir()
    path = folder / SCALESIM_FILE
    if not path.is_file():
        raise CoexploreError(
            f"SCALE-Sim reference {str(path)!r} not found (it ships beside the repository in "
            f"shared/reference; give its folder with --reference-dir or ${REFERENCE_ENV})"
        )
    try:
        data = json.loads(path.read_text())
        raw_cases = data["cases"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CoexploreError(
            f"SCALE-Sim reference {str(path)!r}: not the expected JSON ({type(exc).__name__}: "
            f'{exc}); expected {{"cases": [...]}}'
        ) from None
    out = []
    for i, case in enumerate(raw_cases):
        try:
            layer = _reference_layer(case["layer"])
            limited = "CALC" not in str(case["bandwidth"])
            kb = case["sram_kb"]
            acc = Accelerator(
                get_template(f"systolic-{case['dataflow']}"),
                int(case["array_rows"]),
                int(case["array_cols"]),
                ifmap_sram_kb=float(kb["ifmap"]),
                filter_sram_kb=float(kb["filter"]),
                ofmap_sram_kb=float(kb["ofmap"]),
                dram_bw_bytes_per_cycle=_SCALESIM_WORDS_PER_CYCLE if limited else None,
                acc_bits=8,
            )
            cycles = float(case["compute_cycles"])
            stalls = float(case["stall_cycles"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CoexploreError(
                f"SCALE-Sim reference {str(path)!r}: case {i} is malformed ({type(exc).__name__}: {exc})"
            ) from None
        bw = f"{_SCALESIM_WORDS_PER_CYCLE:g} words/cycle" if limited else "unlimited"
        name = f"{case['layer']['kind']}-{case['dataflow']}-{acc.rows}x{acc.cols}-{'bw10' if limited else 'calc'}"
        out.append(
            ReferenceCase(
                "scalesim",
                name,
                layer,
                acc,
                cycles,
                f"SCALE-Sim 3.0.0 'Total Cycles' (stalls included), DRAM {bw}",
                _SCALESIM_STALL_NOTE if limited else _SCALESIM_FREE_NOTE,
                ("cycle", "analytical"),
                {"ref_stalls": stalls},
            )
        )
    if not out:
        raise CoexploreError(f"SCALE-Sim reference {str(path)!r} has no cases")
    return out


def reference_cases(tool: str, reference_dir: str | Path | None = None) -> list[ReferenceCase]:
    """The cases of ``tool`` (``maestro`` or ``scalesim``)."""
    if tool == "maestro":
        return maestro_cases()
    if tool == "scalesim":
        return scalesim_cases(reference_dir)
    raise CoexploreError(f"unknown reference tool {tool!r} (expected one of {', '.join(TOOLS)})")


# ---- running --------------------------------------------------------------------------------------
_MEMORY_TEXT = {
    "scalesim": "SCALE-Sim's buffers emulated",
    "fold": "the generated hardware's memory (resident input, ping-pong weight and output buffers, partial-sum spills)",
}


def _figures(
    case: ReferenceCase, profile: TimingProfile, cycles: float, compute: float, stalls: float, noc_excess: float
) -> dict[str, Any]:
    layer, acc = case.layer, case.acc
    ref = case.reference_cycles
    ideal = layer.macs / acc.pes
    mapping = acc.dataflow.mapping_for(layer.kind)
    util = layer.macs / (acc.pes * cycles) if cycles else 0.0
    return {
        "ref": ref,
        "cycles": cycles,
        "ratio": cycles / ref,
        "macs": layer.macs,
        "pes": acc.pes,
        "ideal": ideal,
        "util": util,
        "busy_pes": util * acc.pes,
        "ref_util": ideal / ref,
        "ref_util96": layer.macs / 96 / ref,
        "ref_over_unlimited": ref / _MAESTRO_UNLIMITED,
        "ref_noc_mb": 64 * ref / 1e6,
        "ref_noc_per_mac": 64 * ref / layer.macs,
        "noc_excess": noc_excess,
        "compute": compute,
        "stalls": stalls,
        "ref_stalls": 0.0,
        "profile": profile.name,
        "noc_needed": 0.0,
        "noc_mb": 0.0,
        "noc_traffic_ratio": 0.0,
        "profile_memory": _MEMORY_TEXT.get(profile.memory_model, profile.memory_model),
        "rows_dims": "*".join(d.value for d in mapping.rows.dims),
        "cols_dims": "*".join(d.value for d in mapping.cols.dims),
        **case.extra,
    }


def run_cases(
    cases: Sequence[ReferenceCase], profile: TimingProfile, progress: Callable[[int, int], None] | None = None
) -> list[FidelityRow]:
    """Every case on each of its tiers in ``profile``."""
    from coexplore.sim.analytical import evaluate_layer
    from coexplore.sim.cycle import simulate_layer

    rows: list[FidelityRow] = []
    for i, case in enumerate(cases):
        for tier in case.tiers:
            if tier == "cycle":
                sim = simulate_layer(case.layer, case.acc, profile)
                cycles, stalls = float(sim.total_cycles), float(sim.stall_cycles)
                compute, noc_excess = float(sim.busy_cycles), 0.0
            else:
                m = evaluate_layer(case.layer, case.acc, profile)
                cycles, stalls = float(m.latency_cycles), float(m.stall_cycles)
                compute = float(m.compute_cycles)
                noc_excess = 0.0
                if case.acc.noc_bw_bytes_per_cycle is not None:
                    import dataclasses

                    free = evaluate_layer(
                        case.layer, dataclasses.replace(case.acc, noc_bw_bytes_per_cycle=None), profile
                    )
                    noc_excess = max(cycles - float(free.latency_cycles), 0.0)
            figures = _figures(case, profile, cycles, compute, stalls, noc_excess)
            if tier == "analytical" and case.acc.noc_bw_bytes_per_cycle is not None:
                need = noc_bandwidth_needed(case.layer, case.acc, profile)
                figures.update(
                    noc_needed=need,
                    noc_mb=need * compute / 1e6,
                    noc_traffic_ratio=figures["ref_noc_mb"] / max(need * compute / 1e6, 1e-12),
                )
            rows.append(FidelityRow(case, tier, profile.name, cycles, figures))
        if progress is not None:
            progress(i + 1, len(cases))
    return rows


def noc_bandwidth_needed(layer: Layer, acc: Accelerator, profile: TimingProfile) -> float:
    """The least NoC bytes/cycle at which the analytical model adds no NoC cycles to ``layer`` on ``acc``
    (bisection on a log scale; 0.1 % precision). A NoC slower than this bounds the folds."""
    import dataclasses

    from coexplore.sim.analytical import evaluate_layer

    free = float(evaluate_layer(layer, dataclasses.replace(acc, noc_bw_bytes_per_cycle=None), profile).latency_cycles)

    def bound(bw: float) -> bool:
        m = evaluate_layer(layer, dataclasses.replace(acc, noc_bw_bytes_per_cycle=bw), profile)
        return float(m.latency_cycles) > free * (1 + 1e-9)

    lo, hi = 1e-3, 1.0
    while bound(hi):
        lo, hi = hi, hi * 4
        if hi > 1e9:
            return math.inf
    while hi / lo > 1.001:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if bound(mid) else (lo, mid)
    return hi


def summary(rows: Sequence[FidelityRow]) -> dict[str, Any]:
    """Geometric-mean ratio and the count of large cases, per tier."""
    out: dict[str, Any] = {}
    for tier in dict.fromkeys(r.tier for r in rows):
        part = [r for r in rows if r.tier == tier]
        logs = [r.log_ratio for r in part]
        out[tier] = {
            "cases": len(part),
            "geomean_ratio": math.exp(sum(logs) / len(logs)),
            "min_ratio": min(r.ratio for r in part),
            "max_ratio": max(r.ratio for r in part),
            "large": sum(r.large for r in part),
        }
    return out


def plot(rows: Sequence[FidelityRow], path: str | Path, title: str) -> None:
    """Log-scale ratio (coexplore / reference) per case, one marker series per tier and profile, the
    1.25x band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.case.name for r in rows))
    series = list(dict.fromkeys((r.tier, r.profile) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names) + 2), 4.8))
    ax.axhspan(1 / LARGE_RATIO, LARGE_RATIO, color="0.9", label=f"within {LARGE_RATIO:g}x")
    ax.axhline(1.0, color="k", lw=0.8)
    markers = "osD^v<>"
    for j, (tier, profile) in enumerate(series):
        part = [r for r in rows if (r.tier, r.profile) == (tier, profile)]
        offset = (j - (len(series) - 1) / 2) * 0.15
        ax.plot(
            [names.index(r.case.name) + offset for r in part],
            [r.ratio for r in part],
            markers[j % len(markers)],
            ls="none",
            label=f"{tier}, profile {profile}",
            alpha=0.85,
        )
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("coexplore / reference cycles (log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
