"""What the joint search is asked for and what it produces: ``Spec`` (limits) and ``Candidate``.

A ``Spec`` holds system limits (the makespan of all tasks run at once, total energy, total area) and
optional per-task limits (a task's completion time and energy). It reads from and writes to one line
of text, ``latency=2.5e6,energy=4e4uJ,area=12mm2,digits.latency=1e6``:

* latency in cycles: a bare number, or with ``cycles``; ``k``, ``M``, ``G`` multiply (``2.5Mcycles``);
* energy with a unit: ``pJ nJ uJ mJ J``;
* area with a unit: ``um2 mm2`` (a system limit only).

``Spec.check`` turns measured figures into a ``SpecCheck``: one ratio value / limit per limit, so
``violation`` (how far over) and ``margin`` (how much room) compare designs across limits of
different units. Every bad string is a ``CoexploreError`` of one line naming the bad part.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coexplore.models.ir import CoexploreError

if TYPE_CHECKING:  # pragma: no cover
    from coexplore.codesign.schedule import Schedule
    from coexplore.dataflows.system import System

TOLERANCE = 1e-9  # a ratio up to 1 + TOLERANCE meets its limit (sums of floats)

_LATENCY_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_ENERGY_UNITS = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9, "J": 1e12}
_AREA_UNITS = {"um2": 1.0, "mm2": 1e6}
_KEYS = ("latency", "energy", "area")
_FIELD = {"latency": "latency_cycles", "energy": "energy_pj", "area": "area_um2"}
_NUMBER = re.compile(r"^\s*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF]|[nN][aA][nN]))\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper limits; ``None``: unconstrained."""

    latency_cycles: float | None = None
    energy_pj: float | None = None
    area_um2: float | None = None

    @property
    def empty(self) -> bool:
        return self.latency_cycles is None and self.energy_pj is None and self.area_um2 is None


@dataclass(frozen=True, slots=True)
class SpecCheck:
    """Measured figures against a spec: ``ratios`` are (limit name, value / limit), <= 1 meets it."""

    met: bool
    ratios: tuple[tuple[str, float], ...]

    @property
    def max_ratio(self) -> float:
        return max((r for _, r in self.ratios), default=0.0)

    @property
    def violation(self) -> float:
        """How far the worst limit is exceeded (0 when met): max(0, max ratio - 1)."""
        return 0.0 if self.met else max(0.0, self.max_ratio - 1.0)

    @property
    def margin(self) -> float:
        """How much room the tightest limit leaves: 1 - max ratio (negative when violated; 1 with no limits)."""
        return 1.0 - self.max_ratio

    @property
    def binding(self) -> str:
        """The name of the tightest limit ('' with no limits)."""
        return max(self.ratios, key=lambda kv: kv[1])[0] if self.ratios else ""


@dataclass(frozen=True, slots=True)
class Spec:
    """System limits (makespan of all tasks at once, total energy, total area) and per-task limits."""

    system: Limits
    tasks: tuple[tuple[str, Limits], ...] = ()

    @classmethod
    def parse(cls, text: str, tasks: Sequence[str] | None = None) -> Spec:
        """Read ``key=value`` items separated by commas (see the module docstring); ``tasks``, when given,
        are the task names a ``task.key`` item may name."""
        if not isinstance(text, str) or not text.strip():
            raise CoexploreError(
                f"spec {_quote(text)}: empty (expected key=value items such as latency=2.5e6,energy=4e4uJ,area=12mm2)"
            )
        system: dict[str, float] = {}
        per_task: dict[str, dict[str, float]] = {}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                raise CoexploreError(f"spec {_quote(text)}: empty item between commas (expected key=value)")
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep:
                raise CoexploreError(f"spec {_quote(item)}: expected key=value (keys latency, energy, area)")
            task, dot, name = key.rpartition(".")
            if name not in _KEYS:
                raise CoexploreError(
                    f"spec {_quote(item)}: unknown key {name!r} (expected latency, energy or area, "
                    f"optionally after a task name: TASK.latency)"
                )
            if dot:
                if not task:
                    raise CoexploreError(f"spec {_quote(item)}: empty task name before '.{name}'")
                if tasks is not None and task not in tasks:
                    raise CoexploreError(
                        f"spec {_quote(item)}: unknown task {task!r} (expected one of {', '.join(tasks) or 'no tasks'})"
                    )
                if name == "area":
                    raise CoexploreError(f"spec {_quote(item)}: area is a system limit (per task: latency, energy)")
            amount = _parse_value(item, name, value)
            target = per_task.setdefault(task, {}) if dot else system
            if name in target:
                raise CoexploreError(f"spec {_quote(item)}: {key} is given twice")
            target[name] = amount
        limits = Limits(**{_FIELD[k]: v for k, v in system.items()})
        return cls(limits, tuple((t, Limits(**{_FIELD[k]: v for k, v in d.items()})) for t, d in per_task.items()))

    def to_text(self) -> str:
        """The spec as ``parse`` reads it (``Spec.parse(s.to_text()) == s``)."""
        items = _items("", self.system)
        for task, limits in self.tasks:
            items += _items(f"{task}.", limits)
        return ",".join(items)

    def task_limits(self, task: str) -> Limits:
        for name, limits in self.tasks:
            if name == task:
                return limits
        return Limits()

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.tasks)

    def check(
        self,
        *,
        makespan_cycles: float,
        energy_pj: float,
        area_um2: float,
        task_latency_cycles: Mapping[str, float],
        task_energy_pj: Mapping[str, float] | None = None,
    ) -> SpecCheck:
        """Every limit's value / limit; met when none exceeds 1 (up to ``TOLERANCE``)."""
        ratios: list[tuple[str, float]] = []
        s = self.system
        for name, value, limit in (
            ("latency", makespan_cycles, s.latency_cycles),
            ("energy", energy_pj, s.energy_pj),
            ("area", area_um2, s.area_um2),
        ):
            if limit is not None:
                ratios.append((name, float(value) / limit))
        for task, limits in self.tasks:
            for name, values, limit in (
                ("latency", task_latency_cycles, limits.latency_cycles),
                ("energy", task_energy_pj, limits.energy_pj),
            ):
                if limit is None:
                    continue
                if values is None or task not in values:
                    raise CoexploreError(
                        f"spec limits {task}.{name}, but no {name} of task {task!r} was given "
                        f"(tasks: {', '.join(values or {}) or 'none'})"
                    )
                ratios.append((f"{task}.{name}", float(values[task]) / limit))
        met = all(r <= 1.0 + TOLERANCE for _, r in ratios)
        return SpecCheck(met=met, ratios=tuple(ratios))


