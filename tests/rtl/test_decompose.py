"""Depthwise, grouped conv, matmul and batch > 1 on the generated WS, OS, IS, ShiDianNao, RS and nvdla arrays as
sub-layers, and (nvdla) kernels of more taps than a PE holds as tap groups (``dataflows.decompose``,
``rtl.program.prepare_layer``): the index arithmetic against an independent numpy reference of the whole
layer, then Icarus runs bit-exact against that reference and cycle-exact against the simulator's rtl
profile; a wrong block placement or a tap group's wrong weights turn the check red."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rtl_helpers import simulated_cycles, small_acc

from coexplore.dataflows.decompose import (
    DecomposeError,
    candidate_blocks,
    choose_block,
    decompose,
    decomposes,
    needs_decomposition,
    plan_decomposed,
    tap_groups,
)
from coexplore.dataflows.tiling import CALL_GAP_CYCLES, call_limits
from coexplore.models.ir import Layer, OpKind, conv, gemm, matmul
from coexplore.rtl.params import RtlError, params_from_accelerator
from coexplore.rtl.program import DecomposedProgram, check_tiled, decomposed_plan, prepare_layer
from coexplore.rtl.verify import job_for_calls, run_job

LAYERS = {
    "depthwise": conv("dw", c=10, k=10, h=7, r=3, pad=1, groups=10),
    "grouped": conv("gc", c=6, k=9, h=6, r=3, stride=2, pad=1, groups=3),
    "matmul": matmul("mm", m=6, k=5, n=3, batch=3),
    "batch2": dataclasses.replace(conv("b2", c=3, k=5, h=6, r=3, pad=1), n=2),
    "linear-batch2": dataclasses.replace(gemm("lb", m=5, k=7, n=6), n=2),
    "stride-gather": conv("sg", c=5, k=6, h=9, w=8, r=1, stride=2),  # the host gathers rows/columns read
}
TAPS = {  # kernels of more taps than an nvdla PE holds (9): tap groups whose outputs the host adds
    "taps5x5-pad2": conv("t5", c=3, k=5, h=7, w=6, r=5, pad=2),
    "patch4x4-s4": conv("pe", c=3, k=6, h=12, r=4, stride=4),  # vit's patch embedding, small
    "taps7x7-s2-pad3": conv("t7", c=2, k=3, h=11, r=7, stride=2, pad=3),
    "depthwise5x5": conv("dw5", c=6, k=6, h=6, r=5, pad=2, groups=6),
    "batch2-5x5": dataclasses.replace(conv("b5", c=2, k=3, h=7, r=5, pad=1), n=2),
    "gather3x3-s4": conv("g3", c=2, k=3, h=13, r=3, stride=4),  # tap groups of a gathered (skips_input) layer
}


def reference(layer: Layer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[n][k][p][q] straight from the loop nest of models.ir (tap by tap, all groups at once)."""
    n, g, cg, kg = layer.n, layer.groups, layer.c_per_group, layer.k_per_group
    xp = np.pad(x, ((0, 0), (0, 0), (layer.pad_h, layer.pad_h), (layer.pad_w, layer.pad_w)))
    out = np.zeros((n, g, kg, layer.p, layer.q), dtype=np.int64)
    for r in range(layer.r):
        for s in range(layer.s):
            rows = slice(r, r + layer.stride_h * (layer.p - 1) + 1, layer.stride_h)
            cols = slice(s, s + layer.stride_w * (layer.q - 1) + 1, layer.stride_w)
            tap = xp[:, :, rows, cols].reshape(n, g, cg, layer.p, layer.q)
            if layer.kind is OpKind.MATMUL:
                out += np.einsum("ngkc,ngcpq->ngkpq", w.reshape(n, g, kg, cg), tap)
            else:
                out += np.einsum("gkc,ngcpq->ngkpq", w.reshape(g, kg, cg, layer.r, layer.s)[..., r, s], tap)
    return out.reshape(n, layer.k, layer.p, layer.q)


