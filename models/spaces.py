"""NAS search spaces as data: a YAML file names a network *family* (a builder registered here) and the
ordered choices the search may make; a *choice vector* holds one option index per choice.

```yaml
name: resnet
family: resnet
description: ResNet-9-like classification backbone (3 stages)
choices:
  c1: [4, 8, 16]
  res1: [0, 1]
```

A family declares its parameters with a default and a check; a space may choose any subset of them
(the rest keep their defaults), so a user extends or narrows a builtin space by writing a new file.
Builtin spaces live in ``models/spaces/*.yaml``; :func:`get_space` takes one of their names or a path.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from coexplore.models.ir import CoexploreError, Network

__all__ = ["Choice", "SearchSpace", "builtin_spaces", "family_kind", "get_space"]

SPACES_DIR = Path(__file__).parent / "spaces"
BUILDER_VERSION = 1  # bump when a family builder changes the networks it makes (invalidates train caches)
_TOP_FIELDS = ("name", "family", "description", "choices")


# ---- parameter checks ----------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _width(v: Any) -> bool:
    return _is_int(v) and 1 <= v <= 4096


def _flag(v: Any) -> bool:
    return v in (0, 1) and not isinstance(v, float)  # 0/1 or false/true


def _kernel(v: Any) -> bool:
    return _is_int(v) and v in (1, 3, 5, 7)


def _count(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and lo <= v <= hi


@dataclass(frozen=True, slots=True)
class _Param:
    default: Any
    check: Callable[[Any], bool]
    expected: str


_WIDTH = "a channel count 1..4096"
_FLAG = "0/1 or false/true"
_KERNEL = "an odd kernel size 1, 3, 5 or 7"


# ---- building blocks -----------------------------------------------------------------------------
def _conv_bn(
    c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """``x + body(x)``; the body's last BatchNorm starts at zero scale, so the block starts as the identity
    (Goyal et al. 2017), which keeps short proxy training stable."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)
        norms = [m for m in self.body.modules() if isinstance(m, nn.BatchNorm2d)]
        if norms:
            nn.init.zeros_(norms[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Classifier(nn.Module):
    def __init__(self, features: nn.Module, width: int, num_outputs: int, pool: type[nn.Module]) -> None:
        super().__init__()
        self.features = features
        self.pool = pool(1)
        self.fc = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _need_size(family: str, shape: tuple[int, int, int], multiple: int, exact: bool = True) -> None:
    """Input height and width at least ``multiple`` (and divisible by it when ``exact``)."""
    _, h, w = shape
    if h < multiple or w < multiple or (exact and (h % multiple or w % multiple)):
        need = f"a multiple of {multiple}" if exact else f"at least {multiple}"
        raise CoexploreError(f"family {family!r}: input {h}x{w} must be {need} in each dim for this network")


# ---- resnet: ResNet-9-like (Page 2018), 3 stages of conv + pool (+ residual pair) -----------------
_RESNET = {
    "c1": _Param(16, _width, _WIDTH),
    "c2": _Param(32, _width, _WIDTH),
    "c3": _Param(64, _width, _WIDTH),
    "res1": _Param(1, _flag, _FLAG),
    "res2": _Param(0, _flag, _FLAG),
    "res3": _Param(1, _flag, _FLAG),
    "k": _Param(3, _kernel, _KERNEL),
}


def _build_resnet(cfg: Mapping[str, Any], shape: tuple[int, int, int], num_outputs: int) -> nn.Module:
    """Stage i: conv k x k to c_i, BN, ReLU, 2x2 max pool, then (if res_i) two conv-BN-ReLU with a skip.
    Global max pool and a linear head, as in ResNet-9."""
    _need_size("resnet", shape, 8, exact=False)
    k, c_in, stages = cfg["k"], shape[0], []
    for i in (1, 2, 3):
        c = cfg[f"c{i}"]
        stage: list[nn.Module] = [_conv_bn(c_in, c, k), nn.MaxPool2d(2)]
        if cfg[f"res{i}"]:
            stage.append(_Residual(_conv_bn(c, c, k), _conv_bn(c, c, k)))
        stages.append(nn.Sequential(*stage))
        c_in = c
    return _Classifier(nn.Sequential(*stages), c_in, num_outputs, nn.AdaptiveMaxPool2d)


def _describe_resnet(cfg: Mapping[str, Any]) -> str:
    return (
        f"c={cfg['c1']}-{cfg['c2']}-{cfg['c3']} res={int(cfg['res1'])}-{int(cfg['res2'])}-{int(cfg['res3'])}"
        f" k={cfg['k']}"
    )


# ---- unet: U-Net (Ronneberger 2015) with searched depth and widths --------------------------------
_UNET = {
    "depth": _Param(2, _count(2, 4), "a depth 2..4"),
    "c1": _Param(8, _width, _WIDTH),
    "c2": _Param(16, _width, _WIDTH),
    "c3": _Param(32, _width, _WIDTH),
    "c4": _Param(64, _width, _WIDTH),
    "convs": _Param(2, _count(1, 3), "1..3 convs per level"),
    "k": _Param(3, _kernel, _KERNEL),
}


def _convs(c_in: int, c_out: int, n: int, k: int) -> nn.Sequential:
    return nn.Sequential(*(_conv_bn(c_in if i == 0 else c_out, c_out, k) for i in range(n)))


class _Up(nn.Module):
    """Nearest x2 upsampling, a 1x1 conv to the skip's width, concatenation and the level's convs."""

    def __init__(self, c_deep: int, c_skip: int, n: int, k: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce = nn.Conv2d(c_deep, c_skip, 1)
        self.conv = _convs(2 * c_skip, c_skip, n, k)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.reduce(self.up(x))], dim=1))


