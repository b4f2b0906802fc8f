"""Tasks for proxy training: nothing is downloaded.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797) made hard enough to rank
  architectures: each digit is upsampled to a random size (9..13 px), placed at a random offset in a
  16x16 frame, given a random contrast, a distractor stroke and Gaussian noise; 800 digits train, the
  other 997 are held out, each rendered twice (1,994 held-out images).
* ``segmentation``: procedurally generated 32x32 "cell" images: smooth, filled ellipses (the foreground
  mask) among distractors of the same brightness that must not be segmented (thin lines, hollow rings,
  sharp-cornered rectangles), on an uneven illumination with noise, so plain thresholding fails (the best
  global threshold reaches IoU 0.48); 320 training and 160 held-out images.
* ``cifar10``: the CIFAR-10 python batches (``data_batch_*`` and ``test_batch`` pickles) in ``data_dir``.
* ``folder-seg``: binary segmentation from ``data_dir/images/*.png|*.npy`` and same-stem masks in
  ``data_dir/masks/``; a seeded 80/20 split.

Every task is a pure function of (name, seed, data_dir) and cached per process.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from coexplore.models.ir import CoexploreError

__all__ = ["TaskData", "TaskInfo", "builtin_tasks", "data_identity", "load_task", "task_info"]

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What a task is, without its tensors."""

    name: str
    kind: str  # "classification" | "segmentation"
    metric: str  # "accuracy" | "iou"
    input_shape: tuple[int, int, int]
    num_outputs: int  # classes, or mask channels (1: binary segmentation)
    default_space: str


@dataclass(frozen=True, eq=False)
class TaskData:
    """Float images ``(N, C, H, W)``; labels ``(N,)`` int64 or masks ``(N, 1, H, W)`` float 0/1."""

    info: TaskInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


# generated tasks (see _digits and _segmentation): bump the version when the images they make change,
# which changes data_identity and so invalidates cached training results
GENERATOR_VERSION = 2
DIGITS_TRAIN = 800  # distinct training digits; the other 997 are held out
DIGITS_FRAME = 16
DIGITS_SIZES = (9, 13)  # digit side after upsampling, inclusive range
DIGITS_NOISE = 0.05  # Gaussian noise std (ink is 0.5..1.0)
DIGITS_STROKES = 1  # distractor strokes per image
DIGITS_VAL_RENDERS = 2  # each held-out digit is rendered this many times: a larger, steadier held-out set
SEG_SIZE = 32
SEG_TRAIN, SEG_VAL = 320, 160

_PROCEDURAL = {
    "digits": TaskInfo("digits", CLASSIFICATION, "accuracy", (1, DIGITS_FRAME, DIGITS_FRAME), 10, "resnet"),
    "segmentation": TaskInfo("segmentation", SEGMENTATION, "iou", (1, SEG_SIZE, SEG_SIZE), 1, "unet"),
}
_FROM_FILES = ("cifar10", "folder-seg")
_IMAGE_SUFFIXES = (".png", ".npy")


def builtin_tasks() -> tuple[str, ...]:
    return (*_PROCEDURAL, *_FROM_FILES)


def _check(name: str, data_dir: str | Path | None) -> Path | None:
    if name not in builtin_tasks():
        raise CoexploreError(f"unknown task {name!r} (expected one of {', '.join(builtin_tasks())})")
    if name in _PROCEDURAL:
        if data_dir is not None:
            raise CoexploreError(f"task {name!r} is generated, it takes no data_dir (got {str(data_dir)!r})")
        return None
    if data_dir is None:
        raise CoexploreError(f"task {name!r} reads files: give its data_dir")
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise CoexploreError(f"task {name!r}: data_dir {str(data_dir)!r} is not a directory")
    return path


# ---- file discovery ------------------------------------------------------------------------------
def _cifar_files(root: Path) -> tuple[list[Path], Path]:
    for folder in (root, root / "cifar-10-batches-py"):
        train = sorted(folder.glob("data_batch_*"))
        if train and (folder / "test_batch").is_file():
            return train, folder / "test_batch"
    raise CoexploreError(
        f"task 'cifar10': no CIFAR-10 python batches (data_batch_1..5 and test_batch) in "
        f"{str(root)!r}; extract cifar-10-python.tar.gz there"
    )