def tensors(layer: Layer, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """int8 operands in dataflows.decompose's layouts (matmul: the right-hand activation per sample)."""
    ws = (layer.n, layer.k, layer.c_per_group) if layer.kind is OpKind.MATMUL else (layer.k, layer.c_per_group)
    x = rng.integers(-128, 128, size=(layer.n, layer.c, layer.h, layer.w))
    w = rng.integers(-128, 128, size=ws + ((layer.r, layer.s) if layer.kind is not OpKind.MATMUL else ()))
    return x, w


def dense_conv(sub: Layer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A dense sub-layer's out[k][p][q] (the same loop nest, one sample, one group)."""
    return reference(sub, x[None], w)[0]


@pytest.mark.parametrize("block", [1, 2, 3, 4, 16])
@pytest.mark.parametrize("name", sorted(LAYERS) + ["depthwise-x2", "grouped-batch2", "matmul-batch2", "stride3-r2"])
def test_pieces_reassemble_the_layer(name: str, block: int) -> None:
    """Every piece's operands through a dense conv, placed back: the layer's own output; every output
    written once, and the MACs run are the layer's plus the zeros off the diagonal blocks."""
    extra = {
        "depthwise-x2": conv("dwm", c=4, k=8, h=5, r=3, pad=1, groups=4),  # channel multiplier 2
        "grouped-batch2": dataclasses.replace(LAYERS["grouped"], n=2),
        "matmul-batch2": dataclasses.replace(matmul("mb", m=4, k=3, n=5, batch=2), n=2),
        "stride3-r2": conv("s3", c=3, k=4, h=11, w=10, r=2, stride=3),  # reads 2 of every 3 rows
    }
    layer = extra.get(name) or LAYERS[name]
    x, w = tensors(layer, np.random.default_rng(block))
    dec = decompose(layer, block)
    assert all(not needs_decomposition(p.layer) and p.layer.kind in (OpKind.CONV, OpKind.LINEAR) for p in dec.parts)
    assert dec.block == min(block, layer.groups)
    outs = [dense_conv(dec.parts[i].layer, *dec.piece_operands(piece, x, w)) for i, piece in dec.order]
    np.testing.assert_array_equal(dec.assemble(outs), reference(layer, x, w))
    b = dec.block
    per_group = layer.macs // (layer.groups * layer.n)  # one sample, one group
    assert dec.run_macs == sum(per_group * piece.groups**2 * piece.samples for _, piece in dec.order)
    assert dec.wasted_macs == dec.run_macs - layer.macs and (b > 1) == (dec.wasted_macs > 0)
    seen = np.zeros((layer.n, layer.groups), dtype=int)
    for _, piece in dec.order:
        seen[piece.n0 : piece.n1, piece.g0 : piece.g1] += 1
    assert (seen == 1).all()
    assert len(dec.parts) == len({(p.groups, p.samples) for _, p in dec.order})  # equal shapes share a part


@pytest.mark.parametrize("taps", [1, 2, 3, 4, 6, 9])
@pytest.mark.parametrize("name", sorted(TAPS))
def test_tap_groups_reassemble_the_layer(name: str, taps: int) -> None:
    """Every tap group's piece through a dense conv of its sub-kernel, the outputs added (wrapped): the
    layer's own output; no group exceeds ``taps``; every tap of the kernel in exactly one group; no
    sub-layer needs decomposing again; the MACs run are the layer's (block 1)."""
    layer = TAPS[name]
    x, w = tensors(layer, np.random.default_rng(taps))
    dec = decompose(layer, 1, taps)
    groups = tap_groups(layer.r, layer.s, taps)
    split = layer.r * layer.s > taps
    assert dec.taps == (groups if split else ()) and (split or groups == ((0, layer.r, 0, layer.s),))
    cover = np.zeros((layer.r, layer.s), dtype=int)
    for r0, r1, s0, s1 in groups:
        assert (r1 - r0) * (s1 - s0) <= taps or not split
        cover[r0:r1, s0:s1] += 1
    assert (cover == 1).all()
    assert all(not needs_decomposition(p.layer) for p in dec.parts)
    assert all(p.layer.r * p.layer.s <= taps for p in dec.parts) or not split
    outs = [dense_conv(dec.parts[i].layer, *dec.piece_operands(piece, x, w)) for i, piece in dec.order]
    np.testing.assert_array_equal(dec.assemble(outs, 32), reference(layer, x, w))
    assert dec.run_macs == layer.macs and dec.pieces == layer.n * layer.groups * max(1, len(dec.taps))


def test_tap_groups_are_few_and_whole_rows_first() -> None:
    assert tap_groups(3, 3, 9) == ((0, 3, 0, 3),)
    assert tap_groups(4, 4, 9) == ((0, 2, 0, 4), (2, 4, 0, 4))  # vit's patch embedding: 2 groups of 2x4
    assert len(tap_groups(5, 5, 9)) == 4 and len(tap_groups(7, 7, 9)) == 7
    assert tap_groups(1, 16, 9) == ((0, 1, 0, 8), (0, 1, 8, 16))
    with pytest.raises(DecomposeError, match="taps=0: expected at least one kernel tap"):
        tap_groups(3, 3, 0)
    with pytest.raises(DecomposeError, match="taps=-1, expected a number of kernel taps"):
        decompose(TAPS["taps5x5-pad2"], 1, -1)


def test_only_a_tap_kind_splits_a_kernel() -> None:
    """A 5x5 kernel decomposes on nvdla (9 taps per PE) and nowhere else; a 3x3 stays whole there."""
    big, small = TAPS["taps5x5-pad2"], conv("c3", c=3, k=5, h=7, r=3, pad=1)
    nv, ws = call_limits(small_acc("nvdla", kb=0.5)), call_limits(small_acc("systolic-ws", kb=0.5))
    assert nv is not None and ws is not None and nv.reduction == 9
    assert decomposes(big, nv) and not decomposes(big, ws) and not decomposes(small, nv)
    assert len(plan_decomposed(big, nv).decomposition.taps) == 4


def test_a_linear_batch_folds_into_the_rows_and_a_conv_batch_does_not() -> None:
    lin, cv = decompose(LAYERS["linear-batch2"]), decompose(LAYERS["batch2"])
    assert lin.pieces == 1 and lin.parts[0].layer.h == 2 * LAYERS["linear-batch2"].h
    assert cv.pieces == 2 and cv.parts[0].count == 2 and cv.parts[0].layer.n == 1


def test_block_choice_is_the_cheapest_candidate() -> None:
    """``choose_block`` minimizes the given cost over ``candidate_blocks``; a cost that grows with
    the MACs run picks b = 1, one that charges per piece picks the widest block."""
    layer = conv("dw", c=32, k=32, h=6, r=3, pad=1, groups=32)
    lim = call_limits(small_acc(kb=2.0, rows=8, cols=8))
    assert lim is not None
    assert candidate_blocks(layer, lim) == (1, 2, 4, 8)
    assert choose_block(layer, lim, lambda sub: sub.macs) == 1
    assert choose_block(layer, lim, lambda sub: 1000) == 8
    plan = plan_decomposed(layer, lim, lambda sub: 1000 + sub.macs / 1000)
    assert plan.decomposition.block == 8 and plan.decomposition.pieces == 4
    dec = plan.decomposition
    assert dec.cycles(lambda sub: 10) == 10 * 4 + CALL_GAP_CYCLES * 3


def test_bad_input_is_refused_in_one_line() -> None:
    layer = LAYERS["depthwise"]
    with pytest.raises(DecomposeError, match=r"layer 'dw': input has 9 values .* expected 1x10x7x7"):
        decompose(layer, 2).operands(np.zeros(9), np.zeros((10, 1, 3, 3)))
    with pytest.raises(DecomposeError, match="block=0, expected a positive number"):
        decompose(layer, 0)
    pool = Layer("mp", OpKind.POOL, k=4, c=4, h=4, w=4, r=2, s=2)
    with pytest.raises(DecomposeError, match="'mp': kind 'pool' has no MACs"):
        decompose(pool)
    nvdla = params_from_accelerator(small_acc("nvdla", kb=1.0))  # a dense 3x3 layer is not decomposed
    with pytest.raises(RtlError, match=r"'c': kind 'conv' \(groups=1, n=1\) is not supported by the RTL of kind"):
        decomposed_plan(nvdla, conv("c", c=3, k=4, h=5, r=3, pad=1))


def _run(template: str, layer: Layer, tmp_path, rtl_cache, seed: int, prog_hook=None):
    """The layer's calls back to back in one Icarus bench: (bench result, program, whole output)."""
    acc = small_acc(template, kb=0.5)
    params = params_from_accelerator(acc)
    x, w = tensors(layer, np.random.default_rng(seed))
    prog = prepare_layer(params, layer, x, w)
    assert isinstance(prog, DecomposedProgram)
    if prog_hook is not None:
        prog = prog_hook(params, layer, x, w)
    simulated = simulated_cycles(acc, layer)
    raw, failed, _, _ = run_job(params, job_for_calls(prog, seed, {}, simulated), tmp_path, "icarus", rtl_cache, False)
    outputs = raw.get("outputs") or []
    assert len(outputs) == len(prog.calls) and all(o is not None for o in outputs), raw
    whole = prog.assemble([np.array(o, dtype=np.int64) for o in outputs])
    return raw, failed, prog, whole, reference(layer, x, w), simulated


@pytest.mark.parametrize(
    ("template", "name"),
    [
        *((t, n) for t in ("systolic-ws", "systolic-os") for n in ("depthwise", "grouped", "matmul", "batch2")),
        ("systolic-ws", "stride-gather"),
        ("systolic-os", "stride-gather"),
        ("systolic-is", "depthwise"),
        ("systolic-is", "matmul"),
        ("shidiannao", "depthwise"),
        ("shidiannao", "batch2"),
        ("eyeriss", "depthwise"),
        ("eyeriss", "matmul"),
        ("nvdla", "depthwise"),
        ("nvdla", "matmul"),
        ("nvdla", "batch2"),
        ("nvdla", "taps5x5-pad2"),
        ("nvdla", "patch4x4-s4"),
    ],
)
def test_decomposed_layer_bit_and_cycle_exact(template: str, name: str, tmp_path, rtl_cache) -> None:
    """The sub-layers' calls on the generated array: the assembled output equals the reference of the
    whole layer, every input beat consumed, and the cycles equal the simulator's rtl profile."""
    layer = {**LAYERS, **TAPS}[name]
    raw, failed, prog, whole, want, simulated = _run(template, layer, tmp_path, rtl_cache, seed=3)
    assert failed == 0 and raw["mismatches"] == 0, raw
    assert raw["inputs_consumed"] == [[len(p.ifmap_beats), len(p.weight_beats)] for p in prog.calls], raw
    np.testing.assert_array_equal(whole, want)
    np.testing.assert_array_equal(prog.expected_out, want)
    assert raw["rtl_cycles"] == raw["bench_cycles"] == simulated == prog.expected_cycles, raw
    if name == "stride-gather":  # the gathered input (P*r x Q*s pixels) at stride r = 1, every call
        assert all(p.geo.stride == 1 and p.geo.h <= layer.p and p.geo.w <= layer.q for p in prog.calls)
    else:
        assert len(prog.calls) > 1


def test_a_batch_folded_linear_layer_bit_and_cycle_exact(tmp_path, rtl_cache) -> None:
    layer = LAYERS["linear-batch2"]
    raw, failed, prog, whole, want, simulated = _run("systolic-os", layer, tmp_path, rtl_cache, seed=4)
    assert failed == 0 and prog.plan.decomposition.pieces == 1, raw
    np.testing.assert_array_equal(whole, want)
    assert raw["rtl_cycles"] == simulated == prog.expected_cycles, raw


def test_a_wrong_block_placement_turns_the_check_red(tmp_path, rtl_cache, monkeypatch) -> None:
    """Each group's weights placed one diagonal block off (group g0+i at block i+1): every call is
    still bit-exact against its own operands, so the bench passes, but the assembled output is not
    the depthwise layer's."""
    from coexplore.dataflows import decompose as mod

    honest = mod.Decomposition.piece_operands

    def shifted(self, piece, x, w):
        xi, dense = honest(self, piece, x, w)
        kg, cg = self.layer.k_per_group, self.layer.c_per_group
        return xi, np.roll(dense, (kg, cg), axis=(0, 1)) if piece.groups > 1 else dense

    def faulty(params, layer, x, w):
        monkeypatch.setattr(mod.Decomposition, "piece_operands", shifted)
        return prepare_layer(params, layer, x, w)

    raw, failed, prog, whole, want, _ = _run("systolic-ws", LAYERS["depthwise"], tmp_path, rtl_cache, 3, faulty)
    assert prog.plan.decomposition.block > 1
    assert failed == 0 and raw["mismatches"] == 0, raw  # the calls themselves are right
    assert np.count_nonzero(whole != want) > 0  # the layer is not


def test_a_tap_group_with_wrong_weights_turns_the_check_red(tmp_path, rtl_cache, monkeypatch) -> None:
    """nvdla's second tap group of a 4x4 kernel given the first group's kernel rows: every call is
    still bit-exact against its own operands, so the bench passes, but the summed output is not the
    layer's."""
    from coexplore.dataflows import decompose as mod

    honest = mod.Decomposition.piece_operands

    def wrong_rows(self, piece, x, w):
        xi, dense = honest(self, piece, x, w)
        return xi, honest(self, dataclasses.replace(piece, tap=0), x, w)[1] if piece.tap else dense

    def faulty(params, layer, x, w):
        monkeypatch.setattr(mod.Decomposition, "piece_operands", wrong_rows)
        return prepare_layer(params, layer, x, w)

    raw, failed, prog, whole, want, _ = _run("nvdla", TAPS["patch4x4-s4"], tmp_path, rtl_cache, 3, faulty)
    assert len(prog.plan.decomposition.taps) == 2
    assert failed == 0 and raw["mismatches"] == 0, raw  # the calls themselves are right
    assert np.count_nonzero(whole != want) > 0  # the layer is not


def test_a_network_with_depthwise_and_grouped_layers(tmp_path, rtl_cache) -> None:
    """conv -> depthwise 3x3 -> grouped 1x1 -> linear, layer by layer on a WS array (rtl.network): every
    layer bit-exact on the hardware's own chain, the numpy chain equal, the summed cycles the simulator's."""
    from coexplore.models.ir import Network
    from coexplore.rtl.network import run_network
    from coexplore.sim.cycle.simulator import simulate_layer

    net = Network.chain(
        "mobile-tiny",
        [
            conv("conv1", c=2, k=6, h=6, r=3, pad=1),
            conv("dw", c=6, k=6, h=6, r=3, pad=1, groups=6),
            conv("pw", c=6, k=4, h=6, r=1, groups=2),
            gemm("fc", 1, 4 * 36, 5),
        ],
    )
    check = run_network(
        small_acc(kb=1.0),
        net,
        tmp_path,
        simulated=lambda layer, acc: int(simulate_layer(layer, acc, "rtl").total_cycles),
        seed=2,
        cache_dir=rtl_cache,
        shift=8,
    )
    assert check.passed, check.table()
    rows = {r.name: r for r in check.layers}
    assert rows["dw"].calls > 1 and rows["pw"].calls >= 2, check.table()
    assert all(r.distinct_values > 3 for r in check.layers), check.table()


SWEEP = (
    conv("dw", c=24, k=24, h=9, r=3, pad=1, groups=24),
    conv("dws2", c=16, k=16, h=11, r=3, stride=2, pad=1, groups=16),
    conv("gc", c=12, k=18, h=8, r=3, pad=1, groups=3),
    matmul("mm", m=20, k=12, n=10, batch=4),
    dataclasses.replace(conv("b2", c=6, k=10, h=8, r=3, pad=1), n=2),
    dataclasses.replace(gemm("lb", m=12, k=40, n=24), n=3),
    conv("sg", c=20, k=12, h=15, r=1, stride=2),
    conv("sg3", c=6, k=8, h=14, r=2, stride=3),
)


@pytest.mark.parametrize("template", ["systolic-ws", "systolic-os", "systolic-is", "shidiannao", "eyeriss", "nvdla"])
def test_rtl_profile_is_the_decomposed_hardware_timing_model(template: str) -> None:
    """On small designs, ``simulate_layer(..., "rtl")`` of a decomposed layer equals the RTL host's
    timing model (every sub-layer call's model plus the gaps) at the same block of groups (nvdla: and
    the same tap groups of its larger kernels)."""
    import itertools

    from coexplore.sim.cycle import simulate_layer

    checked = 0
    for (rows, cols), bw, kb in itertools.product([(4, 4), (8, 8), (4, 8)], [2, 8], [0.5, 2]):
        acc = small_acc(template, rows=rows, cols=cols, bw=bw, kb=kb)
        try:
            params = params_from_accelerator(acc)
        except RtlError:
            continue
        for layer in SWEEP + (tuple(TAPS.values()) if template == "nvdla" else ()):
            try:
                plan = check_tiled(params, layer)
            except RtlError:
                continue
            x, w = tensors(layer, np.random.default_rng(0))
            prog = prepare_layer(params, layer, x, w)
            assert isinstance(prog, DecomposedProgram) and prog.plan == plan
            sim = simulate_layer(layer, acc, "rtl")
            assert sim.total_cycles == prog.expected_cycles, (rows, cols, bw, kb, layer.name)
            assert sim.extra["block"] == plan.decomposition.block and sim.extra["calls"] == len(prog.calls)
            checked += 1
    assert checked >= 40
