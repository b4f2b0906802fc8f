"""Layer IR: the workload vocabulary every back end (analytical, cycle-level, RTL) shares.

Every compute layer is a loop nest over the seven classic dims (N, K, C, P, Q, R, S) plus a group
count G, as in Timeloop/MAESTRO/ZigZag:

    for g < G, n < N, k < K/G, c < C/G, p < P, q < Q, r < R, s < S:
        out[n, g, k, p, q] += in[n, g, c, p*stride_h + r*dil_h - pad_h, q*stride_w + s*dil_w - pad_w]
                              * w[g, k, c, r, s]

A linear layer is a conv with P = rows (tokens x batch), Q = R = S = 1; a matmul (attention) is a
grouped GEMM whose second operand is an activation rather than a weight. Pooling and element-wise
layers do no MACs; they carry their vector-op count so the models can charge them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


class CoexploreError(ValueError):
    """Base of every error caused by bad user input; the CLI prints it as one line, no traceback."""


class IRError(CoexploreError):
    """A layer or network description that cannot exist (negative size, kernel larger than input...)."""


class OpKind(str, Enum):
    CONV = "conv"
    DEPTHWISE = "depthwise"
    LINEAR = "linear"
    MATMUL = "matmul"
    POOL = "pool"
    ELTWISE = "eltwise"

    @property
    def has_macs(self) -> bool:
        return self in (OpKind.CONV, OpKind.DEPTHWISE, OpKind.LINEAR, OpKind.MATMUL)

    @property
    def has_weights(self) -> bool:
        """Whether the second operand is a stored weight (False for matmul: both are activations)."""
        return self in (OpKind.CONV, OpKind.DEPTHWISE, OpKind.LINEAR)


class Dim(str, Enum):
    """Loop dims of the canonical nest (K and C are per group)."""

    G = "G"
    N = "N"
    K = "K"
    C = "C"
    P = "P"
    Q = "Q"
    R = "R"
    S = "S"


_MAX_DIM = 1 << 24  # 16 M: larger than any real tensor dim; catches absurd sizes early


def _check_positive(layer_name: str, **sizes: int) -> None:
    for key, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise IRError(f"layer {layer_name!r}: {key}={value!r} must be an integer")
        if value <= 0:
            raise IRError(f"layer {layer_name!r}: {key}={value} must be a positive integer")
        if value > _MAX_DIM:
            raise IRError(f"layer {layer_name!r}: {key}={value} is absurdly large (max {_MAX_DIM})")


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of a network, in the canonical loop-nest form.

    ``k`` and ``c`` are the *total* output and input channels (divisible by ``groups``).
    ``h``/``w`` are the unpadded input sizes; ``p``/``q`` are derived output sizes.
    For POOL the window is ``r x s``; for ELTWISE ``operands`` inputs of shape (n, c, h, w) combine.
    """

    name: str
    kind: OpKind
    k: int
    c: int
    h: int
    w: int
    r: int = 1
    s: int = 1
    n: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1
    operands: int = 2
    input_bits: int = 8
    weight_bits: int = 8
    output_bits: int = 8
    acc_bits: int = 32
    p: int = field(init=False)
    q: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OpKind):
            try:
                object.__setattr__(self, "kind", OpKind(self.kind))
            except ValueError:
                kinds = ", ".join(k.value for k in OpKind)
                raise IRError(
                    f"layer {self.name!r}: unknown layer type {self.kind!r} (expected one of {kinds})"
                ) from None
        _check_positive(
            self.name,
            k=self.k,
            c=self.c,
            h=self.h,
            w=self.w,
            r=self.r,
            s=self.s,
            n=self.n,
            stride_h=self.stride_h,
            stride_w=self.stride_w,
            dilation_h=self.dilation_h,
            dilation_w=self.dilation_w,
            groups=self.groups,
            operands=self.operands,
            input_bits=self.input_bits,
            weight_bits=self.weight_bits,
            output_bits=self.output_bits,
            acc_bits=self.acc_bits,
        )
        if self.pad_h < 0 or self.pad_w < 0:
            raise IRError(f"layer {self.name!r}: padding ({self.pad_h}, {self.pad_w}) must be >= 0")
        if self.c % self.groups or self.k % self.groups:
            raise IRError(f"layer {self.name!r}: groups={self.groups} must divide c={self.c} and k={self.k}")
        eff_r = (self.r - 1) * self.dilation_h + 1
        eff_s = (self.s - 1) * self.dilation_w + 1
        span_h, span_w = self.h + 2 * self.pad_h, self.w + 2 * self.pad_w
        if eff_r > span_h or eff_s > span_w:
            raise IRError(
                f"layer {self.name!r}: kernel {self.r}x{self.s} (dilated {eff_r}x{eff_s}) is larger than "
                f"its padded input {span_h}x{span_w}"
            )
        object.__setattr__(self, "p", (span_h - eff_r) // self.stride_h + 1)
        object.__setattr__(self, "q", (span_w - eff_s) // self.stride_w + 1)

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def k_per_group(self) -> int:
        return self.k // self.groups

    @property
    def c_per_group(self) -> int:
        return self.c // self.groups

    @property
    def macs(self) -> int:
        """Multiply-accumulates (0 for pooling and element-wise layers)."""
        if not self.kind.has_macs:
            return 0
        return self.n * self.groups * self.k_per_group * self.c_per_group * self.p * self.q * self.r * self.s

    @property
    def vector_ops(self) -> int:
        """Non-MAC element operations: comparisons/adds of pooling, combines of element-wise layers."""
        if self.kind is OpKind.POOL:
            return self.n * self.k * self.p * self.q * self.r * self.s
        if self.kind is OpKind.ELTWISE:
            return self.n * self.k * self.p * self.q * max(1, self.operands - 1)
        return 0

    def dims(self) -> dict[Dim, int]:
        """Loop bounds of the canonical nest (K, C per group)."""
        return {
            Dim.G: self.groups,
            Dim.N: self.n,
            Dim.K: self.k_per_group,
            Dim.C: self.c_per_group,
            Dim.P: self.p,
            Dim.Q: self.q,
            Dim.R: self.r,
            Dim.S: self.s,
        }

    def gemm_view(self) -> tuple[int, int, int, int]:
        """(groups, M, K_reduction, N) of the im2col GEMM: M = N*P*Q, Kred = C/G*R*S, N = K/G."""
        return (self.groups, self.n * self.p * self.q, self.c_per_group * self.r * self.s, self.k_per_group)

    @property
    def input_words(self) -> int:
        per_input = self.n * self.c * self.h * self.w
        return per_input * (self.operands if self.kind is OpKind.ELTWISE else 1)

    @property
    def weight_words(self) -> int:
        """Words of the second operand (weights, or the right-hand activation of a matmul)."""
        if not self.kind.has_macs:
            return 0
        if self.kind is OpKind.MATMUL:
            return self.groups * self.c_per_group * self.k_per_group * self.n
        return self.groups * self.k_per_group * self.c_per_group * self.r * self.s

    @property
    def output_words(self) -> int:
        return self.n * self.k * self.p * self.q

    def describe(self) -> str:
        if self.kind in (OpKind.LINEAR, OpKind.MATMUL):
            g, m, kr, nn = self.gemm_view()
            pre = f"{g}x " if g > 1 else ""
            return f"{pre}{m}x{kr} @ {kr}x{nn}"
        if self.kind is OpKind.ELTWISE:
            return f"{self.operands}x {self.c}x{self.h}x{self.w}"
        return (
            f"{self.c}x{self.h}x{self.w} -> {self.k}x{self.p}x{self.q}, {self.r}x{self.s}"
            f"/s{self.stride_h} p{self.pad_h}" + (f" g{self.groups}" if self.groups > 1 else "")
        )


def conv(
    name: str,
    c: int,
    k: int,
    h: int,
    w: int | None = None,
    r: int = 3,
    s: int | None = None,
    stride: int = 1,
    pad: int = 0,
    groups: int = 1,
    n: int = 1,
    dilation: int = 1,
    bits: int = 8,
) -> Layer:
    """A square-stride 2-D convolution; groups == c == k gives a depthwise layer."""
    kind = OpKind.DEPTHWISE if groups > 1 and groups == c else OpKind.CONV
    return Layer(
        name,
        kind,
        k=k,
        c=c,
        h=h,
        w=h if w is None else w,
        r=r,
        s=r if s is None else s,
        n=n,
        stride_h=stride,
        stride_w=stride,
        pad_h=pad,
        pad_w=pad,
        dilation_h=dilation,
        dilation_w=dilation,
        groups=groups,
        input_bits=bits,
        weight_bits=bits,
        output_bits=bits,
    )


def gemm(name: str, m: int, k: int, n: int, bits: int = 8) -> Layer:
    """Linear layer ``(m x k) @ (k x n)`` with the weight as the second operand."""
    return Layer(name, OpKind.LINEAR, k=n, c=k, h=m, w=1, input_bits=bits, weight_bits=bits, output_bits=bits)


def matmul(name: str, m: int, k: int, n: int, batch: int = 1, bits: int = 8) -> Layer:
    """Batched activation x activation product (attention scores or context), ``batch`` independent GEMMs."""
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


@dataclass(frozen=True, slots=True)
class Network:
    """A DAG of layers; ``edges`` are (producer index, consumer index) pairs, producers first."""

    name: str
    layers: tuple[Layer, ...]
    edges: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.layers:
            raise IRError(f"network {self.name!r} has no layers")
        n = len(self.layers)
        for a, b in self.edges:
            if not (0 <= a < b < n):
                raise IRError(f"network {self.name!r}: edge ({a}, {b}) must go forward between layers 0..{n - 1}")

    @classmethod
    def chain(cls, name: str, layers: list[Layer] | tuple[Layer, ...]) -> Network:
        layers = tuple(layers)
        return cls(name, layers, tuple((i, i + 1) for i in range(len(layers) - 1)))

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def weight_words(self) -> int:
        return sum(layer.weight_words for layer in self.layers if layer.kind.has_weights)

    def predecessors(self, index: int) -> tuple[int, ...]:
        return tuple(a for a, b in self.edges if b == index)

    def compute_layers(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.kind.has_macs)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def log2_ceil(x: int) -> int:
    return max(0, math.ceil(math.log2(x))) if x > 0 else 0
