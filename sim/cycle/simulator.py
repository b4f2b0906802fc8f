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
from pathlib import Path
from typing import TextIO

import numpy as np

from coexplore.dataflows.mapping import LayerMapping, candidate_mappings, resolve_profile, scalesim_shape
from coexplore.dataflows.spec import Accelerator, SpecError, TimingProfile
from coexplore.models.ir import CoexploreError, Layer, Network
from coexplore.sim.cycle.foldmem import run_folds
from coexplore.sim.cycle.result import LayerSim, NetworkSim
from coexplore.sim.cycle.scalesim_mem import Buffers, ConvGeometry, TraceEvent, run_layer
from coexplore.sim.cycle.schedule import build_schedule

Tracer = Callable[[str, str, int, int, int], None]  # (layer, event, index, start, end)


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
    if kind is not None:
        return _scalesim_layer(layer, run_acc, prof, kind, tracer)
    return _fold_layer(layer, run_acc, prof, mapping, tracer)


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
    layer: Layer, acc: Accelerator, prof: TimingProfile, mapping: LayerMapping, tracer: Tracer | None
) -> LayerSim:
    sched = build_schedule(layer, acc, mapping.loops)
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
        if acc.dram_ports == "shared":
            load = drain = load + drain
        total = max(compute, load + work + drain + (chunks - 1) * max(load, work, drain))
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


__all__ = ["scalesim_dataflow", "simulate_layer", "simulate_network"]
