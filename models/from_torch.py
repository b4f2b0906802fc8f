"""PyTorch front end: an ``nn.Module`` and an example input become a layer-IR :class:`Network`.

Two ways to see the model, one lowering (``coexplore.models.lowering``):

* ``torch.fx.symbolic_trace`` + ``ShapeProp`` (the default): every call, functional ones included, with
  every shape;
* where fx cannot trace (value-dependent control flow, iterating a tensor...), the model runs for real on
  the example input under forward hooks on the modules the IR knows (Conv2d, Linear, pooling,
  MultiheadAttention, activations, norms...) plus a ``TorchFunctionMode`` that sees every functional call
  made outside those modules (``F.conv2d``, ``torch.matmul``, ``+``, ``view``...). Data dependencies
  follow tensor identity.

Either way a compute layer's predecessors are the compute layers its inputs came from through free ops
(activations, norms, views, concatenation, indexing), so ``Network.edges`` are the real data dependencies.
Ops that do compute the IR cannot describe (LSTM, Conv3d, ConvTranspose2d...) raise
:class:`UnsupportedOpError` naming the op and the node.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.fx.node import map_arg
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torch.overrides import TorchFunctionMode

from coexplore.models.ir import CoexploreError, Network
from coexplore.models.lowering import (
    GraphBuilder,
    UnsupportedOpError,
    Value,
    adaptive_pool_layer,
    conv_layer,
    einsum_dims,
    eltwise_layer,
    is_eltwise,
    linear_layer,
    matmul_layer,
    multihead_attention,
    pool_layer,
    product_layer,
    reduce_mean_layer,
    sdpa,
    union,
)

__all__ = ["UnsupportedOpError", "from_python_file", "from_torch"]

SUPPORTED = (
    "Conv1d/Conv2d (any groups), Linear, MultiheadAttention, scaled_dot_product_attention, "
    "matmul/mm/bmm/einsum, max/avg/adaptive pooling 1-D/2-D, add/sub/mul, activations, norms, data movement"
)

# ---- op vocabulary -------------------------------------------------------------------------------
_REFLECTABLE = {"add", "sub", "mul", "matmul", "truediv", "floordiv", "div", "pow", "mod", "and", "or", "xor"}
_POOLS = {"max_pool1d": 1, "max_pool2d": 2, "avg_pool1d": 1, "avg_pool2d": 2}
_ADAPTIVE_POOLS = {
    "adaptive_avg_pool1d": 1,
    "adaptive_avg_pool2d": 2,
    "adaptive_max_pool1d": 1,
    "adaptive_max_pool2d": 2,
}
_PRODUCTS = {"matmul", "mm", "bmm", "mv", "dot", "vdot"}
_BIASED_PRODUCTS = {"addmm", "baddbmm", "addbmm", "addmv"}
_ELTWISE = {"add", "sub", "mul"}
# Functions that do compute the IR cannot describe; every other unknown function is free (element-wise
# math, creation, indexing, shape queries), because the compute-bearing ones are this finite family.
_UNSUPPORTED_FUNCS = {
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_tbc",
    "convolution",
    "lstm",
    "gru",
    "rnn_tanh",
    "rnn_relu",
    "lstm_cell",
    "gru_cell",
    "rnn_tanh_cell",
    "rnn_relu_cell",
    "bilinear",
    "tensordot",
    "kron",
    "outer",
    "ger",
    "inner",
    "chain_matmul",
    "multi_dot",
    "cdist",
    "max_pool3d",
    "avg_pool3d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "fractional_max_pool2d",
    "fractional_max_pool3d",
    "multi_head_attention_forward",
    "_native_multi_head_attention",
    "_transformer_encoder_layer_fwd",
    "_scaled_dot_product_flash_attention",
}
_FREE_MODULE_PACKAGES = {
    "torch.nn.modules.activation",
    "torch.nn.modules.dropout",
    "torch.nn.modules.normalization",
    "torch.nn.modules.batchnorm",
    "torch.nn.modules.instancenorm",
    "torch.nn.modules.padding",
    "torch.nn.modules.pixelshuffle",
    "torch.nn.modules.flatten",
    "torch.nn.modules.upsampling",
    "torch.nn.modules.channelshuffle",
    "torch.nn.modules.sparse",
}
_UNSUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    nn.RNNBase,
    nn.RNNCellBase,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.MaxPool3d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool3d,
    nn.LPPool1d,
    nn.LPPool2d,
    nn.FractionalMaxPool2d,
    nn.FractionalMaxPool3d,
    nn.Bilinear,
)
_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_ADAPTIVE_MODULES = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)


def canonical(name: str) -> tuple[str, bool]:
    """Op name shared by functions, methods and operators (``__radd__``, ``add_``, ``iadd`` -> ``add``),
    and whether the operands are reflected (``a.__rmatmul__(b)`` is ``b @ a``)."""
    reflected = False
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
        if name[:1] == "r" and name[1:] in _REFLECTABLE:
            name, reflected = name[1:], True
    if name[:1] == "i" and name[1:] in _REFLECTABLE:
        name = name[1:]
    if name.endswith("_") and not name.startswith("_"):
        name = name.rstrip("_")
    return name, reflected


def _module_rule(module: nn.Module) -> str | None:
    """How a module lowers: conv, linear, pool, adaptive, mha, free, unsupported; None: look inside."""
    if isinstance(module, nn.MultiheadAttention):
        return "mha"
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _POOL_MODULES):
        return "pool"
    if isinstance(module, _ADAPTIVE_MODULES):
        return "adaptive"
    if isinstance(module, _UNSUPPORTED_MODULES):
        return "unsupported"
    if isinstance(module, nn.Identity) or type(module).__module__ in _FREE_MODULE_PACKAGES:
        return "free"
    owned = any(True for _ in module.parameters(recurse=False))
    if owned and type(module).__module__.startswith(("torch.nn.", "torch.ao.nn.")):
        return "unsupported"  # a torch layer with its own weights that the IR does not know
    return None


def _unsupported(op: str, node: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported torch op {op!r} at node {node!r} (supported: {SUPPORTED})")


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], **defaults: Any) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names or k in defaults})
    return bound


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _known_shape(x: Value, where: str) -> tuple[int, ...]:
    """``x``'s shape, or a one-line error naming the node whose input shape is unknown."""
    if x.shape is None:
        raise CoexploreError(f"node {where!r}: input shape unknown (shape propagation gave none)")
    return x.shape


