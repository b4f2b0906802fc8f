"""Heterogeneous top: several sub-accelerators behind one external-memory port with round-robin
arbiters, built from a ``System`` (dataflows/system.py).

The memory port has a read channel and a write channel, each one beat per cycle:
- read: the top names, in ``rd_sel``, the input stream it grants this cycle (stream ``2*i`` is
  sub-accelerator i's ifmap, ``2*i + 1`` its weights) and raises ``rd_ready``; the memory answers
  with ``rd_valid`` and that stream's next beat on ``rd_payload`` (zero-extended to the widest
  sub-accelerator's stream).
- write: ``wr_valid`` with ``wr_sel`` (the sub-accelerator) and ``wr_payload``; ``wr_ready`` from memory.
A grant rotates past the granted stream after every transfer (round robin). The port carries one
read beat per cycle for all operands of all sub-accelerators (a system's shared DRAM port), so a
sub-accelerator here is slower than with its own port per operand (``rtl.program``'s timing);
no timing model of the shared port exists yet, so the top is checked bit-exact only.
Each sub-accelerator keeps its own ``s{i}_start/busy/done/cycles`` and ``s{i}_cfg_*`` ports.

``ports="partitioned"`` instead gives every sub-accelerator its own three streams at its own width
(``s{i}_ifmap_*``, ``s{i}_weight_*`` valid/ready/payload in, ``s{i}_ofmap_*`` out): the system's bandwidth
split into fixed slices, one memory channel per operand. Each sub-accelerator then runs exactly as it
does alone, so the simulator's ``rtl`` profile gives every sub-accelerator's cycles while all run at once
(``coexplore verify --design``, ``rtl.verify_system``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from coexplore.rtl.kinds import kind_of
from coexplore.rtl.params import CFG_BITS, CYCLE_BITS, RtlError, RtlParams


def cfg_names(params: RtlParams) -> tuple[str, ...]:
    """The ``cfg_*`` registers of a sub-accelerator (its kind's)."""
    return kind_of(params).cfg


class RoundRobin(wiring.Component):
    """Grants one of ``n`` requesters per cycle, starting after the last one served."""

    def __init__(self, n: int) -> None:
        self.n = n
        super().__init__({"request": In(n), "grant": Out(range(max(n, 2))), "valid": Out(1), "advance": In(1)})

    def elaborate(self, platform):
        # Pure Mux expressions (no comb processes): Icarus never wakes an ``always @*`` whose
        # inputs keep their initial values, which left ``valid`` at X while no one requested.
        m = Module()
        n = self.n
        last = Signal(range(max(n, 2)), init=n - 1)
        grant = Const(0, self.grant.shape())
        for start in range(n):
            pick = Const(0, self.grant.shape())
            for step in reversed(range(1, n + 1)):
                cand = (start + step) % n
                pick = Mux(self.request[cand], cand, pick)
            grant = Mux(last == start, pick, grant)
        m.d.comb += [self.grant.eq(grant), self.valid.eq(self.request != 0)]
        with m.If(self.valid & self.advance):
            m.d.sync += last.eq(self.grant)
        return m


def sub_instance(m: Module, name: str, params: RtlParams) -> Any:
    """Sub-accelerator ``params`` as an instance of its own emitted module (``params.module_name``), not
    elaborated again inside the top: the top's netlist holds only the wiring and arbiters, so a system of
    two 2,048-PE arrays converts in seconds rather than re-checking every PE's netlist. Returns an
    interface object with the component's members (``start``, ``ifmap.valid``, ``cfg_*``, ...) to wire."""
    component = params.component()  # builds the signature only; never elaborated here
    component._MustUse__silence = True  # amaranth's opt-out of its "created but never used" warning
    signature = component.signature
    iface = signature.create(path=(name,))
    ports: dict[str, Any] = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
    for path, member, value in signature.flatten(iface):
        ports[("i_" if member.flow == In else "o_") + "__".join(str(part) for part in path)] = value
    m.submodules[name] = Instance(params.module_name, **ports)
    return iface


PORTS = ("shared", "partitioned")
STREAMS = ("ifmap", "weight", "ofmap")


def _partitioned_members(i: int, p: RtlParams) -> dict:
    """Sub-accelerator ``i``'s own streams: ifmap and weight in, ofmap out, each ``stream_bytes`` wide."""
    w = unsigned(p.stream_bytes * 8)
    members = {}
    for name in ("ifmap", "weight"):
        members.update({f"s{i}_{name}_valid": In(1), f"s{i}_{name}_ready": Out(1), f"s{i}_{name}_payload": In(w)})
    members.update({f"s{i}_ofmap_valid": Out(1), f"s{i}_ofmap_ready": In(1), f"s{i}_ofmap_payload": Out(w)})
    return members


class HeteroTop(wiring.Component):
    """Every sub-accelerator of a system behind one arbitrated memory port (``ports="shared"``) or
    each on its own streams (``ports="partitioned"``)."""

    def __init__(self, subs: list[RtlParams], name: str = "coexplore_top", ports: str = "shared") -> None:
        if not subs:
            raise RtlError("a heterogeneous top needs at least one sub-accelerator")
        if ports not in PORTS:
            raise RtlError(f"ports {ports!r}: expected one of {', '.join(PORTS)}")
        self.subs = subs
        self.name = name
        self.ports = ports
        width = max(p.stream_bytes for p in subs) * 8
        n = len(subs)
        members: dict = {}
        if ports == "shared":
            members = {
                "rd_sel": Out(range(max(2 * n, 2))),
                "rd_ready": Out(1),
                "rd_valid": In(1),
                "rd_payload": In(unsigned(width)),
                "wr_sel": Out(range(max(n, 2))),
                "wr_valid": Out(1),
                "wr_ready": In(1),
                "wr_payload": Out(unsigned(width)),
            }
        else:
            for i, p in enumerate(subs):
                members.update(_partitioned_members(i, p))
        for i in range(n):
            members.update(
                {f"s{i}_start": In(1), f"s{i}_busy": Out(1), f"s{i}_done": Out(1), f"s{i}_cycles": Out(CYCLE_BITS)}
            )
            for c in cfg_names(subs[i]):
                members[f"s{i}_cfg_{c}"] = In(CFG_BITS)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        accs = []
        for i, p in enumerate(self.subs):
            acc = sub_instance(m, f"sub{i}", p)
            accs.append(acc)
            m.d.comb += [
                acc.start.eq(getattr(self, f"s{i}_start")),
                getattr(self, f"s{i}_busy").eq(acc.busy),
                getattr(self, f"s{i}_done").eq(acc.done),
                getattr(self, f"s{i}_cycles").eq(acc.cycles),
            ]
            for c in cfg_names(p):
                m.d.comb += getattr(acc, f"cfg_{c}").eq(getattr(self, f"s{i}_cfg_{c}"))
        if self.ports == "partitioned":
            self._wire_partitioned(m, accs)
        else:
            self._wire_shared(m, accs)
        return m

    def _wire_partitioned(self, m: Module, accs: list) -> None:
        for i, acc in enumerate(accs):
            for name in ("ifmap", "weight"):
                s = getattr(acc, name)
                m.d.comb += [
                    s.valid.eq(getattr(self, f"s{i}_{name}_valid")),
                    s.payload.eq(getattr(self, f"s{i}_{name}_payload")),
                    getattr(self, f"s{i}_{name}_ready").eq(s.ready),
                ]
            m.d.comb += [
                getattr(self, f"s{i}_ofmap_valid").eq(acc.ofmap.valid),
                getattr(self, f"s{i}_ofmap_payload").eq(acc.ofmap.payload),
                acc.ofmap.ready.eq(getattr(self, f"s{i}_ofmap_ready")),
            ]

    def _wire_shared(self, m: Module, accs: list) -> None:
        n = len(accs)
        # read channel: 2n input streams
        m.submodules.rd_arb = rd = RoundRobin(2 * n)
        ins = [s for acc in accs for s in (acc.ifmap, acc.weight)]
        m.d.comb += rd.request.eq(Cat(*[s.ready for s in ins]))
        m.d.comb += [self.rd_sel.eq(rd.grant), self.rd_ready.eq(rd.valid), rd.advance.eq(self.rd_valid)]
        for k, s in enumerate(ins):
            w = len(s.payload)
            m.d.comb += [s.valid.eq(rd.valid & (rd.grant == k) & self.rd_valid), s.payload.eq(self.rd_payload[:w])]
        # write channel: n output streams
        m.submodules.wr_arb = wr = RoundRobin(n)
        outs = [acc.ofmap for acc in accs]
        m.d.comb += wr.request.eq(Cat(*[s.valid for s in outs]))
        m.d.comb += [self.wr_sel.eq(wr.grant), self.wr_valid.eq(wr.valid), wr.advance.eq(self.wr_ready)]
        payload = outs[0].payload
        for k, s in enumerate(outs):
            m.d.comb += s.ready.eq(wr.valid & (wr.grant == k) & self.wr_ready)
            if k:
                payload = Mux(wr.grant == k, s.payload, payload)
        m.d.comb += self.wr_payload.eq(payload)


def design_params(system) -> list[RtlParams]:
    import dataclasses

    from coexplore.rtl.params import params_from_accelerator

    out = []
    for acc in system.accelerators:
        try:
            # In a system every sub-accelerator has one DRAM port; here the top's arbiter is that
            # shared port, so each sub-accelerator is built with its three streams behind it.
            out.append(params_from_accelerator(dataclasses.replace(acc, dram_ports="per_operand")))
        except RtlError as exc:
            raise RtlError(f"system {system.name!r}, sub-accelerator {acc.label!r}: {exc}") from None
    return out


def ports_for(system, ports: str | None = None) -> str:
    """The top's port arrangement: ``ports`` when given, else the system's bandwidth mode (a
    partitioned budget gets partitioned ports, a shared pool the arbitrated port)."""
    if ports is None:
        return "partitioned" if system.sharing.value == "partitioned" else "shared"
    if ports not in PORTS:
        raise RtlError(f"--ports {ports!r}: expected one of {', '.join(PORTS)}")
    return ports


def emit_design(design_yaml: Path, out: Path, cache_dir: Path | None = None, ports: str | None = None) -> dict:
    """Verilog + manifest for every sub-accelerator of the system in ``design_yaml`` and for its top
    (``ports``: see :func:`ports_for`)."""
    from amaranth.back import verilog

    from coexplore.dataflows.io import accelerator_to_dict
    from coexplore.dataflows.system import get_system
    from coexplore.rtl.emit import emit

    system = get_system(str(design_yaml))
    ports = ports_for(system, ports)
    subs = design_params(system)
    modules = []
    for acc, p in zip(system.accelerators, subs):
        e = emit(p, cache_dir, acc)
        target = out / e.verilog_path.name
        shutil.copy2(e.verilog_path, target)
        mpath = e.write_manifest(out / f"{p.module_name}.manifest.json")
        modules.append(
            {
                "module": p.module_name,
                "verilog": str(target),
                "manifest": str(mpath),
                "hash": p.digest(),
                "cached": e.cached,
                "memory_bits": p.memory_bits,
                "sub_accelerator": acc.label,
            }
        )
    top_name = f"coexplore_top_{system.name.replace('-', '_')}" + ("_part" if ports == "partitioned" else "")
    top = HeteroTop(subs, top_name, ports)
    text = verilog.convert(top, name=top_name, emit_src=False)
    # The top instantiates the sub-accelerators' own modules: one self-contained file carries them too
    # (each distinct module once), so a simulator or synthesis tool needs only this file.
    distinct = {str(mod["module"]): Path(str(mod["verilog"])) for mod in modules}
    text = "\n".join([text, *(path.read_text() for path in distinct.values())])
    tpath = out / f"{top_name}.v"
    tmp = tpath.with_suffix(f".v.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(tpath)
    manifest: dict[str, Any] = {
        "module": top_name,
        "verilog": tpath.name,
        "system": system.name,
        "sub_accelerators": [
            {
                "index": i,
                "name": a.label,
                "module": p.module_name,
                "params": p.to_dict(),
                "accelerator": accelerator_to_dict(a),
                **({"read_streams": [2 * i, 2 * i + 1]} if ports == "shared" else {}),
                "port_prefix": f"s{i}_",
            }
            for i, (a, p) in enumerate(zip(system.accelerators, subs))
        ],
        "ports": ports,
    }
    if ports == "shared":
        manifest["memory_port"] = {
            "payload_bytes": max(p.stream_bytes for p in subs),
            "arbiter": "round-robin",
            "read": "rd_sel/rd_ready out, rd_valid/rd_payload in",
            "write": "wr_sel/wr_valid/wr_payload out, wr_ready in",
        }
    else:
        manifest["memory_ports"] = [
            {"sub_accelerator": i, "payload_bytes": p.stream_bytes, "streams": [f"s{i}_{n}" for n in STREAMS]}
            for i, p in enumerate(subs)
        ]
    mpath = out / "manifest.json"
    mpath.write_text(json.dumps(manifest, indent=2))
    modules.append(
        {
            "module": top_name,
            "verilog": str(tpath),
            "manifest": str(mpath),
            "hash": "",
            "cached": False,
            "memory_bits": sum(p.memory_bits for p in subs),
        }
    )
    return {"modules": modules, "top": top_name}
