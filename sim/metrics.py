"""Result values of the models: one layer on one accelerator, a network's totals, and batches as arrays.

Units are in the names: cycles, pJ, um2, bytes, words. Energies and areas carry a per-component
breakdown (keys below) whose values add up to the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

ENERGY_KEYS = ("mac", "rf", "buffer", "noc", "dram")
AREA_KEYS = ("pe", "buffer", "noc", "control")


def _frozen(d: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in d.items()})


@dataclass(frozen=True, slots=True)
class LayerMetrics:
    """One layer on one accelerator."""

    name: str
    kind: str
    macs: int
    latency_cycles: float  # total, including memory stalls
    compute_cycles: float  # stall-free cycles (fold timing)
    stall_cycles: float  # latency - compute
    utilization: float  # macs / (PEs * latency_cycles)
    energy_pj: float
    energy_breakdown_pj: Mapping[str, float]  # mac, rf, buffer, noc, dram
    dram_read_bytes: float
    dram_write_bytes: float
    buffer_read_words: float
    buffer_write_words: float
    mapping: str = ""  # the mapping the mapper chose (``LayerMapping.describe``); "" for vector layers

    def __post_init__(self) -> None:
        object.__setattr__(self, "energy_breakdown_pj", _frozen(self.energy_breakdown_pj))

    @property
    def dram_bytes(self) -> float:
        return self.dram_read_bytes + self.dram_write_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "macs": self.macs,
            "latency_cycles": self.latency_cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "utilization": self.utilization,
            "energy_pj": self.energy_pj,
            "energy_breakdown_pj": dict(self.energy_breakdown_pj),
            "dram_read_bytes": self.dram_read_bytes,
            "dram_write_bytes": self.dram_write_bytes,
            "buffer_read_words": self.buffer_read_words,
            "buffer_write_words": self.buffer_write_words,
            "mapping": self.mapping,
        }


@dataclass(frozen=True, slots=True)
class NetworkMetrics:
    """A network run layer after layer on one accelerator; totals are sums over layers."""

    network: str
    accelerator: str
    profile: str
    layers: tuple[LayerMetrics, ...]
    area_um2: float
    area_breakdown_um2: Mapping[str, float]  # pe, buffer, noc, control
    pes: int = 0  # PEs of the accelerator, for the network's utilization

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "area_breakdown_um2", _frozen(self.area_breakdown_um2))

    @property
    def latency_cycles(self) -> float:
        return float(sum(m.latency_cycles for m in self.layers))

    @property
    def compute_cycles(self) -> float:
        return float(sum(m.compute_cycles for m in self.layers))

    @property
    def stall_cycles(self) -> float:
        return float(sum(m.stall_cycles for m in self.layers))

    @property
    def energy_pj(self) -> float:
        return float(sum(m.energy_pj for m in self.layers))

    @property
    def macs(self) -> int:
        return int(sum(m.macs for m in self.layers))

    @property
    def utilization(self) -> float:
        cycles = self.latency_cycles
        return self.macs / (self.pes * cycles) if self.pes and cycles > 0 else 0.0

    @property
    def dram_bytes(self) -> float:
        return float(sum(m.dram_bytes for m in self.layers))

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in self.layers:
            for k, v in m.energy_breakdown_pj.items():
                out[k] = out.get(k, 0.0) + v
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "accelerator": self.accelerator,
            "profile": self.profile,
            "layers": [m.to_dict() for m in self.layers],
            "total": {
                "latency_cycles": self.latency_cycles,
                "energy_pj": self.energy_pj,
                "area_um2": self.area_um2,
                "macs": self.macs,
                "utilization": self.utilization,
                "compute_cycles": self.compute_cycles,
                "stall_cycles": self.stall_cycles,
                "dram_read_bytes": float(sum(m.dram_read_bytes for m in self.layers)),
                "dram_write_bytes": float(sum(m.dram_write_bytes for m in self.layers)),
                "energy_breakdown_pj": self.energy_breakdown_pj,
                "area_breakdown_um2": dict(self.area_breakdown_um2),
            },
        }


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Many designs x many layers: arrays of shape (designs, layers); ``area_um2`` has shape (designs,).

    ``detail`` holds the per-component arrays (``energy_<key>_pj``, ``dram_read_bytes``,
    ``dram_write_bytes``, ``buffer_read_words``, ``buffer_write_words``) when they were asked for.
    """

    latency_cycles: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    energy_pj: np.ndarray
    utilization: np.ndarray
    dram_bytes: np.ndarray
    area_um2: np.ndarray
    macs: np.ndarray  # shape (layers,)
    detail: Mapping[str, np.ndarray] = field(default_factory=dict)
    # which of ``dataflows.mapping.candidate_mappings(template, layer kind, profile)`` the mapper chose
    mapping_index: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.latency_cycles.shape