class _UNet(nn.Module):
    def __init__(self, widths: list[int], c_in: int, num_outputs: int, n: int, k: int) -> None:
        super().__init__()
        self.down = nn.ModuleList(_convs(a, b, n, k) for a, b in zip([c_in] + widths[:-1], widths))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i], n, k) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], num_outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for up, skip in zip(self.up, reversed(skips[:-1])):
            x = up(x, skip)
        return self.head(x)


def _build_unet(cfg: Mapping[str, Any], shape: tuple[int, int, int], num_outputs: int) -> nn.Module:
    """``depth`` levels of ``convs`` conv-BN-ReLU (widths c1..c_depth; the deepest is the bottleneck),
    2x2 max pooling down, nearest upsampling + 1x1 conv + skip concatenation up, 1x1 head."""
    depth = cfg["depth"]
    _need_size("unet", shape, 2 ** (depth - 1))
    widths = [cfg[f"c{i}"] for i in range(1, depth + 1)]
    return _UNet(widths, shape[0], num_outputs, cfg["convs"], cfg["k"])


def _describe_unet(cfg: Mapping[str, Any]) -> str:
    widths = "-".join(str(cfg[f"c{i}"]) for i in range(1, cfg["depth"] + 1))
    return f"d={cfg['depth']} c={widths} convs={cfg['convs']} k={cfg['k']}"


# ---- mobilenet: MobileNetV2-like (Sandler 2018), 3 stages of inverted residual blocks -------------
_MOBILENET = {
    "stem": _Param(8, _width, _WIDTH),
    "t": _Param(4, _count(1, 8), "an expansion ratio 1..8"),
    "c1": _Param(8, _width, _WIDTH),
    "c2": _Param(16, _width, _WIDTH),
    "c3": _Param(32, _width, _WIDTH),
    "n1": _Param(1, _count(1, 4), "1..4 blocks"),
    "n2": _Param(1, _count(1, 4), "1..4 blocks"),
    "n3": _Param(1, _count(1, 4), "1..4 blocks"),
}


