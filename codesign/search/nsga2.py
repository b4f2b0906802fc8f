"""NSGA-II (Deb et al. 2002, "A fast and elitist multiobjective genetic algorithm: NSGA-II") over the
accuracy / hardware-cost front, run by pymoo through its ask/tell interface.

Objectives, all minimized: ``(-score, *objectives)`` (the hardware costs normalized by their spec
limits); an infeasible outcome is a violated inequality constraint of size ``violation`` (pymoo's
constraint domination ranks it below every feasible one). Integer choices use pymoo's SBX crossover and
polynomial mutation with rounding repair.

pymoo asks a generation at a time; this wrapper buffers it so ``ask(n)`` works for any ``n``:
- the first ``pop_size`` proposals are uniform random (new, and feasible per the ``feasible`` oracle when
  one is given) and become pymoo's initial population once told (``NSGA2(sampling=<evaluated pop>)``);
  the number of objectives is taken from the told outcomes unless ``n_objectives`` is given (random
  proposals go on until an outcome shows it);
- afterwards, when the buffer runs dry, everything told since pymoo's last step is told to pymoo
  (survival merges it into the population, whatever its size) and the next offspring are asked. When
  nothing was told yet, pymoo is asked again: more offspring of the same parents;
- an offspring already told is answered to pymoo from memory, and one the oracle rejects is told to
  pymoo as infeasible (violation 1): neither is proposed again.

``pareto_front()`` gives the non-dominated trained vectors of everything told so far.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coexplore.codesign.search.base import Optimizer, Outcome, Vector, positive
from coexplore.models.ir import CoexploreError

MAX_STALLS = 5  # pymoo generations in a row without a new vector before falling back to random ones
ORACLE_VIOLATION = 1.0  # pymoo's constraint value for a vector the oracle rejected (its size is unknown)


@dataclass(frozen=True, slots=True)
class NSGA2Options:
    pop_size: int = 20  # pymoo's population (and offspring per generation)
    n_objectives: int | None = None  # hardware objectives per outcome (None: from the told outcomes)
    crossover_eta: float = 3.0  # SBX distribution index (small: wide steps, suited to few options)
    mutation_eta: float = 3.0  # polynomial-mutation distribution index

    def __post_init__(self) -> None:
        positive("nsga2", pop_size=self.pop_size, crossover_eta=self.crossover_eta, mutation_eta=self.mutation_eta)
        if self.pop_size < 2:
            raise CoexploreError(f"optimizer 'nsga2': option pop_size={self.pop_size}: expected >= 2")
        if self.n_objectives is not None and (not isinstance(self.n_objectives, int) or self.n_objectives < 0):
            raise CoexploreError(
                f"optimizer 'nsga2': option n_objectives={self.n_objectives!r}: expected an integer >= 0"
            )


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``points`` (all objectives minimized) that no other row dominates."""
    keep = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        keep[i] = not np.any(np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1))
    return keep


