"""Analytical model: latency, energy, area and utilization of layers on accelerators, as arrays.

One vectorized core serves every entry point: ``evaluate_batch`` evaluates designs x layers as numpy
arrays (designs grouped by template, layers by the candidate mappings they take), and
``evaluate_layer`` / ``evaluate_network`` are that core on a 1 x 1 (or 1 x L) batch, so single and
batch results are equal. Speed comes from computing each quantity at the size of what it depends
on: designs are chunked by array shape (a chunk of one shape computes plans and tiles as
(1, layers) rows; a chunk of several computes them once per distinct shape), and the fold-level
memory model runs on the grid of distinct array shapes x scratchpad/width configurations x DRAM
bandwidths of a chunk, so NoC bandwidth, node and DRAM port arrangement cost it nothing
(``benchmarks/bench_analytical.py``). Layers equal but for their name (a network's repeated blocks)
are evaluated once. ``evaluate_pairs`` is the same core on a scattered list of (layer, design) pairs
instead of the grid (the tiled post-pass's sub-layers on just the designs that run them), each
entry equal to the grid's, with the fold-level memory model once per distinct (layer, memory-relevant
design), and each distinct pair evaluated once: in the fold memory model a MAC layer once for the
designs that differ only in NoC bandwidth and DRAM port arrangement, whose latencies (and the
mapper's choice) are then completed per pair.

The mapper: every candidate of ``dataflows.mapping.candidate_mappings`` (the template's own mapping
and its YAML ``alternatives``, each with the input resident when it fits or streamed) is evaluated
over all designs at once, and per (design, layer) the one with the least latency, then energy, is
kept (``BatchResult.mapping_index``; ``choose_mapping`` for one pair, which the cycle-level simulator
runs). A layer runs at its own operand widths (traffic, buffer words, MAC energy), which must not
exceed the accelerator's, except on generated hardware (profile ``rtl``), which stores operands at
its own widths.

Latency of a compute layer (F folds, see ``coexplore.dataflows.mapping``):
    fold_time, once = fold_timing(template timing, profile)          # stall-free, per fold
    noc  = words the buffers exchange with the array per fold / NoC bytes per cycle
    dram = bytes each DRAM port moves per fold / port bytes per cycle  (per operand port, or shared)
    double-buffered: F * max(fold_time, noc, dram) + once + first fold's load + last fold's store
    otherwise:       F * (max(fold_time, noc) + dram) + once
with DRAM bytes from the fold-level memory model (``_fold_dram``, a closed form of the simulator's
``coexplore.sim.cycle.foldmem``: folds in the order outer dims > column folds > row folds; its sums
over fold shapes are a ``FoldDram`` value, whose critical paths ``_fold_latency`` takes per DRAM
port arrangement), or in
profile ``scalesim`` on SCALE-Sim's own arrays from ``coexplore.sim.traffic`` (re-fetch under the
fold order with the least DRAM time, as SCALE-Sim picks it). Unlimited bandwidth (None) gives no stalls,
so in profile ``scalesim`` the systolic templates reproduce SCALE-Sim's stall-free cycles exactly.

Pooling and element-wise layers run as vector ops, one per array column per cycle, streaming their
input and output through DRAM: latency = max(ops / cols, DRAM time, NoC time).

Energy = access counts x per-access energies of ``coexplore.sim.tech``: MACs; register file (two
operand reads and a partial-sum read and write per MAC); buffer reads and writes per operand (array
deliveries, DRAM fills and drains, partial sums); NoC (values received by busy PEs); DRAM bytes.
Word widths: inputs and outputs at the layer's ``input_bits``, weights at its ``weight_bits``
(the accelerator's on generated hardware), partial sums (held across reduction folds or spilled) at
the accelerator's ``acc_bits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from itertools import product
from operator import attrgetter
from typing import Any

import numpy as np

from coexplore.dataflows.mapping import (
    FoldPlan,
    LayerMapping,
    candidate_mappings,
    fold_timing,
    plan_folds,
    resolve_profile,
    scalesim_shape,
)
from coexplore.dataflows.spec import (
    Accelerator,
    Dataflow,
    LogicArea,
    Mapping,
    Operand,
    Pack,
    SpecError,
    TimingProfile,
)
from coexplore.models.ir import CoexploreError, Dim, Layer, Network, OpKind
from coexplore.sim.metrics import AREA_KEYS, ENERGY_KEYS, BatchResult, LayerMetrics, NetworkMetrics
from coexplore.sim.tech import DEFAULT_TECH, TechTable, tech_for
from coexplore.sim.traffic import (
    OUTPUT_DIMS,
    dram_fetches,
    fold_extents,
    fold_orders,
    fold_traffic,
    operand_dims,
    traits_for,
)

__all__ = [
    "BatchResult",
    "PairResult",
    "area",
    "choose_mapping",
    "evaluate_batch",
    "evaluate_layer",
    "evaluate_network",
    "evaluate_pairs",
]

CHUNK_ELEMENTS = 1 << 17  # (designs x layers) elements per pass: keeps temporaries cache-resident
_DETAIL_KEYS = tuple(f"energy_{k}_pj" for k in ENERGY_KEYS) + (
    "dram_read_bytes",
    "dram_write_bytes",
    "buffer_read_words",
    "buffer_write_words",
)


# ---- area ----------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _area_of(
    tech: TechTable, node: float, rows: int, cols: int, kb_total: float, ib: int, wb: int, accb: int
) -> tuple[float, float, float, float]:
    t = tech_for(node, tech)
    pes = rows * cols
    return (
        pes * t.pe_um2(ib, wb, accb),
        t.sram_um2(kb_total),
        pes * t.noc_um2_per_pe(ib, wb, accb),
        t.control_logic_um2(rows, cols, ib, wb, accb),
    )


_SAME_AS_WS = LogicArea()


def area(acc: Accelerator, tech: TechTable = DEFAULT_TECH) -> tuple[float, dict[str, float]]:
    """Silicon area in um2 and its breakdown: PEs, buffers (SRAM), NoC (per PE), control (array edges + controller)."""
    pe, buf, noc, control = _area_of(
        tech,
        acc.tech_node_nm,
        acc.rows,
        acc.cols,
        acc.ifmap_sram_kb + acc.filter_sram_kb + acc.ofmap_sram_kb,
        acc.input_bits,
        acc.weight_bits,
        acc.acc_bits,
    )
    scale = acc.dataflow.logic_area_scale  # the template's logic relative to the fitted WS array
    ratio = acc.dataflow.logic_area  # and by part: per PE, row, column and the fixed controller
    if ratio != _SAME_AS_WS:
        t = tech_for(acc.tech_node_nm, tech)
        bits = (acc.input_bits + acc.weight_bits + acc.acc_bits) / 48.0  # as TechTable.control_logic_um2
        edges = (t.array_row_um2 * acc.rows * ratio.row + t.array_col_um2 * acc.cols * ratio.col) * bits
        pe, noc, control = pe * ratio.pe, noc * ratio.pe, edges + t.control_um2 * ratio.fixed
    parts = (pe * scale, buf, noc * scale, control * scale)
    return sum(parts), dict(zip(AREA_KEYS, parts))


# ---- design arrays -------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _energies_of(
    tech: TechTable, node: float, kbs: tuple[float, float, float], ib: int, wb: int, accb: int
) -> tuple[float, ...]:
    """Per-design energies: MAC, RF/bit, NoC/bit, SRAM/bit (input, weight, output bank), DRAM/bit, vector op."""
    t = tech_for(node, tech)
    # A double-buffered scratchpad is two banks of half its size; each access touches one bank.
    return (
        t.mac_pj(ib, wb, accb),
        t.rf_pj_per_bit,
        t.noc_pj_per_bit,
        t.sram_pj_per_bit(kbs[0] / 2),
        t.sram_pj_per_bit(kbs[1] / 2),
        t.sram_pj_per_bit(kbs[2] / 2),
        t.dram_pj_per_bit,
        t.add_pj(ib),
        t.mult_8x8_pj,
        t.add_32b_pj,
        t.add_8b_pj,
    )


_DESIGN_FIELDS = (
    "rows",
    "cols",
    "cap_in",
    "cap_w",
    "cap_out",
    "noc_bw",
    "dram_bw",
    "shared",
    "ib",
    "wb",
    "accb",
    "e_mac",
    "e_rf",
    "e_noc",
    "e_sram_in",
    "e_sram_w",
    "e_sram_out",
    "e_dram",
    "e_vec",
    "e_mult8",
    "e_add32",
    "e_add8",
)


@dataclass(frozen=True, slots=True)
class _Designs:
    """Design parameters as (designs, 1) arrays; capacities in bytes (half of each scratchpad)."""

    rows: np.ndarray
    cols: np.ndarray
    cap_in: np.ndarray
    cap_w: np.ndarray
    cap_out: np.ndarray
    noc_bw: np.ndarray
    dram_bw: np.ndarray
    shared: np.ndarray
    ib: np.ndarray
    wb: np.ndarray
    accb: np.ndarray
    e_mac: np.ndarray
    e_rf: np.ndarray
    e_noc: np.ndarray
    e_sram_in: np.ndarray
    e_sram_w: np.ndarray
    e_sram_out: np.ndarray
    e_dram: np.ndarray
    e_vec: np.ndarray
    e_mult8: np.ndarray  # 8x8 multiply (pJ), 32-bit add, 8-bit add at the design's node: MAC energy at any width
    e_add32: np.ndarray
    e_add8: np.ndarray

    def take(self, sl: slice | np.ndarray) -> _Designs:
        """The designs at ``sl`` (a (1, 1) ``rows`` / ``cols`` of ``one_shape`` is kept as it is)."""
        keep = ("rows", "cols") if self.rows.shape[0] != self.cap_in.shape[0] else ()
        return _Designs(*(getattr(self, f) if f in keep else getattr(self, f)[sl] for f in _DESIGN_FIELDS))

    def one_shape(self) -> _Designs:
        """These designs with ``rows`` and ``cols`` as (1, 1) arrays, when they all share one array
        shape: plans and tiles then broadcast as (1, layers) instead of (designs, layers)."""
        if self.rows.size <= 1 or (np.all(self.rows == self.rows[0]) and np.all(self.cols == self.cols[0])):
            return replace(self, rows=self.rows[:1], cols=self.cols[:1])
        return self

    def at_widths(self, ib: int, wb: int) -> _Designs:
        """The designs running a layer of ``ib``-bit inputs and ``wb``-bit weights (at most their own):
        words move and are stored at the layer's widths, and the MAC's energy scales with them
        (``TechTable.mac_pj``: multiplier ~ input x weight bits, accumulator add ~ acc bits)."""
        e_mac = self.e_mult8 * (ib * wb) / 64.0 + self.e_add32 * self.accb / 32.0
        return replace(
            self, ib=np.full_like(self.ib, ib), wb=np.full_like(self.wb, wb), e_mac=e_mac, e_vec=self.e_add8 * ib / 8.0
        )


def _shape_chunks(D: _Designs, step: int) -> list[tuple[int, int]]:
    """[start, stop) runs of about ``step`` designs that never split an array shape's (rows, cols) run
    unless it alone exceeds ``step``: a chunk of one shape computes what depends on the layer and the
    shape only once (``_Designs.one_shape``)."""
    rc = np.hstack([D.rows, D.cols])
    edges = np.flatnonzero(np.any(rc[1:] != rc[:-1], axis=1)) + 1
    bounds = [0, *edges.tolist(), len(rc)]
    out: list[tuple[int, int]] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if out and out[-1][1] - out[-1][0] + hi - lo <= step and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)  # whole shape runs share a chunk
            continue
        parts = -(-(hi - lo) // step)  # equal parts, not a full run and a sliver
        cuts = [lo + (hi - lo) * k // parts for k in range(parts + 1)]
        out.extend(zip(cuts[:-1], cuts[1:]))
    return out


_NUMERIC_ATTRS = attrgetter(
    "rows",
    "cols",
    "ifmap_sram_kb",
    "filter_sram_kb",
    "ofmap_sram_kb",
    "input_bits",
    "weight_bits",
    "acc_bits",
    "tech_node_nm",
)
_NOC_BW = attrgetter("noc_bw_bytes_per_cycle")
_DRAM_BW = attrgetter("dram_bw_bytes_per_cycle")
_PORTS = attrgetter("dram_ports")


def _numeric(accs: Sequence[Accelerator]) -> np.ndarray:
    """(designs, 9) table of ``_NUMERIC_ATTRS``."""
    return np.array(list(map(_NUMERIC_ATTRS, accs)), dtype=np.float64).reshape(len(accs), 9)


def _designs(accs: Sequence[Accelerator], tech: TechTable, num: np.ndarray | None = None) -> _Designs:
    """The designs' parameters, read as one table (no per-design Python arithmetic; ``num``: their
    ``_numeric`` table when the caller has it), and their energies once per distinct (node,
    scratchpads, widths)."""
    num = _numeric(accs) if num is None else num
    first, which = _unique_rows(num[:, 2:])  # (energies depend on the scratchpads, widths and node)
    keys = [
        (a.tech_node_nm, (a.ifmap_sram_kb, a.filter_sram_kb, a.ofmap_sram_kb), a.input_bits, a.weight_bits, a.acc_bits)
        for a in (accs[i] for i in first.tolist())
    ]
    e_table = np.array([_energies_of(tech, *k) for k in keys], dtype=np.float64)[which]

    def bandwidth(get: attrgetter) -> np.ndarray:  # None (unlimited) reads as NaN, stored as inf
        a = np.array(list(map(get, accs)), dtype=np.float64).reshape(-1, 1)
        a[np.isnan(a)] = np.inf
        return a

    col = {f: num[:, i : i + 1] for i, f in enumerate(("rows", "cols", "kb_in", "kb_w", "kb_out", "ib", "wb", "accb"))}
    energy = {f: e_table[:, i : i + 1] for i, f in enumerate(_DESIGN_FIELDS[11:])}
    return _Designs(
        rows=col["rows"].astype(np.int64),
        cols=col["cols"].astype(np.int64),
        cap_in=col["kb_in"] * 512.0,
        cap_w=col["kb_w"] * 512.0,
        cap_out=col["kb_out"] * 512.0,
        noc_bw=bandwidth(_NOC_BW),
        dram_bw=bandwidth(_DRAM_BW),
        shared=(np.array(list(map(_PORTS, accs))) == "shared").reshape(-1, 1),
        ib=col["ib"].copy(),
        wb=col["wb"].copy(),
        accb=col["accb"].copy(),
        **energy,
    )


# ---- layer arrays --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Layers:
    """Layer sizes as (1, layers) arrays."""

    dims: dict[Dim, np.ndarray]  # int64
    strides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # stride_h, stride_w, dilation_h, dilation_w
    macs: np.ndarray
    out_words: np.ndarray
    in_words: np.ndarray
    vector_ops: np.ndarray
    hw: tuple[np.ndarray, np.ndarray] = (np.ones((1, 1)), np.ones((1, 1)))  # unpadded input height, width


def _layers(layers: Sequence[Layer]) -> _Layers:
    def row(values: list) -> np.ndarray:
        return np.array(values, dtype=np.int64).reshape(1, -1)

    per_layer = [l.dims() for l in layers]
    dims = {d: row([ld[d] for ld in per_layer]) for d in Dim}
    strides: Any = tuple(
        np.array([getattr(l, f) for l in layers], dtype=np.float64).reshape(1, -1)
        for f in ("stride_h", "stride_w", "dilation_h", "dilation_w")
    )
    f64 = lambda xs: np.array(xs, dtype=np.float64).reshape(1, -1)  # noqa: E731
    return _Layers(
        dims,
        strides,
        f64([l.macs for l in layers]),
        f64([l.output_words for l in layers]),
        f64([l.input_words for l in layers]),
        f64([l.vector_ops for l in layers]),
        (f64([l.h for l in layers]), f64([l.w for l in layers])),
    )


# ---- the vectorized cores ------------------------------------------------------------------------
def _port_time(rd_in, rd_w, out_bytes, bw, shared):
    """Cycles the DRAM ports need for these bytes: the slowest per-operand port, or one shared port."""
    per_operand = np.maximum(np.maximum(rd_in, rd_w), out_bytes)
    total = rd_in + rd_w + out_bytes
    return np.where(shared, total, per_operand) / bw


# ---- fold-level double buffering (profiles rtl, ideal; scalesim off SCALE-Sim's arrays) ----------
# The hardware is the cycle-level simulator's (coexplore.sim.cycle.foldmem, docs/timing.md): folds in
# the order outer dims > column folds > row folds, one of a few tile shapes per fold, a tile loaded
# when it changes, a whole input loaded once when it fits half its scratchpad, outputs drained per
# finished tile (or spilled as partial sums when an accumulating tile does not fit), whole beats.
# Here every sum over folds is a sum over fold *shapes* times their counts, so it stays vectorized.
def _axis_shapes(axis, fit, dims: dict[Dim, np.ndarray], size: np.ndarray) -> list[tuple[Any, Any, dict, Any, bool]]:
    """[(count, words covered, {dim: extent}, is-first-fold, is-last-fold)] of the fold shapes along one axis."""
    if axis.pack is Pack.FLATTEN:
        total: Any = 1.0
        for d in axis.dims:
            total = total * dims[d]
        folds = np.asarray(fit.folds, dtype=np.float64)
        out: list[tuple[Any, Any, dict, Any, bool]] = []
        for n_folds, span, is_first, is_last in (
            (folds - 1, size + 0.0 * total, folds > 1, False),
            (np.ones_like(folds), total - (folds - 1) * size, folds == 1, True),
        ):
            ext, rest = {}, span
            for d in reversed(axis.dims):
                ext[d] = np.minimum(dims[d], rest)
                rest = np.ceil(rest / dims[d])
            out.append((n_folds, span, ext, is_first, is_last))
        return out
    per_dim: list[tuple[Dim, list[tuple[Any, Any, Any, bool]]]] = []
    for d in axis.dims:
        t = np.asarray(fit.tile[d], dtype=np.float64)
        f = np.ceil(dims[d] / t)
        per_dim.append((d, [(f - 1, t, f > 1, False), (np.ones_like(f), dims[d] - (f - 1) * t, f == 1, True)]))
    out = []
    for combo in product(*[opts for _, opts in per_dim]):
        count: Any = 1.0
        cover: Any = 1.0
        first: Any = True
        last, ext = True, {}
        for (d, _), (c, e, fst, lst) in zip(per_dim, combo):
            count, cover, first, last = count * c, cover * e, first & fst, last and lst
            ext[d] = e
        out.append((count, cover, ext, first, last))
    return out


def _span(e_out, e_k, stride, dilation, limit):
    return np.minimum((e_out - 1) * stride + (e_k - 1) * dilation + 1, limit)


@dataclass(frozen=True, slots=True)
class FoldMemory:
    """What the fold-level memory model gives one mapping, as (designs, layers) arrays."""

    latency_cycles: Any
    dram_read_input_bytes: Any
    dram_read_weight_bytes: Any
    dram_read_output_bytes: Any  # spilled partial sums read back
    dram_write_output_bytes: Any  # finished outputs and spilled partial sums


@dataclass(frozen=True, slots=True)
class FoldDram:
    """The fold-level memory model's sums over fold shapes for one mapping, as arrays that broadcast
    to (designs, layers): DRAM bytes and port beats per operand, and the terms of the critical paths
    that ``_fold_latency`` takes the longest of (cycles unless named beats; a beat is one port cycle).
    It does not depend on the DRAM port arrangement, so one value serves shared and per-operand ports."""

    dram_read_input_bytes: Any
    dram_read_weight_bytes: Any
    dram_read_output_bytes: Any  # spilled partial sums read back
    dram_write_output_bytes: Any  # finished outputs and spilled partial sums
    input_beats: Any  # every input load, with the port idle time the double buffer forces
    weight_beats: Any
    output_beats: Any  # drains and partial-sum spills
    first_input_beats: Any  # loads before the first fold can start
    first_weight_beats: Any
    last_output_beats: Any  # the last fold's drain
    input_tail_cycles: Any  # folds fed by the last input load
    weight_tail_cycles: Any
    input_use_cycles: Any  # from the first fold's start to the release of the first load
    weight_use_cycles: Any
    first_group_cycles: Any  # until the first output tile is finished
    group_parity_cycles: Any  # compute + drain of every other accumulation group; None: no such chain
    several_column_folds: Any  # bool: the parity chain applies
    spill_chain_cycles: Any  # column folds chained through partial-sum spills
    spill_first_cycles: Any
    any_spill: Any  # bool
    resident_input: Any  # bool: the input is loaded whole before the first fold
    compute_cycles: Any  # folds x fold time
    setup_cycles: Any  # before the first fold, at the least
    once_cycles: Any
    drain_latency_cycles: float
    unlimited_bandwidth: Any  # bool: no DRAM stalls at all


@dataclass(frozen=True, slots=True)
class _GroupDrain:
    """One accumulation group (a column fold whose row folds accumulate): compute + drain cycles."""

    count: Any
    last_column: bool
    cycles: Any


def _fold_dram(
    L: _Layers,
    D: _Designs,
    df: Dataflow,
    mapping: Mapping,
    profile: TimingProfile,
    plan,
    weight_by_n: bool,
    fold_time,
    once,
    resident_input: bool,
) -> FoldDram:
    """DRAM traffic and port beats of the fold-level memory model, summed over fold shapes."""
    prof = profile.for_template(df.name)
    drain_part = 0.0
    if profile.model_output_drain and not profile.drain_during_next_fold:
        drain_part = df.timing.drain(rows=D.rows, cols=D.cols, T=plan.temporal_steps)
    fill = 0.0 if profile.overlap_folds else df.timing.fill(rows=D.rows, cols=D.cols, T=plan.temporal_steps)
    head = fold_time - plan.temporal_steps - fill - drain_part  # the preload share of a fold
    dims = {d: v.astype(np.float64) for d, v in L.dims.items()}
    sh, sw, dh, dw = L.strides
    rows, cols = D.rows.astype(np.float64), D.cols.astype(np.float64)
    bw, inf_bw = D.dram_bw, np.isinf(D.dram_bw)
    rf = np.asarray(plan.rows.folds, dtype=np.float64)
    plan_cf = np.asarray(plan.cols.folds, dtype=np.float64)
    outer: Any = 1.0
    for d in mapping.outer:
        outer = outer * dims[d]
    F = np.asarray(plan.folds, dtype=np.float64)
    stationary = df.stationary
    half = {Operand.INPUT: D.cap_in, Operand.WEIGHT: D.cap_w, Operand.OUTPUT: D.cap_out}
    width = (lambda b: 8 * np.ceil(b / 8)) if prof.whole_byte_words else (lambda b: b)  # noqa: E731
    ib, wb, ab = width(D.ib), width(D.wb), width(D.accb)
    bits = {Operand.INPUT: ib, Operand.WEIGHT: wb, Operand.OUTPUT: ab}
    out_bits = ab if prof.drain_accumulators else ib
    op_dims = {
        Operand.INPUT: operand_dims(Operand.INPUT),
        Operand.WEIGHT: operand_dims(Operand.WEIGHT, weight_by_n),
        Operand.OUTPUT: OUTPUT_DIMS,
    }
    row_dims, col_dims = set(mapping.rows.dims), set(mapping.cols.dims)
    temporal = {d: dims[d] for d in mapping.temporal}

    def words(op: Operand, ext: dict, rcover, ccover):
        e = {d: ext.get(d, temporal.get(d, 1.0)) for d in Dim}
        if op is Operand.INPUT:
            return (
                e[Dim.N]
                * e[Dim.C]
                * _span(e[Dim.P], e[Dim.R], sh, dh, L.hw[0])
                * _span(e[Dim.Q], e[Dim.S], sw, dw, L.hw[1])
            )
        w: Any = 1.0
        placed: set[Dim] = set()
        for axis_dims, cover in ((row_dims, rcover), (col_dims, ccover)):
            if axis_dims <= op_dims[op]:
                w, placed = w * cover, placed | axis_dims
        for d in op_dims[op] - placed - {Dim.G}:
            w = w * e[d]
        return w

    whole_lines: dict[tuple[Operand, int], Any] = {}  # beats that do not depend on the tile, per width array

    def beats(op: Operand, w, ext: dict, nbits):
        line_weights = op is Operand.WEIGHT and prof.weight_line_words > 0
        if not line_weights and not (prof.array_padded_tiles and op is not Operand.INPUT and col_dims & op_dims[op]):
            return np.where(inf_bw, 0.0, np.ceil(w * nbits / 8 / bw - 1e-9))
        key = (op, id(nbits))
        if key not in whole_lines:  # whole weight lines, or whole array-wide lines
            if line_weights:
                b = rows * np.ceil(prof.weight_line_words * nbits / 8 / bw - 1e-9)
            else:
                lines = rows if row_dims & op_dims[op] else 1.0
                for d in op_dims[op] - row_dims - col_dims - {Dim.G}:
                    lines = lines * temporal.get(d, 1.0)
                b = lines * np.ceil(cols * nbits / 8 / bw - 1e-9)
            whole_lines[key] = (nbits, np.where(inf_bw, 0.0, b))  # (holds nbits: its id stays its own)
        return whole_lines[key][1]

    in_total = L.in_words * ib / 8
    resident = np.full_like(in_total + rows, bool(resident_input), dtype=bool) & (in_total <= half[Operand.INPUT])
    loaded = (Operand.INPUT, Operand.WEIGHT)
    # runs of the innermost outer loop that indexes an operand not indexed by the array axes
    outer_runs: dict[Operand, Any] = {}
    for op in loaded + (Operand.OUTPUT,):
        prod_: Any = 1.0
        runs: Any = 1.0
        for d in mapping.outer:
            prod_ = prod_ * dims[d]
            if d in op_dims[op]:
                runs = prod_
        outer_runs[op] = runs
    # sums over fold shapes: DRAM bytes and port beats per operand, the first fold's loads, the last
    # fold's drain, and the spill chain of accumulation groups whose partial sums leave the chip
    zero: Any = 0.0
    rd_in = rd_w = rd_out = wr_out = b_in = b_w = b_out = zero
    first_in = first_w = last_out = spill_chain = spill_first = zero
    group_cd: list[_GroupDrain] = []
    any_spill: Any = False
    rows_out = bool(row_dims & OUTPUT_DIMS) or stationary is Operand.OUTPUT
    row_shapes = _axis_shapes(mapping.rows, plan.rows, dims, rows)
    col_shapes = _axis_shapes(mapping.cols, plan.cols, dims, cols)

    def passes(ext, rcov, ccov):
        w = {op: words(op, ext, rcov, ccov) for op in (Operand.INPUT, Operand.WEIGHT, Operand.OUTPUT)}
        n = np.ones_like(rows + w[Operand.OUTPUT])
        for op in loaded:
            if op is not stationary:
                streamed = ~resident if op is Operand.INPUT else True
                n = np.maximum(n, np.where(streamed, np.ceil(w[op] * bits[op] / 8 / half[op] - 1e-9), 1.0))
        n_out = np.ones_like(n)
        if stationary is not Operand.OUTPUT:
            n_out = np.ceil(w[Operand.OUTPUT] * ab / 8 / half[Operand.OUTPUT] - 1e-9)
            n = np.maximum(n, n_out)
        return w, n, n_out

    tails: dict[Operand, Any] = {op: 0.0 for op in loaded}
    uses: dict[Operand, Any] = {
        op: 0.0 for op in loaded
    }  # from the first fold's start to the release of the first load
    idle: dict[Operand, Any] = {op: 0.0 for op in loaded}  # port idle time forced by the double buffer (see below)
    first_group: Any = 0.0
    for cc, ccov, cext, cfirst, clast in col_shapes:
        seg: dict[str, Any] = {"in": 0.0, "w": 0.0, "out": 0.0}  # port beats of one column fold of this shape
        # passes of the full and edge row folds of this column shape: a streamed tile kept over the
        # row folds of a column fold is reloaded by every fold once some fold splits it into passes
        shapes = [passes({**rext, **cext}, rcov, ccov) for _, rcov, rext, _, _ in row_shapes]
        n_full, n_edge = shapes[0][1], shapes[-1][1]
        for ri, (rc, _rcov, rext, rfirst, rlast) in enumerate(row_shapes):
            count = rc * cc * outer
            ext = {**rext, **cext}
            first = rfirst & cfirst
            last = rlast and clast  # the edge shape on both axes is the last fold's
            w, n, n_out = shapes[ri]
            spill = (n_out > 1) & (rf > 1) & (not rows_out)
            spills = bool(np.any(spill))  # else every spill term below is skipped (np.where would drop it)
            ftn = fold_time / n  # one pass of a fold
            for op in loaded:
                b_op = beats(op, w[op], ext, bits[op])
                # the innermost loop with more than one trip that indexes the operand sets its loads
                by_row = (not prof.reuse_tiles) | (bool(row_dims & op_dims[op]) & (rf > 1))
                by_col = ~by_row & (bool(col_dims & op_dims[op]) & (plan_cf > 1))
                # a column fold's tile is kept over its row folds
                c_frac, c_tail = 1.0 / rf, rf * fold_time
                if op is not stationary:
                    split_full = (n_full > 1) & (rf > 1)
                    split_edge = n_edge > 1
                    if ri == 0:  # full row folds
                        c_frac = np.where(split_full, 1.0, np.where(split_edge, 1.0 / np.maximum(rf - 1, 1), c_frac))
                    else:
                        c_frac = np.where(split_full | split_edge, 1.0, c_frac)
                    c_tail = np.where(split_full | split_edge, ftn, c_tail)
                # else an outer loop (or none): one tile per run of the outer loops down to it
                runs = (
                    outer_runs[op]
                    * np.where(bool(col_dims & op_dims[op]), plan_cf, 1.0)
                    * np.where(bool(row_dims & op_dims[op]), rf, 1.0)
                )
                o_frac, o_tail = runs / F, F / runs * fold_time
                if op is not stationary:
                    o_frac = np.where(n > 1, 1.0, o_frac)
                    o_tail = np.where(n > 1, ftn, o_tail)
                frac = np.where(by_row, 1.0, np.where(by_col, c_frac, o_frac))
                tail = np.where(by_row, ftn, np.where(by_col, c_tail, o_tail))
                if last:
                    tails[op] = tails[op] + tail
                # a load is released after its last fold's preload (stationary) or stream
                per_load = np.maximum(tail, ftn) / ftn
                held = np.where(n > 1, 0.0, (per_load - 1) * fold_time)
                uses[op] = uses[op] + np.where(first, held + (head if op is stationary else ftn - drain_part), 0.0)
                if ri == len(row_shapes) - 1 and op is not stationary:
                    # Only two loads run ahead: after the short load of an edge fold, the next fold's
                    # load waits for the release of the tile two back (the last full fold's). Edge
                    # folds: the last row fold of every column fold, or with one row fold the last
                    # column fold of every outer iteration.
                    wait = np.maximum(fold_time - drain_part - b_op, 0.0) * (n == 1)
                    if op is Operand.INPUT:
                        wait = np.where(resident, 0.0, wait)
                    rows_idx, cols_idx = bool(row_dims & op_dims[op]), bool(col_dims & op_dims[op])
                    by_rows = np.maximum(cc * outer - (1.0 if clast else 0.0), 0.0) * (rf > 1) * rows_idx
                    by_cols = (np.maximum(outer - 1.0, 0.0) if clast else 0.0) * (rf == 1) * (plan_cf > 1) * cols_idx
                    idle[op] = idle[op] + (by_rows + by_cols) * wait
                nbytes = count * frac * w[op] * bits[op] / 8
                nbeats = count * frac * b_op
                fb = b_op / (n if op is not stationary else 1.0)
                if op is Operand.INPUT:
                    seg["in"] = seg["in"] + np.where(resident, 0.0, rc * frac * b_op)
                    rd_in = rd_in + np.where(resident, 0.0, nbytes)
                    b_in = b_in + np.where(resident, 0.0, nbeats)
                    first_in = first_in + np.where(first & ~resident, fb, 0.0)
                else:
                    seg["w"] = seg["w"] + rc * frac * b_op
                    rd_w = rd_w + nbytes
                    b_w = b_w + nbeats
                    first_w = first_w + np.where(first, fb, 0.0)
            # outputs: drained per finished tile (per fold, or per column fold when row folds accumulate)
            g = 1.0 if rows_out else 1.0 / rf
            chunked = n_out > 1  # an output tile that does not fit moves one chunk per pass
            first_group = first_group + np.where(
                first, np.where(chunked, ftn, fold_time * (1.0 if rows_out else rf)), 0.0
            )
            wo = w[Operand.OUTPUT]
            setup_d = prof.drain_setup_cycles
            fin = beats(Operand.OUTPUT, wo, ext, out_bits) + setup_d
            keep = count * g
            drained = keep * np.where(chunked, fin + (n - 1) * setup_d, fin)
            if spills:
                psum = beats(Operand.OUTPUT, wo, ext, ab)
                wr_out = wr_out + np.where(
                    spill, count * wo * ((rf - 1) / rf * ab + out_bits / rf) / 8, keep * wo * out_bits / 8
                )
                rd_out = rd_out + np.where(spill, count * wo * (rf - 1) / rf * ab / 8, 0.0)
                b_out = b_out + np.where(
                    spill, count * ((rf - 1) / rf * (psum + setup_d) + fin / rf + (rf - 1) / rf * psum), drained
                )
                seg["out"] = seg["out"] + np.where(spill, 0.0, rc * g * fin)
            else:
                wr_out = wr_out + keep * wo * out_bits / 8
                b_out = b_out + drained
                seg["out"] = seg["out"] + rc * g * fin
            if rlast and not rows_out:  # one accumulation group per column fold: C_g + D_g
                group_cd.append(_GroupDrain(cc, clast, rf * fold_time + prof.drain_latency_cycles + fin))
            if rlast:  # once per column shape: its column folds, when some column shape spills
                one = np.maximum(np.maximum(rf * fold_time, seg["in"]), np.maximum(seg["w"], seg["out"]))
                if spills:
                    spill_chain = spill_chain + cc * outer * np.where(
                        spill, _spill_group(fold_time, n, rf, psum, fin, setup_d), one
                    )
                    spill_first = spill_first + np.where(spill & cfirst, (fin + setup_d) / n, 0.0)
                    any_spill = any_spill | spill
                else:
                    spill_chain = spill_chain + cc * outer * one
            if last:
                last_out = last_out + np.where(chunked, fin / n, fin)
    b_in = b_in + idle[Operand.INPUT]
    b_w = b_w + idle[Operand.WEIGHT]
    rd_in = rd_in + np.where(resident, in_total, 0.0)
    res_beats = np.where(inf_bw, 0.0, np.ceil(in_total / bw - 1e-9))
    b_in = b_in + np.where(resident, res_beats, 0.0)
    first_in = np.where(resident, res_beats, first_in)
    setup = np.asarray(
        prof.first_fold_setup_expr()(rows=rows, cols=cols, T=np.asarray(plan.temporal_steps, dtype=np.float64)),
        dtype=np.float64,
    )
    group_parity = None
    if group_cd and profile.double_buffered_dram and not profile.drain_during_next_fold:
        # The output tile is double-buffered: group g+2 starts after group g has drained, so
        # every other group chains compute + drain (start + the larger parity sum bounds it).
        cd_full, cd_edge = group_cd[0].cycles, group_cd[-1].cycles
        total = plan_cf * outer
        even_edge = np.where(plan_cf % 2 == 0, 0.0, np.floor(outer / 2))  # edge groups at even places
        odd_edge = outer - even_edge
        n_even, n_odd = np.ceil(total / 2), np.floor(total / 2)
        par_even = (n_even - even_edge) * cd_full + even_edge * cd_edge
        par_odd = (n_odd - odd_edge) * cd_full + odd_edge * cd_edge
        group_parity = np.maximum(par_even, par_odd)
    return FoldDram(
        dram_read_input_bytes=rd_in,
        dram_read_weight_bytes=rd_w,
        dram_read_output_bytes=rd_out,
        dram_write_output_bytes=wr_out,
        input_beats=b_in,
        weight_beats=b_w,
        output_beats=b_out,
        first_input_beats=first_in,
        first_weight_beats=first_w,
        last_output_beats=last_out,
        input_tail_cycles=np.where(resident, F * fold_time, tails[Operand.INPUT]),
        weight_tail_cycles=tails[Operand.WEIGHT],
        input_use_cycles=np.where(resident, 0.0, uses[Operand.INPUT]),
        weight_use_cycles=uses[Operand.WEIGHT],
        first_group_cycles=first_group,
        group_parity_cycles=group_parity,
        several_column_folds=plan_cf > 1,
        spill_chain_cycles=spill_chain,
        spill_first_cycles=spill_first,
        any_spill=any_spill,
        resident_input=resident,
        compute_cycles=F * fold_time,
        setup_cycles=setup,
        once_cycles=once,
        drain_latency_cycles=float(prof.drain_latency_cycles),
        unlimited_bandwidth=inf_bw,
    )


def _fold_latency(t: FoldDram, double_buffered: bool, shared: bool) -> Any:
    """Latency of the fold-level memory model from its traffic sums, with one DRAM port per operand
    or one ``shared`` port: the longest of the critical paths when DRAM is double-buffered, else
    every fold and every port's beats one after another."""
    compute, lat, lo, once = t.compute_cycles, t.drain_latency_cycles, t.last_output_beats, t.once_cycles
    b_in, b_w, b_out = t.input_beats, t.weight_beats, t.output_beats
    fi, fw = t.first_input_beats, t.first_weight_beats
    if double_buffered:
        # critical paths: the folds; each input port's loads then the folds its last load feeds; the
        # output port's drains, which start when the first output tile is finished
        tail_in = t.input_tail_cycles
        start = np.maximum(fi + fw, t.setup_cycles) if shared else np.maximum(np.maximum(fi, fw), t.setup_cycles)
        # (only two loads run ahead of the folds: the rest of a port's loads follow the first fold)
        ahead_in = np.where(t.resident_input, b_in, np.minimum(b_in, 2 * fi))
        chains = [
            start + compute + lat + lo,
            b_in + tail_in + lat + lo,
            b_w + t.weight_tail_cycles + lat + lo,
            np.where(b_in > ahead_in, start + t.input_use_cycles + b_in - ahead_in + tail_in + lat + lo, 0.0),
            np.where(
                b_w > 2 * fw,
                start + t.weight_use_cycles + b_w - 2 * fw + t.weight_tail_cycles + lat + lo,
                0.0,
            ),
            start + t.first_group_cycles + lat + b_out,
        ]
        if t.group_parity_cycles is not None:
            chains.append(np.where(t.several_column_folds, start + t.group_parity_cycles - lat, 0.0))
        chains.append(np.where(t.any_spill, start + t.spill_chain_cycles - t.spill_first_cycles + lat + lo, 0.0))
        if shared:
            chains.append(b_in + b_w + b_out + lat)
        latency = np.maximum.reduce(np.broadcast_arrays(*chains)) + once
    else:
        latency = compute + b_in + b_w + b_out + lat + once
    return np.where(t.unlimited_bandwidth, compute + once, latency)


