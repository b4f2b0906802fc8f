"""Whole-network check: a small network run layer by layer on one generated accelerator.

Why: the single-layer checks (``rtl.verify``) hold each layer to numpy and to the simulator in
isolation; this one chains them, so the data a layer gets is what the hardware produced for the
layer before, and the network's summed RTL cycles are held to the simulator's.

How (``run_network``):
- The network input is random int8 (seeded); every compute layer gets random int8 weights drawn
  from the same seeded generator, in layer order.
- A compute layer (conv or linear that the generator accepts; on WS, OS, IS, ShiDianNao and RS also
  depthwise and grouped, as dense sub-layers, ``dataflows.decompose``) runs on the hardware as the calls of its plan
  (``rtl.program.prepare_layer``; one call when it fits) in the cocotb bench, which checks
  it bit-exact against numpy on the very input it was given, every input beat consumed, and its
  cycles equal to the simulator's (``sim.cycle.simulate_layer(layer, acc, "rtl")``, passed in by the
  caller as ``simulated``, since rtl/ does not import sim/).
- Requantization between layers, on the host: the int32 accumulators are shifted right
  arithmetically by ``shift`` bits (default 9, one fixed shift for every layer) and clipped to
  int8 [-128, 127]. No ReLU (the IR does not record one).
- Layers the RTL does not run are done on the host in numpy and reported as host layers with 0 RTL
  and 0 simulated cycles: pooling (max over the window, padding never wins), element-wise (a
  saturating int8 sum of the predecessors) and the flatten before a linear layer (a C-order
  reshape, as torch's flatten: a layer's input is its producer's output reshaped when the sizes
  agree).
- Independently of the hardware, the same network runs in plain numpy (its own conv, not the
  bench's); every layer's hardware result must equal that chain's (``network_mismatches``), so a
  wrong value anywhere shows at the layer where it appears and after it.
Passes when every compute layer passed its bench, the numpy chain agrees everywhere, and the summed
RTL cycles of the compute layers equal the simulator's summed cycles of the same layers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coexplore.dataflows.spec import Accelerator
from coexplore.models.ir import Layer, Network, OpKind
from coexplore.rtl.params import RtlError, RtlParams, params_from_accelerator

INT8_MIN, INT8_MAX = -128, 127
DEFAULT_SHIFT = 9  # 3x3 convs of random int8 (sums of ~2^14 * sqrt(C*9)) then seldom clip
RTL_KINDS = (OpKind.CONV, OpKind.DEPTHWISE, OpKind.LINEAR)  # grouped: sub-layers (dataflows.decompose)
HOST_KINDS = (OpKind.POOL, OpKind.ELTWISE)
SIMULATORS = ("icarus", "verilator")


@dataclass(frozen=True, slots=True)
class LayerCheck:
    """One layer of the network check. ``where`` is ``rtl`` (run on the generated hardware) or
    ``host`` (numpy on the host: 0 RTL and 0 simulated cycles, no bench)."""

    name: str
    kind: str
    where: str
    rtl_cycles: int
    simulated_cycles: int
    mismatches: int  # outputs the bench found wrong against numpy on the layer's own input
    network_mismatches: int  # outputs different from the pure-numpy network at this layer
    calls: int  # hardware calls the layer ran as (0 on the host)
    distinct_values: int  # distinct int8 values of the layer's output (a check on degenerate data)
    passed: bool


@dataclass(frozen=True, slots=True)
class NetworkCheck:
    """A network run layer by layer on a generated accelerator (``run_network``)."""

    network: str
    accelerator: str
    simulator: str
    shift: int  # requantization: accumulators >> shift, clipped to int8
    layers: tuple[LayerCheck, ...]
    rtl_cycles: int  # summed over the compute layers
    simulated_cycles: int  # the simulator's rtl profile, summed over the same layers
    mismatches: int
    network_mismatches: int
    wall_s: float

    @property
    def host_layers(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.layers if row.where == "host")

    @property
    def passed(self) -> bool:
        return (
            all(row.passed for row in self.layers)
            and self.network_mismatches == 0
            and self.rtl_cycles == self.simulated_cycles
        )

    def table(self) -> str:
        """One line per layer and a total line (for reports and test failures)."""
        lines = [f"{'layer':<16} {'kind':<8} {'where':<5} {'calls':>5} {'rtl':>8} {'sim':>8} {'bad':>5} {'net bad':>7}"]
        for r in self.layers:
            lines.append(
                f"{r.name:<16} {r.kind:<8} {r.where:<5} {r.calls:>5} {r.rtl_cycles:>8} {r.simulated_cycles:>8} "
                f"{r.mismatches:>5} {r.network_mismatches:>7}"
            )
        lines.append(
            f"{'total':<16} {'':<8} {'':<5} {'':>5} {self.rtl_cycles:>8} {self.simulated_cycles:>8} "
            f"{self.mismatches:>5} {self.network_mismatches:>7}  passed={self.passed}"
        )
        return "\n".join(lines)


def requantize(acc_out: np.ndarray, shift: int) -> np.ndarray:
    """int8 activations from accumulators: arithmetic right shift by ``shift``, clip to [-128, 127]."""
    return np.clip(np.asarray(acc_out, dtype=np.int64) >> shift, INT8_MIN, INT8_MAX)


def numpy_conv(layer: Layer, x: np.ndarray, w: np.ndarray, acc_bits: int) -> np.ndarray:
    """out[k][p][q] of a conv/linear (grouped too) in plain numpy (tap by tap), wrapped to ``acc_bits``:
    the network reference, written apart from the bench's im2col reference."""
    sh, sw, ph, pw = layer.stride_h, layer.stride_w, layer.pad_h, layer.pad_w
    xp = np.pad(x.astype(np.int64), ((0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((layer.k, layer.p, layer.q), dtype=np.int64)
    for r in range(layer.r):
        for s in range(layer.s):
            h0, w0 = r * layer.dilation_h, s * layer.dilation_w
            patch = xp[:, h0 : h0 + sh * (layer.p - 1) + 1 : sh, w0 : w0 + sw * (layer.q - 1) + 1 : sw]
            wg = w[:, :, r, s].astype(np.int64).reshape(layer.groups, layer.k_per_group, layer.c_per_group)
            out += np.einsum(
                "gkc,gcpq->gkpq", wg, patch.reshape(layer.groups, layer.c_per_group, *patch.shape[1:])
            ).reshape(out.shape)
    mod = 1 << acc_bits
    out &= mod - 1
    return np.where(out >= mod >> 1, out - mod, out)


def host_layer(layer: Layer, inputs: list[np.ndarray]) -> np.ndarray:
    """A layer the RTL does not run, on int8 activations: max pooling or a saturating sum."""
    if layer.kind is OpKind.POOL:
        x = _shaped(layer, inputs[0])
        xp = np.pad(x, ((0, 0), (layer.pad_h, layer.pad_h), (layer.pad_w, layer.pad_w)), constant_values=INT8_MIN)
        out = np.full((layer.k, layer.p, layer.q), INT8_MIN, dtype=np.int64)
        for r in range(layer.r):
            for s in range(layer.s):
                h0, w0 = r * layer.dilation_h, s * layer.dilation_w
                tap = xp[
                    :,
                    h0 : h0 + layer.stride_h * (layer.p - 1) + 1 : layer.stride_h,
                    w0 : w0 + layer.stride_w * (layer.q - 1) + 1 : layer.stride_w,
                ]
                out = np.maximum(out, tap)
        return out
    if layer.kind is OpKind.ELTWISE:
        if len(inputs) < 2:
            raise RtlError(f"layer {layer.name!r}: an element-wise layer needs 2 producers, got {len(inputs)}")
        total = sum((_shaped(layer, x) for x in inputs), np.zeros((layer.c, layer.h, layer.w), dtype=np.int64))
        return np.clip(total, INT8_MIN, INT8_MAX)
    raise RtlError(
        f"layer {layer.name!r}: kind {layer.kind.value!r} runs neither on the RTL nor on the host "
        f"(expected conv, linear, pool or eltwise)"
    )


def _shaped(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The producer's output as this layer's input (c, h, w): a C-order reshape (a flatten)."""
    want = (layer.c, layer.h, layer.w)
    if x.size != layer.c * layer.h * layer.w:
        raise RtlError(
            f"layer {layer.name!r}: its input {layer.c}x{layer.h}x{layer.w} does not match its producer's "
            f"output of {x.size} values (shape {'x'.join(map(str, x.shape))})"
        )
    return np.asarray(x, dtype=np.int64).reshape(want)


def _producers(network: Network, index: int) -> tuple[int, ...]:
    """The layers feeding ``index`` (-1: the network input); a network without edges is a chain."""
    preds = network.predecessors(index)
    if preds:
        return preds
    if index == 0 or not network.edges:
        return (index - 1,)
    raise RtlError(f"layer {network.layers[index].name!r} has no producer in network {network.name!r}")


def built_accelerator(acc: Accelerator) -> Accelerator:
    """``acc`` as built: an unlimited DRAM bandwidth becomes the RTL's stream width."""
    width = float(params_from_accelerator(acc).stream_bytes)
    return dataclasses.replace(acc, dram_bw_bytes_per_cycle=width)


def check_network(acc: Accelerator, network: Network) -> None:
    """RtlError naming the first layer the check cannot run (before any simulation starts)."""
    from coexplore.rtl.program import check_tiled

    params = params_from_accelerator(acc)
    for layer in network.layers:
        if layer.kind in RTL_KINDS:
            check_tiled(params, layer)
        elif layer.kind not in HOST_KINDS:
            raise RtlError(
                f"layer {layer.name!r}: kind {layer.kind.value!r} is not run by the {params.kind} RTL "
                f"nor on the host (expected conv, linear, pool or eltwise)"
            )


def run_network(
    acc: Accelerator,
    network: Network,
    work_dir: Path,
    simulator: str = "icarus",
    seed: int = 0,
    cache_dir: Path | None = None,
    shift: int = DEFAULT_SHIFT,
    overrides: Mapping[str, RtlParams] | None = None,
    hardware_shift: int | None = None,
    simulated: Callable[[Layer, Accelerator], int] | None = None,
) -> NetworkCheck:
    """Run ``network`` layer by layer on the RTL of ``acc`` (see the module docstring). Two test
    hooks show the check failing: ``overrides`` maps a layer name to other hardware for that layer
    (``rtl.faults.faulty(...)`` parameters), ``hardware_shift`` requantizes the hardware chain's
    outputs by another shift than the numpy chain's (every bench still passes: only the network
    comparison sees it). ``simulated(layer, acc)`` gives the cycles a layer must take: the caller passes
    the cycle simulator's rtl profile (rtl/ does not import sim/; default: the kind's timing model)."""
    from coexplore.rtl.program import prepare_layer
    from coexplore.rtl.verify import job_for_calls, run_job

    if simulator not in SIMULATORS:
        raise RtlError(f"simulator={simulator!r}: expected one of {', '.join(SIMULATORS)}")
    hw_shift = shift if hardware_shift is None else hardware_shift
    for key, value in (("shift", shift), ("hardware_shift", hw_shift)):
        if not 0 <= value < 32:
            raise RtlError(f"{key}={value}: expected a right shift of 0..31 bits")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {layer.name for layer in network.layers})
    if unknown:
        raise RtlError(f"overrides name layers not in network {network.name!r}: {', '.join(unknown)}")
    check_network(acc, network)
    base = params_from_accelerator(acc)
    rng = np.random.default_rng(seed)
    first = network.layers[0]
    x0 = rng.integers(INT8_MIN, INT8_MAX + 1, size=(first.c, first.h, first.w)).astype(np.int64)
    hw: dict[int, np.ndarray] = {-1: x0}  # int8 activations as the hardware chain produced them
    ref: dict[int, np.ndarray] = {-1: x0}  # the same from the pure-numpy network
    rows: list[LayerCheck] = []
    t0 = time.perf_counter()
    work_dir = Path(work_dir)
    for i, layer in enumerate(network.layers):
        preds = _producers(network, i)
        if layer.kind not in RTL_KINDS:
            hw[i] = host_layer(layer, [hw[p] for p in preds])
            ref[i] = host_layer(layer, [ref[p] for p in preds])
            bad = int(np.count_nonzero(hw[i] != ref[i]))
            distinct = len(np.unique(hw[i]))
            rows.append(LayerCheck(layer.name, layer.kind.value, "host", 0, 0, 0, bad, 0, distinct, True))
            continue
        if len(preds) != 1:
            raise RtlError(f"layer {layer.name!r}: a compute layer needs one producer, got {len(preds)}")
        params = overrides.get(layer.name, base)
        x, x_ref = _shaped(layer, hw[preds[0]]), _shaped(layer, ref[preds[0]])
        shape = (layer.k, layer.c_per_group, layer.r, layer.s)
        w = rng.integers(INT8_MIN, INT8_MAX + 1, size=shape).astype(np.int64)
        tp = prepare_layer(params, layer, x, w)
        expected = int(simulated(layer, built_accelerator(acc))) if simulated else tp.expected_cycles
        job = job_for_calls(tp, seed, {}, expected)
        raw, failed, _, _ = run_job(params, job, work_dir, simulator, cache_dir, False)
        outputs = raw.get("outputs") or []
        consumed = raw.get("inputs_consumed") == [[len(p.ifmap_beats), len(p.weight_beats)] for p in tp.calls]
        if raw and len(outputs) == len(tp.calls) and all(o is not None for o in outputs):
            out = tp.assemble([np.array(o, dtype=np.int64) for o in outputs]).reshape(tp.expected_out.shape)
            mismatches = max(int(raw.get("mismatches", 0)), int(np.count_nonzero(out != tp.expected_out)))
        else:  # no usable output: the whole layer counts wrong; 128 (no int8) marks it downstream
            out = np.full_like(tp.expected_out, INT8_MAX + 1)
            mismatches = int(tp.expected_out.size)
        want = numpy_conv(layer, x_ref, w, base.acc_bits)
        net_bad = int(np.count_nonzero(out != want))
        rtl_cycles = int(raw.get("rtl_cycles") or 0)
        ok = failed == 0 and bool(raw) and consumed and mismatches == 0 and rtl_cycles == expected
        hw[i], ref[i] = requantize(out, hw_shift), requantize(want, shift)
        distinct = len(np.unique(hw[i]))
        row = LayerCheck(
            layer.name, layer.kind.value, "rtl", rtl_cycles, expected, mismatches, net_bad, len(tp.calls), distinct, ok
        )
        rows.append(row)
    compute = [r for r in rows if r.where == "rtl"]
    return NetworkCheck(
        network=network.name,
        accelerator=acc.label,
        simulator=simulator,
        shift=shift,
        layers=tuple(rows),
        rtl_cycles=sum(r.rtl_cycles for r in compute),
        simulated_cycles=sum(r.simulated_cycles for r in compute),
        mismatches=sum(r.mismatches for r in rows),
        network_mismatches=sum(r.network_mismatches for r in rows),
        wall_s=time.perf_counter() - t0,
    )
