"""cocotb bench for a heterogeneous top with partitioned ports (``rtl.top``, ``ports="partitioned"``):
every sub-accelerator has its own memory channel per operand, driven here from the falling clock edge
with no gaps (memory always ready), all started on the same cycle. Each sub-accelerator's outputs are
checked against the numpy reference, its cycle counter against the bench's own count of its start to
done, and every input beat must be consumed. The launcher is ``coexplore.rtl.verify_system``.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from coexplore.rtl.params import RtlParams
from coexplore.rtl.program import LayerGeometry, decode_output, reference_output


class Channel:
    """Sub-accelerator ``i``'s three streams: two sources (ifmap, weight) and one sink (ofmap)."""

    def __init__(self, dut, i: int, ifmap: list[int], weight: list[int]) -> None:
        self.ins = [
            (getattr(dut, f"s{i}_{n}_valid"), getattr(dut, f"s{i}_{n}_ready"), getattr(dut, f"s{i}_{n}_payload"), b)
            for n, b in (("ifmap", ifmap), ("weight", weight))
        ]
        self.taken = [0, 0]
        self.out_valid, self.out_ready = getattr(dut, f"s{i}_ofmap_valid"), getattr(dut, f"s{i}_ofmap_ready")
        self.out_payload = getattr(dut, f"s{i}_ofmap_payload")
        self.beats: list[int] = []
        for valid, _, payload, _ in self.ins:
            valid.value, payload.value = 0, 0
        self.out_ready.value = 1

    def step(self) -> None:
        """At a falling edge: offer each next input beat (count it if taken), take any output beat."""
        for k, (valid, ready, payload, beats) in enumerate(self.ins):
            offer = self.taken[k] < len(beats)
            valid.value = int(offer)
            if offer:
                payload.value = beats[self.taken[k]]
                if int(ready.value):
                    self.taken[k] += 1
        if int(self.out_valid.value):
            self.beats.append(int(self.out_payload.value))


@cocotb.test()
async def run_system(dut):
    with open(os.environ["COEXPLORE_BENCH_JOB"]) as fh:
        job = json.load(fh)
    subs = job["subs"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    channels = {}
    for sub in subs:
        i = sub["index"]
        getattr(dut, f"s{i}_start").value = 0
        for name, value in sub["cfg"].items():
            getattr(dut, f"s{i}_cfg_{name}").value = value
        channels[i] = Channel(dut, i, sub["ifmap_beats"], sub["weight_beats"])
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    for sub in subs:
        getattr(dut, f"s{sub['index']}_start").value = 1
    await FallingEdge(dut.clk)
    for sub in subs:
        getattr(dut, f"s{sub['index']}_start").value = 0
    edges = 1  # the rising edge that sampled start
    finished: dict[int, int] = {}  # sub-accelerator -> bench-measured cycles from start to done
    limit = int(job["timeout_cycles"])
    while len(finished) < len(subs):
        for sub in subs:
            i = sub["index"]
            if i not in finished and int(getattr(dut, f"s{i}_done").value):
                finished[i] = edges - 1
        for ch in channels.values():
            ch.step()
        await FallingEdge(dut.clk)
        edges += 1
        assert edges < limit, f"not every sub-accelerator done after {limit} cycles"
    results = []
    for sub in subs:
        i = sub["index"]
        ch = channels[i]
        params = RtlParams.from_dict(sub["params"])
        geo = LayerGeometry(**sub["geometry"])
        expected = reference_output(geo, np.array(sub["ifmap"]), np.array(sub["weights"]), params.acc_bits)
        got = decode_output(params, geo, ch.beats) if len(ch.beats) == sub["expected_out_beats"] else None
        mismatches = int(expected.size) if got is None else int(np.count_nonzero(got != expected))
        results.append(
            {
                "index": i,
                "rtl_cycles": int(getattr(dut, f"s{i}_cycles").value),
                "bench_cycles": finished[i],
                "mismatches": mismatches,
                "out_beats": len(ch.beats),
                "inputs_consumed": ch.taken,
                "all_consumed": ch.taken == [len(sub["ifmap_beats"]), len(sub["weight_beats"])],
            }
        )
    with open(os.environ["COEXPLORE_BENCH_RESULT"], "w") as fh:
        json.dump({"subs": results}, fh)
    for r in results:
        assert r["rtl_cycles"] == r["bench_cycles"], f"sub {r['index']}: counter {r['rtl_cycles']} != bench {r}"
        assert r["mismatches"] == 0 and r["all_consumed"], r
