"""Input-stationary systolic sub-accelerator (kind ``is``, the systolic-is template).

The weight-stationary grid (``rtl.array.WsArray``) run on the transposed GEMM: the stationary
registers hold an im2col tile of the input (row i = reduction index, column j = output pixel), the
filters stream in from the left (row i sees filter k at step ``k + i``), partial sums run down the
columns and leave one line (filter k, every column) per step. Engines (timing in
``rtl.is_program.cycles``):
- ifmap loader: the whole layer input into one scratchpad replica per array column;
- pixel chain (padded by the call's own ``pad_top``/``pad_left`` registers, so a tiled call's band
  or 2-D tile runs with its halo): the output pixels of the next column fold shift into per-column coordinate
  registers, one per cycle (the first ``cols`` busy cycles, then during each column fold's last
  stream phase);
- weight loader: one dense tile (K lines of the row fold's reduction indices) per fold into a
  double-buffered weight scratchpad, a bank freed when the fold reading it ends;
- fold sequencer: ``rows`` preload cycles (cycle i: every column reads its pixel's tap of reduction
  index ``fr*rows + i`` on its replica; the values enter array row i one cycle later), then
  ``K + rows + cols - 2`` stream cycles (step t reads filter line t, skewed one cycle per row);
- outputs and drain: as the WS array's (double-buffered column-tile banks, previous row fold's
  partial sum injected at the top of each column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.array import WsArray
from coexplore.rtl.buffers import bits_for, drain_engine, finish, ifmap_replicas, run_control
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.control import fold_phases
from coexplore.rtl.im2col import SB, read_tap, reduction_walker, skew
from coexplore.rtl.params import CFG_BITS


@dataclass(frozen=True)
class _Fold:
    """The fold sequencer's registers (and ``last_pre``, driven by ``fold_phases``)."""

    in_pre: Signal  # the next cycles preload (else stream)
    pc: Signal  # preload row
    tcnt: Signal  # streaming step
    rf_i: Signal  # row fold (reduction tile)
    cf_i: Signal  # column fold (pixel tile)
    comp_done: Signal
    cbank: Signal  # weight bank of the current fold
    last_pre: Signal
    obusy: Signal  # output half h is being accumulated into (2 bits)
    tile_done: Signal  # output half h holds a finished tile (2 bits)
    ohalf: Signal  # output half of the current column fold


@dataclass(frozen=True)
class _Phases:
    go: Signal
    preloading: Signal
    streaming: Signal
    last_stream: Signal
    last_rf: Signal
    k_v: Signal  # a streaming step that carries a filter (t < K)


@dataclass(frozen=True)
class _Pixel:
    """Coordinates of one output pixel: ``hb = p*stride - pad_top``, ``wb = q*stride - pad_left``,
    ``base = n*C*H*W + hb*W + wb``; ``valid`` when the pixel exists (m < N*P*Q)."""

    hb: Signal
    wb: Signal
    base: Signal
    valid: Signal


@dataclass(frozen=True)
class _Weights:
    full: Signal  # 2 bits: bank b holds a loaded tile not yet released
    ports: list  # asynchronous read ports (consecutive words of one filter line)
    depth: int  # words per bank


def _pixel(name: str) -> _Pixel:
    return _Pixel(
        Signal(signed(SB), name=f"{name}_hb"),
        Signal(signed(SB), name=f"{name}_wb"),
        Signal(signed(SB + 1), name=f"{name}_base"),
        Signal(name=f"{name}_v"),
    )


