"""``coexplore search``: the joint search of one network per task and a heterogeneous accelerator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coexplore.cli_common import emit_json, user_errors
from coexplore.models.ir import CoexploreError

OPTIMIZER_HELP = "rl (NASAIC's controller), evolution, nsga2, random, predictor; a comma list runs each"


def _pairs(text: str | None, flag: str) -> dict[str, str]:
    """``a=1,b=2`` -> {"a": "1", "b": "2"}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise CoexploreError(f"{flag} {part!r}: expected TASK=VALUE")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_tasks(tasks: str, weights: str | None, data: tuple[str, ...]) -> tuple[Any, ...]:
    """``digits,segmentation=unet`` -> TaskSetups (space defaults to the task's own)."""
    from coexplore.codesign.loop import TaskSetup
    from coexplore.models.data import task_info

    items = [t.strip() for t in tasks.split(",") if t.strip()]
    if not items:
        raise CoexploreError(f"--tasks {tasks!r}: expected a comma list such as digits,segmentation")
    w = _pairs(weights, "--weights")
    dirs: dict[str, str] = {}
    loose: list[str] = []
    for d in data:
        if "=" in d and not Path(d).exists():
            k, v = d.split("=", 1)
            dirs[k] = v
        else:
            loose.append(d)
    names = [i.split("=", 1)[0] for i in items]
    for k in list(w) + list(dirs):
        if k not in names:
            raise CoexploreError(f"task {k!r} in --weights/--data is not one of --tasks ({', '.join(names)})")
    setups = []
    for item in items:
        name, _, space = item.partition("=")
        data_dir = dirs.get(name)
        if data_dir is None and loose and name not in ("digits", "segmentation"):
            data_dir = loose.pop(0)
        info = task_info(name, data_dir)
        try:
            weight = float(w.get(name, 1.0))
        except ValueError:
            raise CoexploreError(f"--weights {name}={w[name]!r}: expected a number") from None
        setups.append(TaskSetup(task=name, space=space or info.default_space, weight=weight, data_dir=data_dir))
    if loose:
        raise CoexploreError(
            f"--data {loose[0]!r}: no task of --tasks takes a data folder "
            "(digits and segmentation are generated; cifar10 and folder-seg read one)"
        )
    return tuple(setups)


def _progress_factory(console_quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trained"),
        TimeElapsedColumn(),
        disable=console_quiet,
    )
    ids: dict[str, Any] = {}

    def factory(label: str):
        def update(state: Any, record: Any) -> None:
            if label not in ids:
                ids[label] = progress.add_task(label, total=None)
            best = max(
                (r["score"] for r in state.records if r["status"] == "trained" and (r.get("spec_met", True))),
                default=None,
            )
            best_text = "-" if best is None else f"{100 * best:.2f} %"
            progress.update(
                ids[label],
                completed=state.trained,
                description=f"{label}: evaluated {len(state.records)}, pruned {state.pruned}, "
                f"trained {state.trained}, "
                + (f"failed {state.failed}, " if state.failed else "")
                + f"best {best_text}",
            )

        return update

    return progress, factory


