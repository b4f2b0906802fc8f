"""PyTorch front end: closed-form MAC counts, layer kinds and dims, data-dependency edges, the hooks
fallback, and one-line errors for unsupported ops and bad model files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coexplore.models.from_torch import UnsupportedOpError, canonical, from_python_file, from_torch
from coexplore.models.ir import CoexploreError, OpKind


def _by_name(net):
    return {layer.name: layer for layer in net.layers}


class SmallCNN(nn.Module):
    """conv 3->8 (3x3, pad 1) + BN + ReLU, 2x2 max pool, conv 8->16 (3x3, stride 2), linear 16*4*4 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


def test_small_cnn_macs_match_the_closed_form() -> None:
    net = from_torch(SmallCNN(), torch.randn(2, 3, 16, 16))
    conv1 = 2 * 8 * 3 * 9 * 16 * 16  # batch 2, 16x16 output
    conv2 = 2 * 16 * 8 * 9 * 4 * 4  # 8x8 input, stride 2 -> 4x4
    fc = 2 * 256 * 10
    assert net.macs == conv1 + conv2 + fc
    assert [layer.kind for layer in net.layers] == [OpKind.CONV, OpKind.POOL, OpKind.CONV, OpKind.LINEAR]
    assert [layer.name for layer in net.layers] == ["conv1", "pool", "conv2", "fc"]  # BN, ReLU: no layer
    pool = net.layers[1]
    assert (pool.n, pool.c, pool.h, pool.r, pool.stride_h, pool.p) == (2, 8, 16, 2, 2, 8)
    fc_layer = net.layers[3]
    assert (fc_layer.h, fc_layer.w, fc_layer.n, fc_layer.c, fc_layer.k) == (2, 1, 1, 256, 10)
    assert net.edges == ((0, 1), (1, 2), (2, 3))
    assert all(layer.input_bits == layer.weight_bits == 8 for layer in net.layers)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv_geometry_stride_padding_dilation_groups() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
            self.b = nn.Conv2d(8, 8, 4, padding="same")  # even kernel: asymmetric 'same' padding

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    x = torch.randn(1, 4, 10, 12)
    net = from_torch(M(), x)
    a, b = net.layers
    out = M().a(x)
    assert (a.kind, a.groups, a.r, a.s, a.dilation_w) == (OpKind.CONV, 2, 3, 5, 2)
    assert (a.p, a.q) == tuple(out.shape[2:]) == (5, 8)
    assert a.macs == 8 * (4 // 2) * 3 * 5 * 5 * 8
    assert (b.p, b.q) == (5, 8)  # 'same' keeps the size: the odd pad is folded into the input extent
    assert b.macs == 8 * 8 * 16 * 5 * 8


def test_conv1d_is_a_conv_over_h_with_w_1() -> None:
    (layer,) = from_torch(nn.Conv1d(4, 8, 3, padding=1, stride=2), torch.randn(2, 4, 10)).layers
    assert (layer.kind, layer.h, layer.w, layer.r, layer.s, layer.p, layer.q) == (OpKind.CONV, 10, 1, 3, 1, 5, 1)
    assert layer.macs == 2 * 8 * 4 * 3 * 5


def test_depthwise_is_detected_and_grouped_conv_is_not() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.gc = nn.Conv2d(16, 32, 3, padding=1, groups=4)
            self.mult = nn.Conv2d(32, 64, 3, padding=1, groups=32)  # channel multiplier 2: not depthwise

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mult(self.gc(self.dw(x)))

    dw, gc, mult = from_torch(M(), torch.randn(1, 16, 8, 8)).layers
    assert dw.kind is OpKind.DEPTHWISE and dw.macs == 16 * 9 * 64
    assert gc.kind is OpKind.CONV and gc.groups == 4 and gc.macs == 32 * 4 * 9 * 64
    assert mult.kind is OpKind.CONV and mult.macs == 64 * 1 * 9 * 64


def test_functional_conv_and_linear_are_captured() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 3, 3, 3))
            self.fc_w = nn.Parameter(torch.randn(5, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(x, self.w, stride=2)
            return F.linear(y.mean((2, 3)), self.fc_w)

    net = from_torch(M(), torch.randn(1, 3, 9, 9))
    conv, pool, fc = net.layers
    assert conv.kind is OpKind.CONV and (conv.k, conv.c, conv.p) == (6, 3, 4)
    assert pool.kind is OpKind.POOL and (pool.r, pool.s, pool.p) == (4, 4, 1)  # mean over H, W: global pool
    assert fc.kind is OpKind.LINEAR and fc.macs == 6 * 5
    assert net.edges == ((0, 1), (1, 2))


def test_linear_on_3d_input_folds_tokens_and_batch_into_rows() -> None:
    net = from_torch(nn.Linear(32, 48), torch.randn(2, 7, 32))
    (layer,) = net.layers
    assert layer.kind is OpKind.LINEAR
    assert (layer.h, layer.w, layer.c, layer.k) == (14, 1, 32, 48)
    assert layer.gemm_view() == (1, 14, 32, 48) and layer.macs == 14 * 32 * 48


def test_multihead_attention_gives_projections_and_two_matmuls() -> None:
    mha = nn.MultiheadAttention(embed_dim=64, num_heads=4, batch_first=True)

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    batch, tokens, dim, heads = 2, 10, 64, 4
    net = from_torch(M(), torch.randn(batch, tokens, dim))
    layers = _by_name(net)
    assert [layer.name for layer in net.layers] == [
        "attn.q_proj",
        "attn.k_proj",
        "attn.v_proj",
        "attn.scores",
        "attn.context",
        "attn.out_proj",
    ]
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        lin = layers[f"attn.{proj}"]
        assert lin.kind is OpKind.LINEAR and lin.gemm_view() == (1, batch * tokens, dim, dim)
    scores, context = layers["attn.scores"], layers["attn.context"]
    head_dim = dim // heads
    assert scores.kind is OpKind.MATMUL and scores.gemm_view() == (batch * heads, tokens, head_dim, tokens)
    assert context.kind is OpKind.MATMUL and context.gemm_view() == (batch * heads, tokens, tokens, head_dim)
    assert net.predecessors(3) == (0, 1) and net.predecessors(4) == (2, 3) and net.predecessors(5) == (4,)


def test_sequence_first_attention_reads_batch_from_dim_1() -> None:
    net = from_torch(
        nn.MultiheadAttention(32, 2), (torch.randn(5, 3, 32), torch.randn(7, 3, 32), torch.randn(7, 3, 32))
    )
    layers = _by_name(net)
    assert layers["MultiheadAttention.q_proj"].gemm_view() == (1, 15, 32, 32)
    assert layers["MultiheadAttention.k_proj"].gemm_view() == (1, 21, 32, 32)
    assert layers["MultiheadAttention.scores"].gemm_view() == (3 * 2, 5, 16, 7)


def test_scaled_dot_product_attention_and_explicit_matmuls() -> None:
    class M(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            a = F.scaled_dot_product_attention(q, k, v)
            s = torch.bmm(q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2))
            return a.sum() + (s @ v.flatten(0, 1)).sum()

    q, k, v = torch.randn(2, 3, 8, 16), torch.randn(2, 3, 12, 16), torch.randn(2, 3, 12, 20)
    net = from_torch(M(), (q, k, v))
    views = [(layer.kind, layer.gemm_view()) for layer in net.layers]
    assert views == [
        (OpKind.MATMUL, (6, 8, 16, 12)),  # sdpa scores
        (OpKind.MATMUL, (6, 8, 12, 20)),  # sdpa context
        (OpKind.MATMUL, (6, 8, 16, 12)),  # bmm
        (OpKind.MATMUL, (6, 8, 12, 20)),  # @
    ]
    assert net.predecessors(1) == (0,) and net.predecessors(3) == (2,)


def test_matmul_with_a_weight_is_linear_and_einsum_is_a_product() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 24))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x @ self.w  # (2, 5, 24)
            return torch.einsum("bij,bkj->bik", y, y.flip(1))

    lin, prod = from_torch(M(), torch.randn(2, 5, 16)).layers
    assert lin.kind is OpKind.LINEAR and lin.gemm_view() == (1, 10, 16, 24)
    assert prod.kind is OpKind.MATMUL and prod.gemm_view() == (2, 5, 24, 5)