@dataclass(frozen=True, slots=True)
class TaskChoice:
    """One task's network: the task, the search space it comes from, and the choice vector in it."""

    task: str
    space: str
    choice: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One design of the joint search: a network per task, the system, where and when every unit runs,
    and the figures the spec is checked on."""

    archs: tuple[TaskChoice, ...]
    system: System
    assignment: tuple[int, ...]  # unit -> sub-accelerator of ``system``
    schedule: Schedule | None
    makespan_cycles: float
    task_latency_cycles: tuple[tuple[str, float], ...]
    energy_pj: float
    area_um2: float
    check: SpecCheck | None = None

    @property
    def feasible(self) -> bool:
        return self.check is not None and self.check.met


# ---- parsing and writing helpers ---------------------------------------------------------------------
def _quote(text: object) -> str:
    """A spec fragment as one line in quotes."""
    return "'" + " ".join(str(text).split()) + "'"


def _parse_value(item: str, key: str, value: str) -> float:
    """The limit of one item in base units (cycles, pJ, um2)."""
    m = _NUMBER.match(value)
    if m is None:
        raise CoexploreError(
            f"spec {_quote(item)}: {value.strip()!r} is not a number{'' if key == 'latency' else ' with a unit'}"
        )
    number, unit = float(m.group(1)), m.group(2)
    if key == "latency":
        base = unit.removesuffix("cycles").removesuffix("cycle").strip()
        scale = _LATENCY_UNITS.get(base)
        if scale is None:
            raise CoexploreError(
                f"spec {_quote(item)}: unknown latency unit {unit!r} (expected a bare number of "
                f"cycles, or cycles with k, M or G before it)"
            )
    else:
        units = _ENERGY_UNITS if key == "energy" else _AREA_UNITS
        scale = units.get(unit.replace("\u00b5", "u"))
        if scale is None:
            what = f"missing {key} unit" if not unit else f"unknown {key} unit {unit!r}"
            raise CoexploreError(f"spec {_quote(item)}: {what} (expected {', '.join(units)})")
    amount = number * scale
    if not (math.isfinite(amount) and amount > 0):
        raise CoexploreError(f"spec {_quote(item)}: {key} must be a positive finite number, got {m.group(1)}")
    return amount


def _number_in(value: float, units: Mapping[str, float]) -> str:
    """``value`` in the largest unit it is at least 1 of, written so that parsing gives it back exactly."""
    for unit, scale in sorted(units.items(), key=lambda kv: -kv[1]):
        n = value / scale
        if n < 1 and scale != min(units.values()):
            continue
        for digits in (12, 15, 17):
            text = format(n, f".{digits}g")
            if float(text) * scale == value:
                return text + unit
    return format(value, ".17g") + min(units, key=lambda u: units[u])


def _items(prefix: str, limits: Limits) -> list[str]:
    out = []
    if limits.latency_cycles is not None:
        out.append(f"{prefix}latency={_number_in(limits.latency_cycles, {'': 1.0})}")
    if limits.energy_pj is not None:
        out.append(f"{prefix}energy={_number_in(limits.energy_pj, _ENERGY_UNITS)}")
    if limits.area_um2 is not None:
        out.append(f"{prefix}area={_number_in(limits.area_um2, _AREA_UNITS)}")
    return out


__all__ = ["Candidate", "Limits", "Spec", "SpecCheck", "TaskChoice"]
