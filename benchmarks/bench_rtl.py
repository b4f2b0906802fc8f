"""Benchmark: emit and verify an 8x8 weight-stationary accelerator on one conv layer, under Icarus
and under Verilator (cocotb), and print the simulated cycles per second of each.

    .venv/bin/python benchmarks/bench_rtl.py [--simulators icarus,verilator] [--layer SPEC] [--faults]

Each run is the full check (bit-exact against numpy, cycle-exact against the timing model);
``--faults`` also runs the same check on deliberately broken designs (``rtl.faults``: a flipped
output bit, an output stream one cycle slow per beat) and shows that both go red.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from coexplore.cli_common import parse_layer_spec
from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.emit import emit
from coexplore.rtl.faults import FAULTS, faulty
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.program import expected_cycles
from coexplore.rtl.verify import verify_layer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulators", default="icarus,verilator")
    ap.add_argument("--layer", default="conv:h=16,c=16,k=16,r=3,stride=1,pad=1")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--dram-bw", type=int, default=8)
    ap.add_argument("--faults", action="store_true", help="also show the check failing on broken designs")
    args = ap.parse_args()
    acc = Accelerator(
        dataflow=get_template("systolic-ws"),
        rows=args.rows,
        cols=args.cols,
        ifmap_sram_kb=32,
        filter_sram_kb=4,
        ofmap_sram_kb=32,
        dram_bw_bytes_per_cycle=args.dram_bw,
    )
    layer = parse_layer_spec(args.layer)
    params = params_from_accelerator(acc)
    from coexplore.sim.cycle import simulate_layer

    model = expected_cycles(params, layer)
    simulated = int(simulate_layer(layer, acc, "rtl").total_cycles)
    if simulated != model:
        print(f"WARNING: simulator (profile rtl) says {simulated} cycles, the RTL timing model {model}")
    model = simulated
    work = Path(tempfile.mkdtemp(prefix="bench_rtl_"))
    try:
        t0 = time.perf_counter()
        emit(params, work / "cache", acc)
        emit_s = time.perf_counter() - t0
        print(
            f"layer {layer.describe()} on {acc.label}, stream {params.stream_bytes} B/cycle; "
            f"{layer.macs:,} MACs, simulated (profile rtl) {model:,} cycles"
        )
        print(f"emit_s: {emit_s:.2f}")
        for sim in args.simulators.split(","):
            t1 = time.perf_counter()
            result, _ = verify_layer(
                acc, layer, work / sim, simulator=sim, seed=1, expected_cycles=model, cache_dir=work / "cache"
            )
            total = time.perf_counter() - t1
            status = "PASSED" if result.passed and result.mismatches == 0 and result.rtl_cycles == model else "FAILED"
            print(
                f"{sim}: {status} rtl_cycles={result.rtl_cycles} mismatches={result.mismatches} "
                f"build_s={result.build_s:.1f} run_s={result.wall_s:.1f} total_s={total:.1f} "
                f"simulated_cycles_per_s={(result.rtl_cycles or 0) / result.wall_s:,.0f}"
            )
        if args.faults:
            for fault in FAULTS:
                result, _ = verify_layer(
                    acc,
                    layer,
                    work / fault,
                    simulator="icarus",
                    seed=1,
                    expected_cycles=model,
                    params=faulty(params, fault),
                    cache_dir=work / "cache",
                )
                went_red = not result.passed
                print(
                    f"fault {fault}: check {'FAILED as it must' if went_red else 'PASSED (the bench is blind!)'} "
                    f"(mismatches={result.mismatches}, rtl_cycles={result.rtl_cycles} vs {model})"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
