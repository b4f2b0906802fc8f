"""Hardware parameters of one generated sub-accelerator, derived from an ``Accelerator`` value.

The generator, the host-side layer programming (``rtl.program``), the manifest and the tests all
read these numbers from here, so the RTL and everything that drives it agree on widths and sizes.
Which generator (kind) builds an accelerator is ``rtl.kinds``' table; the kind's host module sizes
its scratchpads (``scratchpads``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import CoexploreError


class RtlError(CoexploreError):
    """An accelerator or layer the RTL generator cannot build or run."""


RS_MAX_S = 8  # widest filter row (S) the row-stationary PEs hold

CFG_BITS = 16  # width of every layer-configuration input port
CYCLE_BITS = 32  # width of the start->done cycle counter
RTL_DIR = Path(__file__).resolve().parent


def source_fingerprint(folder: Path) -> str:
    """Hash of every ``*.py`` file of ``folder`` (name and bytes, sorted by name)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def generator_fingerprint() -> str:
    """Hash of the whole generator: every module of this package (a helper such as ``control.py``
    changes the Verilog as much as ``ws.py`` does) and the Amaranth version that converts it."""
    try:
        from importlib.metadata import version

        amaranth = version("amaranth")
    except Exception:  # noqa: BLE001 - no metadata: the sources alone
        amaranth = "?"
    return hashlib.sha256(f"{source_fingerprint(RTL_DIR)}/{amaranth}".encode()).hexdigest()[:16]


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Scratchpads:
    """A kind's scratchpad shapes for one accelerator (``scratchpads`` in its host module)."""

    ifmap_replicas: int  # ifmap copies, one per reader (array row, or PE)
    weight_line_bytes: int  # bytes of one weight-scratchpad line (before padding to whole beats)
    ofmap_depth: int
    weight_depth: int


@dataclass(frozen=True, slots=True)
class RtlParams:
    """Everything the generator needs: array, widths, stream width and scratchpad depths."""

    kind: str  # a row of rtl.kinds.KINDS ("ws", "os", "rs")
    template: str
    rows: int
    cols: int
    stream_bytes: int  # bytes per beat of each external-memory stream (= DRAM bytes/cycle per port)
    input_bits: int
    weight_bits: int
    acc_bits: int
    ifmap_bytes: int  # capacity of each ifmap replica (bytes, a multiple of stream_bytes)
    ifmap_replicas: int  # one replica per reader: array rows (WS, OS) or PEs (RS)
    weight_line_bytes: int  # one weight-scratchpad line: cols (WS, OS) or RS_MAX_S (RS) bytes
    ofmap_depth: int  # WS: pixels per column bank half (the largest T); OS: rows; RS: the largest Q
    weight_depth: int  # lines of one weight bank: WS/RS: array rows; OS: reduction steps (largest C*R*S)
    pe_stages: int = 0  # pipeline registers inside each PE (Accelerator.pe_stages; the template's ``stages``)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RtlParams:
        """The parameters of ``to_dict`` (extra keys, such as a test fault, are ignored; a missing
        field with a default, such as ``pe_stages`` in an older manifest, takes its default)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d or f.default is MISSING})

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def out_bytes(self) -> int:
        """Bytes of one output element in the output stream (accumulator, little-endian)."""
        return -(-self.acc_bits // 8)

    @property
    def weight_row_beats(self) -> int:
        """Stream beats per weight-scratchpad line (padded to whole beats)."""
        return _cdiv(self.weight_line_bytes, self.stream_bytes)

    @property
    def weight_tile_beats(self) -> int:
        return self.rows * self.weight_row_beats

    @property
    def out_row_beats(self) -> int:
        """Stream beats per drained output row (``cols`` accumulators, padded to whole beats)."""
        return _cdiv(self.cols * self.out_bytes, self.stream_bytes)

    @property
    def ifmap_words(self) -> int:
        return self.ifmap_bytes // self.stream_bytes

    @property
    def lane_bits(self) -> int:
        return int(math.log2(self.stream_bytes))

    @property
    def memory_bits(self) -> int:
        """Scratchpad bits the generator instantiates (ifmap replicas, weight banks, output banks)."""
        ifmap = self.ifmap_replicas * self.ifmap_words * self.stream_bytes * 8
        weights = 2 * self.weight_depth * self.weight_row_beats * self.stream_bytes * 8
        outputs = self.cols * 2 * self.ofmap_depth * self.acc_bits
        return ifmap + weights + outputs

    def to_dict(self) -> dict[str, Any]:
        """Every field; ``pe_stages`` only when pipelined (unpipelined designs keep their names and digests)."""
        d = asdict(self)
        if not self.pe_stages:
            del d["pe_stages"]
        return d

    def params_digest(self) -> str:
        """Hash of the parameters alone: names the module (unique per full parameter set)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    def digest(self) -> str:
        """Hash of the parameters and of the generator's own source (the emitted-Verilog cache key:
        a changed generator never reuses stale Verilog)."""
        text = json.dumps(self.to_dict(), sort_keys=True) + generator_fingerprint()
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def module_name(self) -> str:
        """Readable and unique: two accelerators that differ in any parameter (a scratchpad size
        included) get different module and file names."""
        return f"coexplore_{self.kind}_{self.rows}x{self.cols}_b{self.stream_bytes}_{self.params_digest()}"

    def component(self) -> Any:
        """The Amaranth component of these parameters (imports Amaranth lazily)."""
        from coexplore.rtl.kinds import kind_of

        return kind_of(self).component_class()(self)


