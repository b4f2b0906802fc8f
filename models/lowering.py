"""Framework-neutral lowering of tensor ops (known only by their shapes) to IR layers.

``from_torch`` and ``from_onnx`` both walk a graph, describe each tensor as a :class:`Value` (shape, the
compute layers it directly depends on, whether it is a constant/parameter) and call the builders here,
so the same operator lowers to the same :class:`Layer` whichever front end saw it. No torch or onnx
import: this module is plain Python over shapes.

Conventions (kept identical in both front ends):

* conv/pool with asymmetric padding (PyTorch ``padding='same'`` with an even kernel, ONNX ``pads`` or
  ``SAME_UPPER``, ``ceil_mode``) keeps the smaller pad as ``pad_h``/``pad_w`` and adds the rest to the
  input extent ``h``/``w``, so output sizes and MACs are exact (the IR only has symmetric padding);
* a linear layer folds every leading dim into rows: ``h = prod(shape[:-1])``, ``w = 1``, ``n = 1``;
* a matmul folds its (broadcast) batch dims into ``groups``, as ``ir.matmul`` does;
* an add/sub/mul is an ELTWISE layer only when it combines two activation tensors (not a parameter or a
  constant, more than one element each) coming from different producers; a bias/scale by a parameter
  and a self-gating product like ``x * sigmoid(x)`` are fused into the producer like an activation;
* a mean over all spatial dims (``x.mean((2, 3))``, ONNX ``ReduceMean``/``GlobalAveragePool``) or over
  the tokens of a ``(batch, tokens, dim)`` tensor is a global POOL layer; other reductions are free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from coexplore.models.ir import CoexploreError, Layer, Network, OpKind

Shape = tuple[int, ...]


class UnsupportedOpError(CoexploreError):
    """An operator that does compute the IR cannot describe (LSTM, 3-D or transposed conv, ...)."""


@dataclass(frozen=True, slots=True)
class Value:
    """What a front end knows about one tensor.

    ``frontier``: indices of the compute layers this tensor directly depends on (through free ops);
    ``static``: a parameter, buffer or constant rather than an activation derived from the input.
    """

    shape: Shape | None
    frontier: frozenset[int] = frozenset()
    static: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 1


def union(values: Iterable[Value]) -> tuple[frozenset[int], bool]:
    """Frontier and static flag of the output of a free op (data movement, activation) over ``values``."""
    values = list(values)
    frontier = frozenset().union(*(v.frontier for v in values)) if values else frozenset()
    return frontier, all(v.static for v in values)


@dataclass(slots=True)
class GraphBuilder:
    """Collects layers in execution order and the producer -> consumer edges between them."""

    name: str
    bits: int = 8
    layers: list[Layer] = field(default_factory=list)
    edges: set[tuple[int, int]] = field(default_factory=set)
    _names: set[str] = field(default_factory=set)

    def unique(self, name: str) -> str:
        base, i = name or "layer", 1
        while name in self._names or not name:
            name = f"{base}_{i}"
            i += 1
        return name

    def add(self, layer: Layer, preds: Iterable[int]) -> frozenset[int]:
        """Append ``layer`` after its producers ``preds``; returns the frontier of its output."""
        self._names.add(layer.name)
        index = len(self.layers)
        self.layers.append(layer)
        self.edges.update((p, index) for p in preds)
        return frozenset((index,))

    def network(self) -> Network:
        if not self.layers:
            raise CoexploreError(f"model {self.name!r} has no compute, pooling or element-wise layers to map")
        return Network(self.name, tuple(self.layers), tuple(sorted(self.edges)))


# ---- geometry helpers ----------------------------------------------------------------------------
def _pair(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _fit_extent(
    name: str, size: int, out: int | None, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int
) -> tuple[int, int]:
    """(input extent, symmetric pad) for the IR so that its output size equals the framework's ``out``."""
    pad = min(pad_begin, pad_end)
    extent = size + pad_begin + pad_end - 2 * pad
    eff = (kernel - 1) * dilation + 1
    produced = (extent + 2 * pad - eff) // stride + 1
    if out is not None and produced < out:  # ceil_mode: the framework reads past the end
        extent += (out - 1) * stride + eff - (extent + 2 * pad)
        produced = out
    if out is not None and produced != out:
        raise CoexploreError(
            f"layer {name!r}: output size {out} does not match kernel {kernel}, stride {stride}, "
            f"pads ({pad_begin}, {pad_end}) on input {size}"
        )
    return extent, pad


