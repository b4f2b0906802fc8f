"""Shared pieces of the system tests: a toy cost model, tiny networks, and brute-force optima."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Layer, Network, OpKind, conv, gemm
from coexplore.sim.system import CostTable, MappingProblem


def toy_costs(layers: Sequence[Layer], accs: Sequence[Accelerator]) -> CostTable:
    """An independent toy model: NVDLA-like arrays need channels, ShiDianNao-like ones need pixels."""
    shape = (len(accs), len(layers))
    compute, energy, nbytes = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, acc in enumerate(accs):
        for j, layer in enumerate(layers):
            if not layer.kind.has_macs:
                compute[i, j] = math.ceil(layer.vector_ops / acc.cols) + 1
            else:
                if acc.dataflow.name == "nvdla":
                    util = min(1.0, layer.c_per_group / acc.rows) * min(1.0, layer.k_per_group / acc.cols)
                elif acc.dataflow.name == "shidiannao":
                    util = min(1.0, layer.p / acc.rows) * min(1.0, layer.q / acc.cols)
                else:
                    util = 0.5
                compute[i, j] = math.ceil(layer.macs / (acc.pes * util)) + 10
            nbytes[i, j] = layer.input_words + layer.weight_words + layer.output_words
            energy[i, j] = layer.macs * (1.0 + 0.2 * i) + nbytes[i, j] * 100.0
    area = np.array([a.pes * 1000.0 + 1e5 for a in accs])
    return CostTable(compute, energy, nbytes, area)


def tiny_networks() -> list[Network]:
    a = Network.chain(
        "cnn",
        [
            conv("c1", 3, 16, 16, pad=1),
            conv("c2", 16, 32, 16, pad=1),
            Layer("p", OpKind.POOL, k=32, c=32, h=16, w=16, r=2, s=2, stride_h=2, stride_w=2, groups=32),
            gemm("fc", 1, 32 * 8 * 8, 10),
        ],
    )
    b = Network.chain(
        "mbv",
        [
            conv("dw", 32, 32, 16, pad=1, groups=32),
            conv("pw", 32, 64, 16, r=1),
            conv("dw2", 64, 64, 16, pad=1, groups=64),
            conv("pw2", 64, 64, 16, r=1),
        ],
    )
    return [a, b]


def _topological_orders(n: int, preds: list[set[int]]):
    """Every ordering of 0..n-1 that puts each unit after its predecessors."""

    def rec(prefix: list[int], placed: set[int]):
        if len(prefix) == n:
            yield list(prefix)
            return
        for u in range(n):
            if u not in placed and preds[u] <= placed:
                prefix.append(u)
                placed.add(u)
                yield from rec(prefix, placed)
                prefix.pop()
                placed.discard(u)

    yield from rec([], set())


def brute_force(problem: MappingProblem, objective: str = "makespan") -> float:
    """The optimum by enumeration: every assignment x bandwidth mode x precedence-feasible list, each
    decoded by a time-indexed serial schedule-generation scheme (earliest start where the
    sub-accelerator is idle and the DRAM pool has room). Serial SGS over all lists reaches every
    active schedule, and for a regular objective some active schedule is optimal."""
    n, n_a = problem.n_units, problem.n_accs
    preds: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (p, c) in enumerate(problem.edges):
        preds[c].append((p, problem.transfer_cycles(e)))
    pred_sets = [{p for p, _ in preds[u]} for u in range(n)]
    orders = list(_topological_orders(n, pred_sets))
    pool = problem.pool_bw_scaled
    choices = [
        [(a, m) for a in range(n_a) for m in range(problem.n_modes) if problem.mode_allowed(m, u, a)] for u in range(n)
    ]
    horizon = (
        2
        * int(
            problem.mode_duration_cycles.max() * n + sum(problem.transfer_cycles(e) for e in range(len(problem.edges)))
        )
        + 1
    )
    best = math.inf
    for combo in itertools.product(*choices):
        dur = [int(problem.mode_duration_cycles[m, u, a]) for u, (a, m) in enumerate(combo)]
        dem = [int(problem.mode_bw_demand[m, u, a]) for u, (a, m) in enumerate(combo)]
        for order in orders:
            busy = np.zeros((n_a, horizon), dtype=bool)
            bw = np.zeros(horizon, dtype=np.int64)
            end = [0] * n
            for u in order:
                a = combo[u][0]
                t = max([end[p] + (tr if combo[p][0] != a else 0) for p, tr in preds[u]], default=0)
                while busy[a, t : t + dur[u]].any() or (bw[t : t + dur[u]] + dem[u] > pool).any():
                    t += 1
                busy[a, t : t + dur[u]] = True
                bw[t : t + dur[u]] += dem[u]
                end[u] = t + dur[u]
            done = [0] * len(problem.task_names)
            for u, unit in enumerate(problem.units):
                done[unit.task] = max(done[unit.task], end[u])
            value = max(done) if objective == "makespan" else sum(w * c for w, c in zip(problem.task_weights, done))
            best = min(best, value)
    return float(best)
