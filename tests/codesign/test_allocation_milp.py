"""The allocation MILP (Pyomo + HiGHS): optimum checked by enumeration, infeasible budgets named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from system_helpers import tiny_networks, toy_costs

from coexplore.codesign.milp import SlotOption, _accelerator, allocate, default_options, shipped_candidates
from coexplore.codesign.schedule import solve_greedy
from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import SpecError
from coexplore.dataflows.system import BandwidthSharing, Budget, System
from coexplore.models.ir import CoexploreError
from coexplore.sim.system import build_problem

OPTIONS = [SlotOption(256, 8.0), SlotOption(512, 8.0), SlotOption(256, 16.0), SlotOption(768, 8.0)]


def _bound(problem, assign) -> float:
    """max(load of each sub-accelerator, longest path with transfers): the MILP's objective."""
    d = problem.duration_cycles
    loads = [sum(d[u, a] for u in range(problem.n_units) if assign[u] == a) for a in range(problem.n_accs)]
    finish = [0.0] * problem.n_units
    preds = problem.predecessors()
    for u in range(problem.n_units):
        start = max(
            [
                finish[problem.edges[e][0]]
                + (problem.transfer_cycles(e) if assign[problem.edges[e][0]] != assign[u] else 0)
                for e in preds[u]
            ],
            default=0.0,
        )
        finish[u] = start + d[u, assign[u]]
    return float(max(max(loads), max(finish)))


@pytest.mark.heavy
def test_allocation_is_optimal_by_enumeration() -> None:
    nets = tiny_networks()
    budget_pes, budget_bw = 1024, 24.0
    got = allocate(
        nets,
        ["nvdla", "shidiannao"],
        pe_budget=budget_pes,
        bw_budget_bytes_per_cycle=budget_bw,
        options=OPTIONS,
        costs=toy_costs,
        gap_limit=0.0,
        time_limit_s=60,
    )
    assert got.status == "optimal"
    assert got.system.pes <= budget_pes
    assert sum(a.dram_bw_bytes_per_cycle for a in got.system.accelerators) <= budget_bw
    assert got.makespan_bound_cycles == pytest.approx(_bound(got.problem, got.assignment), rel=1e-6)
    # enumerate every option pair within budget and every assignment
    best = np.inf
    for o1, o2 in itertools.product(OPTIONS, repeat=2):
        if o1.pes + o2.pes > budget_pes or o1.dram_bw_bytes_per_cycle + o2.dram_bw_bytes_per_cycle > budget_bw:
            continue
        system = System(
            "e",
            (_accelerator(get_template("nvdla"), o1, "a", {}), _accelerator(get_template("shidiannao"), o2, "b", {})),
            Budget(dram_bw_bytes_per_cycle=budget_bw, pes=budget_pes),
            BandwidthSharing.PARTITIONED,
        )
        problem = build_problem(nets, system, toy_costs)
        for assign in itertools.product(range(2), repeat=problem.n_units):
            best = min(best, _bound(problem, assign))
    assert got.makespan_bound_cycles == pytest.approx(best, rel=1e-6)


def test_pe_budget_too_small_names_the_limit() -> None:
    with pytest.raises(SpecError, match=r"^PE budget 300 exceeded: 2 sub-accelerators need at least 512 PEs"):
        allocate(
            tiny_networks(),
            ["nvdla", "shidiannao"],
            pe_budget=300,
            bw_budget_bytes_per_cycle=64,
            options=OPTIONS,
            costs=toy_costs,
        )


@pytest.mark.heavy
def test_energy_cap_that_no_allocation_meets_is_proved_infeasible() -> None:
    with pytest.raises(SpecError, match="no allocation meets .*energy cap 1 pJ together"):
        allocate(
            tiny_networks(),
            ["nvdla", "shidiannao"],
            pe_budget=1024,
            bw_budget_bytes_per_cycle=24,
            options=OPTIONS,
            costs=toy_costs,
            energy_cap_pj=1.0,
        )


def test_array_shapes_are_options() -> None:
    opts = default_options(4096, 64.0)
    shapes_2048 = {o.shape for o in opts if o.pes == 2048}
    assert {(64, 32), (32, 64), (16, 128)} <= shapes_2048  # nasaic-pair's NVDLA-like and ShiDianNao-like arrays
    assert all(r * c == o.pes for o in opts for r, c in [o.shape])
    with pytest.raises(CoexploreError, match="48 rows do not divide 1024 PEs"):
        SlotOption(1024, 8.0, rows=48)