_MEMORY_FIELDS = ("rows", "cols", "cap_in", "cap_w", "cap_out", "dram_bw", "shared", "ib", "wb", "accb")


_CAPACITY_FIELDS = ("cap_in", "cap_w", "cap_out", "ib", "wb", "accb")


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct row, each row's distinct-row number) of a 2-D array."""
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(keys), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _fold_dram_unique(
    L: _Layers,
    D: _Designs,
    df: Dataflow,
    mapping: Mapping,
    profile: TimingProfile,
    weight_by_n: bool,
    resident_input: bool,
    timed: tuple[FoldPlan, Any, Any] | None = None,
) -> FoldMemory:
    """``_fold_dram`` once per distinct memory-relevant design (array, scratchpads, DRAM bandwidth,
    widths): designs that differ only in NoC bandwidth, node, energies or DRAM port arrangement share
    it, and the latency is then taken per port arrangement present.

    Designs of one array shape (``D.rows`` of size 1; ``timed`` is then the caller's plan, fold time
    and once) are evaluated on a grid of their distinct scratchpad/width configurations (axis 0) x
    their distinct DRAM bandwidths (axis 1) x layers, so that everything that does not depend on
    the bandwidth (tiles, passes, DRAM bytes) is computed once per configuration."""
    n_l = L.macs.shape[1]
    shared = np.asarray(D.shared).reshape(-1)
    one_shape = D.rows.size == 1 and D.cols.size == 1
    shapes = np.hstack([np.asarray(D.rows, dtype=np.float64), np.asarray(D.cols, dtype=np.float64)])
    s_first, s_inv = _unique_rows(shapes)
    c_first, c_inv = _unique_rows(np.hstack([np.asarray(getattr(D, f), dtype=np.float64) for f in _CAPACITY_FIELDS]))
    bws, b_inv = np.unique(np.asarray(D.dram_bw, dtype=np.float64).reshape(-1), return_inverse=True)
    index: tuple[Any, ...]
    if len(s_first) * len(c_first) * len(bws) <= len(shared):
        # a grid: array shapes (axis 0) x scratchpads and widths (axis 1) x bandwidths (axis 2) x layers
        grid = {f: np.asarray(getattr(D, f))[c_first].reshape(1, -1, 1, 1) for f in _CAPACITY_FIELDS}
        rows, cols = (np.asarray(getattr(D, f))[s_first].reshape(-1, 1, 1, 1) for f in ("rows", "cols"))
        Du = replace(D, rows=rows, cols=cols, dram_bw=bws.reshape(1, 1, -1, 1), **grid)
        shape: tuple[int, ...] = (len(s_first), len(c_first), len(bws), n_l)
        index = (np.zeros_like(c_inv) if one_shape else s_inv, c_inv, b_inv.reshape(-1))
    else:
        fields = [f for f in _MEMORY_FIELDS if f != "shared" and not (one_shape and f in ("rows", "cols"))]
        first, inverse = _unique_rows(np.hstack([np.asarray(getattr(D, f), dtype=np.float64) for f in fields]))
        Du = D.take(first)
        shape, index = (len(first), n_l), (inverse,)
    if timed is not None and one_shape:
        plan, fold_time, once = timed
    else:
        plan = plan_folds(mapping, L.dims, Du.rows, Du.cols)
        fold_time, once = fold_timing(df.timing, profile, Du.rows, Du.cols, plan.temporal_steps)
        once = once + profile.end_offset_cycles
    ft = _fold_dram(L, Du, df, mapping, profile, plan, weight_by_n, fold_time, once, resident_input)

    def spread(a: Any) -> Any:  # the distinct designs' values back to every design (a scalar stays one)
        return a if np.ndim(a) == 0 else np.broadcast_to(np.asarray(a, dtype=np.float64), shape)[index]

    double = profile.double_buffered_dram
    if shared.all() or not shared.any():
        latency = spread(_fold_latency(ft, double, bool(shared[0])))
    else:  # both arrangements on the distinct designs, then one gather picks each design's
        both = np.stack([np.broadcast_to(_fold_latency(ft, double, s), shape) for s in (False, True)])
        latency = both[(shared.astype(np.intp), *index)]
    memory = (
        ft.dram_read_input_bytes,
        ft.dram_read_weight_bytes,
        ft.dram_read_output_bytes,
        ft.dram_write_output_bytes,
    )
    return FoldMemory(latency, *(spread(m) for m in memory))


