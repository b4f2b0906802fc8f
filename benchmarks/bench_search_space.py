"""The joint search on the project's own space: how much exact pruning saves, and candidates per minute.

Runs ``coexplore search``'s loop on the demo's tasks and spec with a cold training cache (a temporary
folder), then prints: proposals evaluated, the fraction pruned before training (proven infeasible or
no scheduled design met the spec), mean hardware-search seconds per candidate, mean training seconds
per trained candidate, and candidates (evaluated) and trainings per minute of wall time.

Usage: .venv/bin/python benchmarks/bench_search_space.py [--optimizer rl] [--budget 20] [--workers 2]
       [--spec latency=1e5,energy=60uJ,area=2.5mm2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from coexplore.cli_search import build_config
    from coexplore.codesign.executors import make_executor
    from coexplore.codesign.loop import run_search
    from coexplore.demo_search import DEMO_BW_BUDGET, DEMO_PE_BUDGET, DEMO_SPEC, DEMO_TASKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", default="rl")
    ap.add_argument("--budget", type=int, default=20, help="trainings")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spec", default=DEMO_SPEC)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="coexplore_bench_search_") as tmp:
        config, _ = build_config(
            tasks=DEMO_TASKS,
            spec_text=args.spec,
            optimizer=args.optimizer,
            budget=args.budget,
            seed=args.seed,
            pe_budget=DEMO_PE_BUDGET,
            bw_budget=DEMO_BW_BUDGET,
            templates_text=None,
            max_accelerators=2,
            batch_size=4,
            max_proposals=None,
            weights=None,
            data=(),
            epochs=None,
            cache_dir=str(Path(tmp) / "cache"),
        )
        executor = make_executor("auto", args.workers)
        t0 = time.perf_counter()
        try:
            state = run_search(config, Path(tmp) / "run", executor=executor)
        finally:
            executor.close()
        wall = time.perf_counter() - t0
    recs = state.records
    pruned = [r for r in recs if r["status"] == "pruned"]
    trained = [r for r in recs if r["status"] == "trained"]
    proven = sum(bool(r.get("proven_infeasible")) for r in pruned)
    print(
        f"space: {DEMO_TASKS}, spec {args.spec}, {DEMO_PE_BUDGET} PEs, {DEMO_BW_BUDGET:g} B/cycle; "
        f"optimizer {args.optimizer}, seed {args.seed}, {args.workers} workers, cold training cache"
    )
    print(
        f"evaluated: {len(recs)} (+{state.repeats} repeats answered from memory), trained: {len(trained)}, "
        f"pruned: {len(pruned)} ({proven} proven infeasible by bounds)"
    )
    print(f"hardware search: {statistics.mean(r['hardware_seconds'] for r in recs):.2f} s per candidate (mean)")
    if trained:
        print(
            f"training: {statistics.mean(r['train_seconds'] for r in trained):.2f} s per trained candidate "
            "(both tasks, one thread)"
        )
    print(f"wall: {wall:.1f} s; trainings_per_minute: {60 * len(trained) / wall:.1f}")
    print(f"candidates_per_minute: {60 * len(recs) / wall:.1f}")
    print(f"pruned_fraction: {len(pruned) / max(1, len(recs)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
