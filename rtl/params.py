"""Hardware parameters of one generated sub-accelerator, derived from an ``Accelerator`` value.

The generator, the host-side layer programming (``rtl.program``), the manifest and the tests all
read these numbers from here, so the RTL and everything that drives it agree on widths and sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import CoexploreError


class RtlError(CoexploreError):
    """An accelerator or layer the RTL generator cannot build or run."""


class ArrayKind(str, Enum):
    """Which PE array the generator builds for a template family."""

    WS = "ws"  # weight-stationary systolic (systolic-ws)
    OS = "os"  # output-stationary systolic (systolic-os)
    RS = "rs"  # row-stationary (eyeriss)


# template name -> array the generator builds. Only templates whose mapping and fold timing the
# hardware follows exactly: nvdla (C on rows, adder tree) and shidiannao (P x Q on the array,
# broadcast weights) fold differently from these arrays, so they are not aliased here.
TEMPLATE_KIND: dict[str, ArrayKind] = {
    "systolic-ws": ArrayKind.WS,
    "systolic-os": ArrayKind.OS,
    "eyeriss": ArrayKind.RS,
}
RS_MAX_S = 8  # widest filter row (S) the row-stationary PEs hold

CFG_BITS = 16  # width of every layer-configuration input port
CYCLE_BITS = 32  # width of the start->done cycle counter


@lru_cache(maxsize=1)
def generator_fingerprint() -> str:
    """Hash of the hardware-describing modules of this package."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("params.py", "pe.py", "array.py", "buffers.py", "ws.py", "os.py", "rs.py", "top.py"):
        path = here / name
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