def _pick_layers(lay: _Layers, idx: np.ndarray) -> _Layers:
    """(len(idx), 1) columns of the layers at ``idx`` (of (1, layers) or (layers, 1) arrays)."""
    return _map_layers(lay, lambda a: a.reshape(-1)[idx].reshape(-1, 1))


def _map_layers(lay: _Layers, pick: Callable[[np.ndarray], np.ndarray]) -> _Layers:
    """``pick`` applied to every array of ``lay``."""
    s0, s1, s2, s3 = lay.strides
    return _Layers(
        {d: pick(v) for d, v in lay.dims.items()},
        (pick(s0), pick(s1), pick(s2), pick(s3)),
        pick(lay.macs),
        pick(lay.out_words),
        pick(lay.in_words),
        pick(lay.vector_ops),
        (pick(lay.hw[0]), pick(lay.hw[1])),
    )


def _fold_dram_pairs(
    L: _Layers,
    D: _Designs,
    df: Dataflow,
    mapping: Mapping,
    profile: TimingProfile,
    weight_by_n: bool,
    resident_input: bool,
    pair_keys: np.ndarray,
    both_ports: bool = False,
) -> FoldMemory:
    """``_fold_dram_unique`` for (pairs, 1) columns of layers and designs: ``_fold_dram`` once per
    distinct ``pair_keys`` (int64; pairs of one key have equal layers and equal memory-relevant
    design fields, see ``evaluate_pairs``), then per DRAM port arrangement (``both_ports``: the
    latency of both, stacked (per-operand ports, one shared port), whatever ``D.shared`` says)."""
    _, first, inverse = np.unique(pair_keys, return_index=True, return_inverse=True)
    Lu, Du = _pick_layers(L, first), D.take(first)
    plan = plan_folds(mapping, Lu.dims, Du.rows, Du.cols)
    fold_time, once = fold_timing(df.timing, profile, Du.rows, Du.cols, plan.temporal_steps)
    ft = _fold_dram(
        Lu, Du, df, mapping, profile, plan, weight_by_n, fold_time, once + profile.end_offset_cycles, resident_input
    )

    def spread(a: Any) -> Any:  # the distinct pairs' values back to every pair (a scalar stays one)
        return a if np.ndim(a) == 0 else np.broadcast_to(np.asarray(a, dtype=np.float64), (len(first), 1))[inverse]

    shared = np.asarray(D.shared).reshape(-1)
    double = profile.double_buffered_dram
    if both_ports:
        latency = np.stack([spread(_fold_latency(ft, double, s)) for s in (False, True)])
    elif shared.all() or not shared.any():
        latency = spread(_fold_latency(ft, double, bool(shared[0])))
    else:  # both arrangements on the distinct pairs, then one gather picks each pair's
        both = np.stack([np.broadcast_to(_fold_latency(ft, double, s), (len(first), 1)) for s in (False, True)])
        latency = both[shared.astype(np.intp), inverse]
    memory = (
        ft.dram_read_input_bytes,
        ft.dram_read_weight_bytes,
        ft.dram_read_output_bytes,
        ft.dram_write_output_bytes,
    )
    return FoldMemory(latency, *(spread(m) for m in memory))


