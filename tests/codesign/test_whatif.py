"""System what-if sweeps: the design grid, rows, Pareto flags and the files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from system_helpers import tiny_networks, toy_costs

from coexplore.codesign.whatif import design_grid, pareto_mask, plot_gantt, run_system_sweep
from coexplore.models.ir import CoexploreError


def test_design_grid_spends_the_whole_budget_and_dedupes_homogeneous_splits() -> None:
    grid = design_grid(["nvdla", "shidiannao"], 1024, 32.0, pe_splits=(0.25, 0.75), bw_splits=("shared", 0.5))
    singles = [g for g in grid if len(g[0]) == 1]
    assert len(singles) == 2 and all(g[1] == (1024,) for g in singles)
    hetero = [g for g in grid if g[0] == ("nvdla", "shidiannao")]
    assert len(hetero) == 2 * 2  # two splits x (shared, 50/50)
    homo = [g for g in grid if g[0] == ("nvdla", "nvdla")]
    assert len(homo) == 1 * 2  # 0.25 and 0.75 are the same design
    assert all(sum(g[1]) == 1024 for g in grid)
    assert all(g[3] is None or sum(g[3]) == pytest.approx(32.0) for g in grid)


def test_pareto_mask() -> None:
    import numpy as np

    pts = np.array([[1, 5, 1], [2, 2, 1], [3, 3, 1], [1, 5, 2]])
    assert pareto_mask(pts).tolist() == [True, True, False, False]


@pytest.mark.heavy
def test_sweep_writes_rows_pareto_and_plots(tmp_path: Path) -> None:
    rows = run_system_sweep(
        tiny_networks(),
        tmp_path,
        pe_budget=1024,
        bw_budget_bytes_per_cycle=32,
        templates=["nvdla", "shidiannao"],
        pe_splits=(0.5,),
        bw_splits=("shared", 0.5),
        costs=toy_costs,
        time_limit_s=0.2,
        progress=False,
    )
    assert len(rows) == 2 + 3 * 2
    assert rows == sorted(rows, key=lambda r: (r["makespan_cycles"], r["energy_pj"]))
    assert any(r["pareto"] for r in rows) and rows[0]["pareto"]
    for r in rows:
        assert r["makespan_cycles"] >= max(r["latency_cnn_cycles"], r["latency_mbv_cycles"]) - 1e-9
    with (tmp_path / "system_sweep.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    data = json.loads((tmp_path / "system_sweep.json").read_text())
    assert data["tasks"] == ["cnn", "mbv"] and len(data["designs"]) == len(rows)
    assert {"best_heterogeneous", "best_homogeneous", "latency_reduction"} <= set(data["summary"])
    assert (tmp_path / "system_pareto.png").stat().st_size > 1000


def test_sweep_rejects_bad_splits(tmp_path: Path) -> None:
    with pytest.raises(CoexploreError, match="PE split 1.5"):
        run_system_sweep(tiny_networks(), tmp_path, pe_splits=(1.5,), costs=toy_costs, progress=False)
    with pytest.raises(CoexploreError, match="bandwidth split 'half'"):
        run_system_sweep(tiny_networks(), tmp_path, bw_splits=("half",), costs=toy_costs, progress=False)


def test_gantt_is_drawn(tmp_path: Path) -> None:
    from coexplore.codesign.schedule import solve_greedy
    from coexplore.dataflows.system import get_system
    from coexplore.sim.system import build_problem

    problem = build_problem(tiny_networks(), get_system("nasaic-pair"), toy_costs)
    res = solve_greedy(problem, time_limit_s=0.2)
    plot_gantt(problem, res.result, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 1000
