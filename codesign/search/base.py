"""The ask/tell interface every optimizer of the joint search implements, and what they share.

A *choice vector* holds one option index per position (the concatenation of every task's architecture
choices); ``cardinalities[i]`` is the number of options at position ``i``. The search loop asks for
vectors, decides feasibility itself (exact hardware search), trains only feasible candidates and tells
every result back as an :class:`Outcome`. Hardware is not part of the vector.

Resume works by replay: a new optimizer with the same seed, asked the same sizes and told the logged
outcomes, must propose the same vectors. So all randomness comes from ``numpy.random.default_rng(seed)``
(or a seeded ``torch.Generator``), and nothing depends on wall time, hash order or global state.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from coexplore.models.ir import CoexploreError

Vector = tuple[int, ...]
FeasibleFn = Callable[[Vector], bool]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the loop learned about one proposed vector."""

    feasible: bool  # the spec can be met (False: pruned, never trained)
    score: float | None = None  # weighted accuracy, fraction 0..1, when trained
    objectives: tuple[float, ...] = ()  # minimized hardware costs normalized by their spec limits
    violation: float = 0.0  # > 0: how far the best hardware misses the spec (max relative excess)

    def __post_init__(self) -> None:
        if self.score is not None and not math.isfinite(self.score):
            raise CoexploreError(f"Outcome score {self.score!r}: expected a finite number or None")
        if not math.isfinite(self.violation) or self.violation < 0:
            raise CoexploreError(f"Outcome violation {self.violation!r}: expected a finite number >= 0")
        if self.feasible and self.violation > 0:
            raise CoexploreError(f"Outcome feasible with violation {self.violation}: a feasible one violates nothing")


def fitness(outcome: Outcome, penalty: float = -1.0) -> float:
    """One number to maximize: the score when trained, else ``penalty`` minus the violation.

    Every infeasible (or untrained) outcome ranks below every trained one as long as
    ``penalty`` is below the lowest score (scores are fractions in 0..1, the default is -1).
    """
    if outcome.feasible and outcome.score is not None:
        return float(outcome.score)
    return float(penalty) - float(outcome.violation)


@dataclass(frozen=True, slots=True)
class NoOptions:
    """An optimizer without options of its own."""


def check_cardinalities(cardinalities: Sequence[int]) -> tuple[int, ...]:
    """The option counts as a tuple of positive ints, or a one-line error."""
    if isinstance(cardinalities, (str, bytes)) or not hasattr(cardinalities, "__len__"):
        raise CoexploreError(f"cardinalities {cardinalities!r}: expected a sequence of positive integers")
    if len(cardinalities) == 0:
        raise CoexploreError("cardinalities (): expected at least one position")
    out = []
    for i, c in enumerate(cardinalities):
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise CoexploreError(f"cardinalities[{i}] = {c!r}: expected a positive integer (options at that position)")
        out.append(int(c))
    return tuple(out)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CoexploreError(f"seed {seed!r}: expected a non-negative integer")
    return int(seed)


