"""Random small configurations of every generated array: bit-exact against numpy and cycle-exact
against the cycle-level simulator (profile rtl). A few by default, more behind the slow marker."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.models.ir import IRError, conv, gemm
from coexplore.rtl.params import RtlError
from coexplore.rtl.verify import verify_layer

TEMPLATES = ("systolic-ws", "systolic-os", "eyeriss", "nvdla", "shidiannao")


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    template = TEMPLATES[seed % len(TEMPLATES)]
    rows = int(rng.integers(2 if template == "systolic-os" else 1, 6))
    cols = int(rng.integers(1, 6))
    bw = int(rng.choice([1, 2, 4, 8, 16]))
    while True:
        if rng.random() < 0.25:
            layer = gemm("g", int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 12)))
        else:
            try:
                layer = conv(
                    "c",
                    c=int(rng.integers(1, 4)),
                    k=int(rng.integers(1, 8)),
                    h=int(rng.integers(3, 9)),
                    w=int(rng.integers(3, 9)),
                    r=int(rng.integers(1, 4)),
                    stride=int(rng.integers(1, 3)),
                    pad=int(rng.integers(0, 2)),
                )
            except IRError:
                continue
        return small_acc(template, rows=rows, cols=cols, bw=bw, kb=16), layer


def _check(seed: int, tmp_path, cache) -> None:
    acc, layer = random_case(seed)
    try:
        simulated = simulated_cycles(acc, layer)
        result, _ = verify_layer(acc, layer, tmp_path, seed=seed, expected_cycles=simulated, cache_dir=cache)
    except RtlError as exc:  # e.g. an OS array of one column is fine, one row is not
        pytest.skip(f"configuration not buildable: {exc}")
    assert result.mismatches == 0, (acc.label, layer.describe(), result.raw)
    assert result.rtl_cycles == simulated, (acc.label, layer.describe(), result.raw)
    assert result.passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_configuration(seed, tmp_path, rtl_cache):
    _check(seed, tmp_path, rtl_cache)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 33))
def test_random_configuration_many(seed, tmp_path, rtl_cache):
    _check(seed, tmp_path, rtl_cache)