@dataclass(frozen=True, slots=True)
class RtlParams:
    """Everything the generator needs: array, widths, stream width and scratchpad depths."""

    kind: ArrayKind
    template: str
    rows: int
    cols: int
    stream_bytes: int  # bytes per beat of each external-memory stream (= DRAM bytes/cycle per port)
    input_bits: int
    weight_bits: int
    acc_bits: int
    ifmap_bytes: int  # capacity of each per-row ifmap replica (bytes, a multiple of stream_bytes)
    ofmap_depth: int  # WS: pixels per column bank half (the largest T); OS: rows
    weight_depth: int  # rows of one weight bank: WS: array rows; OS: reduction steps (largest C*R*S)
    fault: str = ""  # test-only fault injection: "", "flip_bit", "drop_cycle"

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def out_bytes(self) -> int:
        """Bytes of one output element in the output stream (accumulator, little-endian)."""
        return -(-self.acc_bits // 8)

    @property
    def weight_row_beats(self) -> int:
        """Stream beats per weight-tile row (a row of ``cols`` bytes, padded to whole beats)."""
        return -(-self.cols // self.stream_bytes)

    @property
    def weight_tile_beats(self) -> int:
        return self.rows * self.weight_row_beats

    @property
    def out_row_beats(self) -> int:
        """Stream beats per drained output row (``cols`` accumulators, padded to whole beats)."""
        return -(-(self.cols * self.out_bytes) // self.stream_bytes)

    @property
    def ifmap_words(self) -> int:
        return self.ifmap_bytes // self.stream_bytes

    @property
    def lane_bits(self) -> int:
        return int(math.log2(self.stream_bytes))

    @property
    def memory_bits(self) -> int:
        """Scratchpad bits the generator instantiates (ifmap replicas, weight banks, output banks)."""
        replicas = self.rows * self.cols if self.kind is ArrayKind.RS else self.rows
        ifmap = replicas * self.ifmap_words * self.stream_bytes * 8
        row_beats = -(-RS_MAX_S // self.stream_bytes) if self.kind is ArrayKind.RS else self.weight_row_beats
        weights = 2 * self.weight_depth * row_beats * self.stream_bytes * 8
        outputs = self.cols * 2 * self.ofmap_depth * self.acc_bits
        return ifmap + weights + outputs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    def digest(self) -> str:
        """Hash of the parameters and of the generator's own source (the emitted-Verilog cache key:
        a changed generator never reuses stale Verilog)."""
        text = json.dumps(self.to_dict(), sort_keys=True) + generator_fingerprint()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def module_name(self) -> str:
        return f"coexplore_{self.kind.value}_{self.rows}x{self.cols}_b{self.stream_bytes}"


DEFAULT_STREAM_BYTES = 8  # stream width used when the accelerator leaves DRAM bandwidth unlimited


def params_from_accelerator(acc: Accelerator, fault: str = "") -> RtlParams:
    """The RTL parameters of ``acc``; raises RtlError naming what the generator cannot build."""
    name = acc.dataflow.name
    kind = TEMPLATE_KIND.get(name)
    if kind is None:
        raise RtlError(
            f"template {name!r} has no RTL generator (expected one of {', '.join(sorted(TEMPLATE_KIND))})"
        )
    if acc.dram_ports != "per_operand":
        raise RtlError(f"dram_ports={acc.dram_ports!r}: the RTL has one stream per operand (expected 'per_operand')")
    bw = acc.dram_bw_bytes_per_cycle
    if bw is None:
        stream = DEFAULT_STREAM_BYTES
    else:
        if float(bw) != int(bw) or not _pow2(int(bw)) or int(bw) > 256:
            raise RtlError(f"dram_bw_bytes_per_cycle={bw!r}: the RTL stream width must be a power of two in 1..256 bytes")
        stream = int(bw)
    for key in ("input_bits", "weight_bits"):
        value = getattr(acc, key)
        if not 2 <= value <= 8:
            raise RtlError(f"{key}={value}: the RTL stores operands in bytes (expected 2..8)")
    if not 8 <= acc.acc_bits <= 48:
        raise RtlError(f"acc_bits={acc.acc_bits}: expected 8..48 for the RTL accumulators")
    if acc.rows > 64 or acc.cols > 64:
        raise RtlError(f"array {acc.rows}x{acc.cols}: the RTL generator supports up to 64x64")
    out_bytes = -(-acc.acc_bits // 8)
    ifmap_total = int(acc.ifmap_sram_kb * 1024)
    # One ifmap replica per array row (each row reads its own im2col address every cycle), per PE
    # for the row-stationary array; the replicas together use the ifmap SRAM budget.
    replicas = acc.rows * acc.cols if kind is ArrayKind.RS else acc.rows
    ifmap_bytes = (ifmap_total // replicas) // stream * stream
    row_beats = -(-acc.cols // stream)
    if kind is ArrayKind.RS:
        row_beats = -(-RS_MAX_S // stream)
    if kind in (ArrayKind.WS, ArrayKind.RS):
        ofmap_depth = int(acc.ofmap_sram_kb * 1024) // (2 * acc.cols * out_bytes)
        weight_depth = acc.rows
    else:
        ofmap_depth = acc.rows
        weight_depth = int(acc.filter_sram_kb * 1024) // (2 * row_beats * stream)
        if ofmap_depth * 2 * acc.cols * out_bytes > acc.ofmap_sram_kb * 1024:
            raise RtlError(f"ofmap_sram_kb={acc.ofmap_sram_kb}: two output tiles need "
                           f"{ofmap_depth * 2 * acc.cols * out_bytes} bytes")
    if ifmap_bytes < stream or ofmap_depth < 1 or weight_depth < 1:
        raise RtlError(f"accelerator {acc.label}: scratchpads too small for a {acc.rows}x{acc.cols} array")
    ifmap_bytes = min(ifmap_bytes, ((1 << CFG_BITS) - 1) // stream * stream)
    ofmap_depth = min(ofmap_depth, (1 << CFG_BITS) - 1)
    weight_depth = min(weight_depth, (1 << CFG_BITS) - 1)
    w_tile = 2 * weight_depth * row_beats * stream
    if w_tile > acc.filter_sram_kb * 1024:
        raise RtlError(f"filter_sram_kb={acc.filter_sram_kb}: two weight tiles need {w_tile} bytes")
    if fault not in ("", "flip_bit", "drop_cycle"):
        raise RtlError(f"fault={fault!r}: expected '', 'flip_bit' or 'drop_cycle'")
    return RtlParams(kind=kind, template=name, rows=acc.rows, cols=acc.cols, stream_bytes=stream,
                     input_bits=acc.input_bits, weight_bits=acc.weight_bits, acc_bits=acc.acc_bits,
                     ifmap_bytes=ifmap_bytes, ofmap_depth=ofmap_depth, weight_depth=weight_depth,
                     fault=fault)
