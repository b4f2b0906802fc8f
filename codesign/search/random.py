"""Random search: uniform vectors, without repeats while new ones are easy to find.

The baseline every other optimizer is measured against (NAS-Bench-201 and NASAIC's Monte-Carlo search).
With a ``feasible`` oracle it skips vectors the oracle rejects, which saves proposals but no trainings:
the loop prunes infeasible vectors before training anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from coexplore.codesign.search.base import Optimizer, Outcome


class RandomSearch(Optimizer):
    """Uniform sampling over the choice vectors."""

    name = "random"

    def ask(self, n: int) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for _ in range(self._check_n(n)):
            v = self.fresh_random()
            out.append(v)
            self._proposed.add(v)
        return out

    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        self._record(vectors, outcomes)
