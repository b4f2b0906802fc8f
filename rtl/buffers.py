"""Scratchpads and the engines that move data between them and the external-memory streams,
shared by every array: the resident ifmap (one replica per reader), the double-buffered weight
scratchpad with its loader, and the drain that streams finished output tiles out.

Each builder adds its logic to the caller's ``Module`` and returns the signals the array's fold
sequencer needs; the timing they give is the one docs/rtl.md states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.params import CFG_BITS


def bits_for(n: int) -> int:
    """Bits of a counter that reaches ``n - 1``."""
    return max(1, (n - 1).bit_length()) if n > 1 else 1


def run_control(m: Module, comp: Any) -> Any:
    """start/busy/cycles of a component: ``busy`` rises the cycle after ``start`` is sampled and
    ``cycles`` counts the busy cycles. Returns the one-cycle ``start`` pulse (ignored while busy)."""
    start = Signal(name="start_pulse")
    m.d.comb += start.eq(comp.start & ~comp.busy)
    with m.If(start):
        m.d.sync += [comp.busy.eq(1), comp.done.eq(0), comp.cycles.eq(0)]
    with m.Elif(comp.busy):
        m.d.sync += comp.cycles.eq(comp.cycles + 1)
    return start


def finish(m: Module, comp: Any, when: Any) -> None:
    """End the run (busy low, done high) at the edge of the cycle where ``when`` holds."""
    with m.If(comp.busy & when):
        m.d.sync += [comp.busy.eq(0), comp.done.eq(1)]


@dataclass
class Ifmap:
    loaded: Signal  # every beat of the input has arrived
    read_ports: dict  # key -> synchronous read port of that replica


def ifmap_replicas(
    m: Module, stream: Any, busy: Any, start: Any, beats: Any, words: int, width_bits: int, keys: list
) -> Ifmap:
    """The layer input, streamed in once at the start into one replica per key (each replica has
    its own read port: one reader per array row, or per PE)."""
    cnt = Signal(CFG_BITS + 1, name="if_cnt")
    loaded = Signal(name="if_loaded")  # registered (cnt == beats): it gates every fold's start
    m.d.comb += stream.ready.eq(busy & ~loaded)
    we = Signal(name="if_we")
    m.d.comb += we.eq(stream.valid & stream.ready)
    with m.If(start):
        m.d.sync += [cnt.eq(0), loaded.eq(beats == 0)]
    with m.Elif(we):
        m.d.sync += cnt.eq(cnt + 1)
        with m.If(cnt + 1 == beats):  # the incrementer is shared
            m.d.sync += loaded.eq(1)
    ports = {}
    for key in keys:
        suffix = "_".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
        mem = Memory(shape=unsigned(width_bits), depth=words, init=[])
        m.submodules[f"ifmap_{suffix}"] = mem
        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(cnt), wp.data.eq(stream.payload), wp.en.eq(we)]
        ports[key] = mem.read_port(transparent_for=())
    return Ifmap(loaded, ports)


@dataclass
class Weights:
    full: Signal  # 2 bits: bank b holds a loaded tile not yet released
    read_port: Any
    row_beats: int


def weight_scratchpad(
    m: Module,
    stream: Any,
    busy: Any,
    start: Any,
    bank_rows: int,
    tile_rows: Any,
    tiles: Any,
    row_bytes: int,
    stream_bytes: int,
    release: Callable[[int], Any],
    comb_read: bool,
    row_bits: int = CFG_BITS,
) -> Weights:
    """Two banks of ``bank_rows`` lines of ``row_bytes`` (each line arrives as whole beats). The
    loader fills bank 0, 1, 0, ... with ``tiles`` tiles of ``tile_rows`` lines, each into a bank
    once ``release(bank)`` has freed it; ``comb_read`` gives an asynchronous read port."""
    rb = -(-row_bytes // stream_bytes)
    mem = Memory(shape=unsigned(rb * stream_bytes * 8), depth=2 * bank_rows, init=[])
    m.submodules.weights = mem
    wp = mem.write_port(granularity=stream_bytes * 8)
    rp = mem.read_port(domain="comb") if comb_read else mem.read_port(transparent_for=())
    full = Signal(2, name="wfull")
    tile = Signal(CFG_BITS + 1, name="wl_tile")
    bank = Signal(name="wl_bank")
    row = Signal(row_bits, name="wl_row")
    lane = Signal(bits_for(rb) + 1, name="wl_lane")
    more = Signal(name="wl_more")  # registered (tile != tiles): no compare in front of the handshake
    m.d.comb += stream.ready.eq(busy & more & ~Mux(bank, full[1], full[0]))
    acc = Signal(name="w_acc")
    m.d.comb += acc.eq(stream.valid & stream.ready)
    m.d.comb += [
        wp.addr.eq(Mux(bank, bank_rows, 0) + row),
        wp.data.eq(Cat(*([stream.payload] * rb))),
        wp.en.eq(Mux(acc, (Const(1, rb) << lane)[:rb], 0)),
    ]
    tile_end = Signal(name="w_tile_end")
    m.d.comb += tile_end.eq(acc & (row == tile_rows - 1) & (lane == rb - 1))
    with m.If(start):
        m.d.sync += [tile.eq(0), bank.eq(0), row.eq(0), lane.eq(0), more.eq(tiles != 0)]
    with m.Elif(acc):
        with m.If(lane == rb - 1):
            m.d.sync += lane.eq(0)
            with m.If(row == tile_rows - 1):
                m.d.sync += [row.eq(0), bank.eq(~bank), tile.eq(tile + 1), more.eq(tile + 1 != tiles)]
            with m.Else():
                m.d.sync += row.eq(row + 1)
        with m.Else():
            m.d.sync += lane.eq(lane + 1)
    for b in range(2):
        with m.If(start):
            m.d.sync += full[b].eq(0)
        with m.Elif(tile_end & (bank == b)):
            m.d.sync += full[b].eq(1)
        with m.Elif(release(b)):
            m.d.sync += full[b].eq(0)
    return Weights(full, rp, rb)


@dataclass
class Drain:
    start: Signal  # this cycle the drain begins a tile (issues the read of its first line)
    active: Signal
    half: Signal  # which output half it drains (or will drain next)
    read_en: Signal
    read_line: Signal  # line to read this cycle (0 on start, the next line after a line's last beat)
    finish: Signal  # the tile's last beat leaves this cycle
    count: Signal  # tiles drained so far


def drain_engine(
    m: Module,
    stream: Any,
    busy: Any,
    start: Any,
    ready: Any,
    lines: Any,
    line_data: Any,
    line_beats: int,
    stream_bytes: int,
    line_bits: int = CFG_BITS + 1,
) -> Drain:
    """Streams a finished tile out, ``lines`` lines of ``line_beats`` beats each; ``ready`` (2 bits)
    says which output half holds a finished tile; ``line_data`` is the line read in the previous
    cycle (synchronous read ports hold it while ``read_en`` is low); ``line_bits`` sizes the line
    counter."""
    active = Signal(name="d_active")
    count = Signal(CFG_BITS + 1, name="d_tiles")
    half = Signal(name="d_half")
    m.d.comb += half.eq(count[0])
    line = Signal(line_bits, name="d_line")
    line_last = Signal(name="d_line_last")  # registered (line == lines - 1): no compare in the handshake
    beat = Signal(bits_for(line_beats) + 1, name="d_beat")
    d_start = Signal(name="d_start")
    m.d.comb += d_start.eq(busy & ~active & Mux(half, ready[1], ready[0]))
    read_en = Signal(name="d_rd_en")
    read_line = Signal(line_bits, name="d_rd_line")
    cat = Signal(line_beats * stream_bytes * 8, name="d_line_data")
    m.d.comb += cat.eq(line_data)
    m.d.comb += [stream.valid.eq(active), stream.payload.eq(cat.word_select(beat, stream_bytes * 8))]
    take = Signal(name="o_acc")
    m.d.comb += take.eq(stream.valid & stream.ready)
    last_beat = Signal(name="last_beat")
    m.d.comb += last_beat.eq(take & (beat == line_beats - 1))
    done = Signal(name="d_finish")
    m.d.comb += done.eq(last_beat & line_last)
    with m.If(d_start):
        m.d.comb += [read_en.eq(1), read_line.eq(0)]
    with m.Elif(last_beat & ~done):
        m.d.comb += [read_en.eq(1), read_line.eq(line + 1)]
    first = [line.eq(0), line_last.eq(lines == 1), beat.eq(0)]
    with m.If(start):
        m.d.sync += [active.eq(0), count.eq(0), *first]
    with m.Elif(d_start):
        m.d.sync += [active.eq(1), *first]
    with m.Elif(take):
        with m.If(beat == line_beats - 1):
            m.d.sync += beat.eq(0)
            with m.If(done):
                m.d.sync += [active.eq(0), count.eq(count + 1)]
            with m.Else():
                m.d.sync += [line.eq(line + 1), line_last.eq(line + 1 == lines - 1)]
        with m.Else():
            m.d.sync += beat.eq(beat + 1)
    return Drain(d_start, active, half, read_en, read_line, done, count)
