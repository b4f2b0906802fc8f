"""Throughput of the analytical model: (layer, design) evaluations per second on one CPU core.

Layers: every layer of the zoo networks (resnet9, resnet18, mobilenetv2, unet, vit) when the zoo is
importable, else ResNet-18 (CIFAR) layers built with the IR helpers. Designs: a grid over every
template, array shape, scratchpad size, DRAM and NoC bandwidth, port arrangement (and bit width /
node when more pairs are needed), so that at least 10^6 pairs are evaluated per run.

    .venv/bin/python benchmarks/bench_analytical.py [--repeat 3] [--min-pairs 1000000]

The per-layer mapper is on: every candidate mapping of ``dataflows.mapping.candidate_mappings`` is
evaluated and the best kept (profile ``rtl``: one candidate on the templates the RTL generator emits;
``--profile ideal``: every candidate everywhere). The issue's target is 5 M evaluations/s on one core
(profile rtl). The zoo's 187 layers hold 88 distinct ones (ResNet and transformer blocks repeat):
``evaluate_batch`` evaluates each distinct layer once, so the figure counts pairs answered, about
2.1x the distinct pairs computed.

History (CPU seconds are the figure to read: the shared 2-core development machine runs at load 5-8
and its wall clock is 1.5-3x CPU time). Before 2026-12-03 (first change): rtl 1.6 M/s per CPU
second, ideal 0.46 M. Then the tiled post-pass (sim/tiled.py) cost 0.46 s of a 0.86 s run: 1.9 M/s
per CPU second (1.2 M by this bench's best of 2 at load 1). Second change (2026-12-03, issue 11 item
6): distinct layers evaluated once, the post-pass's sub-layers evaluated only on the designs that
run them (``evaluate_pairs``, not a grid), per-design Python work done as tables, the spill terms of
the fold memory model skipped where nothing spills; results bit-identical to the code before (every
array of this bench's grid in profiles rtl and ideal; 214 layers x 400 random designs with mixed
widths and nodes in rtl and ideal; samples in scalesim). Measured with ``dataflows/tiling.py`` and
``sim/tiled.py`` as committed at 4e5a4b8 (the post-pass's planner was being rewritten): back to back
in one process against a copy of the code before, best of 6 to 10 per run of the pair, rtl 0.30-0.38
CPU s per run against 0.73-0.90 s (1.9-2.7x: runs at load 5-6 scatter that much), ideal 1.23 s
against 1.51 s (1.2x: many small candidate evaluations, each with a fixed cost of a few ms); this
bench, best of 8 at load 6: 5.2 M evaluations per CPU second (target met by CPU seconds, ratio
1.04), 4.2 M/s wall. Left in the rtl run: the fold memory model ~55 ms, the rest of the MAC core ~45
ms, copying the distinct layers' results to every layer ~30 ms, the post-pass ~100 ms
(``evaluate_pairs`` ~47 ms, band planning in dataflows/tiling.py ~26 ms). With the working tree's
new planner (band_plans per channel group, tile width and K tile; sim/decomposed.py) the post-pass
took ~6.5 of 6.9 CPU s per run on 2026-12-03 17:25 UTC, about half of it band planning in
dataflows/tiling.py, the rest sim/decomposed.py's nested grid evaluations, sub-layer construction
and ``evaluate_pairs`` (~1.3 s for 1.3 M sub-layer pairs).

Third change (2026-12-03 19:10-20:40 UTC, issue 11 item 6) while the plan choice was being rewritten
(every candidate plan of a pair costed and the fewest cycles kept, tap groups): ``evaluate_pairs``
evaluates each distinct (layer, design) pair once, and a MAC layer once for designs that differ
only in NoC bandwidth and DRAM port arrangement (the latency's NoC and port terms and the mapper's
choice completed per pair, ``_split_to_pairs``); tiled sub-layers built without revalidation
(sim/tiled.py ``_sub_layer``); ``call_shapes``' per-axis tile counts memoized; no list scan per
sub-layer in sim/decomposed.py. Results bit-identical (every array of this bench's grid, rtl and
ideal, detail off and on, against a copy of the modules before, under the same tiling.py). The
workload moved under the measurements: the post-pass's sub-layer pairs went from 1.9 M to 4.9 M per
run, and one run of the working tree took 32 CPU s at 19:15 UTC, 4-9 CPU s at 20:30. At 20:30 (load
4) this bench gave 3.95 CPU s per run at best (409 k evaluations per CPU second, 203 k/s wall;
target not met, ratio 0.08); back to back in one process against the code before, warm runs were
7.6-8.8 CPU s (before) against 8.1-9.5 s (after): no gain on that workload, whose time is the fold
memory model of the distinct (sub-layer, memory configuration) pairs (~25 %), ``evaluate_pairs``'
bookkeeping (~15 %) and the plan options' Python (``_add_plans``, ~13 %); the core grid without the
post-pass takes 0.16-0.19 CPU s (8.5 M/s). On the tree of 20:20 (432 of the designs, load 8-9) the
first run took 28 CPU s against 36 s before, the second 34 s against 32 s.

Prints the target and whether it is met (by the best wall-clock run and by CPU seconds), then, last,
``evaluations_per_second: N`` (best of the repeats, wall clock). Anchors: MAESTRO needs about 1 ms
per layer (1,000 evaluations/s, shared/NASAIC.md); ZigZag 3-5 CPU seconds per layer.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: numpy vectorization only, no threaded BLAS

import argparse  # noqa: E402
import itertools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

TARGET_EVALS_PER_SECOND = 5_000_000.0  # issue 11: one core, per-layer mapper on, profile rtl
MAESTRO_EVALS_PER_SECOND = 1_000.0  # ~1 ms per layer (shared/NASAIC.md)
ZIGZAG_EVALS_PER_SECOND = 1 / 4.0  # 3-5 CPU seconds per layer


def zoo_layers() -> tuple[str, list]:
    try:
        from coexplore.models.zoo import ZOO_NAMES, get_network
    except ImportError:
        return "", []
    layers = [layer for name in ZOO_NAMES for layer in get_network(name).layers]
    return f"zoo ({', '.join(ZOO_NAMES)})", layers


def resnet18_ir_layers() -> tuple[str, list]:
    """ResNet-18 for CIFAR (3x3 stem, BasicBlocks [2, 2, 2, 2]) from the IR helpers: convs, adds, pool, fc."""
    from coexplore.models.ir import Layer, OpKind, conv, gemm

    layers = [conv("stem", c=3, k=64, h=32, r=3, pad=1)]
    c, h = 64, 32
    for stage, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage}b{block}"
            layers.append(conv(f"{name}.conv1", c=c, k=width, h=h, r=3, stride=stride, pad=1))
            h_out = h // stride
            layers.append(conv(f"{name}.conv2", c=width, k=width, h=h_out, r=3, pad=1))
            if stride != 1 or c != width:
                layers.append(conv(f"{name}.short", c=c, k=width, h=h, r=1, stride=stride))
            layers.append(Layer(f"{name}.add", OpKind.ELTWISE, k=width, c=width, h=h_out, w=h_out, operands=2))
            c, h = width, h_out
    layers.append(Layer("pool", OpKind.POOL, k=c, c=c, h=h, w=h, r=h, s=h, stride_h=h, stride_w=h, groups=c))
    layers.append(gemm("fc", m=1, k=c, n=10))
    return "ResNet-18 CIFAR layers built with coexplore.models.ir (zoo not importable)", layers


def design_grid(min_designs: int) -> list:
    from coexplore.dataflows.io import builtin_templates
    from coexplore.dataflows.spec import Accelerator

    shapes = [(8, 8), (16, 16), (32, 32), (64, 64), (8, 32), (32, 8), (16, 64), (64, 16)]
    srams = (16.0, 32.0, 64.0, 128.0, 256.0)
    drams = (4.0, 8.0, 16.0, 32.0, 64.0, None)
    nocs = (16.0, 64.0, None)
    ports = ("per_operand", "shared")
    extras = [(8, 45.0), (16, 45.0), (8, 28.0), (16, 28.0), (8, 22.0), (16, 22.0), (8, 65.0), (16, 65.0)]
    base = len(builtin_templates()) * len(shapes) * len(srams) * len(drams) * len(nocs) * len(ports)
    extras = extras[: max(1, min(len(extras), -(-min_designs // base)))]
    return [
        Accelerator(
            dataflow=df,
            rows=r,
            cols=c,
            ifmap_sram_kb=kb,
            filter_sram_kb=kb,
            ofmap_sram_kb=kb,
            dram_bw_bytes_per_cycle=bw,
            noc_bw_bytes_per_cycle=noc,
            dram_ports=port,
            input_bits=bits,
            weight_bits=bits,
            tech_node_nm=node,
        )
        for df in builtin_templates().values()
        for (bits, node), (r, c), kb, bw, noc, port in itertools.product(extras, shapes, srams, drams, nocs, ports)
    ]


def vars_of(layer) -> dict:
    from dataclasses import fields

    return {f.name: getattr(layer, f.name) for f in fields(layer)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    parser.add_argument("--min-pairs", type=int, default=1_000_000, help="at least this many (layer, design) pairs")
    parser.add_argument("--profile", default="rtl")
    args = parser.parse_args(argv)

    from coexplore.sim.analytical import evaluate_batch

    source, layers = zoo_layers()
    if not layers:
        source, layers = resnet18_ir_layers()
    accs = design_grid(-(-args.min_pairs // len(layers)))
    pairs = len(layers) * len(accs)
    distinct = len({tuple(v for k, v in vars_of(layer).items() if k != "name") for layer in layers})
    print(f"layers: {len(layers)} from {source}; {distinct} distinct (equal but for the name: evaluated once)")
    print(
        f"designs: {len(accs)} ({len({a.dataflow.name for a in accs})} templates x shapes x buffers x "
        f"bandwidths x ports x bits/node)"
    )
    print(f"pairs per run: {pairs:,}; profile {args.profile}; threads: 1")

    evaluate_batch(layers[:3], accs[:50], args.profile)  # warm caches (templates, expressions)
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = evaluate_batch(layers, accs, args.profile)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best = min(times)
    rate = pairs / best
    print(
        f"wall seconds per run: best {best:.3f}, median {statistics.median(times):.3f}; "
        f"CPU seconds per run: median {statistics.median(cpu):.3f}"
    )
    print(f"checksum: total latency {result.latency_cycles.sum():.6e} cycles, energy {result.energy_pj.sum():.6e} pJ")
    print(
        f"anchor: MAESTRO ~1 ms per layer = {MAESTRO_EVALS_PER_SECOND:,.0f} evaluations/s; "
        f"ratio {rate / MAESTRO_EVALS_PER_SECOND:,.0f}x (ZigZag 3-5 s per layer: "
        f"{rate / ZIGZAG_EVALS_PER_SECOND:,.0f}x)"
    )
    cpu_rate = pairs / min(cpu)
    for what, value in (("wall clock (best run)", rate), ("CPU seconds (best run)", cpu_rate)):
        verdict = "met" if value >= TARGET_EVALS_PER_SECOND else "not met"
        print(
            f"target {TARGET_EVALS_PER_SECOND:,.0f} evaluations/s by {what}: {verdict} "
            f"({value:,.0f}/s, ratio {value / TARGET_EVALS_PER_SECOND:.2f})"
        )
    print(f"evaluations_per_second: {rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
