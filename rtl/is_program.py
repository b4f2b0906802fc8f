"""Host side of the input-stationary systolic accelerator (kind ``is``, template systolic-is):
scratchpad sizes, configuration registers, weight layout, output decoding and timing model.

The array computes the transposed GEMM ``out^T[K, NPQ] = W[K, CRS] . im2col[CRS, NPQ]``: array row
i holds reduction index ``red = fr*rows + i`` (``red = (c*R + r)*S + s``), column j output pixel
``m = fc*cols + j`` (``m = (n*P + p)*Q + q``), and the K filters stream through (T = K).

Layouts (each stream ``stream_bytes`` wide, byte 0 in the low bits):
- ifmap: the whole unpadded input ``in[n][c][h][w]``, loaded once and kept resident (one replica
  per array column).
- weights: one dense tile per fold, folds ordered column fold outer, row fold inner; the tile of
  row fold fr is ``K`` lines of ``e`` bytes, ``w[k][fr*rows + i]`` for ``i < e`` (``e = rows``, the
  last row fold what is left), packed back to back and padded to whole beats only at the tile's
  end. With one row fold the single tile is sent once and kept.
- ofmap: for each column fold, for each filter k, one line of ``cols`` accumulators (column j =
  pixel ``fc*cols + j``, zero beyond the layer).

A geometry with an ``n`` attribute (batch; C*H*W is taken per image, ``input_bytes`` is not used)
is honoured everywhere here; ``rtl.program.geometry`` itself gives n = 1.
"""

from __future__ import annotations

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CallLimits
from coexplore.models.ir import Layer
from coexplore.rtl.params import RtlError, RtlParams, Scratchpads
from coexplore.rtl.program import (
    CONV_CFG,
    LayerGeometry,
    cdiv,
    conv_cfg,
    pack_beats,
    reference_output,
    resident_call_limits,
    unpack_lines,
    wrap,
)

CFG = (*CONV_CFG, "k", "npq", "chw", "e_last", "lw", "lw_last", "w_tiles")
BATCH = True  # the hardware runs N > 1 (images on the columns with P and Q)


def batch(geo: LayerGeometry) -> int:
    """Images in the layer (``geo.n`` when the geometry carries one)."""
    return int(getattr(geo, "n", 1))


def image_bytes(geo: LayerGeometry) -> int:
    """Bytes of one input image, C*H*W."""
    return geo.c * geo.h * geo.w


def pixels(geo: LayerGeometry) -> int:
    """Output pixels N*P*Q (the array's column dims)."""
    return batch(geo) * geo.t


def scratchpads(acc: Accelerator, stream_bytes: int) -> Scratchpads:
    """One ifmap replica per array column; two weight banks of half the filter budget (one beat per
    line); output banks of as many filters as half the ofmap budget holds per column."""
    out_bytes = -(-acc.acc_bits // 8)
    return Scratchpads(
        ifmap_replicas=acc.cols,
        weight_line_bytes=stream_bytes,
        ofmap_depth=int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes),
        weight_depth=int(acc.filter_sram_kb * 1024) // (2 * stream_bytes),
    )


def folds(params: RtlParams, geo: LayerGeometry) -> tuple[int, int]:
    """(row folds over C*R*S, column folds over N*P*Q)."""
    return cdiv(geo.red, params.rows), cdiv(pixels(geo), params.cols)


def _tile_beats(params: RtlParams, geo: LayerGeometry) -> tuple[int, int, int]:
    """(e_last, beats of a full weight tile, beats of the last row fold's tile)."""
    fr_n = folds(params, geo)[0]
    e_last = geo.red - (fr_n - 1) * params.rows
    return (
        e_last,
        cdiv(geo.k * min(params.rows, geo.red), params.stream_bytes),
        cdiv(geo.k * e_last, params.stream_bytes),
    )


def check_layer(params: RtlParams, layer: Layer, geo: LayerGeometry) -> None:
    """One pass per fold, as the simulator's rtl profile needs: the K output lines fit an output
    bank half and a weight tile fits a weight bank (half the filter budget)."""
    if geo.k > params.ofmap_depth:
        raise RtlError(f"layer {layer.name!r}: K={geo.k} filters exceed the ofmap bank depth {params.ofmap_depth}")
    tile = geo.k * min(params.rows, geo.red)
    if tile > params.weight_depth * params.stream_bytes:
        raise RtlError(
            f"layer {layer.name!r}: a weight tile of {tile} bytes (K x rows) exceeds the "
            f"{params.weight_depth * params.stream_bytes}-byte weight bank (half of filter_sram_kb)"
        )


