"""ShiDianNao-like output-stationary array (kind ``sdn``, template shidiannao), after Du et al.,
ISCA 2015: every PE accumulates one output pixel, a kernel weight is broadcast to all PEs per cycle.

Conv: PE (i, j) holds output (k, p = fr*rows + i, q = fc*cols + j); at step t (``c, r, s`` of the
reduction, S fastest) every PE adds ``w[k][c][r][s] * in[c][p*stride - pad + r][q*stride - pad + s]``.
Array row i reads one input line per cycle from its own ifmap replica: the ``(cols - 1)*stride + 1``
bytes from ``in[c][p*stride - pad + r][q0*stride - pad + s]`` on, PE j taking byte ``j*stride``
(ShiDianNao's neighbour FIFOs would save those reads, not cycles: not built). ``pad`` above is the
call's own ``pad_top`` (rows) and ``pad_left`` (columns) registers, so one output-row band or 2-D tile
of a layer (host-side tiling, ``dataflows.tiling``) runs with its halo exactly. GEMM: row i reads the
input of token m, shared by its columns (column stride 0), and column j gets its own weight.

Per fold (host side and timing: ``rtl.sdn_program``): ``T`` issue cycles (input lines and the
weight read from the scratchpads), the last product one cycle later (the template's fill 1), then
``rows`` cycles copying one array row of accumulators per cycle into the fold's output half (the
template's drain), from which the drain engine streams them out while the next folds compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from coexplore.rtl.buffers import bits_for, drain_engine, finish, run_control
from coexplore.rtl.component import StreamAccelerator
from coexplore.rtl.im2col import reduction_walker
from coexplore.rtl.params import CFG_BITS
from coexplore.rtl.sdn_program import SDN_MAX_STRIDE, line_beats

AB = CFG_BITS + 6  # signed width of input coordinates and addresses


@dataclass(frozen=True)
class _Fold:
    """Fold-level state: phase, counters, and the fold's output-pixel origin."""

    active: Signal  # inside a fold (after its first cycle)
    tc: Signal  # cycle index within the fold
    count: Signal  # folds finished
    comp_done: Signal
    fr: Signal
    fc: Signal
    fit: Signal  # fold within the current weight tile
    cbank: Signal  # weight bank the folds read
    ohalf: Signal  # output half the fold writes
    obusy: Signal  # 2 bits: half holds a tile not yet drained
    tile_done: Signal  # 2 bits: half holds a finished tile
    p0: Signal  # fr*rows
    q0: Signal  # fc*cols
    hb0: Signal  # row 0's p*stride - pad
    rbase: Signal  # row 0's (p*stride - pad)*W
    wb0: Signal  # column 0's q*stride - pad


@dataclass(frozen=True)
class _Phases:
    go: Signal  # a fold starts this cycle
    cur: Signal  # cycle index within the running fold
    issue: Signal  # step ``cur`` reads its operands
    compute_end: Signal  # the fold's last product is added this cycle
    copy: Signal  # array row ``cur - T - 1`` moves to the output half
    last: Signal  # the fold's last cycle


