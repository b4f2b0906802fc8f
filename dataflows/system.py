"""System: several sub-accelerators sharing a PE budget, DRAM bandwidth and an on-chip link.

A ``System`` is what NASAIC and Herald call a heterogeneous accelerator: sub-accelerators, each an
``Accelerator`` of some template, drawn out of one budget (total PEs, DRAM bytes per cycle, optionally
area). DRAM bandwidth is either

* ``shared``: one pool of ``budget.dram_bw_bytes_per_cycle`` that the busy sub-accelerators split
  (each at most its own port, ``dram_bw_bytes_per_cycle``, which defaults to the whole pool), or
* ``partitioned``: every sub-accelerator owns a fixed slice; slices add up to at most the budget
  (NASAIC's split of bandwidth among sub-accelerators).

Inside a system a sub-accelerator's ``dram_bw_bytes_per_cycle`` is its *one* DRAM port (all operands
together). Activations that move from one sub-accelerator to another cross the ``link`` (on-chip
interconnect): a fixed latency plus bytes over its bandwidth, and energy per byte.

Budgets are checked when the value is built, so an impossible system never exists and the message
names the limit: ``PE budget 4096 exceeded: sub-accelerators need 5120 PEs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from coexplore.dataflows.io import (
    AcceleratorModel,
    _builtin_dir,
    _load_yaml,
    _Strict,
    accelerator_to_dict,
    format_validation_error,
    load_dataflow,
    templates,
)
from coexplore.dataflows.spec import Accelerator, SpecError

# Moving a byte between sub-accelerators through an on-chip buffer: one SRAM write and one read.
# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: 64-bit access of an 8 KB SRAM = 10 pJ,
# so 2 x 10 pJ / 8 bytes = 2.5 pJ per byte.
DEFAULT_LINK_ENERGY_PJ_PER_BYTE = 2.5


class BandwidthSharing(str, Enum):
    SHARED = "shared"
    PARTITIONED = "partitioned"


@dataclass(frozen=True, slots=True)
class Budget:
    """The limits the sub-accelerators are drawn from (``None``: unconstrained)."""

    dram_bw_bytes_per_cycle: float
    pes: int | None = None
    area_um2: float | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """The on-chip path between sub-accelerators (a transfer costs latency + bytes / bandwidth)."""

    bw_bytes_per_cycle: float = 32.0
    latency_cycles: int = 16
    energy_pj_per_byte: float = DEFAULT_LINK_ENERGY_PJ_PER_BYTE


@dataclass(frozen=True, slots=True)
class System:
    name: str
    accelerators: tuple[Accelerator, ...]
    budget: Budget
    sharing: BandwidthSharing = BandwidthSharing.SHARED
    link: Link = Link()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.accelerators:
            raise SpecError(f"system {self.name!r} has no sub-accelerators")
        named = tuple(
            acc if acc.name else replace(acc, name=f"{acc.dataflow.name}{i}") for i, acc in enumerate(self.accelerators)
        )
        object.__setattr__(self, "accelerators", named)
        names = [a.name for a in named]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"system {self.name!r}: sub-accelerator name(s) {', '.join(dupes)} used twice")
        check_budget(self)

    @property
    def pes(self) -> int:
        return sum(a.pes for a in self.accelerators)

    def port_bw_bytes_per_cycle(self, index: int) -> float:
        """The most DRAM bandwidth sub-accelerator ``index`` can draw (its slice or its port)."""
        own = self.accelerators[index].dram_bw_bytes_per_cycle
        pool = self.budget.dram_bw_bytes_per_cycle
        return pool if own is None else min(own, pool)

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(a.dataflow.name for a in self.accelerators)


def check_budget(system: System) -> None:
    """Raise ``SpecError`` naming the first limit the system breaks (area is checked where it is known)."""
    budget = system.budget
    if not budget.dram_bw_bytes_per_cycle > 0:
        raise SpecError(
            f"system {system.name!r}: DRAM bandwidth budget must be positive, got {budget.dram_bw_bytes_per_cycle!r}"
        )
    if budget.pes is not None and system.pes > budget.pes:
        raise SpecError(f"PE budget {budget.pes} exceeded: sub-accelerators need {system.pes} PEs")
    pool = budget.dram_bw_bytes_per_cycle
    if system.sharing is BandwidthSharing.PARTITIONED:
        missing = [a.name for a in system.accelerators if a.dram_bw_bytes_per_cycle is None]
        if missing:
            raise SpecError(
                f"system {system.name!r}: partitioned bandwidth needs dram_bw_bytes_per_cycle "
                f"on every sub-accelerator (missing on {', '.join(missing)})"
            )
        need = sum(a.dram_bw_bytes_per_cycle for a in system.accelerators)  # type: ignore[misc]
        if need > pool + 1e-9:
            raise SpecError(
                f"bandwidth budget {pool:g} bytes/cycle exceeded: sub-accelerators need {need:g} bytes/cycle"
            )
    else:
        for a in system.accelerators:
            if a.dram_bw_bytes_per_cycle is not None and a.dram_bw_bytes_per_cycle > pool + 1e-9:
                raise SpecError(
                    f"bandwidth budget {pool:g} bytes/cycle exceeded: sub-accelerator {a.name!r} "
                    f"has a {a.dram_bw_bytes_per_cycle:g} bytes/cycle port"
                )


def check_area(system: System, area_um2: float) -> None:
    """Raise ``SpecError`` when the area (from a cost model) breaks the system's area budget."""
    limit = system.budget.area_um2
    if limit is not None and area_um2 > limit * (1 + 1e-9):
        raise SpecError(f"area budget {limit / 1e6:g} mm2 exceeded: sub-accelerators need {area_um2 / 1e6:.3g} mm2")


