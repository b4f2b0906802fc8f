"""Fold plans: how a layer's loop nest lands on an array, and the stall-free cycles that follows.

Shared by the analytical model, the cycle-level simulator and the RTL controller so the three
agree on what a fold is. Everything here is vectorized: dims and array sizes may be numpy arrays
of any broadcastable shape (layers x designs).

A *fold* is one pass of the array: one tile of the row dims x one tile of the col dims, during
which the temporal dims stream through (T steps). Folds = row folds x col folds x outer iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from coexplore.dataflows.spec import FoldTiming, Mapping, Pack, SpatialAxis, TimingProfile
from coexplore.models.ir import Dim, Layer

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
        total = 1
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
    steps = 1
    for d in mapping.temporal:
        steps = steps * np.asarray(dims[d])
    outer = 1
    for d in mapping.outer:
        outer = outer * np.asarray(dims[d])
    return FoldPlan(rows=r, cols=c, temporal_steps=steps, outer_iters=outer, folds=r.folds * c.folds * outer)


def layer_dims(layer: Layer) -> dict[Dim, int]:
    return layer.dims()


def fold_timing(timing: FoldTiming, profile: TimingProfile, rows: ArrayLike, cols: ArrayLike,
                steps: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
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


def stall_free_cycles(timing: FoldTiming, profile: TimingProfile, rows: ArrayLike, cols: ArrayLike,
                      steps: ArrayLike, folds: ArrayLike) -> ArrayLike:
    """Cycles of ``folds`` identical folds of ``steps`` streamed steps, with no memory stalls.

    total = folds * fold_time + once + end offset (see ``fold_timing``).
    """
    fold_time, once = fold_timing(timing, profile, rows, cols, steps)
    return folds * fold_time + once + profile.end_offset_cycles