def _values_in(obj: Any) -> list[Value]:
    if isinstance(obj, Value):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [v for item in obj for v in _values_in(item)]
    if isinstance(obj, dict):
        return [v for item in obj.values() for v in _values_in(item)]
    return []


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


# ---- lowering of one call ------------------------------------------------------------------------
class _Lowerer:
    """Turns one module call or function call (tensors given as :class:`Value`) into layers."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder

    # modules
    def module(
        self, module: Any, name: str, args: tuple, kwargs: dict, out_shape: tuple[int, ...] | None
    ) -> tuple[frozenset[int], bool]:
        rule = _module_rule(module)
        bits = self.b.bits
        if rule == "unsupported" or rule is None:
            raise _unsupported(type(module).__name__, name)
        if rule == "free":
            return union(_values_in((args, kwargs)))
        if rule == "mha":
            a = _bind(args, kwargs, ("query", "key", "value"))
            return multihead_attention(
                self.b,
                self.b.unique(name),
                a["query"],
                a["key"],
                a["value"],
                module.embed_dim,
                module.num_heads,
                module.kdim,
                module.vdim,
                module.batch_first,
            ), False
        x = _bind(args, kwargs, ("input",))["input"]
        if not isinstance(x, Value) or x.shape is None:
            raise CoexploreError(f"node {name!r}: {type(module).__name__} input is not a tensor")
        layer_name = self.b.unique(name)
        if rule == "linear":
            return self.b.add(linear_layer(layer_name, x.shape, module.out_features, bits), x.frontier), False
        if rule == "conv":
            return self._conv(
                layer_name,
                x,
                out_shape,
                module.out_channels,
                tuple(module.kernel_size),
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
            ), False
        spatial = (
            1 if isinstance(module, (nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)) else 2
        )
        if rule == "adaptive":
            return self._adaptive(layer_name, x, out_shape, spatial), False
        return self._pool(
            layer_name,
            x,
            out_shape,
            spatial,
            module.kernel_size,
            module.stride,
            module.padding,
            getattr(module, "dilation", 1),
        ), False

    # functions and methods
    def function(
        self, op: str, reflected: bool, node: str, args: tuple, kwargs: dict, out_shape: tuple[int, ...] | None
    ) -> tuple[frozenset[int], bool]:
        if op in _UNSUPPORTED_FUNCS:
            raise _unsupported(op, node)
        b, bits = self.b, self.b.bits
        if op in ("conv1d", "conv2d"):
            a = _bind(
                args,
                kwargs,
                ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
            )
            w = a["weight"]
            return self._conv(
                b.unique(node),
                a["input"],
                out_shape,
                w.shape[0],
                tuple(w.shape[2:]),
                a["stride"],
                a["padding"],
                a["dilation"],
                a["groups"],
                extra=w.frontier,
            ), False
        if op == "linear":
            a = _bind(args, kwargs, ("input", "weight", "bias"))
            x, w = a["input"], a["weight"]
            out_features = w.shape[0] if len(w.shape) == 2 else 1
            return b.add(linear_layer(b.unique(node), x.shape, out_features, bits), x.frontier | w.frontier), False
        if op in _POOLS:
            names = ("input", "kernel_size", "stride", "padding") + (("dilation",) if op.startswith("max") else ())
            a = _bind(args, kwargs, names, stride=None, padding=0, dilation=1)
            return self._pool(
                b.unique(node),
                a["input"],
                out_shape,
                _POOLS[op],
                a["kernel_size"],
                a["stride"],
                a["padding"],
                a["dilation"],
            ), False
        if op in _ADAPTIVE_POOLS:
            x = _bind(args, kwargs, ("input",))["input"]
            return self._adaptive(b.unique(node), x, out_shape, _ADAPTIVE_POOLS[op]), False
        if op in _PRODUCTS or op in _BIASED_PRODUCTS:
            tensors = [v for v in args if isinstance(v, Value)]
            if op in _BIASED_PRODUCTS:
                lhs, rhs = (
                    (args[1], args[2])
                    if len(args) >= 3
                    else (kwargs.get("mat1", kwargs.get("batch1")), kwargs.get("mat2", kwargs.get("batch2")))
                )
            else:
                lhs, rhs = args[0], args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
            if reflected:
                lhs, rhs = rhs, lhs
            if not isinstance(lhs, Value) or not isinstance(rhs, Value):
                raise CoexploreError(f"node {node!r}: {op} operands are not tensors")
            frontier, _ = union(tensors + [lhs, rhs])
            return b.add(product_layer(b.unique(node), lhs, rhs, bits), frontier), False
        if op == "einsum":
            return self._einsum(node, args, kwargs)
        if op == "scaled_dot_product_attention":
            a = _bind(args, kwargs, ("query", "key", "value"))
            return sdpa(b, b.unique(node), a["query"], a["key"], a["value"]), False
        if op in _ELTWISE:
            operands = [v for v in args[:2] if isinstance(v, Value)]
            if "other" in kwargs and isinstance(kwargs["other"], Value):
                operands.append(kwargs["other"])
            if out_shape is not None and is_eltwise(operands):
                frontier, _ = union(operands)
                return b.add(eltwise_layer(b.unique(node), out_shape, len(operands), bits), frontier), False
        if op == "mean":
            a = _bind(args, kwargs, ("input", "dim"), dim=None)
            x, dim = a["input"], a["dim"]
            if isinstance(x, Value) and x.shape is not None and dim is not None and not x.static:
                axes = (dim,) if isinstance(dim, int) else tuple(dim)
                layer = reduce_mean_layer(b.unique(node), x.shape, axes, bits)
                if layer is not None:
                    return b.add(layer, x.frontier), False
        return union(_values_in((args, kwargs)))

    # shared pieces
    def _conv(
        self,
        name: str,
        x: Value,
        out_shape: tuple[int, ...] | None,
        out_channels: int,
        kernel: tuple[int, ...],
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        extra: frozenset[int] = frozenset(),
    ) -> frozenset[int]:
        spatial = len(kernel)
        if spatial not in (1, 2):
            raise _unsupported(f"conv{spatial}d", name)
        stride, dilation = _tuple(stride, spatial), _tuple(dilation, spatial)
        if isinstance(padding, str):
            if padding == "valid":
                begins = ends = (0,) * spatial
            else:  # 'same': PyTorch puts the odd pad at the end
                totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
                begins = tuple(t // 2 for t in totals)
                ends = tuple(t - t // 2 for t in totals)
        else:
            begins = ends = _tuple(padding, spatial)
        layer = conv_layer(
            name,
            _known_shape(x, name),
            out_shape,
            out_channels,
            kernel,
            stride,
            begins,
            ends,
            dilation,
            groups,
            self.b.bits,
        )
        return self.b.add(layer, x.frontier | extra)

    def _pool(
        self,
        name: str,
        x: Value,
        out_shape: tuple[int, ...] | None,
        spatial: int,
        kernel: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
    ) -> frozenset[int]:
        kernel = _tuple(kernel, spatial)
        stride = _tuple(stride, spatial) or kernel  # stride None (or []) means the kernel size
        pads = _tuple(padding, spatial)
        layer = pool_layer(
            name, _known_shape(x, name), out_shape, kernel, stride, pads, pads, _tuple(dilation, spatial), self.b.bits
        )
        return self.b.add(layer, x.frontier)

    def _adaptive(self, name: str, x: Value, out_shape: tuple[int, ...] | None, spatial: int) -> frozenset[int]:
        if out_shape is None:
            raise CoexploreError(f"node {name!r}: output shape of adaptive pooling unknown")
        layer = adaptive_pool_layer(name, _known_shape(x, name), tuple(out_shape[-spatial:]), self.b.bits)
        return self.b.add(layer, x.frontier)

    def _einsum(self, node: str, args: tuple, kwargs: dict) -> tuple[frozenset[int], bool]:
        equation = args[0] if args else kwargs.get("equation")
        operands = _values_in(args[1:])
        if len(operands) == 1:
            return union(operands)
        dims = None
        if len(operands) == 2 and isinstance(equation, str):
            dims = einsum_dims(equation, _known_shape(operands[0], node), _known_shape(operands[1], node))
        if dims is None:
            raise _unsupported(f"einsum {equation!r}", node)
        batch, m, k, n = dims
        frontier, _ = union(operands)
        bits = self.b.bits
        if batch == 1 and operands[1].static and not operands[0].static:
            layer = linear_layer(self.b.unique(node), (m, k), n, bits)
        else:
            layer = matmul_layer(self.b.unique(node), batch, m, k, n, bits)
        return self.b.add(layer, frontier), False


# ---- path 1: torch.fx ----------------------------------------------------------------------------
class _Tracer(torch.fx.Tracer):
    """Leaves are exactly the modules the lowering has a rule for; everything else is traced through."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _module_rule(m) is not None


