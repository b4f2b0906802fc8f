"""Analytical model against closed forms, SCALE-Sim's measured cycles, and its own batch path."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from reference_cases import reference_layer

from coexplore.dataflows.io import builtin_templates, get_profile, get_template
from coexplore.dataflows.mapping import fold_timing, plan_folds
from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import CoexploreError, Layer, Network, OpKind, conv, gemm, matmul
from coexplore.sim.analytical import area, evaluate_batch, evaluate_layer, evaluate_network, evaluate_pairs
from coexplore.sim.metrics import AREA_KEYS, ENERGY_KEYS
from coexplore.sim.tech import DEFAULT_TECH
from coexplore.sim.tiled import without_calls

TEMPLATES = sorted(builtin_templates())


def _reference_acc(case: dict, bandwidth: float | None) -> Accelerator:
    kb = case["sram_kb"]
    # SCALE-Sim's words are one byte for every operand, partial sums included.
    return Accelerator(
        dataflow=get_template(f"systolic-{case['dataflow']}"),
        rows=case["array_rows"],
        cols=case["array_cols"],
        ifmap_sram_kb=kb["ifmap"],
        filter_sram_kb=kb["filter"],
        ofmap_sram_kb=kb["ofmap"],
        dram_bw_bytes_per_cycle=bandwidth,
        acc_bits=8,
    )


def test_every_stall_free_scalesim_case_is_exact(scalesim_reference: dict) -> None:
    checked = 0
    for case in scalesim_reference["cases"]:
        if case["stall_cycles"] != 0:
            continue
        m = evaluate_layer(reference_layer(case["layer"]), _reference_acc(case, None), "scalesim")
        assert m.macs == case["layer"]["macs"]
        assert m.latency_cycles == case["compute_cycles"], case
        assert m.compute_cycles == case["compute_cycles"] and m.stall_cycles == 0
        checked += 1
    assert checked == 12


def test_bandwidth_limited_scalesim_cases_stall_in_the_right_direction(scalesim_reference: dict) -> None:
    """10 words/cycle per port: stalls appear, within an order of magnitude of SCALE-Sim, bigger arrays faster."""
    latency: dict[tuple[str, int], float] = {}
    for case in scalesim_reference["cases"]:
        if case["stall_cycles"] == 0:
            continue
        m = evaluate_layer(reference_layer(case["layer"]), _reference_acc(case, 10.0), "scalesim")
        assert m.compute_cycles == case["compute_cycles"] - case["stall_cycles"]  # SCALE-Sim's stall-free count
        assert m.stall_cycles > 0
        assert 0.1 < m.latency_cycles / case["compute_cycles"] < 10, case
        latency[(case["dataflow"], case["array_rows"])] = m.latency_cycles
    assert len(latency) == 6
    for df in ("os", "ws", "is"):
        assert latency[(df, 32)] < latency[(df, 16)]


@pytest.mark.parametrize("name", TEMPLATES)
def test_utilization_is_exactly_one_in_steady_state_when_dims_divide_the_array(name: str) -> None:
    df = get_template(name)
    if name == "eyeriss":  # R=3 filter rows x 4 channels fill 12 rows; P = 8 output rows fill 8 cols
        layer, rows, cols = conv("c", c=8, k=4, h=10, r=3), 12, 8
    else:  # M=256, K=512, N=128 divide 16 x 16 in every GEMM-like mapping
        layer, rows, cols = gemm("g", m=256, k=512, n=128), 16, 16
    acc = Accelerator(dataflow=df, rows=rows, cols=cols)
    profile = get_profile("ideal")
    m = evaluate_layer(layer, acc, profile)
    plan = plan_folds(df.mapping_for(layer.kind), layer.dims(), rows, cols)
    _, once = fold_timing(df.timing, profile, rows, cols, plan.temporal_steps)
    steady = m.latency_cycles - once
    assert m.stall_cycles == 0
    assert layer.macs == acc.pes * steady  # every PE busy every steady-state cycle
    assert m.utilization == pytest.approx(layer.macs / (acc.pes * m.latency_cycles))
    assert m.utilization < 1.0  # ... and the once-paid fill/preload is all that is lost


@pytest.mark.parametrize(
    "layer",
    [
        conv("c", c=3, k=16, h=32, r=3, pad=1),
        conv("s2", c=16, k=32, h=32, r=3, stride=2, pad=1),
        conv("dw", c=32, k=32, h=16, r=3, pad=1, groups=32),
        gemm("fc", m=64, k=256, n=10),
        matmul("qk", m=64, k=48, n=64, batch=4),
    ],
    ids=lambda layer: layer.name,
)
@pytest.mark.parametrize("name", TEMPLATES)
def test_mac_counts_and_no_stalls_with_unlimited_bandwidth(layer: Layer, name: str) -> None:
    acc = Accelerator(dataflow=get_template(name), rows=8, cols=16)
    m = evaluate_layer(layer, acc, "rtl")
    assert m.macs == layer.macs
    assert m.stall_cycles == 0 and m.latency_cycles == m.compute_cycles
    assert m.latency_cycles >= layer.macs / acc.pes
    assert m.utilization == pytest.approx(layer.macs / (acc.pes * m.latency_cycles))
    assert m.dram_write_bytes >= layer.output_words  # every output leaves at least once
    assert m.energy_pj == pytest.approx(sum(m.energy_breakdown_pj.values()))
    assert set(m.energy_breakdown_pj) == set(ENERGY_KEYS)


@pytest.mark.parametrize("name", TEMPLATES)
def test_dram_traffic_is_at_least_compulsory_and_equals_it_with_huge_buffers(name: str) -> None:
    layer = conv("c", c=16, k=32, h=20, r=3)  # stride 1, no padding: every input word is used
    small = Accelerator(dataflow=get_template(name), rows=8, cols=8, ifmap_sram_kb=1, filter_sram_kb=1, ofmap_sram_kb=1)
    huge = Accelerator(
        dataflow=get_template(name), rows=8, cols=8, ifmap_sram_kb=1e5, filter_sram_kb=1e5, ofmap_sram_kb=1e5
    )
    compulsory = layer.input_words + layer.weight_words
    m_small, m_huge = evaluate_layer(layer, small, "rtl"), evaluate_layer(layer, huge, "rtl")
    # The rtl profile's hardware (docs/timing.md) drains its accumulators: acc_bits per output.
    assert m_huge.dram_read_bytes >= compulsory and m_huge.dram_write_bytes == layer.output_words * huge.acc_bits / 8
    assert m_small.dram_read_bytes + m_small.dram_write_bytes >= m_huge.dram_read_bytes + m_huge.dram_write_bytes
    if get_template(name).interconnect.value == "systolic":  # SCALE-Sim streams im2col: every tap's word
        _, m_rows, k_red, n = layer.gemm_view()
        m_scalesim = evaluate_layer(layer, huge, "scalesim")
        assert m_scalesim.dram_read_bytes == m_rows * k_red + layer.weight_words


def test_eyeriss_diagonal_reuse_reads_fewer_input_words_than_its_taps() -> None:
    """Input rows for a fold of P_tile output rows x R_tile filter rows: (P_tile-1)*stride + R_tile."""
    layer = conv("c", c=1, k=1, h=18, r=3)  # P = 16 output rows, one channel
    acc = Accelerator(dataflow=get_template("eyeriss"), rows=3, cols=16, ifmap_sram_kb=1e3)
    m = evaluate_layer(layer, acc, "rtl")
    weights, outputs = 9, 16 * 16
    input_rows = (16 - 1) * 1 + 3  # not 16 * 3
    assert m.dram_read_bytes == input_rows * 18 + weights
    assert m.dram_write_bytes == outputs * acc.acc_bits / 8  # the rtl hardware drains accumulators


def test_vector_layers_run_one_op_per_column_per_cycle_bounded_by_dram() -> None:
    pool = Layer("pool", OpKind.POOL, k=64, c=64, h=32, w=32, r=2, s=2, stride_h=2, stride_w=2, groups=64)
    add = Layer("add", OpKind.ELTWISE, k=64, c=64, h=32, w=32, operands=2)
    for layer in (pool, add):
        fast = Accelerator(dataflow=get_template("nvdla"), rows=16, cols=16)
        m = evaluate_layer(layer, fast, "rtl")
        assert m.macs == 0 and m.utilization == 0
        assert m.latency_cycles == math.ceil(layer.vector_ops / 16) and m.stall_cycles == 0
        slow = Accelerator(dataflow=get_template("nvdla"), rows=16, cols=16, dram_bw_bytes_per_cycle=1.0)
        m = evaluate_layer(layer, slow, "rtl")
        # per-operand ports at 1 B/cycle; load, compute and drain pipelined over half-scratchpad (32 kB)
        # chunks, the first load and the last drain exposed
        chunks = max(1, math.ceil(layer.input_words / 32768), math.ceil(layer.output_words / 32768))
        load, drain = math.ceil(layer.input_words / chunks), math.ceil(layer.output_words / chunks)
        work = math.ceil(math.ceil(layer.vector_ops / 16) / chunks)
        assert m.latency_cycles == load + work + drain + (chunks - 1) * max(load, work, drain)
        assert m.dram_read_bytes == layer.input_words and m.dram_write_bytes == layer.output_words


def test_shared_dram_port_is_never_faster_than_one_port_per_operand() -> None:
    layer = conv("c", c=64, k=64, h=34, r=3)
    for name in TEMPLATES:
        per = Accelerator(dataflow=get_template(name), rows=16, cols=16, dram_bw_bytes_per_cycle=8.0)
        shared = Accelerator(
            dataflow=get_template(name), rows=16, cols=16, dram_bw_bytes_per_cycle=8.0, dram_ports="shared"
        )
        assert evaluate_layer(layer, shared).latency_cycles >= evaluate_layer(layer, per).latency_cycles


def test_double_buffering_hides_transfers_that_a_single_buffer_exposes() -> None:
    from dataclasses import replace

    layer = conv("c", c=64, k=64, h=34, r=3)
    acc = Accelerator(dataflow=get_template("systolic-ws"), rows=16, cols=16, dram_bw_bytes_per_cycle=16.0)
    rtl = get_profile("rtl")
    single = replace(rtl, name="single", double_buffered_dram=False)
    assert evaluate_layer(layer, acc, single).latency_cycles > evaluate_layer(layer, acc, rtl).latency_cycles


# ---- one code path: batch == single ----------------------------------------------------------------
def _layers_of_every_kind() -> list[Layer]:
    return [
        conv("stem", c=3, k=32, h=32, r=3, pad=1),
        conv("down", c=32, k=64, h=32, r=3, stride=2, pad=1),
        Layer("pool", OpKind.POOL, k=64, c=64, h=16, w=16, r=2, s=2, stride_h=2, stride_w=2, groups=64),
        conv("dw", c=64, k=64, h=8, r=3, pad=1, groups=64),
        conv("pw", c=64, k=128, h=8, r=1),
        Layer("add", OpKind.ELTWISE, k=128, c=128, h=8, w=8, operands=2),
        gemm("fc", m=1, k=128, n=10),
        matmul("attn", m=16, k=32, n=16, batch=4),
        gemm("proj", m=64, k=96, n=192),
    ]


def _designs() -> list[Accelerator]:
    out = []
    for i, name in enumerate(TEMPLATES * 2):  # templates interleaved: design groups are not contiguous
        out.append(
            Accelerator(
                dataflow=get_template(name),
                rows=(8, 16, 12, 32)[i % 4],
                cols=(16, 8, 32, 12)[i % 4],
                ifmap_sram_kb=(4.0, 64.0)[i % 2],
                filter_sram_kb=(8.0, 32.0)[i % 2],
                ofmap_sram_kb=(16.0, 2.0)[i % 2],
                dram_bw_bytes_per_cycle=(None, 4.0, 16.0)[i % 3],
                noc_bw_bytes_per_cycle=(None, 32.0)[i % 2],
                dram_ports=("per_operand", "shared")[(i // 2) % 2],
                input_bits=(8, 16)[(i // 3) % 2],
                tech_node_nm=(45.0, 22.0, 65.0)[i % 3],
            )
        )
    return out


@pytest.mark.parametrize("profile", ["rtl", "scalesim", "ideal"])
def test_batch_results_equal_single_results_exactly(profile: str) -> None:
    layers, accs = _layers_of_every_kind(), _designs()
    batch = evaluate_batch(layers[::-1], accs, profile, detail=True)  # reversed: layer groups interleave
    assert batch.shape == (len(accs), len(layers))
    for i, acc in enumerate(accs):
        assert batch.area_um2[i] == area(acc)[0]
        for j, layer in enumerate(layers[::-1]):
            m = evaluate_layer(layer, acc, profile)
            got = (
                batch.latency_cycles[i, j],
                batch.compute_cycles[i, j],
                batch.stall_cycles[i, j],
                batch.energy_pj[i, j],
                batch.utilization[i, j],
                batch.detail["dram_read_bytes"][i, j],
                batch.detail["dram_write_bytes"][i, j],
                batch.detail["buffer_read_words"][i, j],
                batch.detail["buffer_write_words"][i, j],
            )
            want = (
                m.latency_cycles,
                m.compute_cycles,
                m.stall_cycles,
                m.energy_pj,
                m.utilization,
                m.dram_read_bytes,
                m.dram_write_bytes,
                m.buffer_read_words,
                m.buffer_write_words,
            )
            assert got == want, (acc.label, layer.name)
            assert batch.dram_bytes[i, j] == pytest.approx(m.dram_read_bytes + m.dram_write_bytes, rel=1e-12)
            for k in ENERGY_KEYS:
                assert batch.detail[f"energy_{k}_pj"][i, j] == m.energy_breakdown_pj[k]


@pytest.mark.heavy
@pytest.mark.parametrize("profile", ["rtl", "ideal"])
def test_batch_on_a_product_grid_of_designs_equals_single_results_exactly(profile: str) -> None:
    """Designs that form a product (array shapes x scratchpads x DRAM bandwidths x ports x NoC, as a
    design sweep does) take the batch core's grid path, which evaluates the fold memory model once
    per (shape, scratchpad, bandwidth): it must give what each design gives alone."""
    layers = _layers_of_every_kind()
    accs = [
        Accelerator(
            dataflow=get_template(name),
            rows=r,
            cols=c,
            ifmap_sram_kb=kb[0],
            filter_sram_kb=kb[1],
            ofmap_sram_kb=kb[2],
            dram_bw_bytes_per_cycle=bw,
            noc_bw_bytes_per_cycle=noc,
            dram_ports=ports,
        )
        for name in ("systolic-ws", "eyeriss")
        for r, c in ((8, 16), (16, 8))
        for kb in ((4.0, 8.0, 16.0), (64.0, 32.0, 2.0))
        for bw in (None, 4.0, 16.0)
        for ports in ("per_operand", "shared")
        for noc in (None, 32.0)
    ]
    batch = evaluate_batch(layers, accs, profile)
    for i, acc in enumerate(accs):
        for j, layer in enumerate(layers):
            m = evaluate_layer(layer, acc, profile)
            got = (batch.latency_cycles[i, j], batch.energy_pj[i, j], batch.dram_bytes[i, j])
            want = (m.latency_cycles, m.energy_pj, m.dram_read_bytes + m.dram_write_bytes)
            assert got[:2] == want[:2], (acc.label, layer.name, got, want)
            assert got[2] == pytest.approx(want[2], rel=1e-12), (acc.label, layer.name)


def test_small_chunks_give_the_same_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    import coexplore.sim.analytical as analytical

    layers, accs = _layers_of_every_kind(), _designs()
    whole = evaluate_batch(layers, accs, "rtl")
    monkeypatch.setattr(analytical, "CHUNK_ELEMENTS", 7)
    chunked = evaluate_batch(layers, accs, "rtl")
    assert np.array_equal(whole.latency_cycles, chunked.latency_cycles)
    assert np.array_equal(whole.energy_pj, chunked.energy_pj)


@pytest.mark.parametrize("profile", ["rtl", "ideal", "scalesim"])
def test_pairs_equal_the_grid_exactly(profile: str) -> None:
    """``evaluate_pairs`` on random (layer, design) pairs, repeats and a layer equal to another but
    for its name included, gives the grid's entries bit for bit (the grid as the tiled post-pass's
    sub-layers see it: inside ``without_calls``, which hands back the grid's NoC excess too)."""
    layers = [*_layers_of_every_kind(), conv("stem-again", c=3, k=32, h=32, r=3, pad=1)]
    accs = _designs()
    with without_calls() as noc:
        grid = evaluate_batch(layers, accs, profile, detail=True)
    rng = np.random.default_rng(11)
    li, di = rng.integers(0, len(layers), 150), rng.integers(0, len(accs), 150)
    pairs = evaluate_pairs(layers, accs, li, di, profile, detail=True)
    for f in ("latency_cycles", "compute_cycles", "stall_cycles", "energy_pj", "utilization", "dram_bytes"):
        assert np.array_equal(getattr(pairs, f), getattr(grid, f)[di, li]), f
    assert np.array_equal(pairs.mapping_index, grid.mapping_index[di, li])
    assert np.array_equal(pairs.noc_excess_cycles, noc[0][di, li])
    assert pairs.detail.keys() == grid.detail.keys()
    for k, v in grid.detail.items():
        assert np.array_equal(pairs.detail[k], v[di, li]), k


