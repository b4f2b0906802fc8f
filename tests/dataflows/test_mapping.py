"""Fold plans and stall-free timing against closed forms and SCALE-Sim's measured cycles."""

from __future__ import annotations

import numpy as np
import pytest
from reference_cases import reference_layer

from coexplore.dataflows.io import get_profile, get_template
from coexplore.dataflows.mapping import plan_folds, stall_free_cycles
from coexplore.models.ir import conv


def test_every_stall_free_scalesim_case_is_exact(scalesim_reference: dict) -> None:
    profile = get_profile("scalesim")
    checked = 0
    for case in scalesim_reference["cases"]:
        if case["stall_cycles"] != 0:
            continue
        layer = reference_layer(case["layer"])
        assert layer.macs == case["layer"]["macs"]
        df = get_template(f"systolic-{case['dataflow']}")
        rows, cols = case["array_rows"], case["array_cols"]
        plan = plan_folds(df.mapping_for(layer.kind), layer.dims(), rows, cols)
        cycles = stall_free_cycles(df.timing, profile, rows, cols, plan.temporal_steps, plan.folds)
        assert int(cycles) == case["compute_cycles"], case
        checked += 1
    assert checked == 12


def test_closed_form_folds_ws() -> None:
    layer = conv("c", c=64, k=64, h=32, r=3)  # K=576 rows of reduction, N=64 filters, M=900 pixels
    plan = plan_folds(get_template("systolic-ws").mapping, layer.dims(), 16, 16)
    assert int(plan.folds) == 36 * 4 and int(plan.temporal_steps) == 900
    assert int(plan.rows.used) == 16 and int(plan.cols.used) == 16


def test_eyeriss_nested_packing_replicates_channels() -> None:
    layer = conv("c", c=8, k=4, h=10, r=3)  # R=3 on 12 rows -> 4 channels per pass
    plan = plan_folds(get_template("eyeriss").mapping, layer.dims(), 12, 8)
    assert int(plan.rows.used) == 12 and int(plan.rows.folds) == 2
    assert int(plan.cols.used) == 8 and int(plan.cols.folds) == 1  # P = 8
    assert int(plan.temporal_steps) == 8 * 3  # Q x S
    assert int(plan.folds) == 2 * 1 * 4  # x K outer


def test_plans_vectorize_over_designs() -> None:
    layer = conv("c", c=64, k=64, h=32, r=3)
    rows = np.array([8, 16, 32])
    plan = plan_folds(get_template("systolic-os").mapping, layer.dims(), rows, rows)
    scalar = [int(plan_folds(get_template("systolic-os").mapping, layer.dims(), int(r), int(r)).folds) for r in rows]
    assert plan.folds.tolist() == scalar


@pytest.mark.parametrize("profile_name", ["rtl", "ideal"])
def test_hiding_overheads_never_costs_cycles(profile_name: str) -> None:
    df = get_template("systolic-ws")
    args = (df.timing, get_profile(profile_name), 16, 16, 900, 144)
    assert stall_free_cycles(*args) <= stall_free_cycles(df.timing, get_profile("scalesim"), 16, 16, 900, 144) + 1 + 16
    assert stall_free_cycles(df.timing, get_profile("ideal"), 16, 16, 900, 144) <= stall_free_cycles(*args)
