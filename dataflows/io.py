"""YAML <-> values for dataflow templates, timing profiles and accelerators, validated by pydantic.

Everything a user writes goes through here, so every rejection names the file, the field and the
value, in one line.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coexplore.dataflows.expr import Expr, ExprError, check_range
from coexplore.dataflows.spec import (
    MAX_PE_STAGES,
    Accelerator,
    Dataflow,
    FoldTiming,
    Interconnect,
    LogicArea,
    Mapping,
    Operand,
    Pack,
    SpatialAxis,
    SpecError,
    TimingProfile,
)
from coexplore.models.ir import Dim, OpKind

_DIM_NAMES = [d.value for d in Dim if d is not Dim.G]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AxisModel(_Strict):
    dims: list[Literal["N", "K", "C", "P", "Q", "R", "S"]] = Field(min_length=1)
    pack: Pack = Pack.FLATTEN


class MappingModel(_Strict):
    rows: AxisModel
    cols: AxisModel
    temporal: list[Literal["N", "K", "C", "P", "Q", "R", "S"]] = Field(min_length=1)

    def to_value(self) -> Mapping:
        return Mapping(
            rows=SpatialAxis(tuple(Dim(d) for d in self.rows.dims), self.rows.pack),
            cols=SpatialAxis(tuple(Dim(d) for d in self.cols.dims), self.cols.pack),
            temporal=tuple(Dim(d) for d in self.temporal),
        )


class AlternativeModel(MappingModel):
    kinds: list[OpKind] = []  # layer kinds it applies to (empty: every MAC layer)


def _kinds_or_every(kinds: list[OpKind]) -> list[OpKind | None]:
    """An alternative's layer kinds; None stands for every MAC layer when it names none."""
    return list(kinds) if kinds else [None]


class TimingModel(_Strict):
    preload: str = "0"
    fill: str = "0"
    drain: str = "0"
    pipeline: str = "0"

    @field_validator("preload", "fill", "drain", "pipeline", mode="before")
    @classmethod
    def _formula(cls, value: Any) -> str:
        text = str(value)
        try:
            Expr(text)
        except ExprError as exc:
            raise ValueError(str(exc)) from None
        return text


class LogicAreaModel(_Strict):
    """Per-part logic area ratios to the weight-stationary fit (``dataflows.spec.LogicArea``)."""

    pe: float = Field(default=1.0, gt=0, le=100)
    row: float = Field(default=1.0, gt=0, le=100)
    col: float = Field(default=1.0, gt=0, le=100)
    fixed: float = Field(default=1.0, gt=0, le=100)
    pe_stage: float = Field(default=0.0, gt=-1, le=100)  # added to pe once the PEs are pipelined
    col_stage: float = Field(default=0.0, gt=-1, le=100)  # added to col once the PEs are pipelined