@pytest.mark.parametrize("profile", ["rtl", "ideal"])
def test_pairs_on_designs_apart_only_in_noc_and_ports_equal_the_grid_exactly(profile: str) -> None:
    """``evaluate_pairs`` evaluates a MAC layer once for designs that differ only in the NoC bandwidth
    and the DRAM port arrangement and completes each pair's latency (and, in ``ideal``, the mapper's
    choice among several candidates) per pair: bit for bit the grid's entries, with a slow NoC that
    binds on some pairs and not on others."""
    layers = _layers_of_every_kind()
    accs = [
        replace(acc, noc_bw_bytes_per_cycle=noc, dram_ports=ports)
        for acc in _designs()[:6]
        for noc in (None, 64.0, 2.0, 0.5)
        for ports in ("per_operand", "shared")
    ]
    with without_calls() as noc_excess:
        grid = evaluate_batch(layers, accs, profile, detail=True)
    li, di = np.repeat(np.arange(len(layers)), len(accs)), np.tile(np.arange(len(accs)), len(layers))
    pairs = evaluate_pairs(layers, accs, li, di, profile, detail=True)
    assert np.ptp(grid.latency_cycles.reshape(6, 8, -1), axis=1).max() > 0  # the NoC and ports matter here
    for f in ("latency_cycles", "compute_cycles", "energy_pj", "dram_bytes", "mapping_index"):
        assert np.array_equal(getattr(pairs, f), getattr(grid, f)[di, li]), f
    assert np.array_equal(pairs.noc_excess_cycles, noc_excess[0][di, li])
    for k, v in grid.detail.items():
        assert np.array_equal(pairs.detail[k], v[di, li]), k