@pytest.mark.heavy
def test_the_milp_chooses_the_array_shape_with_the_smaller_bound() -> None:
    nets = tiny_networks()
    tall, wide = SlotOption(256, 8.0, rows=32), SlotOption(256, 8.0, rows=8)
    got = allocate(
        nets,
        ["nvdla"],
        pe_budget=256,
        bw_budget_bytes_per_cycle=8,
        options=[wide, tall],
        costs=toy_costs,
        gap_limit=0.0,
        candidates=(),
    )
    # the toy NVDLA-like array maps channels on rows and output channels on columns: 32 x 8 and 8 x 32
    # differ, and the MILP takes the shape with the smaller bound
    bounds = {}
    for opt in (wide, tall):
        one = allocate(
            nets,
            ["nvdla"],
            pe_budget=256,
            bw_budget_bytes_per_cycle=8,
            options=[opt],
            costs=toy_costs,
            gap_limit=0.0,
            candidates=(),
        )
        bounds[opt.shape] = one.makespan_bound_cycles
    assert bounds[tall.shape] != bounds[wide.shape]
    acc = got.system.accelerators[0]
    assert got.makespan_bound_cycles == min(bounds.values())
    assert bounds[(acc.rows, acc.cols)] == min(bounds.values())


@pytest.mark.heavy
def test_a_better_given_design_wins_the_scheduled_check() -> None:
    nets = tiny_networks()
    poor = [SlotOption(256, 8.0)]  # the MILP may only take small arrays
    big = System(
        "hand",
        (
            _accelerator(get_template("nvdla"), SlotOption(512, 12.0, rows=32), "a", {}),
            _accelerator(get_template("shidiannao"), SlotOption(512, 12.0, rows=16), "b", {}),
        ),
        Budget(dram_bw_bytes_per_cycle=24.0, pes=1024),
        BandwidthSharing.PARTITIONED,
    )
    milp_only = allocate(
        nets,
        ["nvdla", "shidiannao"],
        pe_budget=1024,
        bw_budget_bytes_per_cycle=24,
        options=poor,
        costs=toy_costs,
        candidates=(),
    )
    got = allocate(
        nets,
        ["nvdla", "shidiannao"],
        pe_budget=1024,
        bw_budget_bytes_per_cycle=24,
        options=poor,
        costs=toy_costs,
        candidates=[big],
    )
    scored = dict(got.candidates)
    assert set(scored) == {"allocated", "hand"} and scored["hand"] < scored["allocated"]
    assert got.chosen == "hand" and got.system == big
    assert solve_greedy(got.problem, iterations=400, seed=0).objective_value == scored["hand"]
    assert milp_only.chosen == "milp" and milp_only.candidates == (("allocated", scored["allocated"]),)


def test_shipped_candidates_fit_the_budget_and_templates() -> None:
    dfs = [get_template("nvdla"), get_template("shidiannao")]
    assert [s.name for s in shipped_candidates(dfs, 4096, 64.0)] == ["nasaic-pair"]  # partitioned only
    assert shipped_candidates(dfs, 2048, 64.0) == [] and shipped_candidates(dfs, 4096, 32.0) == []


@pytest.mark.slow
def test_allocation_of_resnet9_and_unet_is_no_worse_than_nasaic_pair() -> None:
    from coexplore.dataflows.io import get_profile
    from coexplore.dataflows.system import get_system
    from coexplore.models.zoo import get_network
    from coexplore.sim.system import analytical_costs

    nets = [get_network("resnet9"), get_network("unet")]
    costs = analytical_costs(get_profile("rtl"))
    shipped = get_system("nasaic-pair")
    budget = dict(pe_budget=shipped.budget.pes, bw_budget_bytes_per_cycle=shipped.budget.dram_bw_bytes_per_cycle)
    ref = solve_greedy(build_problem(nets, shipped, costs, max_units_per_task=20), iterations=400, seed=0)
    milp = allocate(
        nets, ["nvdla", "shidiannao"], **budget, costs=costs, link=shipped.link, time_limit_s=60, candidates=()
    )
    assert dict(milp.candidates)["allocated"] <= ref.objective_value  # the MILP's own design, with array shapes
    got = allocate(nets, ["nvdla", "shidiannao"], **budget, costs=costs, link=shipped.link, time_limit_s=60)
    assert "nasaic-pair" in dict(got.candidates)
    assert solve_greedy(got.problem, iterations=400, seed=0).objective_value <= ref.objective_value
