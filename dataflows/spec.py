"""Dataflow, Accelerator and TimingProfile values: the hardware side every back end takes.

A ``Dataflow`` says which loop dims of the layer nest (see ``coexplore.models.ir``) are unrolled on
the array's rows and columns, which dims stream through the array within one *fold* (``temporal``,
whose trip count is T), and which operand stays in the PEs. Every dim that is neither spatial nor
temporal is an outer loop: each of its iterations is another set of folds. The per-fold overheads
(stationary preload, systolic fill/drain, output drain, pipeline depth) are formulas over
``rows``, ``cols`` and ``T`` so a user's YAML template can state its own timing.

A ``TimingProfile`` says which of those overheads the hardware hides (fold overlap, preloading the
next fold's stationary tile, draining outputs during the next fold): the assumptions are
parameters, not constants buried in a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from coexplore.dataflows.expr import Expr
from coexplore.models.ir import CoexploreError, Dim, OpKind


class SpecError(CoexploreError):
    """An accelerator, dataflow or system description that is malformed or impossible."""


class Operand(str, Enum):
    INPUT = "input"
    WEIGHT = "weight"
    OUTPUT = "output"


class Pack(str, Enum):
    """How several dims share one array axis.

    FLATTEN: the dims' product is folded onto the axis (im2col, SCALE-Sim).
    NESTED: the first dim is unrolled as far as it fits, the next fills what is left (Eyeriss
    replicating filter rows across channels).
    """

    FLATTEN = "flatten"
    NESTED = "nested"


class Interconnect(str, Enum):
    SYSTOLIC = "systolic"  # neighbour-to-neighbour forwarding, skewed operands
    BROADCAST = "broadcast"  # buses/multicast from the buffer to PEs, adder trees


@dataclass(frozen=True, slots=True)
class SpatialAxis:
    dims: tuple[Dim, ...]
    pack: Pack = Pack.FLATTEN


@dataclass(frozen=True, slots=True)
class Mapping:
    """Which dims go on rows, on cols, and stream within a fold; all others are outer fold loops."""

    rows: SpatialAxis
    cols: SpatialAxis
    temporal: tuple[Dim, ...]

    def __post_init__(self) -> None:
        used = list(self.rows.dims) + list(self.cols.dims) + list(self.temporal)
        dupes = sorted({d.value for d in used if used.count(d) > 1})
        if dupes:
            raise SpecError(f"mapping uses dim(s) {', '.join(dupes)} more than once (each dim goes in one place)")
        if Dim.G in used:
            raise SpecError("mapping may not place G (groups) on the array: groups are always outer loops")

    @property
    def outer(self) -> tuple[Dim, ...]:
        placed = set(self.rows.dims) | set(self.cols.dims) | set(self.temporal)
        return tuple(d for d in Dim if d not in placed)


@dataclass(frozen=True, slots=True)
class FoldTiming:
    """Per-fold overheads in cycles, as formulas over rows, cols and T."""

    preload: Expr = Expr("0")  # loading the stationary operand into the PEs
    fill: Expr = Expr("0")  # skew fill + drain of the streamed operands (systolic)
    drain: Expr = Expr("0")  # moving finished outputs out of the array
    pipeline: Expr = Expr("0")  # fixed latency paid once (adder tree, buffer read)


@dataclass(frozen=True, slots=True)
class LogicArea:
    """A template's logic area by part, relative to the weight-stationary array the area model is fitted
    to (sim/tech.py [RTL]); a generated template's figures come from its own fit (rtl/calibrate.py)."""

    pe: float = 1.0  # per PE: multiplier, accumulator, operand registers, NoC registers
    row: float = 1.0  # per array row (address generation, input skew, read ports)
    col: float = 1.0  # per array column (partial-sum injection, output ports, drain)
    fixed: float = 1.0  # the controller, stream interfaces, cycle counter
    # added to ``pe`` and ``col`` once the PEs are pipelined (``Accelerator.pe_stages`` >= 1: the product
    # register, the registered weight load and partial-sum injection; further stages register operands
    # at the array edges only, not charged); may be negative (a registered product maps smaller)
    pe_stage: float = 0.0
    col_stage: float = 0.0