def _meta_shape(meta: Any) -> tuple[int, ...] | None:
    if isinstance(meta, TensorMetadata):
        return tuple(int(d) for d in meta.shape)
    if isinstance(meta, (list, tuple)):
        for item in meta:
            shape = _meta_shape(item)
            if shape is not None:
                return shape
    if isinstance(meta, dict):
        return _meta_shape(list(meta.values()))
    return None


def _scoped(scope: str, op: str) -> str:
    """Name of a functional layer: the op inside the module that called it (``blocks.0.attn.matmul``)."""
    return f"{scope}.{op}" if scope else op


def _trace_fx(module: nn.Module, inputs: tuple) -> torch.fx.GraphModule:
    graph = _Tracer().trace(module)
    gm = torch.fx.GraphModule(module, graph)
    with torch.no_grad():
        ShapeProp(gm).propagate(*inputs)
    return gm


def _lower_fx(gm: torch.fx.GraphModule, builder: GraphBuilder) -> Network:
    low = _Lowerer(builder)
    env: dict[torch.fx.Node, Value] = {}
    for node in gm.graph.nodes:
        shape = _meta_shape(node.meta.get("tensor_meta"))
        if node.op == "output":
            continue
        if node.op in ("placeholder", "get_attr"):
            env[node] = Value(shape, frozenset(), node.op == "get_attr" or shape is None)
            continue
        args: Any = map_arg(node.args, env.__getitem__)  # type: ignore[arg-type]  # Values stand in for Nodes
        kwargs: Any = map_arg(node.kwargs, env.__getitem__)  # type: ignore[arg-type]
        if node.op == "call_module":
            frontier, static = low.module(gm.get_submodule(node.target), str(node.target), args, kwargs, shape)
        else:
            target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
            op, reflected = canonical(target)
            stack = node.meta.get("nn_module_stack") or {}
            scope = list(stack.values())[-1][0] if stack else ""
            frontier, static = low.function(op, reflected, _scoped(scope, op), args, kwargs, shape)
        # non-tensor results (sizes, flags) carry no data dependency
        env[node] = Value(shape, frontier, static) if shape is not None else Value(None, frozenset(), True)
    return builder.network()


