"""NASAIC's controller: a recurrent policy trained with REINFORCE.

The policy (after Zoph & Le 2017, as NASAIC uses it) is an LSTM (or GRU) cell run once per position:
its input is the embedding of the previous token (a start token first), a linear head per position gives
the logits over that position's options, softmax samples the token. The whole batch of an ``ask`` is
sampled in one pass.

Training is REINFORCE (Williams 1992, "Simple statistical gradient-following algorithms for
connectionist reinforcement learning"): one Adam step per ``tell`` on
``-mean((reward - baseline) * log pi(vector))`` (minus an optional entropy bonus), with an exponential
moving-average baseline. The reward is the score when trained and ``penalty`` (-1, NASAIC's) when the
spec cannot be met: infeasible samples are never trained, only punished (NASAIC's early pruning).
The learning rate is small on purpose: on NAS-Bench-201 (benchmarks/bench_search.py) larger ones
collapse the policy onto one vector within a hundred trainings, after which it only proposes repeats.

Deterministic: weights are initialized under ``torch.manual_seed(seed)`` inside ``fork_rng`` (the global
torch state is left as it was) and sampling draws from a private, seeded ``torch.Generator``.
The ``feasible`` oracle is not used: NASAIC's controller learns feasibility from the penalty.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from coexplore.codesign.search.base import Optimizer, Outcome, fitness, positive
from coexplore.models.ir import CoexploreError

CELLS = ("lstm", "gru")


@dataclass(frozen=True, slots=True)
class ReinforceOptions:
    hidden: int = 64  # cell and embedding width
    lr: float = 0.001  # Adam learning rate
    penalty: float = -1.0  # reward of an infeasible sample
    baseline_decay: float = 0.8  # moving-average baseline: b <- decay*b + (1-decay)*mean(reward)
    entropy: float = 0.0  # entropy bonus weight
    cell: str = "lstm"  # "lstm" or "gru"

    def __post_init__(self) -> None:
        positive("rl", hidden=self.hidden, lr=self.lr)
        if not 0.0 <= self.baseline_decay < 1.0:
            raise CoexploreError(f"optimizer 'rl': option baseline_decay={self.baseline_decay}: expected 0 <= x < 1")
        if self.entropy < 0:
            raise CoexploreError(f"optimizer 'rl': option entropy={self.entropy}: expected >= 0")
        if self.cell not in CELLS:
            raise CoexploreError(f"optimizer 'rl': option cell={self.cell!r}: expected one of {', '.join(CELLS)}")


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run the (tiny) policy on one torch thread: more only adds overhead, and much more under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Policy(nn.Module):
    """Autoregressive categorical policy over choice vectors: one recurrent step per position."""

    def __init__(self, cardinalities: Sequence[int], hidden: int, cell: str) -> None:
        super().__init__()
        self.cardinalities = tuple(cardinalities)
        self.offsets = [1 + int(x) for x in np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]])]
        self.embed = nn.Embedding(1 + sum(self.cardinalities), hidden)  # token 0: start
        self.cell = nn.LSTMCell(hidden, hidden) if cell == "lstm" else nn.GRUCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, c) for c in self.cardinalities)
        self.hidden = hidden

    def forward(
        self, n: int, *, actions: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``n`` vectors (or score the given ``actions``): (actions, log-probs, entropies)."""
        inp = self.embed(torch.zeros(n, dtype=torch.long))
        h = torch.zeros(n, self.hidden)
        state: tuple[torch.Tensor, torch.Tensor] | torch.Tensor = (
            (h, torch.zeros(n, self.hidden)) if isinstance(self.cell, nn.LSTMCell) else h
        )
        taken, logp, ent = [], torch.zeros(n), torch.zeros(n)
        for t, head in enumerate(self.heads):
            state = self.cell(inp, state)
            out = state[0] if isinstance(state, tuple) else state
            log_probs = torch.log_softmax(head(out), dim=-1)
            if actions is None:
                a = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
            else:
                a = actions[:, t]
            logp = logp + log_probs.gather(1, a[:, None]).squeeze(1)
            ent = ent - (log_probs.exp() * log_probs).sum(-1)
            taken.append(a)
            inp = self.embed(a + self.offsets[t])
        return torch.stack(taken, dim=1), logp, ent


class Reinforce(Optimizer):
    """REINFORCE on an RNN controller, NASAIC's search (reward: score, or a penalty when infeasible)."""

    name = "rl"
    Options = ReinforceOptions

    def __init__(self, cardinalities: Sequence[int], seed: int, **options: object) -> None:
        super().__init__(cardinalities, seed, **options)
        o = self.options
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = Policy(self.cardinalities, o.hidden, o.cell)
        self._optim = torch.optim.Adam(self.policy.parameters(), lr=o.lr)
        self._gen = torch.Generator().manual_seed(self.seed)
        self.baseline: float | None = None
        self.steps = 0

    def ask(self, n: int) -> list[tuple[int, ...]]:
        n = self._check_n(n)
        if n == 0:
            return []
        with torch.no_grad(), _one_thread():
            actions, _, _ = self.policy(n, generator=self._gen)
        return self._propose([tuple(int(x) for x in row) for row in actions.tolist()])

    def log_prob(self, vectors: Sequence[Sequence[int]]) -> np.ndarray:
        """log pi(vector) under the current policy."""
        vs = [self._vector(v) for v in vectors]
        with torch.no_grad(), _one_thread():
            _, logp, _ = self.policy(len(vs), actions=torch.tensor(vs, dtype=torch.long).reshape(len(vs), -1))
        return logp.numpy().astype(float)

    def tell(self, vectors: Sequence[tuple[int, ...]], outcomes: Sequence[Outcome]) -> None:
        vs = self._record(vectors, outcomes)
        if not vs:
            return
        o = self.options
        rewards = torch.tensor([fitness(out, o.penalty) for out in outcomes], dtype=torch.float32)
        mean = float(rewards.mean())
        if self.baseline is None:
            self.baseline = mean
        advantage = rewards - self.baseline
        self.baseline = o.baseline_decay * self.baseline + (1 - o.baseline_decay) * mean
        with _one_thread():
            _, logp, ent = self.policy(len(vs), actions=torch.tensor(vs, dtype=torch.long))
            loss = -(advantage * logp).mean() - o.entropy * ent.mean()
            self._optim.zero_grad()
            loss.backward()
            self._optim.step()
        self.steps += 1
