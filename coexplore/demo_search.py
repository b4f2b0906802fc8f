"""``make demo``: the whole job on embedded tasks.

1. The two-task co-design search (digits classification + procedural segmentation) under a spec that
   NAS then ASIC violates, with NASAIC's controller, beside evolution and NASAIC's two baselines.
2. The best design's RTL: Verilog for every sub-accelerator whose template has a generator, and one of
   the chosen networks' layers run on it in cocotb, bit-exact against numpy and cycle-exact against
   the cycle-level simulator; the report names the templates that have no generator yet.
3. The report (``report.md`` / ``report.html``) with NASAIC's table and the Pareto plot.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

# Embedded defaults. The spec is tight enough that the most accurate networks do not fit the
# hardware budget (NAS then ASIC violates it) while many smaller tuples do.
DEMO_TASKS = "digits,segmentation"
DEMO_SPEC = "latency=1e5,energy=60uJ,area=2.5mm2"
DEMO_OPTIMIZERS = "rl,predictor"
DEMO_BUDGET = 30
DEMO_PE_BUDGET = 512
DEMO_BW_BUDGET = 16.0


def _layers_on(final: dict[str, Any], networks: list[Any]) -> list[tuple[Any, str]]:
    """(layer, sub-accelerator name) for every compute layer of the chosen networks, by its mapping."""
    by_task = {n.name: n for n in networks}
    out = []
    for unit in final.get("assignment", []):
        net = by_task[unit["task"]]
        for i in range(unit["first"], unit["last"] + 1):
            layer = net.layers[i]
            if layer.kind.has_macs:
                out.append((layer, unit["sub_accelerator"]))
    return out


def _as_built(acc: Any) -> Any:
    """A sub-accelerator as the generator builds it: one stream per operand, a power-of-two width."""
    bw = acc.dram_bw_bytes_per_cycle or 8.0
    width = 1
    while width * 2 <= min(bw, 256):
        width *= 2
    return dataclasses.replace(acc, dram_ports="per_operand", dram_bw_bytes_per_cycle=float(width))


def rtl_stage(best_yaml: Path, out: Path, networks: list[Any], final: dict[str, Any]) -> str:
    """Emit the chosen design's RTL and verify its smallest mapped layer that the generator takes."""
    from coexplore.dataflows.system import load_system
    from coexplore.rtl.emit import emit_accelerator
    from coexplore.rtl.params import TEMPLATE_KIND, RtlError, params_from_accelerator

    system = load_system(best_yaml)
    rtl_dir = out / "rtl"
    rtl_dir.mkdir(parents=True, exist_ok=True)
    lines, built = [], {}
    missing = sorted({a.dataflow.name for a in system.accelerators if a.dataflow.name not in TEMPLATE_KIND})
    for acc in system.accelerators:
        if acc.dataflow.name not in TEMPLATE_KIND:
            continue
        hw = _as_built(acc)
        try:
            emitted = emit_accelerator(hw)
        except RtlError as exc:
            lines.append(f"- {acc.name} ({acc.dataflow.name} {acc.rows}x{acc.cols}): not generated: {exc}")
            continue
        shutil.copy2(emitted.verilog_path, rtl_dir / emitted.verilog_path.name)
        built[acc.name] = hw
        lines.append(
            f"- {acc.name} ({acc.dataflow.name} {acc.rows}x{acc.cols}, {hw.dram_bw_bytes_per_cycle:g} "
            f"B/cycle per operand stream): `rtl/{emitted.verilog_path.name}`"
        )
    if missing:
        lines.append(
            f"- no RTL generator yet for template(s) {', '.join(missing)} (generators exist for "
            f"{', '.join(sorted(TEMPLATE_KIND))}); those sub-accelerators are not emitted."
        )
    if not built:
        return "\n".join(lines + ["", "No sub-accelerator of the chosen design has a generator: nothing verified."])
    if shutil.which("iverilog") is None:
        return "\n".join(lines + ["", "Verification skipped: Icarus Verilog (`iverilog`) is not installed."])
    from coexplore.rtl.program import prepare
    from coexplore.rtl.verify import verify_layer
    from coexplore.sim.cycle import simulate_layer

    candidates = sorted(((l, a) for l, a in _layers_on(final, networks) if a in built), key=lambda x: x[0].macs)
    refused = 0
    for layer, acc_name in candidates:
        hw = built[acc_name]
        try:
            prepare(params_from_accelerator(hw), layer)
        except RtlError:
            refused += 1
            continue
        expected = int(simulate_layer(layer, hw, "rtl").total_cycles)
        work = Path(tempfile.mkdtemp(prefix="coexplore_demo_rtl_"))
        t0 = time.perf_counter()
        try:
            result, program = verify_layer(hw, layer, work, expected_cycles=expected)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        passed = result.passed and result.mismatches == 0 and result.rtl_cycles == expected
        lines += [
            "",
            f"{'PASSED' if passed else 'FAILED'}: layer `{layer.name}` of the chosen network "
            f"({layer.describe()}), mapped to {acc_name}, run on its generated RTL in cocotb (Icarus, "
            f"{time.perf_counter() - t0:.0f} s): {result.mismatches} of {program.expected_out.size} outputs "
            f"differ from numpy; {result.rtl_cycles} cycles in the RTL vs {expected} from the cycle-level "
            f"simulator (profile rtl).",
        ]
        if refused:
            lines.append(
                f"({refused} smaller mapped layer(s) were refused by the generator: their inputs exceed "
                "what its scratchpads hold without input tiling, see issue 10.)"
            )
        return "\n".join(lines)
    return "\n".join(
        lines
        + [
            "",
            f"None of the {len(candidates)} layers mapped to a generated sub-accelerator fits "
            "the generator's scratchpads (no input tiling in the RTL yet): nothing verified.",
        ]
    )


