"""cocotb bench for the heterogeneous top: one memory model serving every sub-accelerator's streams
through the top's single arbitrated port; each started sub-accelerator's outputs are checked
against the numpy reference and its cycle counter is reported."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from coexplore.rtl.params import RtlParams
from coexplore.rtl.program import LayerGeometry, decode_output, reference_output


@cocotb.test()
async def run_system(dut):
    with open(os.environ["COEXPLORE_BENCH_JOB"]) as fh:
        job = json.load(fh)
    subs = job["subs"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.rd_valid.value = 0
    dut.rd_payload.value = 0
    dut.wr_ready.value = 0
    queues: dict[int, list[int]] = {}
    index: dict[int, int] = {}
    outs: dict[int, list[int]] = {}
    for sub in subs:
        i = sub["index"]
        getattr(dut, f"s{i}_start").value = 0
        for name, value in sub["cfg"].items():
            getattr(dut, f"s{i}_cfg_{name}").value = value
        queues[2 * i], queues[2 * i + 1] = sub["ifmap_beats"], sub["weight_beats"]
        index[2 * i] = index[2 * i + 1] = 0
        outs[i] = []
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
    limit = int(job["timeout_cycles"])
    cycles = 0
    while not all(int(getattr(dut, f"s{s['index']}_done").value) for s in subs):
        offer = 0
        if int(dut.rd_ready.value):
            sel = int(dut.rd_sel.value)
            q = queues.get(sel, [])
            if index.get(sel, 0) < len(q):
                dut.rd_payload.value = q[index[sel]]
                index[sel] += 1
                offer = 1
        dut.rd_valid.value = offer
        dut.wr_ready.value = 1
        if int(dut.wr_valid.value):
            outs[int(dut.wr_sel.value)].append(int(dut.wr_payload.value))
        await FallingEdge(dut.clk)
        cycles += 1
        assert cycles < limit, f"not done after {limit} cycles"
    results = []
    for sub in subs:
        i = sub["index"]
        params = RtlParams.from_dict(sub["params"])
        geo = LayerGeometry(**sub["geometry"])
        mask = (1 << (8 * params.stream_bytes)) - 1
        beats = [b & mask for b in outs[i]]
        expected = reference_output(geo, np.array(sub["ifmap"]), np.array(sub["weights"]), params.acc_bits)
        ok_len = len(beats) == sub["expected_out_beats"]
        got = decode_output(params, geo, beats) if ok_len else None
        mismatches = int(expected.size) if got is None else int(np.count_nonzero(got != expected))
        consumed = [index[2 * i], index[2 * i + 1]]
        results.append(
            {
                "index": i,
                "rtl_cycles": int(getattr(dut, f"s{i}_cycles").value),
                "mismatches": mismatches,
                "out_beats": len(beats),
                "inputs_consumed": consumed,
                "all_consumed": consumed == [len(queues[2 * i]), len(queues[2 * i + 1])],
            }
        )
    with open(os.environ["COEXPLORE_BENCH_RESULT"], "w") as fh:
        json.dump({"subs": results}, fh)
    assert all(r["mismatches"] == 0 and r["all_consumed"] for r in results), results
