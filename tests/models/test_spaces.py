"""NAS search spaces: every builtin space builds and lowers at its task's shape, sizes, decoding errors,
user spaces from YAML files and one-line errors for malformed ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coexplore.models.ir import CoexploreError, OpKind
from coexplore.models.spaces import Choice, SearchSpace, builtin_spaces, get_space

SHAPES = {
    "resnet": [((1, 16, 16), 10), ((3, 32, 32), 10)],
    "mobilenet": [((1, 16, 16), 10), ((3, 32, 32), 10)],
    "unet": [((1, 32, 32), 1)],
}


def test_builtins_are_listed() -> None:
    assert set(builtin_spaces()) == {"resnet", "unet", "mobilenet"}
    for name in builtin_spaces():
        space = get_space(name)
        assert space.name == name and space.description
        assert space.size == math.prod(space.cardinalities()) > 1
        assert space.cardinalities() == tuple(len(c.options) for c in space.choices)


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["resnet", "unet", "mobilenet"])
def test_extreme_and_random_vectors_build_and_lower(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    vectors = [tuple(0 for _ in space.choices), tuple(n - 1 for n in space.cardinalities()), space.sample(rng)]
    for shape, outputs in SHAPES[name]:
        for vector in vectors:
            module = space.build(vector, shape, outputs)
            with torch.no_grad():
                out = module.eval()(torch.zeros(2, *shape))
            expected = (2, outputs, *shape[1:]) if space.kind == "segmentation" else (2, outputs)
            assert tuple(out.shape) == expected
            net = space.network(vector, shape, outputs)
            assert net.name == space.label(vector) and net.macs > 0
            assert net.name.startswith(f"{name}[") and net.name.endswith("]")


def test_network_is_cached_and_matches_the_choices() -> None:
    space = get_space("resnet")
    small, big = (0,) * len(space.choices), tuple(n - 1 for n in space.cardinalities())
    a = space.network(small, (1, 16, 16), 10)
    assert space.network(list(small), (1, 16, 16), 10) is a
    assert space.network(big, (1, 16, 16), 10).macs > a.macs
    convs = [layer for layer in a.layers if layer.kind is OpKind.CONV]
    cfg = space.config(small)
    assert not (cfg["res1"] or cfg["res2"] or cfg["res3"])
    assert [layer.k for layer in convs] == [cfg["c1"], cfg["c2"], cfg["c3"]]
    assert all(layer.r == cfg["k"] for layer in convs)


def test_residual_adds_an_eltwise_layer() -> None:
    space = get_space("resnet")
    names = [c.name for c in space.choices]
    vector = [0] * len(names)
    plain = space.network(vector, (1, 16, 16), 10)
    vector[names.index("res2")] = space.choices[names.index("res2")].options.index(1)
    residual = space.network(vector, (1, 16, 16), 10)
    assert sum(layer.kind is OpKind.ELTWISE for layer in residual.layers) == 1
    assert sum(layer.kind is OpKind.ELTWISE for layer in plain.layers) == 0


def test_mobilenet_has_real_depthwise_layers() -> None:
    space = get_space("mobilenet")
    net = space.network(space.sample(np.random.default_rng(1)), (3, 32, 32), 10)
    depthwise = [layer for layer in net.layers if layer.kind is OpKind.DEPTHWISE]
    assert depthwise
    assert all(layer.groups == layer.c == layer.k and layer.r == 3 for layer in depthwise)


def test_unet_depth_changes_the_resolution_reached() -> None:
    space = get_space("unet")
    names = [c.name for c in space.choices]
    for depth in space.choices[names.index("depth")].options:
        vector = [0] * len(names)
        vector[names.index("depth")] = space.choices[names.index("depth")].options.index(depth)
        net = space.network(vector, (1, 32, 32), 1)
        convs = [layer for layer in net.layers if layer.kind is OpKind.CONV]
        assert min(layer.h for layer in convs) == 32 // 2 ** (depth - 1)
        assert convs[-1].k == 1 and convs[-1].h == 32


def test_decode_describe_and_sample() -> None:
    space = get_space("resnet")
    vector = tuple(n - 1 for n in space.cardinalities())
    decoded = space.decode(vector)
    assert list(decoded) == [c.name for c in space.choices]
    assert decoded == {c.name: c.options[-1] for c in space.choices}
    assert space.decode(np.array(vector)) == decoded
    cfg = decoded
    assert space.describe(vector) == (f"c={cfg['c1']}-{cfg['c2']}-{cfg['c3']} res=1-1-1 k={cfg['k']}")
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1] and all(0 <= v < n for v, n in zip(a[0], space.cardinalities()))


@pytest.mark.parametrize(
    "vector, message",
    [
        ((0, 0), "choice vector has 2 entries, expected 7"),
        ((0, 0, 5, 0, 0, 0, 0), "vector[2]=5 is out of range for choice 'c3' (expected 0..2)"),
        ((0, 0, -1, 0, 0, 0, 0), "vector[2]=-1 is out of range"),
        ((0, 0.5, 0, 0, 0, 0, 0), "must be a sequence of integers"),
    ],
)
def test_decode_errors_name_the_position_and_range(vector: tuple, message: str) -> None:
    with pytest.raises(CoexploreError, match="space 'resnet'") as err:
        get_space("resnet").decode(vector)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_shape_errors() -> None:
    space = get_space("resnet")
    vector = (0,) * len(space.choices)
    with pytest.raises(CoexploreError, match="input_shape"):
        space.build(vector, (16, 16), 10)  # type: ignore[arg-type]
    with pytest.raises(CoexploreError, match="family 'resnet': input 6x6 must be at least 8"):
        space.build(vector, (1, 6, 6), 10)
    unet = get_space("unet")
    deep = [len(c.options) - 1 if c.name == "depth" else 0 for c in unet.choices]
    with pytest.raises(CoexploreError, match="family 'unet': input 30x30 must be a multiple of 4"):
        unet.network(deep, (1, 30, 30), 1)
    with pytest.raises(CoexploreError, match="num_outputs"):
        space.network(vector, (1, 16, 16), 0)


def test_user_space_from_yaml(tmp_path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nfamily: resnet\ndescription: two widths\nchoices:\n  c3: [8, 24]\n  k: [3]\n")
    space = get_space(str(path))
    assert space == SearchSpace("tiny", "resnet", (Choice("c3", (8, 24)), Choice("k", (3,))), "two widths")
    assert space.size == 2 and space.cardinalities() == (2, 1)
    net = space.network((1, 0), (1, 16, 16), 10)
    assert net.name == "tiny[1,0]"
    assert space.config((1, 0))["c1"] == 16  # unchosen parameters keep the family defaults
    assert get_space(path) == space


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nfamily: resnet\nchoices: {c1: []}\n", "field 'choices.c1' must be a non-empty list"),
        ("name: x\nfamily: vgg\nchoices: {c1: [8]}\n", "field 'family' is 'vgg'"),
        ("name: x\nfamily: resnet\nchoices: {width: [8]}\n", "choice 'width' is not a parameter of family 'resnet'"),
        ("name: x\nfamily: resnet\nchoices: {k: [4]}\n", "option 4 of choice 'k' must be an odd kernel size"),
        ("name: x\nfamily: resnet\nchoices: {c1: [0]}\n", "option 0 of choice 'c1' must be a channel count"),
        ("name: x\nfamily: resnet\n", "field 'choices' must be a non-empty mapping"),
        ("family: resnet\nchoices: {c1: [8]}\n", "field 'name' must be a non-empty string"),
        ("name: x\nfamily: resnet\nchoices: {c1: [8]}\ncolour: red\n", "unknown field 'colour'"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("name: x\nchoices: {c1: [8\n", "is not valid YAML"),
    ],
)
def test_bad_yaml_is_a_one_line_error(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CoexploreError) as err:
        get_space(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "bad.yaml" in str(err.value)


def test_unknown_space_lists_builtins(tmp_path) -> None:
    with pytest.raises(CoexploreError, match="unknown search space 'vgg' .*mobilenet, resnet, unet"):
        get_space("vgg")
    with pytest.raises(CoexploreError, match="not found"):
        get_space(str(tmp_path / "missing.yaml"))
