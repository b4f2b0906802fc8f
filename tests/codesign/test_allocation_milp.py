"""The allocation MILP (Pyomo + HiGHS): optimum checked by enumeration, infeasible budgets named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from system_helpers import tiny_networks, toy_costs

from coexplore.codesign.milp import SlotOption, _accelerator, allocate
from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import SpecError
from coexplore.dataflows.system import BandwidthSharing, Budget, System
from coexplore.sim.system import build_problem

OPTIONS = [SlotOption(256, 8.0), SlotOption(512, 8.0), SlotOption(256, 16.0), SlotOption(768, 8.0)]


def _bound(problem, assign) -> float:
    """max(load of each sub-accelerator, longest path with transfers): the MILP's objective."""
    d = problem.duration_cycles
    loads = [sum(d[u, a] for u in range(problem.n_units) if assign[u] == a) for a in range(problem.n_accs)]
    finish = [0.0] * problem.n_units
    preds = problem.predecessors()
    for u in range(problem.n_units):
        start = max([finish[problem.edges[e][0]] + (problem.transfer_cycles(e) if assign[problem.edges[e][0]] != assign[u]
                                                    else 0) for e in preds[u]], default=0.0)
        finish[u] = start + d[u, assign[u]]
    return float(max(max(loads), max(finish)))


def test_allocation_is_optimal_by_enumeration() -> None:
    nets = tiny_networks()
    budget_pes, budget_bw = 1024, 24.0
    got = allocate(nets, ["nvdla", "shidiannao"], pe_budget=budget_pes, bw_budget_bytes_per_cycle=budget_bw,
                   options=OPTIONS, costs=toy_costs, gap_limit=0.0, time_limit_s=60)
    assert got.status == "optimal"
    assert got.system.pes <= budget_pes
    assert sum(a.dram_bw_bytes_per_cycle for a in got.system.accelerators) <= budget_bw
    assert got.makespan_bound_cycles == pytest.approx(_bound(got.problem, got.assignment), rel=1e-6)
    # enumerate every option pair within budget and every assignment
    best = np.inf
    for o1, o2 in itertools.product(OPTIONS, repeat=2):
        if o1.pes + o2.pes > budget_pes or o1.dram_bw_bytes_per_cycle + o2.dram_bw_bytes_per_cycle > budget_bw:
            continue
        system = System("e", (_accelerator(get_template("nvdla"), o1, "a", {}),
                              _accelerator(get_template("shidiannao"), o2, "b", {})),
                        Budget(dram_bw_bytes_per_cycle=budget_bw, pes=budget_pes), BandwidthSharing.PARTITIONED)
        problem = build_problem(nets, system, toy_costs)
        for assign in itertools.product(range(2), repeat=problem.n_units):
            best = min(best, _bound(problem, assign))
    assert got.makespan_bound_cycles == pytest.approx(best, rel=1e-6)


def test_pe_budget_too_small_names_the_limit() -> None:
    with pytest.raises(SpecError, match=r"^PE budget 300 exceeded: 2 sub-accelerators need at least 512 PEs"):
        allocate(tiny_networks(), ["nvdla", "shidiannao"], pe_budget=300, bw_budget_bytes_per_cycle=64,
                 options=OPTIONS, costs=toy_costs)


def test_energy_cap_that_no_allocation_meets_is_proved_infeasible() -> None:
    with pytest.raises(SpecError, match="no allocation meets .*energy cap 1 pJ together"):
        allocate(tiny_networks(), ["nvdla", "shidiannao"], pe_budget=1024, bw_budget_bytes_per_cycle=24,
                 options=OPTIONS, costs=toy_costs, energy_cap_pj=1.0)
