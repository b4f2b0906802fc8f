"""Layers the generated arrays run as dense sub-layers: depthwise, grouped conv, matmul, batch > 1,
and (nvdla) kernels with more taps than a PE holds.

The generated WS, OS, IS, ShiDianNao, RS and nvdla arrays (``KINDS``) run
one dense conv or linear layer per call (``dataflows.tiling``). A layer
with ``groups > 1``, a batch ``n > 1`` or an activation x activation product runs as several dense
sub-layers, one after another, each itself the calls of its tiling plan. This module is the index
arithmetic of that decomposition, with no hardware in it (the array's limits and a cost of a dense
sub-layer come in through ``choose_block``): which sub-layers, how many of each, and how each one's
operands are cut from the layer's tensors and its output placed back.

Tensor layouts (the layer's, as the loop nest of ``models.ir``):

* input ``x``: ``(N, C, H, W)``;
* second operand ``w``: ``(K, C/G, R, S)`` for conv kinds (torch's layout); for a matmul the
  right-hand activation of every sample, ``(N, K, C/G)``: head ``g`` multiplies its input channels
  ``[g*C/G, (g+1)*C/G)`` by ``w[n, g*K/G + k, c]`` (the transposed ``C/G x K/G`` right operand);
* output: ``(N, K, P, Q)``.

A *piece* holds samples ``[n0, n1)`` and groups ``[g0, g1)``:

* grouped conv (``C/G -> K/G`` per group) and matmul (one GEMM per head): a piece of ``b`` groups
  is one dense sub-layer ``b*C/G -> b*K/G`` whose weights are **block-diagonal** (group ``g0+i``'s
  weights at rows ``[i*K/G, (i+1)*K/G)``, columns ``[i*C/G, (i+1)*C/G)``, zero elsewhere). Bit-exact:
  the zeros add nothing. It runs ``b`` times the MACs the groups need (``wasted_macs``: a fraction
  ``1 - 1/b`` of the array's work multiplies zeros), but one call instead of ``b``;
* depthwise (``groups = C``, ``K/G = 1``): the same with ``b`` channels per piece;
* batch ``n > 1``: a piece per sample; a linear layer instead folds the whole batch into its rows
  (a 1x1, stride-1, unpadded conv of the samples stacked along H is exact), one piece for all;
* a stride larger than the kernel (``skips_input``: unpadded, ``stride > r = s``, e.g. ResNet's 1x1
  stride-2 shortcut) reads only ``r`` of every ``stride`` input rows and columns: the host gathers
  those (a strided DMA read) and the array runs a conv of stride ``r`` on ``P*r x Q*s`` input pixels,
  the same MACs and outputs with ``(r/stride)^2`` of the input traffic. Without it a design whose
  scratchpad holds the whole input loaded every row, used or not, while a smaller one ran bands of
  the used rows only: more buffer was up to 2.7x slower (issue 11's example);
* a kernel of more taps than one call holds (``TAP_KINDS``: nvdla's PE register file holds
  ``CallLimits.reduction`` taps, at most 9) runs as *tap groups* (``tap_groups``): kernel rows
  ``[r0, r1)`` x columns ``[s0, s1)``, each an unpadded conv of that sub-kernel over the input rows and
  columns its windows read (the host pads the input with zeros first, so every group is the same
  ``P x Q`` output at the layer's stride); the pieces of one (sample, groups) differ only in their tap
  group, and the host adds their outputs modulo ``2**acc_bits`` (``assemble``), as it adds channel
  groups' partial sums (``dataflows.tiling``). Groups are as few as the limit allows (whole kernel
  rows when they fit), then balanced.

``choose_block`` picks ``b`` for the fewest cycles: among ``1, 2, 4, ...`` up to ``cols // (K/G)``
(on WS and OS the most groups whose output channels one column fold holds; wider blocks only add
column folds of zeros) and that bound itself, the ``b`` whose pieces take the fewest cycles by the caller's cost
of a dense sub-layer (the RTL host's timing model, the cycle simulator, the analytical model: each
side minimizes its own figure, and the RTL and the simulator agree to the cycle, so they pick the
same ``b``). No fixed ``b`` is right: a wider block shares each call's fixed costs (input load,
weight preload, fill, the output drain of every pixel) among more channels, but its call input
``b*C/G x h x W`` splits into more output-row bands (each reloading its halo rows), and its MACs are
``b`` times the groups' own. At 32x32 / 64 kB / 32 B per cycle (RTL timing model, the default
``plan_calls``) the zoo's depthwise layers take ``b`` = 4-32 on WS (2.7-7.8 times fewer cycles than
one piece per channel), 1-32 on OS (1.0-10.7 times), 1-16 on IS (1.0-3.1), 1-8 on ShiDianNao (1.0-1.2),
32 on nvdla (10-32 times: a block fills C on the rows and K on the columns at once);
RS (eyeriss) has no column fold of K: its blocks are compared up to ``cols`` all the same.

Cost (one definition for the RTL host and both simulator tiers): the pieces run back to back, so a
decomposed layer takes ``sum(count x cycles(sub-layer))`` plus ``CALL_GAP_CYCLES`` between every
two consecutive calls (``DecomposedPlan.gap_cycles`` counts the gaps between pieces; each
sub-layer's own tiling plan counts those between its calls). Equal-shape sub-layers are one
``Part`` costed once and multiplied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from coexplore.dataflows.tiling import CALL_GAP_CYCLES, Call, CallLimits, TilingError, TilingPlan, plan_calls
from coexplore.models.ir import CoexploreError, Layer, OpKind

__all__ = [
    "KINDS",
    "DecomposeError",
    "DecomposedPlan",
    "Decomposition",
    "Part",
    "Piece",
    "block_sizes",
    "candidate_blocks",
    "choose_block",
    "decompose",
    "decomposes",
    "decomposes_on",
    "needs_decomposition",
    "plan_decomposed",
    "skips_input",
    "tap_groups",
    "tap_limit",
]


KINDS = ("ws", "os", "is", "sdn", "rs", "nvdla")  # the arrays that run these layers as sub-layers
NATIVE_BATCH = ("is",)  # arrays whose generator runs a dense layer's whole batch in one call (batch on the rows)
TAP_KINDS = ("nvdla",)  # arrays whose per-call ``reduction`` limit counts kernel taps: bigger kernels split


class DecomposeError(CoexploreError):
    """A layer or tensor that the decomposition cannot take (no MACs, a wrong tensor shape)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One run of a sub-layer: samples ``[n0, n1)`` (several only for a linear layer's batch fold,
    stacked along the rows), groups ``[g0, g1)`` of the layer (block-diagonal when several) and tap
    group ``tap`` (an index of ``Decomposition.taps``; 0 when the kernel is whole)."""

    n0: int
    n1: int
    g0: int
    g1: int
    tap: int = 0

    @property
    def samples(self) -> int:
        return self.n1 - self.n0

    @property
    def groups(self) -> int:
        return self.g1 - self.g0


@dataclass(frozen=True, slots=True)
class Part:
    """A dense sub-layer (groups = n = 1, conv or linear) and the pieces that run it."""

    layer: Layer
    pieces: tuple[Piece, ...]

    @property
    def count(self) -> int:
        return len(self.pieces)


@dataclass(frozen=True, slots=True)
class Decomposition:
    """``layer`` as dense sub-layers (``parts``), run piece by piece in ``order`` (part index, piece)."""

    layer: Layer
    block: int  # groups per piece (block-diagonal weights when > 1)
    parts: tuple[Part, ...]
    order: tuple[tuple[int, Piece], ...]
    taps: tuple[tuple[int, int, int, int], ...] = ()  # tap groups (r0, r1, s0, s1); (): the whole kernel

    @property
    def pieces(self) -> int:
        return len(self.order)

    @property
    def run_macs(self) -> int:
        """MACs the array performs, the zeros of block-diagonal weights included."""
        return sum(part.count * part.layer.macs for part in self.parts)

    @property
    def wasted_macs(self) -> int:
        """MACs that multiply a zero off the diagonal blocks: ``run_macs - layer.macs``."""
        return self.run_macs - self.layer.macs

    def cycles(self, part_cycles: Callable[[Layer], float]) -> float:
        """The layer's cycles from each sub-layer's (its calls and the gaps between them): count x
        cycles of every part plus one gap between consecutive pieces."""
        return sum(part.count * part_cycles(part.layer) for part in self.parts) + self.gap_cycles()

    def gap_cycles(self) -> int:
        """Idle cycles between the pieces (the last call of one, the first of the next)."""
        return CALL_GAP_CYCLES * (self.pieces - 1)

    # ---- operands -------------------------------------------------------------------------------
    def _shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return operand_shapes(self.layer)

    def operands(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` and ``w`` in this module's layouts (int64); DecomposeError on a wrong size."""
        xs, ws = self._shapes()
        out = []
        for name, arr, shape in (("input", x, xs), ("second operand", w, ws)):
            arr = np.asarray(arr)
            if arr.size != int(np.prod(shape)):
                want = "x".join(map(str, shape))
                raise DecomposeError(
                    f"layer {self.layer.name!r}: {name} has {arr.size} values (shape {arr.shape}), expected {want}"
                )
            out.append(arr.astype(np.int64).reshape(shape))
        return out[0], out[1]

    def piece_operands(self, piece: Piece, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dense sub-layer's input ``(b*C/G, nb*H, W)`` (``P*r x Q*s`` gathered when the layer
        ``skips_input``) and weights ``(b*K/G, b*C/G, R, S)`` of
        ``piece`` (``x``, ``w`` in the layouts of ``operands``)."""
        la = self.layer
        cg, kg, b, nb = la.c_per_group, la.k_per_group, piece.groups, piece.samples
        xi = x[piece.n0 : piece.n1, piece.g0 * cg : piece.g1 * cg]  # (nb, b*cg, H, W)
        if skips_input(la):  # the rows and columns the strided window reads, gathered by the host
            rows, cols = gathered(la.p, la.stride_h, la.r), gathered(la.q, la.stride_w, la.s)
            xi = xi[:, :, rows][:, :, :, cols]
        r0, r1, s0, s1 = self.taps[piece.tap] if self.taps else (0, la.r, 0, la.s)
        if self.taps:  # the zero-padded input, then the rows and columns this tap group's windows read
            stride, pad = (la.r, 0) if skips_input(la) else (la.stride_h, la.pad_h)
            xi = np.pad(xi, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            rows, cols, _ = _tap_window(la.p, la.q, stride, r0, r1, s0, s1)
            xi = xi[:, :, rows][:, :, :, cols]
        h, wd = xi.shape[2], xi.shape[3]
        xi = xi.transpose(1, 0, 2, 3).reshape(b * cg, nb * h, wd)  # samples stacked along the rows
        src = w[piece.n0] if la.kind is OpKind.MATMUL else w  # (K, cg[, R, S])
        src = src.reshape(la.k, cg, la.r, la.s)[:, :, r0:r1, s0:s1]
        dense = np.zeros((b * kg, b * cg, r1 - r0, s1 - s0), dtype=np.int64)
        for i in range(b):
            g = piece.g0 + i
            dense[i * kg : (i + 1) * kg, i * cg : (i + 1) * cg] = src[g * kg : (g + 1) * kg]
        return xi, dense

    def place(self, piece: Piece, sub_out: np.ndarray, out: np.ndarray) -> None:
        """Add the sub-layer's output ``(b*K/G, nb*P, Q)`` of ``piece`` into the layer's ``out``
        ``(N, K, P, Q)`` (zeros before its first piece: only tap groups share an output)."""
        la = self.layer
        kg, nb = la.k_per_group, piece.samples
        block = np.asarray(sub_out).reshape(piece.groups * kg, nb, la.p, la.q).transpose(1, 0, 2, 3)
        out[piece.n0 : piece.n1, piece.g0 * kg : piece.g1 * kg] += block

    def assemble(self, sub_outs: list[np.ndarray], acc_bits: int | None = None) -> np.ndarray:
        """The layer's output ``(N, K, P, Q)`` from the sub-layer outputs, one per piece in ``order``;
        with ``acc_bits``, the tap groups' sums wrapped to that two's complement width."""
        if len(sub_outs) != self.pieces:
            raise DecomposeError(f"layer {self.layer.name!r}: {len(sub_outs)} outputs, expected {self.pieces}")
        la = self.layer
        out = np.zeros((la.n, la.k, la.p, la.q), dtype=np.int64)
        for (_, piece), sub in zip(self.order, sub_outs, strict=True):
            self.place(piece, sub, out)
        if acc_bits is None:
            return out
        mod = 1 << acc_bits
        out &= mod - 1
        return np.where(out >= mod >> 1, out - mod, out)


def operand_shapes(layer: Layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of a layer's two operands in this module's layouts: input ``(N, C, H, W)``; weights
    ``(K, C/G, R, S)``, or for a matmul the right-hand activation per sample ``(N, K, C/G)``."""
    xs = (layer.n, layer.c, layer.h, layer.w)
    if layer.kind is OpKind.MATMUL:
        return xs, (layer.n, layer.k, layer.c_per_group)
    return xs, (layer.k, layer.c_per_group, layer.r, layer.s)