def test_pairs_refuse_bad_indices_in_one_line() -> None:
    layer, acc = gemm("g", 4, 4, 4), Accelerator(dataflow=get_template("systolic-ws"), rows=4, cols=4)
    with pytest.raises(CoexploreError, match=r"^evaluate_pairs: layer index 3 out of range \(expected 0\.\.0\)$"):
        evaluate_pairs([layer], [acc], [3], [0])
    with pytest.raises(CoexploreError, match="2 layer indices and 1 design indices"):
        evaluate_pairs([layer], [acc], [0, 0], [0])


# ---- networks, area, errors ------------------------------------------------------------------------
def test_network_totals_are_sums_of_layers_and_serialize() -> None:
    net = Network.chain("toy", _layers_of_every_kind())
    acc = Accelerator(dataflow=get_template("shidiannao"), rows=8, cols=8, dram_bw_bytes_per_cycle=16.0)
    result = evaluate_network(net, acc, "rtl")
    assert result.latency_cycles == pytest.approx(sum(m.latency_cycles for m in result.layers))
    assert result.macs == net.macs
    assert result.utilization == pytest.approx(net.macs / (acc.pes * result.latency_cycles))
    payload = json.loads(json.dumps(result.to_json()))
    total = payload["total"]
    for key in ("latency_cycles", "energy_pj", "area_um2", "macs", "utilization"):
        assert key in total
    assert len(payload["layers"]) == len(net.layers)
    assert total["energy_pj"] == pytest.approx(sum(total["energy_breakdown_pj"].values()))
    assert set(total["area_breakdown_um2"]) == set(AREA_KEYS)
    assert total["area_um2"] == pytest.approx(sum(total["area_breakdown_um2"].values()))


