"""Verilog emission with a JSON manifest; the Verilog is cached by the parameters' hash.

The cache folder ``<cache>/<digest>/`` holds the module's Verilog and its port list; the digest
covers every parameter and the whole generator's source (``params.generator_fingerprint``). The
manifest is built for each call, so it always carries the accelerator that was asked for, even when
another accelerator with the same hardware filled the cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coexplore.dataflows.io import accelerator_to_dict
from coexplore.dataflows.spec import Accelerator
from coexplore.rtl.params import RtlParams, params_from_accelerator

CACHE_ENV = "COEXPLORE_RTL_CACHE"


def default_cache_dir() -> Path:
    """Where emitted Verilog is cached: $COEXPLORE_RTL_CACHE or .coexplore_cache/rtl in the cwd."""
    return Path(os.environ.get(CACHE_ENV) or Path.cwd() / ".coexplore_cache" / "rtl")


def build_component(params: RtlParams) -> Any:
    """The Amaranth component for ``params`` (its kind's, from ``rtl.kinds``)."""
    return params.component()


def convert(params: RtlParams) -> tuple[str, list[dict]]:
    """(Verilog text, port list) of the accelerator."""
    from amaranth.back import verilog

    comp = build_component(params)
    text = verilog.convert(comp, name=params.module_name, emit_src=False)
    ports = []
    for path, member, _ in comp.signature.flatten(comp):
        ports.append(
            {
                "name": "__".join(str(x) for x in path),
                "direction": "in" if member.flow.name == "In" else "out",
                "width": member.shape.width if hasattr(member.shape, "width") else int(member.shape),
            }
        )
    return text, ports


@dataclass(frozen=True, slots=True)
class Emitted:
    verilog_path: Path
    params: RtlParams
    cached: bool
    manifest: dict = field(compare=False)

    def write_manifest(self, path: Path) -> Path:
        """Write this call's manifest (the asked accelerator's) to ``path``."""
        Path(path).write_text(json.dumps(self.manifest, indent=2))
        return Path(path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def emit(params: RtlParams, cache_dir: Path | None = None, accelerator: Accelerator | None = None) -> Emitted:
    """Verilog for ``params`` under ``cache_dir/<digest>/`` (reused when already there) and the manifest."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = cache_dir / params.digest()
    vpath = folder / f"{params.module_name}.v"
    ppath = folder / "ports.json"
    cached = vpath.exists() and ppath.exists()
    if cached:
        ports = json.loads(ppath.read_text())
    else:
        text, ports = convert(params)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(vpath, text)
        _atomic_write(ppath, json.dumps(ports))
    manifest = {
        "module": params.module_name,
        "verilog": vpath.name,
        "hash": params.digest(),
        "params": params.to_dict(),
        "ports": ports,
        "accelerator": accelerator_to_dict(accelerator) if accelerator is not None else None,
        "stream_bytes_per_cycle": params.stream_bytes,
        "notes": "Streams carry stream_bytes per beat, byte 0 in the low bits; see coexplore.rtl.program "
        "and the kind's host module for the layouts and the timing model.",
    }
    return Emitted(vpath, params, cached, manifest)


def emit_accelerator(acc: Accelerator, cache_dir: Path | None = None) -> Emitted:
    return emit(params_from_accelerator(acc), cache_dir, acc)


def emit_system(design_yaml: str | Path, out: Path, cache_dir: Path | None = None, ports: str | None = None) -> dict:
    """Every sub-accelerator of a system design plus the heterogeneous top (see ``rtl.top``; ``ports``:
    ``shared`` or ``partitioned``, default the system's bandwidth mode)."""
    from coexplore.rtl.top import emit_design

    return emit_design(Path(design_yaml), Path(out), cache_dir, ports)
