"""coexplore: hardware/DNN co-design.

Public API (import from here): the layer IR, dataflow templates and accelerators, and the models.
"""

from coexplore.dataflows.io import get_profile, get_template, load_accelerator, templates
from coexplore.dataflows.spec import Accelerator, Dataflow, TimingProfile
from coexplore.models.ir import CoexploreError, Layer, Network, OpKind, conv, gemm, matmul

__all__ = [
    "Accelerator",
    "CoexploreError",
    "Dataflow",
    "Layer",
    "Network",
    "OpKind",
    "TimingProfile",
    "conv",
    "gemm",
    "get_profile",
    "get_template",
    "load_accelerator",
    "matmul",
    "templates",
]
