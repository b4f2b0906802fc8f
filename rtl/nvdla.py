"""NVDLA-like sub-accelerator (kind ``nvdla``, the nvdla template): input channels on rows, output
channels on columns, an adder tree per column.

Engines that run concurrently (timing in ``rtl.nvdla_program.cycles``):
- ifmap loader: streams the whole layer input (batch included) into one replica per array row;
- weight loader: streams the weight tile of each fold (``rows`` lines of ``R*S`` taps of ``cols``
  bytes) into a double-buffered scratchpad whose line holds every tap of one array row;
- fold sequencer: per fold, ``rows`` preload cycles (array row i copies its line into the PEs'
  tap register files and takes its input channel) then ``T + fill`` streaming cycles: step t walks
  (n, p, q, r, s), S fastest; every row reads its channel's input at that tap (zero in the padding,
  whose top and left edges are the call's own ``pad_top``/``pad_left`` registers: a tiled call's band)
  and broadcasts it along its row; PE (i, j) multiplies it by its weight of that tap; column j adds
  its rows in a pipelined adder tree (``ceil(log2 rows)`` levels after the product register);
- output stage: each column sums a pixel's ``R*S`` tree outputs, adds the previous row fold's partial
  sum (read from the output bank), registers the result and writes it back the cycle after;
- drain: a finished output tile (double-buffered banks) streams out while the next computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.im2col import pixel_walker, read_tap, skew
from coexplore.rtl.nvdla_program import fill_cycles, max_taps
from coexplore.rtl.params import CFG_BITS


@dataclass(frozen=True)
class _Fold:
    """The fold sequencer's state."""

    in_pre: Signal  # the next cycles preload (else stream)
    pc: Signal  # preload row
    tcnt: Signal  # streaming cycle
    rf_i: Signal  # row fold (C tile)
    cf_i: Signal  # column fold (K tile)
    ot_i: Signal  # output tile (group, column fold)
    comp_done: Signal
    cbank: Signal  # weight bank of the current fold
    last_pre: Signal
    obusy: Signal  # output half h is being accumulated into (2 bits)
    tile_done: Signal  # output half h holds a finished tile (2 bits)


@dataclass(frozen=True)
class _Phases:
    go: Signal
    preloading: Signal
    streaming: Signal
    last_stream: Signal
    last_rf: Signal
    step_v: Signal  # a streaming cycle that carries a step (t < T)


@dataclass(frozen=True)
class _Rows:
    """Per array row: the PEs' tap register files and the row's input channel."""

    weights: list[list[list[Signal]]]  # [row][col][tap]
    chw: list[Signal]  # c * H * W of the row's channel
    ok: list[Signal]  # the row holds a channel of the layer


@dataclass(frozen=True)
class _Ctrl:
    """What travels with a step down the pipeline (see ``_outputs``)."""

    valid: Any
    first: Any  # first tap of the pixel
    last: Any  # last tap of the pixel
    pixel: Any  # output line m = (n*P + p)*Q + q
    inject: Any  # add the previous row fold's partial sum
    half: Any  # output half
    fin: Any  # the tile's last pixel in its last row fold


