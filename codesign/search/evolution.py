"""Regularized (aging) evolution, after Real et al. 2019 ("Regularized Evolution for Image Classifier
Architecture Search", AAAI).

A population of the last ``population`` evaluated vectors; each child is a one-position mutation of the
best of ``sample`` members drawn at random (tournament), and when a child joins, the *oldest* member
leaves, whatever its fitness (aging). Until the population is full, proposals are random. Infeasible
outcomes get the worst fitness (``penalty`` minus the violation). Batched asks run independent
tournaments on the same population; children join in the order they are told.

Two small departures, both only about wasted proposals: a child is re-mutated (a few tries) when it was
already proposed or the ``feasible`` oracle rejects it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from coexplore.codesign.search.base import Optimizer, Outcome, Vector, fitness, positive


@dataclass(frozen=True, slots=True)
class EvolutionOptions:
    population: int = 20  # members kept (the oldest leaves)
    sample: int = 5  # tournament size
    penalty: float = -1.0  # fitness of an infeasible outcome (minus its violation)
    tries: int = 20  # re-mutations to find a new, feasible child

    def __post_init__(self) -> None:
        positive("evolution", population=self.population, sample=self.sample, tries=self.tries)


class RegularizedEvolution(Optimizer):
    """Aging evolution with tournament selection and one-position mutation."""

    name = "evolution"
    Options = EvolutionOptions

    def __init__(self, cardinalities: Sequence[int], seed: int, **options: object) -> None:
        super().__init__(cardinalities, seed, **options)
        self.population: deque[tuple[Vector, float]] = deque()
        self._asked = 0

    def ask(self, n: int) -> list[tuple[int, ...]]:
        out: list[Vector] = []
        for _ in range(self._check_n(n)):
            if self._asked < self.options.population or not self.population:
                v = self.fresh_random()
            else:
                v = self._child()
            self._asked += 1
            out.append(v)
            self._proposed.add(v)
        return out

    def _child(self) -> Vector:
        members = list(self.population)
        k = min(self.options.sample, len(members))
        picks = self.rng.choice(len(members), size=k, replace=False)
        parent = max((members[int(i)] for i in picks), key=lambda m: m[1])[0]
        child = parent
        for _ in range(self.options.tries):
            child = self.mutate(parent)
            if self.is_new(child) and self.is_feasible(child):
                break
        return child

    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        for v, o in zip(self._record(vectors, outcomes), outcomes):
            self.population.append((v, fitness(o, self.options.penalty)))
            while len(self.population) > self.options.population:
                self.population.popleft()