def run_demo_search(out: Path, workers: int = 2, budget: int = DEMO_BUDGET, seed: int = 0) -> Path:
    """The whole job; returns the report path."""
    import click

    from coexplore.cli_search import build_config, run
    from coexplore.codesign.loop import networks_of
    from coexplore.models.ir import CoexploreError

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    options: dict[str, Any] = dict(
        tasks=DEMO_TASKS,
        spec_text=DEMO_SPEC,
        optimizer=DEMO_OPTIMIZERS,
        budget=budget,
        seed=seed,
        pe_budget=DEMO_PE_BUDGET,
        bw_budget=DEMO_BW_BUDGET,
        templates_text=None,
        max_accelerators=2,
        batch_size=4,
        max_proposals=None,
        weights=None,
        data=(),
        epochs=None,
        cache_dir=None,
    )
    config, _ = build_config(**options)
    resume = (out / "log.jsonl").exists()
    result = run(str(out), resume, workers, "auto", True, quiet=False, **options)
    search_s = time.perf_counter() - t0
    sections = []
    main = result.main
    if main.final is not None and result.best_yaml is not None:
        nets = networks_of(config, main.final["vector"])
        click.echo("RTL: emitting the chosen design and verifying one of its layers in cocotb ...")
        try:
            text = rtl_stage(result.best_yaml, out, nets, main.final)
        except ImportError as exc:
            text = f"Skipped: the RTL tools are not installed ({exc.name}); `pip install 'coexplore[rtl]'`."
        except CoexploreError as exc:  # e.g. the cocotb bench outside a repository checkout
            text = f"Skipped: {exc}"
        sections.append(("RTL of the chosen design", text))
    else:
        sections.append(("RTL of the chosen design", "No design met the spec: nothing to generate."))
    sections.append(
        (
            "How this was produced",
            (
                f"`coexplore demo` = `coexplore search --tasks {DEMO_TASKS} --spec {DEMO_SPEC} "
                f"--optimizer {DEMO_OPTIMIZERS} --budget {budget} --seed {seed} --pe-budget {DEMO_PE_BUDGET} "
                f"--bw-budget {DEMO_BW_BUDGET:g} --baselines --workers {workers} --out {out}`, then "
                f"`coexplore rtl --design {out}/best.yaml` for the sub-accelerators "
                f"with a generator and `coexplore verify` on one mapped layer. Search {search_s:.0f} s, in all "
                f"{time.perf_counter() - t0:.0f} s. Trainings are cached on disk (a rerun trains nothing)."
            ),
        )
    )
    from coexplore.codesign.results import write_report

    task_names = [t.task for t in config.tasks]
    md, _html = write_report(
        out,
        result.runs,
        config.spec,
        task_names,
        sections=sections,
        plot="front.png" if (out / "front.png").exists() else None,
    )
    return md
