"""cocotb bench for a generated sub-accelerator: driver, monitor, reference model and checker.

The launcher (coexplore.rtl.verify.run_bench) passes a JSON job in $COEXPLORE_BENCH_JOB: the layer
configuration registers, the input/weight tensors and their stream beats, and how often the
external memory withholds data (valid/ready gaps, seeded). The bench drives the streams from
the falling clock edge (so the design's combinational handshakes are settled), pulses ``start``,
records every output beat and the cycles from start to done, decodes the outputs, compares them
with the numpy reference model, writes $COEXPLORE_BENCH_RESULT and fails on any mismatch, on a
cycle counter that disagrees with the bench's own count, or on an input beat left unconsumed.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from coexplore.rtl.params import RtlParams
from coexplore.rtl.program import LayerGeometry, decode_output, reference_output


class Source:
    """Drives one input stream with a list of beats; withholds valid with probability ``gap``."""

    def __init__(self, port: str, dut, beats: list[int], gap: float, rng: random.Random) -> None:
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.payload = getattr(dut, f"{port}__payload")
        self.beats, self.gap, self.rng, self.index = beats, gap, rng, 0
        self.valid.value = 0
        self.payload.value = 0

    def step(self) -> None:
        """Called at a falling edge: present the next beat; count it if the DUT takes it."""
        offer = self.index < len(self.beats) and not (self.gap and self.rng.random() < self.gap)
        self.valid.value = int(offer)
        if offer:
            self.payload.value = self.beats[self.index]
            if int(self.ready.value):
                self.index += 1


class Sink:
    """Monitors the output stream; withholds ready with probability ``gap``."""

    def __init__(self, dut, gap: float, rng: random.Random) -> None:
        self.valid, self.ready, self.payload = dut.ofmap__valid, dut.ofmap__ready, dut.ofmap__payload
        self.gap, self.rng = gap, rng
        self.beats: list[int] = []
        self.ready.value = 0

    def step(self) -> None:
        take = not (self.gap and self.rng.random() < self.gap)
        self.ready.value = int(take)
        if take and int(self.valid.value):
            self.beats.append(int(self.payload.value))


async def _run_call(dut, call: dict, gaps: dict, rng: random.Random, limit: int) -> tuple[int, int, list, list]:
    """Configure one call, pulse ``start`` (from the falling edge where the previous done was seen)
    and run it to ``done``: (counter, bench-measured cycles, output beats, input beats consumed)."""
    for name, value in call["cfg"].items():
        getattr(dut, f"cfg_{name}").value = value
    sources = [
        Source("ifmap", dut, call["ifmap_beats"], gaps.get("ifmap", 0.0), rng),
        Source("weight", dut, call["weight_beats"], gaps.get("weight", 0.0), rng),
    ]
    sink = Sink(dut, gaps.get("ofmap", 0.0), rng)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    edges = 1  # the rising edge that sampled start
    while not int(dut.done.value):
        for s in sources:
            s.step()
        sink.step()
        await FallingEdge(dut.clk)
        edges += 1
        assert edges < limit, f"no done after {limit} cycles"
    return int(dut.cycles.value), edges - 1, sink.beats, [s.index for s in sources]


@cocotb.test()
async def run_layer(dut):
    """One call (the job itself) or several (``job["calls"]``, a tiled layer: dataflows.tiling),
    started back to back; cycles are the calls' counters plus the idle cycles between them."""
    with open(os.environ["COEXPLORE_BENCH_JOB"]) as fh:
        job = json.load(fh)
    params = RtlParams.from_dict(job["params"])
    calls = job.get("calls", [job])
    rng = random.Random(job.get("seed", 0))
    gaps = job.get("gaps", {})
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    limit = int(job["timeout_cycles"])
    counters, measured, consumed, outputs, mismatches, beats_ok = [], 0, [], [], 0, True
    for i, call in enumerate(calls):
        counter, cycles, beats, taken = await _run_call(dut, call, gaps, rng, limit)
        counters.append(counter)
        measured += cycles + (1 if i else 0)  # the edge between done and the next start
        consumed.append(taken)
        geo = LayerGeometry(**call["geometry"])
        out = decode_output(params, geo, beats) if len(beats) == call["expected_out_beats"] else None
        beats_ok &= out is not None
        ifmap = np.array(call["ifmap"], dtype=np.int64)
        weights = np.array(call["weights"], dtype=np.int64)
        expected = reference_output(geo, ifmap, weights, params.acc_bits)
        mismatches += int(expected.size) if out is None else int(np.count_nonzero(out != expected))
        outputs.append(None if out is None else out.tolist())
    counter = sum(counters) + job.get("gap_cycles", 0) * (len(calls) - 1)
    result = {
        "rtl_cycles": counter,
        "bench_cycles": measured,
        "call_cycles": counters,
        "out_beats": None if beats_ok else -1,
        "mismatches": mismatches,
        "inputs_consumed": consumed[0] if "calls" not in job else consumed,
        "cycles_match_model": job.get("expected_cycles") in (None, counter),
    }
    if "calls" in job:
        result["outputs"] = outputs
    else:
        result["out_beats"] = len(beats)
    with open(os.environ["COEXPLORE_BENCH_RESULT"], "w") as fh:
        json.dump(result, fh)
    assert counter == measured, f"cycle counter {counter} != bench-measured {measured}"
    assert beats_ok, "an output stream has the wrong number of beats"
    assert mismatches == 0, f"{mismatches} outputs differ from the reference"
    for call, taken in zip(calls, consumed, strict=True):
        want = [len(call["ifmap_beats"]), len(call["weight_beats"])]
        assert taken == want, f"input beats consumed {taken}, expected {want}"
    if job.get("expected_cycles") is not None:
        assert counter == job["expected_cycles"], f"start->done {counter} cycles, expected {job['expected_cycles']}"