class _InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = [_conv_bn(c_in, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [
            _conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),  # depthwise
            _conv_bn(hidden, c_out, 1, act=None),
        ]  # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def _build_mobilenet(cfg: Mapping[str, Any], shape: tuple[int, int, int], num_outputs: int) -> nn.Module:
    """3x3 stem, then stages 1..3 (first strides 1, 2, 2) of n_i inverted residual blocks of width c_i
    and expansion t (1x1 expand, 3x3 depthwise, 1x1 linear bottleneck); global average pool, linear."""
    _need_size("mobilenet", shape, 4)
    layers: list[nn.Module] = [_conv_bn(shape[0], cfg["stem"], 3, act=nn.ReLU6)]
    c_in = cfg["stem"]
    for i, first_stride in ((1, 1), (2, 2), (3, 2)):
        for j in range(cfg[f"n{i}"]):
            layers.append(_InvertedResidual(c_in, cfg[f"c{i}"], first_stride if j == 0 else 1, cfg["t"]))
            c_in = cfg[f"c{i}"]
    return _Classifier(nn.Sequential(*layers), c_in, num_outputs, nn.AdaptiveAvgPool2d)


def _describe_mobilenet(cfg: Mapping[str, Any]) -> str:
    return f"t={cfg['t']} c={cfg['stem']}/{cfg['c1']}-{cfg['c2']}-{cfg['c3']} n={cfg['n1']}-{cfg['n2']}-{cfg['n3']}"


@dataclass(frozen=True, slots=True)
class _Family:
    kind: str  # the task kind its networks solve: "classification" | "segmentation"
    params: Mapping[str, _Param]
    build: Callable[[Mapping[str, Any], tuple[int, int, int], int], nn.Module]
    describe: Callable[[Mapping[str, Any]], str]


_FAMILIES: dict[str, _Family] = {
    "resnet": _Family("classification", _RESNET, _build_resnet, _describe_resnet),
    "unet": _Family("segmentation", _UNET, _build_unet, _describe_unet),
    "mobilenet": _Family("classification", _MOBILENET, _build_mobilenet, _describe_mobilenet),
}


def family_kind(family: str) -> str:
    """The task kind (``classification`` / ``segmentation``) a registered family's networks solve."""
    if family not in _FAMILIES:
        raise CoexploreError(f"unknown network family {family!r} (expected one of {', '.join(_FAMILIES)})")
    return _FAMILIES[family].kind


# ---- the space -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Choice:
    """One searched parameter: its name and the ordered options a vector entry indexes."""

    name: str
    options: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A network family with the choices a search makes; networks are named ``space[i,j,...]``."""

    name: str
    family: str
    choices: tuple[Choice, ...]
    description: str = ""

    def __post_init__(self) -> None:
        where = f"space {self.name!r}"
        if self.family not in _FAMILIES:
            raise CoexploreError(f"{where}: unknown family {self.family!r} (expected one of {', '.join(_FAMILIES)})")
        if not self.choices:
            raise CoexploreError(f"{where}: no choices (a space needs at least one)")
        params = _FAMILIES[self.family].params
        seen: set[str] = set()
        for choice in self.choices:
            if choice.name not in params:
                raise CoexploreError(
                    f"{where}: choice {choice.name!r} is not a parameter of family "
                    f"{self.family!r} (expected one of {', '.join(params)})"
                )
            if choice.name in seen:
                raise CoexploreError(f"{where}: choice {choice.name!r} appears twice")
            seen.add(choice.name)
            if not choice.options:
                raise CoexploreError(f"{where}: choice {choice.name!r} has no options")
            for option in choice.options:
                if not params[choice.name].check(option):
                    raise CoexploreError(
                        f"{where}: option {option!r} of choice {choice.name!r} must be {params[choice.name].expected}"
                    )

    @property
    def kind(self) -> str:
        """The task kind the family's networks solve (``classification`` / ``segmentation``)."""
        return _FAMILIES[self.family].kind

    def cardinalities(self) -> tuple[int, ...]:
        return tuple(len(c.options) for c in self.choices)

    @property
    def size(self) -> int:
        """Number of distinct choice vectors."""
        return math.prod(self.cardinalities())

    def _vector(self, vector: Sequence[int]) -> tuple[int, ...]:
        names = ", ".join(c.name for c in self.choices)
        try:
            values = tuple(operator.index(v) for v in vector)
        except TypeError:
            raise CoexploreError(
                f"space {self.name!r}: choice vector {vector!r} must be a sequence of integers ({names})"
            ) from None
        if len(values) != len(self.choices):
            raise CoexploreError(
                f"space {self.name!r}: choice vector has {len(values)} entries, expected {len(self.choices)} ({names})"
            )
        for i, (v, choice) in enumerate(zip(values, self.choices)):
            if not 0 <= v < len(choice.options):
                raise CoexploreError(
                    f"space {self.name!r}: vector[{i}]={v} is out of range for choice "
                    f"{choice.name!r} (expected 0..{len(choice.options) - 1})"
                )
        return values

    def decode(self, vector: Sequence[int]) -> dict[str, Any]:
        """The chosen option of every choice, by name."""
        values = self._vector(vector)
        return {c.name: c.options[v] for c, v in zip(self.choices, values)}

    def config(self, vector: Sequence[int]) -> dict[str, Any]:
        """Every family parameter: the decoded choices over the family's defaults (what the builder sees)."""
        cfg = {name: p.default for name, p in _FAMILIES[self.family].params.items()}
        cfg.update(self.decode(vector))
        return cfg

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random choice vector."""
        return tuple(int(rng.integers(n)) for n in self.cardinalities())

    def describe(self, vector: Sequence[int]) -> str:
        """Short human form, e.g. ``c=16-32-64 res=1-0-1 k=3``."""
        return _FAMILIES[self.family].describe(self.config(vector))

    def label(self, vector: Sequence[int]) -> str:
        """The network name, e.g. ``resnet[0,2,1,0,1,1,0]``."""
        return f"{self.name}[{','.join(map(str, self._vector(vector)))}]"

    def build(self, vector: Sequence[int], input_shape: tuple[int, int, int], num_outputs: int) -> nn.Module:
        """A fresh module (weights from torch's global RNG: seed it first for reproducible weights)."""
        shape = _check_shape(input_shape, num_outputs)
        return _FAMILIES[self.family].build(self.config(vector), shape, num_outputs)

    def network(self, vector: Sequence[int], input_shape: tuple[int, int, int], num_outputs: int) -> Network:
        """The layer IR of one candidate at batch 1 (traced once per process, then cached)."""
        shape = _check_shape(input_shape, num_outputs)
        return _network(self, self._vector(vector), shape, num_outputs)


def _check_shape(input_shape: Sequence[int], num_outputs: int) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(_is_int(d) and d > 0 for d in shape):
        raise CoexploreError(f"input_shape={input_shape!r} must be three positive integers (channels, height, width)")
    if not _is_int(num_outputs) or num_outputs <= 0:
        raise CoexploreError(f"num_outputs={num_outputs!r} must be a positive integer")
    return shape


@lru_cache(maxsize=1024)
def _network(space: SearchSpace, vector: tuple[int, ...], shape: tuple[int, int, int], num_outputs: int) -> Network:
    from coexplore.models.from_torch import from_torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = space.build(vector, shape, num_outputs).eval()
        example = torch.zeros(1, *shape)
    return from_torch(module, example, name=space.label(vector))


# ---- loading -------------------------------------------------------------------------------------
def builtin_spaces() -> tuple[str, ...]:
    """Names of the spaces shipped in ``models/spaces/``."""
    return tuple(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def parse_space(data: Any, source: str) -> SearchSpace:
    """A :class:`SearchSpace` from the mapping a YAML file holds; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise CoexploreError(
            f"space file {source}: expected a mapping with fields {', '.join(_TOP_FIELDS)}, got {type(data).__name__}"
        )
    unknown = [k for k in data if k not in _TOP_FIELDS]
    if unknown:
        raise CoexploreError(f"space file {source}: unknown field {unknown[0]!r} (expected {', '.join(_TOP_FIELDS)})")
    for field in ("name", "family"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise CoexploreError(
                f"space file {source}: field {field!r} must be a non-empty string, got {data.get(field)!r}"
            )
    if not isinstance(data.get("description", ""), str):
        raise CoexploreError(f"space file {source}: field 'description' must be a string")
    if data["family"] not in _FAMILIES:
        raise CoexploreError(
            f"space file {source}: field 'family' is {data['family']!r} (expected one of {', '.join(_FAMILIES)})"
        )
    choices = data.get("choices")
    if not isinstance(choices, dict) or not choices:
        raise CoexploreError(
            f"space file {source}: field 'choices' must be a non-empty mapping of name -> "
            f"list of options, got {choices!r}"
        )
    parsed = []
    for key, options in choices.items():
        if not isinstance(options, list) or not options:
            raise CoexploreError(
                f"space file {source}: field 'choices.{key}' must be a non-empty list of options, got {options!r}"
            )
        parsed.append(Choice(str(key), tuple(_frozen(o) for o in options)))
    try:
        return SearchSpace(data["name"], data["family"], tuple(parsed), data.get("description", ""))
    except CoexploreError as exc:
        raise CoexploreError(f"space file {source}: {exc}") from None


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int, size: int) -> SearchSpace:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CoexploreError(
            f"space file {path!r} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    return parse_space(data, repr(path))


def space_path(name_or_path: str | Path) -> Path:
    """The YAML file of a builtin space name or a path."""
    text = str(name_or_path)
    if text in builtin_spaces():
        return SPACES_DIR / f"{text}.yaml"
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise CoexploreError(f"space file {text!r} not found")
        return path
    raise CoexploreError(
        f"unknown search space {text!r} (expected one of {', '.join(builtin_spaces())}, or a path to a .yaml file)"
    )


def get_space(name_or_path: str | Path) -> SearchSpace:
    """A builtin space by name (see :func:`builtin_spaces`) or a user space from a YAML file."""
    path = space_path(name_or_path)
    stat = path.stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)