_SPLIT_KEYS = ("split_noc_bytes", "split_folds", "split_fold_time")  # ``_mac_core(split=True)``'s NoC terms
_LAT = "latency_cycles"


def _noc_latency(
    part: dict[str, np.ndarray], at: np.ndarray, shared: np.ndarray, noc_bw: np.ndarray
) -> tuple[Any, Any]:
    """(latency, NoC excess cycles) of the split results ``part`` (flat arrays; latency (2, n)) at
    entries ``at`` for designs of these DRAM port arrangements and NoC bandwidths: ``_mac_core``'s
    own arithmetic, so equal to an unsplit evaluation."""
    noc_bytes, folds, fold_time = (part[k][at] for k in _SPLIT_KEYS)
    noc_per_fold = noc_bytes / folds / noc_bw
    noc_excess = folds * np.maximum(noc_per_fold - fold_time, 0.0)
    return part["latency_cycles"][shared.astype(np.intp), at] + noc_excess, noc_excess


def _spill_group(fold_time, n, rf, psum, fin, setup):
    """Cycles of one accumulation (rf folds of n passes) whose partial sums spill to DRAM.

    The output port serves W(p-1), R(p+1), W(p), ...: while pass p runs it writes the previous
    pass's chunk and reads the next pass's partial sums back, so pass p costs
    max(pass, W(p-1) + R(p+1)). Chunks: partial sums ``psum / n`` beats (read; written with the
    drain setup), finished outputs ``fin / n``; the first fold reads nothing back, the last writes
    finished outputs; the chunk written just before a group is the previous group's last.
    """
    pt = fold_time / n
    P, Wp, Fc = psum / n, psum / n + setup, fin / n + setup
    two = n >= 2
    terms = [
        (1.0, Fc, np.where(two, 0.0, P)),  # first pass: previous group's last write, next read
        (np.maximum(n - 2, 0.0), Wp, 0.0),  # the rest of the first fold (no read-back)
        (np.where(two, 1.0, 0.0), Wp, P),
        ((rf - 2) * n, Wp, P),  # middle folds
        (np.where(two, 1.0, 0.0), Wp, P),  # last fold
        (np.maximum(n - 2, 0.0), Fc, P),
        (1.0, np.where(two, Fc, Wp), 0.0),  # its last pass: the next group reads nothing back
    ]
    return sum(c * np.maximum(pt, w + r) for c, w, r in terms)