def test_residual_add_has_two_predecessors_through_free_ops() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv2(torch.relu(self.bn1(self.conv1(x))))
            return self.head(torch.relu(x + y))

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.block = Block()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(torch.relu(self.stem(x)))

    net = from_torch(M(), torch.randn(1, 3, 8, 8))
    names = [layer.name for layer in net.layers]
    assert names == ["stem", "block.conv1", "block.conv2", "block.add", "block.head"]
    add = net.layers[3]
    assert add.kind is OpKind.ELTWISE and add.operands == 2 and add.vector_ops == 8 * 8 * 8
    assert net.predecessors(3) == (0, 2)  # the skip (stem) and the branch (conv2)
    assert net.edges == ((0, 1), (0, 3), (1, 2), (2, 3), (3, 4))


def test_concat_passes_both_producers_and_scalar_or_weight_math_is_free() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 4, 1)
            self.scale = nn.Parameter(torch.ones(1, 8, 1, 1))
            self.c = nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.cat([self.a(x), self.b(x)], dim=1) * self.scale * 0.5 + 1.0
            return self.c(y * torch.sigmoid(y))  # self-gating (SiLU written out): fused, no layer

    net = from_torch(M(), torch.randn(1, 3, 4, 4))
    assert [layer.name for layer in net.layers] == ["a", "b", "c"]
    assert net.predecessors(2) == (0, 1)


