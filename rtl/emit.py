"""Verilog emission with a JSON manifest, cached by the parameters' hash."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from coexplore.dataflows.io import accelerator_to_dict
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.params import ArrayKind, RtlParams, params_from_accelerator

CACHE_ENV = "COEXPLORE_RTL_CACHE"


def default_cache_dir() -> Path:
    """Where emitted Verilog is cached: $COEXPLORE_RTL_CACHE or .coexplore_cache/rtl in the cwd."""
    return Path(os.environ.get(CACHE_ENV) or Path.cwd() / ".coexplore_cache" / "rtl")


def build_component(params: RtlParams):
    """The Amaranth component for ``params`` (imports Amaranth lazily)."""
    if params.kind is ArrayKind.WS:
        from coexplore.rtl.ws import WsAccelerator

        return WsAccelerator(params)
    if params.kind is ArrayKind.RS:
        from coexplore.rtl.rs import RsAccelerator

        return RsAccelerator(params)
    from coexplore.rtl.os import OsAccelerator

    return OsAccelerator(params)


def convert(params: RtlParams) -> tuple[str, list[dict]]:
    """(Verilog text, port list) of the accelerator."""
    from amaranth.back import verilog

    comp = build_component(params)
    text = verilog.convert(comp, name=params.module_name, emit_src=False)
    ports = []
    for path, member, _ in comp.signature.flatten(comp):
        name = "__".join(str(x) for x in path)
        ports.append({"name": name, "direction": "in" if member.flow.value == "In" or member.flow.name == "In" else "out",
                      "width": member.shape.width if hasattr(member.shape, "width") else int(member.shape)})
    return text, ports


@dataclass(frozen=True, slots=True)
class Emitted:
    verilog_path: Path
    manifest_path: Path
    params: RtlParams
    cached: bool


def emit(params: RtlParams, cache_dir: Path | None = None, accelerator: Accelerator | None = None) -> Emitted:
    """Verilog + manifest for ``params`` under ``cache_dir/<hash>/``; reused when already there."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = cache_dir / params.digest()
    vpath = folder / f"{params.module_name}.v"
    mpath = folder / "manifest.json"
    if vpath.exists() and mpath.exists():
        return Emitted(vpath, mpath, params, True)
    text, ports = convert(params)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "module": params.module_name,
        "verilog": vpath.name,
        "hash": params.digest(),
        "params": params.to_dict(),
        "ports": ports,
        "accelerator": accelerator_to_dict(accelerator) if accelerator is not None else None,
        "stream_bytes_per_cycle": params.stream_bytes,
        "notes": "Streams carry stream_bytes per beat, byte 0 in the low bits; see coexplore.rtl.program "
                 "for the layouts and the timing model.",
    }
    tmp_v = vpath.with_suffix(f".v.tmp{os.getpid()}")
    tmp_v.write_text(text)
    tmp_v.replace(vpath)
    tmp_m = mpath.with_suffix(f".json.tmp{os.getpid()}")
    tmp_m.write_text(json.dumps(manifest, indent=2))
    tmp_m.replace(mpath)
    return Emitted(vpath, mpath, params, False)


def emit_accelerator(acc: Accelerator, cache_dir: Path | None = None, fault: str = "") -> Emitted:
    return emit(params_from_accelerator(acc, fault=fault), cache_dir, acc)


def emit_system(design_yaml: str | Path, out: Path, cache_dir: Path | None = None) -> dict:
    """Every sub-accelerator of a system design plus the heterogeneous top (see ``rtl.top``)."""
    from coexplore.rtl.top import emit_design

    return emit_design(Path(design_yaml), Path(out), cache_dir)