class DataflowModel(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str
    stationary: Operand
    interconnect: Interconnect
    mapping: MappingModel
    timing: TimingModel = TimingModel()
    overrides: dict[OpKind, MappingModel] = {}
    alternatives: list[AlternativeModel] = []  # more mappings the per-layer mapper may choose
    im2col: bool = False
    sliding_input: bool = False
    logic_area_scale: float = Field(1.0, gt=0, le=100)
    logic_area: LogicAreaModel = LogicAreaModel()

    def to_value(self) -> Dataflow:
        return Dataflow(
            name=self.name,
            description=self.description.strip(),
            stationary=self.stationary,
            interconnect=self.interconnect,
            mapping=self.mapping.to_value(),
            timing=FoldTiming(*(Expr(getattr(self.timing, f)) for f in ("preload", "fill", "drain", "pipeline"))),
            overrides=tuple((k, m.to_value()) for k, m in self.overrides.items()),
            alternatives=tuple((k, a.to_value()) for a in self.alternatives for k in _kinds_or_every(a.kinds)),
            im2col=self.im2col,
            sliding_input=self.sliding_input,
            logic_area_scale=self.logic_area_scale,
            logic_area=LogicArea(**self.logic_area.model_dump()),
        )


class MemoryOverrideModel(_Strict):
    """Per-template overrides of a profile's memory-model fields."""

    drain_latency_cycles: int | None = Field(None, ge=0)
    drain_setup_cycles: int | None = Field(None, ge=0)
    first_fold_setup: str | None = None
    array_padded_tiles: bool | None = None
    resident_input: bool | None = None
    drain_accumulators: bool | None = None
    reuse_tiles: bool | None = None
    weight_line_words: int | None = Field(None, ge=0)
    whole_byte_words: bool | None = None
    generated_hardware: bool | None = None

    @field_validator("first_fold_setup", mode="before")
    @classmethod
    def _formula(cls, value: Any) -> Any:
        return None if value is None else TimingModel._formula(value)


class ProfileModel(_Strict):
    description: str = ""
    overlap_folds: bool = False
    preload_next_stationary: bool = False
    drain_during_next_fold: bool = False
    model_output_drain: bool = True
    double_buffered_dram: bool = True
    end_offset_cycles: int = 0
    memory_model: Literal["fold", "scalesim"] = "fold"
    drain_latency_cycles: int = Field(0, ge=0)
    drain_setup_cycles: int = Field(0, ge=0)
    first_fold_setup: str = "0"
    array_padded_tiles: bool = False
    resident_input: bool = True
    drain_accumulators: bool = False
    reuse_tiles: bool = True
    weight_line_words: int = Field(0, ge=0)
    whole_byte_words: bool = False
    generated_hardware: bool = False
    template_overrides: dict[str, MemoryOverrideModel] = {}

    @field_validator("first_fold_setup", mode="before")
    @classmethod
    def _formula(cls, value: Any) -> str:
        return TimingModel._formula(value)

    def to_fields(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"template_overrides"})
        fields["template_overrides"] = tuple(
            (name, tuple((k, v) for k, v in o.model_dump().items() if v is not None))
            for name, o in self.template_overrides.items()
        )
        return fields


class AcceleratorModel(_Strict):
    name: str = ""
    template: str
    rows: int = Field(gt=0, le=4096)
    cols: int = Field(gt=0, le=4096)
    ifmap_sram_kb: float = Field(64.0, gt=0)
    filter_sram_kb: float = Field(64.0, gt=0)
    ofmap_sram_kb: float = Field(64.0, gt=0)
    noc_bw_bytes_per_cycle: float | None = Field(None, gt=0)
    dram_bw_bytes_per_cycle: float | None = Field(None, gt=0)
    dram_ports: Literal["per_operand", "shared"] = "per_operand"
    input_bits: int = Field(8, ge=1, le=64)
    weight_bits: int = Field(8, ge=1, le=64)
    acc_bits: int = Field(32, ge=1, le=64)
    clock_mhz: float = Field(1000.0, gt=0)
    tech_node_nm: float = Field(45.0, ge=3, le=180)
    pe_stages: int = Field(0, ge=0, le=MAX_PE_STAGES)  # PE pipeline registers (dataflows.spec.Accelerator)

    def to_value(self, templates: dict[str, Dataflow]) -> Accelerator:
        dataflow = templates.get(self.template)
        if dataflow is None:
            raise SpecError(f"unknown template {self.template!r} (expected one of {', '.join(sorted(templates))})")
        fields = self.model_dump(exclude={"template"})
        return Accelerator(dataflow=dataflow, **fields)