def test_pooling_windows() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.maxp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
            self.avgp = nn.AvgPool2d(2)
            self.adapt = nn.AdaptiveAvgPool2d((2, 2))
            self.glob = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.adapt(self.avgp(self.maxp(x)))
            return self.glob(y) + F.max_pool2d(y, 2)

    x = torch.randn(1, 4, 14, 14)
    maxp, avgp, adapt, glob, fmax, _add = from_torch(M(), x).layers
    assert maxp.p == M().maxp(x).shape[2] == 8 and (maxp.r, maxp.stride_h, maxp.pad_h) == (3, 2, 1)
    assert (avgp.r, avgp.stride_h, avgp.p) == (2, 2, 4)
    assert (adapt.r, adapt.stride_h, adapt.p) == (2, 2, 2)
    assert (glob.r, glob.s, glob.p, glob.q) == (2, 2, 1, 1) and glob.vector_ops == 4 * 4
    assert fmax.kind is OpKind.POOL and fmax.p == 1
    assert all(layer.macs == 0 for layer in (maxp, avgp, adapt, glob, fmax))


def test_value_dependent_control_flow_falls_back_to_hooks_with_the_same_result() -> None:
    class Branchy(SmallCNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # fx cannot trace this
                x = x * 2
            return super().forward(x)

    x = torch.ones(1, 3, 16, 16)
    with pytest.raises(CoexploreError, match="torch.fx cannot trace"):
        from_torch(Branchy(), x, method="fx")
    auto = from_torch(Branchy(), x, name="net")
    reference = from_torch(SmallCNN(), x, name="net")
    assert auto == reference
    assert from_torch(SmallCNN(), x, name="net", method="hooks") == reference


def test_transformer_encoder_layer_is_traced_through() -> None:
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
    net = from_torch(layer, torch.randn(2, 6, 32))
    macs = 4 * 12 * 32 * 32 + 2 * (2 * 4) * 6 * 8 * 6 + 12 * 32 * 64 * 2
    assert net.macs == macs
    assert sum(layer.kind is OpKind.MATMUL for layer in net.layers) == 2


def test_module_mode_is_restored_and_bits_are_applied() -> None:
    model = SmallCNN().train()
    net = from_torch(model, torch.randn(1, 3, 16, 16), bits=4)
    assert model.training
    assert {layer.weight_bits for layer in net.layers} == {4}


@pytest.mark.parametrize(
    "module, x, op",
    [
        (nn.LSTM(8, 16), torch.randn(5, 1, 8), "LSTM"),
        (nn.Conv3d(2, 4, 3), torch.randn(1, 2, 5, 5, 5), "Conv3d"),
        (nn.ConvTranspose2d(4, 2, 2, stride=2), torch.randn(1, 4, 4, 4), "ConvTranspose2d"),
    ],
)
def test_unsupported_modules_name_the_op_and_the_node(module: nn.Module, x: torch.Tensor, op: str) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor):
            return self.inner(x)

    for method in ("fx", "hooks"):
        with pytest.raises(UnsupportedOpError, match=rf"unsupported torch op '{op}' at node 'inner' \(supported: "):
            from_torch(M(), x, method=method)


