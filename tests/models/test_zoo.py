"""The built-in networks: MAC totals against closed forms, published figures and an independent count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coexplore.models.from_torch import from_torch
from coexplore.models.ir import CoexploreError, OpKind
from coexplore.models.zoo import ZOO_NAMES, build_module, get_network


def _hook_macs(module: nn.Module, x: torch.Tensor) -> int:
    """MACs counted independently of the IR: forward hooks on every nn.Conv2d and nn.Linear."""
    total = 0

    def hook(mod: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += out.numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module(x)
    for handle in handles:
        handle.remove()
    return total


def test_names_and_every_network_is_non_empty() -> None:
    assert ZOO_NAMES == ("resnet9", "resnet18", "mobilenetv2", "unet", "vit")
    for name in ZOO_NAMES:
        net = get_network(name)
        assert net.name == name and len(net.compute_layers()) > 0 and net.macs > 0
        assert all(0 <= a < b < len(net.layers) for a, b in net.edges)
        # every layer but the first is fed by something: the DAG is connected
        fed = {b for _, b in net.edges}
        assert fed == set(range(1, len(net.layers)))


# (low, high) MAC bounds; the sources are in the docstring of coexplore.models.zoo
@pytest.mark.parametrize(
    "name, low, high",
    [
        ("resnet18", 0.55e9, 0.57e9),  # CIFAR ResNet-18: ~0.56 G MACs (kuangliu/pytorch-cifar, thop)
        ("mobilenetv2", 0.29e9, 0.31e9),  # Sandler et al. 2018: 300 M multiply-adds at 224, width 1.0
        ("resnet9", 0.37e9, 0.39e9),
        ("unet", 2.9e9, 3.1e9),
        ("vit", 0.11e9, 0.13e9),
    ],
)
def test_mac_totals_are_in_the_published_range(name: str, low: float, high: float) -> None:
    assert low <= get_network(name).macs <= high


def test_resnet9_and_vit_closed_forms() -> None:
    conv3x3 = lambda c_in, c_out, hw: c_in * c_out * 9 * hw * hw  # noqa: E731
    resnet9 = (
        conv3x3(3, 64, 32)
        + conv3x3(64, 128, 32)
        + 2 * conv3x3(128, 128, 16)
        + conv3x3(128, 256, 16)
        + conv3x3(256, 512, 8)
        + 2 * conv3x3(512, 512, 4)
        + 512 * 10
    )
    assert get_network("resnet9").macs == resnet9 == 379_261_952

    tokens, dim, heads, depth, hidden = 64, 192, 4, 6, 384
    block = tokens * dim * 3 * dim + 2 * tokens * tokens * dim + tokens * dim * dim + 2 * tokens * dim * hidden
    vit = 3 * 16 * dim * tokens + depth * block + dim * 10
    net = get_network("vit")
    assert net.macs == vit
    scores = [l for l in net.layers if l.name.endswith("attn.matmul")]
    assert len(scores) == depth and scores[0].gemm_view() == (heads, tokens, dim // heads, tokens)


def test_resnet18_matches_an_independent_hook_count() -> None:
    module, x = build_module("resnet18")
    net = get_network("resnet18")
    assert net.macs == _hook_macs(module, x) == 555_422_720
    assert len([l for l in net.layers if l.kind is OpKind.CONV]) == 20  # 17 3x3 convs + 3 shortcuts
    assert net.weight_words == 11_164_352  # conv + fc weights: the ~11.2 M of the CIFAR ResNet-18


def test_mobilenetv2_structure_and_independent_count() -> None:
    module, x = build_module("mobilenetv2")
    net = get_network("mobilenetv2")
    assert net.macs == _hook_macs(module, x)
    kinds = [l.kind for l in net.layers]
    assert kinds.count(OpKind.DEPTHWISE) == 17 and kinds.count(OpKind.ELTWISE) == 10
    assert 3.4e6 <= net.weight_words <= 3.5e6  # paper: 3.4 M parameters


def test_unet_skips_feed_the_decoder() -> None:
    net = get_network("unet")
    module, x = build_module("unet")
    assert net.macs == _hook_macs(module, x)
    names = [l.name for l in net.layers]
    first_up = names.index("up.0.conv.0.0")
    skip = names.index("down.3.1.0")  # last conv of the deepest encoder level
    assert set(net.predecessors(first_up)) == {skip, names.index("up.0.reduce")}
    assert net.layers[-1].k == 1 and (net.layers[-1].p, net.layers[-1].q) == (128, 128)


def test_batch_and_reproducibility() -> None:
    (m1, x1), (m2, x2) = build_module("resnet9"), build_module("resnet9")
    assert torch.equal(x1, x2)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert get_network("resnet9") is get_network("resnet9")  # cached
    assert get_network("resnet9", batch=4).macs == 4 * get_network("resnet9").macs


@pytest.mark.parametrize("name", ["resnet9", "vit"])
def test_hooks_fallback_gives_the_same_network_as_fx(name: str) -> None:
    module, x = build_module(name)
    assert from_torch(module, x, name=name, method="hooks") == get_network(name)


def test_unknown_model_is_a_one_line_error() -> None:
    with pytest.raises(CoexploreError, match="unknown model 'resnet50' \\(expected one of resnet9, resnet18, "):
        get_network("resnet50")
    with pytest.raises(CoexploreError, match="batch=0"):
        build_module("vit", batch=0)
