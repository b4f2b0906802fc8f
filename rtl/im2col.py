"""im2col address generation shared by the arrays that read the resident input tap by tap.

A tap of output pixel ``m = p*Q + q`` at reduction index ``red = (c*R + r)*S + s`` reads input
``in[c][p*stride - pad + r][q*stride - pad + s]`` (zero outside the image). Two running walkers
produce its halves without multipliers: ``reduction_walker`` steps ``red`` (and keeps r, s and the
tap's offset ``c*H*W + r*W + s``), ``pixel_walker`` steps ``m`` (and keeps ``hb = p*stride - pad``,
``wb = q*stride - pad`` and ``base = hb*W + wb``; a tiled call's ``pad_top``/``pad_left`` registers
replace ``pad`` where the kind has them). ``read_tap`` adds them for one reader (an array
row) and returns the operand one cycle later, as the replica's synchronous read port gives it.
``skew`` delays a value one more cycle per array row (systolic operand skew).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth import Module, Mux, Signal, Value, signed

from coexplore.rtl.params import CFG_BITS

SB = CFG_BITS + 3  # signed width of pixel coordinates (room for -pad and for h + r)


@dataclass(frozen=True)
class ReductionWalk:
    index: Signal  # red, the reduction index (one past the last tap once done)
    r: Signal
    s: Signal
    offset: Value  # c*H*W + r*W + s


def reduction_walker(
    m: Module, cfg: dict[str, Any], reset: Any, step: Any, name: str, registered_offset: bool = False
) -> ReductionWalk:
    """(c, r, s) of a running reduction index: cleared on ``reset``, advanced on ``step``.
    ``registered_offset`` keeps the offset in a register of its own (one adder per step, 18 more
    flip-flops) for a reader that adds it to a read address in the same cycle (OS row 0); else
    it is the sum ``c*H*W + r*W + s`` of the walker's registers."""
    red = Signal(CFG_BITS + 1, name=f"{name}_red")
    r = Signal(CFG_BITS, name=f"{name}_r")
    s = Signal(CFG_BITS, name=f"{name}_s")
    rw = Signal(CFG_BITS + 1, name=f"{name}_rw")  # r*W
    cb = Signal(CFG_BITS + 1, name=f"{name}_cb")  # c*H*W
    off = Signal(CFG_BITS + 2, name=f"{name}_off")  # c*H*W + r*W + s (registered_offset)

    def set_off(value: Any) -> None:  # the offset register's update (none when the offset is a sum)
        if registered_offset:
            m.d.sync += off.eq(value)

    with m.If(reset):
        m.d.sync += [red.eq(0), r.eq(0), s.eq(0), rw.eq(0), cb.eq(0)]
        set_off(0)
    with m.Elif(step):
        m.d.sync += red.eq(red + 1)
        with m.If(s == cfg["s"] - 1):
            m.d.sync += s.eq(0)
            with m.If(r == cfg["r"] - 1):
                m.d.sync += [r.eq(0), rw.eq(0), cb.eq(cb + cfg["hw"])]
                set_off(cb + cfg["hw"])
            with m.Else():
                m.d.sync += [r.eq(r + 1), rw.eq(rw + cfg["w"])]
                set_off(cb + rw + cfg["w"])
        with m.Else():
            m.d.sync += s.eq(s + 1)
            set_off(off + 1)
    return ReductionWalk(red, r, s, off if registered_offset else cb + rw + s)


@dataclass(frozen=True)
class PixelWalk:
    index: Signal  # m = p*Q + q
    hb: Signal  # p*stride - pad
    wb: Signal  # q*stride - pad
    base: Signal  # hb*W + wb


def pixel_walker(m: Module, cfg: dict[str, Any], reset: Any, step: Any, name: str) -> PixelWalk:
    """Output pixel coordinates in raster order: set to pixel 0 on ``reset``, advanced on ``step``."""
    index = Signal(CFG_BITS + 1, name=f"{name}_m")
    q = Signal(CFG_BITS, name=f"{name}_q")
    hb = Signal(signed(SB), name=f"{name}_hb")
    wb = Signal(signed(SB), name=f"{name}_wb")
    base = Signal(signed(SB + 1), name=f"{name}_base")
    row = Signal(signed(SB + 1), name=f"{name}_row")  # base of the row's first pixel
    neg_pad = Signal(signed(SB), name=f"{name}_neg_pad")
    neg_padw = Signal(signed(SB + 1), name=f"{name}_neg_padw")
    neg_left = Signal(signed(SB), name=f"{name}_neg_left")
    # a tiled call pads its top and left edges on its own (pad_w = pad_top*W + pad_left)
    top, left = cfg.get("pad_top", cfg["pad"]), cfg.get("pad_left", cfg["pad"])
    m.d.comb += [neg_pad.eq(-top), neg_left.eq(-left), neg_padw.eq(-cfg["pad_w"])]
    with m.If(reset):
        m.d.sync += [index.eq(0), q.eq(0), hb.eq(neg_pad), wb.eq(neg_left), base.eq(neg_padw), row.eq(neg_padw)]
    with m.Elif(step):
        m.d.sync += index.eq(index + 1)
        with m.If(q == cfg["q"] - 1):
            m.d.sync += [
                q.eq(0),
                hb.eq(hb + cfg["stride"]),
                wb.eq(neg_left),
                row.eq(row + cfg["stride_w"]),
                base.eq(row + cfg["stride_w"]),
            ]
        with m.Else():
            m.d.sync += [q.eq(q + 1), wb.eq(wb + cfg["stride"]), base.eq(base + cfg["stride"])]
    return PixelWalk(index, hb, wb, base)


def skew(m: Module, first: Any, n: int, shape: Any, name: str) -> list[Any]:
    """``[first, first delayed 1 cycle, ..., delayed n-1 cycles]``."""
    out = [first]
    for i in range(1, n):
        reg = Signal(shape, name=f"{name}_{i}")
        m.d.sync += reg.eq(out[-1])
        out.append(reg)
    return out


def read_tap(
    m: Module,
    cfg: dict[str, Any],
    port: Any,
    lane_bits: int,
    operand_bits: int,
    valid: Any,
    hb: Any,
    wb: Any,
    base: Any,
    r: Any,
    s: Any,
    offset: Any,
    name: str,
) -> Value:
    """Issue the read of tap (pixel ``hb, wb, base``; reduction ``r, s, offset``) on a replica's
    read ``port``; returns the signed operand of the next cycle, zero for padding or when not ``valid``."""
    hh = Signal(signed(SB + 1), name=f"rd_h_{name}")
    ww = Signal(signed(SB + 1), name=f"rd_w_{name}")
    addr = Signal(signed(SB + 2), name=f"rd_addr_{name}")
    inb = Signal(name=f"rd_inb_{name}")
    m.d.comb += [
        hh.eq(hb + r),
        ww.eq(wb + s),
        addr.eq(base + offset),
        inb.eq(valid & (hh >= 0) & (hh < cfg["h"]) & (ww >= 0) & (ww < cfg["w"])),
        port.addr.eq(addr[lane_bits:]),
    ]
    inb_q = Signal(name=f"rd_inb_q_{name}")
    lane_q = Signal(max(1, lane_bits), name=f"rd_lane_q_{name}")
    m.d.sync += [inb_q.eq(inb), lane_q.eq(addr[:lane_bits] if lane_bits else 0)]
    byte = Signal(8, name=f"rd_byte_{name}")
    m.d.comb += byte.eq(port.data.word_select(lane_q, 8) if lane_bits else port.data)
    return Mux(inb_q, byte[:operand_bits].as_signed(), 0)
