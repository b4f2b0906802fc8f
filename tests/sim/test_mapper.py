"""The per-layer mapper: candidates from the template YAML, the choice both tiers run, layer precision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coexplore.dataflows.io import get_profile, get_template, parse_dataflow
from coexplore.dataflows.mapping import LayerMapping, candidate_mappings
from coexplore.dataflows.spec import Accelerator, SpecError
from coexplore.models.ir import Dim, Network, OpKind, conv, gemm
from coexplore.sim.analytical import choose_mapping, evaluate_batch, evaluate_layer, evaluate_network
from coexplore.sim.cycle import simulate_layer


def _acc(template: str, rows: int = 32, cols: int = 32, kb: float = 64.0, bw: float | None = 16.0, **kw) -> Accelerator:
    return Accelerator(
        get_template(template),
        rows,
        cols,
        ifmap_sram_kb=kb,
        filter_sram_kb=kb,
        ofmap_sram_kb=kb,
        dram_bw_bytes_per_cycle=bw,
        **kw,
    )


def test_generated_hardware_gets_only_its_own_mapping_and_residency() -> None:
    rtl = get_profile("rtl")
    for name in ("systolic-ws", "systolic-os", "eyeriss", "shidiannao"):
        df = get_template(name)
        for kind in (OpKind.CONV, OpKind.LINEAR):
            (only,) = candidate_mappings(df, kind, rtl)
            assert only == LayerMapping(df.mapping_for(kind), True, 0)
    # a template the RTL generator does not emit (no override in profile rtl): the mapper chooses
    other = replace(get_template("shidiannao"), name="my-shidiannao")
    assert len(candidate_mappings(other, OpKind.CONV, rtl)) > 1


def test_eyeriss_maps_linear_layers_with_tokens_streamed_near_the_mac_bound() -> None:
    layer = gemm("fc", 128, 768, 768)
    acc = _acc("eyeriss", bw=None)
    m = evaluate_layer(layer, acc, "ideal")
    assert m.latency_cycles < 1.1 * layer.macs / acc.pes  # was 32x the MAC bound (T = 1 per fold)
    assert m.mapping.startswith("rows=C cols=K T=P")
    # profile rtl: the generated row-stationary array has no such mapping, and the model says so
    assert evaluate_layer(layer, acc, "rtl").latency_cycles > 30 * layer.macs / acc.pes


def test_replication_over_output_channels_fills_the_array_on_small_maps() -> None:
    layer = conv("c", c=64, k=64, h=8, r=3, pad=1)
    for name in ("shidiannao", "eyeriss"):
        acc = _acc(name, bw=None)
        own_mapping = candidate_mappings(acc.dataflow, layer.kind, get_profile("ideal"))[0]
        own = simulate_layer(layer, acc, "ideal", mapping=own_mapping)
        m = evaluate_layer(layer, acc, "ideal")
        assert "K" in m.mapping.split()[0] + m.mapping.split()[1], m.mapping  # K replicated on rows or cols
        assert m.utilization > 3 * own.macs / (acc.pes * own.total_cycles), name


def test_the_spill_cliff_goes_when_the_mapper_may_tile_the_stream() -> None:
    """systolic-ws 32x32, 64 kB, conv 64->128 on 32x32 at 16 B/cycle (the issue's case: 1.15 M cycles at
    64 kB of ofmap, 88.9 k at 256 kB). In profile ideal the mapper streams one output row per fold. In
    profile rtl the generated array runs the layer as host-planned calls (``dataflows.tiling``) set by
    its 2 kB per-row input replica (the fewest-cycles plan: 212,509 cycles, 687,431 under the earlier
    fewest-calls rule), so a bigger ofmap buffer changes nothing: no cliff either way."""
    layer = conv("c", c=64, k=128, h=32, r=3, pad=1)
    small, big = _acc("systolic-ws", kb=64), replace(_acc("systolic-ws", kb=64), ofmap_sram_kb=256.0)
    rtl_small = evaluate_layer(layer, small, "rtl").latency_cycles
    ideal_small = evaluate_layer(layer, small, "ideal")
    assert (
        rtl_small
        == evaluate_layer(layer, big, "rtl").latency_cycles
        == simulate_layer(layer, small, "rtl").total_cycles
    )
    assert ideal_small.latency_cycles < rtl_small and "T=Q" in ideal_small.mapping


@pytest.mark.parametrize(
    "template, layer",
    [
        ("eyeriss", gemm("fc", 40, 72, 48)),
        ("shidiannao", conv("c", c=24, k=32, h=6, r=3, pad=1)),
        ("systolic-ws", conv("c", c=16, k=40, h=12, r=3, pad=1)),
        ("nvdla", conv("c", c=40, k=24, h=14, r=3)),
    ],
)
@pytest.mark.parametrize("bw", [None, 2.0, 16.0])
def test_both_tiers_cost_the_same_choice(template: str, layer, bw: float | None) -> None:
    acc = _acc(template, rows=8, cols=8, kb=2.0, bw=bw)
    chosen = choose_mapping(layer, acc, "ideal")
    ana = evaluate_layer(layer, acc, "ideal")
    sim = simulate_layer(layer, acc, "ideal")
    assert ana.mapping == chosen.describe()
    assert sim.total_cycles == pytest.approx(ana.latency_cycles, rel=0.05)
    if bw is None:
        assert sim.total_cycles == ana.latency_cycles


def test_alternatives_are_read_from_a_users_template() -> None:
    df = parse_dataflow(
        {
            "name": "mine",
            "description": "x",
            "stationary": "weight",
            "interconnect": "broadcast",
            "mapping": {"rows": {"dims": ["C"]}, "cols": {"dims": ["K"]}, "temporal": ["N", "P", "Q", "R", "S"]},
            "alternatives": [
                {"kinds": ["conv"], "rows": {"dims": ["C"]}, "cols": {"dims": ["K"]}, "temporal": ["Q", "R", "S"]}
            ],
        }
    )
    assert [m.temporal for m in df.mappings_for(OpKind.CONV)] == [
        (Dim.N, Dim.P, Dim.Q, Dim.R, Dim.S),
        (Dim.Q, Dim.R, Dim.S),
    ]
    assert len(df.mappings_for(OpKind.LINEAR)) == 1
    with pytest.raises(SpecError, match="more than once"):
        parse_dataflow(
            {
                "name": "bad",
                "description": "x",
                "stationary": "weight",
                "interconnect": "broadcast",
                "mapping": {"rows": {"dims": ["C"]}, "cols": {"dims": ["K"]}, "temporal": ["P"]},
                "alternatives": [
                    {"kinds": ["conv"], "rows": {"dims": ["C"]}, "cols": {"dims": ["C"]}, "temporal": ["P"]}
                ],
            }
        )


# ---- precision per layer ---------------------------------------------------------------------------
def test_a_mixed_precision_network_costs_less_than_its_int8_twin() -> None:
    acc = _acc("shidiannao", rows=16, cols=16, kb=16.0, bw=4.0)
    acc = replace(acc, dataflow=replace(acc.dataflow, name="my-shidiannao"))  # no RTL generator: the model's widths
    int8 = Network.chain("n8", [conv("a", c=32, k=64, h=16, r=3, pad=1), conv("b", c=64, k=64, h=16, r=3, pad=1)])
    mixed = Network.chain(
        "n4", [conv("a", c=32, k=64, h=16, r=3, pad=1), conv("b", c=64, k=64, h=16, r=3, pad=1, bits=4)]
    )
    for prof in ("rtl", "ideal"):
        m8, m4 = evaluate_network(int8, acc, prof), evaluate_network(mixed, acc, prof)
        assert m4.layers[0] == m8.layers[0]
        assert m4.layers[1].energy_breakdown_pj["mac"] < 0.6 * m8.layers[1].energy_breakdown_pj["mac"]
        if prof == "ideal":  # profile rtl keeps sub-byte operands in whole bytes, as the RTL does
            assert m4.layers[1].dram_read_bytes < m8.layers[1].dram_read_bytes
        assert m4.energy_pj < m8.energy_pj and m4.latency_cycles <= m8.latency_cycles
        sim4 = simulate_layer(mixed.layers[1], acc, prof)
        assert sim4.dram_read_bytes["weight"] == pytest.approx(m4.layers[1].dram_read_bytes / 2, rel=1.0)


def test_a_layer_wider_than_the_accelerator_is_refused_in_one_line() -> None:
    acc = _acc("nvdla", input_bits=8, weight_bits=8)
    wide = conv("wide", c=8, k=8, h=8, r=3, bits=16)
    for call in (
        lambda: evaluate_layer(wide, acc, "ideal"),
        lambda: simulate_layer(wide, acc, "ideal"),
        lambda: evaluate_batch(
            [wide], [replace(acc, dataflow=replace(get_template("shidiannao"), name="my-sdn"))], "rtl"
        ),
    ):
        with pytest.raises(SpecError) as err:
            call()
        assert "'wide' needs 16-bit inputs" in str(err.value) and "\n" not in str(err.value)


def test_generated_hardware_stores_operands_at_its_own_widths() -> None:
    """Profile rtl on a template the RTL generator emits: the hardware stores operands at the
    accelerator's widths whatever the layer's, so layer bits change nothing there (docs/rtl.md)."""
    acc = _acc("systolic-ws", rows=8, cols=8, kb=16.0, bw=4.0)
    a, b = conv("a", c=16, k=16, h=8, r=3), conv("a", c=16, k=16, h=8, r=3, bits=4)
    assert evaluate_layer(a, acc, "rtl") == evaluate_layer(b, acc, "rtl")
    assert evaluate_layer(b, acc, "ideal").energy_pj < evaluate_layer(a, acc, "ideal").energy_pj
