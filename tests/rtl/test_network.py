"""Whole-network check (rtl.network): a small CNN run layer by layer on one generated WS design,
each layer's input the previous layer's hardware output requantized to int8; every output
bit-exact against numpy and the summed cycles equal to the simulator's rtl profile."""

from __future__ import annotations

import pytest
from rtl_helpers import small_acc

from coexplore.models.ir import Layer, Network, OpKind, conv, gemm
from coexplore.rtl.faults import faulty
from coexplore.rtl.network import check_network, numpy_conv, requantize, run_network
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import geometry, reference_output
from coexplore.sim.cycle.simulator import simulate_layer


def rtl_cycles(layer, acc) -> int:
    """The cycle simulator's rtl profile: what every compute layer must take on the hardware."""
    return int(simulate_layer(layer, acc, "rtl").total_cycles)


def tiny_network() -> Network:
    """conv 3x3 -> 2x2 max pool (host) -> conv 3x3 -> flatten (host) -> linear: 3 RTL layers, one call each
    on a 4x4 array with 1 kB scratchpads."""
    pool = Layer("pool1", OpKind.POOL, k=4, c=4, h=5, w=5, r=2, s=2, stride_h=2, stride_w=2, groups=4)
    return Network.chain(
        "tiny-cnn",
        [
            conv("conv1", c=2, k=4, h=5, r=3, pad=1),
            pool,
            conv("conv2", c=4, k=6, h=2, r=3, pad=1),
            gemm("fc", 1, 24, 5),
        ],
    )


def space_network() -> Network:
    """The digits ResNet-9-like space's smallest member (c=4-8-16, no residuals, k=3) at 1x8x8: conv, pool,
    conv, pool, conv, pool, global pool, linear (4 RTL layers, 4 host layers)."""
    from coexplore.models.spaces import get_space

    return get_space("resnet").network((0,) * 7, (1, 8, 8), 10)


def test_tiny_network_bit_and_cycle_exact(tmp_path, rtl_cache):
    acc, net = small_acc(), tiny_network()
    check = run_network(acc, net, tmp_path, simulated=rtl_cycles, seed=1, cache_dir=rtl_cache)
    assert check.passed, check.table()
    assert [r.where for r in check.layers] == ["rtl", "host", "rtl", "rtl"]
    assert check.host_layers == ("pool1",)
    assert check.rtl_cycles == check.simulated_cycles > 0
    for row in check.layers:
        assert row.mismatches == row.network_mismatches == 0, check.table()
        assert row.distinct_values > 3, check.table()  # the data through the network is not degenerate
        if row.where == "rtl":
            assert row.calls == 1 and row.rtl_cycles == row.simulated_cycles > 0, check.table()
        else:
            assert row.rtl_cycles == row.simulated_cycles == 0


def test_network_goes_red_on_a_broken_layer(tmp_path, rtl_cache):
    """flip_bit (rtl.faults) on conv2 only, in the network's first three layers: conv2's bench and the
    network comparison see wrong outputs while conv1's hardware stays right. (The flipped bit 0 is
    below the requantization shift, so it seldom reaches the next layer: ``hardware_shift`` below.)"""
    acc, net = small_acc(), Network.chain("tiny-prefix", tiny_network().layers[:3])
    broken = faulty(params_from_accelerator(acc), "flip_bit")
    check = run_network(
        acc, net, tmp_path, simulated=rtl_cycles, seed=1, cache_dir=rtl_cache, overrides={"conv2": broken}
    )
    rows = {r.name: r for r in check.layers}
    assert not check.passed
    assert rows["conv1"].passed and rows["conv1"].mismatches == rows["conv1"].network_mismatches == 0
    assert not rows["conv2"].passed and rows["conv2"].mismatches > 0 and rows["conv2"].network_mismatches > 0
    assert check.rtl_cycles == check.simulated_cycles  # timing is untouched by this fault


