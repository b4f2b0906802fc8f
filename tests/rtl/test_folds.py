"""The generated hardware folds a layer exactly as dataflows.mapping.plan_folds says (the shared
definition of a fold), and its stall-free fold time is the template's preload + T + fill + drain."""

from __future__ import annotations

import pytest
from rtl_helpers import small_acc

from coexplore.dataflows.io import get_profile
from coexplore.dataflows.mapping import plan_folds, stall_free_cycles
from coexplore.models.ir import conv, gemm
from coexplore.rtl.os_program import os_cycles
from coexplore.rtl.params import params_from_accelerator
from coexplore.rtl.program import geometry
from coexplore.rtl.ws_program import cycles as ws_cycles

LAYERS = [conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), gemm("g", 13, 17, 11), conv("c", c=5, k=9, h=6, r=1)]


def _cdiv(a, b):
    return -(-a // b)


@pytest.mark.parametrize(
    "template,rows,cols", [("systolic-ws", 4, 4), ("systolic-ws", 3, 5), ("systolic-os", 4, 4), ("systolic-os", 2, 6)]
)
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_fold_count_and_stall_free_time_match_the_template(template, rows, cols, index):
    layer = LAYERS[index]
    acc = small_acc(template, rows=rows, cols=cols, bw=256, kb=64)  # wide streams: never memory-bound
    params = params_from_accelerator(acc)
    geo = geometry(layer)
    plan = plan_folds(acc.dataflow.mapping_for(layer.kind), layer.dims(), rows, cols)
    if template == "systolic-ws":
        folds, steps = _cdiv(geo.red, rows) * _cdiv(geo.k, cols), geo.t
        total = ws_cycles(params, geo)
    else:
        folds, steps = _cdiv(geo.t, rows) * _cdiv(geo.k, cols), geo.red
        total = os_cycles(params, geo)
    assert (int(plan.folds), int(plan.temporal_steps)) == (folds, steps)
    stall_free = int(stall_free_cycles(acc.dataflow.timing, get_profile("rtl"), rows, cols, steps, folds))
    # memory never limits here, so the hardware adds exactly its first loads and its last drain
    li = _cdiv(geo.c * geo.h * geo.w, 256)
    if template == "systolic-ws":
        head, tail = max(li, params.weight_tile_beats), 3 + geo.t * params.out_row_beats
    else:
        head, tail = max(rows, li, geo.red * params.weight_row_beats), 1 + rows * params.out_row_beats
    assert total == head + stall_free + tail