# ---- path 2: forward hooks + function mode -------------------------------------------------------
class _Capture(TorchFunctionMode):
    """Records functional calls made outside hooked modules and tracks which layers each tensor came from."""

    def __init__(self, lowerer: _Lowerer) -> None:
        super().__init__()
        self.low = lowerer
        self.tracked: dict[int, tuple[torch.Tensor, frozenset[int], bool]] = {}
        self.depth = 0  # > 0 while inside a hooked module: its internals are not recorded
        self.scopes: list[str] = []  # qualified names of the (non-leaf) modules being run

    def value(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            entry = self.tracked.get(id(obj))
            frontier, static = (entry[1], entry[2]) if entry is not None and entry[0] is obj else (frozenset(), True)
            return Value(tuple(obj.shape), frontier, static)
        if isinstance(obj, list):
            return [self.value(x) for x in obj]
        if isinstance(obj, tuple):
            return tuple(self.value(x) for x in obj)
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        return obj

    def track(self, obj: Any, frontier: frozenset[int], static: bool) -> None:
        if isinstance(obj, torch.Tensor):
            self.tracked[id(obj)] = (obj, frontier, static)
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                self.track(x, frontier, static)
        elif isinstance(obj, dict):
            for x in obj.values():
                self.track(x, frontier, static)

    def node_name(self, op: str) -> str:
        return _scoped(self.scopes[-1] if self.scopes else "", op)

    def __torch_function__(self, func: Callable, types: Iterable, args: tuple = (), kwargs: dict | None = None):
        kwargs = kwargs or {}
        if self.depth > 0:
            return func(*args, **kwargs)
        op, reflected = canonical(getattr(func, "__name__", ""))
        vargs, vkwargs = self.value(args), self.value(kwargs)
        if op in _UNSUPPORTED_FUNCS:
            raise _unsupported(op, self.node_name(op))
        out = func(*args, **kwargs)
        out_shape = _first_shape(out)
        frontier, static = self.low.function(op, reflected, self.node_name(op), vargs, vkwargs, out_shape)
        self.track(out, frontier, static)
        return out


def _first_shape(obj: Any) -> tuple[int, ...] | None:
    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (list, tuple)):
        for x in obj:
            shape = _first_shape(x)
            if shape is not None:
                return shape
    return None


