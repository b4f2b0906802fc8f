"""Fold plans: how a layer's loop nest lands on an array, and the stall-free cycles that follows.

Shared by the analytical model, the cycle-level simulator and the RTL controller so the three
agree on what a fold is. Everything here is vectorized: dims and array sizes may be numpy arrays
of any broadcastable shape (layers x designs).

A *fold* is one pass of the array: one tile of the row dims x one tile of the col dims, during
which the temporal dims stream through (T steps). Folds = row folds x col folds x outer iterations.

A ``LayerMapping`` is the per-layer choice the mapper makes (``coexplore.sim.analytical`` picks, per
layer and design, the candidate of ``candidate_mappings`` with the least latency, then energy; the
cycle-level simulator runs the same value): the loop mapping (which dims sit on rows / cols, which
stream within a fold, hence the per-fold tile and which dims become outer fold loops; a NESTED axis
whose later dims fill PEs the first leaves idle is replication over those dims) and whether a
layer input that fits half its scratchpad is loaded whole before the first fold or streamed fold by
fold. The fold order is fixed: outer dims (``Mapping.outer`` order) > column folds > row folds.
Timeloop's mapper and ZigZag's temporal-mapping search explore loop orders and tilings per layer
over a large space; here the space is small and stated by the template (its ``alternatives``), so
the choice stays vectorized over designs and every candidate is one the simulators also run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from coexplore.dataflows.spec import (
    Dataflow,
    FoldTiming,
    Interconnect,
    Mapping,
    Operand,
    Pack,
    SpatialAxis,
    TimingProfile,
)
from coexplore.models.ir import Dim, Layer, OpKind

ArrayLike = Any  # int or np.ndarray


@dataclass(frozen=True, slots=True)
class AxisFit:
    """How one axis's dims fit an axis of ``size`` PEs: PEs used per fold, and folds along it."""

    used: ArrayLike
    folds: ArrayLike
    tile: dict[Dim, ArrayLike]  # per-dim tile extent unrolled on the axis


@dataclass(frozen=True, slots=True)
class FoldPlan:
    rows: AxisFit
    cols: AxisFit
    temporal_steps: ArrayLike  # T: steps streamed per fold
    outer_iters: ArrayLike  # product of outer dims
    folds: ArrayLike  # total folds

    @property
    def spatial_util(self) -> ArrayLike:
        """Fraction of PEs used in a full fold (edge folds may use fewer)."""
        return self.rows.used * self.cols.used