def parse_options(config_type: type, owner: str, options: dict[str, Any]) -> Any:
    """Build an optimizer's frozen options dataclass from keyword options; unknown keys are an error."""
    names = [f.name for f in fields(config_type)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        known = ", ".join(["feasible", *names])
        raise CoexploreError(f"optimizer {owner!r}: unknown option {unknown[0]!r} (known: {known})")
    for f in fields(config_type):
        if f.name not in options:
            continue
        default = f.default if f.default is not MISSING else None
        value = options[f.name]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise CoexploreError(f"optimizer {owner!r}: option {f.name}={value!r}: expected true or false")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise CoexploreError(f"optimizer {owner!r}: option {f.name}={value!r}: expected a number")
            if isinstance(default, int) and float(value) != int(value):
                raise CoexploreError(f"optimizer {owner!r}: option {f.name}={value!r}: expected an integer")
            options[f.name] = type(default)(value)
    return config_type(**options)


def positive(owner: str, **values: float) -> None:
    """One-line error unless every named option is > 0."""
    for key, value in values.items():
        if not value > 0:
            raise CoexploreError(f"optimizer {owner!r}: option {key}={value!r}: expected a positive number")


class Optimizer(ABC):
    """Proposes choice vectors (``ask``) and learns from their outcomes (``tell``).

    Options are keyword arguments gathered into the subclass's frozen ``Options`` dataclass; every
    optimizer also accepts ``feasible``: an optional cheap, exact oracle ``vector -> bool`` it may use to
    skip infeasible vectors before proposing them (it must work without one). ``history`` keeps every
    told (vector, outcome) in order; ``results`` the latest outcome of each vector.
    """

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions

    def __init__(self, cardinalities: Sequence[int], seed: int, **options: Any) -> None:
        self.cardinalities = check_cardinalities(cardinalities)
        self.seed = check_seed(seed)
        feasible = options.pop("feasible", None)
        if feasible is not None and not callable(feasible):
            raise CoexploreError(f"optimizer {self.name!r}: option feasible={feasible!r}: expected a callable or None")
        self.feasible_fn: FeasibleFn | None = feasible
        self.options = parse_options(self.Options, self.name, dict(options))
        self.rng = np.random.default_rng(self.seed)
        self.history: list[tuple[Vector, Outcome]] = []
        self.results: dict[Vector, Outcome] = {}
        self._proposed: set[Vector] = set()
        self._oracle_cache: dict[Vector, bool] = {}

    @property
    def n_positions(self) -> int:
        return len(self.cardinalities)

    @property
    def space_size(self) -> int:
        return math.prod(self.cardinalities)

    @abstractmethod
    def ask(self, n: int) -> list[tuple[int, ...]]:
        """``n`` vectors to evaluate next (repeats are allowed; the loop answers them from memory)."""

    @abstractmethod
    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        """The outcomes of ``vectors`` (usually the last ask's, in order; any told vector is accepted)."""

    # ---- helpers for subclasses -----------------------------------------------------------------
    def _check_n(self, n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise CoexploreError(f"optimizer {self.name!r}: ask({n!r}): expected a non-negative integer")
        return int(n)

    def _vector(self, v: Sequence[int]) -> Vector:
        """``v`` as a tuple of ints, or a one-line error when its length or an index is out of range."""
        try:
            out = tuple(int(x) for x in v)
        except (TypeError, ValueError):
            raise CoexploreError(f"vector {v!r}: expected a sequence of option indices") from None
        if len(out) != self.n_positions:
            raise CoexploreError(f"vector {list(out)}: {len(out)} positions, expected {self.n_positions}")
        for i, (x, c) in enumerate(zip(out, self.cardinalities)):
            if not 0 <= x < c:
                raise CoexploreError(f"vector {list(out)}: position {i} is {x}, expected 0..{c - 1}")
        return out

    def _record(self, vectors: Sequence[Sequence[int]], outcomes: Sequence[Outcome]) -> list[Vector]:
        """Validate a tell and store it in ``history``/``results``; returns the vectors as tuples."""
        if len(vectors) != len(outcomes):
            raise CoexploreError(f"tell: {len(vectors)} vectors but {len(outcomes)} outcomes")
        vs = [self._vector(v) for v in vectors]
        for o in outcomes:
            if not isinstance(o, Outcome):
                raise CoexploreError(f"tell: {o!r} is not an Outcome")
        for v, o in zip(vs, outcomes):
            self.history.append((v, o))
            self.results[v] = o
        return vs

    def is_feasible(self, v: Vector) -> bool:
        """False when told infeasible or the oracle says so; True otherwise (also without an oracle)."""
        told = self.results.get(v)
        if told is not None:
            return told.feasible
        if self.feasible_fn is None:
            return True
        if v not in self._oracle_cache:
            self._oracle_cache[v] = bool(self.feasible_fn(v))
        return self._oracle_cache[v]

    def is_new(self, v: Vector) -> bool:
        """Neither told nor proposed before."""
        return v not in self.results and v not in self._proposed

    def random_vectors(self, k: int) -> np.ndarray:
        """``k`` uniform random vectors, one per row."""
        highs = np.asarray(self.cardinalities)
        return self.rng.integers(0, highs, size=(k, self.n_positions))

    def mutate(self, v: Vector) -> Vector:
        """``v`` with one position (that has a choice) changed to a different option (Real et al. 2019)."""
        free = [i for i, c in enumerate(self.cardinalities) if c > 1]
        if not free:
            return v
        i = free[int(self.rng.integers(len(free)))]
        shift = 1 + int(self.rng.integers(self.cardinalities[i] - 1))
        out = list(v)
        out[i] = (v[i] + shift) % self.cardinalities[i]
        return tuple(out)

    def fresh_random(self, tries: int = 64) -> Vector:
        """A random vector that is new and, as far as known, feasible; after ``tries`` draws, the last one."""
        v: Vector = ()
        for _ in range(tries):
            v = tuple(int(x) for x in self.random_vectors(1)[0])
            if self.is_new(v) and self.is_feasible(v):
                break
        return v

    def _propose(self, vs: Sequence[Vector]) -> list[Vector]:
        """Mark vectors as proposed (so later asks avoid them) and return them as a list."""
        out = [tuple(int(x) for x in v) for v in vs]
        self._proposed.update(out)
        return out