# ---- error formatting ----------------------------------------------------------------------------
def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line: the first offending field, its value and what was expected."""
    # An unknown field explains a "missing" one (a misspelling), so report it first.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown field {where!r}"
    if err["type"] == "missing":
        return f"{source}: missing required field {where!r}"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    return f"{source}: field {where!r} = {value!r}: {msg}"


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SpecError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


_TIMING_FIELDS = ("preload", "fill", "drain", "pipeline")


def parse_dataflow(data: dict[str, Any], source: str = "template") -> Dataflow:
    """A template from its YAML fields; its timing formulas must be finite, non-negative cycle counts
    over the checked range of rows, cols and T (``expr.check_range``)."""
    try:
        model = DataflowModel.model_validate(data)
        for field in _TIMING_FIELDS:
            check_range(getattr(model.timing, field), f"template {model.name!r} field 'timing.{field}'")
        return model.to_value()
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from None
    except (SpecError, ExprError) as exc:
        raise SpecError(f"{source}: {exc}") from None


def load_dataflow(path: str | Path) -> Dataflow:
    path = Path(path)
    return parse_dataflow(_load_yaml(path), str(path))


def _builtin_dir(name: str) -> Path:
    return Path(str(resources.files("coexplore.dataflows").joinpath(name)))


@cache
def builtin_templates() -> dict[str, Dataflow]:
    """The shipped templates (dataflows/templates/*.yaml), by name."""
    out: dict[str, Dataflow] = {}
    for path in sorted(_builtin_dir("templates").glob("*.yaml")):
        df = load_dataflow(path)
        out[df.name] = df
    return out


def templates(extra_dirs: tuple[str, ...] = ()) -> dict[str, Dataflow]:
    """Built-in templates plus any in ``extra_dirs`` and $COEXPLORE_TEMPLATES (':'-separated dirs)."""
    import os

    out = dict(builtin_templates())
    dirs = list(extra_dirs) + [d for d in os.environ.get("COEXPLORE_TEMPLATES", "").split(":") if d]
    for d in dirs:
        for path in sorted(Path(d).glob("*.yaml")):
            df = load_dataflow(path)
            out[df.name] = df
    return out


def get_template(name: str) -> Dataflow:
    """A template by name, or a path to a YAML template file."""
    if name.endswith((".yaml", ".yml")):
        return load_dataflow(name)
    all_templates = templates()
    if name not in all_templates:
        raise SpecError(f"unknown template {name!r} (expected one of {', '.join(sorted(all_templates))})")
    return all_templates[name]


@cache
def profiles() -> dict[str, TimingProfile]:
    """Timing profiles from dataflows/templates/profiles.yml, by name."""
    path = _builtin_dir("templates") / "profiles.yml"
    data = _load_yaml(path)
    out: dict[str, TimingProfile] = {}
    for name, body in data.items():
        try:
            model = ProfileModel.model_validate(body or {})
            check_range(model.first_fold_setup, f"profile {name!r} field 'first_fold_setup'")
            for tname, override in model.template_overrides.items():
                if override.first_fold_setup is not None:
                    check_range(
                        override.first_fold_setup,
                        f"profile {name!r} field 'template_overrides.{tname}.first_fold_setup'",
                    )
        except ValidationError as exc:
            raise SpecError(format_validation_error(f"{path} [{name}]", exc)) from None
        except (SpecError, ExprError) as exc:
            raise SpecError(f"{path}: {exc}") from None
        out[name] = TimingProfile(name=name, **model.to_fields())
    return out


def get_profile(name: str) -> TimingProfile:
    all_profiles = profiles()
    if name not in all_profiles:
        raise SpecError(f"unknown timing profile {name!r} (expected one of {', '.join(sorted(all_profiles))})")
    return all_profiles[name]


def parse_accelerator(data: dict[str, Any], source: str = "accelerator") -> Accelerator:
    try:
        model = AcceleratorModel.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from None
    tmpl = model.template
    table = templates() if not tmpl.endswith((".yaml", ".yml")) else {tmpl: load_dataflow(tmpl)}
    return model.to_value(table)


def load_accelerator(path: str | Path) -> Accelerator:
    path = Path(path)
    return parse_accelerator(_load_yaml(path), str(path))


def accelerator_to_dict(acc: Accelerator) -> dict[str, Any]:
    """The YAML/JSON form of an accelerator (template by name)."""
    return {
        "name": acc.name,
        "template": acc.dataflow.name,
        "rows": acc.rows,
        "cols": acc.cols,
        "ifmap_sram_kb": acc.ifmap_sram_kb,
        "filter_sram_kb": acc.filter_sram_kb,
        "ofmap_sram_kb": acc.ofmap_sram_kb,
        "noc_bw_bytes_per_cycle": acc.noc_bw_bytes_per_cycle,
        "dram_bw_bytes_per_cycle": acc.dram_bw_bytes_per_cycle,
        "dram_ports": acc.dram_ports,
        "input_bits": acc.input_bits,
        "weight_bits": acc.weight_bits,
        "acc_bits": acc.acc_bits,
        "clock_mhz": acc.clock_mhz,
        "tech_node_nm": acc.tech_node_nm,
        **({"pe_stages": acc.pe_stages} if acc.pe_stages else {}),  # written only when used: older files stay equal
    }
