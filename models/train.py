"""Proxy training: a candidate's held-out accuracy (or IoU) after a short, seeded training run.

:func:`train_candidate` is a pure function of its arguments: the seed fixes the weights and the batch
order, CPU runs use one torch thread (so parallel workers do not fight), and CUDA is used when present
(batch sizes unchanged). Results are cached on disk, one JSON file per hash of (network configuration,
task data identity, recipe), written atomically, so no candidate is trained twice across runs and
processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coexplore.models.data import CLASSIFICATION, TaskData, data_identity, load_task, task_info
from coexplore.models.ir import CoexploreError
from coexplore.models.spaces import BUILDER_VERSION, SearchSpace, get_space

__all__ = [
    "Recipe",
    "TrainResult",
    "candidate_key",
    "default_cache_dir",
    "default_recipe",
    "device_name",
    "evaluate",
    "train_candidate",
]

TRAIN_VERSION = 2  # bump when the training loop changes what a recipe yields (invalidates the cache)
_EVAL_BATCH = 512
_OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a candidate is trained: ``epochs`` over the training split in seeded random batches, a
    one-cycle learning rate peaking at ``lr``, then the held-out metric.

    ``seed`` fixes the initial weights and the batch order; ``data_seed`` the task's generated data and
    split; ``max_train`` > 0 keeps that many training samples (a prefix of the seeded order); ``optimizer``
    is ``"sgd"`` (Nesterov, momentum 0.9) or ``"adamw"``; ``clip_grad`` > 0 clips the gradient norm;
    ``precise_bn`` re-estimates BatchNorm statistics over the training split before evaluating."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    seed: int = 0
    data_seed: int = 0
    max_train: int = 0
    optimizer: str = "sgd"
    clip_grad: float = 0.0
    precise_bn: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise CoexploreError(
                f"recipe optimizer={self.optimizer!r} is unknown (expected one of {', '.join(_OPTIMIZERS)})"
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise CoexploreError(f"recipe {name}={value!r} must be a positive integer")
        for name in ("seed", "data_seed", "max_train"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise CoexploreError(f"recipe {name}={value!r} must be a non-negative integer")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise CoexploreError(f"recipe lr={self.lr!r} must be a positive number")
        for name in ("weight_decay", "clip_grad"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise CoexploreError(f"recipe {name}={value!r} must be a non-negative number")

    def key(self) -> str:
        """A short stable hash of every field."""
        return _hash(asdict(self))


_DEFAULTS = {
    "digits": Recipe(epochs=5, batch_size=64, lr=0.005, weight_decay=0.01, optimizer="adamw", clip_grad=2.0),
    "segmentation": Recipe(epochs=4, batch_size=16, lr=0.05, weight_decay=1e-4, clip_grad=2.0),
    "cifar10": Recipe(epochs=3, batch_size=64, lr=0.1, weight_decay=5e-4, clip_grad=2.0, max_train=5000),
    "folder-seg": Recipe(epochs=20, batch_size=8, lr=0.02, weight_decay=1e-4, clip_grad=2.0),
}


def default_recipe(task: str) -> Recipe:
    """The proxy recipe for ``task``, sized for one CPU thread: about 1 s per digits candidate (AdamW, 5
    epochs of 800 images: it ranks the resnet space consistently across seeds), 1-6 s per segmentation one
    (SGD, 4 epochs of 320 images)."""
    if task not in _DEFAULTS:
        raise CoexploreError(f"unknown task {task!r} (expected one of {', '.join(_DEFAULTS)})")
    return _DEFAULTS[task]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """``metric``: accuracy or IoU (0..1) on the held-out split; ``seconds``: the training run's wall time
    (also when ``cached``, i.e. served from the cache without training); ``key``: the cache key."""

    metric: float
    metric_name: str
    seconds: float
    cached: bool
    device: str
    params: int
    key: str


def default_cache_dir() -> Path:
    """``$COEXPLORE_CACHE/train``, or ``~/.cache/coexplore/train``."""
    root = os.environ.get("COEXPLORE_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "coexplore") / "train"


def _hash(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def candidate_key(
    space: SearchSpace, vector: Sequence[int], task: str, recipe: Recipe, data_dir: str | Path | None = None
) -> str:
    """The cache key: the network the space builds for ``vector`` (family and every parameter, so
    renaming a space or fixing a parameter at the value it had keeps the key), the task's data and the
    recipe."""
    return _hash(
        {
            "versions": [BUILDER_VERSION, TRAIN_VERSION],
            "family": space.family,
            "config": {k: int(v) if isinstance(v, bool) else v for k, v in space.config(vector).items()},
            "data": data_identity(task, data_dir),
            "recipe": asdict(recipe),
        }
    )


def _read_cache(path: Path) -> dict | None:
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or torn by a crash: train again
    needed = {f.name for f in fields(TrainResult)} - {"cached", "key"}
    return entry if isinstance(entry, dict) and needed <= entry.keys() else None


def _write_cache(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _resolve_device(device: str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise CoexploreError(f"unknown device {device!r} (expected cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CoexploreError(f"device {device!r} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise CoexploreError(f"unsupported device {device!r} (expected cpu, cuda or cuda:N)")
    return dev


def device_name(dev: torch.device) -> str:
    """What a run reports as its device: ``"cpu"``, or the CUDA device's name (e.g. ``"NVIDIA H100"``)."""
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def _loss(kind: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; for segmentation binary cross-entropy plus soft Dice, so that a network does not
    settle on "all background" (most pixels) before it finds the foreground."""
    if kind == CLASSIFICATION:
        return F.cross_entropy(logits, target)
    prob = torch.sigmoid(logits)
    dice = (2 * (prob * target).sum() + 1.0) / (prob.sum() + target.sum() + 1.0)
    return F.binary_cross_entropy_with_logits(logits, target) + (1.0 - dice)


@torch.no_grad()
def evaluate(model: nn.Module, data: TaskData, device: torch.device) -> float:
    """Accuracy, or the foreground IoU over every held-out pixel (logit > 0 is foreground)."""
    model.eval()
    hits = inter = union = 0.0
    for i in range(0, len(data.x_val), _EVAL_BATCH):
        x = data.x_val[i : i + _EVAL_BATCH].to(device).contiguous(memory_format=torch.channels_last)
        y = data.y_val[i : i + _EVAL_BATCH].to(device)
        out = model(x)
        if data.info.kind == CLASSIFICATION:
            hits += (out.argmax(1) == y).sum().item()
        else:
            pred, truth = out > 0, y > 0.5
            inter += (pred & truth).sum().item()
            union += (pred | truth).sum().item()
    if data.info.kind == CLASSIFICATION:
        return hits / len(data.x_val)
    return inter / union if union else 1.0


def _fit(model: nn.Module, data: TaskData, recipe: Recipe, device: torch.device) -> None:
    x_train, y_train = data.x_train, data.y_train
    if recipe.max_train:
        x_train, y_train = x_train[: recipe.max_train], y_train[: recipe.max_train]
    x_train, y_train = x_train.to(device), y_train.to(device)
    n = len(x_train)
    steps = recipe.epochs * sum(1 for i in range(0, n, recipe.batch_size) if min(recipe.batch_size, n - i) >= 2)
    params = list(model.parameters())
    if recipe.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay, foreach=True
        )
    else:
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=max(steps, 1), pct_start=0.25)
    gen = torch.Generator().manual_seed(recipe.seed)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        xs, ys = x_train[order].contiguous(memory_format=torch.channels_last), y_train[order]
        for i in range(0, n, recipe.batch_size):
            if min(recipe.batch_size, n - i) < 2:  # a batch of one breaks BatchNorm: skip it
                continue
            opt.zero_grad(set_to_none=True)
            _loss(data.info.kind, model(xs[i : i + recipe.batch_size]), ys[i : i + recipe.batch_size]).backward()
            if recipe.clip_grad:
                nn.utils.clip_grad_norm_(params, recipe.clip_grad, foreach=True)
            opt.step()
            sched.step()
    if recipe.precise_bn:
        _precise_bn(model, x_train.contiguous(memory_format=torch.channels_last), max(recipe.batch_size, 128))


@torch.no_grad()
def _precise_bn(model: nn.Module, x_train: torch.Tensor, batch_size: int) -> None:
    """Re-estimate every BatchNorm's running statistics as exact averages over the training set with the
    final weights, instead of the lagging exponential averages of training ("precise BN", Wu & Johnson
    2021): steadier held-out metrics for short runs."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i in range(0, len(x_train), batch_size):
        model(x_train[i : i + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def train_candidate(
    space: str,
    vector: Sequence[int],
    task: str,
    recipe: Recipe | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str | None = None,
) -> TrainResult:
    """Train candidate ``vector`` of search space ``space`` (a builtin name or a YAML path) on ``task``
    with ``recipe`` (default: :func:`default_recipe`) and return its held-out metric, from the on-disk
    cache in ``cache_dir`` (default: :func:`default_cache_dir`) when this exact run was done before."""
    sp = get_space(space)
    info = task_info(task, data_dir)
    if sp.kind != info.kind:
        raise CoexploreError(
            f"space {sp.name!r} (family {sp.family}) builds {sp.kind} networks, but task {task!r} is {info.kind}"
        )
    recipe = default_recipe(task) if recipe is None else recipe
    if not isinstance(recipe, Recipe):
        raise CoexploreError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    key = candidate_key(sp, vector, task, recipe, data_dir)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{key}.json"
    entry = _read_cache(path)
    if entry is not None:
        return TrainResult(
            float(entry["metric"]),
            entry["metric_name"],
            float(entry["seconds"]),
            True,
            entry["device"],
            int(entry["params"]),
            key,
        )

    dev = _resolve_device(device)
    data = load_task(task, recipe.data_seed, data_dir)
    threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn
    flags = (cudnn.deterministic, cudnn.benchmark)
    if dev.type == "cpu":
        torch.set_num_threads(1)  # one thread per candidate: parallel workers do not fight over cores
    else:
        cudnn.deterministic, cudnn.benchmark = True, False  # same seed, same metric on the GPU too
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(recipe.seed)
            # channels-last: about 10-20 % faster for these small convs on CPU (oneDNN), fine on CUDA.
            # Module.to takes memory_format at run time, but torch's overloads for it omit that keyword.
            model = sp.build(vector, info.input_shape, info.num_outputs)
            model = model.to(dev, memory_format=torch.channels_last)  # type: ignore[call-overload]
            _fit(model, data, recipe, dev)
            metric = evaluate(model, data, dev)
    finally:
        torch.set_num_threads(threads)
        cudnn.deterministic, cudnn.benchmark = flags
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    entry = {
        "metric": metric,
        "metric_name": info.metric,
        "seconds": round(seconds, 4),
        "device": device_name(dev),
        "params": params,
        "space": sp.name,
        "vector": [int(v) for v in vector],
        "describe": sp.describe(vector),
        "task": task,
        "recipe": asdict(recipe),
    }
    _write_cache(path, entry)
    return TrainResult(metric, info.metric, seconds, False, device_name(dev), params, key)
