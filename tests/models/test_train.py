"""Proxy training: deterministic by seed, served from the on-disk cache the second time, keyed by
everything that changes the result; the slow checks hold the ranking quality the search relies on."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from coexplore.models.ir import CoexploreError
from coexplore.models.spaces import get_space
from coexplore.models.train import Recipe, TrainResult, default_cache_dir, default_recipe, train_candidate

QUICK = Recipe(epochs=1, batch_size=64, lr=0.05, max_train=192)
SMALL = (0, 0, 0, 0, 0, 0, 0)  # the smallest resnet candidate


def test_same_seed_same_metric_and_the_cache_serves_the_second_call(tmp_path) -> None:
    first = train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path / "a", device="cpu")
    assert isinstance(first, TrainResult) and not first.cached
    assert first.metric_name == "accuracy" and 0.0 <= first.metric <= 1.0
    assert first.device == "cpu" and first.params > 0 and first.seconds > 0
    files = list((tmp_path / "a").glob("*.json"))
    assert [f.stem for f in files] == [first.key]
    assert json.loads(files[0].read_text())["metric"] == first.metric

    again = train_candidate("resnet", list(SMALL), "digits", QUICK, cache_dir=tmp_path / "a", device="cpu")
    assert again.cached and again.metric == first.metric and again.key == first.key

    fresh = train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path / "b", device="cpu")
    assert not fresh.cached and fresh.metric == first.metric  # retrained from scratch: same number


def test_the_key_follows_recipe_network_and_task(tmp_path) -> None:
    base = train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path, device="cpu")
    other_seed = train_candidate("resnet", SMALL, "digits", dataclasses.replace(QUICK, seed=1), cache_dir=tmp_path)
    assert not other_seed.cached and other_seed.key != base.key
    assert QUICK.key() != dataclasses.replace(QUICK, lr=0.01).key()
    assert QUICK.key() == Recipe(**dataclasses.asdict(QUICK)).key()
    other_net = train_candidate("resnet", (1, 0, 0, 0, 0, 0, 0), "digits", QUICK, cache_dir=tmp_path)
    assert other_net.key != base.key
    # a user space that fixes the other parameters at the same values names the same network: same key
    space = get_space("resnet")
    cfg = space.config(SMALL)
    user = tmp_path / "mine.yaml"
    user.write_text("name: mine\nfamily: resnet\nchoices:\n" + "".join(f"  {k}: [{int(v)}]\n" for k, v in cfg.items()))
    mine = train_candidate(str(user), (0,) * len(cfg), "digits", QUICK, cache_dir=tmp_path)
    assert mine.cached and mine.key == base.key and mine.metric == base.metric


def test_segmentation_trains_and_reports_iou(tmp_path) -> None:
    recipe = Recipe(epochs=1, batch_size=16, lr=0.01, max_train=32)
    result = train_candidate("unet", (0, 0, 0, 0, 0), "segmentation", recipe, cache_dir=tmp_path, device="cpu")
    assert result.metric_name == "iou" and 0.0 <= result.metric <= 1.0


def test_errors_are_one_line(tmp_path) -> None:
    with pytest.raises(
        CoexploreError,
        match="space 'unet' \\(family unet\\) builds segmentation networks, but task 'digits' is classification",
    ):
        train_candidate("unet", (0, 0, 0, 0, 0), "digits", QUICK, cache_dir=tmp_path)
    with pytest.raises(CoexploreError, match="vector\\[0\\]=9 is out of range"):
        train_candidate("resnet", (9, 0, 0, 0, 0, 0, 0), "digits", QUICK, cache_dir=tmp_path)
    with pytest.raises(CoexploreError, match="recipe epochs=0 must be a positive integer"):
        Recipe(epochs=0, batch_size=8, lr=0.1)
    with pytest.raises(CoexploreError, match="recipe lr=-1"):
        Recipe(epochs=1, batch_size=8, lr=-1)
    with pytest.raises(CoexploreError, match="unknown device 'tpu9'|unsupported device"):
        train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path, device="tpu9")
    with pytest.raises(CoexploreError, match="unknown task 'mnist'"):
        default_recipe("mnist")
    assert not list(tmp_path.glob("*.json"))


def test_a_torn_cache_file_is_retrained(tmp_path) -> None:
    first = train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path)
    (tmp_path / f"{first.key}.json").write_text('{"metric": 0.5')
    again = train_candidate("resnet", SMALL, "digits", QUICK, cache_dir=tmp_path)
    assert not again.cached and again.metric == first.metric
    assert json.loads((tmp_path / f"{first.key}.json").read_text())["metric"] == first.metric


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COEXPLORE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "train"
    monkeypatch.delenv("COEXPLORE_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "coexplore", "train")


# ---- ranking quality (really trains: minutes; run with -m slow -s to see the figures) -------------
@pytest.mark.slow
def test_digits_ranks_resnet_architectures_consistently_across_seeds(tmp_path) -> None:
    from scipy.stats import kendalltau

    space = get_space("resnet")
    rng = np.random.default_rng(2020)
    vectors = [space.sample(rng) for _ in range(20)]
    recipe = default_recipe("digits")
    runs = {
        seed: [
            train_candidate(
                "resnet", v, "digits", dataclasses.replace(recipe, seed=seed), cache_dir=tmp_path, device="cpu"
            )
            for v in vectors
        ]
        for seed in (0, 1)
    }
    scores = {seed: [r.metric for r in results] for seed, results in runs.items()}
    seconds = [r.seconds for results in runs.values() for r in results]
    tau = kendalltau(scores[0], scores[1])[0]
    spread = max(scores[0]) - min(scores[0])
    print(
        f"\ndigits/resnet, 20 archs x 2 seeds: accuracy {min(scores[0]):.3f}..{max(scores[0]):.3f} "
        f"(spread {spread:.3f}), Kendall tau {tau:.3f}; seconds per candidate: mean {np.mean(seconds):.2f}, "
        f"median {np.median(seconds):.2f}, max {max(seconds):.2f} (the first includes warm-up)"
    )
    assert spread >= 0.05, scores
    assert tau >= 0.6, (tau, scores)


@pytest.mark.slow
def test_segmentation_unet_beats_thresholding_and_varies_across_the_space(tmp_path) -> None:
    from coexplore.models.data import load_task

    data = load_task("segmentation")
    truth = data.y_val > 0.5
    threshold_iou = 0.0  # the best global threshold, chosen on the held-out split itself (an oracle)
    for t in np.linspace(float(data.x_val.min()), float(data.x_val.max()), 200):
        pred = data.x_val > t
        threshold_iou = max(threshold_iou, float((pred & truth).sum() / (pred | truth).sum()))
    space = get_space("unet")
    rng = np.random.default_rng(7)
    vectors = [(0,) * len(space.choices), tuple(n - 1 for n in space.cardinalities())]
    vectors += [space.sample(rng) for _ in range(4)]
    results = [train_candidate("unet", v, "segmentation", cache_dir=tmp_path, device="cpu") for v in vectors]
    ious = [r.metric for r in results]
    print(
        f"\nsegmentation/unet, {len(vectors)} archs: IoU {min(ious):.3f}..{max(ious):.3f}, oracle threshold "
        f"{threshold_iou:.3f}; seconds per candidate: {', '.join(f'{r.seconds:.1f}' for r in results)}"
    )
    assert max(ious) >= threshold_iou + 0.15, (ious, threshold_iou)
    assert max(ious) - min(ious) >= 0.05, ious
