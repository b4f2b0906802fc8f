"""best_hardware: the space, sound bounds (against schedules and brute force), pruning, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coexplore.codesign.hardware import HardwareSpace, array_rows, best_hardware, evaluate_on_system, space_bounds
from coexplore.codesign.problem import Limits, Spec
from coexplore.codesign.schedule import solve_exact, solve_greedy
from coexplore.dataflows.system import BandwidthSharing, array_shape, get_system
from coexplore.models.ir import CoexploreError, Layer, Network, OpKind, conv, gemm
from coexplore.sim.system import analytical_costs, build_problem, simulate

TINY = HardwareSpace(
    pe_budget=256,
    dram_bw_budget_bytes_per_cycle=8.0,
    templates=("nvdla", "shidiannao", "systolic-ws"),
    pe_splits=(0.5,),
    bw_splits=(0.5,),
    aspect_ratios=(1,),
    sram_kb=(16.0,),
)
SMALL = HardwareSpace(
    pe_budget=256,
    dram_bw_budget_bytes_per_cycle=8.0,
    templates=("nvdla", "shidiannao", "eyeriss"),
    pe_splits=(0.25, 0.5),
    bw_splits=(0.25, 0.5),
    aspect_ratios=(1, 4),
    sram_kb=(16.0,),
)
NAMES = ["a", "b"]


def _random_net(rng: np.random.Generator, name: str) -> Network:
    """A small CNN: 2-3 convolutions (some 1x1, maybe a depthwise one), maybe a pooling layer, a
    classifier; a chain, with a skip edge when it is long enough."""
    c, h = int(rng.choice([3, 8, 16])), int(rng.choice([8, 16]))
    layers: list[Layer] = []
    for i in range(int(rng.integers(2, 4))):
        if i > 0 and rng.random() < 0.3:
            layers.append(conv(f"dw{i}", c, c, h, pad=1, groups=c))
            continue
        k, r = int(rng.choice([8, 16, 32])), int(rng.choice([1, 3]))
        layers.append(conv(f"c{i}", c, k, h, r=r, pad=r // 2))
        c = k
    if rng.random() < 0.5:
        layers.append(Layer("p", OpKind.POOL, k=c, c=c, h=h, w=h, r=2, s=2, stride_h=2, stride_w=2, groups=c))
        h //= 2
    layers.append(gemm("fc", 1, c * h * h, 10))
    edges = [(i, i + 1) for i in range(len(layers) - 1)]
    if len(layers) >= 4:
        edges.append((0, 2))
    return Network(name, tuple(layers), tuple(sorted(edges)))


def _pair(seed: int) -> list[Network]:
    rng = np.random.default_rng(seed)
    return [_random_net(rng, "a"), _random_net(rng, "b")]


# ---- the space --------------------------------------------------------------------------------------
def test_array_rows_square_matches_array_shape_and_wide_is_wider() -> None:
    for pes in range(16, 4097, 16):
        assert (array_rows(pes, 1), pes // array_rows(pes, 1)) == array_shape(pes)
        rows = array_rows(pes, 4)
        assert pes % rows == 0 and (pes // rows) >= 4 * rows
    assert (array_rows(1024, 1), array_rows(1024, 4), array_rows(768, 4)) == (32, 16, 8)


def test_space_enumerates_distinct_systems_within_budget() -> None:
    assert TINY.size() == 3 + 6  # three singles; pairs of three templates, with repetition
    space = HardwareSpace()
    systems = list(space.systems())
    assert len(systems) == space.size() > 1000
    seen = set()
    for s in systems:
        assert s.pes <= space.pe_budget and 1 <= len(s.accelerators) <= space.max_accelerators
        assert sum(a.dram_bw_bytes_per_cycle for a in s.accelerators) <= space.dram_bw_budget_bytes_per_cycle + 1e-9
        assert s.sharing is BandwidthSharing.PARTITIONED
        assert all(a.dram_ports == "shared" for a in s.accelerators)
        key = tuple(
            sorted(
                (a.dataflow.name, a.rows, a.cols, a.ifmap_sram_kb, a.dram_bw_bytes_per_cycle) for a in s.accelerators
            )
        )
        assert key not in seen
        seen.add(key)
    assert {a.dataflow.name for s in systems for a in s.accelerators} == set(space.template_names)
    assert [s.name for s in HardwareSpace().systems()][:50] == [s.name for s in systems[:50]]  # fixed order


def test_every_bandwidth_slice_is_a_stream_width_the_rtl_builds() -> None:
    """A 16 B/cycle budget split 3:1 gave a 12 B/cycle slice (the demo's best.yaml), which the RTL
    generator refuses; slices are rounded down to powers of two, so every system the search can
    pick is one ``coexplore rtl --design`` emits."""
    from coexplore.rtl.params import stream_bytes_of

    space = HardwareSpace(pe_budget=512, dram_bw_budget_bytes_per_cycle=16.0)
    widths = {a.dram_bw_bytes_per_cycle for s in space.systems() for a in s.accelerators}
    assert widths == {4.0, 8.0, 16.0}
    for s in space.systems():
        for a in s.accelerators:
            assert stream_bytes_of(a) == a.dram_bw_bytes_per_cycle
        assert sum(a.dram_bw_bytes_per_cycle for a in s.accelerators) <= 16.0


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"pe_splits": (1.5,)}, "pe_splits 1.5"),
        ({"bw_splits": (0.0,)}, "bw_splits 0.0"),
        ({"pe_budget": 8}, "PE budget 8"),
        ({"dram_bw_budget_bytes_per_cycle": -1.0}, "bandwidth budget -1.0"),
        ({"max_accelerators": 0}, "max_accelerators 0"),
        ({"aspect_ratios": (0,)}, "aspect ratio 0"),
        ({"sram_kb": (0.0,)}, "scratchpad 0.0 kB"),
    ],
)
def test_bad_spaces_are_refused(kwargs: dict, fragment: str) -> None:
    with pytest.raises(CoexploreError, match=fragment):
        HardwareSpace(**kwargs)


# ---- bounds are sound -------------------------------------------------------------------------------
@pytest.mark.heavy
@pytest.mark.parametrize("seed", range(3))
def test_bounds_never_exceed_the_scheduled_figures_of_any_system(seed: int) -> None:
    nets = _pair(seed)
    b = space_bounds(nets, SMALL)
    assert len(b.area_um2) == SMALL.size()
    costs = analytical_costs()  # an independent provider: the bounds must hold for build_problem's own costs
    for i, system in enumerate(SMALL.systems()):
        problem = build_problem(nets, system, costs)
        r = solve_greedy(problem, time_limit_s=5.0, iterations=40, seed=0).result
        assert b.area_um2[i] == pytest.approx(r.area_um2, rel=1e-12)
        assert b.makespan_cycles[i] <= r.makespan_cycles, system.name
        assert b.energy_pj[i] <= r.energy_pj * (1 + 1e-12), system.name
        assert (b.task_latency_cycles[i] <= np.array(r.task_latency_cycles)).all(), system.name
        assert (b.task_energy_pj[i] <= np.array(r.task_energy_pj) * (1 + 1e-12)).all(), system.name


def _optimal_makespan(problem) -> float:
    res = solve_exact(problem, time_limit_s=30, workers=2)
    assert res.status == "optimal"
    return res.objective_value


def _least_energy(problem) -> float:
    """Brute force over every assignment: unit energies plus link transfers between sub-accelerators."""
    best = np.inf
    options = [[a for a in range(problem.n_accs) if problem.allowed[u, a]] for u in range(problem.n_units)]
    for assign in itertools.product(*options):
        e = sum(problem.energy_pj[u, a] for u, a in enumerate(assign))
        e += sum(problem.transfer_energy_pj(k) for k, (p, c) in enumerate(problem.edges) if assign[p] != assign[c])
        best = min(best, e)
    return float(best)


@pytest.mark.heavy
@pytest.mark.parametrize("seed", range(2))
def test_bounds_hold_against_optimal_schedules(seed: int) -> None:
    nets = _pair(10 + seed)
    b = space_bounds(nets, TINY)
    for i, system in enumerate(TINY.systems()):
        problem = build_problem(nets, system, analytical_costs())
        assert b.makespan_cycles[i] <= _optimal_makespan(problem), system.name
        assert b.energy_pj[i] <= _least_energy(problem) * (1 + 1e-12), system.name


@pytest.mark.heavy
@pytest.mark.parametrize("limit", ["latency", "energy"])
def test_a_proven_infeasible_tuple_is_infeasible_on_every_system(limit: str) -> None:
    nets = _pair(20)
    b = space_bounds(nets, TINY)
    if limit == "latency":
        value = 0.98 * float(b.makespan_cycles.min())
        spec = Spec(Limits(latency_cycles=value))
    else:
        value = 0.98 * float(b.energy_pj.min())
        spec = Spec(Limits(energy_pj=value))
    res = best_hardware(nets, spec, TINY, task_names=NAMES)
    assert res.proven_infeasible and not res.feasible and res.designs_after_bounds == 0 and res.designs == TINY.size()
    assert res.reason.startswith(f"no design meets {limit}: best lower bound")
    assert res.check.violation > 0  # the closest design still comes back, with its figures
    # brute force: no system of the space meets the limit, under its best schedule / least-energy mapping
    for system in TINY.systems():
        problem = build_problem(nets, system, analytical_costs())
        best = _optimal_makespan(problem) if limit == "latency" else _least_energy(problem)
        assert best > value, system.name
    # just above the best bound, the bounds rule nothing out on that account
    loose = Spec(Limits(**{"latency_cycles" if limit == "latency" else "energy_pj": value / 0.98 * 1.01}))
    res = best_hardware(nets, loose, TINY, task_names=NAMES)
    assert not res.proven_infeasible and res.designs_after_bounds >= 1


def test_task_limits_are_bounded_per_task() -> None:
    nets = _pair(21)
    b = space_bounds(nets, TINY)
    spec = Spec(Limits(), (("b", Limits(latency_cycles=0.9 * float(b.task_latency_cycles[:, 1].min()))),))
    res = best_hardware(nets, spec, TINY, task_names=NAMES)
    assert res.proven_infeasible and "b.latency" in res.reason


# ---- best_hardware on the zoo pair ------------------------------------------------------------------
@pytest.fixture(scope="module")
def zoo_pair() -> list[Network]:
    from coexplore.models.zoo import get_network

    return [get_network("resnet9"), get_network("unet")]


@pytest.mark.heavy
def test_loose_spec_gives_a_feasible_design_whose_figures_replay(zoo_pair: list[Network]) -> None:
    # loose for every design: the slowest (eyeriss with one 64-byte input copy per PE, thousands of
    # calls per layer as the generated hardware runs them) needs 4.4e9 cycles
    spec = Spec.parse("latency=1e12,energy=1e12uJ,area=1000mm2")
    res = best_hardware(zoo_pair, spec, HardwareSpace(), task_names=["cls", "seg"])
    assert res.feasible and res.check.met and not res.proven_infeasible
    assert res.designs == HardwareSpace().size() == res.designs_after_bounds
    assert res.problem.task_names == ("cls", "seg") and set(res.task_latency_cycles) == {"cls", "seg"}
    replay = simulate(
        res.problem, res.assignment, not_before=res.schedule.start_cycles, modes=res.schedule.modes or None
    )
    assert replay.makespan_cycles == res.makespan_cycles and replay.energy_pj == pytest.approx(res.energy_pj)
    assert res.makespan_cycles >= res.makespan_bound_cycles
    assert res.check == spec.check(
        makespan_cycles=res.makespan_cycles,
        energy_pj=res.energy_pj,
        area_um2=res.area_um2,
        task_latency_cycles=res.task_latency_cycles,
        task_energy_pj=res.task_energy_pj,
    )


@pytest.mark.heavy
def test_impossible_latency_is_proven_infeasible(zoo_pair: list[Network]) -> None:
    res = best_hardware(zoo_pair, Spec.parse("latency=1000"), HardwareSpace(), task_names=["cls", "seg"])
    assert res.proven_infeasible and not res.feasible and res.designs_after_bounds == 0
    assert "no design meets latency: best lower bound" in res.reason and "> 1e+03 cycles" in res.reason
    assert res.check.violation > 1000  # the closest design, reported as NAS-then-ASIC would


@pytest.mark.heavy
def test_best_hardware_is_deterministic(zoo_pair: list[Network]) -> None:
    spec = Spec.parse("cls.latency=1.5e6,seg.latency=5e6,area=2mm2")
    runs = [best_hardware(zoo_pair, spec, HardwareSpace(), task_names=["cls", "seg"], seed=3) for _ in range(2)]
    a, b = runs
    assert (a.system.name, a.assignment, a.schedule, a.makespan_cycles, a.energy_pj, a.solver) == (
        b.system.name,
        b.assignment,
        b.schedule,
        b.makespan_cycles,
        b.energy_pj,
        b.solver,
    )
    greedy = best_hardware(zoo_pair, spec, HardwareSpace(), task_names=["cls", "seg"], seed=3, exact=False)
    cost = lambda r: sum(v for _, v in r.check.ratios)  # noqa: E731
    assert cost(a) <= cost(greedy) + 1e-12  # CP-SAT only ever keeps a better design


def test_fixed_system_is_scheduled_and_checked(zoo_pair: list[Network]) -> None:
    system = get_system("nasaic-pair")
    ok = evaluate_on_system(zoo_pair, system, Spec.parse("latency=1e8"), task_names=["cls", "seg"])
    assert ok.feasible and ok.system is system and ok.designs == 1
    bad = evaluate_on_system(zoo_pair, system, Spec.parse("latency=1000"), task_names=["cls", "seg"])
    assert bad.proven_infeasible and not bad.feasible
    assert bad.reason.startswith("the system cannot meet latency: its lower bound")


def test_bad_task_names_are_refused(zoo_pair: list[Network]) -> None:
    with pytest.raises(CoexploreError, match="1 task names for 2 networks"):
        best_hardware(zoo_pair, Spec.parse("latency=1e9"), TINY, task_names=["cls"])
    with pytest.raises(CoexploreError, match="spec limits task 'digits', which is not one of cls, seg"):
        best_hardware(zoo_pair, Spec.parse("digits.latency=1e9"), TINY, task_names=["cls", "seg"])


def test_chosen_systems_write_and_read_back_as_yaml(tmp_path) -> None:
    import yaml

    from coexplore.dataflows.system import load_system, system_to_dict

    for system in itertools.islice(HardwareSpace(bw_splits=(0.3,)).systems(), 0, None, 97):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(system_to_dict(system)))
        back = load_system(path)
        assert back.name == system.name and back.accelerators == system.accelerators
