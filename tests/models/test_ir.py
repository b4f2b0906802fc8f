"""The layer IR: derived sizes, MAC counts against closed forms, and rejection of impossible layers."""

from __future__ import annotations

import pytest

from coexplore.models.ir import IRError, Layer, Network, OpKind, conv, gemm, matmul


def test_conv_output_size_and_macs_closed_form() -> None:
    layer = conv("c", c=64, k=128, h=32, r=3, stride=2, pad=1)
    assert (layer.p, layer.q) == (16, 16)
    assert layer.macs == 128 * 64 * 3 * 3 * 16 * 16
    assert layer.gemm_view() == (1, 256, 576, 128)


def test_depthwise_is_detected_and_counts_one_channel_per_filter() -> None:
    layer = conv("dw", c=32, k=32, h=14, r=3, pad=1, groups=32)
    assert layer.kind is OpKind.DEPTHWISE
    assert layer.macs == 32 * 14 * 14 * 9
    assert layer.weight_words == 32 * 9


def test_dilation_widens_the_kernel() -> None:
    layer = conv("d", c=8, k=8, h=16, r=3, dilation=2)
    assert layer.p == 16 - 5 + 1


def test_gemm_and_matmul_views() -> None:
    g = gemm("g", m=256, k=512, n=128)
    assert g.macs == 256 * 512 * 128 and g.gemm_view() == (1, 256, 512, 128)
    mm = matmul("a", m=64, k=32, n=64, batch=4)
    assert mm.macs == 4 * 64 * 32 * 64
    assert mm.kind.has_weights is False and mm.weight_words == 4 * 32 * 64


def test_pool_and_eltwise_have_vector_ops_not_macs() -> None:
    pool = Layer("p", OpKind.POOL, k=16, c=16, h=8, w=8, r=2, s=2, stride_h=2, stride_w=2, groups=16)
    add = Layer("a", OpKind.ELTWISE, k=16, c=16, h=8, w=8)
    assert pool.macs == 0 and pool.vector_ops == 16 * 4 * 4 * 4
    assert add.macs == 0 and add.vector_ops == 16 * 8 * 8


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(c=-1, k=8, h=8), "c=-1"),
        (dict(c=8, k=0, h=8), "k=0"),
        (dict(c=8, k=8, h=2, r=3), "larger than its padded input"),
        (dict(c=8, k=6, h=8, groups=4), "groups=4"),
        (dict(c=8, k=8, h=1 << 30), "absurdly large"),
    ],
)
def test_impossible_layers_are_rejected_with_the_value(kwargs: dict, fragment: str) -> None:
    with pytest.raises(IRError, match=fragment.replace("(", r"\(")):
        conv("bad", **kwargs)


def test_unknown_layer_type_names_it() -> None:
    with pytest.raises(IRError, match="unknown layer type 'lstm'"):
        Layer("x", "lstm", k=1, c=1, h=1, w=1)  # type: ignore[arg-type]


def test_network_edges_must_go_forward() -> None:
    a, b = conv("a", c=3, k=8, h=8), conv("b", c=8, k=8, h=6)
    assert Network.chain("n", [a, b]).edges == ((0, 1),)
    with pytest.raises(IRError, match=r"edge \(1, 0\)"):
        Network("n", (a, b), ((1, 0),))
    with pytest.raises(IRError, match="no layers"):
        Network("empty", ())
