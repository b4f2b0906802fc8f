"""Analytical model vs cycle-level simulator: the agreement bound of issue 3 (mean 2 %, max 5 %)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coexplore.dataflows.io import get_profile
from coexplore.sim.cycle import validate as v


@pytest.mark.heavy
@pytest.mark.parametrize("profile", ["rtl", "scalesim"])
def test_agreement_on_resnet9_and_vit_layers_on_every_template(profile: str) -> None:
    cases = v.build_suite(networks=("resnet9", "vit"))
    assert len(cases) >= 150 and {c.bandwidth for c in cases} == {"unlimited", "limited"}
    results = v.run_suite(cases, get_profile(profile))
    summary = v.summarize(results)
    assert summary.bandwidth_bound >= 20 and summary.compute_bound >= 20
    assert summary.ok, summary
    assert summary.independent_max_pct <= v.MAX_BOUND_PCT
    if profile == "rtl":
        assert summary.by_construction == 0  # every rtl pair is an independent comparison


@pytest.mark.slow
def test_full_validate_suite_meets_the_bound_in_both_profiles() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "coexplore.cli", "validate", "--quiet"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" OK;") == 2
