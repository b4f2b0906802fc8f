"""SCALE-Sim v3's memory system, emulated event by event: the ``scalesim`` profile's memory model.

SCALE-Sim (scalesim-project/scale-sim-v3, studied from its source; no code copied) runs a systolic
array as a matrix of per-cycle operand *demand* (one row per cycle, one column per array edge port)
and serves each row from three double-buffered scratchpads:

* **Read buffers** (ifmap, filter). The operand's *prefetch stream* is its operand matrix in a fixed
  order (per dataflow: blocks of fold tiles, read row-major or along anti-diagonals). The stream is
  cut into *sets* of ``ceil(words / 100)`` valid words. The active half holds ``A`` consecutive sets
  (a window, wrapping around the stream's end). A demanded word *hits* when any copy of its address is
  in the window; on a miss the window advances by ``P`` sets (the prefetch half's worth) and one DRAM
  fetch of ``ceil(half / bw)`` lines, one line per cycle plus one cycle of latency, is issued right
  after the previous fetch finished, until the word hits. The array waits for the fetch, and
  SCALE-Sim adds each positive wait *twice* to the row's delay (``offset += p`` then ``offset += p``
  again); a negative wait is added once. A word whose copies all lie just behind the window (fold
  boundaries of anti-diagonal streams) makes the window travel all the way around the stream.
* **Write buffer** (ofmap). Outputs fill lines of ``bw`` words. When more than half the buffer is
  used and no drain runs, a drain of up to ``ceil(half / bw)`` lines starts (one line per cycle); its
  space is credited at once. While a drain runs, a full buffer stalls the array until it ends.
* The row's delay is the largest of the three; SCALE-Sim's *compute cycles* are the last output
  row's service cycle, stalls included.

Which rows miss depends only on the demand and stream orders, never on time, so the read misses of
each operand are found first (window by window, vectorized over rows; duplicate addresses checked
with an address stamp table), then one pass over the event rows computes the stalls. No Python loop
runs per cycle or per row; only per miss, per drain and per stalled row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from coexplore.models.ir import CoexploreError

CHUNK_ROWS = 2048  # demand rows examined per vectorized step of the miss search
BLOCK_ROWS = 1 << 16  # demand rows computed at a time (bounds memory on huge layers)


class ScaleSimError(CoexploreError):
    """A layer or array the SCALE-Sim emulation cannot run."""


# ---- the layer as SCALE-Sim sees it -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """One group of a layer as SCALE-Sim's operand matrices: im2col ``M x K`` times ``K x N``.

    ``hp``/``wp`` are the padded input sizes (SCALE-Sim pads nothing: it is given the padded image).
    A GEMM is the conv with ``hp = M``, ``wp = K``, ``r = 1``, ``s = K``, ``c = 1``.
    """

    n: int
    hp: int
    wp: int
    c: int
    r: int
    s: int
    p: int
    q: int
    k: int
    stride_h: int = 1
    stride_w: int = 1
    dil_h: int = 1
    dil_w: int = 1

    @property
    def m(self) -> int:
        return self.n * self.p * self.q

    @property
    def kred(self) -> int:
        return self.r * self.s * self.c

    @property
    def has_duplicates(self) -> bool:
        """Whether an input word appears more than once in the im2col matrix."""
        overlap_h = self.r > 1 and (self.p > 1 and self.stride_h < (self.r - 1) * self.dil_h + 1)
        overlap_w = self.s > 1 and (self.q > 1 and self.stride_w < (self.s - 1) * self.dil_w + 1)
        return overlap_h or overlap_w

    def pixel_bases(self) -> np.ndarray:
        """Address of each im2col row's window origin (tap 0): ``ifmap_addr(m, k) = base[m] + tap[k]``."""
        m = np.arange(self.m, dtype=np.int64)
        n, rem = np.divmod(m, self.p * self.q)
        ho, wo = np.divmod(rem, self.q)
        return ((n * self.hp + ho * self.stride_h) * self.wp + wo * self.stride_w) * self.c

    def tap_offsets(self) -> np.ndarray:
        k = np.arange(self.kred, dtype=np.int64)
        rs, ch = np.divmod(k, self.c)
        r, s = np.divmod(rs, self.s)
        return (r * self.dil_h * self.wp + s * self.dil_w) * self.c + ch

    def ifmap_addr(self, m: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Address of im2col element (m, k), k = (r*S + s)*C + c (SCALE-Sim's column order)."""
        pq = self.p * self.q
        n, rem = np.divmod(m, pq)
        ho, wo = np.divmod(rem, self.q)
        rs, ch = np.divmod(k, self.c)
        r, s = np.divmod(rs, self.s)
        row = ho * self.stride_h + r * self.dil_h
        col = wo * self.stride_w + s * self.dil_w
        return ((n * self.hp + row) * self.wp + col) * self.c + ch


@dataclass(frozen=True, slots=True)
class Buffers:
    """Scratchpad sizes in words and DRAM bandwidth in words per cycle (None: unlimited, CALC mode)."""

    ifmap_words: int
    filter_words: int
    ofmap_words: int
    bw_words: float | None


# ---- streams: operand matrices in prefetch order --------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stream:
    """A prefetch stream: ``blocks`` stacked ``block_rows x width`` tiles, the last ``last_width`` wide.

    ``diagonal``: read along anti-diagonals of the stacked matrix (row descending within a diagonal),
    else row-major. Positions count valid words only (SCALE-Sim's sets skip the -1 padding).
    """

    blocks: int
    block_rows: int
    width: int
    last_width: int
    diagonal: bool

    @property
    def rows(self) -> int:
        return self.blocks * self.block_rows

    @property
    def length(self) -> int:
        return (self.blocks - 1) * self.block_rows * self.width + self.block_rows * self.last_width

    @property
    def last_start(self) -> int:
        return (self.blocks - 1) * self.block_rows

    def _diag_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Per diagonal: valid words before it (prefix) and its first column."""
        d = np.arange(self.rows + self.width - 1, dtype=np.int64)
        jmin = np.maximum(0, d - self.rows + 1)
        jmax = np.minimum(self.width - 1, d)
        inv = np.maximum(0, np.minimum(jmax, d - self.last_start) - np.maximum(jmin, self.last_width) + 1)
        size = jmax - jmin + 1 - inv
        prefix = np.zeros(d.size + 1, dtype=np.int64)
        np.cumsum(size, out=prefix[1:])
        return prefix, jmin

    def positions(self, gi: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Stream position of valid element (stacked row gi, column j)."""
        if not self.diagonal:
            extra = np.maximum(0, gi - self.last_start) * (self.width - self.last_width)
            return gi * self.width + j - extra
        prefix, jmin = self._tables
        d = gi + j
        jm = jmin[d]
        before_inv = np.maximum(0, np.minimum(j - 1, d - self.last_start) - np.maximum(jm, self.last_width) + 1)
        return prefix[d] + (j - jm) - before_inv

    @property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        cache = _TABLE_CACHE.get(self)
        if cache is None:
            cache = self._diag_tables()
            if len(_TABLE_CACHE) > 64:
                _TABLE_CACHE.clear()
            _TABLE_CACHE[self] = cache
        return cache

    def elements(self) -> tuple[np.ndarray, np.ndarray]:
        """(stacked row, column) of every valid element, in stream order."""
        if not self.diagonal:
            gi = np.repeat(np.arange(self.rows, dtype=np.int64), self.width)
            j = np.tile(np.arange(self.width, dtype=np.int64), self.rows)
        else:
            rows_, w = self.rows, self.width
            d = np.arange(rows_ + w - 1, dtype=np.int64)
            jmin = np.maximum(0, d - rows_ + 1)
            jmax = np.minimum(w - 1, d)
            size = jmax - jmin + 1
            start = np.zeros(d.size + 1, dtype=np.int64)
            np.cumsum(size, out=start[1:])
            dd = np.repeat(d, size)
            j = jmin[dd] + (np.arange(start[-1], dtype=np.int64) - start[dd])
            gi = dd - j
        keep = (gi < self.last_start) | (j < self.last_width)
        return gi[keep], j[keep]


_TABLE_CACHE: dict[Stream, tuple[np.ndarray, np.ndarray]] = {}


def stream_order(stream: Stream, matrix: np.ndarray) -> np.ndarray:
    """The valid entries (>= 0) of the stacked ``rows x width`` matrix in the stream's order.

    Anti-diagonals are read through a strided skew view: entry (d, j) of the view is matrix[d - j, j],
    so one C-order copy lists every diagonal, columns ascending (rows descending), as SCALE-Sim does.
    """
    if not stream.diagonal:
        flat = matrix.ravel()
        return flat[flat >= 0]
    rows_, w = matrix.shape
    padded = np.full((rows_ + 2 * (w - 1), w), -1, dtype=matrix.dtype)
    padded[w - 1 : w - 1 + rows_] = matrix
    flat = padded.ravel()
    isz = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[(w - 1) * w :], shape=(rows_ + w - 1, w), strides=(w * isz, -(w - 1) * isz), writeable=False
    )
    out = view.ravel()
    return out[out >= 0]


def _stacked(
    bases: np.ndarray, taps: np.ndarray, blocks: int, width: int, pixel_cols: bool, block_rows: int
) -> np.ndarray:
    """Stacked prefetch matrix of ifmap addresses (-1 where a partial last block is padded).

    ``pixel_cols``: columns are im2col rows (pixels) and block rows are taps (OS, IS); else columns
    are taps and block rows are pixels (WS).
    """
    dtype = np.int32 if bases.max(initial=0) + taps.max(initial=0) < 2**31 - 1 else np.int64
    if pixel_cols:
        cols = np.full(blocks * width, -1, dtype=dtype)
        cols[: bases.size] = bases
        col_part = cols.reshape(blocks, 1, width)
        row_part = taps.astype(dtype).reshape(1, block_rows, 1)
    else:
        cols = np.full(blocks * width, -1, dtype=dtype)
        cols[: taps.size] = taps
        col_part = cols.reshape(blocks, 1, width)
        row_part = bases.astype(dtype).reshape(1, block_rows, 1)
    mat = col_part + row_part
    np.copyto(mat, -1, where=col_part < 0)
    return mat.reshape(blocks * block_rows, width)


# ---- the demand of one dataflow -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Demand:
    """Fold structure of one SCALE-Sim dataflow on one array, and how demand rows map to streams."""

    dataflow: str  # "os" | "ws" | "is"
    rows: int
    cols: int
    sr: int
    sc: int
    t: int

    @property
    def row_folds(self) -> int:
        return -(-self.sr // self.rows)

    @property
    def col_folds(self) -> int:
        return -(-self.sc // self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def fold_rows(self) -> int:
        extra = self.rows + self.cols - 2 if self.dataflow == "os" else 2 * self.rows + self.cols - 2
        return self.t + extra

    @property
    def total_rows(self) -> int:
        return self.folds * self.fold_rows


def demand_for(dataflow: str, g: ConvGeometry, rows: int, cols: int) -> Demand:
    m, kred, n = g.m, g.kred, g.k
    if dataflow == "os":
        return Demand("os", rows, cols, m, n, kred)
    if dataflow == "ws":
        return Demand("ws", rows, cols, kred, n, m)
    if dataflow == "is":
        return Demand("is", rows, cols, kred, m, n)
    raise ScaleSimError(f"SCALE-Sim dataflow {dataflow!r}: expected os, ws or is")


@dataclass(frozen=True, slots=True)
class OperandDemand:
    """A read operand: its stream, and per demand row the first position and word count (0: none)."""

    stream: Stream
    nrows: int
    rows: Callable[[int, int], tuple[np.ndarray, np.ndarray]]  # (lo, cnt) of rows [start, stop)
    addresses: Callable[[], np.ndarray] | None  # stream-ordered addresses, when words repeat


def _fold_coords(dm: Demand, start: int, stop: int) -> tuple[np.ndarray, ...]:
    r = np.arange(start, stop, dtype=np.int64)
    f, t = np.divmod(r, dm.fold_rows)
    fc, fr = np.divmod(f, dm.row_folds)
    return t, fc, fr


def _valid(total: int, tile: int, idx: np.ndarray) -> np.ndarray:
    return np.minimum(tile, total - idx * tile)


def _diag_rows(stream: Stream, b: np.ndarray, t: np.ndarray, off: int, vb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tt = t - off
    c_lo = np.maximum(0, tt - stream.block_rows + 1)
    c_hi = np.minimum(np.minimum(stream.width - 1, tt), vb - 1)
    cnt = np.where(c_hi >= c_lo, c_hi - c_lo + 1, 0)
    c_lo = np.where(cnt > 0, c_lo, 0)
    gi = np.where(cnt > 0, b * stream.block_rows + tt - c_lo, 0)
    lo = np.where(cnt > 0, stream.positions(gi, c_lo), 0)
    return lo, cnt


def _flipped_rows(
    stream: Stream, b: np.ndarray, fr: np.ndarray, t: np.ndarray, rows: int, vr: np.ndarray, vb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    inside = (t < rows) & (rows - 1 - t < vr)
    gi = np.where(inside, b * stream.block_rows + fr * rows + (rows - 1 - t), 0)
    lo = np.where(inside, stream.positions(gi, np.zeros_like(gi)), 0)
    return lo, np.where(inside, vb, 0)


def read_operands(dm: Demand, g: ConvGeometry) -> tuple[OperandDemand, OperandDemand]:
    """The ifmap and filter read demand of the rows, computed block by block on request."""
    R, C = dm.rows, dm.cols
    Fr, Fc = dm.row_folds, dm.col_folds
    s_if, s_fl = streams(dm)

    def coords(start: int, stop: int) -> tuple[np.ndarray, ...]:
        t, fc, fr = _fold_coords(dm, start, stop)
        return t, fc, fr, _valid(dm.sr, R, fr), _valid(dm.sc, C, fc)

    if dm.dataflow == "os":

        def if_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _diag_rows(s_if, fr, t, 0, vr)

        def fl_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _diag_rows(s_fl, fc, t, 0, vc)

        def if_addr() -> np.ndarray:  # block fr: IF[fr rows, :]^T -> row = k, col = pixel offset
            return stream_order(s_if, _stacked(g.pixel_bases(), g.tap_offsets(), Fr, R, True, dm.t))
    elif dm.dataflow == "ws":

        def if_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _diag_rows(s_if, fr, t, R, vr)

        def fl_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _flipped_rows(s_fl, fc, fr, t, R, vr, vc)

        def if_addr() -> np.ndarray:  # block fr: IF[:, fr cols] -> row = pixel, col = k offset
            return stream_order(s_if, _stacked(g.pixel_bases(), g.tap_offsets(), Fr, R, False, dm.t))
    else:

        def if_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _flipped_rows(s_if, fc, fr, t, R, vr, vc)

        def fl_rows(a: int, b: int):
            t, fc, fr, vr, vc = coords(a, b)
            return _diag_rows(s_fl, fr, t, R, vr)

        def if_addr() -> np.ndarray:  # block fc: IF^T[:, fc cols] -> row = k, col = pixel offset
            return stream_order(s_if, _stacked(g.pixel_bases(), g.tap_offsets(), Fc, C, True, dm.sr))

    n = dm.total_rows
    return (
        OperandDemand(s_if, n, if_rows, if_addr if g.has_duplicates else None),
        OperandDemand(s_fl, n, fl_rows, None),
    )


def streams(dm: Demand) -> tuple[Stream, Stream]:
    """The ifmap and filter prefetch streams of a dataflow (see ``read_operands``)."""
    R, C, Fr, Fc = dm.rows, dm.cols, dm.row_folds, dm.col_folds
    last_r, last_c = dm.sr - (Fr - 1) * R, dm.sc - (Fc - 1) * C
    if dm.dataflow == "os":
        return Stream(Fr, dm.t, R, last_r, True), Stream(Fc, dm.t, C, last_c, True)
    if dm.dataflow == "ws":
        return Stream(Fr, dm.t, R, last_r, True), Stream(Fc, dm.sr, C, last_c, False)
    return Stream(Fc, dm.sr, C, last_c, False), Stream(Fr, dm.t, R, last_r, True)


def sram_accesses(dm: Demand) -> tuple[int, int, int]:
    """(ifmap reads, filter reads, ofmap writes) the array makes, summed over folds in closed form."""
    T, sr, sc, Fr, Fc = dm.t, dm.sr, dm.sc, dm.row_folds, dm.col_folds
    if dm.dataflow == "os":
        return Fc * T * sr, Fr * T * sc, sr * sc
    if dm.dataflow == "ws":
        return Fc * T * sr, sr * sc, Fr * T * sc
    return sr * sc, Fc * T * sr, Fr * T * sc


def write_counts(dm: Demand, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Valid ofmap words written by each demand row of [start, stop)."""
    t, fc, fr = _fold_coords(dm, start, dm.total_rows if stop is None else stop)
    R, C = dm.rows, dm.cols
    vr = _valid(dm.sr, R, fr)
    vc = _valid(dm.sc, C, fc)
    if dm.dataflow == "os":
        base = t - (dm.t - 1)  # t' = base - c must lie in [R - vr, R)
        c_lo = np.maximum(0, base - (R - 1))
        c_hi = np.minimum(vc - 1, base - (R - vr))
    else:
        base = t - (2 * R - 1)  # t' = base - c in [0, T)
        c_lo = np.maximum(0, base - dm.t + 1)
        c_hi = np.minimum(vc - 1, base)
    return np.where(c_hi >= c_lo, c_hi - c_lo + 1, 0).astype(np.int64)


class WriteSchedule:
    """Cumulative ofmap writes over the rows, from per-fold totals and one row profile per fold shape."""

    def __init__(self, dm: Demand) -> None:
        self.dm = dm
        self.flen = dm.fold_rows
        fc, fr = np.divmod(np.arange(dm.folds, dtype=np.int64), dm.row_folds)
        self.vr = _valid(dm.sr, dm.rows, fr)
        self.vc = _valid(dm.sc, dm.cols, fc)
        per_fold = self.vr * self.vc if dm.dataflow == "os" else dm.t * self.vc
        self.fold_cum = np.zeros(dm.folds + 1, dtype=np.int64)
        np.cumsum(per_fold, out=self.fold_cum[1:])
        self.total = int(self.fold_cum[-1])
        self.nrows = dm.total_rows
        self._shapes: dict[tuple[int, int], tuple[np.ndarray, int, int]] = {}

    def _shape(self, f: int) -> tuple[np.ndarray, int, int]:
        """(cumulative writes within the fold, first and last writing row) of fold f's shape."""
        key = (int(self.vr[f]), int(self.vc[f]))
        got = self._shapes.get(key)
        if got is None:
            w = write_counts(self.dm, f * self.flen, (f + 1) * self.flen)
            cum = np.zeros(self.flen + 1, dtype=np.int64)
            np.cumsum(w, out=cum[1:])
            nz = np.flatnonzero(w)
            got = (cum, int(nz[0]), int(nz[-1]))
            self._shapes[key] = got
        return got

    def before(self, r: int) -> int:
        """Words written by rows < r."""
        if r >= self.nrows:
            return self.total
        f, t = divmod(r, self.flen)
        return int(self.fold_cum[f] + self._shape(f)[0][t])

    def count(self, r: int) -> int:
        return self.before(r + 1) - self.before(r)

    def row_of_word(self, x: int) -> int:
        """Row that writes the x-th word (1-based); ``nrows`` past the last."""
        if x > self.total:
            return self.nrows
        f = int(np.searchsorted(self.fold_cum, x, side="left")) - 1
        cum = self._shape(f)[0]
        t = int(np.searchsorted(cum, x - self.fold_cum[f], side="left")) - 1
        return f * self.flen + t

    def first_writing_row(self, r: int) -> int:
        """First row >= r that writes a word."""
        while r < self.nrows:
            f, t = divmod(r, self.flen)
            _, a, b = self._shape(f)
            if t <= b:
                return f * self.flen + max(t, a)
            r = (f + 1) * self.flen
        return self.nrows


# ---- read buffer: which rows miss -------------------------------------------------------------------
@dataclass(slots=True)
class ReadBuffer:
    """Window state of one read buffer (sets of the stream held by the active half)."""

    length: int
    set_words: int
    sets: int
    active: int
    step: int
    start: int = 0

    @classmethod
    def make(cls, length: int, buffer_words: int) -> ReadBuffer:
        total = buffer_words
        active_words = int(math.ceil(total * 0.5))
        prefetch_words = total - active_words
        set_words = int(math.ceil(total / 100))
        sets = length // set_words + 1
        active = min(sets, int(math.ceil(active_words / set_words)))
        step = min(sets - active, int(math.ceil(prefetch_words / set_words)))
        return cls(length, set_words, sets, active, step)

    def in_window(self, s: np.ndarray) -> np.ndarray:
        end = (self.start + self.active) % self.sets
        if self.start < end:
            return (s >= self.start) & (s < end)
        return (s >= self.start) | (s < end)

    def window_ranges(self) -> list[tuple[int, int]]:
        """Position ranges [a, b) the active half holds."""
        end = (self.start + self.active) % self.sets
        sw, n = self.set_words, self.length
        if self.start < end:
            return [(self.start * sw, min(end * sw, n))]
        return [(self.start * sw, n), (0, min(end * sw, n))]


def read_misses(op: OperandDemand, buffer_words: int) -> list[tuple[int, int]]:
    """(row, fetches) for every demand row that misses: its count of window advances."""
    buf = ReadBuffer.make(op.stream.length, buffer_words)
    if buf.step == 0:
        return []
    addrs = op.addresses() if op.addresses is not None else None
    stamp = None
    wid = 0
    if addrs is not None:
        stamp = np.zeros(int(addrs.max()) + 1, dtype=np.int32)

    def restamp() -> None:
        nonlocal wid
        wid += 1
        for a, b in buf.window_ranges():
            stamp[addrs[a:b]] = wid

    if stamp is not None:
        restamp()
    nrows = op.nrows
    events: list[tuple[int, int]] = []
    sw = buf.set_words
    block = [0, 0, None, None]  # cached rows [start, stop) and their lo, cnt

    def rows(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        if not (block[0] <= a and b <= block[1]):
            block[0], block[1] = a, min(nrows, max(b, a + BLOCK_ROWS))
            block[2], block[3] = op.rows(block[0], block[1])
        return block[2][a - block[0] : b - block[0]], block[3][a - block[0] : b - block[0]]

    r = 0
    while r < nrows:
        stop = min(nrows, r + CHUNK_ROWS)
        lo, cnt = rows(r, stop)
        has = cnt > 0
        own = buf.in_window(lo // sw) & buf.in_window((lo + cnt - 1) // sw)
        cand = np.flatnonzero(has & ~own)
        if cand.size and stamp is not None:
            cand = _stamp_misses(cand, lo, cnt, addrs, stamp, wid)
        if not cand.size:
            r = stop
            continue
        row = r + int(cand[0])
        fetches = 0
        first = int(lo[row - r])
        for x in range(first, first + int(cnt[row - r])):
            while not _hit(buf, x, addrs, stamp, wid):
                buf.start = (buf.start + buf.step) % buf.sets
                fetches += 1
                if stamp is not None:
                    restamp()
                if fetches > 2 * buf.sets + 2:
                    raise ScaleSimError("SCALE-Sim emulation: a demanded word is missing from its stream")
        events.append((row, fetches))
        r = row + 1
    return events


def _hit(buf: ReadBuffer, x: int, addrs, stamp, wid: int) -> bool:
    if stamp is not None:
        return bool(stamp[addrs[x]] == wid)
    return bool(buf.in_window(np.int64(x // buf.set_words)))


def _stamp_misses(
    cand: np.ndarray, lo: np.ndarray, cnt: np.ndarray, addrs: np.ndarray, stamp: np.ndarray, wid: int
) -> np.ndarray:
    """Candidate rows (own positions outside the window) where some word has no copy in the window."""
    out = []
    step = 256
    for i in range(0, cand.size, step):
        rows = cand[i : i + step]
        c = cnt[rows]
        starts = np.repeat(lo[rows], c)
        offs = np.arange(starts.size) - np.repeat(np.cumsum(c) - c, c)
        ok = stamp[addrs[starts + offs]] == wid
        row_of = np.repeat(np.arange(rows.size), c)
        bad = np.zeros(rows.size, dtype=bool)
        np.logical_or.at(bad, row_of[~ok], True)
        hit = rows[bad]
        if hit.size:
            out.append(hit[:1])
            break
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


# ---- write buffer ------------------------------------------------------------------------------------
@dataclass(slots=True)
class WriteBuffer:
    """SCALE-Sim's ofmap buffer: lines of ``bw`` words, drained half a buffer at a time."""

    total: int
    active: int
    drain_lines: int
    bw: int
    free: int
    drain_end: int = 0
    open_fill: int = 0  # words in the line being filled
    pending: list = field(default_factory=list)  # [lines, words in the last line] groups not drained
    drained_words: int = 0

    @classmethod
    def make(cls, words: int, bw: float) -> WriteBuffer:
        active = int(math.ceil(words * 0.5))
        drain = words - active
        b = max(1, int(math.ceil(bw)))
        return cls(words, active, int(math.ceil(drain / bw)), b, words)

    def store(self, n: int) -> None:
        """Store ``n`` words with no event (lines fill up)."""
        self.free -= n
        filled = self.open_fill + n
        full, self.open_fill = divmod(filled, self.bw)
        if full:
            self._append(full, self.bw)

    def _append(self, lines: int, last_words: int) -> None:
        if self.pending and self.pending[-1][1] == self.bw and last_words == self.bw:
            self.pending[-1][0] += lines
        else:
            self.pending.append([lines, last_words])

    def start_drain(self, cycle: int) -> int:
        """Close the open line and drain up to ``drain_lines`` lines from ``cycle``; returns lines moved."""
        if self.open_fill:
            self._append(1, self.open_fill)
            self.open_fill = 0
        left = self.drain_lines
        lines = 0
        last_words = self.bw
        while left and self.pending:
            group = self.pending[0]
            take = min(left, group[0])
            lines += take
            left -= take
            last_words = group[1] if take == group[0] else self.bw
            group[0] -= take
            if group[0] == 0:
                self.pending.pop(0)
        if lines == 0:
            return 0
        data = lines * self.bw - (self.bw - last_words)
        self.free += data
        self.drained_words += data
        self.drain_end = cycle + lines - 1
        return lines


# ---- the timing pass -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScaleSimRun:
    """Result of one layer group: SCALE-Sim's report items and traffic (words)."""

    compute_cycles: int  # SCALE-Sim "Total Cycles": last output row's cycle, stalls included
    stall_cycles: int
    stall_free_cycles: int
    ifmap_dram_words: int
    filter_dram_words: int
    ofmap_dram_words: int
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    prefetch_cycles: int  # initial fill of the active halves, before cycle 0
    drain_tail_cycles: int  # final drain after the last row


@dataclass(frozen=True, slots=True)
class TraceEvent:
    row: int
    cycle: int
    what: str
    stall: int


def run_layer(
    dataflow: str,
    g: ConvGeometry,
    rows: int,
    cols: int,
    buffers: Buffers,
    on_event: Callable[[TraceEvent], None] | None = None,
) -> ScaleSimRun:
    """Emulate SCALE-Sim v3 on one layer group."""
    dm = demand_for(dataflow, g, rows, cols)
    nrows = dm.total_rows
    stall_free = nrows - 1
    if_reads, fl_reads, writes_total = sram_accesses(dm)
    bw = buffers.bw_words
    if bw is None:  # CALC: estimated bandwidth never stalls; each stream is fetched once
        s_if, s_fl = streams(dm)
        return ScaleSimRun(
            stall_free, 0, stall_free, s_if.length, s_fl.length, writes_total, if_reads, fl_reads, writes_total, 0, 0
        )
    ws = WriteSchedule(dm)
    ifm, flt = read_operands(dm, g)
    if_events = read_misses(ifm, buffers.ifmap_words)
    fl_events = read_misses(flt, buffers.filter_words)
    fetch_if = _fetch_cycles(buffers.ifmap_words, bw)
    fetch_fl = _fetch_cycles(buffers.filter_words, bw)
    reads: dict[int, list[int]] = {}
    for row, n in if_events:
        reads.setdefault(row, [0, 0])[0] = n
    for row, n in fl_events:
        reads.setdefault(row, [0, 0])[1] = n
    read_rows = sorted(reads)
    wb = WriteBuffer.make(buffers.ofmap_words, bw)
    done_if = [-1]
    done_fl = [-1]
    stall = 0
    max_out = 0
    last_event = -1
    r = 0
    ri = 0
    while r < nrows:
        nxt_read = read_rows[ri] if ri < len(read_rows) else nrows
        nxt = min(nxt_read, _next_write_event(wb, ws, r, nrows, stall))
        if nxt > r:
            wb.store(ws.before(nxt) - ws.before(r))
        if nxt >= nrows:
            break
        cycle = nxt + stall
        s_if = s_fl = 0
        if nxt == nxt_read:
            n_if, n_fl = reads[nxt]
            s_if = _read_delay(done_if, n_if, fetch_if, cycle)
            s_fl = _read_delay(done_fl, n_fl, fetch_fl, cycle)
            ri += 1
        s_of = _write_row(wb, ws.count(nxt), cycle)
        max_out = max(max_out, cycle + s_of)
        last_event = nxt
        delay = max(s_if, s_fl, s_of)
        if on_event is not None:  # the stalled row: ifmap/filter fetches it waited for, its delay
            fetches = reads[nxt] if nxt == nxt_read else (0, 0)
            on_event(TraceEvent(nxt, cycle, f"row-if{fetches[0]}-fl{fetches[1]}", delay))
        stall += max(delay, 0)
        r = nxt + 1
    last = nrows - 1
    # SCALE-Sim reports the latest output service cycle; rows that were not events add no delay.
    compute = max_out if last_event == last else max(max_out, last + stall)
    lines_if = len(if_events) and sum(n for _, n in if_events)
    lines_fl = len(fl_events) and sum(n for _, n in fl_events)
    dram_if = _initial_words(ifm.stream.length, buffers.ifmap_words, bw) + lines_if * _fetch_words(
        buffers.ifmap_words, bw
    )
    dram_fl = _initial_words(flt.stream.length, buffers.filter_words, bw) + lines_fl * _fetch_words(
        buffers.filter_words, bw
    )
    prefetch = max(
        _initial_lines(ifm.stream.length, buffers.ifmap_words, bw),
        _initial_lines(flt.stream.length, buffers.filter_words, bw),
    )
    remaining = writes_total - wb.drained_words
    tail = int(math.ceil(max(remaining, 0) / wb.bw)) + max(
        0, -(-max(remaining, 0) // max(1, wb.drain_lines * wb.bw)) - 1
    )
    return ScaleSimRun(
        compute, stall, stall_free, dram_if, dram_fl, writes_total, if_reads, fl_reads, writes_total, prefetch, tail
    )


def _fetch_cycles(buffer_words: int, bw: float) -> int:
    prefetch = buffer_words - int(math.ceil(buffer_words * 0.5))
    return int(math.ceil(prefetch / bw)) + 1


def _fetch_words(buffer_words: int, bw: float) -> int:
    prefetch = buffer_words - int(math.ceil(buffer_words * 0.5))
    return int(math.ceil(prefetch / bw) * math.ceil(bw))


def _initial_lines(length: int, buffer_words: int, bw: float) -> int:
    active = int(math.ceil(buffer_words * 0.5))
    return min(int(math.ceil(active / bw)), int(math.ceil(length / bw)))


def _initial_words(length: int, buffer_words: int, bw: float) -> int:
    return _initial_lines(length, buffer_words, bw) * int(math.ceil(bw))


def _read_delay(done: list[int], fetches: int, fetch_cycles: int, cycle: int) -> int:
    """Row delay of a read buffer that issues ``fetches`` back-to-back fetches for this row."""
    if fetches == 0:
        return 0
    offset = 1
    for _ in range(fetches):
        done[0] += fetch_cycles
        p = done[0] - (cycle + offset)
        offset += p
        if p > 0:
            offset += p
    return offset - 1


def _write_row(wb: WriteBuffer, n: int, cycle: int) -> int:
    """Store one row's ``n`` words word by word (only for rows where a write event can happen)."""
    cur = cycle
    offset = 0
    for _ in range(n):
        wb.store(1)
        if cur < wb.drain_end:
            if not wb.free > 0:
                offset += max(wb.drain_end - cur, 0)
                cur = wb.drain_end
        elif wb.free < wb.active:
            wb.start_drain(cur)
    return offset


def _next_write_event(wb: WriteBuffer, ws: WriteSchedule, r: int, nrows: int, stall: int) -> int:
    """First row >= r where the write buffer may start a drain or stall (rows map to cycles row+stall)."""
    base = ws.before(r)
    cand = nrows
    # A stall: the buffer fills while a drain is still running.
    full_row = ws.row_of_word(base + max(wb.free, 1))  # the word that leaves no free space
    if r <= full_row < nrows and full_row + stall < wb.drain_end:
        cand = full_row
    # A drain start: the first word stored at or after the drain's end with more than half used.
    first = max(r, wb.drain_end - stall)
    if first < nrows:
        need = wb.total - wb.active + 1 - (wb.total - wb.free)  # words until more than half is used
        row = max(first, ws.row_of_word(base + max(need, 1)))
        if row < nrows:
            cand = min(cand, ws.first_writing_row(row))
    return max(cand, r)
