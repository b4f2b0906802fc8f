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
  SCALE-Sim counts each fetch (and the initial fill) as ``ceil(half / bw)`` lines, while the window
  moves by whole sets; so its reported DRAM reads can fall short of the words the window covered,
  by less than one set per fetch (e.g. 1,024 reads for a 1,029-word stream in a 1,024-word buffer).
  The emulation keeps SCALE-Sim's accounting.
* **Write buffer** (ofmap). Outputs fill lines of ``bw`` words. When more than half the buffer is
  used and no drain runs, a drain of up to ``ceil(half / bw)`` lines starts (one line per cycle); its
  space is credited at once. While a drain runs, a full buffer stalls the array until it ends.
* The row's delay is the largest of the three; SCALE-Sim's *compute cycles* are the last output
  row's service cycle, stalls included.

Which rows miss depends only on the demand and stream orders, never on time, so the read misses of
each operand are found first, then one pass over the event rows computes the stalls. The miss search
screens rows in growing chunks against the window (NumPy over rows; a demand that repeats every
column fold is computed once per period); duplicate addresses are checked with an address stamp table
rewritten only when the window moved; a missing word's advances come in closed form from the sets of
its copies (found from the im2col structure), never one fetch at a time. The write buffer stores runs
of words between drain starts and stalls. No Python loop runs per cycle, per row or per word; only
per miss, per drain and per stalled row.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from coexplore.models.ir import CoexploreError

FIRST_CHUNK_ROWS = 128  # demand rows examined right after a miss (misses cluster)
CHUNK_ROWS = 1 << 14  # at most this many per vectorized step of the miss search (doubling up to it)
BLOCK_ROWS = 1 << 16  # demand rows computed at a time (bounds memory on huge layers)
STAMP_IDS = 255  # window ids a uint8 stamp table holds before it is cleared


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


def stream_addresses(stream: Stream, bases: np.ndarray, taps: np.ndarray, pixel_cols: bool) -> np.ndarray:
    """Ifmap addresses of the stream's valid words in stream order (int32 when they fit: half the
    memory traffic of building them; slices are widened to intp where they index the stamp table).

    The stacked matrix has ``stream.blocks`` blocks of ``block_rows x width``: with ``pixel_cols``,
    columns are im2col rows (pixels) and block rows are taps (OS, IS); else columns are taps and
    block rows are pixels (WS). Anti-diagonals are read through a strided skew view of the matrix
    built inside a padded buffer: entry (d, j) of the view is matrix[d - j, j], so one copy lists
    every diagonal, columns ascending (rows descending), as SCALE-Sim does; only the diagonals that
    can hold padding (the first and last ``width - 1``, and those through a partial last block) are
    filtered.
    """
    blocks, w, br = stream.blocks, stream.width, stream.block_rows
    dtype: type[np.signedinteger] = np.int32 if bases.max(initial=0) + taps.max(initial=0) < 2**31 - 1 else np.int64
    cols = np.full(blocks * w, -1, dtype=dtype)
    col_vals, row_vals = (bases, taps) if pixel_cols else (taps, bases)
    cols[: col_vals.size] = col_vals
    col_part = cols.reshape(blocks, 1, w)
    row_part = row_vals.astype(dtype).reshape(1, br, 1)
    rows_, ls, lw = stream.rows, stream.last_start, stream.last_width
    if not stream.diagonal:
        mat = np.add(col_part, row_part).reshape(rows_, w)
        if lw == w:
            return mat.ravel()
        return np.concatenate((mat[:ls].ravel(), mat[ls:, :lw].ravel()))
    padded = np.empty((rows_ + 2 * (w - 1), w), dtype=dtype)
    padded[: w - 1] = -1
    padded[w - 1 + rows_ :] = -1
    mat = padded[w - 1 : w - 1 + rows_]
    np.add(col_part, row_part, out=mat.reshape(blocks, br, w))
    if lw < w:
        mat[ls:, lw:] = -1
    flat = padded.ravel()
    isz = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[(w - 1) * w :], shape=(rows_ + w - 1, w), strides=(w * isz, -(w - 1) * isz), writeable=False
    )
    out = view.ravel()
    if not out.flags.writeable:  # ravel keeps the read-only view when it is already contiguous
        out = out.copy()
    head = (w - 1) * w
    tail = max(w - 1, min(rows_, ls + lw) if lw < w else rows_) * w
    if tail <= head:
        return out[out >= 0]
    first, last = out[:head], out[tail:]
    first, last = first[first >= 0], last[last >= 0]
    out[head - first.size : head] = first  # compacted in place around the unfiltered middle
    out[tail : tail + last.size] = last
    return out[head - first.size : tail + last.size]


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
    rows: Callable[[int, int], SparseRows]  # rows of [start, stop) that read words: (row - start, lo, cnt)
    addresses: Callable[[], np.ndarray] | None  # stream-ordered addresses, when words repeat
    copies: Callable[[int], np.ndarray] | None = None  # stream positions holding an address
    period: int = 0  # the demand repeats every ``period`` rows (0: no period used)