class NSGA2(Optimizer):
    """pymoo's NSGA-II behind ask/tell, on (-score, normalized hardware costs) with spec violations as constraints."""

    name = "nsga2"
    Options = NSGA2Options

    def __init__(self, cardinalities: Sequence[int], seed: int, **options: object) -> None:
        super().__init__(cardinalities, seed, **options)
        self._free = [i for i, c in enumerate(self.cardinalities) if c > 1]  # pymoo sees only these
        self._algorithm: Any = None  # pymoo's NSGA2, built once the first population is known
        self._n_obj: int | None = self.options.n_objectives
        self._buffer: deque[Vector] = deque()
        self._unsent: dict[Vector, Outcome] = {}  # told (or oracle-rejected), not yet told to pymoo
        self._known: dict[Vector, Outcome] = {}  # everything pymoo may be told about
        self._initial = 0  # random proposals made for the initial population

    # ---- ask --------------------------------------------------------------------------------------
    def ask(self, n: int) -> list[tuple[int, ...]]:
        n = self._check_n(n)
        if not self._free:  # a space of one vector
            return self._propose([(0,) * self.n_positions] * n)
        out: list[Vector] = []
        stalls = 0  # refills in a row that gave nothing new
        while len(out) < n:
            if self._algorithm is None and (self._initial < self.options.pop_size or not self._ready()):
                v = self.fresh_random()  # the initial population
                self._initial += 1
            elif not self._buffer:
                if stalls < MAX_STALLS:
                    self._refill()
                    stalls += 1
                    continue
                v = self.fresh_random()  # pymoo keeps offering known vectors
            else:
                v = self._buffer.popleft()
                if v in self._proposed or v in self._known:  # pending, told or rejected: not again
                    if v in self._known:  # pymoo still learns its outcome
                        self._unsent.setdefault(v, self._known[v])
                    continue
                stalls = 0
            out.append(v)
            self._proposed.add(v)
        return out

    def _ready(self) -> bool:
        """Whether pymoo can start: the number of objectives is known (given, or seen in an outcome)."""
        if not self._known:
            return False
        return self._n_obj is not None or any(o.feasible or o.objectives for o in self._known.values())

    def _refill(self) -> None:
        """Tell pymoo what it has not heard yet and buffer its next offspring."""
        if self._algorithm is None:
            self._setup()
        elif self._unsent:
            self._send()
        offspring = self._algorithm.ask()
        if offspring is None:
            return
        for x in np.asarray(offspring.get("X")):
            v = self._to_vector(x)
            if v not in self._known and v not in self._proposed and not self.is_feasible(v):
                self._known[v] = Outcome(feasible=False, violation=ORACLE_VIOLATION)
                self._unsent[v] = self._known[v]
                continue
            self._buffer.append(v)

    def _to_vector(self, x: np.ndarray) -> Vector:
        out = [0] * self.n_positions
        for i, value in zip(self._free, x):
            out[i] = int(min(max(round(float(value)), 0), self.cardinalities[i] - 1))
        return tuple(out)

    # ---- pymoo ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
        from pymoo.core.problem import Problem
        from pymoo.core.termination import NoTermination
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair

        if self._n_obj is None:
            trained = [len(o.objectives) for o in self._known.values() if o.feasible]
            self._n_obj = max(trained or [len(o.objectives) for o in self._known.values()])
        highs = np.array([self.cardinalities[i] - 1 for i in self._free], dtype=float)
        self._problem = Problem(
            n_var=max(len(self._free), 1),
            n_obj=1 + self._n_obj,
            n_ieq_constr=1,
            xl=np.zeros_like(highs),
            xu=highs,
            vtype=int,
        )
        initial = self._population(self._take_unsent())
        o = self.options
        self._algorithm = PymooNSGA2(
            pop_size=o.pop_size,
            sampling=initial,
            crossover=SBX(eta=o.crossover_eta, prob=0.9, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=o.mutation_eta, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        self._algorithm.setup(self._problem, termination=NoTermination(), seed=int(self.rng.integers(2**31 - 1)))
        self._algorithm.tell(infills=self._algorithm.ask())

    def _take_unsent(self) -> dict[Vector, Outcome]:
        sent, self._unsent = self._unsent, {}
        return sent

    def _send(self) -> None:
        self._algorithm.tell(infills=self._population(self._take_unsent()))

    def _population(self, outcomes: dict[Vector, Outcome]):
        from pymoo.core.evaluator import Evaluator
        from pymoo.core.population import Population
        from pymoo.problems.static import StaticProblem

        vs = list(outcomes)
        x = np.array([[v[i] for i in self._free] for v in vs], dtype=float).reshape(len(vs), -1)
        f = np.array([self._objectives(outcomes[v]) for v in vs], dtype=float).reshape(len(vs), -1)
        g = np.array([[self._constraint(outcomes[v])] for v in vs], dtype=float).reshape(len(vs), 1)
        pop = Population.new(X=x)
        Evaluator().eval(StaticProblem(self._problem, F=f, G=g), pop)
        return pop

    def _objectives(self, o: Outcome) -> list[float]:
        k = self._n_obj or 0
        costs = list(o.objectives)
        if not o.feasible and len(costs) != k:  # unknown costs of a pruned vector: the constraint ranks it
            costs = [1.0 + o.violation] * k
        if len(costs) != k:
            raise CoexploreError(
                f"nsga2: an outcome has {len(costs)} objectives, expected {k} "
                "(pass n_objectives, or tell every trained outcome with the same costs)"
            )
        score = o.score if (o.feasible and o.score is not None) else 0.0
        return [-float(score), *map(float, costs)]

    @staticmethod
    def _constraint(o: Outcome) -> float:
        if o.feasible:
            return 0.0
        return o.violation if o.violation > 0 else ORACLE_VIOLATION

    # ---- tell and results ------------------------------------------------------------------------
    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        for v, o in zip(self._record(vectors, outcomes), outcomes):
            self._known[v] = o
            self._unsent[v] = o

    def pareto_front(self) -> list[tuple[Vector, Outcome]]:
        """The trained vectors no other trained vector beats on score and every hardware objective."""
        trained = [(v, o) for v, o in self.results.items() if o.feasible and o.score is not None]
        if not trained:
            return []
        k = max(len(o.objectives) for _, o in trained)
        pts = np.array(
            [[-float(o.score or 0.0), *(list(o.objectives) + [0.0] * (k - len(o.objectives)))] for _, o in trained]
        )
        return [t for t, keep in zip(trained, non_dominated(pts)) if keep]