def _lower_hooks(module: nn.Module, inputs: tuple, builder: GraphBuilder) -> Network:
    low = _Lowerer(builder)
    capture = _Capture(low)
    handles = []

    def pre_hook(mod: nn.Module, args: tuple) -> None:
        capture.depth += 1

    def make_post_hook(qualname: str) -> Callable:
        def post_hook(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            capture.depth -= 1
            if capture.depth == 0:
                frontier, static = low.module(
                    mod, qualname, capture.value(args), capture.value(kwargs), _first_shape(output)
                )
                capture.track(output, frontier, static)

        return post_hook

    seen: set[int] = set()

    def make_enter(qualname: str) -> Callable:
        def enter(mod: nn.Module, args: tuple) -> None:
            capture.scopes.append(qualname)

        return enter

    def leave(mod: nn.Module, args: tuple, output: Any) -> None:
        capture.scopes.pop()

    def register(mod: nn.Module, prefix: str) -> None:
        for child_name, child in mod.named_children():
            qualname = f"{prefix}.{child_name}" if prefix else child_name
            if id(child) in seen:  # a module shared by two parents gets its hooks once
                continue
            seen.add(id(child))
            if _module_rule(child) is not None:
                handles.append(child.register_forward_pre_hook(pre_hook))
                handles.append(child.register_forward_hook(make_post_hook(qualname), with_kwargs=True))
            else:
                handles.append(child.register_forward_pre_hook(make_enter(qualname)))
                handles.append(child.register_forward_hook(leave, always_call=True))
                register(child, qualname)

    if _module_rule(module) is not None:  # the model itself is a single known layer
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(make_post_hook(type(module).__name__), with_kwargs=True))
    else:
        register(module, "")
    capture.track(list(inputs), frozenset(), False)
    try:
        # Grad stays enabled so PyTorch's fused inference fast paths (which would hide the attention and
        # feed-forward products inside one kernel) are not taken.
        with torch.enable_grad(), capture:
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return builder.network()


