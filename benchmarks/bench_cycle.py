"""Cycle-level simulator vs SCALE-Sim: simulated cycles per CPU second on the same layers, same run.

    .venv/bin/python benchmarks/bench_cycle.py --install-scalesim   # first time: SCALE-Sim's own venv
    .venv/bin/python benchmarks/bench_cycle.py                       # later runs reuse .venv-scalesim

Layers: the 3x3 conv of tests/data/scalesim.json (32x32x64 input, 64 filters) on 16x16 and
32x32 arrays, dataflows os/ws/is, with 10 words/cycle per DRAM port (SCALE-Sim's USER mode, the
reference's bandwidth-limited cases) and unlimited bandwidth (CALC). SCALE-Sim 3 runs through its
Python API in its own virtual environment (``pip install scalesim "numpy<2.4"``: newer numpy breaks
it), driven by ``benchmarks/scalesim_driver.py``; both sides' CPU time is ``time.process_time()``
around the simulation only. Every case must give SCALE-Sim's cycles exactly.

Then ResNet-18 (CIFAR, the zoo's) on a 32x32 systolic array: peak memory of the simulator
(tracemalloc peak of its allocations, and the process's peak RSS, which includes torch for the zoo).

Prints one line per case, the cycles-per-second figures, and last ``speedup_vs_scalesim: X (target
1000: met)``: X is the smallest speedup over the (array size, bandwidth mode) groups; the target
(issue 11) is at least 1,000x in every group.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-scalesim"
DRIVER = REPO / "benchmarks" / "scalesim_driver.py"
REFERENCE = REPO / "tests" / "data" / "scalesim.json"  # copy of shared/reference/scalesim.json
TARGET_SPEEDUP = 1000  # issue 11: simulated cycles per CPU second, ours over SCALE-Sim's, in every group


def install_scalesim(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import scalesim, numpy; print(numpy.__version__)"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "scalesim", "numpy<2.4"], check=True)
    return python


def reference_conv() -> dict:
    if REFERENCE.exists():
        for case in json.loads(REFERENCE.read_text())["cases"]:
            lay = case["layer"]
            if lay["kind"] == "conv":
                return {
                    "h": lay["ifmap_h"],
                    "w": lay["ifmap_w"],
                    "r": lay["filter_h"],
                    "s": lay["filter_w"],
                    "c": lay["channels"],
                    "k": lay["filters"],
                    "stride": lay["stride"],
                }
    return {"h": 32, "w": 32, "r": 3, "s": 3, "c": 64, "k": 64, "stride": 1}


def cases(modes: list[str]) -> list[dict]:
    conv = reference_conv()
    out = []
    for size in (16, 32):
        for df in ("os", "ws", "is"):
            for mode in modes:
                out.append(
                    {
                        "kind": "conv",
                        "dataflow": df,
                        "rows": size,
                        "cols": size,
                        "sram_kb": 64,
                        "bw": 10 if mode == "user" else None,
                        "layers": [conv],
                        "mode": mode,
                    }
                )
    return out


def run_scalesim(python: Path, todo: list[dict]) -> list[dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(todo, f)
    proc = subprocess.run([str(python), str(DRIVER), f.name], capture_output=True, text=True, check=True)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(results) != len(todo):
        raise SystemExit(
            f"SCALE-Sim driver returned {len(results)} results for {len(todo)} cases:\n{proc.stderr[-2000:]}"
        )
    return results


def run_ours(case: dict, repeat: int) -> tuple[int, int, float]:
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.dataflows.spec import Accelerator
    from coexplore.models.ir import conv
    from coexplore.sim.cycle import simulate_layer

    lay = case["layers"][0]
    layer = conv("bench", c=lay["c"], k=lay["k"], h=lay["h"], w=lay["w"], r=lay["r"], s=lay["s"], stride=lay["stride"])
    kb = case["sram_kb"]
    acc = Accelerator(
        get_template(f"systolic-{case['dataflow']}"),
        case["rows"],
        case["cols"],
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=case["bw"],
    )
    prof = get_profile("scalesim")
    times = []
    for _ in range(repeat):
        start = time.process_time()
        res = simulate_layer(layer, acc, prof)
        times.append(time.process_time() - start)
    return res.compute_cycles, res.stall_cycles, statistics.median(times)


def resnet18_memory() -> list[str]:
    from coexplore.dataflows.io import get_profile, get_template
    from coexplore.dataflows.spec import Accelerator
    from coexplore.models.zoo import get_network
    from coexplore.sim.cycle import simulate_network

    net = get_network("resnet18")
    lines = []
    for prof, template, bw in (
        ("scalesim", "systolic-os", 10.0),
        ("scalesim", "systolic-ws", 10.0),
        ("rtl", "systolic-ws", 16.0),
    ):
        acc = Accelerator(get_template(template), 32, 32, dram_bw_bytes_per_cycle=bw)
        tracemalloc.start()
        start = time.process_time()
        res = simulate_network(net, acc, get_profile(prof))
        cpu = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines.append(
            f"resnet18 {template} 32x32 profile {prof} dram_bw {bw:g}: {res.total_cycles:,} cycles, "
            f"{cpu:.2f} CPU s (under tracemalloc), simulator peak {peak:.1f} MB, process peak RSS {rss:.0f} MB"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--install-scalesim", action="store_true", help="create .venv-scalesim with SCALE-Sim if needed")
    ap.add_argument("--scalesim-python", default=str(VENV / "bin" / "python"), help="python of SCALE-Sim's venv")
    ap.add_argument("--modes", default="user,calc", help="bandwidth modes: user (10 words/cycle), calc (unlimited)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of our simulator per case (median CPU time)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the ResNet-18 memory measurement")
    args = ap.parse_args()
    python = install_scalesim(VENV) if args.install_scalesim else Path(args.scalesim_python)
    if not python.exists():
        raise SystemExit(f"{python}: SCALE-Sim's venv is missing; run with --install-scalesim")
    todo = cases([m.strip() for m in args.modes.split(",") if m.strip()])
    theirs = run_scalesim(python, todo)
    groups: dict[tuple[int, str], list[float]] = {}
    tot = [0, 0.0, 0.0]
    print(
        f"{'case':22s} {'cycles (ours = SCALE-Sim)':>26s} {'ours CPU s':>11s} {'SCALE-Sim CPU s':>16s} {'speedup':>8s}"
    )
    for case, ss in zip(todo, theirs):
        if "error" in ss:
            raise SystemExit(f"SCALE-Sim failed on {case}: {ss['error']}")
        cycles, stalls, cpu = run_ours(case, args.repeat)
        ss_cycles, ss_stalls = ss["cycles"][0][1], ss["cycles"][0][2]
        if (cycles, stalls) != (ss_cycles, ss_stalls):
            raise SystemExit(f"cycle mismatch on {case}: ours {cycles}/{stalls}, SCALE-Sim {ss_cycles}/{ss_stalls}")
        key = (case["rows"], case["mode"])
        g = groups.setdefault(key, [0, 0.0, 0.0])
        g[0] += cycles
        g[1] += cpu
        g[2] += ss["cpu_s"]
        tot[0] += cycles
        tot[1] += cpu
        tot[2] += ss["cpu_s"]
        label = f"{case['dataflow']} {case['rows']}x{case['cols']} {case['mode']}"
        print(f"{label:22s} {cycles:>26,} {cpu:>11.4f} {ss['cpu_s']:>16.2f} {ss['cpu_s'] / max(cpu, 1e-9):>8.0f}")
    speedups = []
    for (size, mode), (cycles, ours, ss) in sorted(groups.items()):
        s = ss / max(ours, 1e-9)
        speedups.append(s)
        print(
            f"{size}x{size} {mode}: ours {cycles / max(ours, 1e-9):,.0f} simulated cycles per CPU second, "
            f"SCALE-Sim {cycles / ss:,.0f}; speedup {s:,.0f}x"
        )
    print(f"all cases: ours {tot[0] / tot[1]:,.0f} simulated cycles per CPU second, SCALE-Sim {tot[0] / tot[2]:,.0f}")
    if not args.skip_memory:
        for line in resnet18_memory():
            print(line)
        print("SCALE-Sim on ResNet-18: 3.7-6 GB (../shared/reference/README.md; 5.4 GB in issue 3)")
    worst = min(speedups)
    verdict = "met" if worst >= TARGET_SPEEDUP else "not met"
    print(f"speedup_vs_scalesim: {worst:.0f} (target {TARGET_SPEEDUP}: {verdict})")


if __name__ == "__main__":
    main()
