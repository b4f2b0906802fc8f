"""Search at scale: candidates per minute with 1 and 2 workers, for the process pool and for Ray.

Runs the search loop on the demo's tasks, spec and hardware budget once per (executor, workers), each
with a cold, temporary training cache so every training really happens, and the same seed, so every run
evaluates the same candidates (checked: a run that logs different ones fails the benchmark). Prints
per run the wall time of the search itself, candidates (evaluated) and trainings per minute, and for Ray
the local cluster's start and stop overhead in seconds (not counted in the rates); then the 2-worker /
1-worker ratio of candidates per minute for each executor. The last line is the process pool's ratio
(the executor for one machine): ``scaleout_speedup_2_workers: X`` (target >= 1.7 on 2 idle cores).

Usage: .venv/bin/python benchmarks/bench_scaleout.py [--budget 12] [--optimizer rl] [--executors process,ray]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _run(executor_name: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    from coexplore.cli_search import build_config
    from coexplore.codesign.executors import make_executor
    from coexplore.codesign.loop import run_search
    from coexplore.demo_search import DEMO_BW_BUDGET, DEMO_PE_BUDGET, DEMO_SPEC, DEMO_TASKS

    with tempfile.TemporaryDirectory(prefix="coexplore_bench_scaleout_") as tmp:
        config, _ = build_config(
            tasks=DEMO_TASKS,
            spec_text=DEMO_SPEC,
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
        t0 = time.perf_counter()
        executor = make_executor(executor_name, workers)
        start = time.perf_counter() - t0
        try:
            t1 = time.perf_counter()
            state = run_search(config, Path(tmp) / "run", executor=executor)
            wall = time.perf_counter() - t1
        finally:
            t2 = time.perf_counter()
            executor.close()
            stop = time.perf_counter() - t2
    recs = state.records
    return {
        "executor": executor_name,
        "workers": workers,
        "wall": wall,
        "start": start,
        "stop": stop,
        "evaluated": len(recs),
        "trained": state.trained,
        "candidates_per_minute": 60 * len(recs) / wall,
        "trainings_per_minute": 60 * state.trained / wall,
        "signature": json.dumps([(r["vector"], r["status"], r.get("accuracy"), r.get("latency_cycles")) for r in recs]),
    }


def main(argv: list[str] | None = None) -> int:
    from coexplore.demo_search import DEMO_SPEC, DEMO_TASKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizer", default="rl")
    ap.add_argument("--budget", type=int, default=12, help="trainings per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--executors", default="process,ray", help="comma list of process, ray")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.executors.split(",") if n.strip()]
    print(
        f"space: {DEMO_TASKS}, spec {DEMO_SPEC}; optimizer {args.optimizer}, seed {args.seed}, budget "
        f"{args.budget} trainings; cold training cache per run"
    )
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for name in names:
        for workers in (1, 2):
            r = _run(name, workers, args)
            runs[name, workers] = r
            overhead = f"; cluster start {r['start']:.1f} s, stop {r['stop']:.1f} s" if name == "ray" else ""
            print(
                f"{name:8s} {workers} worker(s): {r['evaluated']} candidates ({r['trained']} trained) in "
                f"{r['wall']:.1f} s: candidates_per_minute {r['candidates_per_minute']:.1f}, "
                f"trainings_per_minute {r['trainings_per_minute']:.1f}{overhead}",
                flush=True,
            )
    same = len({r["signature"] for r in runs.values()}) == 1
    print(f"same candidates, costs and accuracies in every run: {'yes' if same else 'NO'}")
    if "ray" in names:
        ray_runs = [runs["ray", w] for w in (1, 2)]
        print(f"ray_start_seconds: {max(r['start'] for r in ray_runs):.1f} (max of {len(ray_runs)})")
        print(f"ray_stop_seconds: {max(r['stop'] for r in ray_runs):.1f}")
    speedup = {n: runs[n, 2]["candidates_per_minute"] / runs[n, 1]["candidates_per_minute"] for n in names}
    for n in names:
        print(f"speedup_2_workers_{n}: {speedup[n]:.2f}")
    main_name = "process" if "process" in names else names[0]
    print(f"(scaleout_speedup_2_workers below is the {main_name} executor's 2-worker / 1-worker ratio)")
    print(f"scaleout_speedup_2_workers: {speedup[main_name]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
