"""Search efficiency of the joint-search optimizers on NAS-Bench-201 with a hardware latency limit.

The table is ``../shared/reference/nb201_hw.csv`` (all 15,625 NAS-Bench-201 cells with their test
accuracies and HW-NAS-Bench latencies; see shared/reference/README.md); it is read from there, never
copied. Each cell is a vector of 6 positions (its edges) x 5 options (its operations). A cell is feasible
when its latency on ``--hardware`` is at most ``--latency-limit-ms`` (default: that hardware's median).

Every optimizer goes through the same harness, as in the real search: latency is known before training,
so an infeasible proposal is answered ``Outcome(feasible=False, violation=...)`` without counting a
query; a repeat is answered from memory without counting; a query (one accuracy look-up) stands for a
training. Every optimizer gets the same ``feasible`` oracle and seeds 0..N-1, and is asked ``--batch``
vectors at a time; a run stops after ``--budget`` queries or ``--max-proposals`` proposals.

Printed per optimizer, beside random search's from the same run: mean +- std over seeds of the best
feasible accuracy after 100 and 300 queries; mean and median queries needed to come within 0.5 point
of the feasible optimum (budget + 1 when never, with the count of such seeds); the wall time. The last
line is ``search_efficiency_vs_random: X``: random's mean queries-to-0.5 over the best optimizer's.

Usage: .venv/bin/python benchmarks/bench_search.py [--csv PATH] [--dataset c10|c100|in16]
       [--hardware eyeriss|fpga] [--latency-limit-ms X] [--seeds 20] [--budget 300] [--batch 5]
       [--optimizers random,evolution,rl,nsga2,predictor]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per job here
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from coexplore.codesign.search import OPTIMIZERS, Outcome, make_optimizer  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "nb201_hw.csv"
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = 6
TOLERANCE = 0.5  # accuracy points below the feasible optimum that count as found
CHECKPOINTS = (100, 300)


def encode_cell(arch_str: str) -> tuple[int, ...]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> the 6 op indices, edge by edge."""
    tokens = [t for t in arch_str.replace("+", "|").split("|") if t]
    if len(tokens) != EDGES:
        raise ValueError(f"cell {arch_str!r}: {len(tokens)} edges, expected {EDGES}")
    out = []
    for t in tokens:
        op = t.split("~")[0]
        if op not in OPS:
            raise ValueError(f"cell {arch_str!r}: unknown operation {op!r}")
        out.append(OPS.index(op))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Bench:
    """The look-up table of one dataset/hardware pair with its latency limit."""

    accuracy: dict[tuple[int, ...], float]  # test accuracy, %
    latency_ms: dict[tuple[int, ...], float]
    limit_ms: float

    def feasible(self, v: tuple[int, ...]) -> bool:
        """The oracle every optimizer gets; a cell missing from the table (a partial table) cannot be built."""
        return v in self.latency_ms and self.latency_ms[v] <= self.limit_ms

    @property
    def optimum(self) -> float:
        return max(a for v, a in self.accuracy.items() if self.feasible(v))

    @property
    def n_feasible(self) -> int:
        return sum(self.feasible(v) for v in self.accuracy)