def _folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    images_dir, masks_dir = root / "images", root / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise CoexploreError(
                f"task 'folder-seg': missing folder {str(d)!r} (expected images/ and masks/ "
                "holding same-stem .png or .npy files)"
            )
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if len(images) < 2:
        raise CoexploreError(
            f"task 'folder-seg': {str(images_dir)!r} holds {len(images)} .png/.npy images, expected at least 2"
        )
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES}
    missing = [p.name for p in images if p.stem not in masks]
    if missing:
        raise CoexploreError(
            f"task 'folder-seg': image {missing[0]!r} has no mask {Path(missing[0]).stem}.png|.npy "
            f"in {str(masks_dir)!r}"
        )
    return [(p, masks[p.stem]) for p in images]


def data_identity(name: str, data_dir: str | Path | None = None) -> str:
    """A string that changes when the task's data changes: for generated tasks the name, the generator
    version and its sizes; for file tasks the resolved folder and the name, size and modification time of
    every file read."""
    root = _check(name, data_dir)
    if root is None:
        sizes = (
            (DIGITS_TRAIN, DIGITS_FRAME, DIGITS_SIZES, DIGITS_NOISE, DIGITS_STROKES, DIGITS_VAL_RENDERS)
            if name == "digits"
            else (SEG_SIZE, SEG_TRAIN, SEG_VAL)
        )
        return f"{name}@generated-v{GENERATOR_VERSION}{sizes}"
    if name == "cifar10":
        train, test = _cifar_files(root)
        files = [*train, test]
    else:
        files = [p for pair in _folder_pairs(root) for p in pair]
    stats = ";".join(f"{p.relative_to(root)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    return f"{name}@{root}|{stats}"


# ---- image reading -------------------------------------------------------------------------------
def _read_array(path: Path) -> np.ndarray:
    """The raw array of a ``.npy`` file, or a PNG as matplotlib reads it (float 0..1)."""
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            import matplotlib.image as mpimg

            arr = mpimg.imread(path)  # PNG: float32 in 0..1
    except Exception as exc:  # corrupt or unreadable file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CoexploreError(f"cannot read image {str(path)!r}: {reason}") from None
    if arr.ndim not in (2, 3):
        raise CoexploreError(f"image {str(path)!r} has shape {arr.shape}, expected HxW or HxWxC")
    return arr


def _as_chw(arr: np.ndarray, path: Path) -> np.ndarray:
    """Image as float (C, H, W) in 0..1 for uint8 and PNG input; alpha dropped."""
    arr = arr / 255.0 if arr.dtype == np.uint8 else arr
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2:
        return arr[None]
    if arr.shape[2] == 4:  # RGBA PNG: drop alpha
        arr = arr[..., :3]
    if arr.shape[2] not in (1, 3):
        raise CoexploreError(f"image {str(path)!r} has {arr.shape[2]} channels, expected 1, 3 or 4")
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _as_mask(arr: np.ndarray) -> np.ndarray:
    """Foreground = nonzero in an integer or boolean mask (0/1, 0/255, instance labels), >= 0.5 in a float
    one (PNG masks read as 0..1)."""
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=2)
    if arr.dtype.kind in "biu":
        return (arr > 0).astype(np.float32)
    return (arr >= 0.5).astype(np.float32)


def _first_image_shape(root: Path) -> tuple[int, int, int]:
    path = _folder_pairs(root)[0][0]
    chw = _as_chw(_read_array(path), path)
    return chw.shape


# ---- public API ----------------------------------------------------------------------------------
def task_info(name: str, data_dir: str | Path | None = None) -> TaskInfo:
    """The task's kind, metric, input shape, outputs and default space (reads at most one image)."""
    root = _check(name, data_dir)
    if root is None:
        return _PROCEDURAL[name]
    if name == "cifar10":
        _cifar_files(root)
        return TaskInfo("cifar10", CLASSIFICATION, "accuracy", (3, 32, 32), 10, "resnet")
    return TaskInfo("folder-seg", SEGMENTATION, "iou", _first_image_shape(root), 1, "unet")


def load_task(name: str, seed: int = 0, data_dir: str | Path | None = None) -> TaskData:
    """The task's train and held-out tensors (on the CPU), a deterministic function of ``seed``."""
    root = _check(name, data_dir)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise CoexploreError(f"seed={seed!r} must be a non-negative integer")
    identity = data_identity(name, root)  # part of the cache key: changed files are read again
    return _load(name, seed, root, identity)


