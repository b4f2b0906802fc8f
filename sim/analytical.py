"""Analytical model: latency, energy, area and utilization of layers on accelerators, as arrays.

One vectorized core serves every entry point: ``evaluate_batch`` evaluates designs x layers as numpy
arrays (designs grouped by template, layers by the mapping they take), and ``evaluate_layer`` /
``evaluate_network`` are that core on a 1 x 1 (or 1 x L) batch, so single and batch results are equal.

Latency of a compute layer (F folds, see ``coexplore.dataflows.mapping``):
    fold_time, once = fold_timing(template timing, profile)          # stall-free, per fold
    noc  = words the buffers exchange with the array per fold / NoC bytes per cycle
    dram = bytes each DRAM port moves per fold / port bytes per cycle  (per operand port, or shared)
    double-buffered: F * max(fold_time, noc, dram) + once + first fold's load + last fold's store
    otherwise:       F * (max(fold_time, noc) + dram) + once
with DRAM bytes from ``coexplore.sim.traffic`` (tiles, buffer capacity, re-fetch under the fold
order). Unlimited bandwidth (None) gives no stalls, so in profile ``scalesim`` the systolic templates
reproduce SCALE-Sim's stall-free cycles exactly.

Pooling and element-wise layers run as vector ops, one per array column per cycle, streaming their
input and output through DRAM: latency = max(ops / cols, DRAM time, NoC time).

Energy = access counts x per-access energies of ``coexplore.sim.tech``: MACs; register file (two
operand reads and a partial-sum read and write per MAC); buffer reads and writes per operand (array
deliveries, DRAM fills and drains, partial sums); NoC (values received by busy PEs); DRAM bytes.
Word widths: inputs and outputs at the accelerator's ``input_bits``, weights at ``weight_bits``,
partial sums (held across reduction folds or spilled) at ``acc_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from coexplore.dataflows.mapping import fold_timing, plan_folds
from coexplore.dataflows.spec import Accelerator, Dataflow, Mapping, Operand, TimingProfile
from coexplore.models.ir import CoexploreError, Dim, Layer, Network, OpKind
from coexplore.sim.metrics import AREA_KEYS, ENERGY_KEYS, BatchResult, LayerMetrics, NetworkMetrics
from coexplore.sim.tech import DEFAULT_TECH, TechTable, tech_for
from coexplore.sim.traffic import (
    OUTPUT_DIMS, dram_fetches, fold_extents, fold_orders, fold_traffic, operand_dims, traits_for,
)

__all__ = ["BatchResult", "area", "evaluate_batch", "evaluate_layer", "evaluate_network"]

CHUNK_ELEMENTS = 1 << 15  # (designs x layers) elements per pass: keeps temporaries cache-resident
_DETAIL_KEYS = tuple(f"energy_{k}_pj" for k in ENERGY_KEYS) + (
    "dram_read_bytes", "dram_write_bytes", "buffer_read_words", "buffer_write_words")


def _profile(profile: TimingProfile | str) -> TimingProfile:
    if isinstance(profile, TimingProfile):
        return profile
    from coexplore.dataflows.io import get_profile

    return get_profile(profile)


# ---- area ----------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _area_of(tech: TechTable, node: float, pes: int, kb_total: float, ib: int, wb: int, accb: int) -> tuple[float, float, float]:
    t = tech_for(node, tech)
    return (pes * t.pe_um2(ib, wb, accb), t.sram_um2(kb_total), pes * t.noc_um2_per_pe(ib, wb, accb))


def area(acc: Accelerator, tech: TechTable = DEFAULT_TECH) -> tuple[float, dict[str, float]]:
    """Silicon area in um2 and its breakdown: PEs (MAC + registers), buffers (SRAM), NoC (per PE)."""
    pe, buf, noc = _area_of(tech, acc.tech_node_nm, acc.pes, acc.ifmap_sram_kb + acc.filter_sram_kb + acc.ofmap_sram_kb,
                            acc.input_bits, acc.weight_bits, acc.acc_bits)
    return pe + buf + noc, dict(zip(AREA_KEYS, (pe, buf, noc)))


# ---- design arrays -------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _energies_of(tech: TechTable, node: float, kbs: tuple[float, float, float], ib: int, wb: int, accb: int) -> tuple[float, ...]:
    """Per-design energies: MAC, RF/bit, NoC/bit, SRAM/bit (input, weight, output bank), DRAM/bit, vector op."""
    t = tech_for(node, tech)
    # A double-buffered scratchpad is two banks of half its size; each access touches one bank.
    return (t.mac_pj(ib, wb, accb), t.rf_pj_per_bit, t.noc_pj_per_bit, t.sram_pj_per_bit(kbs[0] / 2),
            t.sram_pj_per_bit(kbs[1] / 2), t.sram_pj_per_bit(kbs[2] / 2), t.dram_pj_per_bit, t.add_pj(ib))


_DESIGN_FIELDS = ("rows", "cols", "cap_in", "cap_w", "cap_out", "noc_bw", "dram_bw", "shared", "ib", "wb", "accb",
                  "e_mac", "e_rf", "e_noc", "e_sram_in", "e_sram_w", "e_sram_out", "e_dram", "e_vec")


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

    def take(self, sl: slice) -> "_Designs":
        return _Designs(*(getattr(self, f)[sl] for f in _DESIGN_FIELDS))


def _designs(accs: Sequence[Accelerator], tech: TechTable) -> _Designs:
    inf = float("inf")
    rows_ = []
    for a in accs:
        kbs = (a.ifmap_sram_kb, a.filter_sram_kb, a.ofmap_sram_kb)
        rows_.append((a.rows, a.cols, kbs[0] * 512.0, kbs[1] * 512.0, kbs[2] * 512.0,
                      inf if a.noc_bw_bytes_per_cycle is None else a.noc_bw_bytes_per_cycle,
                      inf if a.dram_bw_bytes_per_cycle is None else a.dram_bw_bytes_per_cycle,
                      1.0 if a.dram_ports == "shared" else 0.0, a.input_bits, a.weight_bits, a.acc_bits)
                     + _energies_of(tech, a.tech_node_nm, kbs, a.input_bits, a.weight_bits, a.acc_bits))
    table = np.array(rows_, dtype=np.float64).reshape(len(accs), len(_DESIGN_FIELDS))
    cols = {f: table[:, i:i + 1] for i, f in enumerate(_DESIGN_FIELDS)}
    cols["rows"] = cols["rows"].astype(np.int64)
    cols["cols"] = cols["cols"].astype(np.int64)
    cols["shared"] = cols["shared"] > 0
    return _Designs(**cols)


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


def _layers(layers: Sequence[Layer]) -> _Layers:
    def row(values: list) -> np.ndarray:
        return np.array(values, dtype=np.int64).reshape(1, -1)

    per_layer = [l.dims() for l in layers]
    dims = {d: row([ld[d] for ld in per_layer]) for d in Dim}
    strides = tuple(np.array([getattr(l, f) for l in layers], dtype=np.float64).reshape(1, -1)
                    for f in ("stride_h", "stride_w", "dilation_h", "dilation_w"))
    f64 = lambda xs: np.array(xs, dtype=np.float64).reshape(1, -1)  # noqa: E731
    return _Layers(dims, strides, f64([l.macs for l in layers]), f64([l.output_words for l in layers]),  # type: ignore[arg-type]
                   f64([l.input_words for l in layers]), f64([l.vector_ops for l in layers]))


# ---- the vectorized cores ------------------------------------------------------------------------
def _port_time(rd_in, rd_w, out_bytes, bw, shared):
    """Cycles the DRAM ports need for these bytes: the slowest per-operand port, or one shared port."""
    per_operand = np.maximum(np.maximum(rd_in, rd_w), out_bytes)
    total = rd_in + rd_w + out_bytes
    return np.where(shared, total, per_operand) / bw


def _mac_core(L: _Layers, D: _Designs, df: Dataflow, mapping: Mapping, profile: TimingProfile,
              weight_by_n: bool, detail: bool) -> dict[str, np.ndarray]:
    traits = traits_for(df)
    dims = L.dims
    plan = plan_folds(mapping, dims, D.rows, D.cols)
    folds = plan.folds.astype(np.float64)
    fold_time, once = fold_timing(df.timing, profile, D.rows, D.cols, plan.temporal_steps)
    once = once + profile.end_offset_cycles
    compute = folds * fold_time + once

    ext, pes_used = fold_extents(mapping, plan, dims)
    ft = fold_traffic(df, mapping, ext, dims, L.strides, traits, weight_by_n)
    t_in, t_w, t_out = ft.tile
    a_in, a_w, a_out = ft.delivered
    ib, wb, accb = D.ib, D.wb, D.accb
    ob = ib

    # DRAM words per operand under the fold order with the shortest DRAM time, then the fewest bytes.
    # (Choosing by time keeps latency monotone: more buffer or bandwidth never picks a slower order.)
    in_dims, w_dims = operand_dims(Operand.INPUT), operand_dims(Operand.WEIGHT, weight_by_n)
    cap_in, cap_w, cap_out = D.cap_in * 8 / ib, D.cap_w * 8 / wb, D.cap_out * 8 / accb
    w_out = L.out_words
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

    # Partial sums the array hands to the output buffer beyond the final outputs (reduction folds).
    partial = np.maximum(folds * a_out - w_out, 0.0)
    noc_bytes = (folds * (a_in * ib + a_w * wb) + w_out * ob + 2 * partial * accb) / 8
    noc_per_fold = noc_bytes / folds / D.noc_bw
    dram_per_fold = dram_time / folds
    busy = np.maximum(fold_time, noc_per_fold)
    if profile.double_buffered_dram:
        first = _port_time(t_in * ib / 8, t_w * wb / 8, 0.0, D.dram_bw, D.shared)
        last = t_out * ob / 8 / D.dram_bw
        latency = folds * np.maximum(busy, dram_per_fold) + once + first + last
    else:
        latency = folds * (busy + dram_per_fold) + once
    out = {"latency_cycles": latency, "compute_cycles": compute, "dram_bytes": dram_bytes}

    # Energy.
    macs = L.macs
    e_mac = macs * D.e_mac
    e_rf = macs * (ib + wb + 2 * accb) * D.e_rf
    r_in, r_w, r_out = ft.receipts_per_pe
    hops = folds * pes_used
    e_noc = hops * (r_in * ib + r_w * wb + r_out * accb) * D.e_noc
    buf_in_rd, buf_w_rd = folds * a_in, folds * a_w
    f_in, f_w = rd_in * 8 / ib, rd_w * 8 / wb  # words
    buf_out_wr = w_out + partial + spill  # array writes (finals, partials) + partial refills from DRAM
    buf_out_rd = partial + w_out + spill  # partials back to the array + drains to DRAM
    e_buf = ((buf_in_rd + f_in) * ib * D.e_sram_in + (buf_w_rd + f_w) * wb * D.e_sram_w
             + (2 * w_out * ob + (2 * partial + 2 * spill) * accb) * D.e_sram_out)
    e_dram = dram_bytes * 8 * D.e_dram
    out["energy_pj"] = e_mac + e_rf + e_buf + e_noc + e_dram
    if detail:
        out.update(energy_mac_pj=e_mac, energy_rf_pj=e_rf, energy_buffer_pj=e_buf, energy_noc_pj=e_noc,
                   energy_dram_pj=e_dram, dram_read_bytes=rd_in + rd_w + out_rd, dram_write_bytes=out_wr,
                   buffer_read_words=buf_in_rd + buf_w_rd + buf_out_rd,
                   buffer_write_words=f_in + f_w + buf_out_wr)
    return out


def _vector_core(L: _Layers, D: _Designs, profile: TimingProfile, detail: bool) -> dict[str, np.ndarray]:
    """Pooling / element-wise layers: one op per column per cycle, streamed through DRAM."""
    ob = D.ib
    compute = np.ceil(L.vector_ops / D.cols)
    rd, wr = L.in_words * ob / 8, L.out_words * ob / 8
    dram_t = _port_time(rd, 0.0, wr, D.dram_bw, D.shared)
    noc_t = (rd + wr) / D.noc_bw
    busy = np.maximum(compute, noc_t)
    latency = np.maximum(busy, dram_t) if profile.double_buffered_dram else busy + dram_t
    words = L.in_words + L.out_words
    e_mac = L.vector_ops * D.e_vec
    e_buf = 2 * (L.in_words * D.e_sram_in + L.out_words * D.e_sram_out) * ob
    e_noc = words * ob * D.e_noc
    e_dram = (rd + wr) * 8 * D.e_dram
    # Results may broadcast to (designs, layers) only when stored; the caller's block assignment does it.
    out = {"latency_cycles": latency, "compute_cycles": compute, "dram_bytes": rd + wr,
           "energy_pj": e_mac + e_buf + e_noc + e_dram}
    if detail:
        out.update(energy_mac_pj=e_mac, energy_rf_pj=0.0, energy_buffer_pj=e_buf, energy_noc_pj=e_noc,
                   energy_dram_pj=e_dram, dram_read_bytes=rd, dram_write_bytes=wr, buffer_read_words=words,
                   buffer_write_words=words)
    return out


# ---- grouping and the public API ------------------------------------------------------------------
def _group_designs(accs: Sequence[Accelerator]) -> list[tuple[Dataflow, list[int]]]:
    """Design indices by template (equal Dataflow values share a group)."""
    by_id: dict[int, tuple[Dataflow, list[int]]] = {}
    for i, a in enumerate(accs):
        by_id.setdefault(id(a.dataflow), (a.dataflow, []))[1].append(i)
    merged: dict[Dataflow, list[int]] = {}
    for df, idx in by_id.values():
        merged.setdefault(df, []).extend(idx)
    return [(df, sorted(idx)) for df, idx in merged.items()]


def _group_layers(layers: Sequence[Layer], df: Dataflow) -> list[tuple[Mapping | None, bool, list[int]]]:
    """Layer indices by the mapping they take on ``df`` (None: vector layers) and matmul-ness."""
    groups: dict[tuple[Mapping | None, bool], list[int]] = {}
    for j, layer in enumerate(layers):
        key = (df.mapping_for(layer.kind), layer.kind is OpKind.MATMUL) if layer.kind.has_macs else (None, False)
        groups.setdefault(key, []).append(j)
    return [(m, mm, idx) for (m, mm), idx in groups.items()]


def _select(lay: _Layers, idx: np.ndarray) -> _Layers:
    pick = lambda a: a[:, idx]  # noqa: E731
    return _Layers({d: pick(v) for d, v in lay.dims.items()}, tuple(pick(v) for v in lay.strides),  # type: ignore[arg-type]
                   pick(lay.macs), pick(lay.out_words), pick(lay.in_words), pick(lay.vector_ops))


def evaluate_batch(layers: Sequence[Layer], accs: Sequence[Accelerator], profile: TimingProfile | str = "rtl",
                   tech: TechTable = DEFAULT_TECH, detail: bool = False) -> BatchResult:
    """Every layer on every accelerator: arrays of shape (len(accs), len(layers)).

    Designs are grouped by template and layers by the mapping they take; each group is evaluated as
    arrays in cache-sized chunks of designs, so no Python loop runs over (layer, design) pairs.
    """
    layers, accs = tuple(layers), tuple(accs)
    if not layers:
        raise CoexploreError("evaluate_batch: no layers given (expected at least one Layer)")
    if not accs:
        raise CoexploreError("evaluate_batch: no accelerators given (expected at least one Accelerator)")
    prof = _profile(profile)
    n_d, n_l = len(accs), len(layers)
    keys = ("latency_cycles", "compute_cycles", "dram_bytes", "energy_pj") + (_DETAIL_KEYS if detail else ())
    res = {k: np.empty((n_d, n_l)) for k in keys}
    area_um2 = np.empty(n_d)
    all_layers = _layers(layers)
    for df, d_idx in _group_designs(accs):
        group_accs = [accs[i] for i in d_idx]
        designs = _designs(group_accs, tech)
        n_g = len(d_idx)
        rows_sel: Any = slice(d_idx[0], d_idx[-1] + 1) if d_idx[-1] - d_idx[0] + 1 == n_g else np.asarray(d_idx)
        area_um2[rows_sel] = [area(a, tech)[0] for a in group_accs]
        # Columns in group order, so every layer group is one contiguous block; un-permuted at the end.
        l_groups = _group_layers(layers, df)
        order = np.concatenate([np.asarray(idx, dtype=np.intp) for _, _, idx in l_groups])
        block = {k: np.empty((n_g, n_l)) for k in keys}
        lo = 0
        for mapping, weight_by_n, l_idx in l_groups:
            hi = lo + len(l_idx)
            lay = _select(all_layers, order[lo:hi])
            step = max(1, CHUNK_ELEMENTS // len(l_idx))
            for start in range(0, n_g, step):
                chunk = designs.take(slice(start, start + step))
                if mapping is None:
                    part = _vector_core(lay, chunk, prof, detail)
                else:
                    part = _mac_core(lay, chunk, df, mapping, prof, weight_by_n, detail)
                for k in keys:
                    block[k][start:start + step, lo:hi] = part[k]
            lo = hi
        inverse = np.argsort(order)
        for k in keys:
            res[k][rows_sel] = np.take(block[k], inverse, axis=1)
    macs = all_layers.macs
    pes = np.array([a.pes for a in accs], dtype=np.float64)[:, None]
    latency = res["latency_cycles"]
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(latency > 0, macs / (pes * latency), 0.0)
    return BatchResult(latency_cycles=latency, compute_cycles=res["compute_cycles"],
                       stall_cycles=latency - res["compute_cycles"], energy_pj=res["energy_pj"], utilization=util,
                       dram_bytes=res["dram_bytes"], area_um2=area_um2, macs=macs[0].copy(),
                       detail={k: res[k] for k in _DETAIL_KEYS if k in res})


def _layer_metrics(layer: Layer, batch: BatchResult, i: int, j: int) -> LayerMetrics:
    d = batch.detail
    return LayerMetrics(
        name=layer.name, kind=layer.kind.value, macs=layer.macs,
        latency_cycles=float(batch.latency_cycles[i, j]), compute_cycles=float(batch.compute_cycles[i, j]),
        stall_cycles=float(batch.stall_cycles[i, j]), utilization=float(batch.utilization[i, j]),
        energy_pj=float(batch.energy_pj[i, j]),
        energy_breakdown_pj={k: float(d[f"energy_{k}_pj"][i, j]) for k in ENERGY_KEYS},
        dram_read_bytes=float(d["dram_read_bytes"][i, j]), dram_write_bytes=float(d["dram_write_bytes"][i, j]),
        buffer_read_words=float(d["buffer_read_words"][i, j]), buffer_write_words=float(d["buffer_write_words"][i, j]),
    )


def evaluate_layer(layer: Layer, acc: Accelerator, profile: TimingProfile | str = "rtl",
                   tech: TechTable = DEFAULT_TECH) -> LayerMetrics:
    """One layer on one accelerator (the batch core on a 1 x 1 batch)."""
    return _layer_metrics(layer, evaluate_batch([layer], [acc], profile, tech, detail=True), 0, 0)


def evaluate_network(net: Network, acc: Accelerator, profile: TimingProfile | str = "rtl",
                     tech: TechTable = DEFAULT_TECH) -> NetworkMetrics:
    """Every layer of ``net`` on ``acc``, run one after another; totals are sums."""
    prof = _profile(profile)
    batch = evaluate_batch(net.layers, [acc], prof, tech, detail=True)
    total, breakdown = area(acc, tech)
    return NetworkMetrics(
        network=net.name, accelerator=acc.label, profile=prof.name,
        layers=tuple(_layer_metrics(layer, batch, 0, j) for j, layer in enumerate(net.layers)),
        area_um2=total, area_breakdown_um2=breakdown, pes=acc.pes,
    )
