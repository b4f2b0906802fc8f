"""The table of hardware kinds: which generator builds a dataflow, chosen from the dataflow's structure.

A kind is one generator: a component class (the Amaranth hardware, in its own module) and a host
program module (configuration registers, stream layouts, output decoding, timing model, scratchpad
sizing). A ``Dataflow`` gets the kind whose ``Structure`` it has: the operand that stays, the
interconnect, which dims sit on rows and columns (and how they pack), which stream within a fold,
and the per-fold timing formulas. Those are exactly the things the generated hardware follows, so a
user's template with another name but the same structure is built by the same generator, and a
template that differs in any of them (its simulator timing would not match the hardware) is refused.

Adding a generator = one component module + one host program module + one row in ``KINDS``
(docs/rtl.md, "Adding a generator"). Nothing else dispatches on a kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from coexplore.dataflows.spec import Dataflow, Interconnect, Mapping, Operand, Pack, SpatialAxis
from coexplore.models.ir import Dim, OpKind
from coexplore.rtl.params import RtlError, RtlParams

if TYPE_CHECKING:
    from coexplore.rtl.component import StreamAccelerator


def _formula(text: str) -> str:
    """A timing formula without its spaces, so ``rows + cols - 2`` equals ``rows+cols-2``."""
    return "".join(str(text).split())


@dataclass(frozen=True, slots=True)
class Structure:
    """What a generator's hardware does with a layer: stationary operand, interconnect, the dims
    on rows / columns (with their packing), the dims streamed within a fold, and the per-fold
    timing formulas (preload, fill, drain, pipeline) the cycle-level simulator charges."""

    stationary: Operand
    interconnect: Interconnect
    rows: tuple[Dim, ...]
    rows_pack: Pack
    cols: tuple[Dim, ...]
    cols_pack: Pack
    temporal: tuple[Dim, ...]
    timing: tuple[str, str, str, str]
    gemm: Mapping | None = None  # the linear/matmul mapping where it differs from the conv one

    @classmethod
    def of(cls, dataflow: Dataflow) -> Structure | None:
        """The structure of ``dataflow``; None when linear and matmul layers map differently (most
        generators run a GEMM as a 1x1 conv through the conv mapping; ``gemm`` holds a GEMM
        mapping of its own)."""
        mapping = dataflow.mapping_for(OpKind.CONV)
        gemm = dataflow.mapping_for(OpKind.LINEAR)
        if dataflow.mapping_for(OpKind.MATMUL) != gemm:
            return None
        t = dataflow.timing
        return cls(
            stationary=dataflow.stationary,
            interconnect=dataflow.interconnect,
            rows=mapping.rows.dims,
            rows_pack=mapping.rows.pack,
            cols=mapping.cols.dims,
            cols_pack=mapping.cols.pack,
            temporal=mapping.temporal,
            timing=(_formula(t.preload.text), _formula(t.fill.text), _formula(t.drain.text), _formula(t.pipeline.text)),
            gemm=None if gemm == mapping else gemm,
        )

    def describe(self) -> str:
        """One line: ``weight-stationary systolic, rows C,R,S, cols K, temporal N,P,Q``."""

        def dims(ds: tuple[Dim, ...]) -> str:
            return ",".join(d.value for d in ds) or "-"

        g = self.gemm
        gemm = (
            ""
            if g is None
            else f"; GEMM rows {dims(g.rows.dims)}, cols {dims(g.cols.dims)}, temporal {dims(g.temporal)}"
        )
        return (
            f"{self.stationary.value}-stationary {self.interconnect.value}, rows {dims(self.rows)}"
            f" ({self.rows_pack.value}), cols {dims(self.cols)}, temporal {dims(self.temporal)}{gemm}"
        )


def _s(
    stationary: Operand,
    interconnect: Interconnect,
    rows: str,
    rows_pack: Pack,
    cols: str,
    temporal: str,
    preload: str = "0",
    fill: str = "0",
    drain: str = "0",
    pipeline: str = "0",
    gemm: tuple[str, str, str] | None = None,
) -> Structure:
    def dims(text: str) -> tuple[Dim, ...]:
        return tuple(Dim(x) for x in text.split(",") if x)

    gm = None if gemm is None else Mapping(SpatialAxis(dims(gemm[0])), SpatialAxis(dims(gemm[1])), dims(gemm[2]))

    return Structure(
        stationary,
        interconnect,
        dims(rows),
        rows_pack,
        dims(cols),
        Pack.FLATTEN,
        dims(temporal),
        (_formula(preload), _formula(fill), _formula(drain), _formula(pipeline)),
        gm,
    )


@dataclass(frozen=True, slots=True)
class HardwareKind:
    """One generator. ``component`` is ``"module:Class"`` (imported lazily: Amaranth stays out of
    ``coexplore evaluate``); ``program`` is the host module, which defines ``CFG`` (the ``cfg_*``
    register names), ``scratchpads``, ``prepare``, ``cycles``, ``out_beats`` and ``decode_output``."""

    name: str  # short name: RtlParams.kind, module names, manifests
    structure: Structure
    component: str
    program: str
    template: str  # the shipped template with this structure (documentation and error messages)

    def program_module(self) -> ModuleType:
        return importlib.import_module(self.program)

    def component_class(self) -> type[StreamAccelerator]:
        module, _, cls = self.component.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def cfg(self) -> tuple[str, ...]:
        """The ``cfg_*`` layer registers of this kind's hardware, in port order."""
        return tuple(self.program_module().CFG)


