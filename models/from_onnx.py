"""ONNX front end: an ``.onnx`` file becomes a layer-IR :class:`Network`, lowered exactly as ``from_torch``
lowers the same operators (both go through ``coexplore.models.lowering``).

Shapes come from ``onnx.shape_inference`` (with data propagation, so exporter-made Shape -> Concat ->
Reshape chains resolve). Symbolic input dims are resolved before inference: ``input_shapes`` fixes
them; without it a symbolic leading dim of a rank >= 2 input (the dynamic batch) becomes 1, and any
other symbolic dim (a spatial size, a sequence length) is an error naming the input and the dim,
since guessing it would cost a different network. The operator set is
closed: an op that is neither lowered nor known to be free (activation, normalization, data movement,
shape arithmetic) raises :class:`UnsupportedOpError` naming it and its node. torch is not imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    pool_layer,
    product_layer,
    reduce_mean_layer,
    same_pads,
    union,
)

__all__ = ["UnsupportedOpError", "from_onnx"]

_LOWERED = (
    "Conv",
    "Gemm",
    "MatMul",
    "Einsum",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Add",
    "Sub",
    "Mul",
    "Sum",
    "ReduceMean",
)
# Ops with no MACs the IR charges: activations and norms (fused into their producer, BatchNormalization
# folded), data movement, and the shape arithmetic exporters emit.
_FREE = frozenset(
    {
        "Relu",
        "Clip",
        "Sigmoid",
        "Tanh",
        "HardSwish",
        "HardSigmoid",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "Gelu",
        "Mish",
        "Softplus",
        "Softsign",
        "ThresholdedRelu",
        "Erf",
        "Exp",
        "Log",
        "Sqrt",
        "Pow",
        "Reciprocal",
        "Neg",
        "Abs",
        "Sign",
        "Floor",
        "Ceil",
        "Round",
        "Div",
        "Mod",
        "Min",
        "Max",
        "Mean",
        "Softmax",
        "LogSoftmax",
        "Hardmax",
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "LpNormalization",
        "LRN",
        "RMSNormalization",
        "Dropout",
        "Identity",
        "Cast",
        "CastLike",
        "Shape",
        "Size",
        "Gather",
        "GatherElements",
        "GatherND",
        "Scatter",
        "ScatterElements",
        "ScatterND",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Split",
        "Slice",
        "Flatten",
        "Reshape",
        "Transpose",
        "Expand",
        "Tile",
        "Pad",
        "Resize",
        "Upsample",
        "DepthToSpace",
        "SpaceToDepth",
        "Constant",
        "ConstantOfShape",
        "Range",
        "Equal",
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "Not",
        "And",
        "Or",
        "Xor",
        "Where",
        "ReduceSum",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceSumSquare",
        "ReduceLogSumExp",
        "ArgMax",
        "ArgMin",
        "TopK",
        "CumSum",
        "NonZero",
        "Trilu",
        "IsNaN",
        "IsInf",
        "EyeLike",
        "OneHot",
        "Shrink",
        "QuantizeLinear",
        "DequantizeLinear",
    }
)
SUPPORTED = (
    "Conv (1-D/2-D), Gemm, MatMul, Einsum, pooling, Add/Sub/Mul/Sum, ReduceMean"
    " and free ops (activations, norms, data movement)"
)


InputShapes = Mapping[str, Sequence[int]] | Sequence[int] | None
"""Shapes for the graph inputs: ``{name: dims}``, or one ``dims`` when the graph has a single input."""


def _unsupported(op: str, node: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported ONNX op {op!r} at node {node!r} (supported: {SUPPORTED})")


def _load(path: str | Path, input_shapes: InputShapes = None) -> Any:
    import onnx

    p = Path(path)
    if not p.is_file():
        raise CoexploreError(f"ONNX file {str(p)!r} not found")
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CoexploreError(f"cannot read ONNX file {str(p)!r}: {type(exc).__name__}: {first}") from None
    if not model.graph.node:
        raise CoexploreError(f"ONNX file {str(p)!r} has no graph nodes (not an ONNX model?)")
    _fix_input_dims(model, str(p), input_shapes)
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CoexploreError(f"ONNX file {str(p)!r}: shape inference failed: {first}") from None


def _dims_text(dims: Any) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"


def _example(dims: Any) -> str:
    return "x".join(str(d.dim_value) if d.HasField("dim_value") else "N" for d in dims)


def _fix_input_dims(model: Any, source: str, input_shapes: InputShapes) -> None:
    """Write ``input_shapes`` into the graph inputs, check them, and resolve what is still symbolic."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [inp for inp in model.graph.input if inp.name not in initializers]
    names = [inp.name for inp in inputs]
    given: dict[str, tuple[int, ...]] = {}
    if input_shapes is not None:
        if isinstance(input_shapes, Mapping):
            given = {str(k): tuple(v) for k, v in input_shapes.items()}
        else:
            if len(inputs) != 1:
                raise CoexploreError(
                    f"ONNX file {source!r} has {len(inputs)} inputs ({', '.join(names)}): "
                    f"name the one each --input-shape is for (NAME=1x3x224x224)"
                )
            given = {names[0]: tuple(input_shapes)}
    for key, dims in given.items():
        if key not in names:
            raise CoexploreError(
                f"ONNX file {source!r}: --input-shape for {key!r}, which is not an input "
                f"(expected one of {', '.join(names)})"
            )
        if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in dims):
            raise CoexploreError(
                f"ONNX file {source!r}: input shape {'x'.join(map(str, dims))!r} for {key!r}: "
                f"expected positive integers"
            )
    for inp in inputs:
        tensor = inp.type.tensor_type
        if not tensor.HasField("shape"):
            if inp.name in given:
                for d in given[inp.name]:
                    tensor.shape.dim.add().dim_value = d
            continue
        dims = tensor.shape.dim
        if inp.name in given:
            want = given[inp.name]
            if len(want) != len(dims):
                raise CoexploreError(
                    f"ONNX file {source!r}: input {inp.name!r} has rank {len(dims)} "
                    f"{_dims_text(dims)}, but --input-shape gives {len(want)} dims "
                    f"{'x'.join(map(str, want))}"
                )
            for i, (dim, value) in enumerate(zip(dims, want)):
                if dim.HasField("dim_value") and dim.dim_value != value:
                    raise CoexploreError(
                        f"ONNX file {source!r}: input {inp.name!r} dim {i} is fixed at "
                        f"{dim.dim_value}, but --input-shape gives {value}"
                    )
            for dim, value in zip(dims, want):
                dim.dim_value = value
            continue
        for i, dim in enumerate(dims):
            if dim.HasField("dim_value"):
                continue
            if i == 0 and len(dims) >= 2:  # a dynamic batch: cost one sample
                dim.dim_value = 1
                continue
            label = dim.dim_param or "?"
            raise CoexploreError(
                f"ONNX file {source!r}: input {inp.name!r} has symbolic dim {label!r} at "
                f"position {i} of {_dims_text(dims)}; give its size with --input-shape "
                f"(e.g. --input-shape {inp.name}={_example(dims)})"
            )