def batch_pixel_walker(m: Module, cfg: dict[str, Any], reset: Any, step: Any, name: str) -> _Pixel:
    """Output pixels ``m = (n*P + p)*Q + q`` in order: pixel 0 on ``reset``, the next on ``step``."""
    px = _pixel(name)
    index = Signal(CFG_BITS + 1, name=f"{name}_m")
    q = Signal(CFG_BITS, name=f"{name}_q")
    p = Signal(CFG_BITS, name=f"{name}_p")
    row = Signal(signed(SB + 1), name=f"{name}_row")  # base of the output row's first pixel
    img = Signal(signed(SB + 1), name=f"{name}_img")  # n*C*H*W
    neg_pad = Signal(signed(SB), name=f"{name}_neg_pad")  # -pad_top: a tiled call pads its own top
    neg_left = Signal(signed(SB), name=f"{name}_neg_left")  # -pad_left
    neg_padw = Signal(signed(SB + 1), name=f"{name}_neg_padw")  # -(pad_top*W + pad_left)
    m.d.comb += [
        neg_pad.eq(-cfg["pad_top"]),
        neg_left.eq(-cfg["pad_left"]),
        neg_padw.eq(-cfg["pad_w"]),
        px.valid.eq(index < cfg["npq"]),
    ]
    with m.If(reset):
        m.d.sync += [
            index.eq(0),
            q.eq(0),
            p.eq(0),
            img.eq(0),
            px.hb.eq(neg_pad),
            px.wb.eq(neg_left),
            px.base.eq(neg_padw),
            row.eq(neg_padw),
        ]
    with m.Elif(step):
        m.d.sync += index.eq(index + 1)
        with m.If(q == cfg["q"] - 1):
            m.d.sync += [q.eq(0), px.wb.eq(neg_left)]
            with m.If(p == cfg["p"] - 1):
                nxt = img + cfg["chw"] + neg_padw
                m.d.sync += [p.eq(0), px.hb.eq(neg_pad), img.eq(img + cfg["chw"]), row.eq(nxt), px.base.eq(nxt)]
            with m.Else():
                m.d.sync += [
                    p.eq(p + 1),
                    px.hb.eq(px.hb + cfg["stride"]),
                    row.eq(row + cfg["stride_w"]),
                    px.base.eq(row + cfg["stride_w"]),
                ]
        with m.Else():
            m.d.sync += [q.eq(q + 1), px.wb.eq(px.wb + cfg["stride"]), px.base.eq(px.base + cfg["stride"])]
    return px


