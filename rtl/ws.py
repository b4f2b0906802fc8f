"""Weight-stationary systolic sub-accelerator (the systolic-ws template).

Engines that run concurrently, each a few counters (timing in ``rtl.program.ws_cycles``):
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

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.array import WsArray
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.params import CFG_BITS

WS_CFG = ("h", "w", "hw", "r", "s", "stride", "pad", "stride_w", "p", "q", "t", "red", "n_rf", "n_cf",
          "if_beats", "pad_w", "n_folds")




class WsAccelerator(StreamAccelerator):
    """Ports: ``start``/``busy``/``done``/``cycles``, ``cfg_*`` layer registers (held during a run),
    ``ifmap`` and ``weight`` input streams and the ``ofmap`` output stream (``stream_bytes`` wide)."""

    CFG = WS_CFG

    def elaborate(self, platform):  # noqa: C901 - one controller, read top to bottom
        p = self.params
        ra, ca, bwb = p.rows, p.cols, p.stream_bytes
        ib, wb, ab = p.input_bits, p.weight_bits, p.acc_bits
        ob = p.out_bytes
        cfg = self.cfg()
        m = Module()
        m.submodules.array = arr = WsArray(ra, ca, ib, wb, ab)

        start = run_control(m, self)
        busy = self.busy

        # ---- ifmap scratchpad: one replica per array row ------------------------------------
        ifm = ifmap_replicas(m, self.ifmap, busy, start, cfg["if_beats"], p.ifmap_words, bwb * 8, list(range(ra)))
        if_loaded = ifm.loaded
        if_rports = [ifm.read_ports[i] for i in range(ra)]

        # ---- weight scratchpad: two tiles of rows x cols bytes -------------------------------
        last_pre = Signal()
        cbank = Signal()
        wts = weight_scratchpad(m, self.weight, busy, start, bank_rows=ra, tile_rows=ra, tiles=cfg["n_folds"],
                                row_bytes=ca, stream_bytes=bwb, release=lambda b: last_pre & (cbank == b),
                                comb_read=True, row_bits=bits_for(ra) + 1)
        wfull, wrp = wts.full, wts.read_port

        # ---- fold sequencer ------------------------------------------------------------------
        t_bits = CFG_BITS + 2
        in_pre = Signal()
        pc = Signal(bits_for(ra) + 1)
        tcnt = Signal(t_bits)
        rf_i = Signal(CFG_BITS)
        cf_i = Signal(CFG_BITS)
        comp_done = Signal()
        obusy = Signal(2)
        tile_done = Signal(2)
        ohalf = Signal()
        m.d.comb += ohalf.eq(cf_i[0])
        stream_len = Signal(t_bits)
        drop = 1 if p.fault == "drop_cycle" else 0
        m.d.comb += stream_len.eq(cfg["t"] + (ra + ca - 2 - drop))
        bank_full = Signal()
        m.d.comb += bank_full.eq(Mux(cbank, wfull[1], wfull[0]))
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(ohalf, ~obusy[1], ~obusy[0]))
        go = Signal()
        m.d.comb += go.eq(busy & ~comp_done & in_pre & if_loaded & bank_full & ((rf_i != 0) | half_free))
        preloading, streaming, last_stream = fold_phases(m, busy, comp_done, in_pre, go, pc, tcnt, ra, stream_len,
                                                         last_pre)
        last_rf = Signal()
        m.d.comb += last_rf.eq(rf_i == cfg["n_rf"] - 1)

        # running im2col reduction counter (c, r, s) walked during preload, one row per cycle
        rc_red = Signal(CFG_BITS + 1)
        rc_r = Signal(CFG_BITS)
        rc_s = Signal(CFG_BITS)
        rc_rw = Signal(CFG_BITS + 1)
        rc_cb = Signal(CFG_BITS + 1)
        row_off = [Signal(CFG_BITS + 1, name=f"row_off_{i}") for i in range(ra)]
        row_r = [Signal(CFG_BITS, name=f"row_r_{i}") for i in range(ra)]
        row_s = [Signal(CFG_BITS, name=f"row_s_{i}") for i in range(ra)]
        row_ok = [Signal(name=f"row_ok_{i}") for i in range(ra)]
        rc_reset = Signal()
        m.d.comb += rc_reset.eq(start | (last_stream & last_rf))
        with m.If(rc_reset):
            m.d.sync += [rc_red.eq(0), rc_r.eq(0), rc_s.eq(0), rc_rw.eq(0), rc_cb.eq(0)]
        with m.Elif(preloading):
            m.d.sync += rc_red.eq(rc_red + 1)
            with m.If(rc_s == cfg["s"] - 1):
                m.d.sync += rc_s.eq(0)
                with m.If(rc_r == cfg["r"] - 1):
                    m.d.sync += [rc_r.eq(0), rc_rw.eq(0), rc_cb.eq(rc_cb + cfg["hw"])]
                with m.Else():
                    m.d.sync += [rc_r.eq(rc_r + 1), rc_rw.eq(rc_rw + cfg["w"])]
            with m.Else():
                m.d.sync += rc_s.eq(rc_s + 1)
        m.d.comb += wrp.addr.eq(Mux(cbank, ra, 0) + pc)
        for j in range(ca):
            m.d.comb += arr.w_row[j].eq(wrp.data.word_select(j, 8)[:wb].as_signed())
        for i in range(ra):
            with m.If(preloading & (pc == i)):
                m.d.comb += arr.w_we[i].eq(1)
                m.d.sync += [row_off[i].eq(rc_cb + rc_rw + rc_s), row_r[i].eq(rc_r), row_s[i].eq(rc_s),
                             row_ok[i].eq(rc_red < cfg["red"])]

        # sequencer state
        with m.If(start):
            m.d.sync += [in_pre.eq(1), pc.eq(0), tcnt.eq(0), rf_i.eq(0), cf_i.eq(0), comp_done.eq(0),
                         cbank.eq(0)]
        with m.Elif(preloading):
            with m.If(last_pre):
                m.d.sync += [in_pre.eq(0), pc.eq(0), tcnt.eq(0), cbank.eq(~cbank)]
            with m.Else():
                m.d.sync += pc.eq(pc + 1)
        with m.Elif(streaming):
            m.d.sync += tcnt.eq(tcnt + 1)
            with m.If(last_stream):
                m.d.sync += in_pre.eq(1)
                with m.If(last_rf):
                    m.d.sync += [rf_i.eq(0), cf_i.eq(cf_i + 1)]
                    with m.If(cf_i == cfg["n_cf"] - 1):
                        m.d.sync += comp_done.eq(1)
                with m.Else():
                    m.d.sync += rf_i.eq(rf_i + 1)

        # pixel generator: (hb, wb) = (p*stride - pad, q*stride - pad), base = hb*W + wb
        sb = CFG_BITS + 3
        g_q = Signal(CFG_BITS)
        g_hb = Signal(signed(sb))
        g_wb = Signal(signed(sb))
        g_base = Signal(signed(sb + 1))
        g_row = Signal(signed(sb + 1))
        pix_v = Signal()
        m.d.comb += pix_v.eq(streaming & (tcnt < cfg["t"]))
        neg_pad = Signal(signed(sb))
        neg_padw = Signal(signed(sb + 1))
        m.d.comb += [neg_pad.eq(-cfg["pad"]), neg_padw.eq(-cfg["pad_w"])]
        with m.If(~streaming):
            m.d.sync += [g_q.eq(0), g_hb.eq(neg_pad), g_wb.eq(neg_pad), g_base.eq(neg_padw), g_row.eq(neg_padw)]
        with m.Elif(pix_v):
            with m.If(g_q == cfg["q"] - 1):
                m.d.sync += [g_q.eq(0), g_hb.eq(g_hb + cfg["stride"]), g_wb.eq(neg_pad),
                             g_row.eq(g_row + cfg["stride_w"]), g_base.eq(g_row + cfg["stride_w"])]
            with m.Else():
                m.d.sync += [g_q.eq(g_q + 1), g_wb.eq(g_wb + cfg["stride"]), g_base.eq(g_base + cfg["stride"])]

        # per-row pixel state, skewed one cycle per row
        st_v = [pix_v] + [Signal(name=f"sk_v_{i}") for i in range(1, ra)]
        st_hb = [g_hb] + [Signal(signed(sb), name=f"sk_hb_{i}") for i in range(1, ra)]
        st_wb = [g_wb] + [Signal(signed(sb), name=f"sk_wb_{i}") for i in range(1, ra)]
        st_base = [g_base] + [Signal(signed(sb + 1), name=f"sk_base_{i}") for i in range(1, ra)]
        for i in range(1, ra):
            m.d.sync += [st_v[i].eq(st_v[i - 1]), st_hb[i].eq(st_hb[i - 1]), st_wb[i].eq(st_wb[i - 1]),
                         st_base[i].eq(st_base[i - 1])]
        lane_bits = p.lane_bits
        for i in range(ra):
            hh = Signal(signed(sb + 1), name=f"rd_h_{i}")
            ww = Signal(signed(sb + 1), name=f"rd_w_{i}")
            addr = Signal(signed(sb + 2), name=f"rd_addr_{i}")
            inb = Signal(name=f"rd_inb_{i}")
            m.d.comb += [
                hh.eq(st_hb[i] + row_r[i]), ww.eq(st_wb[i] + row_s[i]), addr.eq(st_base[i] + row_off[i]),
                inb.eq(st_v[i] & row_ok[i] & (hh >= 0) & (hh < cfg["h"]) & (ww >= 0) & (ww < cfg["w"])),
            ]
            rp = if_rports[i]
            m.d.comb += rp.addr.eq(addr[lane_bits:])
            inb_q = Signal(name=f"rd_inb_q_{i}")
            lane_q = Signal(max(1, lane_bits), name=f"rd_lane_q_{i}")
            m.d.sync += [inb_q.eq(inb), lane_q.eq(addr[:lane_bits] if lane_bits else 0)]
            byte = Signal(8, name=f"rd_byte_{i}")
            if lane_bits:
                m.d.comb += byte.eq(rp.data.word_select(lane_q, 8))
            else:
                m.d.comb += byte.eq(rp.data)
            m.d.comb += arr.a_in[i].eq(Mux(inb_q, byte[:ib].as_signed(), 0))

        # ---- output banks: cols x 2 halves of ofmap_depth accumulators -----------------------
        depth = p.ofmap_depth
        mb = bits_for(depth)
        # column control: (valid, pixel m, inject previous partial sum, half, last row fold)
        c_v = [pix_v] + [Signal(name=f"cv_{j}") for j in range(1, ca)]
        c_m = [tcnt[:mb]] + [Signal(mb, name=f"cm_{j}") for j in range(1, ca)]
        c_inj = [rf_i != 0] + [Signal(name=f"cinj_{j}") for j in range(1, ca)]
        c_half = [ohalf] + [Signal(name=f"chalf_{j}") for j in range(1, ca)]
        c_last = [last_rf] + [Signal(name=f"clast_{j}") for j in range(1, ca)]
        for j in range(1, ca):
            m.d.sync += [c_v[j].eq(c_v[j - 1]), c_m[j].eq(c_m[j - 1]), c_inj[j].eq(c_inj[j - 1]),
                         c_half[j].eq(c_half[j - 1]), c_last[j].eq(c_last[j - 1])]
        # write control of column 0 = its read control delayed by rows + 1
        dv, dm, dh, dl = c_v[0], c_m[0], c_half[0], c_last[0]
        for k in range(ra + 1):
            nv, nm, nh, nl = Signal(name=f"wd_v_{k}"), Signal(mb, name=f"wd_m_{k}"), Signal(name=f"wd_h_{k}"), Signal(name=f"wd_l_{k}")
            m.d.sync += [nv.eq(dv), nm.eq(dm), nh.eq(dh), nl.eq(dl)]
            dv, dm, dh, dl = nv, nm, nh, nl
        w_v = [dv] + [Signal(name=f"wv_{j}") for j in range(1, ca)]
        w_m = [dm] + [Signal(mb, name=f"wm_{j}") for j in range(1, ca)]
        w_h = [dh] + [Signal(name=f"wh_{j}") for j in range(1, ca)]
        w_l = [dl] + [Signal(name=f"wl_{j}") for j in range(1, ca)]
        for j in range(1, ca):
            m.d.sync += [w_v[j].eq(w_v[j - 1]), w_m[j].eq(w_m[j - 1]), w_h[j].eq(w_h[j - 1]), w_l[j].eq(w_l[j - 1])]

        # drain engine: streams a finished column tile out, one padded row of cols outputs at a time
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * bwb * 8)
        dr = drain_engine(m, self.ofmap, busy, start, tile_done, cfg["t"], row_cat, rb_o, bwb, line_bits=mb + 1)
        d_half, d_finish = dr.half, dr.finish
        d_owns = Signal()
        m.d.comb += d_owns.eq(dr.active | dr.start)

        rows_data = []
        for j in range(ca):
            halves_rdata = []
            for h in range(2):
                mem = Memory(shape=unsigned(ab), depth=depth, init=[])
                m.submodules[f"obank_{j}_{h}"] = mem
                wp = mem.write_port()
                rp = mem.read_port(transparent_for=())
                data = arr.psum_out[j].as_unsigned()
                if p.fault == "flip_bit" and j == 0:
                    data = data ^ 1
                m.d.comb += [wp.addr.eq(w_m[j]), wp.data.eq(data), wp.en.eq(w_v[j] & (w_h[j] == h))]
                with m.If(d_owns & (d_half == h)):
                    m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
                with m.Else():
                    m.d.comb += [rp.addr.eq(c_m[j]), rp.en.eq(1)]
                halves_rdata.append(rp.data)
            # injection into the top of column j, one cycle after its read
            inj_q = Signal(name=f"inj_q_{j}")
            half_q = Signal(name=f"inj_half_{j}")
            m.d.sync += [inj_q.eq(c_v[j] & c_inj[j]), half_q.eq(c_half[j])]
            m.d.comb += arr.psum_in[j].eq(Mux(inj_q, Mux(half_q, halves_rdata[1], halves_rdata[0]).as_signed(), 0))
            dsel = Mux(d_half, halves_rdata[1], halves_rdata[0])
            ext = Signal(signed(ob * 8), name=f"dext_{j}")  # sign-extend to whole output bytes
            m.d.comb += ext.eq(dsel.as_signed())
            rows_data.append(ext)
        # a finished tile: the last write of column cols-1 for pixel T-1 in the last row fold
        tile_fin = Signal()
        m.d.comb += tile_fin.eq(w_v[ca - 1] & w_l[ca - 1] & (w_m[ca - 1] == cfg["t"] - 1))

        m.d.comb += row_cat.eq(Cat(*[x.as_unsigned() for x in rows_data]))
        for h in range(2):
            with m.If(start):
                m.d.sync += [tile_done[h].eq(0), obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (w_h[ca - 1] == h)):
                    m.d.sync += tile_done[h].eq(1)
                with m.Elif(d_finish & (d_half == h)):
                    m.d.sync += tile_done[h].eq(0)
                with m.If(go & (rf_i == 0) & (ohalf == h)):
                    m.d.sync += obusy[h].eq(1)
                with m.Elif(d_finish & (d_half == h)):
                    m.d.sync += obusy[h].eq(0)
        finish(m, self, d_finish & (dr.count == cfg["n_cf"] - 1))
        return m
