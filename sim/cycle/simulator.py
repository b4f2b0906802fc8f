"""The cycle-level simulator's entry points: one layer, or a network layer after layer.

Each MAC layer runs under the mapping the mapper picks (``coexplore.sim.analytical.choose_mapping``,
or one passed in), at the layer's operand widths (``layer_accelerator``), in the memory model its
profile names (``TimingProfile.memory_model``):

* ``scalesim`` on a SCALE-Sim-shaped systolic template (systolic-os/ws/is or any template with the
  same mapping): ``coexplore.sim.cycle.scalesim_mem``, SCALE-Sim v3's buffers emulated event by event;
  each group of a grouped layer runs as its own layer (SCALE-Sim's depthwise handling).
* otherwise ``fold``: ``coexplore.sim.cycle.foldmem``, fold-level double buffering of the generated
  hardware.

Pooling and element-wise layers stream their input and output through the scratchpads in chunks of
half a scratchpad: load, compute (one op per column per cycle) and drain form a three-stage pipeline.

Cycle counts (``LayerSim``): ``busy_cycles`` are the stall-free cycles, ``stall_cycles`` what the
memory adds, ``total_cycles = busy + stall``. ``compute_cycles`` is ``busy_cycles`` except in profile
``scalesim``, where it is SCALE-Sim's "Total Cycles" (the array's cycles including stalls).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from coexplore.dataflows.mapping import (
    LayerMapping,
    candidate_mappings,
    plan_folds,
    resolve_profile,
    scalesim_shape,
)
from coexplore.dataflows.spec import Accelerator, Operand, SpecError, TimingProfile
from coexplore.dataflows.tiling import (
    CALL_GAP_CYCLES,
    TilingError,
    TilingPlan,
    call_limits,
    call_shapes,
    cheapest_option,
)
from coexplore.models.ir import CoexploreError, Dim, Layer, Network
from coexplore.sim.cycle.foldmem import run_folds
from coexplore.sim.cycle.result import LayerSim, NetworkSim
from coexplore.sim.cycle.scalesim_mem import Buffers, ConvGeometry, TraceEvent, run_layer
from coexplore.sim.cycle.schedule import build_schedule

Tracer = Callable[[str, str, int, int, int], None]  # (layer, event, index, start, end)

# What the simulator can hold. The fold memory model keeps about a dozen int64/bool arrays with one
# entry per fold and per pass: measured 130-150 peak bytes per fold pass as bounded below (eyeriss and
# systolic-ws, 1.2 M fold passes: 155-186 MB, 1-2 s). SCALE-Sim's emulated buffers (profile scalesim,
# a systolic template, a DRAM limit) take about 35 bytes and 1.3 us per fold x stream step. The limits
# keep one layer under about 2.5 GB and 1.5 minutes.
MAX_FOLD_PASSES = 16_777_216
MAX_SCALESIM_STEPS = 67_108_864


class SimulationSizeError(CoexploreError):
    """A layer too large for the cycle simulator to hold (the analytical model still costs it)."""


def simulation_size_problem(
    layer: Layer, acc: Accelerator, profile: TimingProfile | str = "rtl", mapping: LayerMapping | None = None
) -> str | None:
    """Why the simulator cannot hold ``layer`` on ``acc`` (one line naming the layer, its fold count
    and the limit), or None. ``mapping``: the layer's mapping (default: the template's own).

    Cheap: only the fold plan is computed (``dataflows.mapping.plan_folds``), never the schedule. The
    pass count is an upper bound: a fold's streamed tile (at most T x max(rows, cols) words) split into
    halves of the smallest scratchpad.
    """
    prof = resolve_profile(profile)
    if not layer.kind.has_macs:
        return None
    loops = acc.dataflow.mapping_for(layer.kind) if mapping is None else mapping.loops
    dims = layer.dims()
    event_model = prof.memory_model == "scalesim" and scalesim_shape(acc.dataflow, loops) is not None
    if event_model:
        dims = {**dims, Dim.G: 1}  # SCALE-Sim runs one group and multiplies
    plan = plan_folds(loops, dims, acc.rows, acc.cols)
    folds, steps = int(plan.folds), int(plan.temporal_steps)
    if event_model:
        if acc.dram_bw_bytes_per_cycle is None:
            return None  # unlimited bandwidth: closed forms, nothing per step
        work = folds * steps
        if work > MAX_SCALESIM_STEPS:
            return (
                f"layer {layer.name!r} ({layer.describe()}) has {folds:,} folds x {steps:,} steps = {work:,} "
                f"stream steps for SCALE-Sim's emulated buffers; the cycle simulator holds at most "
                f"{MAX_SCALESIM_STEPS:,} (use `coexplore evaluate`, a larger array or more bandwidth)"
            )
        return None
    half_bytes = min(acc.ifmap_sram_kb, acc.filter_sram_kb, acc.ofmap_sram_kb) * 512.0
    word_bytes = max(acc.input_bits, acc.weight_bits, acc.acc_bits) / 8
    passes = max(1, math.ceil(steps * max(acc.rows, acc.cols) * word_bytes / half_bytes))
    work = folds * passes
    if work > MAX_FOLD_PASSES:
        return (
            f"layer {layer.name!r} ({layer.describe()}) has {folds:,} folds"
            + (f" x up to {passes:,} passes = {work:,} fold passes" if passes > 1 else "")
            + f"; the cycle simulator holds at most {MAX_FOLD_PASSES:,} (use `coexplore evaluate`, "
            f"a larger array or larger scratchpads)"
        )
    return None


def scalesim_dataflow(acc: Accelerator, layer: Layer) -> str | None:
    """ "os", "ws" or "is" when the template maps ``layer`` as SCALE-Sim's array does, else None."""
    return scalesim_shape(acc.dataflow, acc.dataflow.mapping_for(layer.kind))


