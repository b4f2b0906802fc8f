"""NASAIC's baselines, run through the same loop, optimizer and budget as the co-exploration.

* **NAS then ASIC**: accuracy-only NAS (no hardware in the loop), then the best hardware in the space
  for the winner; it usually misses the spec, which is NASAIC's point.
* **ASIC then hardware-aware NAS**: the hardware is fixed first (the best system for a reference
  network tuple: the middle option of every choice), then the networks are searched on it, each
  proposal scheduled there and pruned when the spec fails.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from coexplore.codesign.hardware import best_hardware
from coexplore.codesign.loop import (
    Mode,
    ProgressFn,
    SearchConfig,
    _hardware_record,
    best_record,
    cardinalities,
    networks_of,
    run_search,
)
from coexplore.codesign.results import RunSummary


def _summary(
    label: str, kind: str, config: SearchConfig, state: Any, final: dict[str, Any] | None, folder: Path
) -> RunSummary:
    return RunSummary(
        label=label,
        kind=kind,
        optimizer=config.optimizer,
        final=final,
        evaluated=len(state.records),
        pruned=state.pruned,
        trained=state.trained,
        proposals=state.proposals,
        seconds=state.seconds,
        folder=str(folder),
    )


def co_exploration(
    config: SearchConfig,
    out: Path,
    *,
    resume: bool = False,
    executor: Any = None,
    progress: ProgressFn | None = None,
    label: str | None = None,
) -> RunSummary:
    """The joint search itself."""
    state = run_search(replace(config, mode=Mode.JOINT), out, resume=resume, executor=executor, progress=progress)
    return _summary(
        label or f"co-exploration ({config.optimizer})",
        "joint",
        config,
        state,
        best_record(state.records, Mode.JOINT),
        out,
    )


def nas_then_asic(
    config: SearchConfig, out: Path, *, resume: bool = False, executor: Any = None, progress: ProgressFn | None = None
) -> RunSummary:
    """Accuracy-only NAS, then the best hardware for the winner (its closest design when none fits)."""
    cfg = replace(config, mode=Mode.NAS_ONLY)
    state = run_search(cfg, out, resume=resume, executor=executor, progress=progress)
    best = best_record(state.records, Mode.NAS_ONLY)
    final = None
    if best is not None:
        nets = networks_of(config, best["vector"])
        hw = best_hardware(
            nets, config.spec, config.hardware, task_names=[t.task for t in config.tasks], seed=config.seed
        )
        final = dict(best, **_hardware_record(hw, Mode.JOINT))
    return _summary("NAS then ASIC", "nas-then-asic", config, state, final, out)


def reference_vector(config: SearchConfig) -> tuple[int, ...]:
    """The middle option of every choice: the reference network tuple the ASIC is designed for."""
    return tuple(c // 2 for c in cardinalities(config))


def asic_then_hwnas(
    config: SearchConfig, out: Path, *, resume: bool = False, executor: Any = None, progress: ProgressFn | None = None
) -> RunSummary:
    """Hardware first (best for the reference networks), then hardware-aware NAS on it."""
    ref = reference_vector(config)
    hw = best_hardware(
        networks_of(config, ref),
        config.spec,
        config.hardware,
        task_names=[t.task for t in config.tasks],
        seed=config.seed,
    )
    cfg = replace(config, mode=Mode.FIXED, fixed_system=hw.system)
    state = run_search(cfg, out, resume=resume, executor=executor, progress=progress)
    return _summary(
        "ASIC then HW-aware NAS", "asic-then-hwnas", config, state, best_record(state.records, Mode.FIXED), out
    )
