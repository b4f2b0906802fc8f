"""A search campaign: the co-exploration with one or more optimizers, NASAIC's baselines, and the outputs.

The first optimizer's run is the main one and lives in ``DIR`` itself (``DIR/log.jsonl``,
``DIR/summary.json``, ``DIR/best.yaml``); other optimizers and the baselines run in ``DIR/runs/<name>/``
with the same budget, seed and training cache (a network trained by one run is not trained again by
the next). The report compares them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coexplore.codesign.baselines import asic_then_hwnas, co_exploration, nas_then_asic
from coexplore.codesign.loop import SearchConfig, load_records
from coexplore.codesign.results import RunSummary, plot_front, write_best_yaml, write_report, write_summary

RunProgress = Callable[[str], Any]  # label -> a ProgressFn for that run


@dataclass(frozen=True)
class CampaignResult:
    runs: tuple[RunSummary, ...]
    main: RunSummary
    report_md: Path
    report_html: Path
    best_yaml: Path | None
    seconds: float


def run_campaign(
    config: SearchConfig,
    out: str | Path,
    *,
    optimizers: Sequence[str] = (),
    baselines: bool = False,
    resume: bool = False,
    executor: Any = None,
    progress: RunProgress | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> CampaignResult:
    """Run every search of the campaign into ``out`` and write its outputs (see the module docstring)."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(optimizers) or [config.optimizer]
    config = replace(config, optimizer=names[0])

    def prog(label: str) -> Any:
        return progress(label) if progress else None

    main = co_exploration(config, out, resume=resume, executor=executor, progress=prog(names[0]))
    runs: list[RunSummary] = [main]
    for name in names[1:]:
        folder = out / "runs" / name
        runs.append(
            co_exploration(
                replace(config, optimizer=name),
                folder,
                resume=resume and folder.exists(),
                executor=executor,
                progress=prog(name),
            )
        )
    if baselines:
        folder = out / "runs" / "nas-then-asic"
        runs.append(
            nas_then_asic(
                config, folder, resume=resume and folder.exists(), executor=executor, progress=prog("NAS then ASIC")
            )
        )
        folder = out / "runs" / "asic-then-hwnas"
        runs.append(
            asic_then_hwnas(
                config, folder, resume=resume and folder.exists(), executor=executor, progress=prog("ASIC then HW-NAS")
            )
        )
    task_names = [t.task for t in config.tasks]
    records = load_records(out)
    device = next((r.get("device") for r in records if r.get("device")), "cpu")
    for run in runs:
        write_summary(
            Path(run.folder) / "summary.json",
            run,
            config.spec,
            {"seed": config.seed, "budget": config.budget, "device": device, "tasks": task_names},
        )
    best_yaml = None
    if main.final is not None:
        best_yaml = out / "best.yaml"
        write_best_yaml(best_yaml, main.final, config.spec)
    for run in runs[1:]:
        if run.final is not None:
            write_best_yaml(Path(run.folder) / "best.yaml", run.final, config.spec)
    plotted = plot_front(
        records,
        runs,
        config.spec,
        out / "front.png",
        f"{', '.join(task_names)}: every candidate of the main run ({names[0]}) and each method's final design",
    )
    md, page = write_report(
        out, runs, config.spec, task_names, sections=sections, plot="front.png" if plotted else None
    )
    return CampaignResult(
        runs=tuple(runs),
        main=main,
        report_md=md,
        report_html=page,
        best_yaml=best_yaml,
        seconds=time.perf_counter() - t0,
    )