@dataclass(frozen=True, slots=True)
class Dataflow:
    name: str
    description: str
    stationary: Operand
    interconnect: Interconnect
    mapping: Mapping
    timing: FoldTiming
    overrides: tuple[tuple[OpKind, Mapping], ...] = ()
    # More loop mappings the mapper may choose per layer (None: every MAC layer kind); the template's
    # own mapping (``mapping_for``) is always the first candidate and is what generated hardware runs.
    alternatives: tuple[tuple[OpKind | None, Mapping], ...] = ()
    im2col: bool = False  # inputs stored/streamed as the im2col matrix: a word used by R*S taps moves R*S times
    sliding_input: bool = False  # inputs reused across neighbouring windows inside the array: enter once
    logic_area_scale: float = 1.0  # array logic relative to the weight-stationary array the area model is fitted to
    logic_area: LogicArea = LogicArea()  # per-part ratios (applied on top of logic_area_scale)
    pe_stages: int = 0  # PE pipeline stages bound into ``timing`` and ``logic_area`` (``with_stages``)

    @property
    def pipelined(self) -> bool:
        """Whether the timing formulas charge the PEs' pipeline stages (use the name ``stages``)."""
        t = self.timing
        return any("stages" in e.names for e in (t.preload, t.fill, t.drain, t.pipeline))

    def with_stages(self, stages: int) -> Dataflow:
        """This dataflow for PEs with ``stages`` pipeline registers: ``stages`` bound in the timing
        formulas and ``logic_area.pe_stage``/``col_stage`` added when pipelined (0: the template itself)."""
        if stages == self.pe_stages:
            return self
        t, la = self.timing, self.logic_area
        step = min(stages, 1) - min(self.pe_stages, 1)  # becomes pipelined (1), unpipelined (-1) or neither
        return replace(
            self,
            timing=FoldTiming(*(e.bind(stages=stages) for e in (t.preload, t.fill, t.drain, t.pipeline))),
            logic_area=replace(
                la, pe=round(la.pe + la.pe_stage * step, 12), col=round(la.col + la.col_stage * step, 12)
            ),
            pe_stages=stages,
        )

    def mapping_for(self, kind: OpKind) -> Mapping:
        for k, m in self.overrides:
            if k is kind:
                return m
        return self.mapping

    def mappings_for(self, kind: OpKind) -> tuple[Mapping, ...]:
        """The template's own mapping for ``kind`` first, then its alternatives for it (no repeats)."""
        out = [self.mapping_for(kind)]
        for k, m in self.alternatives:
            if (k is None or k is kind) and m not in out:
                out.append(m)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TimingProfile:
    """Which per-fold overheads the hardware hides; see module docstring."""

    name: str
    description: str = ""
    overlap_folds: bool = False  # fill/drain skew of consecutive folds overlaps: paid once
    preload_next_stationary: bool = False  # next fold's stationary tile loads during this fold
    drain_during_next_fold: bool = False  # outputs leave while the next fold computes
    model_output_drain: bool = True  # charge the template's drain (SCALE-Sim ignores OS drain)
    double_buffered_dram: bool = True  # DRAM transfers of fold i+1 overlap compute of fold i
    end_offset_cycles: int = 0  # SCALE-Sim counts from cycle 0: -1
    # Memory model of the cycle-level simulator (coexplore.sim.cycle; exact rules in docs/timing.md).
    memory_model: str = "fold"  # "fold": fold-level double buffering; "scalesim": SCALE-Sim v3's buffers
    drain_latency_cycles: int = 0  # from a finished output tile's last pass to the start of its drain
    drain_setup_cycles: int = 0  # cycles a drain takes before its first beat
    first_fold_setup: str = "0"  # cycles (formula over rows, cols, T) before the first fold may start
    array_padded_tiles: bool = False  # weight/output tiles move array-shaped, each array line in whole beats
    resident_input: bool = True  # a layer input that fits half its scratchpad is loaded once
    drain_accumulators: bool = False  # outputs leave at acc_bits (True) or at input_bits
    reuse_tiles: bool = True  # keep a tile the next fold uses again (False: every fold reloads its tiles)
    weight_line_words: int = 0  # > 0: weights move as one line per array row, padded to this many words
    whole_byte_words: bool = False  # every operand and accumulator takes whole bytes (ceil(bits / 8))
    # The template runs as coexplore's generated RTL: only the template's own mapping and residency
    # rule, operands stored at the accelerator's widths (the mapper has no choice to make).
    generated_hardware: bool = False
    template_overrides: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()  # per-template fields

    def for_template(self, template: str) -> TimingProfile:
        """This profile with the overrides for ``template`` applied."""
        for name, fields in self.template_overrides:
            if name == template:
                changes: dict[str, Any] = dict(fields)  # each field's own type, checked when the YAML was read
                return replace(self, template_overrides=(), **changes)
        return self

    def first_fold_setup_expr(self) -> Expr:
        return Expr(self.first_fold_setup)