class NvdlaAccelerator(StreamAccelerator):
    """Ports: ``start``/``busy``/``done``/``cycles``, ``cfg_*`` layer registers (held during a run),
    ``ifmap`` and ``weight`` input streams and the ``ofmap`` output stream (``stream_bytes`` wide).
    ``params.nvdla_fault`` (test-only, ``NvdlaFaultParams``) breaks the datapath on purpose."""

    def elaborate(self, platform: Any) -> Module:
        p = self.params
        m = Module()
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
        fold = _Fold(
            in_pre=Signal(),
            pc=Signal(bits_for(p.rows) + 1),
            tcnt=Signal(CFG_BITS + 2),
            rf_i=Signal(CFG_BITS),
            cf_i=Signal(CFG_BITS),
            ot_i=Signal(CFG_BITS),
            comp_done=Signal(),
            cbank=Signal(),
            last_pre=Signal(),
            obusy=Signal(2),
            tile_done=Signal(2),
        )
        wfull, wline = self._weight_loader(m, start, fold)
        ph = self._sequencer(m, start, fold, ifm.loaded, wfull)
        rows = self._preload(m, start, fold, ph, wline)
        acts, tap_q, ctrl = self._row_inputs(m, fold, ph, ifm.read_ports, rows)
        sums = self._mac_tree(m, acts, rows, tap_q)
        self._outputs(m, start, fold, ph, sums, ctrl)
        return m

    def _weight_loader(self, m: Module, start: Any, f: _Fold) -> tuple[Signal, Any]:
        """Two banks of ``rows`` lines; a line holds one array row's taps (``R*S`` sub-lines of ``cols``
        bytes, each whole beats). Tile f fills bank f mod 2 once fold f-2's preload has released it.
        Returns (bank full, 2 bits; the line the preload reads, combinationally)."""
        p, cfg = self.params, self.cfg()
        rb, ra, sb = p.weight_row_beats, p.rows, p.stream_bytes
        slots = max_taps(p) * rb
        mem = Memory(shape=unsigned(slots * sb * 8), depth=2 * ra, init=[])
        m.submodules.weights = mem
        wp = mem.write_port(granularity=sb * 8)
        rp = mem.read_port(domain="comb")
        full = Signal(2, name="wfull")
        tile = Signal(CFG_BITS + 1, name="wl_tile")
        bank = Signal(name="wl_bank")
        row = Signal(bits_for(ra) + 1, name="wl_row")
        slot = Signal(bits_for(slots) + 1, name="wl_slot")
        line_beats = Signal(bits_for(slots) + 1, name="wl_line_beats")
        m.d.comb += line_beats.eq(cfg["taps"] * rb)
        take = Signal(name="w_take")
        m.d.comb += [
            self.weight.ready.eq(self.busy & (tile != cfg["n_folds"]) & ~Mux(bank, full[1], full[0])),
            take.eq(self.weight.valid & self.weight.ready),
        ]
        m.d.comb += [
            wp.addr.eq(Mux(bank, ra, 0) + row),
            wp.data.eq(Cat(*([self.weight.payload] * slots))),
            wp.en.eq(Mux(take, (Const(1, slots) << slot)[:slots], 0)),
        ]
        line_end = Signal(name="w_line_end")
        m.d.comb += line_end.eq(slot == line_beats - 1)
        with m.If(start):
            m.d.sync += [tile.eq(0), bank.eq(0), row.eq(0), slot.eq(0)]
        with m.Elif(take):
            m.d.sync += slot.eq(Mux(line_end, 0, slot + 1))
            with m.If(line_end & (row == ra - 1)):
                m.d.sync += [row.eq(0), bank.eq(~bank), tile.eq(tile + 1)]
            with m.Elif(line_end):
                m.d.sync += row.eq(row + 1)
        for b in range(2):
            with m.If(start):
                m.d.sync += full[b].eq(0)
            with m.Elif(take & line_end & (row == ra - 1) & (bank == b)):
                m.d.sync += full[b].eq(1)
            with m.Elif(f.last_pre & (f.cbank == b)):
                m.d.sync += full[b].eq(0)
        m.d.comb += rp.addr.eq(Mux(f.cbank, ra, 0) + f.pc)
        return full, rp.data

    def _sequencer(self, m: Module, start: Any, f: _Fold, if_loaded: Any, wfull: Any) -> _Phases:
        """Preload ``rows`` cycles, stream ``T + fill``; row folds inner, column folds, then groups. A
        fold starts once the input is loaded, its weight bank is full and (first row fold) its output
        half is free."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        stream_len = Signal(CFG_BITS + 2)
        m.d.comb += stream_len.eq(cfg["t"] + fill_cycles(p.rows))
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(f.ot_i[0], ~f.obusy[1], ~f.obusy[0]))
        go = Signal()
        m.d.comb += go.eq(
            busy & ~f.comp_done & f.in_pre & if_loaded & Mux(f.cbank, wfull[1], wfull[0]) & ((f.rf_i != 0) | half_free)
        )
        preloading, streaming, last_stream = fold_phases(
            m, busy, f.comp_done, f.in_pre, go, f.pc, f.tcnt, p.rows, stream_len, f.last_pre
        )
        last_rf = Signal()
        m.d.comb += last_rf.eq(f.rf_i == cfg["n_rf"] - 1)
        with m.If(start):
            m.d.sync += [
                f.in_pre.eq(1),
                f.pc.eq(0),
                f.tcnt.eq(0),
                f.rf_i.eq(0),
                f.cf_i.eq(0),
                f.ot_i.eq(0),
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
                m.d.sync += f.in_pre.eq(1)
                with m.If(last_rf):
                    m.d.sync += [
                        f.rf_i.eq(0),
                        f.ot_i.eq(f.ot_i + 1),
                        f.cf_i.eq(Mux(f.cf_i == cfg["n_cf"] - 1, 0, f.cf_i + 1)),
                    ]
                    with m.If(f.ot_i == cfg["n_ot"] - 1):
                        m.d.sync += f.comp_done.eq(1)
                with m.Else():
                    m.d.sync += f.rf_i.eq(f.rf_i + 1)
        step_v = Signal()
        m.d.comb += step_v.eq(streaming & (f.tcnt < cfg["t"]))
        return _Phases(go, preloading, streaming, last_stream, last_rf, step_v)

    def _preload(self, m: Module, start: Any, f: _Fold, ph: _Phases, wline: Any) -> _Rows:
        """Preload cycle i: array row i's PEs take their taps from the weight line, and the row takes
        the next input channel of the group (a channel walker: reset to the group's first channel
        when an output tile starts, moved on by C/G at each new group)."""
        p, cfg = self.params, self.cfg()
        ra, ca, taps, rb = p.rows, p.cols, max_taps(p), p.weight_row_beats
        line_bytes = rb * p.stream_bytes
        weights = [
            [[Signal(signed(p.weight_bits), name=f"w_{i}_{j}_{t}") for t in range(taps)] for j in range(ca)]
            for i in range(ra)
        ]
        chw = [Signal(CFG_BITS + 2, name=f"row_chw_{i}") for i in range(ra)]
        ok = [Signal(name=f"row_ok_{i}") for i in range(ra)]
        cur_chw = Signal(CFG_BITS + 2, name="ch_chw")  # c * H * W of the next channel to hand out
        cur_c = Signal(CFG_BITS + 1, name="ch_c")  # its index within the group
        grp_chw = Signal(CFG_BITS + 2, name="ch_grp_chw")  # the group's first channel, times H * W
        with m.If(start):
            m.d.sync += [cur_chw.eq(0), cur_c.eq(0), grp_chw.eq(0)]
        with m.Elif(ph.preloading):
            m.d.sync += [cur_chw.eq(cur_chw + cfg["hw"]), cur_c.eq(cur_c + 1)]
        with m.Elif(ph.last_stream & ph.last_rf):
            next_grp = Mux(f.cf_i == cfg["n_cf"] - 1, grp_chw + cfg["cg_hw"], grp_chw)
            m.d.sync += [grp_chw.eq(next_grp), cur_chw.eq(next_grp), cur_c.eq(0)]
        for i in range(ra):
            with m.If(ph.preloading & (f.pc == i)):
                m.d.sync += [chw[i].eq(cur_chw), ok[i].eq(cur_c < cfg["cg"])]
                for j in range(ca):
                    for t in range(taps):
                        byte = wline.word_select(t * line_bytes + j, 8)
                        m.d.sync += weights[i][j][t].eq(byte[: p.weight_bits].as_signed())
        return _Rows(weights, chw, ok)

    def _row_inputs(
        self, m: Module, f: _Fold, ph: _Phases, ports: dict, rows: _Rows
    ) -> tuple[list[Any], Signal, _Ctrl]:
        """Walk (n, p, q, r, s), S fastest; every row reads its channel at that tap (operands one cycle
        later). Returns (row operands, the tap index aligned with them, the step's control)."""
        p, cfg = self.params, self.cfg()
        v = ph.step_v
        r = Signal(CFG_BITS, name="tw_r")
        s = Signal(CFG_BITS, name="tw_s")
        rw = Signal(CFG_BITS + 1, name="tw_rw")  # r * W
        tap = Signal(CFG_BITS, name="tw_tap")  # r * S + s
        nb = Signal(CFG_BITS + 2, name="tw_nb")  # n * C * H * W
        pixel = Signal(CFG_BITS + 1, name="tw_m")  # output line (n * P + p) * Q + q
        last_tap = Signal(name="tw_last_tap")
        m.d.comb += last_tap.eq(tap == cfg["taps"] - 1)
        pix_step = Signal(name="tw_pix_step")
        m.d.comb += pix_step.eq(v & last_tap)
        restart = Signal(name="tw_restart")  # out of the stream, or past an image's last pixel
        pix = pixel_walker(m, cfg, reset=restart, step=pix_step, name="pw")
        img_end = Signal(name="tw_img_end")
        m.d.comb += [img_end.eq(pix_step & (pix.index == cfg["pq"] - 1)), restart.eq(~ph.streaming | img_end)]
        with m.If(~ph.streaming):
            m.d.sync += [r.eq(0), s.eq(0), rw.eq(0), tap.eq(0), nb.eq(0), pixel.eq(0)]
        with m.Elif(v):
            m.d.sync += tap.eq(Mux(last_tap, 0, tap + 1))
            with m.If(s == cfg["s"] - 1):
                m.d.sync += s.eq(0)
                with m.If(r == cfg["r"] - 1):
                    m.d.sync += [r.eq(0), rw.eq(0), pixel.eq(pixel + 1)]
                with m.Else():
                    m.d.sync += [r.eq(r + 1), rw.eq(rw + cfg["w"])]
            with m.Else():
                m.d.sync += s.eq(s + 1)
            with m.If(img_end):  # the next image: the pixel walker restarts at pixel 0
                m.d.sync += nb.eq(nb + cfg["chw"])
        acts = []
        for i in range(p.rows):
            off = Signal(CFG_BITS + 3, name=f"row_off_{i}")
            m.d.comb += off.eq(rows.chw[i] + nb + rw + s)
            acts.append(
                read_tap(
                    m,
                    cfg,
                    ports[i],
                    p.lane_bits,
                    p.input_bits,
                    v & rows.ok[i],
                    pix.hb,
                    pix.wb,
                    pix.base,
                    r,
                    s,
                    off,
                    str(i),
                )
            )
        tap_q = Signal(CFG_BITS, name="tap_q")
        m.d.sync += tap_q.eq(tap)
        ctrl = _Ctrl(
            valid=v,
            first=tap == 0,
            last=last_tap,
            pixel=pixel,
            inject=f.rf_i != 0,
            half=f.ot_i[0],
            fin=last_tap & (pixel == cfg["npq"] - 1) & ph.last_rf,
        )
        return acts, tap_q, ctrl

    def _mac_tree(self, m: Module, acts: list[Any], rows: _Rows, tap_q: Signal) -> list[Signal]:
        """Products registered, then per column an adder tree of ``ceil(log2 rows)`` registered levels:
        a step issued at cycle t leaves its column sums at cycle t + 2 + ceil(log2 rows)."""
        p = self.params
        acc = p.acc_bits
        drop = getattr(p, "nvdla_fault", "") == "drop_tree_input"
        sums = []
        for j in range(p.cols):
            level = []
            for i in range(p.rows):
                prod = Signal(signed(acc), name=f"prod_{i}_{j}")
                # the tap's weight (a shift, not a case: Icarus evaluates it at time 0 even when constant)
                w = Cat(*rows.weights[i][j]).word_select(tap_q, p.weight_bits).as_signed()
                if not (drop and i == p.rows - 1 and p.rows > 1):
                    m.d.sync += prod.eq((acts[i] * w)[:acc].as_signed())
                level.append(prod)
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for k in range(0, len(level), 2):
                    node = Signal(signed(acc), name=f"tree_{j}_{depth}_{k // 2}")
                    pair = level[k : k + 2]
                    m.d.sync += node.eq((pair[0] + pair[1])[:acc].as_signed() if len(pair) == 2 else pair[0])
                    nxt.append(node)
                level = nxt
            sums.append(level[0])
        return sums

    def _outputs(self, m: Module, start: Any, f: _Fold, ph: _Phases, sums: list[Signal], ctrl: _Ctrl) -> None:
        """Column j sums a pixel's taps as they leave its tree, adds the previous row fold's partial sum
        (read from the output half the cycle before), registers the result and writes it the cycle
        after (two output halves of ``ofmap_depth`` lines of ``cols`` accumulators). A finished tile
        drains to the ofmap stream while the next one computes."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ca, acc, ob = p.cols, p.acc_bits, p.out_bytes
        mb = bits_for(p.ofmap_depth)
        lat = (p.rows - 1).bit_length() + 2  # issue -> tree output
        fields = [
            (ctrl.valid, 1),
            (ctrl.first, 1),
            (ctrl.last, 1),
            (ctrl.pixel[:mb], mb),
            (ctrl.inject, 1),
            (ctrl.half, 1),
            (ctrl.fin, 1),
        ]
        delayed = [skew(m, x, lat + 1, shape, f"ctl{n}") for n, (x, shape) in enumerate(fields)]
        rd = _Ctrl(*(d[lat - 1] for d in delayed))  # the partial-sum read, one cycle before the output stage
        e = _Ctrl(*(d[lat] for d in delayed))  # the output stage
        out_reg = [Signal(signed(acc), name=f"out_{j}") for j in range(ca)]
        w_v, w_m, w_h, w_fin = Signal(name="ow_v"), Signal(mb, name="ow_m"), Signal(name="ow_h"), Signal(name="ow_fin")
        m.d.sync += [w_v.eq(e.valid & e.last), w_m.eq(e.pixel), w_h.eq(e.half), w_fin.eq(e.fin)]
        dr_line = Signal(ob * 8 * ca)
        line_cat = Signal(p.out_row_beats * p.stream_bytes * 8)
        m.d.comb += line_cat.eq(dr_line)
        dr = drain_engine(
            m,
            self.ofmap,
            busy,
            start,
            f.tile_done,
            cfg["npq"],
            line_cat,
            p.out_row_beats,
            p.stream_bytes,
            line_bits=mb + 1,
        )
        d_owns = Signal()
        m.d.comb += d_owns.eq(dr.active | dr.start)
        halves = []
        for h in range(2):
            mem = Memory(shape=unsigned(ca * acc), depth=p.ofmap_depth, init=[])
            m.submodules[f"obank_{h}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            m.d.comb += [
                wp.addr.eq(w_m),
                wp.data.eq(Cat(*(x.as_unsigned() for x in out_reg))),
                wp.en.eq(w_v & (w_h == h)),
            ]
            with m.If(d_owns & (dr.half == h)):
                m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
            with m.Else():
                m.d.comb += [rp.addr.eq(rd.pixel), rp.en.eq(1)]
            halves.append(rp.data)
        ext = []
        for j in range(ca):
            tacc = Signal(signed(acc), name=f"tacc_{j}")  # the pixel's taps so far
            total = Signal(signed(acc), name=f"tsum_{j}")
            m.d.comb += total.eq((Mux(e.first, 0, tacc) + sums[j])[:acc].as_signed())
            psum = Mux(e.half, halves[1], halves[0]).word_select(j, acc).as_signed()
            with m.If(e.valid):
                m.d.sync += tacc.eq(total)
            with m.If(e.valid & e.last):
                m.d.sync += out_reg[j].eq((total + Mux(e.inject, psum, 0))[:acc].as_signed())
            word = Signal(signed(ob * 8), name=f"dext_{j}")  # sign-extended to whole output bytes
            m.d.comb += word.eq(Mux(dr.half, halves[1], halves[0]).word_select(j, acc).as_signed())
            ext.append(word.as_unsigned())
        m.d.comb += dr_line.eq(Cat(*ext))
        self._tiles(m, start, f, ph, dr, w_v & w_fin, w_h)
        finish(m, self, dr.finish & (dr.count == cfg["n_ot"] - 1))

    def _tiles(self, m: Module, start: Any, f: _Fold, ph: _Phases, dr: Any, tile_fin: Any, fin_half: Any) -> None:
        """Output-half bookkeeping: a half is busy from its tile's first fold until drained, and holds a
        finished tile from the tile's last write until drained."""
        for h in range(2):
            with m.If(start):
                m.d.sync += [f.tile_done[h].eq(0), f.obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (fin_half == h)):
                    m.d.sync += f.tile_done[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.tile_done[h].eq(0)
                with m.If(ph.go & (f.rf_i == 0) & (f.ot_i[0] == h)):
                    m.d.sync += f.obusy[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.obusy[h].eq(0)
