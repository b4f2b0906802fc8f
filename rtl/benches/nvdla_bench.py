"""cocotb bench for the nvdla accelerator on layers the shared bench cannot describe (batch N > 1,
grouped and depthwise convolutions): the same driver, monitor and checks as ``accel_bench``, with
the geometry, reference model and output decoding of ``rtl.nvdla_program``.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from accel_bench import Sink, Source
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from coexplore.rtl.nvdla_program import NvdlaGeometry, decode_output, reference
from coexplore.rtl.params import RtlParams


@cocotb.test()
async def run_layer(dut):
    with open(os.environ["COEXPLORE_BENCH_JOB"]) as fh:
        job = json.load(fh)
    params = RtlParams.from_dict(job["params"])
    geo = NvdlaGeometry(**job["geometry"])
    rng = random.Random(job.get("seed", 0))
    gaps = job.get("gaps", {})
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    for name, value in job["cfg"].items():
        getattr(dut, f"cfg_{name}").value = value
    sources = [
        Source("ifmap", dut, job["ifmap_beats"], gaps.get("ifmap", 0.0), rng),
        Source("weight", dut, job["weight_beats"], gaps.get("weight", 0.0), rng),
    ]
    sink = Sink(dut, gaps.get("ofmap", 0.0), rng)
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    edges = 1
    limit = int(job["timeout_cycles"])
    while not int(dut.done.value):
        for s in sources:
            s.step()
        sink.step()
        await FallingEdge(dut.clk)
        edges += 1
        assert edges < limit, f"no done after {limit} cycles"
    measured = edges - 1
    counter = int(dut.cycles.value)
    out = decode_output(params, geo, sink.beats) if len(sink.beats) == job["expected_out_beats"] else None
    expected = reference(geo, np.array(job["ifmap"]), np.array(job["weights"]), params.acc_bits)
    mismatches = int(expected.size) if out is None else int(np.count_nonzero(out != expected))
    result = {
        "rtl_cycles": counter,
        "bench_cycles": measured,
        "out_beats": len(sink.beats),
        "mismatches": mismatches,
        "inputs_consumed": [s.index for s in sources],
        "cycles_match_model": job.get("expected_cycles") in (None, counter),
    }
    with open(os.environ["COEXPLORE_BENCH_RESULT"], "w") as fh:
        json.dump(result, fh)
    assert counter == measured, f"cycle counter {counter} != bench-measured {measured}"
    want = job["expected_out_beats"]
    assert len(sink.beats) == want, f"{len(sink.beats)} output beats, expected {want}"
    assert mismatches == 0, f"{mismatches} of {expected.size} outputs differ from the reference"
    for s, name in zip(sources, ("ifmap", "weight"), strict=True):
        assert s.index == len(s.beats), f"{name} stream: {s.index} of {len(s.beats)} beats consumed"
    if job.get("expected_cycles") is not None:
        assert counter == job["expected_cycles"], f"start->done {counter} cycles, expected {job['expected_cycles']}"
