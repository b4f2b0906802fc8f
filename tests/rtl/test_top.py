"""The heterogeneous top: sub-accelerators of a system behind one arbitrated memory port."""

from __future__ import annotations

import json

import numpy as np
import yaml

from coexplore.dataflows.system import load_system
from coexplore.models.ir import conv, gemm
from coexplore.rtl.program import prepare
from coexplore.rtl.top import design_params, emit_design
from coexplore.rtl.verify import job_for, random_tensors, run_top_bench

DESIGN = {
    "name": "ws-os-pair",
    "budget": {"pes": 64, "dram_bw_bytes_per_cycle": 8},
    "bandwidth": "shared",
    "sub_accelerators": [
        {
            "name": "ws",
            "template": "systolic-ws",
            "rows": 4,
            "cols": 4,
            "dram_bw_bytes_per_cycle": 4,
            "ifmap_sram_kb": 1,
            "filter_sram_kb": 1,
            "ofmap_sram_kb": 1,
        },
        {
            "name": "os",
            "template": "systolic-os",
            "rows": 4,
            "cols": 4,
            "dram_bw_bytes_per_cycle": 2,
            "ifmap_sram_kb": 1,
            "filter_sram_kb": 1,
            "ofmap_sram_kb": 1,
        },
        {
            "name": "eye",
            "template": "eyeriss",
            "rows": 3,
            "cols": 3,
            "dram_bw_bytes_per_cycle": 4,
            "ifmap_sram_kb": 4,
            "filter_sram_kb": 1,
            "ofmap_sram_kb": 1,
        },
    ],
}
LAYERS = [conv("c", c=3, k=6, h=7, r=3, stride=2, pad=1), gemm("g", 5, 6, 7), conv("e", c=2, k=2, h=5, r=3, pad=1)]


def _jobs(subs, which):
    jobs = []
    for i in which:
        p = subs[i]
        x, w = random_tensors(p, LAYERS[i], np.random.default_rng(i))
        prog = prepare(p, LAYERS[i], ifmap=x, weights=w)
        job = job_for(prog, seed=i, gaps={}, ifmap=x, weights=w, expected_cycles=prog.expected_cycles)
        job["index"] = i
        jobs.append((job, prog))
    return jobs


def test_design_emits_subs_and_top(tmp_path, rtl_cache):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(DESIGN))
    out = tmp_path / "out"
    out.mkdir()
    summary = emit_design(path, out, rtl_cache)
    names = [m["module"] for m in summary["modules"]]
    assert len(names) == 4 and names[-1] == summary["top"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["sub_accelerators"]] == ["ws", "os", "eye"]
    assert f"module {summary['top']}" in (out / f"{summary['top']}.v").read_text()


def test_three_subs_share_the_port_bit_exact(tmp_path, rtl_cache):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(DESIGN))
    out = tmp_path / "out"
    out.mkdir()
    summary = emit_design(path, out, rtl_cache)
    subs = design_params(load_system(path))
    top_v = out / f"{summary['top']}.v"
    both = _jobs(subs, [0, 1, 2])
    res = run_top_bench(top_v, summary["top"], [j for j, _ in both], tmp_path / "both")
    assert res["passed"], res
    assert all(r["mismatches"] == 0 for r in res["subs"])
    # one read beat per cycle for everyone: slower than with a port per operand, and slower
    # still when the other sub-accelerator competes for the port
    assert all(r["rtl_cycles"] > prog.expected_cycles for r, (_, prog) in zip(res["subs"], both))
    alone = _jobs(subs, [1])
    res1 = run_top_bench(top_v, summary["top"], [j for j, _ in alone], tmp_path / "alone")
    assert res1["passed"] and res1["subs"][0]["mismatches"] == 0, res1
    assert alone[0][1].expected_cycles < res1["subs"][0]["rtl_cycles"] <= res["subs"][1]["rtl_cycles"]
