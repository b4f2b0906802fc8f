"""Benchmark: the share of the zoo's compute layers each RTL generator accepts today.

    .venv/bin/python benchmarks/rtl_coverage.py [--rows 32 --cols 32 --sram-kb 64 --dram-bw 32] [--json]
        [--kinds nvdla,ws] [--refused]

For every hardware kind (``rtl.kinds``: ws, os, rs, nvdla, is, sdn) the accelerator is its template at
``rows x cols`` PEs, ``sram-kb`` per operand and ``dram-bw`` bytes/cycle per operand stream; a
compute layer (conv, depthwise, linear, matmul) of every ``models.zoo`` network is accepted when
the generator builds and runs it as one call (``rtl.program.check_layer``: the whole input resident
in half the ifmap scratchpad, one output tile per bank, groups = batch = 1, ...). Prints
``accepted_share_<kind>: X`` (by layer count), the share of MACs, and why the rest are refused;
then the share run as one or several calls (host-side tiling, ``dataflows.tiling``,
``rtl.program.check_tiled``: every call through the hardware's checks), growing with the plan's
options: ``accepted_bands_share_<kind>`` (output-row bands and K tiles, whole C),
``accepted_2d_share_<kind>`` (and 2-D output tiles), and ``accepted_tiled_share_<kind>`` (and
channel groups whose partial sums the host adds: the default plan, which the simulator's rtl
profile and the analytical model cost), with the calls per tiled layer, the share of the dense
conv/linear layers (``dense_share``), and why the rest are still refused (``--refused``: every
refused layer with its network and the hardware's own message).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

from coexplore.dataflows.io import get_template
from coexplore.dataflows.spec import Accelerator
from coexplore.models.zoo import ZOO_NAMES, get_network
from coexplore.rtl.kinds import KINDS
from coexplore.rtl.params import CFG_BITS, RtlError, params_from_accelerator
from coexplore.rtl.program import check_layer, check_tiled, geometry

# refusal messages -> a short reason (the first pattern that matches)
REASONS = (
    ("input not resident (exceeds half the ifmap scratchpad)", r"half the ifmap"),
    ("input exceeds one ifmap replica (the budget split over rows or PEs)", r"byte ifmap scratchpad"),
    ("layer kind not run (depthwise, matmul, pool, eltwise)", r"is not supported by the RTL"),
    ("groups or batch > 1", r"groups="),
    ("output tile exceeds the ofmap bank (WS: P*Q, RS: Q)", r"ofmap bank depth"),
    ("kernel taps exceed a PE's register file (nvdla: R*S)", r"R\*S taps per PE"),
    ("reduction exceeds the weight bank (OS: C*R*S)", r"weight bank depth"),
    ("filter wider than the RS PE (S > 8)", r"filter width"),
    ("one output pixel of one channel exceeds a call's input", r"one output \w+ of one channel reads"),
    ("one output row (2-D: pixel) of all channels exceeds a call's input (channel groups)", r"one output \w+ reads"),
    ("the reduction of one channel exceeds the weight bank", r"of one channel = \d+ exceeds the weight"),
    ("C*R*S exceeds the weight bank (needs channel groups)", r"no call fits \(C\*R\*S"),
    ("one output row (2-D: pixel) exceeds the output bank", r"output lines exceed the output bank"),
    ("a configuration register overflows (16 bits)", r"does not fit the"),
    ("unequal stride/padding or dilation", r"stride and padding|dilation"),
)


def reason(message: str) -> str:
    for name, pattern in REASONS:
        if re.search(pattern, message):
            return name
    return message


def _accepts(check) -> bool:
    try:
        check()
    except RtlError:
        return False
    return True


def what_if(kind, params, layers) -> dict[str, float]:
    """Upper bounds of the accepted share with features the generators lack, cumulatively:
    one banked ifmap buffer instead of a replica per row/PE; then input tiling (no resident input);
    then output tiling with partial-sum spilling (no bank-depth limits): what remains are layer kinds."""
    import dataclasses

    host = kind.program_module()
    whole = min(
        params.ifmap_bytes * params.ifmap_replicas, ((1 << CFG_BITS) - 1) // params.stream_bytes * params.stream_bytes
    )
    banked = dataclasses.replace(params, ifmap_bytes=whole, ifmap_replicas=1)
    n = len(layers)
    return {
        "banked_ifmap": sum(_accepts(lambda la=la: check_layer(banked, la)) for _, la in layers) / n,
        "plus_input_tiling": sum(_accepts(lambda la=la: host.check_layer(params, la, geometry(la))) for _, la in layers)
        / n,
        "plus_output_tiling": sum(_accepts(lambda la=la: geometry(la)) for _, la in layers) / n,
    }


def dense(layer) -> bool:
    """A conv or linear layer with groups = batch = 1 (what ``dataflows.tiling`` plans directly)."""
    return layer.kind.value in ("conv", "linear") and layer.groups == 1 and layer.n == 1


def tiled_share(params, layers, total_macs: int, columns: bool, groups: bool) -> dict:
    """The layers run as one or several calls with the plan's options, and the calls per tiled layer."""
    accepted, macs, n_dense, calls, why, each = 0, 0, 0, [], Counter(), []
    for net, layer in layers:
        try:
            plan = check_tiled(params, layer, columns=columns, groups=groups)
        except RtlError as exc:
            why[reason(str(exc))] += 1
            each.append(f"{net}/{layer.name} ({layer.describe()}): {exc}")
            continue
        accepted += 1
        n_dense += dense(layer)
        macs += layer.macs
        calls += [len(plan.calls)] if plan.tiled else []
    return {
        "accepted": accepted,
        "share": accepted / len(layers),
        "mac_share": macs / total_macs,
        "dense_share": n_dense / max(1, sum(dense(la) for _, la in layers)),
        "tiled_layers": len(calls),
        "calls_per_tiled_layer": {"mean": sum(calls) / len(calls), "max": max(calls)} if calls else None,
        "refused": dict(why.most_common()),
        "refused_layers": each,
    }