class IsAccelerator(StreamAccelerator):
    """Ports: ``start``/``busy``/``done``/``cycles``, ``cfg_*`` layer registers (held during a run),
    ``ifmap`` and ``weight`` input streams and the ``ofmap`` output stream (``stream_bytes`` wide)."""

    def elaborate(self, platform: Any) -> Module:
        p = self.params
        m = Module()
        # streamed operand (a_in) = weights, stationary = inputs
        m.submodules.array = arr = WsArray(p.rows, p.cols, p.weight_bits, p.input_bits, p.acc_bits)
        start = run_control(m, self)
        ifm = ifmap_replicas(
            m,
            self.ifmap,
            self.busy,
            start,
            self.cfg()["if_beats"],
            p.ifmap_words,
            p.stream_bytes * 8,
            list(range(p.cols)),
        )
        fold = _Fold(
            in_pre=Signal(),
            pc=Signal(bits_for(p.rows) + 1),
            tcnt=Signal(CFG_BITS + 2),
            rf_i=Signal(CFG_BITS),
            cf_i=Signal(CFG_BITS),
            comp_done=Signal(),
            cbank=Signal(),
            last_pre=Signal(),
            obusy=Signal(2),
            tile_done=Signal(2),
            ohalf=Signal(),
        )
        last_stream, last_rf = Signal(), Signal()
        wts = self._weight_loader(m, start, fold, last_stream)
        chain, chain_full = self._pixel_chain(m, start, fold, last_rf)
        ph = self._sequencer(m, start, fold, ifm.loaded, wts.full, chain_full, last_stream, last_rf)
        self._preload(m, start, fold, ph, arr, ifm.read_ports, chain)
        self._weight_stream(m, fold, ph, arr, wts)
        self._outputs(m, start, fold, ph, arr)
        return m

    def _sequencer(
        self,
        m: Module,
        start: Any,
        f: _Fold,
        if_loaded: Any,
        wfull: Any,
        chain_full: Any,
        last_stream: Signal,
        last_rf: Signal,
    ) -> _Phases:
        """Preload ``rows`` cycles, stream ``K + rows + cols - 2``; row folds inner, column folds outer.
        A fold starts once the input is loaded and its weight bank is full; the first row fold of a
        column fold also once its output half is free and its pixels have shifted in."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        m.d.comb += f.ohalf.eq(f.cf_i[0])
        stream_len = Signal(CFG_BITS + 2)
        m.d.comb += stream_len.eq(cfg["k"] + (p.rows + p.cols - 2))
        half_free = Signal()
        m.d.comb += half_free.eq(Mux(f.ohalf, ~f.obusy[1], ~f.obusy[0]))
        go = Signal()
        m.d.comb += go.eq(
            busy
            & ~f.comp_done
            & f.in_pre
            & if_loaded
            & Mux(f.cbank, wfull[1], wfull[0])
            & ((f.rf_i != 0) | (half_free & chain_full))
        )
        preloading, streaming, stream_end = fold_phases(
            m, busy, f.comp_done, f.in_pre, go, f.pc, f.tcnt, p.rows, stream_len, f.last_pre
        )
        m.d.comb += [last_stream.eq(stream_end), last_rf.eq(f.rf_i == cfg["n_rf"] - 1)]
        with m.If(start):
            m.d.sync += [
                f.in_pre.eq(1),
                f.pc.eq(0),
                f.tcnt.eq(0),
                f.rf_i.eq(0),
                f.cf_i.eq(0),
                f.comp_done.eq(0),
                f.cbank.eq(0),
            ]
        with m.Elif(preloading):
            with m.If(f.last_pre):
                m.d.sync += [f.in_pre.eq(0), f.pc.eq(0), f.tcnt.eq(0)]
            with m.Else():
                m.d.sync += f.pc.eq(f.pc + 1)
        with m.Elif(streaming):
            m.d.sync += f.tcnt.eq(f.tcnt + 1)
            with m.If(last_stream):
                m.d.sync += f.in_pre.eq(1)
                with m.If(cfg["n_rf"] != 1):  # a single row fold keeps its one weight tile
                    m.d.sync += f.cbank.eq(~f.cbank)
                with m.If(last_rf):
                    m.d.sync += [f.rf_i.eq(0), f.cf_i.eq(f.cf_i + 1)]
                    with m.If(f.cf_i == cfg["n_cf"] - 1):
                        m.d.sync += f.comp_done.eq(1)
                with m.Else():
                    m.d.sync += f.rf_i.eq(f.rf_i + 1)
        k_v = Signal()
        m.d.comb += k_v.eq(streaming & (f.tcnt < cfg["k"]))
        return _Phases(go, preloading, streaming, last_stream, last_rf, k_v)

    def _pixel_chain(self, m: Module, start: Any, f: _Fold, last_rf: Any) -> tuple[list[_Pixel], Signal]:
        """Per-column pixel coordinates of the current column fold. They shift in one per cycle (the
        walker's pixel enters column cols-1) from ``start`` and from the stream phase of a column
        fold's last row fold on, when the preloads no longer read them; ``full`` after ``cols`` shifts."""
        ca, busy = self.params.cols, self.busy
        filled = Signal(range(ca + 1), name="px_filled")
        full = Signal(name="px_full")
        shift = Signal(name="px_shift")
        m.d.comb += [full.eq(filled == ca), shift.eq(busy & ~full)]
        walker = batch_pixel_walker(m, self.cfg(), reset=start, step=shift, name="pw")
        with m.If(start | (f.last_pre & last_rf)):
            m.d.sync += filled.eq(0)
        with m.Elif(shift):
            m.d.sync += filled.eq(filled + 1)
        chain = [_pixel(f"col{j}") for j in range(ca)]
        with m.If(shift):
            for j, px in enumerate(chain):
                src = chain[j + 1] if j + 1 < ca else walker
                m.d.sync += [px.hb.eq(src.hb), px.wb.eq(src.wb), px.base.eq(src.base), px.valid.eq(src.valid)]
        return chain, full

    def _preload(
        self, m: Module, start: Any, f: _Fold, ph: _Phases, arr: WsArray, ports: dict, chain: list[_Pixel]
    ) -> None:
        """Preload cycle i: every column reads its pixel's tap of reduction index ``fr*rows + i`` (a
        running walker, reset at the start of each column fold); array row i takes the values one
        cycle later, as the replicas' synchronous read ports give them."""
        p, cfg = self.params, self.cfg()
        walk = reduction_walker(m, cfg, reset=start | (ph.last_stream & ph.last_rf), step=ph.preloading, name="rc")
        ok = Signal(name="pre_ok")
        m.d.comb += ok.eq(ph.preloading & (walk.index < cfg["red"]))
        for j, px in enumerate(chain):
            m.d.comb += arr.w_row[j].eq(
                read_tap(
                    m,
                    cfg,
                    ports[j],
                    p.lane_bits,
                    p.input_bits,
                    ok & px.valid,
                    px.hb,
                    px.wb,
                    px.base,
                    walk.r,
                    walk.s,
                    walk.offset,
                    f"c{j}",
                )
            )
        pre_q = Signal(name="pre_q")
        pc_q = Signal(f.pc.shape(), name="pc_q")
        m.d.sync += [pre_q.eq(ph.preloading), pc_q.eq(f.pc)]
        for i in range(p.rows):
            m.d.comb += arr.w_we[i].eq(pre_q & (pc_q == i))

    def _weight_loader(self, m: Module, start: Any, f: _Fold, last_stream: Any) -> _Weights:
        """Two banks of ``weight_depth`` beats; tile j (``w_tiles`` of them, ``lw`` beats, the last
        row fold's ``lw_last``) goes to bank j mod 2 once the fold that read that bank has ended."""
        p, cfg, stream, busy = self.params, self.cfg(), self.weight, self.busy
        depth = p.weight_depth
        mem = Memory(shape=unsigned(p.stream_bytes * 8), depth=2 * depth, init=[])
        m.submodules.weights = mem
        wp = mem.write_port()
        full = Signal(2, name="wfull")
        tile = Signal(CFG_BITS + 1, name="wl_tile")
        bank = Signal(name="wl_bank")
        beat = Signal(bits_for(depth) + 1, name="wl_beat")
        lrf = Signal(CFG_BITS, name="wl_rf")  # row fold of the tile being loaded
        tile_beats = Signal(CFG_BITS, name="wl_tile_beats")
        m.d.comb += [
            tile_beats.eq(Mux(lrf == cfg["n_rf"] - 1, cfg["lw_last"], cfg["lw"])),
            stream.ready.eq(busy & (tile != cfg["w_tiles"]) & ~Mux(bank, full[1], full[0])),
        ]
        take = Signal(name="w_take")
        tile_end = Signal(name="w_tile_end")
        m.d.comb += [
            take.eq(stream.valid & stream.ready),
            tile_end.eq(take & (beat == tile_beats - 1)),
            wp.addr.eq(Mux(bank, depth, 0) + beat),
            wp.data.eq(stream.payload),
            wp.en.eq(take),
        ]
        with m.If(start):
            m.d.sync += [tile.eq(0), bank.eq(0), beat.eq(0), lrf.eq(0)]
        with m.Elif(tile_end):
            m.d.sync += [beat.eq(0), bank.eq(~bank), tile.eq(tile + 1), lrf.eq(Mux(lrf == cfg["n_rf"] - 1, 0, lrf + 1))]
        with m.Elif(take):
            m.d.sync += beat.eq(beat + 1)
        release = Signal(name="w_release")
        m.d.comb += release.eq(last_stream & (cfg["n_rf"] != 1))
        for b in range(2):
            with m.If(start):
                m.d.sync += full[b].eq(0)
            with m.Elif(tile_end & (bank == b)):
                m.d.sync += full[b].eq(1)
            with m.Elif(release & (f.cbank == b)):
                m.d.sync += full[b].eq(0)
        n_ports = (p.rows + p.stream_bytes - 2) // p.stream_bytes + 1  # words one line of rows bytes spans
        return _Weights(full, [mem.read_port(domain="comb") for _ in range(n_ports)], depth)

    def _weight_stream(self, m: Module, f: _Fold, ph: _Phases, arr: WsArray, wts: _Weights) -> None:
        """Step t < K reads filter line t (bytes ``t*e .. t*e + e - 1`` of the bank, ``e`` = the fold's
        reduction indices); row i gets its byte ``i + 1`` cycles later (registered, then skewed)."""
        p, cfg = self.params, self.cfg()
        ra, bw, lb = p.rows, p.stream_bytes, p.lane_bits
        e_cur = Signal(CFG_BITS, name="w_e")
        m.d.comb += e_cur.eq(Mux(ph.last_rf, cfg["e_last"], ra))
        ptr = Signal(2 * CFG_BITS, name="w_ptr")  # byte offset of line t in the tile
        with m.If(~ph.streaming):
            m.d.sync += ptr.eq(0)
        with m.Elif(ph.k_v):
            m.d.sync += ptr.eq(ptr + e_cur)
        top = 2 * wts.depth - 1
        for j, port in enumerate(wts.ports):
            addr = Signal(2 * CFG_BITS, name=f"w_addr_{j}")
            m.d.comb += [
                addr.eq(Mux(f.cbank, wts.depth, 0) + (ptr >> lb) + j),
                port.addr.eq(Mux(addr > top, top, addr)),
            ]
        words = Signal(len(wts.ports) * bw * 8, name="w_words")
        m.d.comb += words.eq(Cat(*(port.data for port in wts.ports)))
        line = Signal(len(words), name="w_line")
        m.d.comb += line.eq(words >> Cat(Const(0, 3), ptr[:lb]) if lb else words)
        for i in range(ra):
            byte = Signal(signed(p.weight_bits), name=f"w_byte_{i}")
            m.d.comb += byte.eq(Mux(ph.k_v & (i < e_cur), line.word_select(i, 8)[: p.weight_bits].as_signed(), 0))
            m.d.comb += arr.a_in[i].eq(skew(m, byte, i + 2, byte.shape(), f"w_sk_{i}")[i + 1])

    def _outputs(self, m: Module, start: Any, f: _Fold, ph: _Phases, arr: WsArray) -> None:
        """Output banks (cols x 2 halves of ``ofmap_depth`` accumulators, one line per filter): column j
        injects the previous row fold's partial sum at the top and writes its result ``rows + 1 + j``
        cycles after its read; a finished column tile drains while the next one computes."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ra, ca, ob = p.rows, p.cols, p.out_bytes
        mb = bits_for(p.ofmap_depth)
        # column read control: (valid, filter k, inject previous partial sum, half, last row fold)
        c_v = skew(m, ph.k_v, ca, 1, "cv")
        c_k = skew(m, f.tcnt[:mb], ca, mb, "ck")
        c_inj = skew(m, f.rf_i != 0, ca, 1, "cinj")
        c_half = skew(m, f.ohalf, ca, 1, "chalf")
        c_last = skew(m, ph.last_rf, ca, 1, "clast")
        # column write control: column 0's read control delayed by rows + 1, then one cycle per column
        w0 = [
            skew(m, x, ra + 2, shape, f"wd_{n}")[-1]
            for x, shape, n in ((c_v[0], 1, "v"), (c_k[0], mb, "k"), (c_half[0], 1, "h"), (c_last[0], 1, "l"))
        ]
        w_v, w_k, w_h, w_l = (
            skew(m, x, ca, shape, f"w{n}") for x, shape, n in zip(w0, (1, mb, 1, 1), ("v", "k", "h", "l"), strict=True)
        )
        rb_o = p.out_row_beats
        row_cat = Signal(rb_o * p.stream_bytes * 8)
        dr = drain_engine(
            m, self.ofmap, busy, start, f.tile_done, cfg["k"], row_cat, rb_o, p.stream_bytes, line_bits=mb + 1
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
                # transparent: with rows = cols = K = 1 the next row fold reads a partial sum as it is written
                rp = mem.read_port(transparent_for=(wp,))
                m.d.comb += [
                    wp.addr.eq(w_k[j]),
                    wp.data.eq(arr.psum_out[j].as_unsigned()),
                    wp.en.eq(w_v[j] & (w_h[j] == h)),
                ]
                with m.If(d_owns & (dr.half == h)):
                    m.d.comb += [rp.addr.eq(dr.read_line), rp.en.eq(dr.read_en)]
                with m.Else():
                    m.d.comb += [rp.addr.eq(c_k[j]), rp.en.eq(1)]
                halves.append(rp.data)
            inj_q = Signal(name=f"inj_q_{j}")  # injection into the top of column j, one cycle after its read
            half_q = Signal(name=f"inj_half_{j}")
            m.d.sync += [inj_q.eq(c_v[j] & c_inj[j]), half_q.eq(c_half[j])]
            m.d.comb += arr.psum_in[j].eq(Mux(inj_q, Mux(half_q, halves[1], halves[0]).as_signed(), 0))
            ext = Signal(signed(ob * 8), name=f"dext_{j}")  # sign-extend to whole output bytes
            m.d.comb += ext.eq(Mux(dr.half, halves[1], halves[0]).as_signed())
            rows_data.append(ext.as_unsigned())
        m.d.comb += row_cat.eq(Cat(*rows_data))
        tile_fin = Signal()  # the last write of column cols-1 (filter K-1) in the last row fold
        m.d.comb += tile_fin.eq(w_v[ca - 1] & w_l[ca - 1] & (w_k[ca - 1] == cfg["k"] - 1))
        for h in range(2):
            with m.If(start):
                m.d.sync += [f.tile_done[h].eq(0), f.obusy[h].eq(0)]
            with m.Else():
                with m.If(tile_fin & (w_h[ca - 1] == h)):
                    m.d.sync += f.tile_done[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.tile_done[h].eq(0)
                with m.If(ph.go & (f.rf_i == 0) & (f.ohalf == h)):
                    m.d.sync += f.obusy[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.obusy[h].eq(0)
        finish(m, self, dr.finish & (dr.count == cfg["n_cf"] - 1))
