"""Row-stationary (Eyeriss-like) sub-accelerator (kind ``rs``, the eyeriss template).

Array row i keeps one filter row (``RS_MAX_S`` weight registers, broadcast along the row); PE
(i, j) convolves it with input row ``h = p_j*stride + r_i - pad`` of channel ``c_i`` (``pad``: the
call's own ``pad_top`` for rows, ``pad_left`` for columns, so a tiled call's band runs exactly): Q x S steps,
one MAC per cycle, accumulating locally over S. Rows run one cycle apart so that each finished
1-D sum joins the column's partial sum as it passes (vertical accumulation: ``rows`` fill cycles);
the top of each column injects the previous channel/filter-row tile's partial sum.
Per fold: ``rows`` preload cycles (one filter row per cycle, with the row's (c, r) set-up), then
``Q*S`` steps, then ``rows`` fill cycles. Simplification: every PE has its own ifmap read port
(a replica), where Eyeriss multicasts input rows along diagonals.
Timing: ``rtl.rs_program.cycles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control, weight_scratchpad
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.im2col import SB, skew
from coexplore.rtl.params import CFG_BITS, RS_MAX_S


@dataclass(frozen=True)
class _Fold:
    """The fold sequencer's counters: filter-row tile rt (inner), channel tile ct, output-row tile
    fp, filter k (outer); ``tiles`` counts finished (k, fp) output tiles."""

    in_pre: Signal
    pc: Signal
    tcnt: Signal
    rt: Signal
    ct: Signal
    fp: Signal
    kk: Signal
    tiles: Signal
    comp_done: Signal
    cbank: Signal
    last_pre: Signal
    obusy: Signal  # 2 bits
    tile_done: Signal  # 2 bits


@dataclass(frozen=True)
class _Phases:
    go: Signal
    preloading: Signal
    streaming: Signal
    last_stream: Signal
    first_red: Signal  # first (ct, rt) fold of an output tile: no partial sum to inject
    last_red: Signal  # last (ct, rt) fold: the tile is finished
    half: Signal  # output half of the current tile


@dataclass(frozen=True)
class _Rows:
    """Per array row, set up during preload: filter row, and its input row / offset."""

    weights: list  # [row][s]
    ok: list
    h: list  # r - pad
    off: list  # c*H*W + r*W - pad*W


@dataclass(frozen=True)
class _Steps:
    """Per array row, the read stage (r_*) and the MAC stage (x_*, one cycle later) of step t = q*S + s."""

    r_tv: list
    r_q: list
    r_last: list
    r_wpos: list  # q*stride + s - pad
    x_tv: list
    x_s: list
    x_q: list
    x_first: list
    x_last: list


class RsAccelerator(StreamAccelerator):
    """Same ports as ``WsAccelerator`` plus the row-stationary ``cfg_*`` registers."""

    def elaborate(self, platform: Any) -> Module:
        p = self.params
        m = Module()
        start = run_control(m, self)
        keys = [(i, j) for i in range(p.rows) for j in range(p.cols)]  # one ifmap replica per PE
        ifm = ifmap_replicas(
            m, self.ifmap, self.busy, start, self.cfg()["if_beats"], p.ifmap_words, p.stream_bytes * 8, keys
        )
        f = self._fold_state()
        wts = weight_scratchpad(
            m,
            self.weight,
            self.busy,
            start,
            bank_rows=p.rows,
            tile_rows=p.rows,
            tiles=self.cfg()["n_folds"],
            row_bytes=RS_MAX_S,
            stream_bytes=p.stream_bytes,
            release=lambda b: f.last_pre & (f.cbank == b),
            comb_read=True,
            row_bits=bits_for(p.rows) + 1,
        )
        ph = self._sequencer(m, start, f, ifm.loaded, wts.full)
        rows = self._preload(m, start, f, ph, wts.read_port)
        cols = self._columns(m, start, f, ph)
        steps = self._steps(m, f, ph)
        self._pes_and_outputs(m, start, f, ph, rows, cols, steps, ifm.read_ports)
        return m

    def _fold_state(self) -> _Fold:
        return _Fold(
            in_pre=Signal(),
            pc=Signal(bits_for(self.params.rows) + 1),
            tcnt=Signal(CFG_BITS + 2),
            rt=Signal(CFG_BITS),
            ct=Signal(CFG_BITS),
            fp=Signal(CFG_BITS),
            kk=Signal(CFG_BITS),
            tiles=Signal(CFG_BITS + 1),
            comp_done=Signal(),
            cbank=Signal(),
            last_pre=Signal(),
            obusy=Signal(2),
            tile_done=Signal(2),
        )

    def _sequencer(self, m: Module, start: Any, f: _Fold, if_loaded: Any, wfull: Any) -> _Phases:
        """PRE (``rows``) -> STREAM (``Q*S`` steps + ``rows`` fill); a fold starts once the input is
        loaded, its weight bank is full and (first reduction fold) its output half is free."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra = p.rows
        half, first_red, last_red = Signal(), Signal(), Signal()
        m.d.comb += [
            half.eq(f.tiles[0]),
            first_red.eq((f.rt == 0) & (f.ct == 0)),
            last_red.eq((f.rt == cfg["n_rf"] - 1) & (f.ct == cfg["n_cf"] - 1)),
        ]
        stream_len = Signal(CFG_BITS + 2)
        m.d.comb += stream_len.eq(cfg["t"] + ra)
        go = Signal()
        m.d.comb += go.eq(
            busy
            & ~f.comp_done
            & f.in_pre
            & if_loaded
            & Mux(f.cbank, wfull[1], wfull[0])
            & (~first_red | ~Mux(half, f.obusy[1], f.obusy[0]))
        )
        preloading, streaming, last_stream = fold_phases(
            m, busy, f.comp_done, f.in_pre, go, f.pc, f.tcnt, ra, stream_len, f.last_pre
        )
        with m.If(start):
            m.d.sync += [
                f.in_pre.eq(1),
                f.pc.eq(0),
                f.tcnt.eq(0),
                f.rt.eq(0),
                f.ct.eq(0),
                f.fp.eq(0),
                f.kk.eq(0),
                f.tiles.eq(0),
                f.comp_done.eq(0),
                f.cbank.eq(0),
            ]
        with m.Elif(preloading):
            with m.If(f.last_pre):
                m.d.sync += [f.in_pre.eq(0), f.pc.eq(0), f.tcnt.eq(0), f.cbank.eq(~f.cbank)]
            with m.Else():
                m.d.sync += f.pc.eq(f.pc + 1)
        with m.Elif(streaming):
            m.d.sync += f.tcnt.eq(f.tcnt + 1)
            with m.If(last_stream):
                m.d.sync += [f.in_pre.eq(1), f.rt.eq(Mux(f.rt == cfg["n_rf"] - 1, 0, f.rt + 1))]
                with m.If(f.rt == cfg["n_rf"] - 1):
                    m.d.sync += f.ct.eq(Mux(f.ct == cfg["n_cf"] - 1, 0, f.ct + 1))
                with m.If(last_red):
                    m.d.sync += f.tiles.eq(f.tiles + 1)
                    with m.If(f.fp == cfg["n_fp"] - 1):
                        m.d.sync += [f.fp.eq(0), f.kk.eq(f.kk + 1)]
                        with m.If(f.kk == cfg["n_k"] - 1):
                            m.d.sync += f.comp_done.eq(1)
                    with m.Else():
                        m.d.sync += f.fp.eq(f.fp + 1)
        return _Phases(go, preloading, streaming, last_stream, first_red, last_red, half)

    def _preload(self, m: Module, start: Any, f: _Fold, ph: _Phases, wrp: Any) -> _Rows:
        """One filter row per preload cycle, and that row's (c, r) from a running walker: array row
        i holds ``r = rt*er + i mod er`` of channel ``c = ct*ec + i div er``."""
        p, cfg = self.params, self.cfg()
        ra = p.rows
        # fold bases r_base = rt*er, c_base = ct*ec and their input offsets, for the next fold
        r_base, c_base = Signal(CFG_BITS), Signal(CFG_BITS)
        r_base_off, c_base_off = Signal(CFG_BITS + 1), Signal(CFG_BITS + 1)
        n_r_base, n_r_off, n_c_base, n_c_off = (
            Signal.like(x, name=f"next_{x.name}") for x in (r_base, r_base_off, c_base, c_base_off)
        )
        m.d.comb += [n_r_base.eq(r_base), n_r_off.eq(r_base_off), n_c_base.eq(c_base), n_c_off.eq(c_base_off)]
        with m.If(f.rt == cfg["n_rf"] - 1):
            m.d.comb += [n_r_base.eq(0), n_r_off.eq(0)]
            with m.If(f.ct == cfg["n_cf"] - 1):
                m.d.comb += [n_c_base.eq(0), n_c_off.eq(0)]
            with m.Else():
                m.d.comb += [n_c_base.eq(c_base + cfg["ec"]), n_c_off.eq(c_base_off + cfg["ec_hw"])]
        with m.Else():
            m.d.comb += [n_r_base.eq(r_base + cfg["er"]), n_r_off.eq(r_base_off + cfg["er_w"])]
        # running (c, r) walker over the array rows during preload
        rl, cl, r_cur, c_cur = Signal(CFG_BITS), Signal(CFG_BITS), Signal(CFG_BITS), Signal(CFG_BITS)
        r_off, c_off = Signal(CFG_BITS + 1), Signal(CFG_BITS + 1)
        walker = (r_base, r_base_off, c_base, c_base_off, rl, cl, r_cur, c_cur, r_off, c_off)
        with m.If(start):
            m.d.sync += [x.eq(0) for x in walker]
        with m.Elif(ph.preloading):
            with m.If(rl == cfg["er"] - 1):
                m.d.sync += [
                    rl.eq(0),
                    r_cur.eq(r_base),
                    r_off.eq(r_base_off),
                    cl.eq(cl + 1),
                    c_cur.eq(c_cur + 1),
                    c_off.eq(c_off + cfg["hw"]),
                ]
            with m.Else():
                m.d.sync += [rl.eq(rl + 1), r_cur.eq(r_cur + 1), r_off.eq(r_off + cfg["w"])]
        with m.Elif(ph.streaming & ph.last_stream):
            m.d.sync += [
                r_base.eq(n_r_base),
                r_base_off.eq(n_r_off),
                c_base.eq(n_c_base),
                c_base_off.eq(n_c_off),
                rl.eq(0),
                cl.eq(0),
                r_cur.eq(n_r_base),
                c_cur.eq(n_c_base),
                r_off.eq(n_r_off),
                c_off.eq(n_c_off),
            ]
        m.d.comb += wrp.addr.eq(Mux(f.cbank, ra, 0) + f.pc)
        rows = _Rows(
            weights=[[Signal(signed(p.weight_bits), name=f"w_{i}_{s}") for s in range(RS_MAX_S)] for i in range(ra)],
            ok=[Signal(name=f"row_ok_{i}") for i in range(ra)],
            h=[Signal(signed(SB), name=f"row_h_{i}") for i in range(ra)],
            off=[Signal(signed(SB + 1), name=f"row_off_{i}") for i in range(ra)],
        )
        for i in range(ra):
            with m.If(ph.preloading & (f.pc == i)):
                m.d.sync += [
                    rows.weights[i][s].eq(wrp.data.word_select(s, 8)[: p.weight_bits].as_signed())
                    for s in range(RS_MAX_S)
                ]
                m.d.sync += [
                    rows.ok[i].eq((cl < cfg["ec"]) & (r_cur < cfg["r"]) & (c_cur < cfg["red"])),
                    rows.h[i].eq(r_cur - cfg["pad_top"]),  # a tiled call pads its own top and left
                    rows.off[i].eq(c_off + r_off - cfg["pad_w"]),
                ]
        return rows

    def _columns(self, m: Module, start: Any, f: _Fold, ph: _Phases) -> tuple[list, list, list]:
        """Per array column j, output row ``p = fp*cols + j``: (valid, p*stride, p*stride*W)."""
        p, cfg = self.params, self.cfg()
        ca = p.cols
        fp_base, colh_base, coloff_base = Signal(CFG_BITS), Signal(CFG_BITS + 1), Signal(CFG_BITS + 2)
        with m.If(start):
            m.d.sync += [fp_base.eq(0), colh_base.eq(0), coloff_base.eq(0)]
        with m.Elif(ph.streaming & ph.last_stream & ph.last_red):
            with m.If(f.fp == cfg["n_fp"] - 1):
                m.d.sync += [fp_base.eq(0), colh_base.eq(0), coloff_base.eq(0)]
            with m.Else():
                m.d.sync += [
                    fp_base.eq(fp_base + ca),
                    colh_base.eq(colh_base + cfg["ca_stride"]),
                    coloff_base.eq(coloff_base + cfg["ca_stride_w"]),
                ]
        ok = [Signal(name=f"col_ok_{j}") for j in range(ca)]
        h = [Signal(SB, name=f"col_h_{j}") for j in range(ca)]
        off = [Signal(SB + 1, name=f"col_off_{j}") for j in range(ca)]
        for j in range(ca):
            m.d.comb += [
                ok[j].eq(fp_base + j < cfg["p"]),
                h[j].eq(colh_base + j * cfg["stride"]),
                off[j].eq(coloff_base + j * cfg["stride_w"]),
            ]
        return ok, h, off

    def _steps(self, m: Module, f: _Fold, ph: _Phases) -> _Steps:
        """Row 0's step generator (t = q*S + s, wpos = q*stride + s - pad), skewed one cycle per row,
        and the MAC stage one cycle after each row's read."""
        p, cfg = self.params, self.cfg()
        ra = p.rows
        g_s, g_q, g_wq = Signal(CFG_BITS), Signal(CFG_BITS), Signal(signed(SB))
        tv0 = Signal()
        m.d.comb += tv0.eq(ph.streaming & (f.tcnt < cfg["t"]))
        with m.If(~ph.streaming):
            m.d.sync += [g_s.eq(0), g_q.eq(0), g_wq.eq(-cfg["pad_left"])]
        with m.Elif(tv0):
            with m.If(g_s == cfg["s"] - 1):
                m.d.sync += [g_s.eq(0), g_q.eq(g_q + 1), g_wq.eq(g_wq + cfg["stride"])]
            with m.Else():
                m.d.sync += g_s.eq(g_s + 1)
        sbits = bits_for(RS_MAX_S) + 1
        qb = bits_for(max(p.ofmap_depth, 2)) + 1
        r_tv = skew(m, tv0, ra, 1, "r_tv")
        r_s = skew(m, g_s[:sbits], ra, sbits, "r_s")
        r_q = skew(m, g_q[:qb], ra, qb, "r_q")
        r_first = skew(m, g_s == 0, ra, 1, "r_first")
        r_last = skew(m, g_s == cfg["s"] - 1, ra, 1, "r_last")
        r_wpos = skew(m, g_wq + g_s, ra, signed(SB + 1), "r_wpos")

        def stage(xs: list, shape: Any, name: str) -> list:
            out = [Signal(shape, name=f"{name}_{i}") for i in range(ra)]
            m.d.sync += [o.eq(x) for o, x in zip(out, xs, strict=True)]
            return out

        return _Steps(
            r_tv=r_tv,
            r_q=r_q,
            r_last=r_last,
            r_wpos=r_wpos,
            x_tv=stage(r_tv, 1, "x_tv"),
            x_s=stage(r_s, sbits, "x_s"),
            x_q=stage(r_q, qb, "x_q"),
            x_first=stage(r_first, 1, "x_first"),
            x_last=stage(r_last, 1, "x_last"),
        )

    def _pes_and_outputs(
        self, m: Module, start: Any, f: _Fold, ph: _Phases, rows: _Rows, cols: tuple, st: _Steps, ports: dict
    ) -> None:
        """The PEs (1-D convolution per PE, vertical accumulation down each column, the previous
        reduction fold's partial sum injected at the top) and the output banks (two halves of Q
        lines of ``cols`` accumulators) with their drain."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca, ab, ob = p.rows, p.cols, p.acc_bits, p.out_bytes
        qb = len(st.x_q[0])
        first_red_q, half_q, last_red_q = Signal(), Signal(), Signal()
        m.d.sync += [first_red_q.eq(ph.first_red), half_q.eq(ph.half), last_red_q.eq(ph.last_red)]
        banks = []
        for h in range(2):
            mem = Memory(shape=unsigned(ca * ab), depth=p.ofmap_depth, init=[])
            m.submodules[f"obank_{h}"] = mem
            banks.append((mem.write_port(), mem.read_port(transparent_for=())))
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * p.stream_bytes * 8)
        dr = drain_engine(
            m, self.ofmap, busy, start, f.tile_done, cfg["q"], row_cat, rb_o, p.stream_bytes, line_bits=qb + 1
        )
        inj_rd = Signal()
        m.d.comb += inj_rd.eq(st.r_tv[0] & st.r_last[0] & ~ph.first_red)
        for h, (_, rp) in enumerate(banks):
            with m.If((dr.active | dr.start) & (dr.half == h)):
                m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
            with m.Else():
                m.d.comb += [rp.addr.eq(st.r_q[0]), rp.en.eq(inj_rd)]
        inj_data = Mux(half_q, banks[1][1].data, banks[0][1].data)
        bottom = self._pes(
            m, rows, cols, st, ports, [Mux(first_red_q, 0, inj_data.word_select(j, ab).as_signed()) for j in range(ca)]
        )
        # write the bottom of every column one cycle after the last row's MAC
        wv, wq, wh, wl = Signal(), Signal(qb), Signal(), Signal()
        m.d.sync += [
            wv.eq(st.x_tv[ra - 1] & st.x_last[ra - 1]),
            wq.eq(st.x_q[ra - 1]),
            wh.eq(half_q),
            wl.eq(last_red_q),
        ]
        for h, (wp, _) in enumerate(banks):
            m.d.comb += [wp.addr.eq(wq), wp.data.eq(Cat(*[z.as_unsigned() for z in bottom])), wp.en.eq(wv & (wh == h))]
        tile_fin = Signal()
        m.d.comb += tile_fin.eq(wv & wl & (wq == cfg["q"] - 1))
        # drain: one line of cols accumulators per q
        drain_data = Mux(dr.half, banks[1][1].data, banks[0][1].data)
        parts = []
        for j in range(ca):
            ext = Signal(signed(ob * 8), name=f"dext_{j}")
            m.d.comb += ext.eq(drain_data.word_select(j, ab).as_signed())
            parts.append(ext.as_unsigned())
        m.d.comb += row_cat.eq(Cat(*parts))
        for h in range(2):
            with m.If(start):
                m.d.sync += [f.tile_done[h].eq(0), f.obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (wh == h)):
                    m.d.sync += f.tile_done[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.tile_done[h].eq(0)
                with m.If(ph.go & ph.first_red & (ph.half == h)):
                    m.d.sync += f.obusy[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.obusy[h].eq(0)
        finish(m, self, dr.finish & (dr.count == cfg["n_tiles"] - 1))

    def _pes(self, m: Module, rows: _Rows, cols: tuple, st: _Steps, ports: dict, z_top: list) -> list:
        """PE (i, j): read input (h = row_h + col_h, w = wpos) on its replica, MAC with the filter tap
        ``x_s`` over S steps, and on the last tap add its 1-D sum to the partial sum from above.
        Returns the partial sums leaving the bottom row."""
        p, cfg = self.params, self.cfg()
        ib, wb, ab = p.input_bits, p.weight_bits, p.acc_bits
        col_ok, col_h, col_off = cols
        lane_bits = p.lane_bits
        z_prev = z_top
        for i in range(p.rows):
            # a Mux chain, not a comb Switch: Icarus never evaluates an ``always @*`` whose inputs
            # keep their initial values (an idle row's all-zero weights), which left X here
            wsel = Signal(signed(wb), name=f"wsel_{i}")
            pick = rows.weights[i][0]
            for s in range(1, RS_MAX_S):
                pick = Mux(st.x_s[i] == s, rows.weights[i][s], pick)
            m.d.comb += wsel.eq(pick)
            z_row = []
            for j in range(p.cols):
                hh = Signal(signed(SB + 2), name=f"h_{i}_{j}")
                addr = Signal(signed(SB + 3), name=f"addr_{i}_{j}")
                inb = Signal(name=f"inb_{i}_{j}")
                m.d.comb += [
                    hh.eq(rows.h[i] + col_h[j]),
                    addr.eq(rows.off[i] + col_off[j] + st.r_wpos[i]),
                    inb.eq(
                        st.r_tv[i]
                        & rows.ok[i]
                        & col_ok[j]
                        & (hh >= 0)
                        & (hh < cfg["h"])
                        & (st.r_wpos[i] >= 0)
                        & (st.r_wpos[i] < cfg["w"])
                    ),
                ]
                rp = ports[i, j]
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
                m.d.comb += local.eq((Mux(st.x_first[i], 0, acc) + prod)[:ab].as_signed())
                with m.If(st.x_tv[i]):
                    m.d.sync += acc.eq(local)
                z = Signal(signed(ab), name=f"z_{i}_{j}")
                with m.If(st.x_tv[i] & st.x_last[i]):
                    m.d.sync += z.eq((z_prev[j] + local)[:ab].as_signed())
                z_row.append(z)
            z_prev = z_row
        return z_prev
