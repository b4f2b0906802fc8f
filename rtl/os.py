"""Output-stationary systolic sub-accelerator (kind ``os``, the systolic-os template).

Rows hold output pixels (``m = fr*rows + i``), columns filters (``k = fc*cols + j``); the im2col
reduction (T = C*R*S steps) streams through: row i reads its pixel's input for step ``t - i`` at the
im2col address (zero outside the padded image), column j gets weight ``w[k][t - j]`` through a
skew register triangle, and a ``clear`` flag travels with each row's first operand. Per fold:
``T + rows + cols - 2`` compute cycles, then ``rows`` drain cycles that move one array row of
accumulators per cycle into the double-buffered output banks (and set up the next fold's pixels);
a drained fold streams out while the next computes. Timing: ``rtl.os_program.cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.array import OsArray
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.im2col import SB, pixel_walker, read_tap, reduction_walker, skew
from coexplore.rtl.os_program import pipeline_extra
from coexplore.rtl.params import CFG_BITS

SETUP, COMPUTE, DRAIN = 0, 1, 2  # sequencer phases: SETUP (first fold only) -> COMPUTE -> DRAIN -> COMPUTE ...


@dataclass(frozen=True)
class _Fold:
    """The fold sequencer's state, and the phases derived from it."""

    phase: Signal
    pc: Signal  # setup / drain row
    tcnt: Signal  # compute step
    rf_i: Signal  # pixel fold
    cf_i: Signal  # column fold (K tile)
    comp_done: Signal
    ohalf: Signal  # output half the next drain writes
    ofull: Signal  # output half h holds a drained fold (2 bits)
    wbank: Signal  # weight bank of the current column fold
    last_rf: Signal
    computing: Signal
    last_comp: Signal
    draining: Signal
    setting_up: Signal  # SETUP or DRAIN: one array row's next pixel set up per cycle
    # registered flags kept with their counters (no compare between them and the next state)
    t_zero: Signal  # tcnt == 0
    t_last: Signal  # tcnt == compute length - 1
    t_red: Signal  # tcnt < C*R*S


