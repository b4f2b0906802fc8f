"""Spec text (units, per-task limits, round trips, every kind of bad string) and SpecCheck figures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coexplore.codesign.problem import Candidate, Limits, Spec, SpecCheck, TaskChoice
from coexplore.models.ir import CoexploreError


@pytest.mark.parametrize(
    "text, system, tasks",
    [
        ("latency=2.5e6,energy=4e4uJ,area=12mm2", Limits(2.5e6, 4e10, 12e6), ()),
        ("latency=2.5Mcycles", Limits(latency_cycles=2.5e6), ()),
        ("latency=2500k", Limits(latency_cycles=2.5e6), ()),
        ("latency = 1e6 cycles , area = 5e5 um2", Limits(latency_cycles=1e6, area_um2=5e5), ()),
        ("energy=3pJ", Limits(energy_pj=3.0), ()),
        ("energy=3nJ", Limits(energy_pj=3e3), ()),
        ("energy=1.5mJ", Limits(energy_pj=1.5e9), ()),
        ("energy=2J", Limits(energy_pj=2e12), ()),
        ("energy=7\u00b5J", Limits(energy_pj=7e6), ()),
        ("latency=1G", Limits(latency_cycles=1e9), ()),
        (
            "latency=3e6,digits.latency=1e6,seg.energy=2uJ",
            Limits(latency_cycles=3e6),
            (("digits", Limits(latency_cycles=1e6)), ("seg", Limits(energy_pj=2e6))),
        ),
        ("digits.latency=1e6,digits.energy=1nJ", Limits(), (("digits", Limits(latency_cycles=1e6, energy_pj=1e3)),)),
    ],
)
def test_parse_happy_paths(text: str, system: Limits, tasks: tuple) -> None:
    spec = Spec.parse(text)
    assert spec.system == system
    assert spec.tasks == tasks
    assert Spec.parse(spec.to_text()) == spec


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("energy=4e4uF", "spec 'energy=4e4uF': unknown energy unit 'uF' (expected pJ, nJ, uJ, mJ, J)"),
        ("area=3cm2", "spec 'area=3cm2': unknown area unit 'cm2' (expected um2, mm2)"),
        ("latency=3ms", "unknown latency unit 'ms'"),
        ("energy=4e4", "spec 'energy=4e4': missing energy unit (expected pJ, nJ, uJ, mJ, J)"),
        ("area=12", "missing area unit"),
        ("speed=3", "unknown key 'speed' (expected latency, energy or area"),
        ("latency=0", "latency must be a positive finite number, got 0"),
        ("latency=-5", "latency must be a positive finite number, got -5"),
        ("energy=-1uJ", "energy must be a positive finite number"),
        ("latency=inf", "latency must be a positive finite number, got inf"),
        ("latency=nan", "latency must be a positive finite number, got nan"),
        ("area=1e400mm2", "area must be a positive finite number"),
        ("latency=fast", "'fast' is not a number"),
        ("", "spec '': empty (expected key=value items"),
        ("   ", "empty (expected key=value items"),
        ("latency=1e6,,area=1mm2", "empty item between commas"),
        ("latency=1e6,", "empty item between commas"),
        ("latency", "spec 'latency': expected key=value"),
        ("latency=1e6,latency=2e6", "latency is given twice"),
        ("digits.area=1mm2", "area is a system limit (per task: latency, energy)"),
        (".latency=1e6", "empty task name before '.latency'"),
    ],
)
def test_bad_strings_are_one_line_naming_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(CoexploreError) as info:
        Spec.parse(text)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_unknown_task_prefix_is_refused_only_when_tasks_are_given() -> None:
    assert Spec.parse("segm.latency=1e6").tasks == (("segm", Limits(latency_cycles=1e6)),)
    with pytest.raises(
        CoexploreError,
        match=r"^spec 'segm.latency=1e6': unknown task 'segm' "
        r"\(expected one of digits, seg\)$",
    ):
        Spec.parse("latency=2e6,segm.latency=1e6", tasks=["digits", "seg"])


def test_check_ratios_violation_and_margin() -> None:
    spec = Spec.parse("latency=1000,energy=2nJ,area=1mm2,a.latency=500,b.energy=1nJ")
    check = spec.check(
        makespan_cycles=800,
        energy_pj=1000,
        area_um2=1.2e6,
        task_latency_cycles={"a": 400, "b": 800},
        task_energy_pj={"a": 600, "b": 400},
    )
    assert dict(check.ratios) == pytest.approx(
        {"latency": 0.8, "energy": 0.5, "area": 1.2, "a.latency": 0.8, "b.energy": 0.4}
    )
    assert not check.met and check.binding == "area"
    assert check.violation == pytest.approx(0.2) and check.margin == pytest.approx(-0.2)
    ok = spec.check(
        makespan_cycles=500,
        energy_pj=1000,
        area_um2=0.9e6,
        task_latency_cycles={"a": 250, "b": 500},
        task_energy_pj={"a": 500, "b": 500},
    )
    assert ok.met and ok.violation == 0.0 and ok.margin == pytest.approx(0.1)  # area 0.9 binds
    exact = Spec.parse("latency=1000").check(makespan_cycles=1000, energy_pj=0, area_um2=0, task_latency_cycles={})
    assert exact.met and exact.margin == 0.0 and exact.violation == 0.0


def test_check_without_limits_and_with_missing_task_figures() -> None:
    free = Spec(Limits()).check(makespan_cycles=1e9, energy_pj=1e9, area_um2=1e9, task_latency_cycles={})
    assert free.met and free.ratios == () and free.margin == 1.0 and free.binding == ""
    with pytest.raises(CoexploreError, match="spec limits seg.latency, but no latency of task 'seg' was given"):
        Spec.parse("seg.latency=1e6").check(makespan_cycles=1, energy_pj=1, area_um2=1, task_latency_cycles={"a": 1})
    with pytest.raises(CoexploreError, match="no energy of task 'seg'"):
        Spec.parse("seg.energy=1uJ").check(makespan_cycles=1, energy_pj=1, area_um2=1, task_latency_cycles={"seg": 1})


positive = st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False)


@given(positive, positive, positive, positive)
def test_to_text_round_trips_any_limits(lat: float, energy: float, area: float, task_lat: float) -> None:
    spec = Spec(Limits(lat, energy, area), (("t1", Limits(latency_cycles=task_lat, energy_pj=energy)),))
    assert Spec.parse(spec.to_text()) == spec
    assert Spec.parse(spec.to_text(), tasks=["t1"]) == spec


def test_candidate_is_a_plain_hashable_value() -> None:
    from coexplore.dataflows.system import get_system

    check = SpecCheck(met=True, ratios=(("latency", 0.5),))
    cand = Candidate(
        archs=(TaskChoice("digits", "cnn", (1, 0, 2)),),
        system=get_system("nasaic-pair"),
        assignment=(0, 1),
        schedule=None,
        makespan_cycles=10.0,
        task_latency_cycles=(("digits", 10.0),),
        energy_pj=5.0,
        area_um2=1.0,
        check=check,
    )
    assert cand.feasible and hash(cand) == hash(cand)
    with pytest.raises(AttributeError):
        cand.energy_pj = 1.0  # type: ignore[misc]
