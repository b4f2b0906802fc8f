"""Synthesis table: generic cells / Nangate-45 logic area and the ECP5 flow (LUTs, DSPs, BRAMs, fmax)
for generated accelerators of several sizes.

    .venv/bin/python benchmarks/synth_table.py [--sizes ws:2,ws:4,ws:8,os:4,os:8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.emit import emit_accelerator
from coexplore.rtl.synth import synthesize

TEMPLATES = {"ws": "systolic-ws", "os": "systolic-os"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="ws:2,ws:4,ws:8,ws:12,os:4,os:8")
    ap.add_argument("--json", default=None)
    ap.add_argument("--kb", type=float, default=1.0)
    ap.add_argument("--dram-bw", type=int, default=4)
    args = ap.parse_args()
    rows = []
    print(
        f"{'design':<22}{'cells':>9}{'flops':>8}{'logic um2':>11}{'mem bits':>10}{'LUT4':>8}{'DSP':>6}"
        f"{'BRAM':>6}{'LUTRAM':>8}{'fmax MHz':>10}{'s':>7}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.sizes.split(","):
            kind, _, size = item.partition(":")
            r, _, c = size.partition("x")
            r, c = int(r), int(c or r)
            acc = Accelerator(
                dataflow=get_template(TEMPLATES[kind]),
                rows=r,
                cols=c,
                ifmap_sram_kb=args.kb,
                filter_sram_kb=args.kb,
                ofmap_sram_kb=args.kb,
                dram_bw_bytes_per_cycle=args.dram_bw,
            )
            e = emit_accelerator(acc, Path(tmp) / "cache")
            res = synthesize(e.verilog_path, e.params.module_name, memory_bits=e.params.memory_bits)
            x = res.ecp5 or {}
            row = {
                "design": f"{TEMPLATES[kind]} {r}x{c}",
                "cells": res.cells,
                "flops": res.flops,
                "logic_um2_45nm": round(res.logic_um2_45nm),
                "memory_bits": res.memory_bits,
                **x,
                "seconds": round(res.seconds, 1),
            }
            rows.append(row)
            print(
                f"{row['design']:<22}{row['cells']:>9}{row['flops']:>8}{row['logic_um2_45nm']:>11}"
                f"{row['memory_bits']:>10}{x.get('luts', 0):>8}{x.get('dsps', 0):>6}{x.get('brams', 0):>6}"
                f"{x.get('lutrams', 0):>8}{x.get('fmax_mhz') or 0:>10.1f}{row['seconds']:>7}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