def layer_accelerator(layer: Layer, acc: Accelerator, prof: TimingProfile) -> Accelerator:
    """``acc`` running ``layer``: operands at the layer's widths (a layer wider than the accelerator is
    refused in one line), except on generated hardware, which stores them at its own widths."""
    if prof.for_template(acc.dataflow.name).generated_hardware or not layer.kind.has_macs:
        return acc
    wb = layer.weight_bits
    if acc.input_bits < layer.input_bits or acc.weight_bits < wb:
        raise SpecError(
            f"layer {layer.name!r} needs {layer.input_bits}-bit inputs and {wb}-bit weights; accelerator "
            f"{acc.label!r} takes at most {acc.input_bits}-bit inputs and {acc.weight_bits}-bit weights"
        )
    if (acc.input_bits, acc.weight_bits) == (layer.input_bits, wb):
        return acc
    return replace(acc, input_bits=layer.input_bits, weight_bits=wb)


def simulate_layer(
    layer: Layer,
    acc: Accelerator,
    profile: TimingProfile | str = "rtl",
    tracer: Tracer | None = None,
    mapping: LayerMapping | None = None,
) -> LayerSim:
    """Cycles, stalls and traffic of one layer on one accelerator.

    ``mapping``: the layer's mapping; by default the one the mapper picks
    (``coexplore.sim.analytical.choose_mapping``), so both tiers cost the same choice.
    """
    prof = resolve_profile(profile)
    if not isinstance(layer, Layer):
        raise CoexploreError(f"simulate_layer: expected a Layer, got {type(layer).__name__}")
    if not layer.kind.has_macs:
        return _vector_layer(layer, acc, prof)
    from coexplore.sim.decomposed import decomposed_layer  # depthwise, grouped, matmul, batch (decompose)

    if (decomposed := decomposed_layer(layer, acc, prof, tracer)) is not None:
        return decomposed
    if mapping is None:
        cands = candidate_mappings(acc.dataflow, layer.kind, prof)
        if len(cands) == 1:
            mapping = cands[0]
        else:
            from coexplore.sim.analytical import choose_mapping

            mapping = choose_mapping(layer, acc, prof)
    assert mapping is not None
    run_acc = layer_accelerator(layer, acc, prof)
    kind = scalesim_shape(acc.dataflow, mapping.loops) if prof.memory_model == "scalesim" else None
    problem = simulation_size_problem(layer, run_acc, prof, mapping)
    if problem is not None:
        raise SimulationSizeError(problem)
    if kind is not None:
        return _scalesim_layer(layer, run_acc, prof, kind, tracer)
    plan = tiling_plan(layer, acc, prof)
    if plan is not None:
        return _tiled_layer(layer, run_acc, prof, mapping, tracer, plan)
    return _fold_layer(layer, run_acc, prof, mapping, tracer)


def simulate_calls(layer: Layer, acc: Accelerator, plan: TilingPlan, profile: TimingProfile | str = "rtl") -> LayerSim:
    """``layer`` run as the calls of a given plan (``dataflows.tiling``; e.g. one with forced K tiles)."""
    prof = resolve_profile(profile)
    mapping = candidate_mappings(acc.dataflow, layer.kind, prof)[0]
    return _tiled_layer(layer, layer_accelerator(layer, acc, prof), prof, mapping, None, plan)