PLANS = {"bands": (False, False), "2d": (True, False), "tiled": (True, True)}  # (columns, groups)


def coverage(rows: int, cols: int, sram_kb: float, dram_bw: float, kinds: tuple[str, ...] = ()) -> dict:
    """Per kind (``kinds``: those names only; all by default) the shares above."""
    layers = [(net, layer) for net in ZOO_NAMES for layer in get_network(net).layers if layer.kind.has_macs]
    out = {"layers": len(layers), "macs": int(sum(layer.macs for _, layer in layers)), "kinds": {}}
    unknown = set(kinds) - {kind.name for kind in KINDS}
    if unknown:
        raise SystemExit(f"--kinds: unknown kind(s) {sorted(unknown)}; expected some of {[k.name for k in KINDS]}")
    for kind in KINDS:
        if kinds and kind.name not in kinds:
            continue
        acc = Accelerator(
            dataflow=get_template(kind.template),
            rows=rows,
            cols=cols,
            ifmap_sram_kb=sram_kb,
            filter_sram_kb=sram_kb,
            ofmap_sram_kb=sram_kb,
            dram_bw_bytes_per_cycle=dram_bw,
        )
        try:
            params = params_from_accelerator(acc)
        except RtlError as exc:
            out["kinds"][kind.name] = {"error": str(exc), "accepted_share": 0.0}
            continue
        accepted, macs, why, per_net = 0, 0, Counter(), Counter()
        for net, layer in layers:
            try:
                check_layer(params, layer)
            except RtlError as exc:
                why[reason(str(exc))] += 1
                continue
            accepted += 1
            macs += layer.macs
            per_net[net] += 1
        plans = {name: tiled_share(params, layers, out["macs"], *opts) for name, opts in PLANS.items()}
        out["kinds"][kind.name] = {
            "template": kind.template,
            "plans": plans,
            "accepted": accepted,
            "accepted_share": accepted / len(layers),
            "accepted_mac_share": macs / out["macs"],
            "per_network": dict(per_net),
            "refused": dict(why.most_common()),
            "what_if": what_if(kind, params, layers),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--sram-kb", type=float, default=64.0)
    ap.add_argument("--dram-bw", type=float, default=32.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--kinds", default="", help="comma-separated kinds (rtl.kinds names); default all")
    ap.add_argument("--refused", action="store_true", help="list every layer the default plan still refuses")
    args = ap.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    result = coverage(args.rows, args.cols, args.sram_kb, args.dram_bw, kinds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"zoo compute layers: {result['layers']} ({', '.join(ZOO_NAMES)}), {result['macs']:,} MACs; "
        f"{args.rows}x{args.cols} PEs, {args.sram_kb:g} kB per operand, {args.dram_bw:g} B/cycle"
    )
    for name, r in result["kinds"].items():
        if "error" in r:
            print(f"accepted_share_{name}: 0.000  (not buildable: {r['error']})")
            continue
        print(
            f"accepted_share_{name}: {r['accepted_share']:.3f}  ({r['accepted']} layers, "
            f"{r['accepted_mac_share']:.2e} of the MACs; per network {r['per_network']})"
        )
        for why, n in r["refused"].items():
            print(f"    refused {n:4d}: {why}")
        for plan, t in r["plans"].items():
            c = t["calls_per_tiled_layer"]
            calls = f", {t['tiled_layers']} tiled, {c['mean']:.1f} calls on average, {c['max']} at most" if c else ""
            print(
                f"accepted_{plan}_share_{name}: {t['share']:.3f}  ({t['accepted']} layers, dense conv/linear "
                f"{t['dense_share']:.3f}, {t['mac_share']:.2e} of the MACs{calls})"
            )
            for why, n in t["refused"].items() if plan == "tiled" else ():
                print(f"    still refused {n:4d}: {why}")
            for line in t["refused_layers"] if plan == "tiled" and args.refused else ():
                print(f"      {line}")
        w = r["what_if"]
        print(
            f"    would accept: {w['banked_ifmap']:.3f} with one banked ifmap buffer, "
            f"{w['plus_input_tiling']:.3f} adding input tiling, {w['plus_output_tiling']:.3f} adding output "
            f"tiling / partial-sum spilling"
        )


if __name__ == "__main__":
    main()
