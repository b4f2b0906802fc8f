"""Layers of SCALE-Sim's reference cases (shared/reference/scalesim.json) in the coexplore IR."""

from __future__ import annotations

from coexplore.models.ir import Layer, conv, gemm


def reference_layer(spec: dict) -> Layer:
    """The IR layer of a reference case's ``layer`` entry (SCALE-Sim pads nothing)."""
    if spec["kind"] == "conv":
        assert spec["padding"] == 0 and spec["filter_h"] == spec["filter_w"]
        return conv(
            "ref",
            c=spec["channels"],
            k=spec["filters"],
            h=spec["ifmap_h"],
            w=spec["ifmap_w"],
            r=spec["filter_h"],
            stride=spec["stride"],
        )
    return gemm("ref", m=spec["M"], k=spec["K"], n=spec["N"])