# The generators. Each row's structure is its shipped template's (tests/rtl/test_kinds.py holds
# that); a template whose structure matches no row gets kind_for's one-line error.
KINDS: tuple[HardwareKind, ...] = (
    HardwareKind(
        "ws",
        _s(
            Operand.WEIGHT,
            Interconnect.SYSTOLIC,
            "C,R,S",
            Pack.FLATTEN,
            "K",
            "N,P,Q",
            preload="rows",
            fill="rows + cols - 2 + stages",
        ),
        "coexplore.rtl.ws:WsAccelerator",
        "coexplore.rtl.ws_program",
        "systolic-ws",
    ),
    HardwareKind(
        "os",
        _s(
            Operand.OUTPUT,
            Interconnect.SYSTOLIC,
            "N,P,Q",
            Pack.FLATTEN,
            "K",
            "C,R,S",
            fill="rows + cols - 2 + max(stages - max(rows - 2, 0), 0)",
            drain="rows",
        ),
        "coexplore.rtl.os:OsAccelerator",
        "coexplore.rtl.os_program",
        "systolic-os",
    ),
    HardwareKind(
        "rs",
        _s(Operand.WEIGHT, Interconnect.BROADCAST, "R,C", Pack.NESTED, "P", "Q,S", preload="rows", fill="rows"),
        "coexplore.rtl.rs:RsAccelerator",
        "coexplore.rtl.rs_program",
        "eyeriss",
    ),
    HardwareKind(
        "nvdla",
        _s(
            Operand.WEIGHT,
            Interconnect.BROADCAST,
            "C",
            Pack.FLATTEN,
            "K",
            "N,P,Q,R,S",
            preload="rows",
            fill="ceil(log2(rows)) + 1",
        ),
        "coexplore.rtl.nvdla:NvdlaAccelerator",
        "coexplore.rtl.nvdla_program",
        "nvdla",
    ),
    HardwareKind(
        "is",
        _s(
            Operand.INPUT,
            Interconnect.SYSTOLIC,
            "C,R,S",
            Pack.FLATTEN,
            "N,P,Q",
            "K",
            preload="rows",
            fill="rows + cols - 2",
        ),
        "coexplore.rtl.is_:IsAccelerator",
        "coexplore.rtl.is_program",
        "systolic-is",
    ),
    HardwareKind(
        "sdn",
        _s(
            Operand.OUTPUT,
            Interconnect.BROADCAST,
            "P",
            Pack.FLATTEN,
            "Q",
            "C,R,S",
            fill="1",
            drain="rows",
            gemm=("N,P", "K", "C,Q,R,S"),
        ),
        "coexplore.rtl.sdn:SdnAccelerator",
        "coexplore.rtl.sdn_program",
        "shidiannao",
    ),
)
_BY_NAME: dict[str, HardwareKind] = {k.name: k for k in KINDS}


def available() -> str:
    """``ws (systolic-ws), os (systolic-os), rs (eyeriss)``: for error messages."""
    return ", ".join(f"{k.name} ({k.template})" for k in KINDS)


def kind_for(dataflow: Dataflow) -> HardwareKind:
    """The kind that builds ``dataflow``; RtlError naming the template and the kinds that exist."""
    structure = Structure.of(dataflow)
    for kind in KINDS:
        if kind.structure == structure:
            return kind
    if structure is None:  # describe the conv mapping, and say why it is not a structure
        conv = Structure.of(replace(dataflow, overrides=()))
        what = f"{conv.describe()}; linear and matmul layers map differently" if conv else "no conv mapping"
    else:
        what = structure.describe()
    raise RtlError(f"template {dataflow.name!r} has no RTL generator ({what}); RTL kinds: {available()}")


def kind_of(params: RtlParams | str) -> HardwareKind:
    """The kind of built parameters (or of a kind name)."""
    name = params if isinstance(params, str) else params.kind
    try:
        return _BY_NAME[name]
    except KeyError:
        raise RtlError(f"RTL kind {name!r} does not exist; RTL kinds: {available()}") from None


def program_of(params: RtlParams) -> Any:
    """The host program module of ``params``' kind."""
    return kind_of(params).program_module()


@cache
def shipped_template_kinds() -> dict[str, str]:
    """Shipped template name -> kind name, for every shipped template some generator builds."""
    from coexplore.dataflows.io import builtin_templates

    out = {}
    for name, df in builtin_templates().items():
        try:
            out[name] = kind_for(df).name
        except RtlError:
            pass
    return out
