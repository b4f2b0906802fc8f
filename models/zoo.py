"""Built-in networks, written here (torchvision cannot be installed beside torch 2.13 on this machine).

MAC totals (conv + linear + matmul multiply-accumulates, batch 1), checked by tests/models/test_zoo.py:

* ``resnet9``: the DAWNBench CIFAR-10 ResNet-9 of Page ("How to train your ResNet", myrtle.ai, 2018):
  prep 64, layer1 128 + residual, layer2 256, layer3 512 + residual, global max pool, linear; 3x32x32.
  Closed form: 3*64*9*32^2 + 5 * 75,497,472 + 512*10 = 379,261,952.
* ``resnet18``: the CIFAR variant of He et al. (3x3 stem, no max pool, BasicBlocks [2, 2, 2, 2], 10
  classes), as in kuangliu/pytorch-cifar: about 0.56 G MACs and 11.2 M weights (the figures usually quoted
  for that model, e.g. 556.65 M MACs from thop).
* ``mobilenetv2``: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
  Table 2 at width 1.0 on 3x224x224, 1000 classes: the paper gives 300 M multiply-adds and 3.4 M
  parameters.
* ``unet``: Ronneberger et al.'s U-Net shape at nuclei-segmentation size (Kaggle Data Science Bowl 2018
  style: 3x128x128 in, 1 mask channel out): 4 levels of two 3x3 convs (32, 64, 128, 256 channels) with
  2x2 max pooling, a 512-channel bottleneck, and a decoder that upsamples (nearest, x2), halves the
  channels with a 1x1 conv (the IR has no transposed conv; a 2x2 stride-2 transposed conv has the same
  shape change), concatenates the skip and applies two 3x3 convs.
* ``vit``: a small ViT encoder (Dosovitskiy et al. 2021) for 3x32x32: 4x4 patches (64 tokens), dim 192,
  4 heads, 6 pre-norm blocks with explicit attention (one qkv projection, ``q @ k^T``, ``attn @ v``) and
  MLP ratio 2, mean over tokens, linear head to 10 classes.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn

from coexplore.models.ir import CoexploreError, Network

__all__ = ["ZOO_NAMES", "build_module", "get_network"]

ZOO_NAMES: tuple[str, ...] = ("resnet9", "resnet18", "mobilenetv2", "unet", "vit")
SEED = 0


# ---- ResNet-9 (DAWNBench) ------------------------------------------------------------------------
def _conv_bn(c_in: int, c_out: int, stride: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), act())


class _Residual(nn.Module):
    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.prep = _conv_bn(3, 64)
        self.layer1 = nn.Sequential(
            _conv_bn(64, 128), nn.MaxPool2d(2), _Residual(_conv_bn(128, 128), _conv_bn(128, 128))
        )
        self.layer2 = nn.Sequential(_conv_bn(128, 256), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(
            _conv_bn(256, 512), nn.MaxPool2d(2), _Residual(_conv_bn(512, 512), _conv_bn(512, 512))
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(512, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.fc(torch.flatten(self.pool(x), 1)) * 0.125


# ---- ResNet-18 (CIFAR) ---------------------------------------------------------------------------
class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        blocks, c_in = [], 64
        for stage, c_out in enumerate((64, 128, 256, 512)):
            stride = 1 if stage == 0 else 2
            blocks.append(nn.Sequential(_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


# ---- MobileNetV2 ---------------------------------------------------------------------------------
class _InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),  # linear bottleneck: no activation
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    # (expansion t, channels c, repeats n, first stride s): Sandler et al. 2018, Table 2
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 32, stride=2, act=nn.ReLU6)]
        c_in = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers += [nn.Conv2d(c_in, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# ---- U-Net ---------------------------------------------------------------------------------------
def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(c_in, c_out), _conv_bn(c_out, c_out))


class _Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce = nn.Conv2d(c_in, c_out, 1)
        self.conv = _double_conv(2 * c_out, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.reduce(self.up(x))], dim=1))


class UNet(nn.Module):
    def __init__(self, base: int = 32, levels: int = 4, out_channels: int = 1) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        c_in = 3
        for w in widths:
            self.down.append(_double_conv(c_in, w))
            c_in = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(widths[-1], 2 * widths[-1])
        self.up = nn.ModuleList(_Up(2 * w, w) for w in reversed(widths))
        self.head = nn.Conv2d(base, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)
        return self.head(x)


# ---- ViT -----------------------------------------------------------------------------------------
class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(
        self,
        image: int = 32,
        patch: int = 4,
        dim: int = 192,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: int = 2,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(_EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


# ---- registry ------------------------------------------------------------------------------------
_BUILDERS = {
    "resnet9": (ResNet9, (3, 32, 32)),
    "resnet18": (ResNet18, (3, 32, 32)),
    "mobilenetv2": (MobileNetV2, (3, 224, 224)),
    "unet": (UNet, (3, 128, 128)),
    "vit": (ViT, (3, 32, 32)),
}


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise CoexploreError(f"unknown model {name!r} (expected one of {', '.join(ZOO_NAMES)})")


def build_module(name: str, batch: int = 1) -> tuple[nn.Module, torch.Tensor]:
    """A fresh zoo module in eval mode and an example input of ``batch`` images; seeded, so two calls
    give identical weights and inputs (the caller's global RNG state is left untouched)."""
    _check_name(name)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        raise CoexploreError(f"batch={batch!r} must be a positive integer")
    cls, shape = _BUILDERS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        module = cls().eval()
        example = torch.randn(batch, *shape)
    return module, example


@cache
def _network(name: str, batch: int) -> Network:
    from coexplore.models.from_torch import from_torch

    module, example = build_module(name, batch)
    return from_torch(module, example, name=name)


def get_network(name: str, batch: int = 1) -> Network:
    """The layer IR of zoo model ``name`` (traced once per process, then cached)."""
    _check_name(name)
    return _network(name, batch)