def _split_batch(name: str, shape: Shape, spatial: int) -> tuple[int, int, Shape]:
    """(batch, channels, spatial sizes) of a channels-first tensor, batched or not."""
    if len(shape) == spatial + 2:
        return shape[0], shape[1], tuple(shape[2:])
    if len(shape) == spatial + 1:
        return 1, shape[0], tuple(shape[1:])
    raise CoexploreError(f"layer {name!r}: input shape {list(shape)} is not (N, C, {spatial}-D spatial)")


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool = True) -> tuple[int, int]:
    """(begin, end) pads of 'same' padding: output ceil(size / stride); extra pad at the end if ``upper``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


# ---- layer builders ------------------------------------------------------------------------------
def _window_layer(
    name: str,
    kind: OpKind | None,
    x_shape: Shape,
    out_shape: Shape | None,
    out_channels: int | None,
    kernel: Sequence[int],
    stride: Sequence[int],
    pads_begin: Sequence[int],
    pads_end: Sequence[int],
    dilation: Sequence[int],
    groups: int | None,
    bits: int,
) -> Layer:
    """A sliding-window layer over 1 or 2 spatial dims (1-D as H x 1). ``None`` for ``out_channels`` /
    ``groups`` means the input's channels; ``None`` for ``kind``: CONV, or DEPTHWISE when groups ==
    in == out channels > 1."""
    spatial = len(kernel)
    n, c, sizes = _split_batch(name, x_shape, spatial)
    outs = tuple(out_shape[-spatial:]) if out_shape is not None else (None,) * spatial
    geo = [
        _fit_extent(name, sizes[i], outs[i], kernel[i], stride[i], pads_begin[i], pads_end[i], dilation[i])
        for i in range(spatial)
    ]
    if spatial == 1:
        geo.append((1, 0))
        kernel, stride, dilation = (*kernel, 1), (*stride, 1), (*dilation, 1)
    k = c if out_channels is None else out_channels
    g = c if groups is None else groups
    if kind is None:
        kind = OpKind.DEPTHWISE if g > 1 and g == c == k else OpKind.CONV
    return Layer(
        name,
        kind,
        k=k,
        c=c,
        h=geo[0][0],
        w=geo[1][0],
        r=kernel[0],
        s=kernel[1],
        n=n,
        stride_h=stride[0],
        stride_w=stride[1],
        pad_h=geo[0][1],
        pad_w=geo[1][1],
        dilation_h=dilation[0],
        dilation_w=dilation[1],
        groups=g,
        input_bits=bits,
        weight_bits=bits,
        output_bits=bits,
    )


def conv_layer(
    name: str,
    x_shape: Shape,
    out_shape: Shape | None,
    out_channels: int,
    kernel: Sequence[int],
    stride: Sequence[int],
    pads_begin: Sequence[int],
    pads_end: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    bits: int = 8,
) -> Layer:
    """A 1-D or 2-D convolution (1-D as H x 1); DEPTHWISE when groups == in == out channels > 1."""
    return _window_layer(
        name, None, x_shape, out_shape, out_channels, kernel, stride, pads_begin, pads_end, dilation, groups, bits
    )


def pool_layer(
    name: str,
    x_shape: Shape,
    out_shape: Shape | None,
    kernel: Sequence[int],
    stride: Sequence[int],
    pads_begin: Sequence[int],
    pads_end: Sequence[int],
    dilation: Sequence[int],
    bits: int = 8,
) -> Layer:
    """Max/average pooling over 1 or 2 spatial dims: a POOL layer with one group per channel."""
    return _window_layer(
        name, OpKind.POOL, x_shape, out_shape, None, kernel, stride, pads_begin, pads_end, dilation, None, bits
    )


def adaptive_pool_layer(name: str, x_shape: Shape, out_sizes: Sequence[int], bits: int = 8) -> Layer:
    """Adaptive pooling to ``out_sizes``: stride in // out and the window that covers the input exactly
    (exact when sizes divide, as in every global pool; otherwise the mean window of PyTorch's rule)."""
    spatial = len(out_sizes)
    _, _, sizes = _split_batch(name, x_shape, spatial)
    strides = [max(1, size // out) for size, out in zip(sizes, out_sizes)]
    kernels = [size - (out - 1) * st for size, out, st in zip(sizes, out_sizes, strides)]
    zeros = (0,) * spatial
    return pool_layer(
        name, x_shape, (*x_shape[:-spatial], *out_sizes), kernels, strides, zeros, zeros, (1,) * spatial, bits
    )


def reduce_mean_layer(name: str, x_shape: Shape, axes: Iterable[int] | None, bits: int = 8) -> Layer | None:
    """A global POOL for a mean over all spatial dims (rank >= 3, axes 2..) or over the tokens of a
    (batch, tokens, dim) tensor (rank 3, axis 1); None (a free op) for any other reduction."""
    rank = len(x_shape)
    if axes is None or rank < 3:
        return None
    dims = {a % rank for a in axes}
    if dims == set(range(2, rank)) and rank <= 4:
        return adaptive_pool_layer(name, x_shape, (1,) * (rank - 2), bits)
    if rank == 3 and dims == {1}:
        b, t, d = x_shape
        return adaptive_pool_layer(name, (b, d, t), (1,), bits)
    return None


def linear_layer(name: str, x_shape: Shape, out_features: int, bits: int = 8) -> Layer:
    """``x @ W^T`` with W stored: every leading dim of x becomes a row (tokens x batch)."""
    rows = math.prod(x_shape[:-1]) if len(x_shape) > 1 else 1
    return Layer(
        name,
        OpKind.LINEAR,
        k=out_features,
        c=x_shape[-1],
        h=rows,
        w=1,
        input_bits=bits,
        weight_bits=bits,
        output_bits=bits,
    )


def _broadcast(a: Shape, b: Shape) -> Shape:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        out.append(max(x, y))
    return tuple(reversed(out))


def matmul_dims(a_shape: Shape, b_shape: Shape) -> tuple[int, int, int, int]:
    """(batch, m, k, n) of ``torch.matmul``/ONNX MatMul semantics, 1-D operands included."""
    a = (1, *a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b = (*b_shape, 1) if len(b_shape) == 1 else tuple(b_shape)
    batch = math.prod(_broadcast(a[:-2], b[:-2]))
    return batch, a[-2], a[-1], b[-1]


def matmul_layer(name: str, batch: int, m: int, k: int, n: int, bits: int = 8) -> Layer:
    """Activation x activation product, ``batch`` independent GEMMs (built like ``ir.matmul``)."""
    return Layer(
        name,
        OpKind.MATMUL,
        k=n * batch,
        c=k * batch,
        h=m,
        w=1,
        groups=batch,
        input_bits=bits,
        weight_bits=bits,
        output_bits=bits,
    )


def product_layer(name: str, a: Value, b: Value, bits: int = 8) -> Layer:
    """``a @ b``: LINEAR when ``b`` is a stored 2-D weight, else a (batched) MATMUL."""
    if a.shape is None or b.shape is None:
        raise CoexploreError(f"layer {name!r}: operand shapes of the matmul are unknown")
    if b.static and not a.static and len(b.shape) == 2:
        return linear_layer(name, a.shape, b.shape[1], bits)
    return matmul_layer(name, *matmul_dims(a.shape, b.shape), bits=bits)


def _nchw(shape: Shape) -> tuple[int, int, int, int]:
    if len(shape) == 0:
        return 1, 1, 1, 1
    if len(shape) == 1:
        return 1, shape[0], 1, 1
    if len(shape) == 2:
        return shape[0], shape[1], 1, 1
    if len(shape) == 3:
        return shape[0], shape[1], shape[2], 1
    return shape[0], shape[1], math.prod(shape[2:-1]), shape[-1]


def is_eltwise(operands: Sequence[Value]) -> bool:
    """Whether an add/sub/mul is a real ELTWISE layer (see the module docstring)."""
    live = [v for v in operands if not v.static and v.shape is not None and v.numel > 1]
    return len(live) >= 2 and len({v.frontier for v in live}) > 1


def eltwise_layer(name: str, out_shape: Shape, operands: int = 2, bits: int = 8) -> Layer:
    n, c, h, w = _nchw(tuple(out_shape))
    return Layer(
        name,
        OpKind.ELTWISE,
        k=c,
        c=c,
        h=h,
        w=w,
        n=n,
        operands=operands,
        input_bits=bits,
        weight_bits=bits,
        output_bits=bits,
    )


def einsum_dims(equation: str, a_shape: Shape, b_shape: Shape) -> tuple[int, int, int, int] | None:
    """(batch, m, k, n) of a two-operand einsum, or None if it is not a product of two tensors.

    Letters in both inputs and the output are batch, in both inputs only are reduced (k), in one input
    and the output are m (first) or n (second); a letter summed out of one input alone joins k, so
    batch * m * k * n is the product of every letter's size: the multiply-accumulates.
    """
    eq = equation.replace(" ", "")
    if "->" not in eq or "..." in eq:
        return None
    lhs, out = eq.split("->")
    parts = lhs.split(",")
    if len(parts) != 2 or len(parts[0]) != len(a_shape) or len(parts[1]) != len(b_shape):
        return None
    sizes: dict[str, int] = {}
    for letters, shape in ((parts[0], a_shape), (parts[1], b_shape)):
        for letter, size in zip(letters, shape):
            sizes[letter] = max(size, sizes.get(letter, 1))
    sa, sb, so = set(parts[0]), set(parts[1]), set(out)
    batch = math.prod(sizes[x] for x in sa & sb & so)
    m = math.prod(sizes[x] for x in (sa & so) - sb)
    n = math.prod(sizes[x] for x in (sb & so) - sa)
    k = math.prod(sizes[x] for x in (sa | sb) - so)
    return batch, m, k, n


# ---- attention -----------------------------------------------------------------------------------
def attention(
    builder: GraphBuilder,
    name: str,
    q: Value,
    k: Value,
    v: Value,
    batch: int,
    heads: int,
    q_len: int,
    kv_len: int,
    head_dim: int,
    v_head_dim: int,
) -> frozenset[int]:
    """Scores ``q @ k^T`` and context ``softmax(scores) @ v`` as two MATMULs with batch*heads groups."""
    g = batch * heads
    bits = builder.bits
    scores = builder.add(
        matmul_layer(builder.unique(f"{name}.scores"), g, q_len, head_dim, kv_len, bits), q.frontier | k.frontier
    )
    return builder.add(
        matmul_layer(builder.unique(f"{name}.context"), g, q_len, kv_len, v_head_dim, bits), scores | v.frontier
    )


def sdpa(builder: GraphBuilder, name: str, q: Value, k: Value, v: Value) -> frozenset[int]:
    """``scaled_dot_product_attention(q, k, v)`` on (..., L, E) / (..., S, E) / (..., S, Ev) tensors."""
    if q.shape is None or k.shape is None or v.shape is None or len(q.shape) < 2:
        raise CoexploreError(f"layer {name!r}: attention operand shapes are unknown or not (..., L, E)")
    batch = math.prod(_broadcast(q.shape[:-2], k.shape[:-2]))
    return attention(builder, name, q, k, v, batch, 1, q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1])


def multihead_attention(
    builder: GraphBuilder,
    name: str,
    q: Value,
    k: Value,
    v: Value,
    embed_dim: int,
    heads: int,
    kdim: int,
    vdim: int,
    batch_first: bool,
) -> frozenset[int]:
    """``nn.MultiheadAttention``: Q, K, V projections (LINEAR), scores and context (MATMUL with
    batch*heads groups), output projection (LINEAR)."""
    if q.shape is None or k.shape is None or v.shape is None:
        raise CoexploreError(f"layer {name!r}: attention operand shapes are unknown")

    def seq_batch(shape: Shape) -> tuple[int, int]:
        if len(shape) == 2:
            return shape[0], 1
        return (shape[1], shape[0]) if batch_first else (shape[0], shape[1])

    q_len, batch = seq_batch(q.shape)
    kv_len, _ = seq_batch(k.shape)
    bits = builder.bits
    qp = builder.add(
        linear_layer(builder.unique(f"{name}.q_proj"), (q_len * batch, embed_dim), embed_dim, bits), q.frontier
    )
    kp = builder.add(
        linear_layer(builder.unique(f"{name}.k_proj"), (kv_len * batch, kdim), embed_dim, bits), k.frontier
    )
    vp = builder.add(
        linear_layer(builder.unique(f"{name}.v_proj"), (kv_len * batch, vdim), embed_dim, bits), v.frontier
    )
    head_dim = embed_dim // heads
    ctx = attention(
        builder,
        name,
        Value(None, qp),
        Value(None, kp),
        Value(None, vp),
        batch,
        heads,
        q_len,
        kv_len,
        head_dim,
        head_dim,
    )
    return builder.add(
        linear_layer(builder.unique(f"{name}.out_proj"), (q_len * batch, embed_dim), embed_dim, bits), ctx
    )