def array_shape(pes: int) -> tuple[int, int]:
    """A near-square array of ``pes`` PEs: rows the largest power of two <= sqrt(pes) that divides it."""
    if not isinstance(pes, int) or pes <= 0:
        raise SpecError(f"PE count {pes!r}: expected a positive integer")
    rows = 1 << int(math.log2(math.isqrt(pes)))
    while pes % rows:
        rows //= 2
    return rows, pes // rows


def buildable_bw_bytes_per_cycle(bw_bytes_per_cycle: float) -> float:
    """The largest power-of-two bytes per cycle <= ``bw_bytes_per_cycle`` (at least 1): the stream widths
    the RTL generator builds (``rtl.params.stream_bytes_of``), so that a bandwidth slice a search or
    allocation picks is hardware that ``coexplore rtl --design`` can emit (a 12 B/cycle slice is not)."""
    if not (math.isfinite(bw_bytes_per_cycle) and bw_bytes_per_cycle > 0):
        raise SpecError(f"bandwidth {bw_bytes_per_cycle!r}: expected a positive number of bytes/cycle")
    return float(1 << max(int(math.floor(math.log2(bw_bytes_per_cycle))), 0))


# ---- YAML ------------------------------------------------------------------------------------------
class SubAcceleratorModel(AcceleratorModel):
    """An accelerator entry of a system: rows and cols, or ``pes`` for a near-square array."""

    rows: int | None = Field(None, gt=0, le=4096)  # type: ignore[assignment]
    cols: int | None = Field(None, gt=0, le=4096)  # type: ignore[assignment]
    pes: int | None = Field(None, gt=0, le=1 << 22)
    dram_ports: Literal["per_operand", "shared"] = "shared"

    @model_validator(mode="after")
    def _shape(self) -> SubAcceleratorModel:
        if self.pes is None and (self.rows is None or self.cols is None):
            raise ValueError("give rows and cols, or pes")
        if self.pes is not None and (self.rows is not None or self.cols is not None):
            raise ValueError("give rows and cols, or pes, not both")
        return self

    def to_accelerator(self, table: dict[str, Any]) -> Accelerator:
        dataflow = table.get(self.template)
        if dataflow is None:
            raise SpecError(f"unknown template {self.template!r} (expected one of {', '.join(sorted(table))})")
        fields = self.model_dump(exclude={"template", "pes", "rows", "cols"})
        if self.pes is not None:
            rows, cols = array_shape(self.pes)
        elif self.rows is not None and self.cols is not None:
            rows, cols = self.rows, self.cols
        else:  # _shape refuses this when the model is validated
            raise SpecError(f"sub-accelerator {self.template!r}: give rows and cols, or pes")
        return Accelerator(dataflow=dataflow, rows=rows, cols=cols, **fields)