# ---- public API ----------------------------------------------------------------------------------
def from_torch(
    module: nn.Module, example_input: Any, name: str | None = None, *, bits: int = 8, method: str = "auto"
) -> Network:
    """Lower ``module`` run on ``example_input`` (a tensor or a tuple of positional inputs) to a Network.

    ``method``: ``"fx"`` (symbolic trace + shape propagation), ``"hooks"`` (run under forward hooks and a
    function mode) or ``"auto"`` (fx, falling back to hooks when fx cannot trace the model). The batch
    size is the example input's; every operand gets ``bits`` bits. The module is evaluated in eval mode
    and restored to its previous mode afterwards.
    """
    if not isinstance(module, nn.Module):
        raise CoexploreError(f"expected a torch nn.Module, got {type(module).__name__}")
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not any(isinstance(x, torch.Tensor) for x in inputs):
        raise CoexploreError(
            f"example_input must be a tensor or a tuple of tensors, got {type(example_input).__name__}"
        )
    if method not in ("auto", "fx", "hooks"):
        raise CoexploreError(f"unknown trace method {method!r} (expected auto, fx or hooks)")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits <= 0:
        raise CoexploreError(f"bits={bits!r} must be a positive integer")
    net_name = name or type(module).__name__
    if method == "auto" and _module_rule(module) is not None:
        method = "hooks"  # the model is one known layer: lower it as that module, named after its class
    was_training = module.training
    module.eval()
    try:
        gm = None
        if method in ("auto", "fx"):
            try:
                gm = _trace_fx(module, inputs)
            except Exception as exc:  # value-dependent control flow and the like: fall back to hooks
                if method == "fx":
                    raise CoexploreError(f"torch.fx cannot trace model {net_name!r}: {_one_line(exc)}") from None
        if gm is not None:
            return _lower_fx(gm, GraphBuilder(net_name, bits))
        try:
            return _lower_hooks(module, inputs, GraphBuilder(net_name, bits))
        except CoexploreError:
            raise
        except Exception as exc:
            raise CoexploreError(f"model {net_name!r} failed on its example input: {_one_line(exc)}") from None
    finally:
        module.train(was_training)


def from_python_file(path: str | Path, name: str | None = None, *, bits: int = 8) -> Network:
    """Lower the model a Python file defines: ``build()`` returning ``(nn.Module, example_input)``, or
    module-level ``model`` and ``example_input``."""
    p = Path(path)
    if not p.is_file():
        raise CoexploreError(f"model file {str(p)!r} not found")
    module_name = f"coexplore_user_model_{p.stem}_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise CoexploreError(f"model file {str(p)!r} cannot be imported as Python")
    user = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = user
    try:
        spec.loader.exec_module(user)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise CoexploreError(f"cannot import model file {str(p)!r}: {_one_line(exc)}") from None
    if callable(getattr(user, "build", None)):
        try:
            built = user.build()
        except Exception as exc:
            raise CoexploreError(f"build() in {str(p)!r} failed: {_one_line(exc)}") from None
        if not (isinstance(built, tuple) and len(built) == 2):
            raise CoexploreError(
                f"build() in {str(p)!r} must return (nn.Module, example_input), got {type(built).__name__}"
            )
        model, example = built
    elif hasattr(user, "model") and hasattr(user, "example_input"):
        model, example = user.model, user.example_input
    else:
        raise CoexploreError(
            f"model file {str(p)!r} defines neither build() returning (nn.Module, example_input) "
            "nor module-level 'model' and 'example_input'"
        )
    if not isinstance(model, nn.Module):
        raise CoexploreError(f"model in {str(p)!r} is a {type(model).__name__}, expected a torch nn.Module")
    return from_torch(model, example, name=name or p.stem, bits=bits)
