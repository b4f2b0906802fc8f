"""Safe arithmetic expressions for template timing fields ("rows + cols - 2", "ceil(log2(rows))").

Templates are user data, so their formulas are parsed with ``ast`` and only arithmetic over known
names is allowed. A compiled expression evaluates on Python ints or on numpy arrays alike, which
keeps the analytical model vectorized.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from coexplore.models.ir import CoexploreError

ALLOWED_NAMES = ("rows", "cols", "T")
_FUNCS: dict[str, Callable[..., Any]] = {
    "ceil": np.ceil,
    "floor": np.floor,
    "log2": lambda x: np.log2(np.maximum(x, 1)),
    "min": np.minimum,
    "max": np.maximum,
}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
}


class ExprError(CoexploreError):
    """A timing formula that uses something other than arithmetic over rows, cols and T."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed formula; call it with keyword values for ``rows``, ``cols`` and ``T``."""

    text: str

    def __post_init__(self) -> None:
        _compile(self.text)  # raises ExprError with the offending token

    def __call__(self, **values: Any) -> Any:
        return _evaluate(_compile(self.text), values)


_cache: dict[str, ast.AST] = {}


def _compile(text: str) -> ast.AST:
    if text in _cache:
        return _cache[text]
    try:
        tree = ast.parse(str(text), mode="eval").body
    except SyntaxError:
        raise ExprError(f"formula {text!r} is not valid arithmetic") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            func = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExprError(f"formula {text!r} calls unknown function {func!r} (expected {', '.join(_FUNCS)})")
        if isinstance(node, ast.Name) and node.id not in ALLOWED_NAMES and node.id not in _FUNCS:
            raise ExprError(f"formula {text!r} uses unknown name {node.id!r} (expected {', '.join(ALLOWED_NAMES)})")
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            raise ExprError(f"formula {text!r} uses an unsupported operator {type(node.op).__name__}")
        if not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Name,
                                 ast.Load, ast.Constant, ast.Call, *_BINOPS)):
            raise ExprError(f"formula {text!r} contains unsupported syntax {type(node).__name__}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ExprError(f"formula {text!r} contains a non-numeric constant {node.value!r}")
    _cache[text] = tree
    return tree


def _evaluate(node: ast.AST, values: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ExprError(f"formula needs a value for {node.id!r}")
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCS[node.func.id](*(_evaluate(arg, values) for arg in node.args))
    raise ExprError(f"cannot evaluate {ast.dump(node)}")
