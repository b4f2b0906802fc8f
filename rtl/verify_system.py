"""Cycle-exact check of a whole system's hardware: every sub-accelerator runs one layer, all at once.

The system's top is built with partitioned ports (``rtl.top``: each sub-accelerator on its own memory
channel per operand, its stream as wide as its bandwidth slice), so a sub-accelerator in the top runs
exactly as alone, and the simulator's ``rtl`` profile states its cycles. This checks that claim on the
real top: the cocotb bench (``benches/system_bench.py``) starts every sub-accelerator on the same
cycle, and each one's outputs must equal numpy's, its cycle counter the bench's count, and its cycles
the simulator's (``simulated``: the caller passes ``simulate_layer(layer, sub, "rtl")``, since rtl/ does
not import sim/; with one DRAM channel per operand, as built) and the kind's own timing model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Layer, conv
from coexplore.rtl.params import RtlError


def probe_layer() -> Layer:
    """The default layer run on every sub-accelerator: a small 3x3 conv any generated array holds."""
    return conv("probe", c=4, k=4, h=5, r=3, pad=1)


def verify_design(
    design_yaml: str | Path,
    work_dir: Path,
    layers: Sequence[Layer] = (),
    simulator: str = "icarus",
    seed: int = 0,
    cache_dir: Path | None = None,
    simulated: Callable[[Layer, Accelerator], int] | None = None,
) -> dict[str, Any]:
    """Run ``layers`` (one per sub-accelerator, or one for all; default :func:`probe_layer`) on the
    system's partitioned-port top at once; the per-sub-accelerator result and ``passed``. ``simulated``
    gives the cycles each sub-accelerator must take (default: its kind's timing model alone)."""
    from coexplore.dataflows.system import get_system
    from coexplore.rtl.program import prepare
    from coexplore.rtl.top import design_params, emit_design
    from coexplore.rtl.verify import job_for, random_tensors, run_top_bench

    system = get_system(str(design_yaml))
    subs = design_params(system)
    n = len(subs)
    chosen = list(layers) or [probe_layer()]
    if len(chosen) == 1:
        chosen *= n
    if len(chosen) != n:
        raise RtlError(
            f"{len(chosen)} layers for system {system.name!r}: expected one, or one per sub-accelerator ({n})"
        )
    work_dir = Path(work_dir)
    out = work_dir / "rtl"
    out.mkdir(parents=True, exist_ok=True)
    summary = emit_design(Path(design_yaml), out, cache_dir, ports="partitioned")
    jobs, rows = [], []
    for i, (acc, p, layer) in enumerate(zip(system.accelerators, subs, chosen)):
        x, w = random_tensors(p, layer, np.random.default_rng(seed + i))
        try:
            prog = prepare(p, layer, ifmap=x, weights=w)
        except RtlError as exc:
            raise RtlError(f"sub-accelerator {acc.label!r}: {exc}") from None
        built = dataclasses.replace(acc, dram_ports="per_operand")  # as design_params builds it
        expected = int(simulated(layer, built)) if simulated else prog.expected_cycles
        job = job_for(prog, seed=seed + i, gaps={}, ifmap=x, weights=w, expected_cycles=prog.expected_cycles)
        job["index"] = i
        jobs.append(job)
        rows.append(
            {
                "sub_accelerator": acc.label,
                "template": acc.dataflow.name,
                "array": f"{acc.rows}x{acc.cols}",
                "stream_bytes": p.stream_bytes,
                "layer": layer.describe(),
                "model_cycles": prog.expected_cycles,
                "simulated_cycles": expected,
            }
        )
    top_v = out / f"{summary['top']}.v"
    res = run_top_bench(top_v, summary["top"], jobs, work_dir / "sim", simulator=simulator, bench="system_bench")
    by_index = {r["index"]: r for r in res.get("subs", [])}
    for i, row in enumerate(rows):
        r = by_index.get(i, {})
        row.update(
            rtl_cycles=r.get("rtl_cycles"),
            mismatches=r.get("mismatches"),
            inputs_consumed=bool(r.get("all_consumed")),
        )
        row["passed"] = (
            row["mismatches"] == 0 and row["inputs_consumed"] and row["rtl_cycles"] == row["simulated_cycles"]
        )
    return {
        "system": system.name,
        "top": summary["top"],
        "ports": "partitioned",
        "simulator": simulator,
        "subs": rows,
        "passed": bool(res.get("passed")) and all(r["passed"] for r in rows),
    }