@pytest.mark.slow
def test_network_comparison_catches_a_wrong_requantization(tmp_path, rtl_cache):
    """The hardware chain requantized by 8 bits, the numpy chain by 9: every bench passes (each layer is
    right for the input it got) and the cycles hold, yet the network check goes red after conv1."""
    acc, net = small_acc(), tiny_network()
    check = run_network(
        acc, net, tmp_path, simulated=rtl_cycles, seed=1, cache_dir=rtl_cache, shift=9, hardware_shift=8
    )
    assert not check.passed and check.rtl_cycles == check.simulated_cycles
    assert all(r.passed and r.mismatches == 0 for r in check.layers), check.table()
    assert [r.network_mismatches > 0 for r in check.layers] == [False, True, True, True], check.table()


def test_numpy_reference_agrees_with_the_bench_reference():
    """The network's own numpy conv equals the bench's im2col reference (two independent references)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for layer in (conv("c", c=3, k=5, h=7, r=3, stride=2, pad=1), gemm("g", 4, 6, 3)):
        x = rng.integers(-128, 128, size=(layer.c, layer.h, layer.w))
        w = rng.integers(-128, 128, size=(layer.k, layer.c, layer.r, layer.s))
        assert (numpy_conv(layer, x, w, 32) == reference_output(geometry(layer), x, w, 32)).all()
    assert requantize(np.array([-(1 << 20), -1, 511, 512, 1 << 20]), 9).tolist() == [-128, -1, 0, 1, 127]


def test_refuses_what_neither_side_runs(tmp_path):
    acc = small_acc()
    dilated = Network.chain("dil", [conv("dil1", c=4, k=4, h=7, r=3, dilation=2)])
    with pytest.raises(RtlError, match="'dil1': dilation must be 1"):
        check_network(small_acc("nvdla"), dilated)  # every kind runs depthwise as sub-layers (test_decompose.py)
    with pytest.raises(RtlError, match="shift=40"):
        run_network(acc, tiny_network(), tmp_path, shift=40)
    with pytest.raises(RtlError, match="simulator='xsim'"):
        run_network(acc, tiny_network(), tmp_path, simulator="xsim")
    with pytest.raises(RtlError, match="nope"):
        run_network(acc, tiny_network(), tmp_path, overrides={"nope": params_from_accelerator(acc)})


@pytest.mark.slow
def test_space_network_under_verilator(tmp_path, rtl_cache):
    """The search space's smallest ResNet-9-like member on an 8x8 WS array (16 kB scratchpads), Verilator."""
    acc = small_acc(rows=8, cols=8, bw=8, kb=16)
    check = run_network(
        acc, space_network(), tmp_path, simulated=rtl_cycles, simulator="verilator", seed=1, cache_dir=rtl_cache
    )
    assert check.passed, check.table()
    assert sum(r.where == "rtl" for r in check.layers) == 4 and len(check.host_layers) == 4
    assert check.rtl_cycles == check.simulated_cycles > 0
    assert all(r.distinct_values > 3 for r in check.layers), check.table()


@pytest.mark.slow
def test_space_network_slow_drain_goes_red(tmp_path, rtl_cache):
    """slow_drain on one layer: every output right, only the summed cycles (and that layer) fail."""
    acc = small_acc(rows=8, cols=8, bw=8, kb=16)
    net = space_network()
    broken = faulty(params_from_accelerator(acc), "slow_drain")
    name = net.compute_layers()[1].name
    check = run_network(acc, net, tmp_path, simulated=rtl_cycles, seed=1, cache_dir=rtl_cache, overrides={name: broken})
    assert not check.passed and check.mismatches == check.network_mismatches == 0
    assert check.rtl_cycles > check.simulated_cycles
    assert [r.name for r in check.layers if not r.passed] == [name]


@pytest.mark.slow
def test_space_network_with_tiled_layers(tmp_path, rtl_cache):
    """The same member at 1x16x16 on a 4x4 array with 1 kB scratchpads: the first two convs run as
    several calls (host-side tiling, rtl.program.prepare_calls), still bit- and cycle-exact."""
    from coexplore.models.spaces import get_space

    acc = small_acc(bw=8)
    net = get_space("resnet").network((0,) * 7, (1, 16, 16), 10)
    check = run_network(acc, net, tmp_path, simulated=rtl_cycles, seed=2, cache_dir=rtl_cache)
    assert check.passed, check.table()
    assert max(r.calls for r in check.layers) > 1, check.table()
    assert check.rtl_cycles == check.simulated_cycles > 0