def _fold_coords(dm: Demand, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step within the fold, column fold, row fold) of demand rows ``r``."""
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


RowsFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
PATTERN_ROWS = 1 << 20  # largest repeating row pattern computed once and reused


SparseRows = tuple[np.ndarray, np.ndarray, np.ndarray]  # (rows with words, relative to start; lo; cnt)


def _sparse(lo: np.ndarray, cnt: np.ndarray) -> SparseRows:
    nz = np.flatnonzero(cnt)
    return nz, lo[nz], cnt[nz]


def _repeating(dm: Demand, fn: RowsFn, depends: str) -> tuple[Callable[[int, int], SparseRows], int]:
    """``rows(start, stop)`` (the rows that read words, with their first position and count) of an
    operand, and the period its demand repeats with (0: none). ``depends`` "fr": the demand depends on
    the row fold only, so folds ``fc*Fr + fr`` repeat one pattern of ``Fr`` folds for every column
    fold (computed once, returned as the same arrays for each period); "fc": every row fold of a
    column fold repeats its first; "head": only a fold's first R rows demand (the flipped blocks of
    ``_flipped_rows``), computed for those rows only."""
    flen, Fr, Fc = dm.fold_rows, dm.row_folds, dm.col_folds
    period = Fr * flen
    if depends == "fr" and Fc > 1 and period <= PATTERN_ROWS:
        pattern = _sparse(*fn(np.arange(period, dtype=np.int64)))

        def by_row_fold(a: int, b: int) -> SparseRows:
            if a % period == 0 and b - a == period:
                return pattern
            return _sparse(*fn(np.arange(a, b, dtype=np.int64)))

        return by_row_fold, period
    if depends == "fc" and Fr > 1 and Fc * flen <= PATTERN_ROWS:
        base = (np.arange(Fc, dtype=np.int64)[:, None] * period + np.arange(flen, dtype=np.int64)).ravel()
        lo1, cnt1 = fn(base)

        def by_col_fold(a: int, b: int) -> SparseRows:
            f, t = np.divmod(np.arange(a, b, dtype=np.int64), flen)
            idx = f // Fr * flen + t
            return _sparse(lo1[idx], cnt1[idx])

        return by_col_fold, 0
    if depends == "head":  # only the first R steps of a fold demand words

        def head(a: int, b: int) -> SparseRows:
            f0, f1 = a // flen, -(-b // flen)
            r = (np.arange(f0, f1, dtype=np.int64)[:, None] * flen + np.arange(min(dm.rows, flen))).ravel()
            r = r[(r >= a) & (r < b)]
            lo, cnt = fn(r)
            nz = np.flatnonzero(cnt)
            return r[nz] - a, lo[nz], cnt[nz]

        return head, 0
    return (lambda a, b: _sparse(*fn(np.arange(a, b, dtype=np.int64)))), 0


def read_operands(dm: Demand, g: ConvGeometry) -> tuple[OperandDemand, OperandDemand]:
    """The ifmap and filter read demand of the rows, computed block by block on request."""
    R, C = dm.rows, dm.cols
    s_if, s_fl = streams(dm)

    def by_fr(stream: Stream, off: int) -> RowsFn:  # anti-diagonals of row fold fr's block
        def fn(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t, _, fr = _fold_coords(dm, r)
            return _diag_rows(stream, fr, t, off, _valid(dm.sr, R, fr))

        return fn

    def by_fc(stream: Stream) -> RowsFn:  # anti-diagonals of column fold fc's block
        def fn(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t, fc, _ = _fold_coords(dm, r)
            return _diag_rows(stream, fc, t, 0, _valid(dm.sc, C, fc))

        return fn

    def flipped(stream: Stream) -> RowsFn:  # rows of column fold fc's block, row fold fr's rows
        def fn(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t, fc, fr = _fold_coords(dm, r)
            return _flipped_rows(stream, fc, fr, t, R, _valid(dm.sr, R, fr), _valid(dm.sc, C, fc))

        return fn

    if dm.dataflow == "os":  # ifmap block fr: IF[fr rows, :]^T -> row = k, col = pixel offset
        if_rows = _repeating(dm, by_fr(s_if, 0), "fr")
        fl_rows = _repeating(dm, by_fc(s_fl), "fc")
    elif dm.dataflow == "ws":  # ifmap block fr: IF[:, fr cols] -> row = pixel, col = k offset
        if_rows = _repeating(dm, by_fr(s_if, R), "fr")
        fl_rows = _repeating(dm, flipped(s_fl), "head")
    else:  # ifmap block fc: IF^T[:, fc cols] -> row = k, col = pixel offset
        if_rows = _repeating(dm, flipped(s_if), "head")
        fl_rows = _repeating(dm, by_fr(s_fl, R), "fr")

    def if_addr() -> np.ndarray:
        return stream_addresses(s_if, g.pixel_bases(), g.tap_offsets(), dm.dataflow != "ws")

    n = dm.total_rows
    (if_fn, if_period), (fl_fn, fl_period) = if_rows, fl_rows
    ifmap = OperandDemand(s_if, n, if_fn, None, None, if_period)
    if g.has_duplicates:
        ifmap = OperandDemand(s_if, n, if_fn, if_addr, _copy_finder(dm, g, s_if), if_period)
    return ifmap, OperandDemand(s_fl, n, fl_fn, None, None, fl_period)


def _copy_finder(dm: Demand, g: ConvGeometry, stream: Stream) -> Callable[[int], np.ndarray]:
    """Stream positions of every copy of an ifmap address, found from the im2col structure: a copy is
    a (pixel, tap) pair of the address's channel whose window origin is the address minus the tap."""
    bases = g.pixel_bases()
    taps = g.tap_offsets()
    inv = np.full(int(bases.max(initial=0)) + 1, -1, dtype=np.int64)
    inv[bases] = np.arange(bases.size, dtype=np.int64)
    kred = g.kred

    def find(addr: int) -> np.ndarray:
        k = np.arange(addr % g.c, kred, g.c, dtype=np.int64)
        b = addr - taps[k]
        ok = (b >= 0) & (b < inv.size)
        k, b = k[ok], b[ok]
        pix = inv[b]
        ok = pix >= 0
        k, pix = k[ok], pix[ok]
        if dm.dataflow == "ws":  # columns are taps in blocks of R, block rows are pixels
            blk, j = np.divmod(k, dm.rows)
            gi = blk * dm.t + pix
        else:  # os (blocks of R pixels) and is (blocks of C pixels); block rows are taps
            blk, j = np.divmod(pix, dm.rows if dm.dataflow == "os" else dm.cols)
            gi = blk * kred + k
        return stream.positions(gi, j)

    return find


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
    t, fc, fr = _fold_coords(dm, np.arange(start, dm.total_rows if stop is None else stop, dtype=np.int64))
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
    """Cumulative ofmap writes over the rows, from per-fold totals and one row profile per fold shape.

    Held as Python lists: the timing pass asks one row or word at a time, where ``bisect`` on a list
    is far cheaper than a NumPy call on a scalar.
    """

    def __init__(self, dm: Demand) -> None:
        self.dm = dm
        self.flen = dm.fold_rows
        fc, fr = np.divmod(np.arange(dm.folds, dtype=np.int64), dm.row_folds)
        vr = _valid(dm.sr, dm.rows, fr)
        vc = _valid(dm.sc, dm.cols, fc)
        per_fold = vr * vc if dm.dataflow == "os" else dm.t * vc
        cum = np.zeros(dm.folds + 1, dtype=np.int64)
        np.cumsum(per_fold, out=cum[1:])
        self.fold_cum: list[int] = cum.tolist()
        self.shape_of: list[tuple[int, int]] = list(zip(vr.tolist(), vc.tolist()))
        self.total = self.fold_cum[-1]
        self.nrows = dm.total_rows
        self._shapes: dict[tuple[int, int], tuple[list[int], int, int]] = {}

    def _shape(self, f: int) -> tuple[list[int], int, int]:
        """(cumulative writes within the fold, first and last writing row) of fold f's shape."""
        key = self.shape_of[f]
        got = self._shapes.get(key)
        if got is None:
            w = write_counts(self.dm, f * self.flen, (f + 1) * self.flen)
            cum = np.zeros(self.flen + 1, dtype=np.int64)
            np.cumsum(w, out=cum[1:])
            nz = np.flatnonzero(w)
            got = (cum.tolist(), int(nz[0]), int(nz[-1]))
            self._shapes[key] = got
        return got

    def before(self, r: int) -> int:
        """Words written by rows < r."""
        if r >= self.nrows:
            return self.total
        f, t = divmod(r, self.flen)
        return self.fold_cum[f] + self._shape(f)[0][t]

    def count(self, r: int) -> int:
        return self.before(r + 1) - self.before(r)

    def row_of_word(self, x: int) -> int:
        """Row that writes the x-th word (1-based); ``nrows`` past the last."""
        if x > self.total:
            return self.nrows
        f = bisect_left(self.fold_cum, x) - 1
        cum = self._shape(f)[0]
        t = bisect_left(cum, x - self.fold_cum[f]) - 1
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

    def window_ranges(self) -> list[tuple[int, int]]:
        """Position ranges [a, b) the active half holds."""
        end = (self.start + self.active) % self.sets
        sw, n = self.set_words, self.length
        if self.start < end:
            return [(self.start * sw, min(end * sw, n))]
        return [(self.start * sw, n), (0, min(end * sw, n))]