class BudgetModel(_Strict):
    pes: int | None = Field(None, gt=0)
    dram_bw_bytes_per_cycle: float = Field(gt=0)
    area_mm2: float | None = Field(None, gt=0)


class LinkModel(_Strict):
    bw_bytes_per_cycle: float = Field(32.0, gt=0)
    latency_cycles: int = Field(16, ge=0)
    energy_pj_per_byte: float = Field(DEFAULT_LINK_ENERGY_PJ_PER_BYTE, ge=0)


class SystemModel(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    budget: BudgetModel
    bandwidth: BandwidthSharing = BandwidthSharing.SHARED
    link: LinkModel = LinkModel.model_validate({})  # every field at its default
    sub_accelerators: list[SubAcceleratorModel] = Field(min_length=1)
    # Free-form provenance a search writes beside the hardware (architectures, mapping, costs);
    # the hardware commands ignore it, so ``coexplore rtl --design best.yaml`` takes a search's result.
    codesign: dict[str, Any] | None = None


def parse_system(data: dict[str, Any], source: str = "system", base_dir: Path | None = None) -> System:
    """A validated ``System`` from its YAML mapping; every error is one line starting with ``source``."""
    try:
        model = SystemModel.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from None
    table = dict(templates())
    accs = []
    for i, sub in enumerate(model.sub_accelerators):
        where = f"{source}: sub_accelerators.{i}"
        tmpl = sub.template
        try:
            if tmpl.endswith((".yaml", ".yml")):
                path = Path(tmpl) if base_dir is None or Path(tmpl).is_absolute() else base_dir / tmpl
                table[tmpl] = load_dataflow(path)
            accs.append(sub.to_accelerator(table))
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
    b = model.budget
    budget = Budget(
        dram_bw_bytes_per_cycle=b.dram_bw_bytes_per_cycle,
        pes=b.pes,
        area_um2=None if b.area_mm2 is None else b.area_mm2 * 1e6,
    )
    try:
        return System(
            name=model.name,
            accelerators=tuple(accs),
            budget=budget,
            sharing=model.bandwidth,
            link=Link(**model.link.model_dump()),
            description=model.description.strip(),
        )
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None


def load_system(path: str | Path) -> System:
    path = Path(path)
    return parse_system(_load_yaml(path), str(path), base_dir=path.parent)


@cache
def builtin_systems() -> dict[str, System]:
    """The shipped systems (dataflows/systems/*.yaml), by name."""
    out: dict[str, System] = {}
    for path in sorted(_builtin_dir("systems").glob("*.yaml")):
        system = load_system(path)
        out[system.name] = system
    return out


def get_system(name: str) -> System:
    """A shipped system by name, or a path to a system YAML file."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return load_system(name)
    shipped = builtin_systems()
    if name not in shipped:
        raise SpecError(f"unknown system {name!r} (expected one of {', '.join(sorted(shipped))}, or a YAML file)")
    return shipped[name]


def system_to_dict(system: System) -> dict[str, Any]:
    """The YAML/JSON form of a system (templates by name)."""
    budget: dict[str, Any] = {"dram_bw_bytes_per_cycle": system.budget.dram_bw_bytes_per_cycle}
    if system.budget.pes is not None:
        budget["pes"] = system.budget.pes
    if system.budget.area_um2 is not None:
        budget["area_mm2"] = system.budget.area_um2 / 1e6
    subs = []
    for acc in system.accelerators:
        d = accelerator_to_dict(acc)
        subs.append({k: v for k, v in d.items() if v is not None})
    return {
        "name": system.name,
        "description": system.description,
        "budget": budget,
        "bandwidth": system.sharing.value,
        "link": {
            "bw_bytes_per_cycle": system.link.bw_bytes_per_cycle,
            "latency_cycles": system.link.latency_cycles,
            "energy_pj_per_byte": system.link.energy_pj_per_byte,
        },
        "sub_accelerators": subs,
    }
