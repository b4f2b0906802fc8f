"""Fold-level double-buffered memory model: the ``rtl`` (and ``ideal``) profiles' hardware.

The hardware (docs/timing.md states it for a hardware designer; docs/rtl.md is the RTL's own note):

* Three scratchpads (input, weight, output), each two halves (ping-pong), and DRAM ports of ``B``
  bytes per cycle: one per operand (``per_operand``) or one ``shared`` port. Transfers move whole
  beats of ``B`` bytes, one beat per cycle.
* Folds run in the schedule's order (``coexplore.sim.cycle.schedule``). A fold whose streamed tiles
  do not fit half their scratchpad runs as ``n`` *passes*, each streaming an equal share of the
  fold's T steps; every streamed tile then moves as ``n`` chunks. The stationary tile moves whole.
* Loads: an operand's tile (or chunk) is loaded only when it differs from the one before; the whole
  layer input is loaded once, before anything else, when it fits half the input scratchpad
  (``resident_input``). Load ``l`` starts when the port is free and the half it overwrites is
  released: load ``l - 2``'s stationary tile after its last fold's preload, a streamed tile after its
  last pass has streamed (its drain excluded). A pass starts when the previous pass has ended and
  its loads have arrived.
* Outputs: consecutive folds writing the same output tile accumulate on chip; the finished tile
  drains ``drain_latency_cycles`` after its last pass ends, taking ``drain_setup_cycles`` plus its
  beats. The first pass writing a new output tile waits until the tile two before it has drained.
  An output tile that does not fit half the output scratchpad moves chunk by chunk, one chunk per
  pass; if it accumulates over several folds it spills: each pass writes its partial chunk and the
  next fold's pass reads it back (both on the output port, read-backs issued one pass ahead:
  R0 R1 W0 R2 W1 ...).
* With unlimited bandwidth every transfer and latency takes no time, so the layer takes exactly the
  stall-free cycles of ``coexplore.dataflows.mapping.stall_free_cycles``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coexplore.dataflows.mapping import fold_timing
from coexplore.dataflows.spec import Accelerator, Operand, TimingProfile
from coexplore.models.ir import Layer
from coexplore.sim.cycle.schedule import FoldSchedule, operand_dims


@dataclass(frozen=True, slots=True)
class Traffic:
    """Words and bytes one layer moves (per operand: input, weight, output)."""

    dram_read_bytes: dict[str, float]
    dram_write_bytes: dict[str, float]
    buffer_reads: dict[str, float]  # words the array reads from each scratchpad
    buffer_writes: dict[str, float]  # words written into each scratchpad (DRAM fills, array outputs)


@dataclass(frozen=True, slots=True)
class FoldRun:
    total_cycles: int
    stall_free_cycles: int
    passes: int
    traffic: Traffic


@dataclass(frozen=True, slots=True)
class MemoryParams:
    """The memory-model parameters of a profile, resolved for one template."""

    drain_latency: int
    drain_setup: int
    first_fold_setup: int
    array_padded_tiles: bool
    resident_input: bool
    drain_accumulators: bool
    reuse_tiles: bool
    weight_line_words: int
    whole_byte_words: bool


def memory_params(profile: TimingProfile, template: str, rows: int, cols: int, steps: int) -> MemoryParams:
    p = profile.for_template(template)
    setup = int(np.asarray(p.first_fold_setup_expr()(rows=rows, cols=cols, T=steps)))
    return MemoryParams(
        p.drain_latency_cycles,
        p.drain_setup_cycles,
        setup,
        p.array_padded_tiles,
        p.resident_input,
        p.drain_accumulators,
        p.reuse_tiles,
        p.weight_line_words,
        p.whole_byte_words,
    )


def run_folds(
    layer: Layer,
    acc: Accelerator,
    profile: TimingProfile,
    sched: FoldSchedule,
    on_event: Callable[[str, int, int, int], None] | None = None,
    resident_input: bool | None = None,
) -> FoldRun:
    """Cycles and traffic of ``sched`` on ``acc`` under ``profile``'s fold-level memory model.

    ``resident_input`` (default: the profile's rule) is the mapping's choice: a layer input that fits
    half its scratchpad is loaded whole first (True) or streamed tile by tile (False).
    ``on_event(kind, index, start, end)`` (optional) receives every pass ("pass", fold) and
    transfer ("load-input", "load-weight", "readback", "drain"; pass index) as it is scheduled.
    """
    df = acc.dataflow
    rows, cols, T = acc.rows, acc.cols, sched.steps
    mp = memory_params(profile, df.name, rows, cols, T)
    fold_time, once = (int(x) for x in fold_timing(df.timing, profile, rows, cols, T))
    fill = int(df.timing.fill(rows=rows, cols=cols, T=T))
    drain = int(df.timing.drain(rows=rows, cols=cols, T=T)) if profile.model_output_drain else 0
    drain_part = 0 if profile.drain_during_next_fold else drain
    tail = (0 if profile.overlap_folds else fill) + drain_part
    head = fold_time - T - tail  # the preload share of a fold (0 when hidden)
    F = sched.folds
    stall_free = F * fold_time + once + profile.end_offset_cycles
    bw = acc.dram_bw_bytes_per_cycle
    fast = bw is None
    stationary = df.stationary
    matmul = layer.kind.value == "matmul"
    half = {
        Operand.INPUT: acc.ifmap_sram_kb * 512.0,
        Operand.WEIGHT: acc.filter_sram_kb * 512.0,
        Operand.OUTPUT: acc.ofmap_sram_kb * 512.0,
    }
    width = (lambda b: 8 * -(-b // 8)) if mp.whole_byte_words else (lambda b: b)  # noqa: E731
    ib, wb, ab = width(acc.input_bits), width(acc.weight_bits), width(acc.acc_bits)
    bits = {Operand.INPUT: ib, Operand.WEIGHT: wb, Operand.OUTPUT: ab}
    out_bits = ab if mp.drain_accumulators else ib
    words, keys = sched.tile_words, sched.tile_key

    # ---- per fold: residency, passes, spills, new tiles -----------------------------------------
    in_total_bytes = sched.total_words[Operand.INPUT] * bits[Operand.INPUT] / 8
    # An explicit choice (the mapping's) is honoured even for a stationary input: the generated
    # input-stationary array keeps its input resident and gathers each fold's tile from it.
    default_resident = mp.resident_input and stationary is not Operand.INPUT
    resident = (default_resident if resident_input is None else resident_input) and in_total_bytes <= half[
        Operand.INPUT
    ]
    loaded = [op for op in (Operand.INPUT, Operand.WEIGHT) if not (op is Operand.INPUT and resident)]
    streamed = [op for op in loaded if op is not stationary]
    same_out = np.zeros(F, dtype=bool)
    same_out[1:] = keys[Operand.OUTPUT][1:] == keys[Operand.OUTPUT][:-1]
    g_first = ~same_out
    g_last = np.ones(F, dtype=bool)
    g_last[:-1] = ~same_out[1:]
    n = np.ones(F, dtype=np.int64)
    for op in streamed:
        n = np.maximum(n, np.ceil(words[op] * bits[op] / 8 / half[op] - 1e-9).astype(np.int64))
    spill = np.zeros(F, dtype=bool)
    chunked = np.zeros(F, dtype=bool)  # the output tile does not fit: it moves chunk by chunk
    if stationary is not Operand.OUTPUT:
        n_out = np.ceil(words[Operand.OUTPUT] * ab / 8 / half[Operand.OUTPUT] - 1e-9).astype(np.int64)
        group = np.cumsum(g_first) - 1
        multi = np.bincount(group)[group] > 1
        chunked = n_out > 1
        spill = chunked & multi  # an accumulating tile that does not fit half its scratchpad
        n = np.maximum(n, n_out)
    new_tile = {}
    for op in loaded:
        same = np.zeros(F, dtype=bool)
        if mp.reuse_tiles:  # a streamed tile split into pass chunks cannot stay; a stationary one can
            same[1:] = keys[op][1:] == keys[op][:-1]
            if op is not stationary:
                same[1:] &= (n[1:] == 1) & (n[:-1] == 1)
        new_tile[op] = ~same
    beats = {op: _beats(acc, sched, op, bits[op], bw, mp, matmul) for op in loaded}
    out_beats = _beats(acc, sched, Operand.OUTPUT, out_bits, bw, mp, matmul)
    psum_beats = _beats(acc, sched, Operand.OUTPUT, ab, bw, mp, matmul)

    # ---- per pass (vectorized) -------------------------------------------------------------------
    P = int(n.sum())
    fold = np.repeat(np.arange(F, dtype=np.int64), n)
    nf = n[fold]
    q = np.arange(P, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    steps = (T * (q + 1)) // nf - (T * q) // nf
    first_q, last_q = q == 0, q == nf - 1
    dur = steps + head * first_q + tail * last_q
    share = steps / T
    chunk = lambda b: np.where(nf > 1, -(-(b[fold] * steps) // T), b[fold])  # noqa: E731
    load_here, load_beats, load_bytes = {}, {}, {}
    for op in loaded:
        if op is stationary:
            load_here[op] = first_q & new_tile[op][fold]
            load_beats[op] = beats[op][fold]
            load_bytes[op] = words[op][fold] * bits[op] / 8
        else:
            load_here[op] = (nf > 1) | (first_q & new_tile[op][fold])
            load_beats[op] = chunk(beats[op])
            load_bytes[op] = words[op][fold] * bits[op] / 8 * np.where(nf > 1, share, 1.0)
    sp = spill[fold]
    ck = chunked[fold]
    opens = (first_q & g_first[fold]) | ck  # first pass writing a new output tile (or chunk)
    closes = (last_q & g_last[fold]) | ck  # the tile (chunk) is complete after this pass
    final = g_last[fold]
    readback = sp & ~g_first[fold]
    w_beats = np.where(ck, np.where(final, chunk(out_beats), chunk(psum_beats)), out_beats[fold])
    w_bytes = words[Operand.OUTPUT][fold] * np.where(final, out_bits, ab) / 8 * np.where(ck, share, 1.0)
    r_beats = chunk(psum_beats)
    r_bytes = words[Operand.OUTPUT][fold] * ab / 8 * share

    rd = {"input": 0.0, "weight": 0.0, "output": 0.0}
    wr = {"input": 0.0, "weight": 0.0, "output": float(w_bytes[closes].sum())}
    for op in loaded:
        rd[op.value] = float(load_bytes[op][load_here[op]].sum())
    rd["output"] = float(r_bytes[readback].sum())
    if resident:
        rd["input"] = float(in_total_bytes)

    if fast:  # ideal memory: nothing waits
        total = int(dur.sum()) + once + profile.end_offset_cycles
        if on_event is not None:
            ends = np.cumsum(dur)
            for p in range(P):
                on_event("pass", int(fold[p]), int(ends[p] - dur[p]), int(ends[p]))
        return FoldRun(total, stall_free, P, _traffic(acc, sched, rd, wr, matmul, (ib, wb, ab)))

    # ---- the pass loop: one recurrence step per pass -------------------------------------------
    shared = acc.dram_ports == "shared"
    free = [0, 0, 0]  # port free times: input, weight, output (all index 0 when shared)
    pin, pw, pout = (0, 0, 0) if shared else (0, 1, 2)
    ports = {Operand.INPUT: pin, Operand.WEIGHT: pw}
    ready = {op: 0 for op in loaded}
    released: dict[Operand, list[int]] = {op: [0, 0] for op in loaded}  # release times of loads l-2, l-1
    in_use: dict[Operand, int | None] = {op: None for op in loaded}  # release of the load in use (None: none)
    if resident:
        assert bw is not None  # the closed form above took unlimited bandwidth
        free[pin] = _ceil_beats(in_total_bytes, bw)
    res_ready = free[pin] if resident else 0
    drains: list[int] = []
    lat, dsetup = mp.drain_latency, mp.drain_setup
    lh = {op: load_here[op].tolist() for op in loaded}
    lb = {op: load_beats[op].tolist() for op in loaded}
    dur_l, fold_l, first_l, last_l = dur.tolist(), fold.tolist(), first_q.tolist(), last_q.tolist()
    opens_l, closes_l, rb_l = opens.tolist(), closes.tolist(), readback.tolist()
    wb_l, rbb_l = w_beats.tolist(), r_beats.tolist()
    prev_end = 0
    fold_start = 0
    double = profile.double_buffered_dram
    single_buffer_floor = 0  # without double buffering a load waits for the previous pass to end
    pending_rb = 0  # end of the read-back issued for the next pass
    if P and rb_l[0]:  # cannot happen (a spill's first fold writes first) but keep the rule general
        pending_rb = free[pout] = free[pout] + rbb_l[0]

    def issue_loads(q: int) -> None:
        """Issue pass q's loads (right after pass q-1 is scheduled, before its drain)."""
        for op in loaded:
            if lh[op][q]:
                used = in_use[op]
                if used is not None:
                    released[op] = [released[op][1], used]
                port = ports[op]
                t0 = max(free[port], released[op][0], single_buffer_floor)
                free[port] = ready[op] = t0 + lb[op][q]
                if on_event is not None:
                    on_event(f"load-{op.value}", q, t0, ready[op])

    if P:
        issue_loads(0)
    for p in range(P):
        need = res_ready
        for op in loaded:
            need = max(need, ready[op])
        if opens_l[p] and len(drains) >= 2:
            need = max(need, drains[-2])
        if rb_l[p]:
            need = max(need, pending_rb)
        if not double:  # one buffer: this pass's outputs must have left before the next pass runs
            need = max(need, drains[-1] if drains else 0)
        start = max(prev_end, need, mp.first_fold_setup if p == 0 else 0)
        end = start + dur_l[p]
        if first_l[p]:
            fold_start = start
        if on_event is not None:
            on_event("pass", fold_l[p], start, end)
        for op in loaded:
            if op is stationary:
                in_use[op] = fold_start + head
            else:
                in_use[op] = end - (drain_part if last_l[p] else 0)
        if not double:
            single_buffer_floor = end
        if p + 1 < P:
            issue_loads(p + 1)
        if p + 1 < P and rb_l[p + 1]:  # read the next pass's partial sums back, ahead of this drain
            s0 = max(free[pout], drains[-1] if drains else 0)
            pending_rb = free[pout] = s0 + rbb_l[p + 1]
            if on_event is not None:
                on_event("readback", p + 1, s0, pending_rb)
        if closes_l[p]:
            s0 = max(free[pout], end + lat)
            free[pout] = s0 + dsetup + wb_l[p]
            drains.append(free[pout])
            if on_event is not None:
                on_event("drain", p, s0, free[pout])
        prev_end = end
    last = max(prev_end, drains[-1] if drains else 0)
    total = last + once + profile.end_offset_cycles
    return FoldRun(int(total), int(stall_free), P, _traffic(acc, sched, rd, wr, matmul, (ib, wb, ab)))


def _ceil_beats(nbytes: float, bw: float) -> int:
    return int(math.ceil(nbytes / bw - 1e-9))


def _beats(
    acc: Accelerator, sched: FoldSchedule, op: Operand, bits: int, bw: float | None, mp: MemoryParams, matmul: bool
) -> np.ndarray:
    """Beats to move each fold's tile of ``op`` (0 with unlimited bandwidth)."""
    words = sched.tile_words[op]
    if bw is None:
        return np.zeros_like(words)
    bpw = bits / 8.0
    mapping = sched.mapping
    if op is Operand.WEIGHT and mp.weight_line_words > 0:
        per_line = math.ceil(mp.weight_line_words * bpw / bw - 1e-9)
        return np.full_like(words, acc.rows * per_line)
    dims = operand_dims(op, matmul)
    col_dims = set(mapping.cols.dims) & dims
    if mp.array_padded_tiles and op is not Operand.INPUT and col_dims:
        ext = sched.extents
        lines = np.ones_like(words)
        for d in dims - set(mapping.rows.dims) - set(mapping.cols.dims):
            lines = lines * ext[d]
        if set(mapping.rows.dims) & dims:
            lines = lines * acc.rows
        per_line = math.ceil(acc.cols * bpw / bw - 1e-9)
        return (lines * per_line).astype(np.int64)
    return np.ceil(words * bpw / bw - 1e-9).astype(np.int64)


def _traffic(
    acc: Accelerator, sched: FoldSchedule, rd: dict, wr: dict, matmul: bool, widths: tuple[int, int, int]
) -> Traffic:
    """DRAM bytes per operand and scratchpad words: the array reads every stationary tile word once
    per fold and, per streamed step, one word per PE row/column the operand's spatial dims cover."""
    ext, T, mapping = sched.extents, sched.steps, sched.mapping
    spatial = set(mapping.rows.dims) | set(mapping.cols.dims)
    reads: dict[str, float] = {}
    for op in (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT):
        if op is acc.dataflow.stationary:
            reads[op.value] = float(sched.tile_words[op].sum())
            continue
        per_step = np.ones(sched.folds, dtype=np.float64)
        for d in spatial & operand_dims(op, matmul):
            per_step = per_step * ext[d]
        reads[op.value] = float((per_step * T).sum())
    ib, wb, ab = widths
    writes = {
        "input": rd["input"] * 8 / ib,
        "weight": rd["weight"] * 8 / wb,
        "output": reads.pop("output"),
    }  # the array writes outputs (and partial sums) into the buffer
    reads["output"] = wr["output"] * 8 / ab + rd["output"] * 8 / ab
    return Traffic(dram_read_bytes=dict(rd), dram_write_bytes=dict(wr), buffer_reads=reads, buffer_writes=writes)