def needs_decomposition(layer: Layer) -> bool:
    """Whether ``layer`` runs as sub-layers: a depthwise or matmul layer, or a conv/linear layer
    with groups > 1 or a batch > 1 (a dense one runs as its own tiling plan)."""
    if layer.kind in (OpKind.DEPTHWISE, OpKind.MATMUL) or skips_input(layer):
        return True
    return layer.kind in (OpKind.CONV, OpKind.LINEAR) and (layer.groups > 1 or layer.n > 1)


def skips_input(layer: Layer) -> bool:
    """An unpadded conv whose stride exceeds its (square) kernel: rows and columns it never reads."""
    return (
        layer.kind in (OpKind.CONV, OpKind.DEPTHWISE)
        and layer.pad_h == layer.pad_w == 0
        and layer.dilation_h == layer.dilation_w == 1
        and layer.stride_h == layer.stride_w > layer.r == layer.s
    )


def gathered(n_out: int, stride: int, kernel: int) -> np.ndarray:
    """The input rows (or columns) a ``skips_input`` layer reads: ``kernel`` per output row."""
    return (np.arange(n_out)[:, None] * stride + np.arange(kernel)[None, :]).reshape(-1)


def tap_groups(r: int, s: int, taps: int) -> tuple[tuple[int, int, int, int], ...]:
    """The kernel ``r x s`` as the fewest rectangular tap groups ``(r0, r1, s0, s1)`` of at most
    ``taps`` taps each (ties: whole kernel rows first), their sizes balanced; one group when it fits."""
    if taps < 1:
        raise DecomposeError(f"taps={taps!r}: expected at least one kernel tap per call")
    if r * s <= taps:
        return ((0, r, 0, s),)
    best: tuple[int, int, int] | None = None  # (groups, -columns per group, rows per group)
    for sg in range(min(s, taps), 0, -1):
        rg = min(r, taps // sg)
        cand = (_cdiv(r, rg) * _cdiv(s, sg), -sg, rg)
        best = cand if best is None or cand < best else best
    assert best is not None
    n_r, n_s = _cdiv(r, best[2]), _cdiv(s, -best[1])
    rows = [(i * r // n_r, (i + 1) * r // n_r) for i in range(n_r)]
    cols = [(j * s // n_s, (j + 1) * s // n_s) for j in range(n_s)]
    return tuple((r0, r1, s0, s1) for r0, r1 in rows for s0, s1 in cols)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _tap_window(p: int, q: int, stride: int, r0: int, r1: int, s0: int, s1: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(input rows, input columns, stride) of tap group ``(r0, r1, s0, s1)``'s unpadded conv over the
    zero-padded input for ``p x q`` outputs: the rows and columns its windows span, or, when its
    stride exceeds its square sub-kernel, only those read (gathered, stride ``r1 - r0``: as
    ``skips_input``, so that no sub-layer needs decomposing again)."""
    rg, sg = r1 - r0, s1 - s0
    if stride > rg == sg:
        return r0 + gathered(p, stride, rg), s0 + gathered(q, stride, sg), rg
    return r0 + np.arange((p - 1) * stride + rg), s0 + np.arange((q - 1) * stride + sg), stride


def tap_limit(layer: Layer, limits: CallLimits | None) -> int:
    """The most kernel taps one call of ``limits`` holds when ``layer``'s kernel exceeds it on a kind
    of ``TAP_KINDS`` (its sub-layers then run as tap groups), else 0 (the kernel stays whole)."""
    if limits is None or limits.kind not in TAP_KINDS or not layer.kind.has_macs:
        return 0
    return limits.reduction if 0 < limits.reduction < layer.r * layer.s else 0


def _folds_batch(layer: Layer) -> bool:
    """A linear layer's batch stacks along its rows exactly (a 1x1, stride-1, unpadded conv)."""
    one = (layer.r, layer.s, layer.stride_h, layer.stride_w, layer.dilation_h, layer.dilation_w)
    return layer.kind is OpKind.LINEAR and one == (1,) * 6 and layer.pad_h == layer.pad_w == 0


@lru_cache(maxsize=4096)  # the analytical post-pass asks per array shape, the simulator per candidate
def decompose(layer: Layer, block: int = 1, taps: int = 0) -> Decomposition:
    """``layer`` as dense sub-layers of ``block`` groups each (block-diagonal weights; the last piece
    holds the remaining groups), one piece per sample (a linear layer: all samples in one piece),
    and with ``taps`` > 0 its kernel as tap groups of at most that many taps (``tap_groups``; a
    kernel that fits stays whole). A dense layer whose kernel fits is one piece of itself."""
    if not layer.kind.has_macs:
        raise DecomposeError(f"layer {layer.name!r}: kind {layer.kind.value!r} has no MACs to decompose")
    if not isinstance(block, int) or isinstance(block, bool) or block < 1:
        raise DecomposeError(f"layer {layer.name!r}: block={block!r}, expected a positive number of groups")
    if not isinstance(taps, int) or isinstance(taps, bool) or taps < 0:
        raise DecomposeError(f"layer {layer.name!r}: taps={taps!r}, expected a number of kernel taps (0: any)")
    split = 0 < taps < layer.r * layer.s
    if not needs_decomposition(layer) and not split:
        return Decomposition(layer, 1, (Part(layer, (Piece(0, 1, 0, 1),)),), ((0, Piece(0, 1, 0, 1)),))
    g, b = layer.groups, min(block, layer.groups)
    kind = OpKind.LINEAR if layer.kind in (OpKind.LINEAR, OpKind.MATMUL) else OpKind.CONV
    folded = _folds_batch(layer)
    skip = skips_input(layer)  # the host gathers the rows and columns read: stride r on P*r x Q*s
    h, w, stride = (layer.p * layer.r, layer.q * layer.s, layer.r) if skip else (layer.h, layer.w, layer.stride_h)
    groups_of_taps = tap_groups(layer.r, layer.s, taps) if split else ((0, layer.r, 0, layer.s),)
    samples = [(0, layer.n)] if folded else [(n, n + 1) for n in range(layer.n)]
    subs: dict[tuple[int, int, int, int], Layer] = {}
    by_sub: dict[tuple[int, int, int, int], list[Piece]] = {}
    order_keys: list[tuple[tuple[int, int, int, int], Piece]] = []
    for n0, n1 in samples:
        for g0 in range(0, g, b):
            for t, (r0, r1, s0, s1) in enumerate(groups_of_taps):
                piece = Piece(n0, n1, g0, min(g, g0 + b), t)
                key = (piece.groups, piece.samples, r1 - r0, s1 - s0)
                if key not in subs:
                    tag = f"{piece.groups}g" + (f"x{piece.samples}n" if piece.samples > 1 else "")
                    tag += f"x{r1 - r0}x{s1 - s0}t" if split else ""
                    sub_h, sub_w, sub_stride = h, w, stride if skip else layer.stride_h
                    if split:  # the rows and columns the tap group's windows read (P x Q outputs)
                        rows, cols, sub_stride = _tap_window(layer.p, layer.q, stride, r0, r1, s0, s1)
                        sub_h, sub_w = len(rows), len(cols)
                    subs[key] = replace(
                        layer,
                        name=f"{layer.name}[{tag}]",
                        kind=kind,
                        k=piece.groups * layer.k_per_group,
                        c=piece.groups * layer.c_per_group,
                        h=piece.samples * sub_h,
                        w=sub_w,
                        r=r1 - r0,
                        s=s1 - s0,
                        stride_h=sub_stride,
                        stride_w=sub_stride,
                        pad_h=0 if split else layer.pad_h,
                        pad_w=0 if split else layer.pad_w,
                        n=1,
                        groups=1,
                    )
                by_sub.setdefault(key, []).append(piece)
                order_keys.append((key, piece))
    keys = list(subs)
    parts = tuple(Part(subs[key], tuple(by_sub[key])) for key in keys)
    order = tuple((keys.index(key), piece) for key, piece in order_keys)
    return Decomposition(layer, b, parts, order, groups_of_taps if split else ())


def block_sizes(layer: Layer, cols: int) -> tuple[int, ...]:
    """Powers of two below ``top = cols // (K/G)`` and ``top`` (at least 1, at most G), ascending:
    the groups per piece worth comparing on an array ``cols`` wide."""
    top = max(1, min(layer.groups, cols // layer.k_per_group))
    return tuple(sorted({*(1 << i for i in range(top.bit_length()) if 1 << i < top), top}))


def candidate_blocks(layer: Layer, limits: CallLimits) -> tuple[int, ...]:
    """The ``b`` that ``choose_block`` compares: ``block_sizes``, each kept only when every sub-layer
    fits some plan of calls."""
    out = []
    for b in block_sizes(layer, limits.cols):
        try:
            for part in decompose(layer, b, tap_limit(layer, limits)).parts:
                plan_calls(part.layer, limits)
        except TilingError:
            continue
        out.append(b)
    return tuple(out)


def choose_block(layer: Layer, limits: CallLimits, part_cycles: Callable[[Layer], float]) -> int:
    """The ``b`` of ``candidate_blocks`` whose decomposition takes the fewest cycles, each dense
    sub-layer costed by ``part_cycles`` (its calls and the gaps between them); ties go to the smaller
    ``b`` (fewer wasted MACs). TilingError when no ``b`` fits (``b = 1``'s reason)."""
    blocks, taps = candidate_blocks(layer, limits), tap_limit(layer, limits)
    if not blocks:
        for part in decompose(layer, 1, taps).parts:
            plan_calls(part.layer, limits)  # raises the reason
        raise TilingError(f"layer {layer.name!r}: no block of groups fits a call")  # pragma: no cover
    costs = [decompose(layer, b, taps).cycles(part_cycles) for b in blocks]
    return blocks[costs.index(min(costs))]


@dataclass(frozen=True, slots=True)
class DecomposedPlan:
    """A decomposition and the tiling plan of each of its parts (``plan_calls``)."""

    decomposition: Decomposition
    plans: tuple[TilingPlan, ...]  # one per part

    @property
    def calls(self) -> tuple[Call, ...]:
        """Every call in run order (each piece's plan in turn)."""
        return tuple(call for part, _ in self.decomposition.order for call in self.plans[part].calls)

    @property
    def tiled(self) -> bool:
        return len(self.calls) > 1

    def gap_cycles(self) -> int:
        """Idle cycles between all the calls."""
        return CALL_GAP_CYCLES * (len(self.calls) - 1)


def decomposes_on(layer: Layer, kind: str) -> bool:
    """Whether an array of ``kind`` runs ``layer`` as sub-layers: a kind of ``KINDS``, a layer
    ``needs_decomposition`` names, unless the only reason is a batch the kind runs itself."""
    if kind not in KINDS or not needs_decomposition(layer):
        return False
    dense = layer.kind in (OpKind.CONV, OpKind.LINEAR) and layer.groups == 1 and not skips_input(layer)
    return not (kind in NATIVE_BATCH and dense)


def decomposes(layer: Layer, limits: CallLimits | None) -> bool:
    """``decomposes_on`` for the array of ``limits``, or a kernel of more taps than its call holds
    (``tap_limit``); the RTL host and both simulator tiers ask this one question."""
    return limits is not None and (decomposes_on(layer, limits.kind) or tap_limit(layer, limits) > 0)


def plan_decomposed(
    layer: Layer,
    limits: CallLimits,
    part_cycles: Callable[[Layer], float] | None = None,
    block: int | None = None,
    columns: bool = True,
    groups: bool = True,
    plan_of: Callable[[Layer], TilingPlan] | None = None,
) -> DecomposedPlan:
    """``layer`` decomposed for the array of ``limits`` with every part's tiling plan (``columns``,
    ``groups``: as ``plan_calls``, whose default plan the simulator costs). ``block``: groups per
    piece; default ``choose_block`` by ``part_cycles``, or the widest candidate when no cost is given.
    ``plan_of``: a dense part's plan (the caller's ``tiling.cheapest_plan``), else ``plan_calls``'.
    TilingError when a part fits no call."""
    if block is None:
        blocks = candidate_blocks(layer, limits)
        block = blocks[-1] if part_cycles is None and blocks else 1
        if part_cycles is not None:
            block = choose_block(layer, limits, part_cycles)
    dec = decompose(layer, block, tap_limit(layer, limits))
    if plan_of is not None and columns and groups:
        return DecomposedPlan(dec, tuple(plan_of(part.layer) for part in dec.parts))
    plans = tuple(plan_calls(part.layer, limits, columns=columns, groups=groups) for part in dec.parts)
    return DecomposedPlan(dec, plans)
