"""Calibrate the analytical area model's PE coefficient against synthesized RTL.

For several array sizes the generated WS accelerator is synthesized (generic gates, Nangate-45
areas, memories kept apart); a least-squares fit of

    logic_um2 = pe_um2 * PEs + row_um2 * rows + col_um2 * cols + fixed_um2

gives the per-PE area the hardware really needs (multiplier, adder, registers), the per-row cost
(im2col address generator, input skew, ifmap read port), the per-column cost (partial-sum
injection, output bank ports, drain) and the controller. The analytical model (sim/tech.py
``pe_um2 + noc_um2_per_pe``) is compared to the fitted per-PE figure; the scratchpads are checked bit
for bit against the accelerator's kB.

Run: ``python -m coexplore.rtl.calibrate [--sizes 2,3,4,6,8] [--out rtl/area_calibration.json]``.

Pipelined PEs (``--pe-stages 1,2``): the same sizes unpipelined and with those PE pipeline stages,
fitted as the unpipelined fit plus ``pe_stage_um2`` per PE and ``col_stage_um2`` per column once
pipelined, the figures the template's ``logic_area.pe_stage`` / ``col_stage`` carry (over the WS
per-PE / per-column coefficients); written as ``pipelined`` in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.emit import emit_accelerator
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.synth import generic

# The analytical model's per-PE area at 45 nm, int8 x int8 -> int32 (sim/tech.py TechTable defaults):
# pe_um2 = 282 (8x8 mult) + 137 (32-bit add) + 4.522 * 48 (operand registers); noc_um2 = 4.522 * 48.
MODEL_PE_UM2_45NM = 282.0 + 137.0 + 4.522 * 48 + 4.522 * 48


def calibrate(
    sizes: list[tuple[int, int]],
    work: Path,
    template: str = "systolic-ws",
    kb: float = 1.0,
    stream_bytes: int = 4,
    pe_stages: int = 0,
) -> dict:
    samples = []
    for rows, cols in sizes:
        acc = Accelerator(
            dataflow=get_template(template),
            rows=rows,
            cols=cols,
            ifmap_sram_kb=kb,
            filter_sram_kb=kb,
            ofmap_sram_kb=kb,
            dram_bw_bytes_per_cycle=stream_bytes,
            pe_stages=pe_stages,
        )
        params = params_from_accelerator(acc)
        emitted = emit_accelerator(acc, work / "cache")
        folder = work / f"{template}_{rows}x{cols}_s{pe_stages}"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        g = generic(emitted.verilog_path, params.module_name, folder)
        samples.append(
            {
                "rows": rows,
                "cols": cols,
                "pes": rows * cols,
                **({"pe_stages": pe_stages} if pe_stages else {}),
                "cells": g["cells"],
                "flops": g["flops"],
                "logic_um2_45nm": round(g["logic_um2_45nm"], 1),
                "memories": g["memories"],
                "memory_bits": params.memory_bits,
                "model_sram_bits": int(3 * kb * 1024 * 8),
                "synth_s": round(time.perf_counter() - t0, 1),
            }
        )
        print(json.dumps(samples[-1]), flush=True)
    return {"template": template, "stream_bytes": stream_bytes, "samples": samples, **fit(samples)}


def fit(samples: list[dict]) -> dict:
    """Least-squares fit of the logic area over the samples, and the errors that remain."""
    pes = np.array([s["pes"] for s in samples], float)
    rows = np.array([s["rows"] for s in samples], float)
    cols = np.array([s["cols"] for s in samples], float)
    y = np.array([s["logic_um2_45nm"] for s in samples], float)
    a = np.stack([pes, rows, cols, np.ones_like(pes)], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    rel = (a @ coef - y) / y
    model_rel = (pes * MODEL_PE_UM2_45NM - y) / y
    pe_only = np.stack([pes], axis=1)
    k, *_ = np.linalg.lstsq(pe_only, y, rcond=None)
    pe_only_rel = (pe_only @ k - y) / y
    return {
        "fit": {
            "pe_um2": round(float(coef[0]), 2),
            "row_um2": round(float(coef[1]), 2),
            "col_um2": round(float(coef[2]), 2),
            "fixed_um2": round(float(coef[3]), 2),
        },
        "fit_error": {
            "mean_abs_pct": round(float(np.mean(np.abs(rel)) * 100), 2),
            "max_abs_pct": round(float(np.max(np.abs(rel)) * 100), 2),
        },
        "pe_only_fit": {
            "pe_um2": round(float(k[0]), 2),
            "mean_abs_pct": round(float(np.mean(np.abs(pe_only_rel)) * 100), 2),
            "max_abs_pct": round(float(np.max(np.abs(pe_only_rel)) * 100), 2),
        },
        "analytical_pe_um2": round(MODEL_PE_UM2_45NM, 2),
        "analytical_pe_only_error": {
            "mean_abs_pct": round(float(np.mean(np.abs(model_rel)) * 100), 2),
            "max_abs_pct": round(float(np.max(np.abs(model_rel)) * 100), 2),
        },
        "pe_coefficient_ratio_synth_over_model": round(float(coef[0]) / MODEL_PE_UM2_45NM, 3),
        "notes": "logic area = Nangate-45 X1 cell areas of yosys' generic gates after synth -flatten + abc; "
        "memories excluded (kept as memory cells; their bits are listed per sample beside the "
        "accelerator's kB budget). The analytical model charges PEs only (sim/tech.py pe_um2 + "
        "noc_um2_per_pe), so its error is against the whole logic; pe_only_fit is the best single "
        "per-PE coefficient.",
    }


# the WS fit's per-PE and per-column coefficients (rtl/area_calibration.json): logic_area ratios are over them
WS_PE_UM2_FIT, WS_COL_UM2_FIT = 1304.56, 317.58


def fit_stages(samples: list[dict]) -> dict:
    """The area the pipelined PEs change: the least-squares ``k_pe, k_col`` in ``logic(s) - logic(0) =
    k_pe * PEs + k_col * cols`` (s >= 1: the product register, the registered weight load and injection;
    stage 2 only adds registers at the array edges) over the sizes sampled unpipelined and pipelined,
    and the errors of the whole model (the unpipelined fit of these samples plus that change) on them."""
    flat = [s for s in samples if not s.get("pe_stages")]
    zero = {(s["rows"], s["cols"]): s["logic_um2_45nm"] for s in flat}
    staged = [s for s in samples if s.get("pe_stages") and (s["rows"], s["cols"]) in zero]
    if len(flat) < 4 or not staged:
        raise ValueError("fit_stages: needs >= 4 unpipelined sizes and the same sizes pipelined")
    x = np.array([[s["pes"], s["cols"]] for s in staged], float)
    delta = np.array([s["logic_um2_45nm"] - zero[(s["rows"], s["cols"])] for s in staged], float)
    (k_pe, k_col), *_ = np.linalg.lstsq(x, delta, rcond=None)
    b = fit(flat)["fit"]
    pes, rows, cols, y = (np.array([s[f] for s in samples], float) for f in ("pes", "rows", "cols", "logic_um2_45nm"))
    piped = np.array([min(s.get("pe_stages", 0), 1) for s in samples], float)
    model = b["pe_um2"] * pes + b["row_um2"] * rows + b["col_um2"] * cols + b["fixed_um2"]
    model = model + piped * (k_pe * pes + k_col * cols)
    rel = (model - y) / y
    return {
        "unpipelined_fit": b,
        "pe_stage_um2": round(float(k_pe), 2),
        "col_stage_um2": round(float(k_col), 2),
        # the template's logic_area.pe_stage / col_stage: over the WS fit's per-PE / per-column figures
        "pe_stage_ratio": round(float(k_pe) / WS_PE_UM2_FIT, 4),
        "col_stage_ratio": round(float(k_col) / WS_COL_UM2_FIT, 4),
        "fit_error": {
            "mean_abs_pct": round(float(np.mean(np.abs(rel)) * 100), 2),
            "max_abs_pct": round(float(np.max(np.abs(rel)) * 100), 2),
        },
    }


def calibrate_buffers(
    work: Path, rows: int = 4, cols: int = 4, kbs: tuple[float, ...] = (0.5, 1.0, 2.0), stream_bytes: int = 4
) -> dict:
    """um2 per scratchpad bit when the memories are built from flip-flops (the open flow has no
    SRAM compiler): synthesize one array with several scratchpad sizes, memories mapped, and fit
    area against memory bits. An upper bound for an SRAM macro's per-bit area."""
    points = []
    for kb in kbs:
        acc = Accelerator(
            dataflow=get_template("systolic-ws"),
            rows=rows,
            cols=cols,
            ifmap_sram_kb=kb,
            filter_sram_kb=kb,
            ofmap_sram_kb=kb,
            dram_bw_bytes_per_cycle=stream_bytes,
        )
        params = params_from_accelerator(acc)
        emitted = emit_accelerator(acc, work / "cache")
        folder = work / f"buffers_{rows}x{cols}_{kb}kb"
        folder.mkdir(parents=True, exist_ok=True)
        g = generic(emitted.verilog_path, params.module_name, folder, map_memories=True)
        points.append(
            {"kb_per_operand": kb, "memory_bits": params.memory_bits, "area_um2_45nm": round(g["logic_um2_45nm"], 1)}
        )
        print(json.dumps(points[-1]), flush=True)
    bits = np.array([p["memory_bits"] for p in points], float)
    area = np.array([p["area_um2_45nm"] for p in points], float)
    slope, intercept = np.polyfit(bits, area, 1)
    rel = (slope * bits + intercept - area) / area
    return {
        "array": f"{rows}x{cols}",
        "points": points,
        "um2_per_bit_flop_memory": round(float(slope), 3),
        "fit_max_abs_pct": round(float(np.max(np.abs(rel)) * 100), 2),
        "analytical_sram_um2_per_bit": 1.215,
        "notes": "flip-flop memories (DFF + read mux per bit); sim/tech.py charges an SRAM bit cell "
        "(1.215 um2 at 45 nm), which an SRAM macro would approach, not this figure.",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2,3,4,6,8", help="square array sizes, comma-separated (or RxC)")
    ap.add_argument("--template", default="systolic-ws", help="a template with an RTL generator (rtl.kinds)")
    ap.add_argument(
        "--kb",
        type=float,
        default=1.0,
        help="scratchpad kB per operand (the shipped eyeriss fit used 4: one ifmap replica per PE)",
    )
    ap.add_argument("--out", default=str(Path(__file__).with_name("area_calibration.json")))
    ap.add_argument("--work", default=".coexplore_cache/calibrate")
    ap.add_argument("--refit", default=None, help="refit the samples of an earlier output file, no synthesis")
    ap.add_argument("--buffers", action="store_true", help="only add the flip-flop buffer calibration to --out")
    ap.add_argument("--pe-stages", default=None, help="pipelined PEs: stages to sample, e.g. 0,1,2 (0 included)")
    args = ap.parse_args()
    if args.pe_stages:  # adds a "pipelined" entry to --out (kept: the unpipelined fit already there)
        out = Path(args.out)
        sizes = [(int(r), int(c or r)) for r, _, c in (item.partition("x") for item in args.sizes.split(","))]
        samples = [
            sample
            for st in sorted({0, *(int(x) for x in args.pe_stages.split(","))})
            for sample in calibrate(sizes, Path(args.work), template=args.template, kb=args.kb, pe_stages=st)["samples"]
        ]
        result = json.loads(out.read_text()) if out.exists() else {"template": args.template}
        result["pipelined"] = {"samples": samples, **fit_stages(samples)}
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result["pipelined"].items() if k != "samples"}))
        return
    if args.buffers:
        out = Path(args.out)
        result = json.loads(out.read_text()) if out.exists() else {}
        result["buffers"] = calibrate_buffers(Path(args.work))
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["buffers"]))
        return
    if args.refit:
        old = json.loads(Path(args.refit).read_text())
        result = {k: old[k] for k in ("template", "stream_bytes", "samples", "buffers", "pipelined") if k in old} | fit(
            old["samples"]
        )
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: result[k] for k in ("fit", "fit_error", "pe_only_fit", "analytical_pe_only_error")}))
        return
    sizes = []
    for item in args.sizes.split(","):
        r, _, c = item.partition("x")
        sizes.append((int(r), int(c or r)))
    result = calibrate(sizes, Path(args.work), template=args.template, kb=args.kb)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("fit", "fit_error", "pe_only_fit", "analytical_pe_only_error")}))


if __name__ == "__main__":
    main()
