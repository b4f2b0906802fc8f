"""Exact (CP-SAT) and greedy mapping + scheduling: optima checked by brute force, limits, bad specs."""

from __future__ import annotations

import numpy as np
import pytest
from system_helpers import brute_force

from coexplore.codesign.schedule import (
    Objective,
    Schedule,
    configuration_bound,
    critical_paths,
    replay,
    solve,
    solve_exact,
    solve_greedy,
)
from coexplore.dataflows.spec import SpecError
from coexplore.dataflows.system import Link
from coexplore.sim.system import random_problem, synthetic_problem


def _tiny(seed: int, n_units: int = 5, n_accs: int = 2, bw: bool = False, link: bool = True):
    """Two small chains (one with a fork) on heterogeneous accelerators, integer durations 1..6."""
    rng = np.random.default_rng(seed)
    durations = rng.integers(1, 7, size=(n_units, n_accs))
    tasks = [0] * (n_units // 2 + 1) + [1] * (n_units - n_units // 2 - 1)
    edges = [(i, i + 1) for i in range(len(tasks) - 1) if tasks[i] == tasks[i + 1]]
    if tasks.count(0) >= 3:
        edges.append((0, 2))
    demand = rng.integers(1, 4, size=(n_units, n_accs)).astype(float) if bw else None
    return synthetic_problem(
        durations,
        edges,
        tasks,
        bw_demand=demand,
        pool_bw_bytes_per_cycle=4.0 if bw else 1e9,
        energy_pj=rng.uniform(1, 2, size=(n_units, n_accs)),
        edge_bytes=[2.0] * len(edges) if link else None,
        link=Link(bw_bytes_per_cycle=1.0, latency_cycles=1, energy_pj_per_byte=1.0) if link else None,
    )


@pytest.mark.parametrize("seed", range(4))
def test_exact_matches_brute_force_with_transfers(seed: int) -> None:
    problem = _tiny(seed)
    res = solve_exact(problem, time_limit_s=20, workers=4)
    assert res.status == "optimal" and res.gap == 0.0
    assert res.objective_value == brute_force(problem)
    assert replay(problem, res.schedule).makespan_cycles == res.objective_value


@pytest.mark.parametrize("seed", range(3))
def test_exact_matches_brute_force_under_a_binding_dram_pool(seed: int) -> None:
    problem = _tiny(seed + 10, n_units=4, bw=True, link=False)
    assert problem.bandwidth_binds
    res = solve_exact(problem, time_limit_s=20, workers=4)
    assert res.status == "optimal"
    assert res.objective_value == brute_force(problem)
    timings = res.result.timings
    for t in range(int(res.objective_value)):  # the pool is never oversubscribed
        draw = sum(problem.bw_demand[x.unit, x.acc] for x in timings if x.start_cycle <= t < x.end_cycle)
        assert draw <= problem.pool_bw_scaled


def test_exact_weighted_objective_matches_brute_force() -> None:
    problem = _tiny(7)
    problem = type(problem)(**{**problem.__dict__, "task_weights": (3.0, 1.0)})
    res = solve_exact(problem, Objective.WEIGHTED, time_limit_s=20, workers=4)
    assert res.status == "optimal"
    assert res.objective_value == brute_force(problem, "weighted")


def test_identical_sub_accelerators_keep_the_optimum() -> None:
    rng = np.random.default_rng(3)
    col = rng.integers(1, 7, size=(5, 1))
    problem = synthetic_problem(np.hstack([col, col, col + 2]), [(0, 1), (1, 2), (3, 4)], [0, 0, 0, 1, 1])
    res = solve_exact(problem, time_limit_s=20, workers=4)
    assert res.status == "optimal" and res.objective_value == brute_force(problem)


@pytest.mark.parametrize("seed", range(3))
def test_greedy_is_feasible_and_never_beats_the_optimum(seed: int) -> None:
    problem = _tiny(seed, n_units=6)
    best = brute_force(problem)
    g = solve_greedy(problem, seed=seed)
    assert g.status == "heuristic"
    assert replay(problem, g.schedule).makespan_cycles == g.objective_value >= best
    assert g.objective_value <= 1.5 * best


@pytest.mark.heavy
def test_time_limit_returns_best_schedule_and_its_gap() -> None:
    problem = random_problem(5, n_tasks=3, units_per_task=20, n_accs=3, link=Link(32, 16, 2.5))
    res = solve_exact(problem, time_limit_s=1.0, workers=4)
    assert res.status in ("optimal", "feasible", "heuristic")
    assert res.gap is not None and 0.0 <= res.gap < 1.0
    assert res.bound <= res.objective_value
    assert replay(problem, res.schedule).makespan_cycles == res.objective_value
    if res.status != "optimal":
        assert res.gap > 0.0


def test_latency_cap_below_a_critical_path_names_the_cap() -> None:
    problem = _tiny(1)
    with pytest.raises(SpecError, match=r"^latency cap 2 cycles cannot be met: task 'task0' alone needs"):
        solve_exact(problem, latency_cap_cycles=2)
    with pytest.raises(SpecError, match="latency cap 2 cycles"):
        solve_greedy(problem, latency_cap_cycles=2)


def test_latency_cap_just_below_the_optimum_is_proved_infeasible() -> None:
    problem = _tiny(2)
    best = brute_force(problem)
    with pytest.raises(SpecError) as info:
        solve_exact(problem, latency_cap_cycles=best - 1, workers=4)
    assert f"latency cap {best - 1:.0f} cycles" in str(info.value) and "\n" not in str(info.value)
    ok = solve_exact(problem, latency_cap_cycles=best, workers=4)
    assert ok.objective_value == best


def test_energy_cap_below_the_least_energy_mapping_names_the_cap() -> None:
    problem = _tiny(0)
    least = float(problem.energy_pj.min(axis=1).sum())
    with pytest.raises(SpecError, match="energy cap 1 pJ cannot be met: the least-energy mapping needs"):
        solve_exact(problem, energy_cap_pj=1.0)
    res = solve_exact(problem, energy_cap_pj=least + 2 * 1.0 * len(problem.edges) * 2.0 + 1, workers=4)
    assert res.result.energy_pj <= least + 2 * len(problem.edges) * 2.0 + 1


def test_a_gap_limit_stop_is_not_called_optimal() -> None:
    problem = random_problem(7, n_tasks=3, units_per_task=12, n_accs=3)
    res = solve_exact(problem, time_limit_s=10, gap_limit=0.5, workers=4)
    assert (res.status == "optimal") == (res.gap == 0.0)
    assert res.gap <= 0.5 and res.bound <= res.objective_value


def test_binding_pool_bound_from_the_relaxation_is_valid() -> None:
    problem = _tiny(11, n_units=4, bw=True, link=False)
    res = solve_exact(problem, time_limit_s=20, workers=4)
    assert res.bound <= brute_force(problem) == res.objective_value


# ---- the lower bounds: never above an optimum, and tight where the older ones were not ----------------
@pytest.mark.parametrize("seed", range(6))
def test_critical_paths_and_the_configuration_bound_never_pass_the_optimum(seed: int) -> None:
    for problem in (_tiny(seed, n_units=6), _tiny(seed + 10, n_units=4, bw=True, link=False)):
        best = brute_force(problem)
        assert max(critical_paths(problem)) <= best
        assert configuration_bound(problem) <= best


def test_a_critical_path_that_changes_sub_accelerator_pays_the_transfer() -> None:
    # unit 0 is fast on acc0, unit 1 on acc1: the best chain splits, and the link costs 3 + 4 bytes / 1
    problem = synthetic_problem(
        np.array([[2, 50], [50, 2]]), [(0, 1)], [0, 0], edge_bytes=[4.0], link=Link(1.0, 3, 1.0)
    )
    assert critical_paths(problem) == [2 + 7 + 2] == [brute_force(problem)]
    res = solve_exact(problem, time_limit_s=10, workers=2)
    assert res.objective_value == res.bound == 11 and res.status == "optimal"


@pytest.mark.heavy
def test_the_configuration_bound_sees_draws_that_cannot_run_side_by_side() -> None:
    # two independent units, each fast on its own sub-accelerator, each drawing 3 of the pool's 4
    # bytes/cycle: they cannot overlap, which neither the bytes over the pool (15) nor the work over
    # the sub-accelerators (10) sees
    problem = synthetic_problem(
        np.array([[10, 1000], [1000, 10]]), [], [0, 1], bw_demand=np.full((2, 2), 3.0), pool_bw_bytes_per_cycle=4.0
    )
    assert problem.bandwidth_binds and brute_force(problem) == 20
    assert configuration_bound(problem) == 20
    res = solve_exact(problem, time_limit_s=10, workers=2)
    assert res.objective_value == res.bound == 20 and res.status == "optimal"


# ---- exact never worse than greedy, reproducible, lexicographic, per-task finish times ----------------
@pytest.mark.heavy
def test_exact_improves_where_greedy_is_suboptimal() -> None:
    problem = _tiny(3, n_units=6)
    greedy = solve_greedy(problem, seed=0)
    best = brute_force(problem)
    assert greedy.objective_value > best  # the list scheduler misses the optimum here
    res = solve_exact(problem, time_limit_s=20, workers=4)
    assert res.objective_value == best and res.status == "optimal" and res.schedule_from == "cp-sat"


def test_exact_under_a_short_limit_is_never_worse_than_its_hint() -> None:
    problem = random_problem(5, n_tasks=3, units_per_task=20, n_accs=3, link=Link(32, 16, 2.5))
    hint = solve_greedy(problem, iterations=30, seed=0)
    res = solve_exact(problem, time_limit_s=0.5, workers=2, hint=hint.schedule)
    assert (res.objective_value, res.result.energy_pj) <= (hint.objective_value, hint.result.energy_pj)
    assert res.schedule_from in ("cp-sat", "hint")
    if res.schedule_from == "hint":
        assert res.schedule == hint.schedule
    assert res.bound <= res.objective_value and res.gap == (res.objective_value - res.bound) / res.objective_value
    assert replay(problem, res.schedule).makespan_cycles == res.objective_value


@pytest.mark.heavy
def test_seeded_exact_is_never_worse_than_seeded_greedy() -> None:
    problem = random_problem(3, n_tasks=3, units_per_task=16, n_accs=3, link=Link(32, 16, 2.5))
    greedy = solve(problem, "greedy", time_limit_s=30, seed=2, deterministic=True)
    exact = solve(problem, "exact", time_limit_s=4, seed=2, deterministic=True)
    assert (exact.objective_value, exact.result.energy_pj) <= (greedy.objective_value, greedy.result.energy_pj)
    if exact.schedule_from == "greedy":  # the hint is the greedy answer itself
        assert exact.schedule == greedy.schedule
    else:
        assert (exact.objective_value, exact.result.energy_pj) < (greedy.objective_value, greedy.result.energy_pj)


def test_a_hint_cp_sat_cannot_beat_comes_back_marked_as_such() -> None:
    problem = _tiny(4, n_units=6)
    optimum = solve_exact(problem, time_limit_s=20, workers=2)
    again = solve_exact(problem, time_limit_s=20, workers=2, hint=optimum.schedule)
    assert again.schedule_from == "hint" and again.schedule == optimum.schedule
    assert again.status == "optimal" and again.gap == 0.0 and again.bound == optimum.objective_value


def test_deterministic_runs_repeat_the_same_schedule() -> None:
    problem = random_problem(11, n_tasks=3, units_per_task=10, n_accs=3, link=Link(32, 16, 2.5))
    runs = [solve_exact(problem, time_limit_s=60, seed=5, deterministic=True, deterministic_time=0.4) for _ in range(2)]
    assert all(r.deterministic for r in runs)
    assert runs[0].objective_value == runs[1].objective_value
    assert runs[0].result.energy_pj == runs[1].result.energy_pj and runs[0].schedule == runs[1].schedule


def test_ties_on_makespan_go_to_the_least_energy() -> None:
    # Two independent units of equal length: any split over the two sub-accelerators gives makespan 5;
    # the hint takes the costly split, the tie-break must find the cheap one.
    problem = synthetic_problem(np.array([[5, 5], [5, 5]]), [], [0, 1], energy_pj=np.array([[1.0, 10.0], [10.0, 1.0]]))
    costly = Schedule((1, 0), (0, 0))
    assert replay(problem, costly).energy_pj == 20.0
    res = solve_exact(problem, time_limit_s=10, workers=2, hint=costly)
    assert res.objective_value == 5 and res.result.energy_pj == 2.0 and res.schedule_from == "cp-sat"


def test_each_task_reports_its_own_finish_time() -> None:
    problem = _tiny(0, n_units=7)
    res = solve_exact(problem, time_limit_s=20, workers=2)
    latency = res.result.task_latency_cycles
    ends = [max(t.end_cycle for t in res.result.timings if problem.units[t.unit].task == k) for k in range(2)]
    assert list(latency) == ends
    assert max(latency) == res.objective_value == res.result.makespan_cycles
    assert min(latency) < res.objective_value  # the shorter task is not reported at the makespan


@pytest.mark.slow
def test_exact_on_a_shipped_system_is_never_worse_than_greedy() -> None:
    from coexplore.dataflows.io import get_profile
    from coexplore.dataflows.system import get_system
    from coexplore.models.zoo import get_network
    from coexplore.sim.system import analytical_costs, build_problem

    nets = [get_network(name) for name in ("resnet9", "unet", "mobilenetv2")]
    problem = build_problem(
        nets, get_system("dla-sdn-shared"), analytical_costs(get_profile("rtl")), max_units_per_task=20
    )
    greedy = solve_greedy(problem, time_limit_s=10, seed=0)
    res = solve_exact(problem, time_limit_s=10, hint=greedy.schedule)
    assert res.objective_value <= greedy.objective_value and res.bound <= res.objective_value
