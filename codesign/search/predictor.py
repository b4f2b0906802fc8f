"""Predictor-assisted search, as DyNAS-T does it (Intel Labs, "Dynamic Neural Architecture Search
Toolkit"; Cummings et al. 2022): a cheap accuracy predictor, fitted on the candidates trained so far,
ranks many generated proposals, and only the most promising are trained.

Here:
- warm-up: ``warmup`` random (new, feasible as far as known) vectors;
- predictor: ridge regression on the one-hot encoding of the vector (scikit-learn ``Ridge``), fitted on
  the trained scores with every score below the ``clip_quantile`` quantile raised to it, so the linear
  model spends itself on telling good candidates apart rather than on the collapsed ones;
- proposals: ``pool`` uniform random vectors plus the neighbourhood (one and two positions changed) of
  the ``parents`` best trained vectors - one generation of an evolutionary search, scored on the
  predictor instead of by training;
- selection: the best predicted, skipping vectors already proposed, those the ``feasible`` oracle
  rejects (asked lazily, in ranking order, so it is called a few times per pick) and, without an oracle,
  those a logistic classifier of the told feasible/infeasible outcomes calls infeasible; the picks of
  one batch differ in at least ``min_distance`` positions (diversity: a batch of near-copies of one
  guess teaches the predictor little).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from coexplore.codesign.search.base import Optimizer, Outcome, Vector, positive
from coexplore.models.ir import CoexploreError


@dataclass(frozen=True, slots=True)
class PredictorOptions:
    warmup: int = 5  # random trained candidates before the predictor is used
    pool: int = 2000  # uniform random proposals ranked per ask
    parents: int = 10  # best trained vectors whose neighbourhoods join the proposals
    neighbours: int = 512  # neighbourhood size per parent (all of radius 2 when it is smaller)
    alpha: float = 1.0  # ridge regularization
    clip_quantile: float = 0.5  # scores below this quantile of the trained ones count as that quantile
    min_distance: int | None = None  # positions by which picks of one batch differ (None: min(3, ceil(n/2)))

    def __post_init__(self) -> None:
        positive("predictor", warmup=self.warmup, parents=self.parents, neighbours=self.neighbours, alpha=self.alpha)
        if self.pool < 0:
            raise CoexploreError(f"optimizer 'predictor': option pool={self.pool}: expected >= 0")
        if not 0.0 <= self.clip_quantile <= 1.0:
            raise CoexploreError(f"optimizer 'predictor': option clip_quantile={self.clip_quantile}: expected 0..1")
        if self.min_distance is not None and (not isinstance(self.min_distance, int) or self.min_distance < 1):
            raise CoexploreError(
                f"optimizer 'predictor': option min_distance={self.min_distance!r}: expected a positive integer or None"
            )


_THREADPOOLS: Any = None


@contextmanager
def _one_thread() -> Iterator[None]:
    """BLAS/OpenMP on one thread for these tiny fits: with another process busy, two threads ran the
    fake-problem tests 5x slower here. threadpoolctl comes with scikit-learn."""
    global _THREADPOOLS
    import sklearn.linear_model  # noqa: F401  (load its libraries before the controller lists them)
    from threadpoolctl import ThreadpoolController

    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    with _THREADPOOLS.limit(limits=1):
        yield


class PredictorSearch(Optimizer):
    """Ridge-predictor-ranked proposals from random sampling and mutation of the best (DyNAS-T style)."""

    name = "predictor"
    Options = PredictorOptions

    def __init__(self, cardinalities: Sequence[int], seed: int, **options: object) -> None:
        super().__init__(cardinalities, seed, **options)
        self._offsets = np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]]).astype(int)
        d = self.options.min_distance
        self._min_distance = d if d is not None else min(3, math.ceil(self.n_positions / 2))

    # ---- features and models ----------------------------------------------------------------
    def encode(self, vectors: Sequence[Vector] | np.ndarray) -> np.ndarray:
        """One-hot rows: one column per (position, option)."""
        x = np.asarray(vectors, dtype=int).reshape(-1, self.n_positions)
        out = np.zeros((len(x), sum(self.cardinalities)))
        out[np.arange(len(x))[:, None], self._offsets + x] = 1.0
        return out

    def _trained(self) -> tuple[list[Vector], np.ndarray]:
        pairs = [(v, o.score) for v, o in self.results.items() if o.feasible and o.score is not None]
        return [v for v, _ in pairs], np.array([s for _, s in pairs], dtype=float)

    def predict(self, vectors: Sequence[Vector]) -> np.ndarray:
        """Predicted (standardized, clipped) score of each vector; zeros before anything was trained."""
        with _one_thread():
            model = self._fit()
            return np.zeros(len(vectors)) if model is None else model.predict(self.encode(vectors))

    def _fit(self):
        from sklearn.linear_model import Ridge

        vs, y = self._trained()
        if len(vs) == 0:
            return None
        y = np.maximum(y, np.quantile(y, self.options.clip_quantile))
        y = (y - y.mean()) / (y.std() + 1e-12)
        return Ridge(alpha=self.options.alpha).fit(self.encode(vs), y)

    def _feasibility_model(self):
        """P(feasible) from told outcomes when no oracle is given and both classes were seen."""
        if self.feasible_fn is not None:
            return None
        labels = [o.feasible for o in self.results.values()]
        if sum(labels) < 2 or len(labels) - sum(labels) < 2:
            return None
        from sklearn.linear_model import LogisticRegression

        x = self.encode(list(self.results))
        return LogisticRegression(C=1.0, max_iter=1000).fit(x, np.array(labels, dtype=int))

    # ---- proposals --------------------------------------------------------------------------
    def _neighbourhood(self, parent: Vector) -> list[Vector]:
        """Vectors one or two positions away from ``parent``: all of them if few, else a sample."""
        cap = self.options.neighbours
        free = [i for i, c in enumerate(self.cardinalities) if c > 1]
        n1 = sum(self.cardinalities[i] - 1 for i in free)
        n2 = sum((self.cardinalities[i] - 1) * (self.cardinalities[j] - 1) for i, j in itertools.combinations(free, 2))
        if n1 + n2 <= cap:
            out = []
            for i in free:
                for a in range(self.cardinalities[i]):
                    if a == parent[i]:
                        continue
                    one = list(parent)
                    one[i] = a
                    out.append(tuple(one))
                    for j in free:
                        if j <= i:
                            continue
                        for b in range(self.cardinalities[j]):
                            if b != parent[j]:
                                two = list(one)
                                two[j] = b
                                out.append(tuple(two))
            return out
        out = []
        for _ in range(cap):
            child = self.mutate(parent)
            if self.rng.random() < 0.5:
                child = self.mutate(child)
            out.append(child)
        return out

    def _candidates(self, trained: list[Vector], scores: np.ndarray) -> list[Vector]:
        order = np.argsort(-scores, kind="stable")[: self.options.parents]
        cands: dict[Vector, None] = {}
        for i in order:
            cands.update(dict.fromkeys(self._neighbourhood(trained[int(i)])))
        if self.options.pool:
            cands.update(dict.fromkeys(tuple(int(x) for x in row) for row in self.random_vectors(self.options.pool)))
        return [v for v in cands if self.is_new(v)]

    def ask(self, n: int) -> list[tuple[int, ...]]:
        n = self._check_n(n)
        trained, scores = self._trained()
        if len(trained) < self.options.warmup or n == 0:
            return self._propose([self.fresh_random() for _ in range(n)])
        cands = self._candidates(trained, scores)
        picks: list[Vector] = []
        if cands:
            with _one_thread():
                pred = self._fit().predict(self.encode(cands))
                clf = self._feasibility_model()
                if clf is not None:
                    ok = clf.predict_proba(self.encode(cands))[:, 1] >= 0.5
                    if ok.sum() >= n:
                        pred = np.where(ok, pred, -np.inf)
            order = [int(i) for i in np.argsort(-pred, kind="stable")]
            picks = self._select(cands, order, n)
        while len(picks) < n:
            v = self.fresh_random()
            if v in picks:  # space (nearly) exhausted: a repeat is all there is
                v = tuple(int(x) for x in self.random_vectors(1)[0])
            picks.append(v)
        return self._propose(picks)

    def _select(self, cands: list[Vector], order: list[int], n: int) -> list[Vector]:
        """Best predicted first, feasible per the oracle, ``min_distance`` apart; relaxed if too few."""
        picks: list[Vector] = []
        rejected: set[int] = set()
        for dist in (self._min_distance, 1):
            for i in order:
                if len(picks) == n:
                    return picks
                if i in rejected or cands[i] in picks:
                    continue
                if not self.is_feasible(cands[i]):
                    rejected.add(i)
                    continue
                if all(sum(a != b for a, b in zip(cands[i], p)) >= dist for p in picks):
                    picks.append(cands[i])
        return picks

    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        self._record(vectors, outcomes)