def _shape_of(type_proto: Any) -> tuple[int, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = type_proto.tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _OnnxLowerer:
    def __init__(self, model: Any, builder: GraphBuilder) -> None:
        from onnx import numpy_helper

        self.b = builder
        graph = model.graph
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        for info in (*graph.value_info, *graph.input, *graph.output):
            self.shapes[info.name] = _shape_of(info.type)
        self.values: dict[str, Value] = {}
        self.consts: dict[str, Any] = {}
        for t in graph.initializer:
            self.values[t.name] = Value(tuple(int(d) for d in t.dims), frozenset(), True)
            if len(t.dims) <= 1:
                self.consts[t.name] = numpy_helper.to_array(t)
        for inp in graph.input:
            if inp.name not in self.values:
                self.values[inp.name] = Value(self.shapes.get(inp.name), frozenset(), False)
        self.graph = graph

    def value(self, name: str) -> Value | None:
        if not name:
            return None
        if name not in self.values:
            raise CoexploreError(f"ONNX value {name!r} is used before it is produced (graph not topologically sorted)")
        return self.values[name]

    def shape(self, node_name: str, value: Value | None, what: str) -> tuple[int, ...]:
        if value is None or value.shape is None:
            raise CoexploreError(f"ONNX node {node_name!r}: the shape of its {what} cannot be inferred")
        return value.shape

    def known(self, node_name: str, value: Value | None, what: str) -> Value:
        """``value`` with a known shape (an optional input left out, or a shape inference missed, is refused)."""
        self.shape(node_name, value, what)
        assert value is not None  # self.shape refused None
        return value

    def run(self) -> Network:
        from onnx import numpy_helper

        for i, node in enumerate(self.graph.node):
            name = node.name.lstrip("/") or f"{node.op_type}_{i}"
            inputs = [self.value(x) for x in node.input]
            present = [v for v in inputs if v is not None]
            if node.op_type == "Constant":
                attrs = _attrs(node)
                if "value" in attrs:
                    arr = numpy_helper.to_array(attrs["value"])
                    self.consts[node.output[0]] = arr
                    self.values[node.output[0]] = Value(tuple(arr.shape), frozenset(), True)
                else:
                    self.values[node.output[0]] = Value(self.shapes.get(node.output[0]), frozenset(), True)
                continue
            if node.domain not in ("", "ai.onnx"):
                raise _unsupported(f"{node.domain}.{node.op_type}", name)
            if node.op_type in _LOWERED:
                result = self.lower(node, name, inputs)
            elif node.op_type in _FREE:
                result = None
            else:
                raise _unsupported(node.op_type, name)
            frontier, static = result if result is not None else union(present)
            for out in node.output:
                if out:
                    self.values[out] = Value(self.shapes.get(out), frontier, static)
        return self.b.network()

    def lower(self, node: Any, name: str, inputs: list[Value | None]) -> tuple[frozenset[int], bool] | None:
        op, attrs, b, bits = node.op_type, _attrs(node), self.b, self.b.bits
        out_shape = self.shapes.get(node.output[0])
        if op == "Conv":
            x, w = self.known(name, inputs[0], "input"), self.known(name, inputs[1], "weight")
            x_shape, w_shape = self.shape(name, x, "input"), self.shape(name, w, "weight")
            spatial = len(w_shape) - 2
            if spatial not in (1, 2):
                raise _unsupported(f"Conv ({spatial}-D)", name)
            kernel = tuple(attrs.get("kernel_shape", w_shape[2:]))
            stride = tuple(attrs.get("strides", (1,) * spatial))
            dilation = tuple(attrs.get("dilations", (1,) * spatial))
            begins, ends = self._pads(attrs, x_shape[-spatial:], kernel, stride, dilation)
            layer = conv_layer(
                b.unique(name),
                x_shape,
                out_shape,
                w_shape[0],
                kernel,
                stride,
                begins,
                ends,
                dilation,
                int(attrs.get("group", 1)),
                bits,
            )
            return b.add(layer, x.frontier | w.frontier), False
        if op in ("MaxPool", "AveragePool"):
            x = self.known(name, inputs[0], "input")
            x_shape = self.shape(name, x, "input")
            kernel = tuple(attrs["kernel_shape"])
            spatial = len(kernel)
            if spatial not in (1, 2):
                raise _unsupported(f"{op} ({spatial}-D)", name)
            stride = tuple(attrs.get("strides", (1,) * spatial))
            dilation = tuple(attrs.get("dilations", (1,) * spatial))
            begins, ends = self._pads(attrs, x_shape[-spatial:], kernel, stride, dilation)
            layer = pool_layer(b.unique(name), x_shape, out_shape, kernel, stride, begins, ends, dilation, bits)
            return b.add(layer, x.frontier), False
        if op in ("GlobalAveragePool", "GlobalMaxPool"):
            x = self.known(name, inputs[0], "input")
            x_shape = self.shape(name, x, "input")
            if len(x_shape) not in (3, 4):
                raise _unsupported(f"{op} ({len(x_shape) - 2}-D)", name)
            layer = adaptive_pool_layer(b.unique(name), x_shape, (1,) * (len(x_shape) - 2), bits)
            return b.add(layer, x.frontier), False
        if op == "ReduceMean":
            source, source_shape = inputs[0], inputs[0].shape if inputs[0] is not None else None
            if source is None or source_shape is None or source.static:
                return None
            axes = attrs.get("axes")
            if axes is None and len(inputs) > 1 and inputs[1] is not None:
                axes = self.consts.get(node.input[1])
                axes = None if axes is None else [int(a) for a in axes.reshape(-1)]
            if axes is None and not attrs.get("noop_with_empty_axes", 0):
                axes = list(range(len(source_shape)))
            mean = reduce_mean_layer(b.unique(name), source_shape, axes, bits)
            return (b.add(mean, source.frontier), False) if mean is not None else None
        if op in ("Add", "Sub", "Mul", "Sum"):
            operands = [v for v in inputs if v is not None]
            if out_shape is not None and is_eltwise(operands):
                frontier, _ = union(operands)
                return b.add(eltwise_layer(b.unique(name), out_shape, len(operands), bits), frontier), False
            return None
        if op == "MatMul":
            a, w = self.known(name, inputs[0], "first operand"), self.known(name, inputs[1], "second operand")
            return b.add(product_layer(b.unique(name), a, w, bits), a.frontier | w.frontier), False
        if op == "Gemm":
            a, w = self.known(name, inputs[0], "first operand"), self.known(name, inputs[1], "second operand")
            a_shape, w_shape = self.shape(name, a, "first operand"), self.shape(name, w, "second operand")
            m, k = (a_shape[1], a_shape[0]) if attrs.get("transA", 0) else a_shape
            n = w_shape[0] if attrs.get("transB", 0) else w_shape[1]
            frontier, _ = union(v for v in inputs if v is not None)
            if w.static and not a.static:
                layer = linear_layer(b.unique(name), (m, k), n, bits)
            else:
                layer = matmul_layer(b.unique(name), 1, m, k, n, bits)
            return b.add(layer, frontier), False
        if op == "Einsum":
            operands = [v for v in inputs if v is not None]
            if len(operands) == 1:
                return None
            dims = None
            if len(operands) == 2 and operands[0].shape is not None and operands[1].shape is not None:
                dims = einsum_dims(
                    attrs["equation"].decode() if isinstance(attrs["equation"], bytes) else attrs["equation"],
                    operands[0].shape,
                    operands[1].shape,
                )
            if dims is None:
                raise _unsupported(f"Einsum {attrs.get('equation')!r}", name)
            batch, m, k, n = dims
            frontier, _ = union(operands)
            if batch == 1 and operands[1].static and not operands[0].static:
                layer = linear_layer(b.unique(name), (m, k), n, bits)
            else:
                layer = matmul_layer(b.unique(name), batch, m, k, n, bits)
            return b.add(layer, frontier), False
        raise _unsupported(op, name)  # listed in _LOWERED but not handled: a bug, say so loudly

    @staticmethod
    def _pads(
        attrs: dict[str, Any],
        sizes: tuple[int, ...],
        kernel: tuple[int, ...],
        stride: tuple[int, ...],
        dilation: tuple[int, ...],
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        spatial = len(kernel)
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pairs = [
                same_pads(s, k, st, d, upper=auto == "SAME_UPPER")
                for s, k, st, d in zip(sizes, kernel, stride, dilation)
            ]
            return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        if auto == "VALID":
            return (0,) * spatial, (0,) * spatial
        pads = tuple(attrs.get("pads", (0,) * (2 * spatial)))
        return pads[:spatial], pads[spatial:]


def from_onnx(path: str | Path, name: str | None = None, *, bits: int = 8, input_shapes: InputShapes = None) -> Network:
    """Lower the ONNX model at ``path`` to a Network (every operand ``bits`` bits).

    ``input_shapes`` gives the graph inputs' shapes (``{name: dims}``, or ``dims`` for a single input);
    it is needed when an input has a symbolic dim other than a leading batch dim.
    """
    if not isinstance(bits, int) or isinstance(bits, bool) or bits <= 0:
        raise CoexploreError(f"bits={bits!r} must be a positive integer")
    model = _load(path, input_shapes)
    return _OnnxLowerer(model, GraphBuilder(name or Path(path).stem, bits)).run()