def _mac_core(
    L: _Layers,
    D: _Designs,
    df: Dataflow,
    lm: LayerMapping,
    profile: TimingProfile,
    weight_by_n: bool,
    detail: bool,
    pair_keys: np.ndarray | None = None,
    split: bool = False,
) -> dict[str, np.ndarray]:
    """One candidate mapping's results: (designs, layers) arrays from (designs, 1) designs and
    (1, layers) layers, or, with ``pair_keys`` (see ``_fold_dram_pairs``), (pairs, 1) arrays from
    (pairs, 1) columns of both (``evaluate_pairs``). ``split`` (pairs, fold memory model): the
    latency without its NoC term for both DRAM port arrangements, (2, pairs, 1), and the NoC terms
    (``_SPLIT_KEYS``), so that ``_noc_latency`` gives it for any NoC bandwidth and arrangement."""
    traits = traits_for(df)
    mapping = lm.loops
    dims = L.dims
    use_fold = profile.memory_model == "fold" or scalesim_shape(df, mapping) is None
    rows, cols, s_inv = D.rows, D.cols, None
    if use_fold and D.rows.size > 1 and pair_keys is None:
        # what depends on the layer and the array shape only, once per distinct shape
        s_first, s_inv = _unique_rows(np.hstack([D.rows, D.cols]))
        rows, cols = D.rows[s_first], D.cols[s_first]
    plan = plan_folds(mapping, dims, rows, cols)
    folds = plan.folds.astype(np.float64)
    fold_time, once = fold_timing(df.timing, profile, rows, cols, plan.temporal_steps)
    once = once + profile.end_offset_cycles
    if profile.memory_model == "scalesim" and scalesim_shape(df, mapping) is not None:
        once = once + (dims[Dim.G] - 1) * profile.end_offset_cycles  # SCALE-Sim counts each group from 0
    compute = folds * fold_time + once

    ext, pes_used = fold_extents(mapping, plan, dims)
    ft = fold_traffic(df, mapping, ext, dims, L.strides, traits, weight_by_n)
    t_in, t_w, t_out = ft.tile
    a_in, a_w, a_out = ft.delivered
    r_in, r_w, r_out = ft.receipts_per_pe
    w_out = L.out_words
    # Partial sums the array hands to the output buffer beyond the final outputs (reduction folds).
    partial = np.maximum(folds * a_out - w_out, 0.0)
    if s_inv is not None:
        n_s = len(rows)

        def per_design(a: Any) -> Any:  # a per-shape array back to every design
            return a[s_inv] if np.ndim(a) == 2 and a.shape[0] == n_s else a

        folds, fold_time, once, compute, pes_used, partial = map(
            per_design, (folds, fold_time, once, compute, pes_used, partial)
        )
        a_in, a_w, a_out, r_in, r_w, r_out = map(per_design, (a_in, a_w, a_out, r_in, r_w, r_out))
    ib, wb, accb = D.ib, D.wb, D.accb
    ob = ib

    noc_bytes = (folds * (a_in * ib + a_w * wb) + w_out * ob + 2 * partial * accb) / 8
    noc_per_fold = noc_bytes / folds / D.noc_bw
    noc_excess = folds * np.maximum(noc_per_fold - fold_time, 0.0)
    if use_fold:
        # The generated hardware's memory (see _fold_dram); a NoC slower than the fold adds its excess.
        fd = (
            _fold_dram_unique(L, D, df, mapping, profile, weight_by_n, lm.resident_input, (plan, fold_time, once))
            if pair_keys is None
            else _fold_dram_pairs(L, D, df, mapping, profile, weight_by_n, lm.resident_input, pair_keys, split)
        )
        latency = fd.latency_cycles if split else fd.latency_cycles + noc_excess
        rd_in, rd_w = fd.dram_read_input_bytes, fd.dram_read_weight_bytes
        out_rd, out_wr = fd.dram_read_output_bytes, fd.dram_write_output_bytes
        spill = out_rd * 8 / accb
        dram_bytes = rd_in + rd_w + out_rd + out_wr
    else:
        # SCALE-Sim's arrays: DRAM words per operand under the fold order with the shortest DRAM
        # time, then the fewest bytes (choosing by time keeps latency monotone: more buffer or
        # bandwidth never picks a slower order).
        in_dims, w_dims = operand_dims(Operand.INPUT), operand_dims(Operand.WEIGHT, weight_by_n)
        cap_in, cap_w, cap_out = D.cap_in * 8 / ib, D.cap_w * 8 / wb, D.cap_out * 8 / accb
        best: list[Any] = []
        for loops in fold_orders(mapping, plan, dims, weight_by_n):
            f_in = dram_fetches(t_in, cap_in, loops, in_dims) * (ib / 8)  # bytes from here on
            f_w = dram_fetches(t_w, cap_w, loops, w_dims) * (wb / 8)
            spill = np.maximum(dram_fetches(t_out, cap_out, loops, OUTPUT_DIMS) - w_out, 0.0) * (accb / 8)
            out_b = w_out * (ob / 8) + 2 * spill  # final outputs out, spilled partial sums out and back in
            port = _port_time(f_in, f_w, out_b, D.dram_bw, D.shared)
            total = f_in + f_w + out_b
            if not best:
                best = [port, total, f_in, f_w, spill]
                continue
            take = (port < best[0]) | ((port == best[0]) & (total < best[1]))
            best = [np.where(take, new, old) for new, old in zip((port, total, f_in, f_w, spill), best)]
        dram_time, dram_bytes, rd_in, rd_w, spill_b = best
        out_wr = w_out * ob / 8 + spill_b  # final outputs, then spilled partial sums
        out_rd = spill_b  # partial sums read back
        spill = spill_b * 8 / accb  # words
        dram_per_fold = dram_time / folds
        busy = np.maximum(fold_time, noc_per_fold)
        if profile.double_buffered_dram:
            first = _port_time(t_in * ib / 8, t_w * wb / 8, 0.0, D.dram_bw, D.shared)
            last = t_out * ob / 8 / D.dram_bw
            latency = folds * np.maximum(busy, dram_per_fold) + once + first + last
        else:
            latency = folds * (busy + dram_per_fold) + once
    out = {
        "latency_cycles": latency,
        "compute_cycles": compute,
        "dram_bytes": dram_bytes,
        "noc_excess_cycles": noc_excess,
    }
    if split:
        out.update(zip(_SPLIT_KEYS, (noc_bytes, folds, fold_time)))

    # Energy.
    macs = L.macs
    e_mac = macs * D.e_mac
    e_rf = macs * (ib + wb + 2 * accb) * D.e_rf
    hops = folds * pes_used
    e_noc = hops * (r_in * ib + r_w * wb + r_out * accb) * D.e_noc
    buf_in_rd, buf_w_rd = folds * a_in, folds * a_w
    f_in, f_w = rd_in * 8 / ib, rd_w * 8 / wb  # words
    buf_out_wr = w_out + partial + spill  # array writes (finals, partials) + partial refills from DRAM
    buf_out_rd = partial + w_out + spill  # partials back to the array + drains to DRAM
    e_buf = (
        (buf_in_rd + f_in) * ib * D.e_sram_in
        + (buf_w_rd + f_w) * wb * D.e_sram_w
        + (2 * w_out * ob + (2 * partial + 2 * spill) * accb) * D.e_sram_out
    )
    e_dram = dram_bytes * 8 * D.e_dram
    out["energy_pj"] = e_mac + e_rf + e_buf + e_noc + e_dram
    if detail:
        out.update(
            energy_mac_pj=e_mac,
            energy_rf_pj=e_rf,
            energy_buffer_pj=e_buf,
            energy_noc_pj=e_noc,
            energy_dram_pj=e_dram,
            dram_read_bytes=rd_in + rd_w + out_rd,
            dram_write_bytes=out_wr,
            buffer_read_words=buf_in_rd + buf_w_rd + buf_out_rd,
            buffer_write_words=f_in + f_w + buf_out_wr,
        )
    return out


