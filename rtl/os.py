"""Output-stationary systolic sub-accelerator (the systolic-os template).

Rows hold output pixels (``m = fr*rows + i``), columns filters (``k = fc*cols + j``); the im2col
reduction (T = C*R*S steps) streams through: row i reads its pixel's input for step ``t - i`` at the
im2col address (zero outside the padded image), column j gets weight ``w[k][t - j]`` through a
skew register triangle, and a ``clear`` flag travels with each row's first operand. Per fold:
``T + rows + cols - 2`` compute cycles, then ``rows`` drain cycles that move one array row of
accumulators per cycle into the double-buffered output banks (and set up the next fold's pixels);
a drained fold streams out while the next computes. Timing: ``rtl.os_program.os_cycles``.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.array import OsArray
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.params import CFG_BITS
from coexplore.rtl.ws import WS_CFG

OS_CFG = WS_CFG


class OsAccelerator(StreamAccelerator):
    """Same ports as ``WsAccelerator``; the stream layouts are in ``rtl.os_program``."""

    CFG = OS_CFG

    def elaborate(self, platform):  # noqa: C901
        p = self.params
        ra, ca, bwb = p.rows, p.cols, p.stream_bytes
        ib, wb, ab, ob = p.input_bits, p.weight_bits, p.acc_bits, p.out_bytes
        wd = p.weight_depth
        cfg = self.cfg()
        m = Module()
        m.submodules.array = arr = OsArray(ra, ca, ib, wb, ab)

        start = run_control(m, self)
        busy = self.busy

        # ---- ifmap scratchpad: one replica per array row ------------------------------------
        ifm = ifmap_replicas(m, self.ifmap, busy, start, cfg["if_beats"], p.ifmap_words, bwb * 8, list(range(ra)))
        if_loaded = ifm.loaded
        if_rports = [ifm.read_ports[i] for i in range(ra)]

        # ---- weight scratchpad: two banks of C*R*S steps x cols bytes ------------------------
        last_comp = Signal()
        last_rf = Signal()
        wbank = Signal()
        wts = weight_scratchpad(m, self.weight, busy, start, bank_rows=wd, tile_rows=cfg["red"], tiles=cfg["n_cf"],
                                row_bytes=ca, stream_bytes=bwb, release=lambda b: last_comp & last_rf & (wbank == b),
                                comb_read=False)
        wfull, wrp = wts.full, wts.read_port

        # ---- fold sequencer: SETUP (first fold only) -> [wait] COMPUTE -> DRAIN -> ... -------
        SETUP, COMPUTE, DRAIN = 0, 1, 2
        phase = Signal(2)
        pc = Signal(bits_for(ra) + 1)
        tcnt = Signal(CFG_BITS + 2)
        rf_i = Signal(CFG_BITS)
        cf_i = Signal(CFG_BITS)
        comp_done = Signal()
        ohalf = Signal()
        ofull = Signal(2)
        m.d.comb += wbank.eq(cf_i[0])
        drop = 1 if p.fault == "drop_cycle" else 0
        comp_len = Signal(CFG_BITS + 2)
        m.d.comb += comp_len.eq(cfg["red"] + (ra + ca - 2 - drop))
        go = Signal()
        m.d.comb += go.eq(busy & ~comp_done & (phase == COMPUTE) & (tcnt == 0) & if_loaded
                          & Mux(wbank, wfull[1], wfull[0]) & ~Mux(ohalf, ofull[1], ofull[0]))
        computing = Signal()
        m.d.comb += computing.eq(busy & ~comp_done & (phase == COMPUTE) & ((tcnt != 0) | go))
        m.d.comb += last_comp.eq(computing & (tcnt == comp_len - 1))
        draining = Signal()
        m.d.comb += draining.eq(busy & (phase == DRAIN))
        setting_up = Signal()
        m.d.comb += setting_up.eq(busy & ((phase == SETUP) | (phase == DRAIN)))
        m.d.comb += last_rf.eq(rf_i == cfg["n_rf"] - 1)
        with m.If(start):
            m.d.sync += [phase.eq(SETUP), pc.eq(0), tcnt.eq(0), rf_i.eq(0), cf_i.eq(0), comp_done.eq(0),
                         ohalf.eq(0)]
        with m.Elif(busy & (phase == SETUP)):
            m.d.sync += pc.eq(pc + 1)
            with m.If(pc == ra - 1):
                m.d.sync += [phase.eq(COMPUTE), pc.eq(0)]
        with m.Elif(computing):
            m.d.sync += tcnt.eq(tcnt + 1)
            with m.If(last_comp):
                m.d.sync += [phase.eq(DRAIN), pc.eq(0), tcnt.eq(0)]
        with m.Elif(draining):
            m.d.sync += pc.eq(pc + 1)
            with m.If(pc == ra - 1):
                m.d.sync += [phase.eq(COMPUTE), pc.eq(0), ohalf.eq(~ohalf)]
                with m.If(last_rf):
                    m.d.sync += [rf_i.eq(0), cf_i.eq(cf_i + 1)]
                    with m.If(cf_i == cfg["n_cf"] - 1):
                        m.d.sync += comp_done.eq(1)
                with m.Else():
                    m.d.sync += rf_i.eq(rf_i + 1)

        # running pixel counter: set up one array row's pixel per SETUP/DRAIN cycle
        sb = CFG_BITS + 3
        px_m = Signal(CFG_BITS + 1)
        px_q = Signal(CFG_BITS)
        px_hb = Signal(signed(sb))
        px_wb = Signal(signed(sb))
        px_base = Signal(signed(sb + 1))
        px_row = Signal(signed(sb + 1))
        neg_pad = Signal(signed(sb))
        neg_padw = Signal(signed(sb + 1))
        m.d.comb += [neg_pad.eq(-cfg["pad"]), neg_padw.eq(-cfg["pad_w"])]
        with m.If(start | (last_comp & last_rf)):
            m.d.sync += [px_m.eq(0), px_q.eq(0), px_hb.eq(neg_pad), px_wb.eq(neg_pad), px_base.eq(neg_padw),
                         px_row.eq(neg_padw)]
        with m.Elif(setting_up):
            m.d.sync += px_m.eq(px_m + 1)
            with m.If(px_q == cfg["q"] - 1):
                m.d.sync += [px_q.eq(0), px_hb.eq(px_hb + cfg["stride"]), px_wb.eq(neg_pad),
                             px_row.eq(px_row + cfg["stride_w"]), px_base.eq(px_row + cfg["stride_w"])]
            with m.Else():
                m.d.sync += [px_q.eq(px_q + 1), px_wb.eq(px_wb + cfg["stride"]), px_base.eq(px_base + cfg["stride"])]
        row_hb = [Signal(signed(sb), name=f"row_hb_{i}") for i in range(ra)]
        row_wb = [Signal(signed(sb), name=f"row_wb_{i}") for i in range(ra)]
        row_base = [Signal(signed(sb + 1), name=f"row_base_{i}") for i in range(ra)]
        row_ok = [Signal(name=f"row_ok_{i}") for i in range(ra)]
        for i in range(ra):
            with m.If(setting_up & (pc == i)):
                m.d.sync += [row_hb[i].eq(px_hb), row_wb[i].eq(px_wb), row_base[i].eq(px_base),
                             row_ok[i].eq(px_m < cfg["t"])]

        # reduction-step counter (c, r, s) during compute, skewed one cycle per row
        st_v = Signal()
        m.d.comb += st_v.eq(computing & (tcnt < cfg["red"]))
        rc_r = Signal(CFG_BITS)
        rc_s = Signal(CFG_BITS)
        rc_rw = Signal(CFG_BITS + 1)
        rc_cb = Signal(CFG_BITS + 1)
        with m.If(~computing):
            m.d.sync += [rc_r.eq(0), rc_s.eq(0), rc_rw.eq(0), rc_cb.eq(0)]
        with m.Elif(st_v):
            with m.If(rc_s == cfg["s"] - 1):
                m.d.sync += rc_s.eq(0)
                with m.If(rc_r == cfg["r"] - 1):
                    m.d.sync += [rc_r.eq(0), rc_rw.eq(0), rc_cb.eq(rc_cb + cfg["hw"])]
                with m.Else():
                    m.d.sync += [rc_r.eq(rc_r + 1), rc_rw.eq(rc_rw + cfg["w"])]
            with m.Else():
                m.d.sync += rc_s.eq(rc_s + 1)
        k_v = [st_v] + [Signal(name=f"kv_{i}") for i in range(1, ra)]
        k_first = [st_v & (tcnt == 0)] + [Signal(name=f"kf_{i}") for i in range(1, ra)]
        k_off = [rc_cb + rc_rw + rc_s] + [Signal(CFG_BITS + 2, name=f"koff_{i}") for i in range(1, ra)]
        k_r = [rc_r] + [Signal(CFG_BITS, name=f"kr_{i}") for i in range(1, ra)]
        k_s = [rc_s] + [Signal(CFG_BITS, name=f"ks_{i}") for i in range(1, ra)]
        for i in range(1, ra):
            m.d.sync += [k_v[i].eq(k_v[i - 1]), k_first[i].eq(k_first[i - 1]), k_off[i].eq(k_off[i - 1]),
                         k_r[i].eq(k_r[i - 1]), k_s[i].eq(k_s[i - 1])]
        lane_bits = p.lane_bits
        clr = Signal(ra)
        for i in range(ra):
            hh = Signal(signed(sb + 1), name=f"rd_h_{i}")
            ww = Signal(signed(sb + 1), name=f"rd_w_{i}")
            addr = Signal(signed(sb + 2), name=f"rd_addr_{i}")
            inb = Signal(name=f"rd_inb_{i}")
            m.d.comb += [
                hh.eq(row_hb[i] + k_r[i]), ww.eq(row_wb[i] + k_s[i]), addr.eq(row_base[i] + k_off[i]),
                inb.eq(k_v[i] & row_ok[i] & (hh >= 0) & (hh < cfg["h"]) & (ww >= 0) & (ww < cfg["w"])),
            ]
            rp = if_rports[i]
            m.d.comb += rp.addr.eq(addr[lane_bits:])
            inb_q = Signal(name=f"rd_inb_q_{i}")
            lane_q = Signal(max(1, lane_bits), name=f"rd_lane_q_{i}")
            m.d.sync += [inb_q.eq(inb), lane_q.eq(addr[:lane_bits] if lane_bits else 0), clr[i].eq(k_first[i])]
            byte = Signal(8, name=f"rd_byte_{i}")
            m.d.comb += byte.eq(rp.data.word_select(lane_q, 8) if lane_bits else rp.data)
            m.d.comb += arr.a_in[i].eq(Mux(inb_q, byte[:ib].as_signed(), 0))
        m.d.comb += arr.clr_in.eq(clr)

        # weights: one word per step, column j delayed j cycles
        m.d.comb += wrp.addr.eq(Mux(wbank, wd, 0) + tcnt[:CFG_BITS])
        wv_q = Signal()
        m.d.sync += wv_q.eq(st_v)
        for j in range(ca):
            val = Signal(signed(wb), name=f"wcol_{j}_0")
            m.d.comb += val.eq(Mux(wv_q, wrp.data.word_select(j, 8)[:wb].as_signed(), 0))
            for d in range(j):
                nxt = Signal(signed(wb), name=f"wcol_{j}_{d + 1}")
                m.d.sync += nxt.eq(val)
                val = nxt
            m.d.comb += arr.b_in[j].eq(val)

        # ---- output banks: cols memories of two halves x rows accumulators ------------------
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * bwb * 8)
        dr = drain_engine(m, self.ofmap, busy, start, ofull, ra, row_cat, rb_o, bwb, line_bits=bits_for(ra) + 1)
        d_half, d_finish = dr.half, dr.finish
        rows_data = []
        for j in range(ca):
            mem = Memory(shape=unsigned(ab), depth=2 * ra, init=[])
            m.submodules[f"obank_{j}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            sel = Signal(signed(ab), name=f"acc_row_{j}")
            pick = arr.acc[0][j]
            for i in range(1, ra):
                pick = Mux(pc == i, arr.acc[i][j], pick)
            m.d.comb += sel.eq(pick)
            data = sel.as_unsigned()
            if p.fault == "flip_bit" and j == 0:
                data = data ^ 1
            m.d.comb += [wp.addr.eq(Mux(ohalf, ra, 0) + pc), wp.data.eq(data), wp.en.eq(draining)]
            m.d.comb += [rp.addr.eq(Mux(d_half, ra, 0) + dr.read_line), rp.en.eq(dr.read_en)]
            ext = Signal(signed(ob * 8), name=f"dext_{j}")
            m.d.comb += ext.eq(rp.data.as_signed())
            rows_data.append(ext)

        m.d.comb += row_cat.eq(Cat(*[x.as_unsigned() for x in rows_data]))
        for h in range(2):
            with m.If(start):
                m.d.sync += ofull[h].eq(0)
            with m.Elif(draining & (pc == ra - 1) & (ohalf == h)):
                m.d.sync += ofull[h].eq(1)
            with m.Elif(d_finish & (d_half == h)):
                m.d.sync += ofull[h].eq(0)
        finish(m, self, d_finish & (dr.count == cfg["n_folds"] - 1))
        return m
