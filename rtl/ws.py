"""Weight-stationary systolic sub-accelerator (kind ``ws``, the systolic-ws template).

Engines that run concurrently, each a few counters (timing in ``rtl.ws_program.cycles``):
- ifmap loader: streams the whole layer input into one scratchpad replica per array row;
- weight loader: streams the weight tile of each fold into a double-buffered weight scratchpad;
- fold sequencer: per fold, ``rows`` preload cycles (one weight row per cycle; each row's im2col
  offset (c, r, s) is set up in the same cycle) then ``T + rows + cols - 2`` streaming cycles in
  which row i reads input pixel ``m = t - i`` at its im2col address (zero outside the padded
  image), and column j injects the partial sum of pixel ``m = t - j`` from the previous row
  fold at the top;
- drain: a finished column tile (double-buffered output banks) streams out while the next computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.array import WsArray
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.im2col import pixel_walker, read_tap, reduction_walker, skew
from coexplore.rtl.params import CFG_BITS


@dataclass(frozen=True)
class _Fold:
    """The fold sequencer's state: registers, and the phases derived from them."""

    in_pre: Signal  # the next cycles preload (else stream)
    pc: Signal  # preload row
    tcnt: Signal  # streaming step
    rf_i: Signal  # row fold (reduction tile)
    cf_i: Signal  # column fold (K tile)
    comp_done: Signal
    cbank: Signal  # weight bank of the current fold
    last_pre: Signal
    obusy: Signal  # output half h is being accumulated into (2 bits)
    tile_done: Signal  # output half h holds a finished tile (2 bits)
    ohalf: Signal  # output half of the current column fold
    # registered flags kept with their counters (no compare between them and the next state)
    rf_first: Signal  # rf_i == 0
    rf_last: Signal  # rf_i == n_rf - 1
    t_last: Signal  # tcnt == stream length - 1
    t_pix: Signal  # tcnt < T


@dataclass(frozen=True)
class _Phases:
    go: Signal
    preloading: Signal
    streaming: Signal
    last_stream: Signal
    last_rf: Signal
    pix_v: Signal  # a streaming step that carries a pixel (t < T)


@dataclass(frozen=True)
class _RowTap:
    """One array row's reduction index, set up during preload."""

    offset: Signal
    r: Signal
    s: Signal
    ok: Signal