def config(params: RtlParams, geo: LayerGeometry) -> dict[str, int]:
    """The layer registers (``CFG``); RtlError when one does not fit its 16 bits."""
    fr_n, fc_n = folds(params, geo)
    e_last, lw, lw_last = _tile_beats(params, geo)
    w_tiles = 1 if fr_n == 1 else fr_n * fc_n
    return conv_cfg(
        geo,
        params.stream_bytes,
        fr_n,
        fc_n,
        fr_n * fc_n,
        k=geo.k,
        npq=pixels(geo),
        chw=image_bytes(geo),
        e_last=e_last,
        lw=lw,
        lw_last=lw_last,
        w_tiles=w_tiles,
        if_beats=cdiv(batch(geo) * image_bytes(geo), params.stream_bytes),
    )


def layout(params: RtlParams, geo: LayerGeometry, weights: np.ndarray) -> tuple[dict[str, int], list[int]]:
    """(configuration registers, weight-stream beats)."""
    ra = params.rows
    fr_n = folds(params, geo)[0]
    cfg = config(params, geo)
    w_tiles = cfg["w_tiles"]
    wmat = np.asarray(weights, dtype=np.int64).reshape(geo.k, geo.red)
    beats: list[int] = []
    for f in range(w_tiles):
        fr = f % fr_n
        tile = wmat[:, fr * ra : min((fr + 1) * ra, geo.red)]
        beats += pack_beats((tile & 0xFF).astype(np.uint8), params.stream_bytes)
    return cfg, beats


def out_beats(params: RtlParams, geo: LayerGeometry) -> int:
    return folds(params, geo)[1] * geo.k * params.out_row_beats


def decode_output(params: RtlParams, geo: LayerGeometry, beats: list[int]) -> np.ndarray:
    """out[k][p][q] (n = 1) or out[n][k][p][q] from the output stream."""
    ca, n = params.cols, batch(geo)
    fc_n = folds(params, geo)[1]
    vals = unpack_lines(params, beats, fc_n * geo.k).reshape(fc_n, geo.k, ca)
    full = vals.transpose(1, 0, 2).reshape(geo.k, fc_n * ca)[:, : pixels(geo)]  # out[k][m]
    out = wrap(full, params.acc_bits).reshape(geo.k, n, geo.p, geo.q)
    return out[:, 0] if n == 1 else out.transpose(1, 0, 2, 3)


def reference(geo: LayerGeometry, ifmap: np.ndarray, weights: np.ndarray, acc_bits: int) -> np.ndarray:
    """numpy result in ``decode_output``'s shape (the shared reference, image by image)."""
    n = batch(geo)
    x = np.asarray(ifmap, dtype=np.int64).reshape(n, geo.c, geo.h, geo.w)
    outs = [reference_output(geo, x[i], weights, acc_bits) for i in range(n)]
    return outs[0] if n == 1 else np.stack(outs)


def cycles(params: RtlParams, geo: LayerGeometry) -> int:
    """Start->done cycles of the IS accelerator, memory always ready (docs/rtl.md).

    Cycles numbered from 1. Fold f takes ``rows`` preload + ``L = K + rows + cols - 2`` stream
    cycles; a_f / b_f: first / one past the last cycle of its weight tile's load (every fold loads
    one unless there is a single row fold); S_f: its first preload cycle; X: the cycle a finished
    column tile is visible to the drain; D/E: drain start / last beat.
    """
    ra, ca, bw = params.rows, params.cols, params.stream_bytes
    li = cdiv(batch(geo) * image_bytes(geo), bw)
    _, lw, lw_last = _tile_beats(params, geo)
    fold_len = ra + geo.k + ra + ca - 2
    dl = geo.k * params.out_row_beats
    fr_n, fc_n = folds(params, geo)
    s: list[int] = []
    b_end = 0  # one past the last beat of the latest weight load
    d_end: list[int] = []
    for fc in range(fc_n):
        for fr in range(fr_n):
            f = fc * fr_n + fr
            if f == 0 or fr_n > 1:  # a new weight tile: double-buffered, its bank freed when fold f-2 ends
                af = max(1 if f == 0 else b_end, s[f - 2] + fold_len if f >= 2 else 1)
                b_end = af + (lw_last if fr == fr_n - 1 else lw)
            ready = max(li + 1, b_end)
            if f == 0:
                ready = max(ready, ca + 1)  # the first fold's pixel coordinates shift in, one per cycle
            if fr == 0 and fc >= 2:
                ready = max(ready, d_end[fc - 2] + 1)
            s.append(ready if f == 0 else max(s[f - 1] + fold_len, ready))
        x = s[-1] + fold_len + 2
        d_end.append(max(x, d_end[-1] + 1 if d_end else 0) + dl)
    return d_end[-1]


def call_limits(params: RtlParams) -> CallLimits:
    """What one call holds (host-side tiling, ``dataflows.tiling``; its ``tiling_kinds`` rule): the
    input in one replica (one per array column) and half the budget, the K output lines in an output
    bank half, the K x rows weight tile in a weight bank (bytes)."""
    return resident_call_limits(
        params, out_pixels=params.ofmap_depth, reduction=params.weight_depth * params.stream_bytes
    )
