"""Tasks: generated ones are deterministic by seed with the advertised shapes; the CIFAR-10 and image/mask
folder loaders read small files written here; missing or misused data is a one-line error."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from coexplore.models.data import builtin_tasks, data_identity, load_task, task_info
from coexplore.models.ir import CoexploreError


def test_builtin_tasks_and_infos() -> None:
    assert builtin_tasks() == ("digits", "segmentation", "cifar10", "folder-seg")
    digits, seg = task_info("digits"), task_info("segmentation")
    assert (digits.kind, digits.metric, digits.num_outputs, digits.default_space) == (
        "classification",
        "accuracy",
        10,
        "resnet",
    )
    assert (seg.kind, seg.metric, seg.num_outputs, seg.default_space) == ("segmentation", "iou", 1, "unet")


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["digits", "segmentation"])
def test_generated_tasks_are_deterministic_by_seed(name: str) -> None:
    a, b = load_task(name, seed=0), load_task(name, seed=1)
    assert load_task(name, seed=0) is a  # cached in-process
    info = task_info(name)
    assert a.info == info
    for data in (a, b):
        assert data.x_train.shape[1:] == data.x_val.shape[1:] == info.input_shape
        assert len(data.x_train) == len(data.y_train) and len(data.x_val) == len(data.y_val)
        assert data.x_train.dtype == torch.float32 and torch.isfinite(data.x_train).all()
    assert not torch.equal(a.x_train, b.x_train)
    from coexplore.models import data as module

    module._load.cache_clear()
    again = load_task(name, seed=0)
    assert again is not a and torch.equal(again.x_train, a.x_train) and torch.equal(again.y_val, a.y_val)


def test_digits_labels_and_segmentation_masks() -> None:
    digits = load_task("digits")
    assert digits.y_train.dtype == torch.int64 and set(digits.y_train.tolist()) == set(range(10))
    assert abs(float(digits.x_train.mean())) < 1e-3  # standardized with training statistics
    seg = load_task("segmentation")
    assert seg.y_train.shape == (len(seg.x_train), 1, 32, 32)
    assert set(torch.unique(seg.y_train).tolist()) == {0.0, 1.0}
    assert 0.03 < float(seg.y_train.mean()) < 0.4  # cells cover some, not most, of each image


def test_generated_tasks_take_no_data_dir(tmp_path) -> None:
    with pytest.raises(CoexploreError, match="task 'digits' is generated, it takes no data_dir"):
        load_task("digits", data_dir=tmp_path)
    with pytest.raises(CoexploreError, match="task 'segmentation' is generated"):
        task_info("segmentation", tmp_path)


def test_unknown_task_and_bad_seed() -> None:
    with pytest.raises(CoexploreError, match="unknown task 'mnist' \\(expected one of digits, segmentation, cifar10"):
        task_info("mnist")
    with pytest.raises(CoexploreError, match="seed=-1"):
        load_task("digits", seed=-1)


# ---- CIFAR-10 ------------------------------------------------------------------------------------
def _write_cifar(folder, n_train: int = 10, n_test: int = 5) -> np.ndarray:
    rng = np.random.default_rng(n_train)
    folder.mkdir(parents=True, exist_ok=True)
    data = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": data, b"labels": [i % 10 for i in range(n_train)], b"batch_label": b"x"}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), b"labels": list(range(n_test))}, f)
    return data


def test_cifar10_reads_python_batches(tmp_path) -> None:
    data = _write_cifar(tmp_path)
    info = task_info("cifar10", tmp_path)
    assert (info.input_shape, info.num_outputs, info.kind) == ((3, 32, 32), 10, "classification")
    task = load_task("cifar10", seed=0, data_dir=tmp_path)
    assert task.x_train.shape == (10, 3, 32, 32) and task.x_val.shape == (5, 3, 32, 32)
    assert task.y_val.tolist() == [0, 1, 2, 3, 4]
    assert sorted(task.y_train.tolist()) == list(range(10)) and task.y_train.tolist() != list(range(10))
    for image, label in zip(task.x_train, task.y_train.tolist()):  # label i is raw image i, standardized
        raw = data[label].reshape(3, 32, 32).astype(float)
        for c in range(3):
            assert np.corrcoef(raw[c].ravel(), image[c].ravel().numpy())[0, 1] > 0.9999
    # also found one level down, as extracted from cifar-10-python.tar.gz
    _write_cifar(tmp_path / "nested" / "cifar-10-batches-py")
    assert load_task("cifar10", data_dir=tmp_path / "nested").x_train.shape == (10, 3, 32, 32)


def test_cifar10_errors(tmp_path) -> None:
    with pytest.raises(CoexploreError, match="task 'cifar10' reads files: give its data_dir"):
        task_info("cifar10")
    with pytest.raises(CoexploreError, match="is not a directory"):
        load_task("cifar10", data_dir=tmp_path / "absent")
    with pytest.raises(CoexploreError, match="no CIFAR-10 python batches .*data_batch_1..5 and test_batch") as err:
        load_task("cifar10", data_dir=tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(CoexploreError, match="is not a CIFAR-10 python batch"):
        load_task("cifar10", data_dir=tmp_path)


# ---- image/mask folders --------------------------------------------------------------------------
def _write_folder(root, n: int = 5) -> None:
    import matplotlib.image as mpimg

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.random((12, 12, 3)).astype(np.float32)
        mask = np.zeros((12, 12), np.uint8)
        mask[2:6, 3:9] = 1
        if i % 2:  # PNG pair (RGB image, 0/255 grey mask)
            mpimg.imsave(root / "images" / f"s{i}.png", image)
            mpimg.imsave(root / "masks" / f"s{i}.png", mask * 255, cmap="gray", vmin=0, vmax=255)
        else:  # .npy pair (uint8 image, 0/1 mask)
            np.save(root / "images" / f"s{i}.npy", (image * 255).astype(np.uint8))
            np.save(root / "masks" / f"s{i}.npy", mask)


def test_folder_seg_reads_png_and_npy_pairs(tmp_path) -> None:
    _write_folder(tmp_path)
    info = task_info("folder-seg", tmp_path)
    assert (info.input_shape, info.num_outputs, info.metric) == ((3, 12, 12), 1, "iou")
    task = load_task("folder-seg", seed=0, data_dir=tmp_path)
    assert task.x_train.shape == (4, 3, 12, 12) and task.x_val.shape == (1, 3, 12, 12)
    masks = torch.cat([task.y_train, task.y_val])
    assert masks.shape == (5, 1, 12, 12)
    expected = torch.zeros(12, 12)
    expected[2:6, 3:9] = 1
    assert all(torch.equal(m[0], expected) for m in masks)
    other = load_task("folder-seg", seed=1, data_dir=tmp_path)
    assert not torch.equal(other.y_val, task.y_val) or not torch.equal(other.x_val, task.x_val)


def test_folder_seg_errors(tmp_path) -> None:
    with pytest.raises(CoexploreError, match="missing folder .*images"):
        load_task("folder-seg", data_dir=tmp_path)
    _write_folder(tmp_path, n=3)
    (tmp_path / "masks" / "s1.png").unlink()
    with pytest.raises(CoexploreError, match="image 's1.png' has no mask s1.png|.npy"):
        load_task("folder-seg", data_dir=tmp_path)
    np.save(tmp_path / "masks" / "s1.npy", np.zeros((12, 12), np.uint8))
    np.save(tmp_path / "images" / "s9.npy", np.zeros((8, 8), np.uint8))
    np.save(tmp_path / "masks" / "s9.npy", np.zeros((8, 8), np.uint8))
    with pytest.raises(CoexploreError, match="image 's9.npy' is \\(1, 8, 8\\)"):
        load_task("folder-seg", data_dir=tmp_path)


def test_data_identity_follows_the_files(tmp_path) -> None:
    assert data_identity("digits").startswith("digits@generated-v") and "segmentation" in data_identity("segmentation")
    _write_cifar(tmp_path)
    before = data_identity("cifar10", tmp_path)
    assert str(tmp_path.resolve()) in before
    _write_cifar(tmp_path, n_train=14)
    assert data_identity("cifar10", tmp_path) != before
