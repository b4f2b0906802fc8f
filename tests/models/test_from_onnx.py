"""ONNX front end: models exported by torch.onnx lower to the same layers as from_torch; hand-built
graphs cover padding modes and unsupported ops; unreadable files are one-line errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from coexplore.models.from_onnx import UnsupportedOpError, from_onnx
from coexplore.models.from_torch import from_torch
from coexplore.models.ir import CoexploreError, OpKind
from coexplore.models.zoo import build_module, get_network


def _export(model: nn.Module, x: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False)
    return path


def _signature(layer):
    return (
        layer.kind,
        layer.n,
        layer.k,
        layer.c,
        layer.h,
        layer.w,
        layer.r,
        layer.s,
        layer.stride_h,
        layer.stride_w,
        layer.pad_h,
        layer.pad_w,
        layer.dilation_h,
        layer.groups,
        layer.p,
        layer.q,
        layer.macs,
    )


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["resnet9", "vit"])
def test_zoo_round_trip_gives_the_same_layers(name: str, tmp_path: Path) -> None:
    module, x = build_module(name)
    net = from_onnx(_export(module, x, tmp_path / f"{name}.onnx"))
    ref = get_network(name)
    assert [_signature(l) for l in net.compute_layers()] == [_signature(l) for l in ref.compute_layers()]
    assert net.macs == ref.macs > 0
    # pooling and residual adds, and the dependency edges, also come out the same
    assert [_signature(l) for l in net.layers] == [_signature(l) for l in ref.layers]
    assert net.edges == ref.edges
    assert net.name == name


def test_small_cnn_with_depthwise_and_linear_round_trip(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Hardswish(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    x = torch.randn(2, 3, 15, 15)
    net = from_onnx(_export(model, x, tmp_path / "m.onnx"))
    ref = from_torch(model, x)
    assert [l.kind for l in net.layers] == [OpKind.CONV, OpKind.DEPTHWISE, OpKind.POOL, OpKind.POOL, OpKind.LINEAR]
    assert [_signature(l) for l in net.layers] == [_signature(l) for l in ref.layers]
    assert net.edges == ref.edges == ((0, 1), (1, 2), (2, 3), (3, 4))


def test_multihead_attention_exports_with_a_packed_projection_and_the_same_macs(tmp_path: Path) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    x = torch.randn(2, 6, 32)
    net = from_onnx(_export(M(), x, tmp_path / "mha.onnx"))
    ref = from_torch(M(), x)
    # PyTorch computes self-attention Q, K, V with one packed 32 -> 96 projection; ONNX shows it as one
    # LINEAR where from_torch lists three 32 -> 32 ones. The attention products and totals agree.
    assert [l.gemm_view() for l in net.layers if l.kind is OpKind.LINEAR] == [(1, 12, 32, 96), (1, 12, 32, 32)]
    assert (
        [l.gemm_view() for l in net.layers if l.kind is OpKind.MATMUL]
        == [l.gemm_view() for l in ref.layers if l.kind is OpKind.MATMUL]
        == [(8, 6, 8, 6), (8, 6, 6, 8)]
    )
    assert net.macs == ref.macs


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def test_hand_built_graph_same_upper_padding_gemm_and_symbolic_batch(tmp_path: Path) -> None:
    import numpy as np

    w = numpy_helper.from_array(np.zeros((4, 3, 2, 2), dtype=np.float32), "w")
    fc = numpy_helper.from_array(np.zeros((4 * 5 * 5, 6), dtype=np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 9, 9])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    net = from_onnx(_save(_model(nodes, [x], [y], [w, fc]), tmp_path / "h.onnx"))
    conv, lin = net.layers
    assert (conv.p, conv.q, conv.n) == (5, 5, 1)  # ceil(9 / 2); the symbolic batch became 1
    assert conv.macs == 4 * 3 * 4 * 25
    assert lin.kind is OpKind.LINEAR and lin.gemm_view() == (1, 1, 100, 6)
    assert net.edges == ((0, 1),)


def test_matmul_of_two_activations_is_a_batched_matmul(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], name="t", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
    ]
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [2, 4, 10, 8])
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [2, 4, 12, 8])
    p = helper.make_tensor_value_info("p", TensorProto.FLOAT, None)
    (layer,) = from_onnx(_save(_model(nodes, [q, k], [p]), tmp_path / "mm.onnx")).layers
    assert layer.kind is OpKind.MATMUL and layer.gemm_view() == (8, 10, 8, 12)


def test_unsupported_onnx_op_is_named(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("LpPool", ["r"], ["y"], name="my_pool", kernel_shape=[2, 2]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    with pytest.raises(
        UnsupportedOpError, match=r"unsupported ONNX op 'LpPool' at node 'my_pool' \(supported:"
    ) as info:
        from_onnx(_save(_model(nodes, [x], [y]), tmp_path / "u.onnx"))
    assert isinstance(info.value, CoexploreError) and "\n" not in str(info.value)


def test_exported_lstm_is_unsupported(tmp_path: Path) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    path = _export(M(), torch.randn(3, 1, 4), tmp_path / "lstm.onnx")
    with pytest.raises(UnsupportedOpError, match="'LSTM'"):
        from_onnx(path)


def test_three_d_conv_is_unsupported(tmp_path: Path) -> None:
    path = _export(nn.Conv3d(2, 2, 3), torch.randn(1, 2, 4, 4, 4), tmp_path / "c3.onnx")
    with pytest.raises(UnsupportedOpError, match=r"'Conv \(3-D\)'"):
        from_onnx(path)


@pytest.mark.parametrize("content", [b"this is not a protobuf \xff\xfe", b""])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(CoexploreError) as info:
        from_onnx(path)
    message = str(info.value)
    assert "bad.onnx" in message and "\n" not in message
    with pytest.raises(CoexploreError, match="not found"):
        from_onnx(tmp_path / "missing.onnx")
