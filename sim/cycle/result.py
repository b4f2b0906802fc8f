"""Result values of the cycle-level simulator: one layer, and a network's totals.

Cycles: ``busy_cycles`` (stall-free), ``stall_cycles`` (added by the memory), ``total_cycles`` (their
sum) and ``compute_cycles`` (``busy_cycles``, except in profile ``scalesim`` where it is SCALE-Sim's
"Total Cycles", stalls included). Traffic per operand (``input``, ``weight``, ``output``): DRAM bytes
read and written, scratchpad words read by the array and written into the scratchpads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

OPERAND_KEYS = ("input", "weight", "output")


def _frozen(d: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(d.get(k, 0.0)) for k in OPERAND_KEYS})


@dataclass(frozen=True, slots=True)
class LayerSim:
    """One layer on one accelerator, as the cycle-level simulator ran it."""

    name: str
    kind: str
    macs: int
    model: str  # memory model that ran it: "scalesim", "fold" or "vector"
    pes: int
    busy_cycles: int
    stall_cycles: int
    compute_cycles: int
    folds: int
    passes: int
    dram_read_bytes: Mapping[str, float]
    dram_write_bytes: Mapping[str, float]
    buffer_reads: Mapping[str, float]
    buffer_writes: Mapping[str, float]
    compulsory_bytes: Mapping[str, float]  # what each operand must move at least once
    prefetch_cycles: int = 0  # SCALE-Sim only: filling the active halves before cycle 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("dram_read_bytes", "dram_write_bytes", "buffer_reads", "buffer_writes", "compulsory_bytes"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def total_cycles(self) -> int:
        return self.busy_cycles + self.stall_cycles

    @property
    def dram_reads(self) -> float:
        return float(sum(self.dram_read_bytes.values()))

    @property
    def dram_writes(self) -> float:
        return float(sum(self.dram_write_bytes.values()))

    @property
    def utilization(self) -> float:
        cycles = self.total_cycles
        return self.macs / (self.pes * cycles) if cycles > 0 and self.pes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "macs": self.macs,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "total_cycles": self.total_cycles,
            "busy_cycles": self.busy_cycles,
            "dram_reads": self.dram_reads,
            "dram_writes": self.dram_writes,
            "dram_read_bytes": dict(self.dram_read_bytes),
            "dram_write_bytes": dict(self.dram_write_bytes),
            "buffer_reads": dict(self.buffer_reads),
            "buffer_writes": dict(self.buffer_writes),
            "folds": self.folds,
            "passes": self.passes,
            "utilization": self.utilization,
        }


@dataclass(frozen=True, slots=True)
class NetworkSim:
    """A network run layer after layer on one accelerator; totals are sums over layers."""

    network: str
    accelerator: str
    profile: str
    pes: int
    layers: tuple[LayerSim, ...]

    def _sum(self, attr: str) -> int:
        return int(sum(getattr(layer, attr) for layer in self.layers))

    @property
    def compute_cycles(self) -> int:
        return self._sum("compute_cycles")

    @property
    def stall_cycles(self) -> int:
        return self._sum("stall_cycles")

    @property
    def busy_cycles(self) -> int:
        return self._sum("busy_cycles")

    @property
    def total_cycles(self) -> int:
        return self._sum("total_cycles")

    @property
    def latency_cycles(self) -> int:
        return self.total_cycles

    @property
    def macs(self) -> int:
        return self._sum("macs")

    @property
    def dram_reads(self) -> float:
        return float(sum(layer.dram_reads for layer in self.layers))

    @property
    def dram_writes(self) -> float:
        return float(sum(layer.dram_writes for layer in self.layers))

    @property
    def utilization(self) -> float:
        cycles = self.total_cycles
        return self.macs / (self.pes * cycles) if cycles > 0 and self.pes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "accelerator": self.accelerator,
            "profile": self.profile,
            "layers": [layer.to_dict() for layer in self.layers],
            "total": {
                "compute_cycles": self.compute_cycles,
                "stall_cycles": self.stall_cycles,
                "total_cycles": self.total_cycles,
                "dram_reads": self.dram_reads,
                "dram_writes": self.dram_writes,
                "utilization": self.utilization,
                "busy_cycles": self.busy_cycles,
                "macs": self.macs,
            },
        }