def _vector_core(L: _Layers, D: _Designs, profile: TimingProfile, detail: bool) -> dict[str, np.ndarray]:
    """Pooling / element-wise layers: one op per column per cycle, streamed through DRAM."""
    ob = D.ib
    compute = np.ceil(L.vector_ops / D.cols)
    rd, wr = L.in_words * ob / 8, L.out_words * ob / 8
    noc_t = (rd + wr) / D.noc_bw
    # As the cycle-level simulator: load, compute and drain pipelined over half-scratchpad chunks, so
    # the first chunk's load and the last chunk's drain are exposed (docs/timing.md).
    chunks = np.maximum(1.0, np.maximum(np.ceil(rd / D.cap_in), np.ceil(wr / D.cap_out)))
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.ceil(rd / chunks / D.dram_bw)
        drain = np.ceil(wr / chunks / D.dram_bw)
    # One port shared by both streams carries a chunk's drain and the next chunk's load in one steady
    # state stage; the first load and the last drain are each exposed once, alone.
    port = np.where(D.shared, load + drain, np.maximum(load, drain))
    work = np.ceil(compute / chunks)
    pipelined = load + work + drain + (chunks - 1) * np.maximum(port, work)
    latency = np.where(np.isinf(D.dram_bw), compute, np.maximum(compute, pipelined))
    latency = np.maximum(latency, noc_t)
    words = L.in_words + L.out_words
    e_mac = L.vector_ops * D.e_vec
    e_buf = 2 * (L.in_words * D.e_sram_in + L.out_words * D.e_sram_out) * ob
    e_noc = words * ob * D.e_noc
    e_dram = (rd + wr) * 8 * D.e_dram
    # Results may broadcast to (designs, layers) only when stored; the caller's block assignment does it.
    out = {
        "latency_cycles": latency,
        "compute_cycles": compute,
        "dram_bytes": rd + wr,
        "noc_excess_cycles": 0.0,
        "energy_pj": e_mac + e_buf + e_noc + e_dram,
    }
    if detail:
        out.update(
            energy_mac_pj=e_mac,
            energy_rf_pj=0.0,
            energy_buffer_pj=e_buf,
            energy_noc_pj=e_noc,
            energy_dram_pj=e_dram,
            dram_read_bytes=rd,
            dram_write_bytes=wr,
            buffer_read_words=words,
            buffer_write_words=words,
        )
    return out


# ---- grouping and the public API ------------------------------------------------------------------
def _group_designs(accs: Sequence[Accelerator]) -> list[tuple[Dataflow, list[int]]]:
    """Design indices by template (equal Dataflow values share a group)."""
    dfs = list(map(_DATAFLOW, accs))
    by_id: dict[int, int] = {}  # the first design of each distinct object (hashing a Dataflow is slow)
    ids = np.fromiter((by_id.setdefault(k, i) for i, k in enumerate(map(id, dfs))), dtype=np.intp, count=len(dfs))
    merged: dict[Dataflow, list[int]] = {}
    for first in by_id.values():
        merged.setdefault(dfs[first], []).append(first)
    out = []
    for df, firsts in merged.items():
        idx = np.flatnonzero(np.isin(ids, firsts)) if len(firsts) > 1 else np.flatnonzero(ids == firsts[0])
        out.append((df, idx.tolist()))
    return out


@dataclass(frozen=True, slots=True)
class _LayerGroup:
    """Layers that take the same candidate mappings at the same operand widths."""

    candidates: tuple[LayerMapping, ...]  # empty: vector layers
    weight_by_n: bool  # matmul: the second operand is an activation indexed by N
    widths: tuple[int, int] | None  # (input bits, weight bits) the layer runs at; None: the accelerator's
    indices: list[int]
    same_loops_as: tuple[int, ...] = ()  # per candidate, the first candidate with equal loops


_KIND_BITS = attrgetter("kind", "input_bits", "weight_bits")


def _kind_widths(layers: Sequence[Layer]) -> dict[tuple, list[int]]:
    """Layer indices by (kind, input bits, second operand's bits), in order of first appearance."""
    out: dict[tuple, list[int]] = {}
    for j, (kind, ib, wb) in enumerate(map(_KIND_BITS, layers)):
        out.setdefault((kind, ib, wb if kind.has_weights else ib), []).append(j)
    return out


def _group_layers(
    layers: Sequence[Layer], df: Dataflow, prof: TimingProfile, kinds: dict[tuple, list[int]] | None = None
) -> list[_LayerGroup]:
    """Layer indices by the mappings the mapper may choose on ``df``, matmul-ness and operand widths
    (groups in order of first appearance, indices ascending; ``kinds``: ``_kind_widths(layers)`` when
    the caller groups the same layers for several templates)."""
    hardware = prof.for_template(df.name).generated_hardware
    keyed: dict[tuple, list[int]] = {}  # by (kind, widths) first: hashing candidate tuples per layer is slow
    for (kind, ib, wb), idx in (_kind_widths(layers) if kinds is None else kinds).items():
        keyed.setdefault((kind, None if hardware else (ib, wb)), []).extend(idx)
    groups: dict[tuple, list[int]] = {}
    for (kind, widths), idx in keyed.items():
        cands = candidate_mappings(df, kind, prof) if kind.has_macs else ()
        groups.setdefault((cands, kind is OpKind.MATMUL, widths), []).extend(idx)
    return [
        _LayerGroup(c, mm, w, sorted(idx), tuple(next(i for i, o in enumerate(c) if o.loops == lm.loops) for lm in c))
        for (c, mm, w), idx in groups.items()
    ]


def _check_widths(
    layers: Sequence[Layer], group: _LayerGroup, accs: Sequence[Accelerator], D: _Designs, idx: Sequence[int]
) -> None:
    """A layer wider than an accelerator's operand widths is refused (one line naming both); ``D``
    holds the widths of ``accs[idx]``, in that order."""
    if group.widths is None:
        return
    ib, wb = group.widths
    for k in np.flatnonzero((D.ib[:, 0] < ib) | (D.wb[:, 0] < wb))[:1].tolist():
        a = accs[idx[k]]
        if a.input_bits < ib or a.weight_bits < wb:
            name = layers[group.indices[0]].name
            raise SpecError(
                f"layer {name!r} needs {ib}-bit inputs and {wb}-bit weights; accelerator {a.label!r} "
                f"takes at most {a.input_bits}-bit inputs and {a.weight_bits}-bit weights"
            )


def _candidate_parts(
    lay: _Layers,
    D: _Designs,
    df: Dataflow,
    group: _LayerGroup,
    prof: TimingProfile,
    detail: bool,
    pair_keys: np.ndarray | None = None,
    split: bool = False,
) -> list[dict[str, Any]]:
    """Every candidate's results; a streamed twin of a resident candidate is the same evaluation
    when no input of the block fits half its scratchpad, so it is reused, not recomputed.
    ``pair_keys``: ``lay`` and ``D`` are (pairs, 1) columns of pairs with these keys (``_mac_core``)."""
    fits: bool | None = None  # whether some input fits half its scratchpad: asked only where a twin is
    parts: list[dict[str, Any]] = []
    for lm, twin in zip(group.candidates, group.same_loops_as):
        if twin < len(parts) and fits is None:
            fits = bool(np.any(lay.in_words * D.ib / 8 <= D.cap_in))
        parts.append(
            parts[twin]
            if twin < len(parts) and not fits
            else _mac_core(lay, D, df, lm, prof, group.weight_by_n, detail, pair_keys, split)
        )
    return parts


def _choose(parts: list[dict[str, Any]], keys: Sequence[str]) -> tuple[dict[str, Any], np.ndarray]:
    """Per element, the candidate with the least latency, then the least energy (first on ties)."""
    best = parts[0]
    pick = np.zeros(np.broadcast(best["latency_cycles"], best["energy_pj"]).shape, dtype=np.int8)
    for i, part in enumerate(parts[1:], start=1):
        lat, en = part["latency_cycles"], part["energy_pj"]
        take = (lat < best["latency_cycles"]) | ((lat == best["latency_cycles"]) & (en < best["energy_pj"]))
        if not np.any(take):
            continue
        best = {k: np.where(take, part[k], best[k]) for k in keys}
        pick = np.where(take, np.int8(i), pick)
    return best, pick


def _select(lay: _Layers, idx: np.ndarray) -> _Layers:
    """The layer columns ``idx`` of (1, layers) arrays."""
    return _map_layers(lay, lambda a: a[:, idx])


_DATAFLOW = attrgetter("dataflow")
_LAYER_KEY = attrgetter(*(f.name for f in fields(Layer) if f.name != "name"))


def _distinct_layers(layers: tuple[Layer, ...]) -> tuple[tuple[Layer, ...], np.ndarray | None]:
    """The distinct layers (equal in every field but the name; first occurrences, in order) and each
    layer's index among them (None: all distinct). Networks repeat layers (the blocks of a ResNet or
    a transformer): each distinct one is evaluated once and its results copied."""
    first: dict[tuple, int] = {}
    which = [first.setdefault(key, len(first)) for key in map(_LAYER_KEY, layers)]
    if len(first) == len(layers):
        return layers, None
    distinct: list[Layer] = []
    for layer, w in zip(layers, which):
        if w == len(distinct):  # a first occurrence
            distinct.append(layer)
    return tuple(distinct), np.asarray(which, dtype=np.intp)


def _areas(accs: Sequence[Accelerator], tech: TechTable, num: np.ndarray | None = None) -> np.ndarray:
    """``area`` of designs, once per distinct template object, array, scratchpads, widths and node
    (``num``: their ``_numeric`` table when the caller has it)."""
    ids = np.fromiter(map(id, map(_DATAFLOW, accs)), dtype=np.float64, count=len(accs))  # ids < 2^53
    table = np.hstack([ids.reshape(-1, 1), _numeric(accs) if num is None else num])
    first, which = _unique_rows(table)
    return np.array([area(accs[i], tech)[0] for i in first.tolist()], dtype=np.float64)[which]