def _call_layer(layer: Layer, name: str, chans: int, filters: int, rows: int, cols: int) -> Layer:
    """One call as a layer: ``chans`` channels, ``filters`` filters, its windows over the unpadded
    input that ``rows x cols`` outputs read (the call's padding is in its data, not its geometry)."""
    h, w = (rows - 1) * layer.stride_h + layer.r, (cols - 1) * layer.stride_w + layer.s
    return replace(layer, name=name, c=chans, k=filters, h=h, w=w, pad_h=0, pad_w=0)


@lru_cache(maxsize=4096)
def tiling_plan(layer: Layer, acc: Accelerator, prof: TimingProfile) -> TilingPlan | None:
    """The calls of a layer that the generated hardware runs as several (``dataflows.tiling``: the
    plan of the fewest cycles, as the RTL host picks it), or None (one call, or no plan: the fold
    model's own tiles). Unlimited bandwidth is the idealized memory where every layer takes its
    stall-free closed form: no calls."""
    generated = prof.for_template(acc.dataflow.name).generated_hardware and acc.dram_bw_bytes_per_cycle is not None
    limits = call_limits(acc) if generated else None
    if limits is None:
        return None
    run_acc, mapping = layer_accelerator(layer, acc, prof), candidate_mappings(acc.dataflow, layer.kind, prof)[0]
    seen: dict[tuple[int, ...], int] = {}  # call shape -> cycles, shared by the options

    def cycles(option: tuple[int, int, int, int, int]) -> float:  # as _tiled_layer, each distinct call once
        total = CALL_GAP_CYCLES * (option[4] - 1)
        for *shape, count in call_shapes(layer, *option[:4]):
            if tuple(shape) not in seen:
                cc, k, p, h, q, w = shape
                sub = _call_layer(layer, f"{layer.name}[call]", cc, k, p, q)
                seen[tuple(shape)] = _fold_layer(sub, run_acc, prof, mapping, None, cc * h * w).total_cycles
            total += count * seen[tuple(shape)]
        return total

    try:
        plan = cheapest_option(layer, limits, cycles)
    except TilingError:
        return None
    return plan if plan.tiled else None


def _tiled_layer(
    layer: Layer, acc: Accelerator, prof: TimingProfile, mapping: LayerMapping, tracer: Tracer | None, plan: TilingPlan
) -> LayerSim:
    """The calls one after another: each a sub-layer of the call's input channels, output pixels
    and channels that keeps the call's input pixels resident; cycles add up, plus the idle cycles
    between calls. A channel group's partial output leaves at accumulator width (this profile drains
    accumulators), and the host adds the groups' outputs: no cycles on the hardware."""
    sims: list[LayerSim] = []
    offset = 0

    def shifted(name: str, event: str, index: int, start: int, end: int) -> None:
        if tracer is not None:
            tracer(layer.name, event, index, start + offset, end + offset)

    seen: dict[tuple[int, ...], LayerSim] = {}  # calls of one shape run alike (interior tiles)
    for i, call in enumerate(plan.calls):
        shape = (call.c, call.p, call.q, call.k, call.h, call.w)
        sim = seen.get(shape) if tracer is None else None
        if sim is None:
            sub = _call_layer(layer, f"{layer.name}[{i}]", call.c, call.k, call.p, call.q)
            sim = seen[shape] = _fold_layer(
                sub, acc, prof, mapping, tracer and shifted, input_words=call.c * call.h * call.w
            )
        sims.append(sim)
        offset += sim.total_cycles + CALL_GAP_CYCLES

    return combine_runs(layer, acc, sims, plan.gap_cycles(), {"calls": len(plan.calls)})


def combine_runs(
    layer: Layer, acc: Accelerator, runs: list[LayerSim], gap_cycles: int, extra: dict[str, Any]
) -> LayerSim:
    """``layer`` as ``runs`` (its calls or sub-layers) back to back: every count summed, the idle
    ``gap_cycles`` between them added to the busy and compute cycles."""

    def total(key: str) -> dict[str, float]:
        return {op: sum(getattr(x, key)[op] for x in runs) for op in getattr(runs[0], key)}

    return replace(
        runs[0],
        name=layer.name,
        kind=layer.kind.value,
        macs=layer.macs,
        busy_cycles=sum(x.busy_cycles for x in runs) + gap_cycles,
        stall_cycles=sum(x.stall_cycles for x in runs),
        compute_cycles=sum(x.compute_cycles for x in runs) + gap_cycles,
        folds=sum(x.folds for x in runs),
        passes=sum(x.passes for x in runs),
        dram_read_bytes=total("dram_read_bytes"),
        dram_write_bytes=total("dram_write_bytes"),
        buffer_reads=total("buffer_reads"),
        buffer_writes=total("buffer_writes"),
        compulsory_bytes=_compulsory(layer, acc),
        extra=extra,
    )