def search_options(fn):
    """The options shared by ``search`` and the demo's search."""
    for deco in reversed(
        [
            click.option(
                "--tasks",
                default="digits,segmentation",
                show_default=True,
                help="Comma list of TASK or TASK=SPACE (tasks: digits, segmentation, cifar10, folder-seg; "
                "spaces: resnet, unet, mobilenet, or a space YAML).",
            ),
            click.option(
                "--spec",
                "spec_text",
                required=True,
                help="Limits, e.g. latency=2.5e6,energy=4e4uJ,area=12mm2; per task: digits.latency=1e6.",
            ),
            click.option("--optimizer", default="rl", show_default=True, help=OPTIMIZER_HELP),
            click.option(
                "--budget",
                type=int,
                default=20,
                show_default=True,
                help="Trainings per run (pruned and repeated proposals are free).",
            ),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--workers", type=int, default=1, show_default=True, help="Parallel candidate evaluations."),
            click.option(
                "--executor",
                type=click.Choice(["auto", "serial", "process", "ray"]),
                default="auto",
                show_default=True,
                help="auto: process when --workers > 1, else serial; ray: Ray tasks "
                "(a local cluster of --workers CPUs, or --ray-address).",
            ),
            click.option(
                "--ray-address",
                default=None,
                metavar="HOST:PORT",
                help="With --executor ray: join this running cluster (`ray start --head`) instead of "
                "starting a local one.",
            ),
            click.option(
                "--gpus-per-candidate",
                type=float,
                default=0.0,
                show_default=True,
                help="With --executor ray: GPUs each candidate's task asks for (fractions share one).",
            ),
            click.option(
                "--baselines/--no-baselines",
                default=False,
                show_default=True,
                help="Also run NASAIC's baselines (NAS then ASIC; ASIC then hardware-aware NAS).",
            ),
            click.option(
                "--pe-budget", type=int, default=1024, show_default=True, help="PEs shared by all sub-accelerators."
            ),
            click.option("--bw-budget", type=float, default=32.0, show_default=True, help="DRAM bytes/cycle shared."),
            click.option(
                "--templates", "templates_text", default=None, help="Comma list (default: every shipped one)."
            ),
            click.option("--max-accelerators", type=int, default=2, show_default=True),
            click.option(
                "--batch-size",
                type=int,
                default=4,
                show_default=True,
                help="Proposals per optimizer step (fixed, so results do not depend on --workers).",
            ),
            click.option(
                "--max-proposals", type=int, default=None, help="Stop after this many proposals (default 20 x budget)."
            ),
            click.option("--weights", default=None, help="Accuracy weight per task, e.g. digits=1,segmentation=2."),
            click.option(
                "--data", "data", multiple=True, help="Data folder (DIR, or TASK=DIR) for cifar10 / folder-seg."
            ),
            click.option("--epochs", default=None, help="Override proxy-training epochs per task, e.g. digits=5."),
            click.option(
                "--cache-dir",
                default=None,
                type=click.Path(file_okay=False),
                help="Training cache (default $COEXPLORE_CACHE or ~/.cache/coexplore).",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


def build_config(
    tasks: str,
    spec_text: str,
    optimizer: str,
    budget: int,
    seed: int,
    pe_budget: int,
    bw_budget: float,
    templates_text: str | None,
    max_accelerators: int,
    batch_size: int,
    max_proposals: int | None,
    weights: str | None,
    data: tuple[str, ...],
    epochs: str | None,
    cache_dir: str | None,
    **_: Any,
) -> tuple[Any, list[str]]:
    from coexplore.codesign.hardware import HardwareSpace
    from coexplore.codesign.loop import SearchConfig
    from coexplore.codesign.problem import Spec
    from coexplore.codesign.search import OPTIMIZERS
    from coexplore.dataflows.io import templates as shipped

    setups = parse_tasks(tasks, weights, data)
    spec = Spec.parse(spec_text)
    known = {s.task for s in setups}
    for task, _limits in spec.tasks:
        if task not in known:
            raise CoexploreError(f"--spec: task {task!r} is not one of --tasks ({', '.join(sorted(known))})")
    names = [o.strip() for o in optimizer.split(",") if o.strip()]
    for name in names:
        if name not in OPTIMIZERS:
            raise CoexploreError(f"--optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    if not names:
        raise CoexploreError(f"--optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
    tmpl: tuple[str, ...] = ()
    if templates_text:
        tmpl = tuple(t.strip() for t in templates_text.split(",") if t.strip())
        table = dict(shipped())
        for t in tmpl:
            if t not in table:
                raise CoexploreError(f"--templates {t!r}: expected one of {', '.join(sorted(table))}")
    if pe_budget < 16:
        raise CoexploreError(f"--pe-budget {pe_budget}: expected at least 16 PEs")
    if not bw_budget > 0:
        raise CoexploreError(f"--bw-budget {bw_budget}: expected a positive number of bytes/cycle")
    if max_accelerators < 1:
        raise CoexploreError(f"--max-accelerators {max_accelerators}: expected at least 1")
    ep = {}
    for k, v in _pairs(epochs, "--epochs").items():
        if k not in known:
            raise CoexploreError(f"--epochs: task {k!r} is not one of --tasks")
        if not v.isdigit() or int(v) < 1:
            raise CoexploreError(f"--epochs {k}={v!r}: expected a positive integer")
        ep[k] = int(v)
    if max_proposals is not None and max_proposals < 1:
        raise CoexploreError(f"--max-proposals {max_proposals}: expected a positive integer")
    hw = HardwareSpace(
        pe_budget=pe_budget, dram_bw_budget_bytes_per_cycle=bw_budget, templates=tmpl, max_accelerators=max_accelerators
    )
    config = SearchConfig(
        tasks=setups,
        spec=spec,
        hardware=hw,
        optimizer=names[0],
        budget=budget,
        seed=seed,
        batch_size=batch_size,
        max_proposals=max_proposals,
        recipe_epochs=tuple(sorted(ep.items())),
        cache_dir=cache_dir,
    )
    return config, names


def run(
    out_dir: str,
    resume: bool,
    workers: int,
    executor: str,
    baselines: bool,
    quiet: bool,
    sections: tuple = (),
    *,
    ray_address: str | None = None,
    gpus_per_candidate: float = 0.0,
    **options: Any,
) -> Any:
    """Build the configuration, run the campaign with a progress bar, return its result."""
    from coexplore.codesign.campaign import run_campaign
    from coexplore.codesign.executors import make_executor

    config, names = build_config(**options)
    if workers < 1:
        raise CoexploreError(f"--workers {workers}: expected a positive integer")
    if not gpus_per_candidate >= 0:
        raise CoexploreError(f"--gpus-per-candidate {gpus_per_candidate}: expected a number >= 0")
    ex = make_executor(executor, workers, ray_address=ray_address, gpus_per_candidate=gpus_per_candidate)
    progress, factory = _progress_factory(quiet)
    try:
        with progress:
            result = run_campaign(
                config,
                Path(out_dir),
                optimizers=names,
                baselines=baselines,
                resume=resume,
                executor=ex,
                progress=factory,
                sections=sections,
            )
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted: every finished candidate is in {out_dir}/log.jsonl; "
            "run the same command with --resume to continue"
        ) from None
    finally:
        ex.close()
    return result


@click.command()
@search_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--resume", is_flag=True, help="Continue a killed run in --out (same options, same seed).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json of the main run.")
@user_errors
def search(
    out_dir: str, resume: bool, workers: int, executor: str, baselines: bool, as_json: bool, **options: Any
) -> None:
    """Joint search: one network per task plus a heterogeneous accelerator, under the spec."""
    import json

    result = run(out_dir, resume, workers, executor, baselines, quiet=as_json, **options)
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    if as_json:
        emit_json(summary, seeds={"search": int(options["seed"])})
    else:
        for run_ in result.runs:
            f = run_.final
            if f is None:
                click.echo(f"{run_.label}: no design met the spec ({run_.pruned} of {run_.evaluated} pruned)")
            else:
                acc = ", ".join(f"{t} {100 * v:.2f} %" for t, v in f["accuracy"].items())
                click.echo(
                    f"{run_.label}: {acc}; latency {f['latency_cycles']:,.0f} cycles, energy "
                    f"{f['energy_uj']:,.1f} uJ, area {f['area_mm2']:.3f} mm2, spec "
                    f"{'met' if f.get('spec_met') else 'MISSED'}"
                )
        click.echo(f"report: {result.report_md} ({result.report_html.name}); best design: {result.best_yaml or 'none'}")
    if result.main.final is None:
        raise click.ClickException(
            f"no candidate met the spec {summary['spec']!r} ({result.main.pruned} of {result.main.evaluated} "
            f"proposals pruned as infeasible); the report says so: {result.report_md}"
        )


@click.command()
@click.option("--out", "out_dir", default="demo_out", show_default=True, help="Report folder.")
@click.option("--workers", type=int, default=2, show_default=True, help="Parallel candidate evaluations.")
@click.option("--budget", type=int, default=None, help="Trainings per run (default: the demo's own).")
@user_errors
def demo(out_dir: str, workers: int, budget: int | None) -> None:
    """The main job on its embedded default: the two-task co-design search with NASAIC's baselines, the
    chosen design's RTL verified in cocotb, and the report."""
    from coexplore.demo_search import DEMO_BUDGET, run_demo_search

    path = run_demo_search(Path(out_dir), workers=workers, budget=budget or DEMO_BUDGET)
    click.echo(f"report written: {path} (and {path.with_suffix('.html').name})")