def evaluate_batch(
    layers: Sequence[Layer],
    accs: Sequence[Accelerator],
    profile: TimingProfile | str = "rtl",
    tech: TechTable = DEFAULT_TECH,
    detail: bool = False,
) -> BatchResult:
    """Every layer on every accelerator: arrays of shape (len(accs), len(layers)).

    Designs are grouped by template and layers by the candidate mappings they take; each candidate is
    evaluated as arrays in cache-sized chunks of designs and the mapper keeps, per (design, layer),
    the one with the least latency, then energy (``BatchResult.mapping_index``, see
    ``choose_mapping``). No Python loop runs over (layer, design) pairs. Layers equal but for their
    name are evaluated once.
    """
    layers, accs = tuple(layers), tuple(accs)
    if not layers:
        raise CoexploreError("evaluate_batch: no layers given (expected at least one Layer)")
    if not accs:
        raise CoexploreError("evaluate_batch: no accelerators given (expected at least one Accelerator)")
    prof = resolve_profile(profile)
    all_named = layers
    from coexplore.sim import tiled  # that module calls this one; imported here, not at the top

    # (inside ``tiled.without_calls`` the NoC excess handed back must be per layer given: no merging)
    inside = getattr(tiled, "_INSIDE", None)
    layers, layer_of = _distinct_layers(layers) if inside is None or inside.get() is None else (layers, None)
    n_d, n_l = len(accs), len(layers)
    keys = ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj", "noc_excess_cycles") + (
        _DETAIL_KEYS if detail else ()
    )
    res = {k: np.empty((n_d, n_l)) for k in keys}
    chosen = np.zeros((n_d, n_l), dtype=np.int8)
    all_layers = _layers(layers)
    num = _numeric(accs)
    all_designs = _designs(accs, tech, num)
    area_um2 = _areas(accs, tech, num)
    for df, d_list in _group_designs(accs):
        # designs of one array shape next to each other (shapes in order of first appearance, a
        # stable sort): chunks of one shape share what depends on the layer and the shape only
        at = np.asarray(d_list, dtype=np.intp)
        shape_first, shape_id = _unique_rows(np.hstack([all_designs.rows[at], all_designs.cols[at]]))
        appearance = np.argsort(np.argsort(shape_first))  # rank of each distinct shape's first design
        at = at[np.argsort(appearance[shape_id], kind="stable")]
        designs = all_designs.take(at)
        d_idx = at.tolist()
        n_g = len(d_idx)
        rows_sel: Any = at
        if n_g == d_idx[-1] - d_idx[0] + 1 and np.all(np.diff(at) == 1):
            rows_sel = slice(d_idx[0], d_idx[-1] + 1)  # a run of accs: no scatter
        l_groups = _group_layers(layers, df, prof)
        order = np.concatenate([np.asarray(g.indices, dtype=np.intp) for g in l_groups])
        # results go straight to their place when the group's designs are a run of accs, else to a
        # block in group order that is scattered at the end
        direct = isinstance(rows_sel, slice)
        block = {k: res[k][rows_sel] if direct else np.empty((n_g, n_l)) for k in keys}
        pick_block = chosen[rows_sel] if direct else np.zeros((n_g, n_l), dtype=np.int8)
        lo = 0
        for group in l_groups:
            _check_widths(layers, group, accs, designs, d_idx)
            hi = lo + len(group.indices)
            lay = _select(all_layers, order[lo:hi])
            at_widths = designs if group.widths is None else designs.at_widths(*group.widths)
            cols_at: Any = order[lo:hi] if direct else slice(lo, hi)
            for start, stop in _shape_chunks(designs, max(1, CHUNK_ELEMENTS // len(group.indices))):
                step = stop - start
                chunk = at_widths.take(slice(start, stop)).one_shape()
                if not group.candidates:
                    part = _vector_core(lay, chunk, prof, detail)
                else:
                    parts = _candidate_parts(lay, chunk, df, group, prof, detail)
                    part, pick = _choose(parts, keys)
                    pick_block[start : start + step, cols_at] = pick
                for k in keys:
                    block[k][start : start + step, cols_at] = part[k]
            lo = hi
        if not direct:
            inverse = np.argsort(order)
            for k in keys:
                res[k][rows_sel] = np.take(block[k], inverse, axis=1)
            chosen[rows_sel] = np.take(pick_block, inverse, axis=1)
    if prof.memory_model == "scalesim":
        _scalesim_buffers(layers, accs, prof, res, tech)
    tiled.cost_calls(layers, accs, prof, res, tech)  # layers the generated WS/OS arrays run as several calls
    macs = all_layers.macs
    pes = (all_designs.rows * all_designs.cols).astype(np.float64)  # Accelerator.pes
    latency = res["latency_cycles"]
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(latency > 0, macs / (pes * latency), 0.0)
    out = {
        "latency_cycles": latency,
        "compute_cycles": res["compute_cycles"],
        "stall_cycles": latency - res["compute_cycles"],
        "energy_pj": res["energy_pj"],
        "utilization": util,
        "dram_bytes": res["dram_bytes"],
        **{k: res[k] for k in _DETAIL_KEYS if k in res},
    }
    if layer_of is not None:  # the distinct layers' columns back to every layer
        out = {k: np.take(v, layer_of, axis=1) for k, v in out.items()}
        chosen, macs = np.take(chosen, layer_of, axis=1), np.take(macs, layer_of, axis=1)
    assert macs.shape[1] == len(all_named)
    return BatchResult(
        latency_cycles=out["latency_cycles"],
        compute_cycles=out["compute_cycles"],
        stall_cycles=out["stall_cycles"],
        energy_pj=out["energy_pj"],
        utilization=out["utilization"],
        dram_bytes=out["dram_bytes"],
        area_um2=area_um2,
        macs=macs[0].copy(),
        detail={k: out[k] for k in _DETAIL_KEYS if k in out},
        mapping_index=chosen,
    )


@dataclass(frozen=True, slots=True)
class PairResult:
    """``evaluate_pairs``' results: arrays of shape (pairs,), entry p for the p-th (layer, design) pair."""

    latency_cycles: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    energy_pj: np.ndarray
    utilization: np.ndarray
    dram_bytes: np.ndarray
    noc_excess_cycles: np.ndarray  # cycles a NoC slower than the folds adds (included in latency_cycles)
    mapping_index: np.ndarray  # int8: the candidate the mapper kept (0 for vector layers)
    detail: dict[str, np.ndarray]  # with ``detail=True``: the energy breakdown, DRAM and buffer traffic


def evaluate_pairs(
    layers: Sequence[Layer],
    accs: Sequence[Accelerator],
    layer_idx: Sequence[int] | np.ndarray,
    design_idx: Sequence[int] | np.ndarray,
    profile: TimingProfile | str = "rtl",
    tech: TechTable = DEFAULT_TECH,
    detail: bool = False,
) -> PairResult:
    """Only the pairs (``layers[layer_idx[p]]``, ``accs[design_idx[p]]``), each as one call of the
    hardware: entry p equals ``evaluate_batch``'s [design_idx[p], layer_idx[p]] inside
    ``sim.tiled.without_calls`` (the post-pass that costs a layer as several calls does not run; the
    profile ``scalesim`` buffer emulation does).

    The grid of ``evaluate_batch`` evaluates every layer on every design; a caller that needs a
    scattered few of those pairs (the tiled post-pass: each sub-layer on the designs that run it)
    evaluates just those here, vectorized over pairs, with the fold-level memory model once per
    distinct (layer, memory-relevant design) and the rest once per distinct pair (see the module
    docstring: NoC bandwidth and port arrangement are applied per pair)."""
    layers, accs = tuple(layers), tuple(accs)
    li = np.asarray(layer_idx, dtype=np.int64).reshape(-1)
    di = np.asarray(design_idx, dtype=np.int64).reshape(-1)
    if len(li) != len(di):
        raise CoexploreError(
            f"evaluate_pairs: {len(li)} layer indices and {len(di)} design indices (expected one of each per pair)"
        )
    for name, idx, bound in (("layer", li, len(layers)), ("design", di, len(accs))):
        bad = idx[(idx < 0) | (idx >= bound)]
        if len(bad):
            raise CoexploreError(f"evaluate_pairs: {name} index {int(bad[0])} out of range (expected 0..{bound - 1})")
    prof = resolve_profile(profile)
    keys = ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj", "noc_excess_cycles") + (
        _DETAIL_KEYS if detail else ()
    )
    n = len(li)
    res = {k: np.empty(n) for k in keys}
    chosen = np.zeros(n, dtype=np.int8)
    if n == 0:
        empty = np.empty(0)
        return PairResult(
            empty, empty, empty, empty, empty, empty, empty, chosen, {k: res[k] for k in _DETAIL_KEYS if k in res}
        )
    distinct, layer_of = _distinct_layers(layers)
    lu = (li if layer_of is None else layer_of[li]).astype(np.intp)
    mask = np.zeros(len(accs), dtype=bool)
    mask[di] = True
    used = np.flatnonzero(mask)
    d_pos = (np.cumsum(mask) - 1)[di]  # each pair's design among the used ones
    used_accs = [accs[i] for i in used.tolist()]
    all_layers, all_designs = _layers(distinct), _designs(used_accs, tech)
    d_groups = _group_designs(used_accs)
    # Each distinct pair is evaluated once: equal layers on equal designs (template and every parameter);
    # in the fold memory model (``split``) a MAC layer on designs that differ only in the NoC bandwidth
    # and the DRAM port arrangement too, its latency completed per pair by ``_noc_latency``.
    split = prof.memory_model == "fold"
    template = np.empty((len(used), 1))
    for g, (_, d_list) in enumerate(d_groups):
        template[d_list] = g
    table = [template, *(np.asarray(getattr(all_designs, f), dtype=np.float64) for f in _DESIGN_FIELDS)]
    _, full = _unique_rows(np.hstack(table))
    cls = full[d_pos]
    if split:
        skip = {1 + _DESIGN_FIELDS.index("noc_bw"), 1 + _DESIGN_FIELDS.index("shared")}
        _, base = _unique_rows(np.hstack([t for i, t in enumerate(table) if i not in skip]))
        has_macs = np.array([layer.kind.has_macs for layer in distinct], dtype=bool)
        cls = np.where(has_macs[lu], base[d_pos], cls)
    n_cls = int(full.max()) + 1
    first, inverse = _distinct_keys(lu.astype(np.int64) * n_cls + cls, len(distinct) * n_cls)
    ev_l, ev_d, n_ev = lu[first], d_pos[first], len(first)
    ures = {k: np.empty(n_ev) for k in keys}
    uchosen = np.zeros(n_ev, dtype=np.int8)
    cand: list[dict[str, np.ndarray]] = []  # split: per candidate, its results per distinct pair
    n_cand = np.zeros(n_ev, dtype=np.int8)  # split: the candidates evaluated for the distinct pair (0: not split)
    cand_keys = [k for k in keys if k not in ("latency_cycles", "noc_excess_cycles")] + list(_SPLIT_KEYS)
    # pairs of one key share the fold-level memory model: the distinct layer x the distinct memory-relevant design
    memory = np.hstack([np.asarray(getattr(all_designs, f), dtype=np.float64) for f in _MEMORY_FIELDS if f != "shared"])
    _, config = _unique_rows(memory)
    pair_keys = ev_l.astype(np.int64) * (int(config.max()) + 1) + config[ev_d]
    kinds = _kind_widths(distinct)
    for df, d_list in d_groups:
        in_group = np.zeros(len(used), dtype=bool)
        in_group[d_list] = True
        on = np.flatnonzero(in_group[ev_d])
        if not len(on):
            continue
        l_groups = _group_layers(distinct, df, prof, kinds)
        group_of = np.empty(len(distinct), dtype=np.intp)
        for g, group in enumerate(l_groups):
            group_of[group.indices] = g
        pair_group = group_of[ev_l[on]]
        for g, group in enumerate(l_groups):
            sel = on[pair_group == g]
            if not len(sel):
                continue
            if group.widths is not None:
                pos = np.flatnonzero(np.bincount(ev_d[sel], minlength=len(used)))
                _check_widths(distinct, group, used_accs, all_designs.take(pos), pos.tolist())
            for start in range(0, len(sel), CHUNK_ELEMENTS):
                at = sel[start : start + CHUNK_ELEMENTS]
                lay = _pick_layers(all_layers, ev_l[at])
                D = all_designs.take(ev_d[at])
                D = D if group.widths is None else D.at_widths(*group.widths)
                if split and group.candidates:
                    parts = _candidate_parts(lay, D, df, group, prof, detail, pair_keys[at], split=True)
                    for c, part in enumerate(parts):
                        if c == len(cand):
                            cand.append({k: np.empty((2, n_ev) if k == _LAT else n_ev) for k in (_LAT, *cand_keys)})
                        cand[c][_LAT][:, at] = np.broadcast_to(part[_LAT], (2, len(at), 1))[..., 0]
                        for k in cand_keys:
                            cand[c][k][at] = np.broadcast_to(part[k], (len(at), 1))[:, 0]
                    n_cand[at] = len(parts)
                    continue
                if not group.candidates:
                    part = _vector_core(lay, D, prof, detail)
                else:
                    part, pick = _choose(_candidate_parts(lay, D, df, group, prof, detail, pair_keys[at]), keys)
                    uchosen[at] = np.broadcast_to(pick, (len(at), 1))[:, 0]
                for k in keys:
                    ures[k][at] = np.broadcast_to(part[k], (len(at), 1))[:, 0]
    # every pair's results from its distinct pair's
    whole = np.flatnonzero(n_cand[inverse] == 0) if cand else np.arange(n)
    for k in keys:
        res[k][whole] = ures[k][inverse[whole]]
    chosen[whole] = uchosen[inverse[whole]]
    if cand:
        _split_to_pairs(cand, n_cand, inverse, all_designs, d_pos, keys, res, chosen)
    if prof.memory_model == "scalesim":
        _scalesim_buffers(distinct, accs, prof, res, tech, (lu, di))
    pes = (all_designs.rows * all_designs.cols).astype(np.float64)[d_pos, 0]
    macs = all_layers.macs[0, lu]
    latency = res["latency_cycles"]
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(latency > 0, macs / (pes * latency), 0.0)
    return PairResult(
        latency_cycles=latency,
        compute_cycles=res["compute_cycles"],
        stall_cycles=latency - res["compute_cycles"],
        energy_pj=res["energy_pj"],
        utilization=util,
        dram_bytes=res["dram_bytes"],
        noc_excess_cycles=res["noc_excess_cycles"],
        mapping_index=chosen,
        detail={k: res[k] for k in _DETAIL_KEYS if k in res},
    )


def _distinct_keys(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """(index of one entry per distinct key, in key order; each entry's distinct-key number) of int64
    keys in [0, bound): by a table of ``bound`` flags (no sort) when that is not much longer than the keys."""
    if bound > 4 * len(keys) + (1 << 22):
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    seen = np.zeros(bound, dtype=bool)
    seen[keys] = True
    rank = np.cumsum(seen, dtype=np.int64 if bound >= 1 << 31 else np.int32)
    inverse = rank[keys].astype(np.intp) - 1
    first = np.empty(int(rank[-1]), dtype=np.intp)
    first[inverse] = np.arange(len(keys))  # any entry of a key serves: its pairs are equal
    return first, inverse


def _split_to_pairs(
    cand: list[dict[str, np.ndarray]],
    n_cand: np.ndarray,
    inverse: np.ndarray,
    D: _Designs,
    d_pos: np.ndarray,
    keys: Sequence[str],
    res: dict[str, np.ndarray],
    chosen: np.ndarray,
) -> None:
    """Fill ``res`` and ``chosen`` for the pairs whose distinct pair was evaluated split: each
    candidate's latency at the pair's NoC bandwidth and port arrangement, then ``_choose``'s rule
    (least latency, then energy, first on ties) and the chosen candidate's other results."""
    p = np.flatnonzero(n_cand[inverse] > 0)
    u, d = inverse[p], d_pos[p]
    shared, noc_bw = D.shared[d, 0], D.noc_bw[d, 0]
    lat, exc = _noc_latency(cand[0], u, shared, noc_bw)
    energy = cand[0]["energy_pj"][u]
    pick = np.zeros(len(p), dtype=np.int8)
    for c in range(1, len(cand)):
        has = np.flatnonzero(n_cand[u] > c)
        lat_c, exc_c = _noc_latency(cand[c], u[has], shared[has], noc_bw[has])
        en_c = cand[c]["energy_pj"][u[has]]
        take = (lat_c < lat[has]) | ((lat_c == lat[has]) & (en_c < energy[has]))
        at = has[take]
        lat[at], exc[at], energy[at], pick[at] = lat_c[take], exc_c[take], en_c[take], c
    res["latency_cycles"][p], res["noc_excess_cycles"][p], chosen[p] = lat, exc, pick
    others = [c for c in range(1, len(cand)) if np.any(pick == c)]
    for k in keys:
        if k in ("latency_cycles", "noc_excess_cycles"):
            continue
        v = cand[0][k][u]
        for c in others:
            at = np.flatnonzero(pick == c)
            v[at] = cand[c][k][u[at]]
        res[k][p] = v


def choose_mapping(
    layer: Layer, acc: Accelerator, profile: TimingProfile | str = "rtl", tech: TechTable = DEFAULT_TECH
) -> LayerMapping | None:
    """The mapping the mapper picks for ``layer`` on ``acc`` (None for vector layers): the candidate of
    ``candidate_mappings`` with the least latency, then energy, under this model."""
    if not layer.kind.has_macs:
        return None
    prof = resolve_profile(profile)
    cands = candidate_mappings(acc.dataflow, layer.kind, prof)
    if len(cands) == 1:
        return cands[0]
    picked = evaluate_batch([layer], [acc], prof, tech).mapping_index
    return cands[0] if picked is None else cands[int(picked[0, 0])]


def _scalesim_buffers(
    layers: Sequence[Layer],
    accs: Sequence[Accelerator],
    prof: TimingProfile,
    res: dict[str, np.ndarray],
    tech: TechTable,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Profile scalesim, a DRAM limit, SCALE-Sim's own arrays: SCALE-Sim's buffers set the cycles.
    ``res``: (designs, layers) arrays, or with ``pairs`` (layer, design indices) one entry per pair.

    SCALE-Sim v3 serves demand from sliding windows over each operand's prefetch stream; which rows
    miss, the window walks around the stream on some fold boundaries, and each positive wait is
    counted twice. No closed form follows that (a max-plus estimate over its fetches misses by up to
    37 % on the validation suite), so here the analytical model runs the same emulation as the
    cycle-level simulator (coexplore.sim.cycle.scalesim_mem, held to SCALE-Sim's own outputs): in
    this regime the two tiers agree by construction. Costs ~10-50 ms per layer instead of microseconds.
    """
    from coexplore.sim.cycle.simulator import scalesim_dataflow, simulate_layer

    where: Any
    if pairs is None:
        where = (((i, j), i, j) for i in range(len(accs)) for j in range(len(layers)))
    else:
        where = ((p, int(i), int(j)) for p, (j, i) in enumerate(zip(*pairs)))
    for at, i, j in where:
        acc, layer = accs[i], layers[j]
        if acc.dram_bw_bytes_per_cycle is None or not layer.kind.has_macs or scalesim_dataflow(acc, layer) is None:
            continue
        e_bit = tech_for(acc.tech_node_nm, tech).dram_pj_per_bit
        sim = simulate_layer(layer, acc, prof)
        new_bytes = sim.dram_reads + sim.dram_writes
        delta_pj = (new_bytes - res["dram_bytes"][at]) * 8 * e_bit
        res["latency_cycles"][at] = sim.total_cycles + res["noc_excess_cycles"][at]  # NoC: as above
        res["compute_cycles"][at] = sim.busy_cycles
        res["dram_bytes"][at] = new_bytes
        res["energy_pj"][at] += delta_pj
        if "dram_read_bytes" in res:
            res["dram_read_bytes"][at] = sim.dram_reads
            res["dram_write_bytes"][at] = sim.dram_writes
            res["energy_dram_pj"][at] += delta_pj


def _layer_metrics(
    layer: Layer, acc: Accelerator, prof: TimingProfile, batch: BatchResult, i: int, j: int
) -> LayerMetrics:
    d = batch.detail
    mapping = ""
    if layer.kind.has_macs and batch.mapping_index is not None:
        mapping = candidate_mappings(acc.dataflow, layer.kind, prof)[int(batch.mapping_index[i, j])].describe()
    return LayerMetrics(
        name=layer.name,
        kind=layer.kind.value,
        macs=layer.macs,
        latency_cycles=float(batch.latency_cycles[i, j]),
        compute_cycles=float(batch.compute_cycles[i, j]),
        stall_cycles=float(batch.stall_cycles[i, j]),
        utilization=float(batch.utilization[i, j]),
        energy_pj=float(batch.energy_pj[i, j]),
        energy_breakdown_pj={k: float(d[f"energy_{k}_pj"][i, j]) for k in ENERGY_KEYS},
        dram_read_bytes=float(d["dram_read_bytes"][i, j]),
        dram_write_bytes=float(d["dram_write_bytes"][i, j]),
        buffer_read_words=float(d["buffer_read_words"][i, j]),
        buffer_write_words=float(d["buffer_write_words"][i, j]),
        mapping=mapping,
    )


def evaluate_layer(
    layer: Layer, acc: Accelerator, profile: TimingProfile | str = "rtl", tech: TechTable = DEFAULT_TECH
) -> LayerMetrics:
    """One layer on one accelerator (the batch core on a 1 x 1 batch)."""
    prof = resolve_profile(profile)
    return _layer_metrics(layer, acc, prof, evaluate_batch([layer], [acc], prof, tech, detail=True), 0, 0)


def evaluate_network(
    net: Network, acc: Accelerator, profile: TimingProfile | str = "rtl", tech: TechTable = DEFAULT_TECH
) -> NetworkMetrics:
    """Every layer of ``net`` on ``acc``, run one after another; totals are sums."""
    prof = resolve_profile(profile)
    batch = evaluate_batch(net.layers, [acc], prof, tech, detail=True)
    total, breakdown = area(acc, tech)
    return NetworkMetrics(
        network=net.name,
        accelerator=acc.label,
        profile=prof.name,
        layers=tuple(_layer_metrics(layer, acc, prof, batch, 0, j) for j, layer in enumerate(net.layers)),
        area_um2=total,
        area_breakdown_um2=breakdown,
        pes=acc.pes,
    )