def test_unsupported_function_is_named() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 2, 2, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.conv_transpose2d(x, self.w, stride=2)

    with pytest.raises(UnsupportedOpError, match="'conv_transpose2d' at node 'conv_transpose2d'") as info:
        from_torch(M(), torch.randn(1, 4, 3, 3))
    assert isinstance(info.value, CoexploreError) and "\n" not in str(info.value)


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(CoexploreError, match="expected a torch nn.Module, got str"):
        from_torch("resnet", torch.randn(1))  # type: ignore[arg-type]
    with pytest.raises(CoexploreError, match="example_input must be a tensor"):
        from_torch(nn.ReLU(), [1, 2])
    with pytest.raises(CoexploreError, match="failed on its example input: RuntimeError"):
        from_torch(SmallCNN(), torch.randn(1, 5, 16, 16))  # wrong channel count
    with pytest.raises(CoexploreError, match="no compute, pooling or element-wise layers"):
        from_torch(nn.ReLU(), torch.randn(3))


def test_canonical_names_of_operators() -> None:
    assert canonical("__radd__") == ("add", True)
    assert canonical("__rmatmul__") == ("matmul", True)
    assert canonical("iadd") == ("add", False)
    assert canonical("relu_") == ("relu", False)
    assert canonical("_native_multi_head_attention") == ("_native_multi_head_attention", False)


# ---- from_python_file --------------------------------------------------------------------------------
def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_python_file_with_build_or_module_level_names(tmp_path: Path) -> None:
    built = _write(
        tmp_path,
        "built.py",
        """
        import torch
        from torch import nn

        def build():
            net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
            return net, torch.randn(1, 3, 8, 8)
    """,
    )
    net = from_python_file(built)
    assert net.name == "built" and net.macs == 4 * 3 * 9 * 36 + 144 * 2
    plain = _write(
        tmp_path,
        "plain.py",
        """
        import torch
        model = torch.nn.Linear(8, 3)
        example_input = torch.randn(4, 8)
    """,
    )
    assert from_python_file(str(plain)).macs == 4 * 8 * 3


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("import torch\nx = 1\n", "defines neither build()"),
        ("raise RuntimeError('boom')\n", "cannot import model file .*bad.py.*RuntimeError: boom"),
        ("def build(:\n", "cannot import model file .*SyntaxError"),
        ("def build():\n    return 3\n", r"must return \(nn.Module, example_input\), got int"),
        ("model = 3\nexample_input = 4\n", "is a int, expected a torch nn.Module"),
    ],
)
def test_python_file_errors_are_one_line(tmp_path: Path, body: str, fragment: str) -> None:
    path = _write(tmp_path, "bad.py", body)
    with pytest.raises(CoexploreError, match=fragment) as info:
        from_python_file(path)
    assert "\n" not in str(info.value)


def test_missing_python_file(tmp_path: Path) -> None:
    with pytest.raises(CoexploreError, match="not found"):
        from_python_file(tmp_path / "nope.py")