@lru_cache(maxsize=16)
def _load(name: str, seed: int, root: Path | None, identity: str) -> TaskData:
    if name == "digits":
        return _digits(seed)
    if name == "segmentation":
        return _segmentation(seed)
    if name == "cifar10":
        return _cifar10(root, seed)  # type: ignore[arg-type]
    return _folder_seg(root, seed)  # type: ignore[arg-type]


def _standardize(x_train: np.ndarray, x_val: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel zero mean, unit variance with the training split's statistics."""
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return (
        torch.from_numpy(((x_train - mean) / std).astype(np.float32)),
        torch.from_numpy(((x_val - mean) / std).astype(np.float32)),
    )


# ---- digits --------------------------------------------------------------------------------------


def _render_digits(images: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    """Each 8x8 digit (0..1) upsampled to a random size, at a random offset in the frame, with a random
    contrast, a distractor stroke and Gaussian noise."""
    n = len(images)
    frames = np.zeros((n, 1, DIGITS_FRAME, DIGITS_FRAME), np.float32)
    sizes = rng.integers(DIGITS_SIZES[0], DIGITS_SIZES[1] + 1, n)
    for size in np.unique(sizes):  # one interpolation per digit size
        idx = np.flatnonzero(sizes == size)
        scaled = F.interpolate(images[idx], size=(int(size), int(size)), mode="bilinear", align_corners=False)
        offsets = rng.integers(0, DIGITS_FRAME - size + 1, (len(idx), 2))
        for j, (dy, dx), digit in zip(idx, offsets, scaled.numpy()):
            frames[j, :, dy : dy + size, dx : dx + size] = digit
    frames *= rng.uniform(0.5, 1.0, (n, 1, 1, 1)).astype(np.float32)  # contrast
    # distractor strokes: short straight lines of random position, angle and brightness
    yy, xx = np.mgrid[0:DIGITS_FRAME, 0:DIGITS_FRAME].astype(np.float32)
    for _ in range(DIGITS_STROKES):
        cy, cx = rng.uniform(0, DIGITS_FRAME, (2, n, 1, 1))
        angle = rng.uniform(0, np.pi, (n, 1, 1))
        length = rng.uniform(3, 8, (n, 1, 1))
        along = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
        across = -(yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
        stroke = (np.abs(across) < 0.7) & (np.abs(along) < length / 2)
        frames[:, 0] = np.maximum(frames[:, 0], stroke * rng.uniform(0.3, 0.8, (n, 1, 1)))
    frames += rng.normal(0.0, DIGITS_NOISE, frames.shape).astype(np.float32)
    return frames


def _digits(seed: int) -> TaskData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(labels))
    train, val = order[:DIGITS_TRAIN], np.tile(order[DIGITS_TRAIN:], DIGITS_VAL_RENDERS)
    x_train, x_val = _standardize(_render_digits(images[train], rng), _render_digits(images[val], rng))
    return TaskData(
        _PROCEDURAL["digits"], x_train, torch.from_numpy(labels[train]), x_val, torch.from_numpy(labels[val])
    )


# ---- procedural segmentation ---------------------------------------------------------------------


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, theta: float) -> np.ndarray:
    """Signed radius: < 1 inside the rotated ellipse."""
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return np.sqrt((u / rx) ** 2 + (v / ry) ** 2)


def _seg_image(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = SEG_SIZE
    g = rng.uniform(-0.25, 0.25, 2)
    image = 0.15 + g[0] * (yy / s - 0.5) + g[1] * (xx / s - 0.5)  # uneven illumination
    mask = np.zeros((s, s), bool)
    for _ in range(rng.integers(1, 5)):  # cells: smooth filled ellipses, soft edge, darker nucleus
        cy, cx = rng.uniform(3, s - 3, 2)
        ry, rx = rng.uniform(2.5, 6.0, 2)
        theta = rng.uniform(0, np.pi)
        rad = _ellipse(yy, xx, cy, cx, ry, rx, theta)
        level = rng.uniform(0.45, 0.85)
        image = np.maximum(image, level * np.clip(1.5 - rad, 0, 1) ** 0.5 - 0.15 * (rad < 0.35))
        mask |= rad < 1.0
    for _ in range(rng.integers(1, 4)):  # distractors of cell brightness: not foreground
        level = rng.uniform(0.45, 0.85)
        kind = rng.integers(3)
        cy, cx = rng.uniform(2, s - 2, 2)
        if kind == 0:  # thin line
            theta = rng.uniform(0, np.pi)
            across = -(yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)
            along = (yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
            shape = (np.abs(across) < rng.uniform(0.5, 1.2)) & (np.abs(along) < rng.uniform(5, 14))
        elif kind == 1:  # hollow ring
            r = rng.uniform(3.5, 7.0)
            dist = np.hypot(yy - cy, xx - cx)
            shape = np.abs(dist - r) < rng.uniform(0.6, 1.2)
        else:  # sharp-cornered rectangle
            hy, hx = rng.uniform(2.0, 5.0, 2)
            shape = (np.abs(yy - cy) < hy) & (np.abs(xx - cx) < hx)
        image = np.where(shape & ~mask, np.maximum(image, level), image)
    image = image + rng.normal(0.0, 0.08, image.shape)
    return image.astype(np.float32), mask.astype(np.float32)


def _segmentation(seed: int) -> TaskData:
    rng = np.random.default_rng([seed, 2])
    yy, xx = np.mgrid[0:SEG_SIZE, 0:SEG_SIZE].astype(np.float32) + 0.5
    pairs = [_seg_image(rng, yy, xx) for _ in range(SEG_TRAIN + SEG_VAL)]
    images = np.stack([p[0] for p in pairs])[:, None]
    masks = torch.from_numpy(np.stack([p[1] for p in pairs])[:, None])
    x_train, x_val = _standardize(images[:SEG_TRAIN], images[SEG_TRAIN:])
    return TaskData(_PROCEDURAL["segmentation"], x_train, masks[:SEG_TRAIN], x_val, masks[SEG_TRAIN:])


# ---- CIFAR-10 ------------------------------------------------------------------------------------
def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:
        raise CoexploreError(
            f"task 'cifar10': {str(path)!r} is not a CIFAR-10 python batch (a pickled dict "
            f"with b'data' N x 3072 uint8 and b'labels'): {type(exc).__name__}"
        ) from None
    if len(data) != len(labels):
        raise CoexploreError(f"task 'cifar10': {str(path)!r} has {len(data)} images but {len(labels)} labels")
    return data, labels


def _cifar10(root: Path, seed: int) -> TaskData:
    """Training batches in a seeded order (so a prefix is a random subset); the test batch held out."""
    train_files, test_file = _cifar_files(root)
    parts = [_cifar_batch(p) for p in train_files]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_val, y_val = _cifar_batch(test_file)
    order = np.random.default_rng([seed, 3]).permutation(len(y_train))
    xt, xv = _standardize(x_train[order].astype(np.float32) / 255.0, x_val.astype(np.float32) / 255.0)
    return TaskData(task_info("cifar10", root), xt, torch.from_numpy(y_train[order]), xv, torch.from_numpy(y_val))


# ---- image/mask folders --------------------------------------------------------------------------
def _folder_seg(root: Path, seed: int) -> TaskData:
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for image_path, mask_path in _folder_pairs(root):
        image = _as_chw(_read_array(image_path), image_path)
        mask = _as_mask(_read_array(mask_path))
        if images and image.shape != images[0].shape:
            raise CoexploreError(
                f"task 'folder-seg': image {image_path.name!r} is {image.shape} (C, H, W), "
                f"expected {images[0].shape} like the first image"
            )
        if mask.shape != image.shape[1:]:
            raise CoexploreError(
                f"task 'folder-seg': mask {mask_path.name!r} is {mask.shape}, expected {image.shape[1:]} like its image"
            )
        images.append(image)
        masks.append(mask[None])
    x, y = np.stack(images), torch.from_numpy(np.stack(masks))
    order = np.random.default_rng([seed, 4]).permutation(len(x))
    n_val = max(1, len(x) // 5)
    train, val = order[n_val:], order[:n_val]
    x_train, x_val = _standardize(x[train], x[val])
    info = TaskInfo("folder-seg", SEGMENTATION, "iou", tuple(x.shape[1:]), 1, "unet")
    return TaskData(info, x_train, y[train], x_val, y[val])
