"""Optimizers of the joint search, behind one ask/tell interface (``base.Optimizer``).

``make_optimizer(name, cardinalities, seed, **options)`` builds one by name; the modules are imported
only when used, so torch (rl), pymoo (nsga2) and scikit-learn (predictor) load only for the optimizer
that needs them.

- ``random``: uniform sampling (the baseline).
- ``evolution``: regularized evolution (Real et al. 2019).
- ``rl``: NASAIC's RNN controller trained with REINFORCE (Williams 1992).
- ``nsga2``: NSGA-II on (accuracy, hardware costs) through pymoo (Deb et al. 2002).
- ``predictor``: predictor-assisted search as in DyNAS-T (a ridge predictor ranks generated proposals).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from coexplore.codesign.search.base import FeasibleFn, Optimizer, Outcome, Vector, fitness
from coexplore.models.ir import CoexploreError

# name -> (module, class)
_REGISTRY = {
    "random": ("random", "RandomSearch"),
    "evolution": ("evolution", "RegularizedEvolution"),
    "rl": ("rl", "Reinforce"),
    "nsga2": ("nsga2", "NSGA2"),
    "predictor": ("predictor", "PredictorSearch"),
}
OPTIMIZERS: tuple[str, ...] = tuple(_REGISTRY)


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer class registered under ``name``."""
    if name not in _REGISTRY:
        raise CoexploreError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make_optimizer(name: str, cardinalities: Sequence[int], seed: int, **options: Any) -> Optimizer:
    """A new optimizer ``name`` over vectors with ``cardinalities`` options per position."""
    return optimizer_class(name)(cardinalities, seed, **options)


def __getattr__(attr: str) -> Any:  # the classes themselves, imported on first use
    for name, (_, cls) in _REGISTRY.items():
        if attr == cls:
            return optimizer_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "OPTIMIZERS",
    "FeasibleFn",
    "Optimizer",
    "Outcome",
    "Vector",
    "fitness",
    "make_optimizer",
    "optimizer_class",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "NSGA2",
    "PredictorSearch",
]