class WsAccelerator(StreamAccelerator):
    """Ports: ``start``/``busy``/``done``/``cycles``, ``cfg_*`` layer registers (held during a run),
    ``ifmap`` and ``weight`` input streams and the ``ofmap`` output stream (``stream_bytes`` wide)."""

    def elaborate(self, platform: Any) -> Module:
        p = self.params
        m = Module()
        m.submodules.array = arr = WsArray(p.rows, p.cols, p.input_bits, p.weight_bits, p.acc_bits, p.pe_stages)
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
        fold = self._fold_state()
        wts = weight_scratchpad(
            m,
            self.weight,
            self.busy,
            start,
            bank_rows=p.rows,
            tile_rows=p.rows,
            tiles=self.cfg()["n_folds"],
            row_bytes=p.cols,
            stream_bytes=p.stream_bytes,
            release=lambda b: fold.last_pre & (fold.cbank == b),
            comb_read=True,
            row_bits=bits_for(p.rows) + 1,
        )
        ph = self._sequencer(m, start, fold, ifm.loaded, wts.full)
        taps = self._preload(m, start, fold, ph, arr, wts.read_port)
        self._row_inputs(m, ph, arr, ifm.read_ports, taps)
        self._outputs(m, start, fold, ph, arr)
        return m

    def _fold_state(self) -> _Fold:
        return _Fold(
            in_pre=Signal(),
            pc=Signal(bits_for(self.params.rows) + 1),
            tcnt=Signal(CFG_BITS + 2),
            rf_i=Signal(CFG_BITS),
            cf_i=Signal(CFG_BITS),
            comp_done=Signal(),
            cbank=Signal(),
            last_pre=Signal(),
            obusy=Signal(2),
            tile_done=Signal(2),
            ohalf=Signal(),
            rf_first=Signal(),
            rf_last=Signal(),
            t_last=Signal(),
            t_pix=Signal(),
        )

    def _sequencer(self, m: Module, start: Any, f: _Fold, if_loaded: Any, wfull: Any) -> _Phases:
        """Preload ``rows`` cycles, stream ``T + rows + cols - 2 + pe_stages``; row folds inner, column folds outer.
        A fold starts once the input is loaded, its weight bank is full and (first row fold) its
        output half is free."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca = p.rows, p.cols
        m.d.comb += f.ohalf.eq(f.cf_i[0])
        stream_len = Signal(CFG_BITS + 2)
        m.d.comb += stream_len.eq(cfg["t"] + (ra + ca - 2 + p.pe_stages))
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(f.ohalf, ~f.obusy[1], ~f.obusy[0]))
        go = Signal()
        m.d.comb += go.eq(
            busy & ~f.comp_done & f.in_pre & if_loaded & Mux(f.cbank, wfull[1], wfull[0]) & (~f.rf_first | half_free)
        )
        preloading, streaming, last_stream = fold_phases(
            m, busy, f.comp_done, f.in_pre, go, f.pc, f.tcnt, ra, stream_len, f.last_pre, t_last=f.t_last
        )
        last_rf = f.rf_last
        fill = ra + ca - 2 + p.pe_stages  # stream_len = T + fill: length 1 only for T = 1 - fill
        one = (cfg["t"] == 1 - fill) if fill <= 1 else 0
        t_first = [f.tcnt.eq(0), f.t_last.eq(one), f.t_pix.eq(cfg["t"] != 0)]
        rf_first = [f.rf_i.eq(0), f.rf_first.eq(1), f.rf_last.eq(cfg["n_rf"] == 1)]
        with m.If(start):
            m.d.sync += [
                f.in_pre.eq(1),
                f.pc.eq(0),
                *t_first,
                *rf_first,
                f.cf_i.eq(0),
                f.comp_done.eq(0),
                f.cbank.eq(0),
            ]
        with m.Elif(preloading):
            with m.If(f.last_pre):
                m.d.sync += [f.in_pre.eq(0), f.pc.eq(0), *t_first, f.cbank.eq(~f.cbank)]
            with m.Else():
                m.d.sync += f.pc.eq(f.pc + 1)
        with m.Elif(streaming):
            m.d.sync += [
                f.tcnt.eq(f.tcnt + 1),
                f.t_last.eq(f.tcnt + 1 == stream_len - 1),
                f.t_pix.eq(f.tcnt + 1 < cfg["t"]),
            ]
            with m.If(last_stream):
                m.d.sync += f.in_pre.eq(1)
                with m.If(last_rf):
                    m.d.sync += [*rf_first, f.cf_i.eq(f.cf_i + 1)]
                    with m.If(f.cf_i == cfg["n_cf"] - 1):
                        m.d.sync += f.comp_done.eq(1)
                with m.Else():
                    m.d.sync += [
                        f.rf_i.eq(f.rf_i + 1),
                        f.rf_first.eq(0),
                        f.rf_last.eq(f.rf_i + 1 == cfg["n_rf"] - 1),
                    ]
        pix_v = Signal()
        m.d.comb += pix_v.eq(streaming & f.t_pix)
        return _Phases(go, preloading, streaming, last_stream, last_rf, pix_v)

    def _preload(self, m: Module, start: Any, f: _Fold, ph: _Phases, arr: WsArray, wrp: Any) -> list[_RowTap]:
        """One weight row per preload cycle into the array, and that row's im2col reduction index
        (c, r, s) from a running walker (reset at the start of each column fold)."""
        p, cfg = self.params, self.cfg()
        ra = p.rows
        # rows >= 2: the walker steps and row i captures its tap one cycle after preload cycle i (from
        # registered enables, off the fold-start path); row i first reads rows >= 2 cycles after it
        late = ra >= 2
        step, capture = ph.preloading, [ph.preloading & (f.pc == i) for i in range(ra)]
        if late:
            step_q, cap_q = Signal(name="rc_step_q"), Signal(ra, name="tap_cap_q")
            m.d.sync += [step_q.eq(step), cap_q.eq(Cat(*capture))]
            step, capture = step_q, [cap_q[i] for i in range(ra)]
        walk = reduction_walker(m, cfg, reset=start | (ph.last_stream & ph.last_rf), step=step, name="rc")
        m.d.comb += wrp.addr.eq(Mux(f.cbank, ra, 0) + f.pc)
        # pipelined PEs: the weight row and its write enables pass a register (they fan out to a whole
        # array row); the row's first product is at least one cycle after its preload, so none is late
        load = m.d.sync if p.pe_stages else m.d.comb
        for j in range(p.cols):
            load += arr.w_row[j].eq(wrp.data.word_select(j, 8)[: p.weight_bits].as_signed())
        taps = [
            _RowTap(
                Signal(CFG_BITS + 1, name=f"row_off_{i}"),
                Signal(CFG_BITS, name=f"row_r_{i}"),
                Signal(CFG_BITS, name=f"row_s_{i}"),
                Signal(name=f"row_ok_{i}"),
            )
            for i in range(ra)
        ]
        for i, tap in enumerate(taps):
            load += arr.w_we[i].eq(ph.preloading & (f.pc == i))
            with m.If(capture[i]):
                m.d.sync += [
                    tap.offset.eq(walk.offset),
                    tap.r.eq(walk.r),
                    tap.s.eq(walk.s),
                    tap.ok.eq(walk.index < cfg["red"]),
                ]
        return taps

    def _row_inputs(self, m: Module, ph: _Phases, arr: WsArray, ports: dict, taps: list[_RowTap]) -> None:
        """Row i reads pixel ``m = t - i`` (the pixel walker skewed one cycle per row) at its tap."""
        p, cfg = self.params, self.cfg()
        ra = p.rows
        pix = pixel_walker(m, cfg, reset=~ph.streaming, step=ph.pix_v, name="g")
        v = skew(m, ph.pix_v, ra, 1, "sk_v")
        hb = skew(m, pix.hb, ra, pix.hb.shape(), "sk_hb")
        wb = skew(m, pix.wb, ra, pix.wb.shape(), "sk_wb")
        base = skew(m, pix.base, ra, pix.base.shape(), "sk_base")
        for i, tap in enumerate(taps):
            m.d.comb += arr.a_in[i].eq(
                read_tap(
                    m,
                    cfg,
                    ports[i],
                    p.lane_bits,
                    p.input_bits,
                    v[i] & tap.ok,
                    hb[i],
                    wb[i],
                    base[i],
                    tap.r,
                    tap.s,
                    tap.offset,
                    str(i),
                )
            )

    def _outputs(self, m: Module, start: Any, f: _Fold, ph: _Phases, arr: WsArray) -> None:
        """Output banks (cols x 2 halves of ``ofmap_depth`` accumulators): column j injects the previous
        row fold's partial sum at the top and writes its result ``rows + 1 + j`` cycles after its
        read (both ``pe_stages`` later: the array's pipeline); a finished column tile drains to the
        ofmap stream while the next one computes."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca, ob = p.rows, p.cols, p.out_bytes
        mb = bits_for(p.ofmap_depth)
        # column read control: (valid, pixel m, inject previous partial sum, half, last row fold),
        # pe_stages cycles late (the array's pipeline), then one more cycle per column
        # (pipelined: the injection is read one cycle earlier and passes a register into the array)
        depth, s = ca + p.pe_stages, p.pe_stages
        full = [
            skew(m, x, depth, shape, name)
            for x, shape, name in (
                (ph.pix_v, 1, "cv"),
                (f.tcnt[:mb], mb, "cm"),
                (~f.rf_first, 1, "cinj"),
                (f.ohalf, 1, "chalf"),
                (ph.last_rf, 1, "clast"),
            )
        ]
        c_v, c_m, c_inj, c_half, c_last = (x[s:] for x in full)
        r = max(s - 1, 0)
        r_v, r_m, r_inj, r_half = (x[r : r + ca] for x in full[:4])
        # column write control: column 0's read control delayed by rows + 1, then one cycle per column
        w0 = [
            skew(m, x, ra + 2, shape, f"wd_{n}")[-1]
            for x, shape, n in ((c_v[0], 1, "v"), (c_m[0], mb, "m"), (c_half[0], 1, "h"), (c_last[0], 1, "l"))
        ]
        w_v, w_m, w_h, w_l = (
            skew(m, x, ca, shape, f"w{n}") for x, shape, n in zip(w0, (1, mb, 1, 1), ("v", "m", "h", "l"), strict=True)
        )
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * p.stream_bytes * 8)
        dr = drain_engine(
            m, self.ofmap, busy, start, f.tile_done, cfg["t"], row_cat, rb_o, p.stream_bytes, line_bits=mb + 1
        )
        d_owns = Signal()
        m.d.comb += d_owns.eq(dr.active | dr.start)
        rows_data = []
        for j in range(ca):
            halves = []
            for h in range(2):
                mem = Memory(shape=unsigned(p.acc_bits), depth=p.ofmap_depth, init=[])
                m.submodules[f"obank_{j}_{h}"] = mem
                wp = mem.write_port()
                # transparent: with rows = cols = T = 1 the next row fold reads a partial sum as it is written
                rp = mem.read_port(transparent_for=(wp,))
                m.d.comb += [
                    wp.addr.eq(w_m[j]),
                    wp.data.eq(arr.psum_out[j].as_unsigned()),
                    wp.en.eq(w_v[j] & (w_h[j] == h)),
                ]
                with m.If(d_owns & (dr.half == h)):
                    m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
                with m.Else():
                    m.d.comb += [rp.addr.eq(r_m[j]), rp.en.eq(1)]
                halves.append(rp.data)
            # injection into the top of column j, one cycle after its read
            inj_q = Signal(name=f"inj_q_{j}")
            half_q = Signal(name=f"inj_half_{j}")
            m.d.sync += [inj_q.eq(r_v[j] & r_inj[j]), half_q.eq(r_half[j])]
            inject = m.d.sync if s else m.d.comb  # pipelined: the injected partial sum is registered
            inject += arr.psum_in[j].eq(Mux(inj_q, Mux(half_q, halves[1], halves[0]).as_signed(), 0))
            ext = Signal(signed(ob * 8), name=f"dext_{j}")  # sign-extend to whole output bytes
            m.d.comb += ext.eq(Mux(dr.half, halves[1], halves[0]).as_signed())
            rows_data.append(ext.as_unsigned())
        m.d.comb += row_cat.eq(Cat(*rows_data))
        # a finished tile: the last write of column cols-1 for pixel T-1 in the last row fold
        tile_fin = Signal()
        m.d.comb += tile_fin.eq(w_v[ca - 1] & w_l[ca - 1] & (w_m[ca - 1] == cfg["t"] - 1))
        for h in range(2):
            with m.If(start):
                m.d.sync += [f.tile_done[h].eq(0), f.obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (w_h[ca - 1] == h)):
                    m.d.sync += f.tile_done[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.tile_done[h].eq(0)
                with m.If(ph.go & f.rf_first & (f.ohalf == h)):
                    m.d.sync += f.obusy[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.obusy[h].eq(0)
        finish(m, self, dr.finish & (dr.count == cfg["n_cf"] - 1))