class SdnAccelerator(StreamAccelerator):
    """The generated ShiDianNao-like accelerator (``rtl.sdn_program`` is its host side)."""

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        start = run_control(m, self)
        f = self._state()
        if_loaded, ports = self._ifmap(m, start)
        wfull, wports, depth = self._weight_loader(m, start, f)
        ph = self._sequencer(m, start, f, if_loaded, wfull)
        a = self._inputs(m, start, f, ph, ports)
        b = self._weights(m, start, f, ph, wports, depth)
        accs = self._array(m, ph, a, b)
        self._outputs(m, start, f, ph, accs)
        return m

    def _state(self) -> _Fold:
        p = self.params
        return _Fold(
            active=Signal(name="f_active"),
            tc=Signal(CFG_BITS + 2, name="f_tc"),
            count=Signal(CFG_BITS + 1, name="f_count"),
            comp_done=Signal(name="comp_done"),
            fr=Signal(CFG_BITS, name="f_fr"),
            fc=Signal(CFG_BITS, name="f_fc"),
            fit=Signal(CFG_BITS, name="f_fit"),
            cbank=Signal(name="f_cbank"),
            ohalf=Signal(name="f_ohalf"),
            obusy=Signal(2, name="f_obusy"),
            tile_done=Signal(2, name="f_tile_done"),
            p0=Signal(CFG_BITS + 1, name="f_p0"),
            q0=Signal(CFG_BITS + 1 + max(1, p.cols.bit_length()), name="f_q0"),
            hb0=Signal(signed(AB), name="f_hb0"),
            rbase=Signal(signed(AB), name="f_rbase"),
            wb0=Signal(signed(AB), name="f_wb0"),
        )

    def _ifmap(self, m: Module, start: Any) -> tuple[Signal, list[list[Any]]]:
        """The whole input, streamed in once into one replica per array row; each replica has the
        synchronous read ports one input line spans (``cols - 1`` strides past any byte lane)."""
        p, cfg, stream, busy = self.params, self.cfg(), self.ifmap, self.busy
        bw = p.stream_bytes
        n_ports = -(-(bw + (p.cols - 1) * SDN_MAX_STRIDE) // bw)
        cnt = Signal(CFG_BITS + 1, name="if_cnt")
        loaded = Signal(name="if_loaded")
        we = Signal(name="if_we")
        m.d.comb += [loaded.eq(cnt == cfg["if_beats"]), stream.ready.eq(busy & ~loaded)]
        m.d.comb += we.eq(stream.valid & stream.ready)
        with m.If(start):
            m.d.sync += cnt.eq(0)
        with m.Elif(we):
            m.d.sync += cnt.eq(cnt + 1)
        ports = []
        for i in range(p.rows):
            mem = Memory(shape=unsigned(bw * 8), depth=p.ifmap_words, init=[])
            m.submodules[f"ifmap_{i}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(cnt), wp.data.eq(stream.payload), wp.en.eq(we)]
            ports.append([mem.read_port(transparent_for=()) for _ in range(n_ports)])
        return loaded, ports

    def _weight_loader(self, m: Module, start: Any, f: _Fold) -> tuple[Signal, list[Any], int]:
        """Two banks of ``weight_depth`` beats; tile w (``lw`` beats) goes to bank w mod 2 once the
        last fold reading that bank has computed. Returns (full flags, read ports, bank depth)."""
        p, cfg, stream, busy = self.params, self.cfg(), self.weight, self.busy
        depth = p.weight_depth
        mem = Memory(shape=unsigned(p.stream_bytes * 8), depth=2 * depth, init=[])
        m.submodules.weights = mem
        wp = mem.write_port()
        full = Signal(2, name="wfull")
        tile = Signal(CFG_BITS + 1, name="wl_tile")
        bank = Signal(name="wl_bank")
        beat = Signal(bits_for(depth) + 1, name="wl_beat")
        m.d.comb += stream.ready.eq(busy & (tile != cfg["w_tiles"]) & ~Mux(bank, full[1], full[0]))
        take = Signal(name="w_take")
        tile_end = Signal(name="w_tile_end")
        m.d.comb += [
            take.eq(stream.valid & stream.ready),
            tile_end.eq(take & (beat == cfg["lw"] - 1)),
            wp.addr.eq(Mux(bank, depth, 0) + beat),
            wp.data.eq(stream.payload),
            wp.en.eq(take),
        ]
        with m.If(start):
            m.d.sync += [tile.eq(0), bank.eq(0), beat.eq(0)]
        with m.Elif(tile_end):
            m.d.sync += [beat.eq(0), bank.eq(~bank), tile.eq(tile + 1)]
        with m.Elif(take):
            m.d.sync += beat.eq(beat + 1)
        release = Signal(name="w_release")  # set by the sequencer: the tile's last fold has computed
        self._w_release = release
        for b in range(2):
            with m.If(start):
                m.d.sync += full[b].eq(0)
            with m.Elif(tile_end & (bank == b)):
                m.d.sync += full[b].eq(1)
            with m.Elif(release & (f.cbank == b)):
                m.d.sync += full[b].eq(0)
        ports = [mem.read_port(transparent_for=()) for _ in range(line_beats(p))]
        return full, ports, depth

    def _sequencer(self, m: Module, start: Any, f: _Fold, if_loaded: Any, wfull: Any) -> _Phases:
        """Folds back to back: output channel (or nothing, GEMM) outer, column fold, row fold inner.
        A fold starts once the input and its weight tile are in and its output half has drained."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        go, run, cur = Signal(name="go"), Signal(name="run"), Signal(CFG_BITS + 2, name="cur")
        m.d.comb += [
            go.eq(
                busy
                & ~f.comp_done
                & ~f.active
                & if_loaded
                & Mux(f.cbank, wfull[1], wfull[0])
                & ~Mux(f.ohalf, f.obusy[1], f.obusy[0])
            ),
            run.eq(go | f.active),
            cur.eq(f.tc),
        ]
        issue, compute_end, copy, last = (Signal(name=n) for n in ("issue", "compute_end", "copy", "last"))
        m.d.comb += [
            issue.eq(run & (cur < cfg["red"])),
            compute_end.eq(run & (cur == cfg["red"])),
            copy.eq(run & (cur > cfg["red"])),
            last.eq(run & (cur == cfg["red"] + p.rows)),
            self._w_release.eq(compute_end & (f.fit == cfg["fpt"] - 1)),
        ]
        with m.If(start):
            m.d.sync += [
                f.active.eq(0),
                f.tc.eq(0),
                f.count.eq(0),
                f.comp_done.eq(0),
                f.fr.eq(0),
                f.fc.eq(0),
                f.fit.eq(0),
                f.cbank.eq(0),
                f.ohalf.eq(0),
                f.p0.eq(0),
                f.q0.eq(0),
                f.hb0.eq(-cfg["pad_top"]),
                f.rbase.eq(-cfg["pad_rw"]),
                f.wb0.eq(-cfg["pad_left"]),
            ]
        with m.Elif(last):
            m.d.sync += [f.active.eq(0), f.tc.eq(0), f.count.eq(f.count + 1), f.ohalf.eq(~f.ohalf)]
            with m.If(f.count == cfg["n_folds"] - 1):
                m.d.sync += f.comp_done.eq(1)
            with m.If(f.fit == cfg["fpt"] - 1):
                m.d.sync += [f.fit.eq(0), f.cbank.eq(~f.cbank)]
            with m.Else():
                m.d.sync += f.fit.eq(f.fit + 1)
            with m.If(f.fr == cfg["n_rf"] - 1):
                m.d.sync += [f.fr.eq(0), f.p0.eq(0), f.hb0.eq(-cfg["pad_top"]), f.rbase.eq(-cfg["pad_rw"])]
                with m.If(f.fc == cfg["n_cf"] - 1):
                    m.d.sync += [f.fc.eq(0), f.q0.eq(0), f.wb0.eq(-cfg["pad_left"])]
                with m.Else():
                    m.d.sync += [f.fc.eq(f.fc + 1), f.q0.eq(f.q0 + p.cols), f.wb0.eq(f.wb0 + cfg["q_step"])]
            with m.Else():
                m.d.sync += [
                    f.fr.eq(f.fr + 1),
                    f.p0.eq(f.p0 + cfg["p_step"]),
                    f.hb0.eq(f.hb0 + cfg["hb_step"]),
                    f.rbase.eq(f.rbase + cfg["base_step"]),
                ]
        with m.Elif(run):
            m.d.sync += [f.active.eq(1), f.tc.eq(cur + 1)]
        return _Phases(go, cur, issue, compute_end, copy, last)

    def _inputs(self, m: Module, start: Any, f: _Fold, ph: _Phases, ports: list[list[Any]]) -> list[list[Any]]:
        """Step t: row i reads the input line of its pixel row at tap (c, r, s) (zero outside the
        image or the layer); PE (i, j) gets byte ``j * cst`` of it the next cycle."""
        p, cfg = self.params, self.cfg()
        lb = p.lane_bits
        walk = reduction_walker(m, cfg, reset=start | ph.last, step=ph.issue, name="rw")
        col_ok = []
        ww = f.wb0 + walk.s
        for j in range(p.cols):  # column j's input column q*stride - pad + s, and its pixel
            wj = Signal(signed(AB), name=f"in_w_{j}")
            ok, ok_q = Signal(name=f"col_ok_{j}"), Signal(name=f"col_ok_q_{j}")
            m.d.comb += [
                wj.eq(ww),
                ok.eq(ph.issue & (f.q0 + j < cfg["qlim"]) & (wj >= 0) & (wj < cfg["w"])),
            ]
            m.d.sync += ok_q.eq(ok)
            col_ok.append(ok_q)
            ww = wj + cfg["cst"]
        cst_q = Signal(range(SDN_MAX_STRIDE + 1), name="cst_q")
        m.d.comb += cst_q.eq(cfg["cst"])
        out = []
        hb, rb = f.hb0, f.rbase
        for i in range(p.rows):
            hbi, rbi, hh, addr = (Signal(signed(AB), name=f"in_{n}_{i}") for n in ("hb", "rb", "hh", "addr"))
            ok, ok_q = Signal(name=f"row_ok_{i}"), Signal(name=f"row_ok_q_{i}")
            lane_q = Signal(max(1, lb), name=f"in_lane_q_{i}")
            m.d.comb += [
                hbi.eq(hb),
                rbi.eq(rb),
                hh.eq(hbi + walk.r),
                addr.eq(rbi + f.wb0 + walk.offset),
                ok.eq(ph.issue & (f.p0 + i < cfg["p"]) & (hh >= 0) & (hh < cfg["h"])),
            ]
            for k, port in enumerate(ports[i]):  # out-of-range words are only read for masked bytes
                m.d.comb += port.addr.eq((addr >> lb) + k)
            m.d.sync += [ok_q.eq(ok), lane_q.eq(addr[:lb] if lb else 0)]
            words = Cat(*(port.data for port in ports[i]))
            line = Signal(len(words), name=f"in_line_{i}")
            m.d.comb += line.eq(words >> (lane_q * 8) if lb else words)
            row = []
            for j in range(p.cols):
                pick = Array(line.word_select(j * c, 8) for c in range(SDN_MAX_STRIDE + 1))[cst_q]
                x = Signal(signed(p.input_bits), name=f"x_{i}_{j}")
                m.d.comb += x.eq(Mux(ok_q & col_ok[j], pick[: p.input_bits].as_signed(), 0))
                row.append(x)
            out.append(row)
            hb, rb = hbi + cfg["stride"], rbi + cfg["stride_w"]
        return out

    def _weights(self, m: Module, start: Any, f: _Fold, ph: _Phases, ports: list[Any], depth: int) -> list[Any]:
        """Step t reads weight byte t of the tile (conv: broadcast to every PE) or weight line t
        (GEMM: byte j for column j); the values arrive the next cycle, with the inputs."""
        p, cfg = self.params, self.cfg()
        bw, lb = p.stream_bytes, p.lane_bits
        ptr = Signal(2 * CFG_BITS, name="w_ptr")  # byte offset of step t in the tile
        with m.If(start | ph.last):
            m.d.sync += ptr.eq(0)
        with m.Elif(ph.issue):
            m.d.sync += ptr.eq(ptr + Mux(cfg["gemm"], len(ports) * bw, 1))
        top = 2 * depth - 1
        for k, port in enumerate(ports):
            addr = Signal(2 * CFG_BITS, name=f"w_addr_{k}")
            m.d.comb += [addr.eq(Mux(f.cbank, depth, 0) + (ptr >> lb) + k), port.addr.eq(Mux(addr > top, top, addr))]
        lane_q, gemm_q = Signal(max(1, lb), name="w_lane_q"), Signal(name="w_gemm_q")
        m.d.sync += [lane_q.eq(ptr[:lb] if lb else 0), gemm_q.eq(cfg["gemm"])]
        line = Cat(*(port.data for port in ports))
        bcast = Signal(8, name="w_bcast")
        m.d.comb += bcast.eq(ports[0].data.word_select(lane_q, 8) if lb else ports[0].data[:8])
        out = []
        for j in range(p.cols):
            wj = Signal(signed(p.weight_bits), name=f"wt_{j}")
            m.d.comb += wj.eq(Mux(gemm_q, line.word_select(j, 8), bcast)[: p.weight_bits].as_signed())
            out.append(wj)
        return out

    def _array(self, m: Module, ph: _Phases, a: list[list[Any]], b: list[Any]) -> list[list[Signal]]:
        """rows x cols accumulators: the product of step t is added the cycle after its issue; the
        first step of a fold starts from zero."""
        p = self.params
        mac_v, first_q = Signal(name="mac_v"), Signal(name="mac_first")
        m.d.sync += [mac_v.eq(ph.issue), first_q.eq(ph.issue & (ph.cur == 0))]
        accs = []
        for i in range(p.rows):
            row = []
            for j in range(p.cols):
                acc = Signal(signed(p.acc_bits), name=f"acc_{i}_{j}")
                with m.If(mac_v):
                    m.d.sync += acc.eq(Mux(first_q, 0, acc) + a[i][j] * b[j])
                row.append(acc)
            accs.append(row)
        return accs

    def _outputs(self, m: Module, start: Any, f: _Fold, ph: _Phases, accs: list[list[Signal]]) -> None:
        """Output halves of ``rows`` lines: the fold's copy cycles write array row ``cur - T - 1``
        into its half; a finished half drains (``rows`` lines) while later folds compute."""
        p, cfg, busy = self.params, self.cfg(), self.busy
        ob, rb_o, bw = p.out_bytes, p.out_row_beats, p.stream_bytes
        width = rb_o * bw * 8
        lines = []
        for i, row in enumerate(accs):
            exts = []
            for j, acc in enumerate(row):
                ext = Signal(signed(ob * 8), name=f"oext_{i}_{j}")
                m.d.comb += ext.eq(acc)
                exts.append(ext.as_unsigned())
            line = Signal(width, name=f"oline_{i}")
            m.d.comb += line.eq(Cat(*exts))
            lines.append(line)
        row_i = Signal(range(max(2, p.rows)), name="copy_row")
        m.d.comb += row_i.eq(ph.cur - cfg["red"] - 1)
        line_data = Signal(width, name="d_data")
        dr = drain_engine(
            m, self.ofmap, busy, start, f.tile_done, p.rows, line_data, rb_o, bw, line_bits=bits_for(p.rows) + 1
        )
        datas = []
        for h in range(2):
            mem = Memory(shape=unsigned(width), depth=p.rows, init=[])
            m.submodules[f"obank_{h}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            m.d.comb += [
                wp.addr.eq(row_i),
                wp.data.eq(Array(lines)[row_i]),
                wp.en.eq(ph.copy & (f.ohalf == h)),
                rp.addr.eq(dr.read_line),
                rp.en.eq(dr.read_en & (dr.half == h)),
            ]
            datas.append(rp.data)
        m.d.comb += line_data.eq(Mux(dr.half, datas[1], datas[0]))
        for h in range(2):
            with m.If(start):
                m.d.sync += [f.tile_done[h].eq(0), f.obusy[h].eq(0)]
            with m.Else():
                with m.If(ph.last & (f.ohalf == h)):
                    m.d.sync += f.tile_done[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.tile_done[h].eq(0)
                with m.If(ph.go & (f.ohalf == h)):
                    m.d.sync += f.obusy[h].eq(1)
                with m.Elif(dr.finish & (dr.half == h)):
                    m.d.sync += f.obusy[h].eq(0)
        finish(m, self, dr.finish & (dr.count == cfg["n_folds"] - 1))