def simulate_network(
    net: Network, acc: Accelerator, profile: TimingProfile | str = "rtl", trace: str | Path | TextIO | None = None
) -> NetworkSim:
    """Every layer of ``net`` on ``acc`` one after another; ``trace`` streams events to a CSV file."""
    prof = resolve_profile(profile)
    with _trace_sink(trace) as tracer:
        layers = tuple(simulate_layer(layer, acc, prof, tracer) for layer in net.layers)
    return NetworkSim(network=net.name, accelerator=acc.label, profile=prof.name, pes=acc.pes, layers=layers)


@contextmanager
def _trace_sink(trace: str | Path | TextIO | None) -> Iterator[Tracer | None]:
    """A tracer writing ``layer,event,index,start,end`` lines as they happen (never held in memory)."""
    if trace is None:
        yield None
        return
    own = not hasattr(trace, "write")
    fh: TextIO = open(trace, "w", buffering=1 << 16) if own else trace  # type: ignore[arg-type,assignment]
    try:
        fh.write("layer,event,index,start,end\n")

        def write(layer: str, event: str, index: int, start: int, end: int) -> None:
            fh.write(f"{layer},{event},{index},{start},{end}\n")

        yield write
    finally:
        if own:
            fh.close()


# ---- the three kinds of layer -----------------------------------------------------------------------
def _fold_layer(
    layer: Layer,
    acc: Accelerator,
    prof: TimingProfile,
    mapping: LayerMapping,
    tracer: Tracer | None,
    input_words: int | None = None,
) -> LayerSim:
    sched = build_schedule(layer, acc, mapping.loops)
    if input_words is not None:  # a tiled call: the input rows it holds (its own top/bottom padding)
        sched = replace(sched, total_words={**sched.total_words, Operand.INPUT: input_words})
    hook = None
    if tracer is not None:

        def hook(event: str, index: int, start: int, end: int) -> None:
            tracer(layer.name, event, index, start, end)

    run = run_folds(layer, acc, prof, sched, hook, resident_input=mapping.resident_input)
    busy = run.stall_free_cycles
    stall = run.total_cycles - busy
    t = run.traffic
    return LayerSim(
        name=layer.name,
        kind=layer.kind.value,
        macs=layer.macs,
        model="fold",
        pes=acc.pes,
        busy_cycles=busy,
        stall_cycles=stall,
        compute_cycles=busy,
        folds=sched.folds,
        passes=run.passes,
        dram_read_bytes=t.dram_read_bytes,
        dram_write_bytes=t.dram_write_bytes,
        buffer_reads=t.buffer_reads,
        buffer_writes=t.buffer_writes,
        compulsory_bytes=_compulsory(layer, acc),
    )


def _geometry(layer: Layer) -> ConvGeometry:
    """One group of ``layer`` as SCALE-Sim's operand matrices (the padded input is SCALE-Sim's ifmap)."""
    return ConvGeometry(
        n=layer.n,
        hp=layer.h + 2 * layer.pad_h,
        wp=layer.w + 2 * layer.pad_w,
        c=layer.c_per_group,
        r=layer.r,
        s=layer.s,
        p=layer.p,
        q=layer.q,
        k=layer.k_per_group,
        stride_h=layer.stride_h,
        stride_w=layer.stride_w,
        dil_h=layer.dilation_h,
        dil_w=layer.dilation_w,
    )


