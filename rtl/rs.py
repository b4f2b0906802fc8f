"""Row-stationary (Eyeriss-like) sub-accelerator (the eyeriss template).

Array row i keeps one filter row (``RS_MAX_S`` weight registers, broadcast along the row); PE
(i, j) convolves it with input row ``h = p_j*stride + r_i - pad`` of channel ``c_i``: Q x S steps,
one MAC per cycle, accumulating locally over S. Rows run one cycle apart so that each finished
1-D sum joins the column's partial sum as it passes (vertical accumulation: ``rows`` fill cycles);
the top of each column injects the previous channel/filter-row tile's partial sum.
Per fold: ``rows`` preload cycles (one filter row per cycle, with the row's (c, r) set-up), then
``Q*S`` steps, then ``rows`` fill cycles. Simplification: every PE has its own ifmap read port
(a replica), where Eyeriss multicasts input rows along diagonals.
Timing: ``rtl.rs_program.rs_cycles``.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.params import CFG_BITS, RS_MAX_S
from coexplore.rtl.ws import WS_CFG

RS_CFG = WS_CFG + ("er", "ec", "er_w", "ec_hw", "n_fp", "n_k", "ca_stride", "ca_stride_w", "n_tiles")


class RsAccelerator(StreamAccelerator):
    """Same ports as ``WsAccelerator`` plus the row-stationary ``cfg_*`` registers."""

    CFG = RS_CFG

    def elaborate(self, platform):  # noqa: C901
        p = self.params
        ra, ca, bwb = p.rows, p.cols, p.stream_bytes
        ib, wb, ab, ob = p.input_bits, p.weight_bits, p.acc_bits, p.out_bytes
        cfg = self.cfg()
        m = Module()
        sb = CFG_BITS + 3

        start = run_control(m, self)
        busy = self.busy

        # ---- ifmap: one replica per PE ------------------------------------------------------
        keys = [(i, j) for i in range(ra) for j in range(ca)]
        ifm = ifmap_replicas(m, self.ifmap, busy, start, cfg["if_beats"], p.ifmap_words, bwb * 8, keys)
        if_loaded, rports = ifm.loaded, ifm.read_ports

        # ---- weights: two banks of rows filter rows ------------------------------------------
        last_pre = Signal()
        cbank = Signal()
        wts = weight_scratchpad(m, self.weight, busy, start, bank_rows=ra, tile_rows=ra, tiles=cfg["n_folds"],
                                row_bytes=RS_MAX_S, stream_bytes=bwb, release=lambda b: last_pre & (cbank == b),
                                comb_read=True, row_bits=bits_for(ra) + 1)
        wfull, wrp = wts.full, wts.read_port

        # ---- fold sequencer: PRE (rows) -> STREAM (Q*S steps + rows fill) ------------------------
        in_pre = Signal()
        pc = Signal(bits_for(ra) + 1)
        tcnt = Signal(CFG_BITS + 2)
        rt = Signal(CFG_BITS)
        ct = Signal(CFG_BITS)
        fp = Signal(CFG_BITS)
        kk = Signal(CFG_BITS)
        tiles = Signal(CFG_BITS + 1)
        comp_done = Signal()
        obusy = Signal(2)
        tile_done = Signal(2)
        half = Signal()
        m.d.comb += half.eq(tiles[0])
        first_red = Signal()
        last_red = Signal()
        m.d.comb += [first_red.eq((rt == 0) & (ct == 0)),
                     last_red.eq((rt == cfg["n_rf"] - 1) & (ct == cfg["n_cf"] - 1))]
        drop = 1 if p.fault == "drop_cycle" else 0
        stream_len = Signal(CFG_BITS + 2)
        m.d.comb += stream_len.eq(cfg["t"] + (ra - drop))
        go = Signal()
        m.d.comb += go.eq(busy & ~comp_done & in_pre & if_loaded & Mux(cbank, wfull[1], wfull[0])
                          & (~first_red | ~Mux(half, obusy[1], obusy[0])))
        preloading, streaming, last_stream = fold_phases(m, busy, comp_done, in_pre, go, pc, tcnt, ra, stream_len,
                                                         last_pre)

        # fold bases: r_base = rt*er, c_base = ct*ec (and their offsets), fp_base = fp*cols
        r_base = Signal(CFG_BITS)
        r_base_off = Signal(CFG_BITS + 1)
        c_base = Signal(CFG_BITS)
        c_base_off = Signal(CFG_BITS + 1)
        fp_base = Signal(CFG_BITS)
        colh_base = Signal(CFG_BITS + 1)
        coloff_base = Signal(CFG_BITS + 2)
        n_r_base, n_r_off, n_c_base, n_c_off = (Signal.like(x, name=f"next_{x.name}")
                                                for x in (r_base, r_base_off, c_base, c_base_off))
        m.d.comb += [n_r_base.eq(r_base), n_r_off.eq(r_base_off), n_c_base.eq(c_base), n_c_off.eq(c_base_off)]
        with m.If(rt == cfg["n_rf"] - 1):
            m.d.comb += [n_r_base.eq(0), n_r_off.eq(0)]
            with m.If(ct == cfg["n_cf"] - 1):
                m.d.comb += [n_c_base.eq(0), n_c_off.eq(0)]
            with m.Else():
                m.d.comb += [n_c_base.eq(c_base + cfg["ec"]), n_c_off.eq(c_base_off + cfg["ec_hw"])]
        with m.Else():
            m.d.comb += [n_r_base.eq(r_base + cfg["er"]), n_r_off.eq(r_base_off + cfg["er_w"])]

        # running (c, r) walker over the array rows during preload
        rl = Signal(CFG_BITS)
        cl = Signal(CFG_BITS)
        r_cur = Signal(CFG_BITS)
        c_cur = Signal(CFG_BITS)
        r_off = Signal(CFG_BITS + 1)
        c_off = Signal(CFG_BITS + 1)

        with m.If(start):
            m.d.sync += [in_pre.eq(1), pc.eq(0), tcnt.eq(0), rt.eq(0), ct.eq(0), fp.eq(0), kk.eq(0), tiles.eq(0),
                         comp_done.eq(0), cbank.eq(0), r_base.eq(0), r_base_off.eq(0), c_base.eq(0),
                         c_base_off.eq(0), fp_base.eq(0), colh_base.eq(0), coloff_base.eq(0),
                         rl.eq(0), cl.eq(0), r_cur.eq(0), c_cur.eq(0), r_off.eq(0), c_off.eq(0)]
        with m.Elif(preloading):
            with m.If(last_pre):
                m.d.sync += [in_pre.eq(0), pc.eq(0), tcnt.eq(0), cbank.eq(~cbank)]
            with m.Else():
                m.d.sync += pc.eq(pc + 1)
            with m.If(rl == cfg["er"] - 1):
                m.d.sync += [rl.eq(0), r_cur.eq(r_base), r_off.eq(r_base_off), cl.eq(cl + 1), c_cur.eq(c_cur + 1),
                             c_off.eq(c_off + cfg["hw"])]
            with m.Else():
                m.d.sync += [rl.eq(rl + 1), r_cur.eq(r_cur + 1), r_off.eq(r_off + cfg["w"])]
        with m.Elif(streaming):
            m.d.sync += tcnt.eq(tcnt + 1)
            with m.If(last_stream):
                m.d.sync += [in_pre.eq(1), rt.eq(Mux(rt == cfg["n_rf"] - 1, 0, rt + 1)),
                             r_base.eq(n_r_base), r_base_off.eq(n_r_off), c_base.eq(n_c_base), c_base_off.eq(n_c_off),
                             rl.eq(0), cl.eq(0), r_cur.eq(n_r_base), c_cur.eq(n_c_base), r_off.eq(n_r_off),
                             c_off.eq(n_c_off)]
                with m.If(rt == cfg["n_rf"] - 1):
                    m.d.sync += ct.eq(Mux(ct == cfg["n_cf"] - 1, 0, ct + 1))
                with m.If(last_red):
                    m.d.sync += tiles.eq(tiles + 1)
                    with m.If(fp == cfg["n_fp"] - 1):
                        m.d.sync += [fp.eq(0), fp_base.eq(0), colh_base.eq(0), coloff_base.eq(0), kk.eq(kk + 1)]
                        with m.If(kk == cfg["n_k"] - 1):
                            m.d.sync += comp_done.eq(1)
                    with m.Else():
                        m.d.sync += [fp.eq(fp + 1), fp_base.eq(fp_base + ca), colh_base.eq(colh_base + cfg["ca_stride"]),
                                     coloff_base.eq(coloff_base + cfg["ca_stride_w"])]

        # per-row filter row and (c, r) set-up, one row per preload cycle
        m.d.comb += wrp.addr.eq(Mux(cbank, ra, 0) + pc)
        wrow = [[Signal(signed(wb), name=f"w_{i}_{s}") for s in range(RS_MAX_S)] for i in range(ra)]
        row_ok = [Signal(name=f"row_ok_{i}") for i in range(ra)]
        row_h = [Signal(signed(sb), name=f"row_h_{i}") for i in range(ra)]
        row_off = [Signal(signed(sb + 1), name=f"row_off_{i}") for i in range(ra)]
        for i in range(ra):
            with m.If(preloading & (pc == i)):
                m.d.sync += [wrow[i][s].eq(wrp.data.word_select(s, 8)[:wb].as_signed()) for s in range(RS_MAX_S)]
                m.d.sync += [row_ok[i].eq((cl < cfg["ec"]) & (r_cur < cfg["r"]) & (c_cur < cfg["red"])),
                             row_h[i].eq(r_cur - cfg["pad"]), row_off[i].eq(c_off + r_off - cfg["pad_w"])]

        # per-column output row p_j = fp*cols + j
        col_ok = [Signal(name=f"col_ok_{j}") for j in range(ca)]
        col_h = [Signal(sb, name=f"col_h_{j}") for j in range(ca)]
        col_off = [Signal(sb + 1, name=f"col_off_{j}") for j in range(ca)]
        for j in range(ca):
            m.d.comb += [col_ok[j].eq(fp_base + j < cfg["p"]), col_h[j].eq(colh_base + j * cfg["stride"]),
                         col_off[j].eq(coloff_base + j * cfg["stride_w"])]

        # step generator (row 0): t = q*S + s, wpos = q*stride + s - pad
        g_s = Signal(CFG_BITS)
        g_q = Signal(CFG_BITS)
        g_wq = Signal(signed(sb))
        tv0 = Signal()
        m.d.comb += tv0.eq(streaming & (tcnt < cfg["t"]))
        with m.If(~streaming):
            m.d.sync += [g_s.eq(0), g_q.eq(0), g_wq.eq(-cfg["pad"])]
        with m.Elif(tv0):
            with m.If(g_s == cfg["s"] - 1):
                m.d.sync += [g_s.eq(0), g_q.eq(g_q + 1), g_wq.eq(g_wq + cfg["stride"])]
            with m.Else():
                m.d.sync += g_s.eq(g_s + 1)
        sbits = bits_for(RS_MAX_S) + 1
        qb = bits_for(max(p.ofmap_depth, 2)) + 1
        # read-stage state per row, skewed one cycle per row
        r_tv = [tv0] + [Signal(name=f"r_tv_{i}") for i in range(1, ra)]
        r_s = [g_s[:sbits]] + [Signal(sbits, name=f"r_s_{i}") for i in range(1, ra)]
        r_q = [g_q[:qb]] + [Signal(qb, name=f"r_q_{i}") for i in range(1, ra)]
        r_first = [g_s == 0] + [Signal(name=f"r_first_{i}") for i in range(1, ra)]
        r_last = [g_s == cfg["s"] - 1] + [Signal(name=f"r_last_{i}") for i in range(1, ra)]
        r_wpos = [g_wq + g_s] + [Signal(signed(sb + 1), name=f"r_wpos_{i}") for i in range(1, ra)]
        for i in range(1, ra):
            m.d.sync += [r_tv[i].eq(r_tv[i - 1]), r_s[i].eq(r_s[i - 1]), r_q[i].eq(r_q[i - 1]),
                         r_first[i].eq(r_first[i - 1]), r_last[i].eq(r_last[i - 1]), r_wpos[i].eq(r_wpos[i - 1])]
        # MAC-stage state per row (one cycle after the read)
        x_tv = [Signal(name=f"x_tv_{i}") for i in range(ra)]
        x_s = [Signal(sbits, name=f"x_s_{i}") for i in range(ra)]
        x_q = [Signal(qb, name=f"x_q_{i}") for i in range(ra)]
        x_first = [Signal(name=f"x_first_{i}") for i in range(ra)]
        x_last = [Signal(name=f"x_last_{i}") for i in range(ra)]
        for i in range(ra):
            m.d.sync += [x_tv[i].eq(r_tv[i]), x_s[i].eq(r_s[i]), x_q[i].eq(r_q[i]), x_first[i].eq(r_first[i]),
                         x_last[i].eq(r_last[i])]
        first_red_q = Signal()
        m.d.sync += first_red_q.eq(first_red)
        half_q = Signal()
        last_red_q = Signal()
        m.d.sync += [half_q.eq(half), last_red_q.eq(last_red)]

        # output banks: two halves of Q rows x cols accumulators
        depth = p.ofmap_depth
        banks = []
        for h in range(2):
            mem = Memory(shape=unsigned(ca * ab), depth=depth, init=[])
            m.submodules[f"obank_{h}"] = mem
            banks.append((mem.write_port(), mem.read_port(transparent_for=())))
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * bwb * 8)
        dr = drain_engine(m, self.ofmap, busy, start, tile_done, cfg["q"], row_cat, rb_o, bwb, line_bits=qb + 1)
        d_half, d_finish = dr.half, dr.finish
        inj_rd = Signal()
        m.d.comb += inj_rd.eq(r_tv[0] & r_last[0] & ~first_red)
        for h, (wp, rp) in enumerate(banks):
            with m.If((dr.active | dr.start) & (d_half == h)):
                m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
            with m.Else():
                m.d.comb += [rp.addr.eq(r_q[0]), rp.en.eq(inj_rd)]
        inj_data = Mux(half_q, banks[1][1].data, banks[0][1].data)

        # the PEs
        z_prev = [Mux(first_red_q, 0, inj_data.word_select(j, ab).as_signed()) for j in range(ca)]
        lane_bits = p.lane_bits
        for i in range(ra):
            # a Mux chain, not a comb Switch: Icarus never evaluates an ``always @*`` whose inputs
            # keep their initial values (an idle row's all-zero weights), which left X here
            wsel = Signal(signed(wb), name=f"wsel_{i}")
            pick = wrow[i][0]
            for s in range(1, RS_MAX_S):
                pick = Mux(x_s[i] == s, wrow[i][s], pick)
            m.d.comb += wsel.eq(pick)
            z_row = []
            for j in range(ca):
                hh = Signal(signed(sb + 2), name=f"h_{i}_{j}")
                addr = Signal(signed(sb + 3), name=f"addr_{i}_{j}")
                inb = Signal(name=f"inb_{i}_{j}")
                m.d.comb += [
                    hh.eq(row_h[i] + col_h[j]), addr.eq(row_off[i] + col_off[j] + r_wpos[i]),
                    inb.eq(r_tv[i] & row_ok[i] & col_ok[j] & (hh >= 0) & (hh < cfg["h"]) & (r_wpos[i] >= 0)
                           & (r_wpos[i] < cfg["w"])),
                ]
                rp = rports[i, j]
                m.d.comb += rp.addr.eq(addr[lane_bits:])
                inb_q = Signal(name=f"inb_q_{i}_{j}")
                lane_q = Signal(max(1, lane_bits), name=f"lane_q_{i}_{j}")
                m.d.sync += [inb_q.eq(inb), lane_q.eq(addr[:lane_bits] if lane_bits else 0)]
                byte = Signal(8, name=f"x_{i}_{j}")
                m.d.comb += byte.eq(rp.data.word_select(lane_q, 8) if lane_bits else rp.data)
                xval = Mux(inb_q, byte[:ib].as_signed(), 0)
                prod = Signal(signed(ib + wb), name=f"prod_{i}_{j}")
                m.d.comb += prod.eq(xval * wsel)
                acc = Signal(signed(ab), name=f"acc_{i}_{j}")
                local = Signal(signed(ab), name=f"local_{i}_{j}")
                m.d.comb += local.eq((Mux(x_first[i], 0, acc) + prod)[:ab].as_signed())
                with m.If(x_tv[i]):
                    m.d.sync += acc.eq(local)
                z = Signal(signed(ab), name=f"z_{i}_{j}")
                with m.If(x_tv[i] & x_last[i]):
                    m.d.sync += z.eq((z_prev[j] + local)[:ab].as_signed())
                z_row.append(z)
            z_prev = z_row

        # write the bottom of every column one cycle after the last row's MAC
        wv = Signal()
        wq = Signal(qb)
        wh = Signal()
        wl = Signal()
        m.d.sync += [wv.eq(x_tv[ra - 1] & x_last[ra - 1]), wq.eq(x_q[ra - 1]), wh.eq(half_q), wl.eq(last_red_q)]
        bottom = Cat(*[z.as_unsigned() for z in z_prev])
        if p.fault == "flip_bit":
            bottom = bottom ^ 1
        for h, (wp, _) in enumerate(banks):
            m.d.comb += [wp.addr.eq(wq), wp.data.eq(bottom), wp.en.eq(wv & (wh == h))]
        tile_fin = Signal()
        m.d.comb += tile_fin.eq(wv & wl & (wq == cfg["q"] - 1))

        # drain: one line of cols accumulators per q
        drain_data = Mux(d_half, banks[1][1].data, banks[0][1].data)
        parts = []
        for j in range(ca):
            ext = Signal(signed(ob * 8), name=f"dext_{j}")
            m.d.comb += ext.eq(drain_data.word_select(j, ab).as_signed())
            parts.append(ext.as_unsigned())
        m.d.comb += row_cat.eq(Cat(*parts))
        for h in range(2):
            with m.If(start):
                m.d.sync += [tile_done[h].eq(0), obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (wh == h)):
                    m.d.sync += tile_done[h].eq(1)
                with m.Elif(d_finish & (d_half == h)):
                    m.d.sync += tile_done[h].eq(0)
                with m.If(go & first_red & (half == h)):
                    m.d.sync += obusy[h].eq(1)
                with m.Elif(d_finish & (d_half == h)):
                    m.d.sync += obusy[h].eq(0)
        finish(m, self, d_finish & (dr.count == cfg["n_tiles"] - 1))
        return m
