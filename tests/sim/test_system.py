"""System values and YAML, and the system model: units, roofline durations, DRAM sharing, transfers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "codesign"))
from system_helpers import tiny_networks, toy_costs  # noqa: E402

from coexplore.dataflows.io import get_template  # noqa: E402
from coexplore.dataflows.spec import Accelerator, SpecError  # noqa: E402
from coexplore.dataflows.system import (  # noqa: E402
    BandwidthSharing,
    Budget,
    Link,
    System,
    array_shape,
    builtin_systems,
    get_system,
    load_system,
)
from coexplore.sim.system import (  # noqa: E402
    BW_SCALE,
    CostTable,
    Policy,
    ScheduleError,
    build_problem,
    simulate,
    synthetic_problem,
)

GOOD = """
name: my-pair
budget: {pes: 4096, dram_bw_bytes_per_cycle: 64}
bandwidth: partitioned
sub_accelerators:
  - {name: dla, template: nvdla, rows: 32, cols: 64, dram_bw_bytes_per_cycle: 40}
  - {name: sdn, template: shidiannao, pes: 2048, dram_bw_bytes_per_cycle: 24}
"""


def _acc(template: str, rows: int, cols: int, name: str = "", bw: float | None = None) -> Accelerator:
    return Accelerator(get_template(template), rows, cols, name=name, dram_bw_bytes_per_cycle=bw)


def test_shipped_systems_load_and_respect_their_budgets() -> None:
    shipped = builtin_systems()
    assert {"nasaic-pair", "dla-sdn-shared", "tri-template"} <= set(shipped)
    pair = shipped["nasaic-pair"]
    assert pair.templates == ("nvdla", "shidiannao") and pair.pes == 4096
    assert pair.budget.pes == 4096 and pair.budget.dram_bw_bytes_per_cycle == 64
    assert pair.sharing is BandwidthSharing.PARTITIONED
    assert sum(pair.port_bw_bytes_per_cycle(i) for i in range(2)) <= 64
    assert len(set(shipped["tri-template"].templates)) == 3


def test_system_yaml_with_pes_shortcut(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    system = load_system(path)
    assert [a.name for a in system.accelerators] == ["dla", "sdn"]
    assert (system.accelerators[1].rows, system.accelerators[1].cols) == (32, 64)
    assert system.port_bw_bytes_per_cycle(0) == 40 and get_system(str(path)).name == "my-pair"
    assert array_shape(3072) == (32, 96) and array_shape(1024) == (32, 32)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (GOOD.replace("bandwidth: partitioned", "bandwith: partitioned"), "unknown field 'bandwith'"),
        (GOOD.replace("template: nvdla", "template: tpu"), "sub_accelerators.0: unknown template 'tpu'"),
        (GOOD.replace("rows: 32", "rows: -32"), "field 'sub_accelerators.0.rows' = -32"),
        (GOOD.replace("pes: 2048", "pes: -512"), "field 'sub_accelerators.1.pes' = -512"),
        (GOOD.replace("pes: 2048", "pes: 2048, rows: 4"), "give rows and cols, or pes, not both"),
        (GOOD.replace("pes: 4096", "pes: 3000"), "PE budget 3000 exceeded: sub-accelerators need 4096 PEs"),
        (
            GOOD.replace("dram_bw_bytes_per_cycle: 24", "dram_bw_bytes_per_cycle: 40"),
            "bandwidth budget 64 bytes/cycle exceeded: sub-accelerators need 80 bytes/cycle",
        ),
        (GOOD.replace("name: sdn", "name: dla"), "sub-accelerator name(s) dla used twice"),
        ("name: x\nbudget: [1\n", "malformed YAML"),
        (
            GOOD.replace("budget: {pes: 4096, dram_bw_bytes_per_cycle: 64}", "budget: {pes: 4096}"),
            "missing required field 'budget.dram_bw_bytes_per_cycle'",
        ),
    ],
)
def test_bad_system_yaml_is_one_line_naming_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_system(path)
    message = str(info.value)
    assert fragment in message and "\n" not in message and str(path) in message


def test_shared_port_wider_than_the_pool_is_refused() -> None:
    with pytest.raises(SpecError, match="sub-accelerator 'a' has a 96 bytes/cycle port"):
        System("s", (_acc("nvdla", 8, 8, "a", 96.0),), Budget(dram_bw_bytes_per_cycle=64))


def test_area_budget_is_checked_against_the_cost_model() -> None:
    system = System("s", (_acc("nvdla", 16, 16),), Budget(dram_bw_bytes_per_cycle=64, area_um2=1000.0))
    with pytest.raises(SpecError, match=r"area budget 0.001 mm2 exceeded: sub-accelerators need"):
        build_problem(tiny_networks(), system, toy_costs)


def test_units_fuse_pooling_group_segments_and_carry_edge_bytes() -> None:
    nets = tiny_networks()
    system = System(
        "s", (_acc("nvdla", 16, 16, "dla"), _acc("shidiannao", 16, 16, "sdn")), Budget(dram_bw_bytes_per_cycle=16)
    )
    problem = build_problem(nets, system, toy_costs)
    names = [u.name for u in problem.units]
    assert "cnn:c2..p" in names and len(problem.units) == 3 + 4  # pooling rode with c2
    c2 = names.index("cnn:c2..p")
    fc = names.index("cnn:fc")
    e = problem.edges.index((c2, fc))
    assert problem.edge_bytes[e] == nets[0].layers[2].output_words  # the pool's output, 8-bit words
    assert problem.transfer_cycles(e) == system.link.latency_cycles + int(np.ceil(problem.edge_bytes[e] / 32))
    grouped = build_problem(nets, system, toy_costs, max_units_per_task=2)
    assert [len(u) for u in grouped.task_units()] == [2, 2]
    # depthwise runs best on sdn and pointwise on dla: grouping keeps a (dw, pw) pair together,
    # never a pw with the next dw
    mbv = [u for u in grouped.units if u.task == 1]
    assert [(u.first, u.last) for u in mbv] in ([(0, 1), (2, 3)], [(0, 0), (1, 3)], [(0, 2), (3, 3)])


def test_durations_follow_the_roofline_at_each_port() -> None:
    nets = tiny_networks()[:1]
    system = System("s", (_acc("nvdla", 16, 16, "a", 1.0),), Budget(dram_bw_bytes_per_cycle=1.0))
    table = toy_costs(nets[0].layers, system.accelerators)
    problem = build_problem(nets, system, table, fuse=False)
    for u in range(problem.n_units):
        expect = max(np.ceil(table.compute_cycles[0, u]), np.ceil(table.dram_bytes[0, u] / 1.0))
        assert problem.duration_cycles[u, 0] == expect
        assert problem.bw_demand[u, 0] <= BW_SCALE  # never more than the port


def test_reserved_policy_serializes_what_the_pool_cannot_hold() -> None:
    # two units, one per accelerator, each drawing 0.6 of the pool: they cannot overlap
    problem = synthetic_problem(
        np.array([[10, 99], [99, 10]]),
        [],
        [0, 1],
        bw_demand=np.array([[6.0, 6.0], [6.0, 6.0]]),
        pool_bw_bytes_per_cycle=10.0,
    )
    r = simulate(problem, [0, 1], policy=Policy.RESERVED)
    assert r.makespan_cycles == 20 and r.contention.bw_wait_cycles == 10
    assert r.contention.peak_bw_bytes_per_cycle == 6.0


def test_fair_policy_splits_the_pool_and_slows_both() -> None:
    # each unit alone would draw 10 B/cycle for 10 cycles; together they get 5 each and take 20
    problem = synthetic_problem(
        np.array([[10, 99], [99, 10]]),
        [],
        [0, 1],
        bw_demand=np.array([[10.0, 10.0], [10.0, 10.0]]),
        pool_bw_bytes_per_cycle=10.0,
    )
    r = simulate(problem, [0, 1], policy=Policy.FAIR)
    assert r.makespan_cycles == pytest.approx(20.0)
    assert r.contention.slowdown_cycles == pytest.approx(20.0)
    assert r.contention.peak_bw_bytes_per_cycle == pytest.approx(10.0)


def test_fair_policy_gives_unused_share_to_the_hungrier_unit() -> None:
    # unit 0 wants 2 of 10 B/cycle, unit 1 wants 10: max-min fair gives 2 and 8
    problem = synthetic_problem(
        np.array([[10, 99], [99, 10]]),
        [],
        [0, 1],
        bw_demand=np.array([[2.0, 2.0], [10.0, 10.0]]),
        pool_bw_bytes_per_cycle=10.0,
    )
    r = simulate(problem, [0, 1], policy=Policy.FAIR)
    assert r.timings[0].end_cycle == pytest.approx(10.0)
    # 10 cycles at 8/10 speed leaves 2 cycles of work, then full speed
    assert r.timings[1].end_cycle == pytest.approx(12.0)


def test_transfers_delay_consumers_and_cost_energy() -> None:
    link = Link(bw_bytes_per_cycle=4.0, latency_cycles=3, energy_pj_per_byte=0.5)
    problem = synthetic_problem(
        np.array([[5, 5], [5, 5]]), [(0, 1)], [0, 0], edge_bytes=[8.0], link=link, energy_pj=np.ones((2, 2))
    )
    same = simulate(problem, [0, 0])
    apart = simulate(problem, [0, 1])
    assert same.makespan_cycles == 10 and same.transfers == 0
    assert apart.makespan_cycles == 10 + 3 + 2 and apart.transfers == 1
    assert apart.energy_pj == pytest.approx(2.0 + 8 * 0.5)
    assert apart.task_latency_cycles == (15.0,)


def test_orders_against_dependencies_deadlock_with_one_line() -> None:
    problem = synthetic_problem(np.array([[5], [5]]), [(0, 1)], [0, 0])
    with pytest.raises(ScheduleError, match="the order deadlocks"):
        simulate(problem, [0, 0], [[1, 0]])
    with pytest.raises(ScheduleError, match="assigned to accelerator 3"):
        simulate(problem, [0, 3])


def test_analytical_costs_on_a_zoo_network() -> None:
    from coexplore.models.zoo import get_network
    from coexplore.sim.system import analytical_costs

    problem = build_problem([get_network("resnet9")], get_system("nasaic-pair"), analytical_costs())
    assert problem.n_accs == 2 and problem.n_units == len(get_network("resnet9").compute_layers())
    assert (problem.duration_cycles > 0).all() and (problem.energy_pj > 0).all()
    assert not problem.bandwidth_binds  # partitioned slices never oversubscribe the pool
    fastest = [int(a) for a in problem.duration_cycles.argmin(axis=1)]
    r = simulate(problem, fastest)
    work = float(problem.duration_cycles.min(axis=1).sum())
    transfers = sum(problem.transfer_cycles(e) for e in range(len(problem.edges)))
    assert work <= r.makespan_cycles <= work + transfers  # a chain of units: work plus any hand-offs
    assert r.area_um2 == pytest.approx(float(np.sum(problem.area_um2)))


def test_cost_table_shapes_are_checked() -> None:
    with pytest.raises(Exception, match="area_um2 has shape"):
        CostTable(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3))


def test_cycle_simulator_costs_on_request() -> None:
    from coexplore.sim.cycle import simulate_layer
    from coexplore.sim.system import cycle_costs

    layers = [l for l in tiny_networks()[0].layers if l.kind.has_macs][:2]
    acc = _acc("systolic-ws", 8, 8)
    table = cycle_costs()(layers, [acc])
    for j, layer in enumerate(layers):
        sim = simulate_layer(layer, acc)
        assert table.compute_cycles[0, j] == sim.total_cycles
        assert table.dram_bytes[0, j] == pytest.approx(sim.dram_reads + sim.dram_writes)
    assert (table.energy_pj > 0).all() and table.area_um2.shape == (1,)


# ---- one cost model: a unit's duration is the analytical model's own figure at its port ------------
def _port_acc(system: System, a: int, level: float = 1.0) -> Accelerator:
    from dataclasses import replace

    return replace(
        system.accelerators[a], dram_bw_bytes_per_cycle=system.port_bw_bytes_per_cycle(a) * level, dram_ports="shared"
    )


@pytest.mark.parametrize("system_name", ["nasaic-pair", "dla-sdn-shared"])
def test_single_layer_units_take_the_analytical_model_cycles_at_each_port(system_name: str) -> None:
    from coexplore.models.zoo import get_network
    from coexplore.sim.analytical import evaluate_batch
    from coexplore.sim.system import analytical_costs

    system = get_system(system_name)
    nets = [get_network("resnet9"), get_network("unet")]
    layers = [l for net in nets for l in net.layers]
    problem = build_problem(nets, system, analytical_costs(), fuse=False)
    assert problem.n_units == len(layers) and problem.n_accs == 2
    if system.sharing is BandwidthSharing.SHARED:
        assert problem.bw_levels == (1.0, 0.5, 0.25)  # the pool binds: slower modes are offered
    for m, level in enumerate(problem.bw_levels):
        accs = [_port_acc(system, a, level) for a in range(2)]
        model = evaluate_batch(layers, accs).latency_cycles  # (accs, layers)
        for u in range(problem.n_units):
            for a in range(2):
                if m == 0 or problem.mode_allowed(m, u, a):
                    assert problem.mode_duration_cycles[m, u, a] == max(1, np.ceil(model[a, u])), (m, u, a)


def test_single_accelerator_system_matches_coexplore_evaluate() -> None:
    import json

    from click.testing import CliRunner

    from coexplore.cli import cli
    from coexplore.models.zoo import get_network
    from coexplore.sim.analytical import evaluate_network
    from coexplore.sim.system import evaluate_system

    acc = Accelerator(get_template("nvdla"), 32, 32, dram_bw_bytes_per_cycle=16.0, dram_ports="shared", name="dla")
    system = System("one", (acc,), Budget(dram_bw_bytes_per_cycle=16.0))
    for name in ("resnet9", "unet"):
        net = get_network(name)
        out = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--model",
                name,
                "--template",
                "nvdla",
                "--rows",
                "32",
                "--cols",
                "32",
                "--dram-bw",
                "16",
                "--dram-ports",
                "shared",
                "--json",
            ],
        )
        assert out.exit_code == 0, out.output
        cli_layers = [l["latency_cycles"] for l in json.loads(out.output)["layers"]]
        assert cli_layers == [
            math.ceil(l.latency_cycles) for l in evaluate_network(net, acc).layers
        ]  # JSON: whole cycles
        for fuse in (False, True):
            r = evaluate_system([net], system, fuse=fuse)
            # one sub-accelerator runs the layers one after another: the network latency, each layer
            # rounded up to whole cycles
            assert r.makespan_cycles == sum(np.ceil(cli_layers))
            assert abs(r.makespan_cycles - sum(cli_layers)) < len(cli_layers)


def test_a_ready_bandwidth_bound_table_cannot_supply_slower_modes() -> None:
    from coexplore.sim.system import analytical_costs, port_accelerators

    nets = tiny_networks()
    system = get_system("dla-sdn-shared")
    table = analytical_costs()([l for n in nets for l in n.layers], port_accelerators(system))
    assert table.bandwidth_bound
    with pytest.raises(Exception, match="ready cost table holds cycles at full port bandwidth only"):
        build_problem(nets, system, table, fuse=False)
    problem = build_problem(nets, system, table, fuse=False, bw_levels=None)
    assert problem.duration_cycles[:, 0].tolist() == np.maximum(1, np.ceil(table.compute_cycles[0])).tolist()