DEFAULT_STREAM_BYTES = 8  # stream width used when the accelerator leaves DRAM bandwidth unlimited


def stream_bytes_of(acc: Accelerator) -> int:
    """The stream width the RTL gives ``acc`` (its DRAM bytes per cycle per operand port)."""
    bw = acc.dram_bw_bytes_per_cycle
    if bw is None:
        return DEFAULT_STREAM_BYTES
    if float(bw) != int(bw) or not _pow2(int(bw)) or int(bw) > 256:
        raise RtlError(f"dram_bw_bytes_per_cycle={bw!r}: the RTL stream width must be a power of two in 1..256 bytes")
    return int(bw)


def params_from_accelerator(acc: Accelerator) -> RtlParams:
    """The RTL parameters of ``acc``; raises RtlError naming what the generator cannot build."""
    from coexplore.rtl.kinds import kind_for

    kind = kind_for(acc.dataflow)
    if acc.dram_ports != "per_operand":
        raise RtlError(f"dram_ports={acc.dram_ports!r}: the RTL has one stream per operand (expected 'per_operand')")
    stream = stream_bytes_of(acc)
    for key in ("input_bits", "weight_bits"):
        value = getattr(acc, key)
        if not 2 <= value <= 8:
            raise RtlError(f"{key}={value}: the RTL stores operands in bytes (expected 2..8)")
    if not 8 <= acc.acc_bits <= 48:
        raise RtlError(f"acc_bits={acc.acc_bits}: expected 8..48 for the RTL accumulators")
    if acc.rows > 64 or acc.cols > 64:
        raise RtlError(f"array {acc.rows}x{acc.cols}: the RTL generator supports up to 64x64")
    pads: Scratchpads = kind.program_module().scratchpads(acc, stream)
    # The replicas together use the ifmap SRAM budget.
    ifmap_bytes = (int(acc.ifmap_sram_kb * 1024) // pads.ifmap_replicas) // stream * stream
    if ifmap_bytes < stream or pads.ofmap_depth < 1 or pads.weight_depth < 1:
        raise RtlError(f"accelerator {acc.label}: scratchpads too small for a {acc.rows}x{acc.cols} array")
    ifmap_bytes = min(ifmap_bytes, ((1 << CFG_BITS) - 1) // stream * stream)
    ofmap_depth = min(pads.ofmap_depth, (1 << CFG_BITS) - 1)
    weight_depth = min(pads.weight_depth, (1 << CFG_BITS) - 1)
    w_tiles = 2 * weight_depth * _cdiv(pads.weight_line_bytes, stream) * stream
    if w_tiles > acc.filter_sram_kb * 1024:
        raise RtlError(f"filter_sram_kb={acc.filter_sram_kb}: two weight tiles need {w_tiles} bytes")
    return RtlParams(
        kind=kind.name,
        template=acc.dataflow.name,
        rows=acc.rows,
        cols=acc.cols,
        stream_bytes=stream,
        input_bits=acc.input_bits,
        weight_bits=acc.weight_bits,
        acc_bits=acc.acc_bits,
        ifmap_bytes=ifmap_bytes,
        ifmap_replicas=pads.ifmap_replicas,
        weight_line_bytes=pads.weight_line_bytes,
        ofmap_depth=ofmap_depth,
        weight_depth=weight_depth,
        pe_stages=acc.pe_stages,  # only a kind whose timing charges ``stages`` gets here with stages > 0
    )


def __getattr__(name: str) -> Any:
    """``TEMPLATE_KIND``: shipped template name -> kind name (computed from ``rtl.kinds``' table;
    kept for callers that list the buildable templates)."""
    if name == "TEMPLATE_KIND":
        from coexplore.rtl.kinds import shipped_template_kinds

        return shipped_template_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