def load_bench(path: Path, dataset: str, hardware: str, limit_ms: float | None) -> Bench:
    accuracy, latency = {}, {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            v = encode_cell(row["arch_str"])
            accuracy[v] = float(row[f"{dataset}_test"])
            latency[v] = float(row[f"{hardware}_lat_ms_c10"])
    limit = limit_ms if limit_ms is not None else float(np.median(list(latency.values())))
    return Bench(accuracy, latency, limit)


@dataclass(frozen=True, slots=True)
class Run:
    best: tuple[float, ...]  # best feasible accuracy after each query (nan before the first)
    hit: int | None  # queries to come within TOLERANCE of the feasible optimum
    proposals: int


def run_search(
    name: str, bench: Bench, seed: int, budget: int, batch: int, max_proposals: int, **options: object
) -> Run:
    """One search through the harness: infeasible and repeated proposals are free, queries are counted."""
    opt = make_optimizer(name, (len(OPS),) * EDGES, seed, feasible=bench.feasible, **options)
    target = bench.optimum - TOLERANCE
    memo: dict[tuple[int, ...], Outcome] = {}
    best: list[float] = []
    top, hit, proposals = float("nan"), None, 0
    while len(best) < budget and proposals < max_proposals:
        vectors = opt.ask(min(batch, budget - len(best)))
        outcomes = []
        for v in vectors:
            proposals += 1
            if v not in memo:
                lat = bench.latency_ms.get(v, 2.0 * bench.limit_ms) / bench.limit_ms  # missing: infeasible
                if lat > 1.0:
                    memo[v] = Outcome(feasible=False, objectives=(lat,), violation=lat - 1.0)
                else:
                    acc = bench.accuracy[v]
                    memo[v] = Outcome(feasible=True, score=acc / 100.0, objectives=(lat,))
                    top = acc if np.isnan(top) else max(top, acc)
                    best.append(top)
                    if hit is None and top >= target:
                        hit = len(best)
            outcomes.append(memo[v])
        opt.tell(vectors, outcomes)
    return Run(tuple(best[:budget]), hit, proposals)


def _best_at(run: Run, q: int) -> float:
    if not run.best:
        return float("nan")
    return run.best[min(q, len(run.best)) - 1]


def _mean_std(xs: list[float]) -> str:
    xs = [x for x in xs if not np.isnan(x)]
    if not xs:
        return "n/a"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):6.2f} ± {sd:4.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="nb201_hw.csv (default: %(default)s)")
    ap.add_argument("--dataset", choices=("c10", "c100", "in16"), default="c10")
    ap.add_argument("--hardware", choices=("eyeriss", "fpga"), default="eyeriss")
    ap.add_argument("--latency-limit-ms", type=float, default=None, help="default: the median latency")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=300, help="queries (trainings) per search")
    ap.add_argument("--batch", type=int, default=5, help="vectors per ask")
    ap.add_argument("--max-proposals", type=int, default=None, help="default: 50 x budget")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma list (random is always run)")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"bench_search: {args.csv} not found (pass --csv PATH): skipped")
        return 0
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    for n in names:
        if n not in OPTIMIZERS:
            ap.error(f"--optimizers: unknown {n!r} (expected some of {', '.join(OPTIMIZERS)})")
    names = ["random"] + [n for n in dict.fromkeys(names) if n != "random"]
    if min(args.seeds, args.budget, args.batch) < 1:
        ap.error("--seeds, --budget and --batch must be positive")
    if "rl" in names:
        import torch

        torch.set_num_threads(1)
    bench = load_bench(args.csv, args.dataset, args.hardware, args.latency_limit_ms)
    if bench.n_feasible == 0:
        ap.error(f"--latency-limit-ms {bench.limit_ms}: no cell is feasible")
    max_prop = args.max_proposals or 50 * args.budget
    checkpoints = [c for c in CHECKPOINTS if c <= args.budget] or [args.budget]
    print(
        f"NAS-Bench-201 {args.dataset} on {args.hardware}: latency <= {bench.limit_ms:.3f} ms "
        f"({bench.n_feasible} of {len(bench.accuracy)} cells feasible), feasible optimum {bench.optimum:.2f} %, "
        f"target >= {bench.optimum - TOLERANCE:.2f} %"
    )
    print(
        f"{args.seeds} seeds, budget {args.budget} queries, batch {args.batch}, at most {max_prop} proposals per search"
    )
    head = "".join(f"{'best@' + str(c):>17s}" for c in checkpoints)
    print(
        f"{'optimizer':10s}{head} {'q->-0.5 mean':>13s} {'median':>7s} {'missed':>7s} {'vs random':>10s} "
        f"{'proposals':>10s} {'wall s':>7s}"
    )
    means: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        runs = [run_search(name, bench, s, args.budget, args.batch, max_prop) for s in range(args.seeds)]
        wall = time.perf_counter() - t0
        hits = [r.hit if r.hit is not None else args.budget + 1 for r in runs]
        missed = sum(r.hit is None for r in runs)
        means[name] = statistics.fmean(hits)
        ratio = means["random"] / means[name]
        cols = "".join(f"{_mean_std([_best_at(r, c) for r in runs]):>17s}" for c in checkpoints)
        print(
            f"{name:10s}{cols} {means[name]:13.1f} {statistics.median(hits):7.1f} "
            f"{f'{missed}/{len(runs)}':>7s} {ratio:9.2f}x {statistics.fmean(r.proposals for r in runs):10.0f} "
            f"{wall:7.1f}",
            flush=True,
        )
    others = [means[n] for n in names if n != "random"]
    print(
        f"(q->-0.5: queries until the best feasible accuracy is within {TOLERANCE} point of the optimum; "
        f"missed seeds count budget+1 = {args.budget + 1})"
    )
    best = min(others) if others else means["random"]
    print(f"search_efficiency_vs_random: {means['random'] / best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