def _scalesim_layer(layer: Layer, acc: Accelerator, prof: TimingProfile, kind: str, tracer: Tracer | None) -> LayerSim:
    word_bytes = acc.input_bits / 8
    words = lambda kb: int(kb * 1024 / word_bytes)  # noqa: E731
    bw = acc.dram_bw_bytes_per_cycle
    buffers = Buffers(
        words(acc.ifmap_sram_kb),
        words(acc.filter_sram_kb),
        words(acc.ofmap_sram_kb),
        None if bw is None else bw / word_bytes,
    )
    hook = None
    if tracer is not None:

        def hook(ev: TraceEvent) -> None:
            tracer(layer.name, ev.what, ev.row, ev.cycle, ev.cycle + ev.stall)

    run = run_layer(kind, _geometry(layer), acc.rows, acc.cols, buffers, hook)
    g = layer.groups  # SCALE-Sim runs each group (a depthwise channel) as its own layer
    compute = g * run.compute_cycles
    stall = g * run.stall_cycles
    busy = compute - stall
    return LayerSim(
        name=layer.name,
        kind=layer.kind.value,
        macs=layer.macs,
        model="scalesim",
        pes=acc.pes,
        busy_cycles=busy,
        stall_cycles=stall,
        compute_cycles=compute,
        folds=0,
        passes=0,
        dram_read_bytes={
            "input": g * run.ifmap_dram_words * word_bytes,
            "weight": g * run.filter_dram_words * word_bytes,
            "output": 0.0,
        },
        dram_write_bytes={"input": 0.0, "weight": 0.0, "output": g * run.ofmap_dram_words * word_bytes},
        buffer_reads={
            "input": float(g * run.ifmap_sram_reads),
            "weight": float(g * run.filter_sram_reads),
            "output": float(g * run.ofmap_dram_words),
        },
        buffer_writes={
            "input": float(g * run.ifmap_dram_words),
            "weight": float(g * run.filter_dram_words),
            "output": float(g * run.ofmap_sram_writes),
        },
        compulsory_bytes=_compulsory(layer, acc),
        prefetch_cycles=g * run.prefetch_cycles,
    )


def _vector_layer(layer: Layer, acc: Accelerator, prof: TimingProfile) -> LayerSim:
    """Pooling / element-wise: load, compute and drain pipelined over half-scratchpad chunks."""
    ib = acc.input_bits / 8
    in_bytes, out_bytes = layer.input_words * ib, layer.output_words * ib
    compute = math.ceil(layer.vector_ops / acc.cols)
    bw = acc.dram_bw_bytes_per_cycle
    if bw is None:
        total = compute
    else:
        chunks = max(
            1, math.ceil(in_bytes / (acc.ifmap_sram_kb * 512)), math.ceil(out_bytes / (acc.ofmap_sram_kb * 512))
        )
        load, work, drain = (
            math.ceil(in_bytes / chunks / bw),
            math.ceil(compute / chunks),
            math.ceil(out_bytes / chunks / bw),
        )
        # a shared port carries one chunk's drain and the next one's load in each steady-state stage;
        # the first load and the last drain are exposed once each (as the analytical model)
        port = load + drain if acc.dram_ports == "shared" else max(load, drain)
        total = max(compute, load + work + drain + (chunks - 1) * max(port, work))
    return LayerSim(
        name=layer.name,
        kind=layer.kind.value,
        macs=0,
        model="vector",
        pes=acc.pes,
        busy_cycles=compute,
        stall_cycles=total - compute,
        compute_cycles=compute if prof.memory_model != "scalesim" else total,
        folds=0,
        passes=0,
        dram_read_bytes={"input": in_bytes, "weight": 0.0, "output": 0.0},
        dram_write_bytes={"input": 0.0, "weight": 0.0, "output": out_bytes},
        buffer_reads={"input": float(layer.input_words), "weight": 0.0, "output": float(layer.output_words)},
        buffer_writes={"input": float(layer.input_words), "weight": 0.0, "output": float(layer.output_words)},
        compulsory_bytes={"input": in_bytes, "weight": 0.0, "output": out_bytes},
    )


def _touched(size: int, outs: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Rows (or columns) of an unpadded input of ``size`` that some window reads."""
    taps = np.arange(outs)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    taps = taps[(taps >= 0) & (taps < size)]
    return int(np.unique(taps).size)


def _compulsory(layer: Layer, acc: Accelerator) -> dict[str, float]:
    """Bytes each operand must move at least once: every input word a window reads, every weight,
    every output (at input_bits)."""
    ib, wb = acc.input_bits / 8, acc.weight_bits / 8
    rows = _touched(layer.h, layer.p, layer.r, layer.stride_h, layer.dilation_h, layer.pad_h)
    cols = _touched(layer.w, layer.q, layer.s, layer.stride_w, layer.dilation_w, layer.pad_w)
    return {
        "input": layer.n * layer.c * rows * cols * ib,
        "weight": layer.weight_words * wb,
        "output": layer.output_words * ib,
    }


__all__ = [
    "SimulationSizeError",
    "scalesim_dataflow",
    "simulate_layer",
    "simulate_network",
    "simulation_size_problem",
]