def fit_axis(axis: SpatialAxis, dims: dict[Dim, ArrayLike], size: ArrayLike) -> AxisFit:
    """Fit ``axis.dims`` onto ``size`` PEs according to the axis's packing rule."""
    if axis.pack is Pack.FLATTEN:
        total: ArrayLike = 1
        for d in axis.dims:
            total = total * np.asarray(dims[d])
        used = np.minimum(total, size)
        folds = -(-total // size)
        # Flattened tiles have no per-dim extent; report the flattened span on the first dim.
        tile = {axis.dims[0]: used}
        return AxisFit(used=used, folds=folds, tile=tile)
    remaining = np.asarray(size)
    used = 1
    folds = 1
    tile = {}
    for d in axis.dims:
        extent = np.maximum(np.minimum(np.asarray(dims[d]), remaining), 1)
        tile[d] = extent
        folds = folds * (-(-np.asarray(dims[d]) // extent))
        used = used * extent
        remaining = np.maximum(remaining // extent, 1)
    return AxisFit(used=used, folds=folds, tile=tile)


def plan_folds(mapping: Mapping, dims: dict[Dim, ArrayLike], rows: ArrayLike, cols: ArrayLike) -> FoldPlan:
    """The fold plan of a layer nest with bounds ``dims`` on a ``rows`` x ``cols`` array."""
    r = fit_axis(mapping.rows, dims, rows)
    c = fit_axis(mapping.cols, dims, cols)
    steps: ArrayLike = 1
    for d in mapping.temporal:
        steps = steps * np.asarray(dims[d])
    outer: ArrayLike = 1
    for d in mapping.outer:
        outer = outer * np.asarray(dims[d])
    return FoldPlan(rows=r, cols=c, temporal_steps=steps, outer_iters=outer, folds=r.folds * c.folds * outer)


def layer_dims(layer: Layer) -> dict[Dim, int]:
    return layer.dims()


def fold_timing(
    timing: FoldTiming, profile: TimingProfile, rows: ArrayLike, cols: ArrayLike, steps: ArrayLike
) -> tuple[ArrayLike, ArrayLike]:
    """(fold_time, once): cycles each fold takes with no memory stalls, and the overheads paid once.

    fold_busy = T + fill (unless folds overlap) + drain (unless it hides behind the next fold)
    fold_time = fold_busy + preload, or max(fold_busy, preload) when the next preload is hidden
    once      = pipeline + whichever of fill / drain / preload the profile hides behind other folds
    """
    fill = timing.fill(rows=rows, cols=cols, T=steps)
    preload = timing.preload(rows=rows, cols=cols, T=steps)
    drain = timing.drain(rows=rows, cols=cols, T=steps) if profile.model_output_drain else 0
    pipeline = timing.pipeline(rows=rows, cols=cols, T=steps)
    busy = steps + (0 if profile.overlap_folds else fill) + (0 if profile.drain_during_next_fold else drain)
    if profile.preload_next_stationary:
        fold_time = np.maximum(busy, preload)
    else:
        fold_time = busy + preload
    once = pipeline
    once = once + (fill if profile.overlap_folds else 0)
    once = once + (drain if profile.drain_during_next_fold else 0)
    once = once + (preload if profile.preload_next_stationary else 0)
    return fold_time, once


def stall_free_cycles(
    timing: FoldTiming, profile: TimingProfile, rows: ArrayLike, cols: ArrayLike, steps: ArrayLike, folds: ArrayLike
) -> ArrayLike:
    """Cycles of ``folds`` identical folds of ``steps`` streamed steps, with no memory stalls.

    total = folds * fold_time + once + end offset (see ``fold_timing``).
    """
    fold_time, once = fold_timing(timing, profile, rows, cols, steps)
    return folds * fold_time + once + profile.end_offset_cycles


# ---- per-layer mapping choices ---------------------------------------------------------------------
def resolve_profile(profile: TimingProfile | str) -> TimingProfile:
    """A profile value, or the shipped profile of that name (``dataflows/templates/profiles.yml``)."""
    if isinstance(profile, TimingProfile):
        return profile
    from coexplore.dataflows.io import get_profile

    return get_profile(profile)


# SCALE-Sim v3's three arrays (rows dims, cols dims); a systolic template with one of these mappings is
# run by SCALE-Sim's own memory model in profile ``scalesim``.
SCALESIM_SHAPES: dict[str, tuple[frozenset[Dim], frozenset[Dim]]] = {
    "os": (frozenset({Dim.N, Dim.P, Dim.Q}), frozenset({Dim.K})),
    "ws": (frozenset({Dim.C, Dim.R, Dim.S}), frozenset({Dim.K})),
    "is": (frozenset({Dim.C, Dim.R, Dim.S}), frozenset({Dim.N, Dim.P, Dim.Q})),
}


def scalesim_shape(dataflow: Dataflow, mapping: Mapping) -> str | None:
    """ "os", "ws" or "is" when ``mapping`` on ``dataflow`` is one of SCALE-Sim's arrays, else None."""
    if dataflow.interconnect is not Interconnect.SYSTOLIC:
        return None
    shape = (frozenset(mapping.rows.dims), frozenset(mapping.cols.dims))
    for name, ref in SCALESIM_SHAPES.items():
        if shape == ref:
            return name
    return None


@dataclass(frozen=True, slots=True)
class LayerMapping:
    """One layer's mapping on one accelerator: the value the analytical model and the simulator take.

    ``loops``: dims on rows / cols (a NESTED axis's later dims replicate over PEs the first leaves
    idle), the temporal dims streamed per fold (the per-fold tile), the rest outer fold loops.
    ``resident_input``: a layer input that fits half its scratchpad is loaded whole before the first
    fold (True) or streamed tile by tile like a larger one (False).
    ``index``: position among ``candidate_mappings`` (0: the template's own mapping and residency).
    """

    loops: Mapping
    resident_input: bool = True
    index: int = 0

    @property
    def replicated_dims(self) -> tuple[Dim, ...]:
        """Dims unrolled on the PEs a NESTED axis's first dim leaves idle."""
        return tuple(d for ax in (self.loops.rows, self.loops.cols) if ax.pack is Pack.NESTED for d in ax.dims[1:])

    def describe(self) -> str:
        """E.g. ``rows=R*C cols=P T=Q*S outer=N,K resident``."""
        m = self.loops
        axis = lambda ax: "*".join(d.value for d in ax.dims)  # noqa: E731
        outer = ",".join(d.value for d in m.outer if d is not Dim.G) or "-"
        return (
            f"rows={axis(m.rows)} cols={axis(m.cols)} T={'*'.join(d.value for d in m.temporal)} "
            f"outer={outer} {'resident' if self.resident_input else 'streamed'}"
        )


@lru_cache(maxsize=1024)
def candidate_mappings(dataflow: Dataflow, kind: OpKind, profile: TimingProfile) -> tuple[LayerMapping, ...]:
    """The mappings the mapper may choose for a ``kind`` layer; the first is the template's own.

    - ``generated_hardware`` (profile ``rtl`` on a template the RTL generator emits): only the
      template's own mapping with the profile's residency rule, the one thing that hardware runs.
    - profile ``scalesim`` on a SCALE-Sim-shaped mapping: that mapping only (SCALE-Sim's own array).
    - otherwise every loop mapping of the template (its own, then ``alternatives``), each with the
      input resident when it fits and streamed (when the profile allows residency at all).
    """
    prof = profile.for_template(dataflow.name)
    own = dataflow.mapping_for(kind)
    if prof.generated_hardware or (prof.memory_model == "scalesim" and scalesim_shape(dataflow, own)):
        return (LayerMapping(own, prof.resident_input, 0),)
    residency = (True, False) if prof.resident_input and dataflow.stationary is not Operand.INPUT else (False,)
    out: list[LayerMapping] = []
    for loops in dataflow.mappings_for(kind):
        if prof.memory_model == "scalesim" and scalesim_shape(dataflow, loops) and loops is not own:
            continue  # SCALE-Sim's own buffers would run it: not a choice SCALE-Sim makes
        out.extend(LayerMapping(loops, r, len(out) + i) for i, r in enumerate(residency))
    return tuple(out)