MAX_PE_STAGES = 2  # register stages a PE may have (Accelerator.pe_stages)


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One sub-accelerator: a dataflow instantiated with an array, buffers and bandwidths.

    Bandwidths are bytes per cycle; ``None`` means unlimited. ``dram_ports`` is ``per_operand``
    (each operand has its own port of ``dram_bw_bytes_per_cycle``, as SCALE-Sim) or ``shared``.
    SRAM sizes are per operand in kB (1 kB = 1024 bytes) and double-buffered: half holds the working tile.
    """

    dataflow: Dataflow
    rows: int
    cols: int
    ifmap_sram_kb: float = 64.0
    filter_sram_kb: float = 64.0
    ofmap_sram_kb: float = 64.0
    noc_bw_bytes_per_cycle: float | None = None
    dram_bw_bytes_per_cycle: float | None = None
    dram_ports: str = "per_operand"
    input_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    clock_mhz: float = 1000.0
    tech_node_nm: float = 45.0
    name: str = field(default="")
    # Register stages inside each PE (0: multiply and accumulate in one cycle; 1: a register between
    # them). The template's timing formulas charge them (``stages``); __post_init__ binds the value
    # into ``dataflow`` (``Dataflow.with_stages``), so every back end reads it from the formulas.
    pe_stages: int = 0

    def __post_init__(self) -> None:
        for key in ("rows", "cols"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value > 4096:
                raise SpecError(f"accelerator {key}={value!r}: expected an integer in 1..4096")
        for key in ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb", "clock_mhz", "tech_node_nm"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and 0 < value < 1e7):
                raise SpecError(f"accelerator {key}={value!r}: expected a positive number")
        for key in ("noc_bw_bytes_per_cycle", "dram_bw_bytes_per_cycle"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1e7):
                raise SpecError(f"accelerator {key}={value!r}: expected a positive number (or omit it for unlimited)")
        if self.dram_ports not in ("per_operand", "shared"):
            raise SpecError(f"accelerator dram_ports={self.dram_ports!r}: expected 'per_operand' or 'shared'")
        for key in ("input_bits", "weight_bits", "acc_bits"):
            value = getattr(self, key)
            if not isinstance(value, int) or not 1 <= value <= 64:
                raise SpecError(f"accelerator {key}={value!r}: expected an integer in 1..64")
        if not 3 <= self.tech_node_nm <= 180:
            raise SpecError(f"accelerator tech_node_nm={self.tech_node_nm!r}: expected 3..180 nm")
        stages = self.pe_stages
        if not isinstance(stages, int) or isinstance(stages, bool) or not 0 <= stages <= MAX_PE_STAGES:
            raise SpecError(f"accelerator pe_stages={stages!r}: expected an integer in 0..{MAX_PE_STAGES}")
        if stages and not self.dataflow.pipelined:
            raise SpecError(
                f"accelerator pe_stages={stages}: template {self.dataflow.name!r} has no pipelined PEs"
                " (its timing formulas do not use 'stages'; expected 0)"
            )
        object.__setattr__(self, "dataflow", self.dataflow.with_stages(stages))

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def label(self) -> str:
        return self.name or f"{self.dataflow.name}-{self.rows}x{self.cols}"