def read_misses(op: OperandDemand, buffer_words: int) -> list[tuple[int, int]]:
    """(row, fetches) for every demand row that misses: its count of window advances.

    Rows are screened a chunk at a time: a row whose own positions lie in the window hits; with
    duplicate addresses, a row whose own positions lie outside is checked against an address stamp
    table of the window. A missing row is then resolved word by word in closed form: the number of
    advances until the window holds the word (its own set, or any copy's set), never stepping the
    window one fetch at a time. The stamp table is rewritten only when the window moved.
    """
    buf = ReadBuffer.make(op.stream.length, buffer_words)
    if buf.step == 0:
        return []
    addrs: np.ndarray | None = None
    stamp: np.ndarray | None = None
    if op.addresses is not None:
        addrs = op.addresses()
        stamp = np.zeros(int(addrs.max()) + 1, dtype=np.uint8)
    wid = 0
    stamped = -1  # window start the stamp table holds (-1: none)
    sw, nsets, active, step = buf.set_words, buf.sets, buf.active, buf.step
    limit = 2 * nsets + 2
    nrows = op.nrows
    events: list[tuple[int, int]] = []

    def advances(sets: list[int], done: int) -> int:
        """Window advances until some set of ``sets`` is in the window (``done`` advances so far)."""
        start = buf.start
        for k in range(limit - done + 1):
            st = (start + k * step) % nsets
            for s in sets:
                if (s - st) % nsets < active:
                    return k
        raise ScaleSimError("SCALE-Sim emulation: a demanded word is missing from its stream")

    b_hi = 0  # demand rows [b_lo, b_hi) computed; their rows with words are rows_nz (i: next to examine)
    b_lo = i = n_nz = 0
    rows_nz = lo_all = cnt_all = s_lo_all = s_hi_all = np.empty(0, dtype=np.int64)
    last_block: SparseRows | None = None
    chunk = FIRST_CHUNK_ROWS
    while True:
        if i >= n_nz:
            if b_hi >= nrows:
                break
            b_lo, b_hi = b_hi, min(nrows, b_hi + (op.period or BLOCK_ROWS))
            block_rows = op.rows(b_lo, b_hi)
            if block_rows is not last_block:  # a repeating period returns the same arrays: sets reused
                last_block = block_rows
                rows_nz, lo_all, cnt_all = block_rows
                s_lo_all = lo_all // sw
                s_hi_all = (lo_all + cnt_all - 1) // sw
            i, n_nz = 0, rows_nz.size
            continue
        stop = min(n_nz, i + chunk)
        s_lo, s_hi = s_lo_all[i:stop], s_hi_all[i:stop]
        start = buf.start
        end = start + active
        if end <= nsets:  # s_lo <= s_hi: both in [start, end)
            out = (s_lo < start) | (s_hi >= end)
        else:  # the window wraps around the stream's end
            end -= nsets
            out = ((s_lo < start) & (s_lo >= end)) | ((s_hi < start) & (s_hi >= end))
        first_out = int(out.argmax())
        hit = -1
        if out[first_out]:
            if stamp is None:
                hit = i + first_out
            else:
                assert addrs is not None
                if stamped != start:
                    wid = _restamp(stamp, addrs, buf, wid)
                    stamped = start
                hit = _stamp_misses(np.flatnonzero(out) + i, lo_all, cnt_all, addrs, stamp, wid)
        if hit < 0:
            i = stop
            chunk = min(2 * chunk, CHUNK_ROWS)
            continue
        chunk = FIRST_CHUNK_ROWS
        row = b_lo + int(rows_nz[hit])
        first = int(lo_all[hit])
        n = int(cnt_all[hit])
        i = hit + 1
        fetches = 0
        if stamp is None:  # words in ascending sets: one check per set
            for s in range(first // sw, (first + n - 1) // sw + 1):
                k = advances([s], fetches)
                fetches += k
                buf.start = (buf.start + k * step) % nsets
        else:
            assert addrs is not None and op.copies is not None
            x, end_x = first, first + n
            while x < end_x:
                if stamped == buf.start:  # skip to the next word with no copy in the window
                    ok = stamp[addrs[x:end_x].astype(np.intp)] == wid
                    x += int(ok.argmin()) if not ok.all() else end_x - x
                    if x >= end_x:
                        break
                copy_sets = (op.copies(int(addrs[x])) // sw).tolist()
                k = advances(copy_sets, fetches)
                if k:
                    fetches += k
                    buf.start = (buf.start + k * step) % nsets
                    wid = _restamp(stamp, addrs, buf, wid)
                    stamped = buf.start
                x += 1
        events.append((row, fetches))
    return events


def _restamp(stamp: np.ndarray, addrs: np.ndarray, buf: ReadBuffer, wid: int) -> int:
    """Mark every address the window holds with a new window id (uint8: cleared when ids run out)."""
    wid += 1
    if wid > STAMP_IDS:
        stamp.fill(0)
        wid = 1
    for a, b in buf.window_ranges():
        stamp[addrs[a:b].astype(np.intp)] = wid
    return wid


def _stamp_misses(
    cand: np.ndarray, lo: np.ndarray, cnt: np.ndarray, addrs: np.ndarray, stamp: np.ndarray, wid: int
) -> int:
    """The first candidate row (own positions outside the window) with a word that has no copy in the
    window; -1 when every candidate hits.

    Candidates are checked in growing groups. Consecutive demand rows mostly read consecutive stream
    positions, so a group's words are checked as one slice of the stream (a cumulative count of the
    missing words gives each row's); a group spread thin over the stream is checked word by word.
    """
    group = 64
    i = 0
    while i < cand.size:
        rows = cand[i : i + group]
        i += group
        group = min(4 * group, 4096)
        lo_c = lo[rows]
        c = cnt[rows]
        hi_c = lo_c + c
        a, b = int(lo_c.min()), int(hi_c.max())
        words = int(c.sum())
        if b - a <= 4 * words + 1024:
            missing = np.zeros(b - a + 1, dtype=np.int64)
            np.cumsum(stamp[addrs[a:b].astype(np.intp)] != wid, out=missing[1:])
            bad = missing[hi_c - a] > missing[lo_c - a]
        else:
            ends = np.cumsum(c)
            starts = np.repeat(lo_c - (ends - c), c)
            ok = stamp[addrs[starts + np.arange(starts.size)].astype(np.intp)] == wid
            bad = np.zeros(rows.size, dtype=bool)
            bad[np.searchsorted(ends, np.flatnonzero(~ok), side="right")] = True
        k = int(bad.argmax())
        if bad[k]:
            return int(rows[k])
    return -1


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
        st_if, st_fl = streams(dm)
        return ScaleSimRun(
            stall_free, 0, stall_free, st_if.length, st_fl.length, writes_total, if_reads, fl_reads, writes_total, 0, 0
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
    """Store one row's ``n`` words (only for rows where a write event can happen), as SCALE-Sim does
    word by word: during a drain, the word that fills the buffer waits for the drain's end; otherwise
    the word that leaves less than the active half free starts a drain. Stored in runs between those
    words."""
    cur = cycle
    offset = 0
    while n > 0:
        if cur < wb.drain_end:
            m = max(wb.free, 1)  # the m-th word leaves no free space
            if m > n:
                wb.store(n)
                break
            wb.store(m)
            offset += wb.drain_end - cur
            cur = wb.drain_end
        else:
            m = max(wb.free - wb.active + 1, 1)  # the m-th word leaves less than the active half free
            if m > n:
                wb.store(n)
                break
            wb.store(m)
            wb.start_drain(cur)
        n -= m
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