class OsAccelerator(StreamAccelerator):
    """Same ports as ``WsAccelerator``; the stream layouts are in ``rtl.os_program``."""

    def elaborate(self, platform: Any) -> Module:
        p = self.params
        m = Module()
        m.submodules.array = arr = OsArray(p.rows, p.cols, p.input_bits, p.weight_bits, p.acc_bits, p.pe_stages)
        start = run_control(m, self)
        ifm = ifmap_replicas(
            m,
            self.ifmap,
            self.busy,
            start,
            self.cfg()["if_beats"],
            p.ifmap_words,
            p.stream_bytes * 8,
            list(range(p.rows)),
        )
        f = self._fold_state()
        wts = weight_scratchpad(
            m,
            self.weight,
            self.busy,
            start,
            bank_rows=p.weight_depth,
            tile_rows=self.cfg()["red"],
            tiles=self.cfg()["n_cf"],
            row_bytes=p.cols,
            stream_bytes=p.stream_bytes,
            release=lambda b: f.last_comp & f.last_rf & (f.wbank == b),
            comb_read=False,
        )
        self._sequencer(m, start, f, ifm.loaded, wts.full)
        self._row_inputs(m, start, f, arr, ifm.read_ports)
        self._weights_in(m, f, arr, wts.read_port)
        self._outputs(m, start, f, arr)
        return m

    def _fold_state(self) -> _Fold:
        ra = self.params.rows
        return _Fold(
            phase=Signal(2),
            pc=Signal(bits_for(ra) + 1),
            tcnt=Signal(CFG_BITS + 2),
            rf_i=Signal(CFG_BITS),
            cf_i=Signal(CFG_BITS),
            comp_done=Signal(),
            ohalf=Signal(),
            ofull=Signal(2),
            wbank=Signal(),
            last_rf=Signal(),
            computing=Signal(),
            last_comp=Signal(),
            draining=Signal(),
            setting_up=Signal(),
            t_zero=Signal(),
            t_last=Signal(),
            t_red=Signal(),
        )

    def _sequencer(self, m: Module, start: Any, f: _Fold, if_loaded: Any, wfull: Any) -> None:
        """SETUP (first fold) -> [wait] COMPUTE (``C*R*S + rows + cols - 2 + pipeline_extra``) -> DRAIN (``rows``)
        A fold computes once the input is loaded, its weight bank is full and its output half is free."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca = p.rows, p.cols
        m.d.comb += f.wbank.eq(f.cf_i[0])
        comp_len = Signal(CFG_BITS + 2)
        m.d.comb += comp_len.eq(cfg["red"] + (ra + ca - 2 + pipeline_extra(p)))  # pipelined PEs: mostly hidden
        go = Signal()
        m.d.comb += go.eq(
            busy
            & ~f.comp_done
            & (f.phase == COMPUTE)
            & f.t_zero
            & if_loaded
            & Mux(f.wbank, wfull[1], wfull[0])
            & ~Mux(f.ohalf, f.ofull[1], f.ofull[0])
        )
        m.d.comb += [
            f.computing.eq(busy & ~f.comp_done & (f.phase == COMPUTE) & (~f.t_zero | go)),
            # rows >= 2 makes the compute length >= 2, so t_last implies tcnt != 0: no ``go`` on this path
            f.last_comp.eq(busy & ~f.comp_done & (f.phase == COMPUTE) & f.t_last),
            f.draining.eq(busy & (f.phase == DRAIN)),
            f.setting_up.eq(busy & ((f.phase == SETUP) | (f.phase == DRAIN))),
        ]
        fill = ra + ca - 2 + pipeline_extra(p)  # comp_len = C*R*S + fill: length 1 only for C*R*S = 1 - fill
        one = (cfg["red"] == 1 - fill) if fill <= 1 else 0
        t_first = [f.tcnt.eq(0), f.t_zero.eq(1), f.t_last.eq(one), f.t_red.eq(cfg["red"] != 0)]
        rf_first = [f.rf_i.eq(0), f.last_rf.eq(cfg["n_rf"] == 1)]
        with m.If(start):
            m.d.sync += [f.phase.eq(SETUP), f.pc.eq(0), *t_first, *rf_first, f.cf_i.eq(0), f.comp_done.eq(0)]
            m.d.sync += f.ohalf.eq(0)
        with m.Elif(busy & (f.phase == SETUP)):
            m.d.sync += f.pc.eq(f.pc + 1)
            with m.If(f.pc == ra - 1):
                m.d.sync += [f.phase.eq(COMPUTE), f.pc.eq(0)]
        with m.Elif(f.computing):
            m.d.sync += [
                f.tcnt.eq(f.tcnt + 1),
                f.t_zero.eq(0),
                f.t_last.eq(f.tcnt + 1 == comp_len - 1),
                f.t_red.eq(f.tcnt + 1 < cfg["red"]),
            ]
            with m.If(f.last_comp):
                m.d.sync += [f.phase.eq(DRAIN), f.pc.eq(0), *t_first]
        with m.Elif(f.draining):
            m.d.sync += f.pc.eq(f.pc + 1)
            with m.If(f.pc == ra - 1):
                m.d.sync += [f.phase.eq(COMPUTE), f.pc.eq(0), f.ohalf.eq(~f.ohalf)]
                with m.If(f.last_rf):
                    m.d.sync += [*rf_first, f.cf_i.eq(f.cf_i + 1)]
                    with m.If(f.cf_i == cfg["n_cf"] - 1):
                        m.d.sync += f.comp_done.eq(1)
                with m.Else():
                    m.d.sync += [f.rf_i.eq(f.rf_i + 1), f.last_rf.eq(f.rf_i + 1 == cfg["n_rf"] - 1)]

    def _row_inputs(self, m: Module, start: Any, f: _Fold, arr: OsArray, ports: dict) -> None:
        """Array row i keeps its pixel (set up in SETUP/DRAIN cycle i by the pixel walker) and reads
        reduction step ``t - i`` (the reduction walker skewed one cycle per row); the first step
        carries the ``clear`` flag."""
        p, cfg = self.params, self.cfg()
        ra = p.rows
        pix = pixel_walker(m, cfg, reset=start | (f.last_comp & f.last_rf), step=f.setting_up, name="px")
        rows = [
            (
                Signal(signed(SB), name=f"row_hb_{i}"),
                Signal(signed(SB), name=f"row_wb_{i}"),
                Signal(signed(SB + 1), name=f"row_base_{i}"),
                Signal(name=f"row_ok_{i}"),
            )
            for i in range(ra)
        ]
        for i, (hb, wb, base, ok) in enumerate(rows):
            with m.If(f.setting_up & (f.pc == i)):
                m.d.sync += [hb.eq(pix.hb), wb.eq(pix.wb), base.eq(pix.base), ok.eq(pix.index < cfg["t"])]
        st_v = Signal()
        m.d.comb += st_v.eq(f.computing & f.t_red)
        # reset outside COMPUTE (every fold passes SETUP or DRAIN first), not on ~computing: off the ``go`` path
        walk = reduction_walker(m, cfg, reset=f.phase != COMPUTE, step=st_v, name="rc", registered_offset=True)
        k_v = skew(m, st_v, ra, 1, "kv")
        k_first = skew(m, st_v & f.t_zero, ra, 1, "kf")
        k_off = skew(m, walk.offset, ra, CFG_BITS + 2, "koff")
        k_r = skew(m, walk.r, ra, CFG_BITS, "kr")
        k_s = skew(m, walk.s, ra, CFG_BITS, "ks")
        clr = Signal(ra)
        for i, (hb, wb, base, ok) in enumerate(rows):
            m.d.comb += arr.a_in[i].eq(
                read_tap(
                    m,
                    cfg,
                    ports[i],
                    p.lane_bits,
                    p.input_bits,
                    k_v[i] & ok,
                    hb,
                    wb,
                    base,
                    k_r[i],
                    k_s[i],
                    k_off[i],
                    str(i),
                )
            )
            m.d.sync += clr[i].eq(k_first[i])
        m.d.comb += arr.clr_in.eq(clr)

    def _weights_in(self, m: Module, f: _Fold, arr: OsArray, wrp: Any) -> None:
        """One weight line per compute step, column j delayed j cycles (the skew triangle)."""
        p = self.params
        m.d.comb += wrp.addr.eq(Mux(f.wbank, p.weight_depth, 0) + f.tcnt[:CFG_BITS])
        wv_q = Signal()
        m.d.sync += wv_q.eq(f.computing & f.t_red)
        for j in range(p.cols):
            val = Signal(signed(p.weight_bits), name=f"wcol_{j}_0")
            m.d.comb += val.eq(Mux(wv_q, wrp.data.word_select(j, 8)[: p.weight_bits].as_signed(), 0))
            m.d.comb += arr.b_in[j].eq(skew(m, val, j + 1, signed(p.weight_bits), f"wcol_{j}")[-1])

    def _outputs(self, m: Module, start: Any, f: _Fold, arr: OsArray) -> None:
        """Output banks (per column, two halves of ``rows`` accumulators): a DRAIN cycle moves array
        row ``pc`` into the current half; a drained fold streams out while the next computes."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca, ob = p.rows, p.cols, p.out_bytes
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * p.stream_bytes * 8)
        dr = drain_engine(
            m, self.ofmap, busy, start, f.ofull, ra, row_cat, rb_o, p.stream_bytes, line_bits=bits_for(ra) + 1
        )
        rows_data = []
        for j in range(ca):
            mem = Memory(shape=unsigned(p.acc_bits), depth=2 * ra, init=[])
            m.submodules[f"obank_{j}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            sel = Signal(signed(p.acc_bits), name=f"acc_row_{j}")
            # array row pc of column j: an indexed (balanced) multiplexer, not a chain of rows - 1 muxes
            m.d.comb += sel.eq(Array(arr.acc[i][j] for i in range(ra))[f.pc[: bits_for(ra)]])
            m.d.comb += [wp.addr.eq(Mux(f.ohalf, ra, 0) + f.pc), wp.data.eq(sel.as_unsigned()), wp.en.eq(f.draining)]
            m.d.comb += [rp.addr.eq(Mux(dr.half, ra, 0) + dr.read_line), rp.en.eq(dr.read_en)]
            ext = Signal(signed(ob * 8), name=f"dext_{j}")
            m.d.comb += ext.eq(rp.data.as_signed())
            rows_data.append(ext.as_unsigned())
        m.d.comb += row_cat.eq(Cat(*rows_data))
        for h in range(2):
            with m.If(start):
                m.d.sync += f.ofull[h].eq(0)
            with m.Elif(f.draining & (f.pc == ra - 1) & (f.ohalf == h)):
                m.d.sync += f.ofull[h].eq(1)
            with m.Elif(dr.finish & (dr.half == h)):
                m.d.sync += f.ofull[h].eq(0)
        finish(m, self, dr.finish & (dr.count == cfg["n_folds"] - 1))
