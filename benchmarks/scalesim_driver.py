"""Run SCALE-Sim 3 (PyPI ``scalesim``) on a list of cases and print one JSON result per case.

Runs inside SCALE-Sim's own virtual environment (see ``bench_cycle.py --install-scalesim``), so it
imports nothing from coexplore. Input: a JSON file with a list of cases
``{"kind": "conv"|"gemm", "dataflow": "os"|"ws"|"is", "rows", "cols", "sram_kb", "bw" (null: CALC),
"layers": [{"h", "w", "r", "s", "c", "k", "stride"} | {"m", "k", "n"}]}``.
Output (stdout, one line per case): ``{"cycles": [[total_incl_prefetch, compute, stall], ...],
"cpu_s": ..., "maxrss_mb": ...}``; a failing case prints ``{"error": ...}``.
Driving facts (from ../shared/reference/README.md): the Python API, every config key present, a
layout file even with custom layouts off, topology rows ending in a comma, ``exit()`` on bad input.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time


def _config(rows: int, cols: int, dataflow: str, sram_kb: int, bw: int | None) -> str:
    mode = "CALC" if bw is None else "USER"
    b = 10 if bw is None else int(bw)
    return f"""[general]
run_name = coexplore_bench

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth : {b}
Dataflow : {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {b}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {b}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def run_case(case: dict) -> dict:
    from scalesim.scale_sim import scalesim

    work = tempfile.mkdtemp(prefix="scalesim_")
    cfg = os.path.join(work, "run.cfg")
    with open(cfg, "w") as f:
        f.write(_config(case["rows"], case["cols"], case["dataflow"], case["sram_kb"], case.get("bw")))
    topo = os.path.join(work, "topo.csv")
    gemm = case["kind"] == "gemm"
    with open(topo, "w") as f:
        if gemm:
            f.write("Layer, M, N, K,\n")
            for i, lay in enumerate(case["layers"]):
                f.write(f"L{i}, {lay['m']}, {lay['n']}, {lay['k']},\n")
        else:
            f.write(
                "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
            )
            for i, lay in enumerate(case["layers"]):
                f.write(
                    f"L{i}, {lay['h']}, {lay['w']}, {lay['r']}, {lay['s']}, {lay['c']}, {lay['k']}, {lay['stride']},\n"
                )
    layout = os.path.join(work, "layout.csv")
    with open(layout, "w") as f:
        f.write("Layer name, factor,\nL0," + ",".join(["1"] * 20) + ",\n")
    start = time.process_time()
    sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout, input_type_gemm=gemm)
    sim.run_scale(top_path=work)
    cycles = []
    for layer in sim.runner.single_layer_sim_object_list:
        items = layer.get_compute_report_items()
        cycles.append([int(items[0]), int(items[1]), int(items[2])])
    cpu = time.process_time() - start
    return {"cycles": cycles, "cpu_s": cpu, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for case in cases:
        try:
            result = run_case(case)
        except BaseException as exc:  # SCALE-Sim calls exit() on bad input
            result = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