def test_area_grows_with_pes_buffers_and_bits_and_shrinks_with_the_node() -> None:
    base = Accelerator(dataflow=get_template("nvdla"), rows=16, cols=16)
    a0, parts = area(base)
    assert parts["pe"] == pytest.approx(256 * DEFAULT_TECH.pe_um2(8, 8, 32))
    assert parts["buffer"] == pytest.approx(DEFAULT_TECH.sram_um2(192.0))
    from dataclasses import replace

    assert area(replace(base, rows=32))[0] > a0
    assert area(replace(base, ifmap_sram_kb=128.0))[0] > a0
    assert area(replace(base, input_bits=16, weight_bits=16))[0] > a0
    assert area(replace(base, tech_node_nm=22.0))[0] < a0


def test_bad_input_is_one_line_error() -> None:
    acc = Accelerator(dataflow=get_template("nvdla"), rows=4, cols=4)
    with pytest.raises(CoexploreError, match="no layers"):
        evaluate_batch([], [acc])
    with pytest.raises(CoexploreError, match="no accelerators"):
        evaluate_batch([gemm("g", 4, 4, 4)], [])
    with pytest.raises(CoexploreError, match="unknown timing profile 'fast'"):
        evaluate_layer(gemm("g", 4, 4, 4), acc, "fast")


def test_more_pes_can_cost_cycles_when_folds_do_not_shrink() -> None:
    """Why the PE-count property is stated on folds: a depthwise 3x3 fills 9 of the rows of a WS array
    either way, so a bigger array keeps one fold per channel and only adds fill and preload."""
    layer = conv("dw", c=32, k=32, h=16, r=3, pad=1, groups=32)
    small = Accelerator(dataflow=get_template("systolic-ws"), rows=16, cols=16)
    big = Accelerator(dataflow=get_template("systolic-ws"), rows=32, cols=32)
    m_small, m_big = evaluate_layer(layer, small, "scalesim"), evaluate_layer(layer, big, "scalesim")
    assert m_big.latency_cycles > m_small.latency_cycles
