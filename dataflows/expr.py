"""Safe arithmetic expressions for template timing fields ("rows + cols - 2", "ceil(log2(rows))").

Templates are user data, so their formulas are parsed with ``ast`` and only arithmetic over known
names is allowed. A compiled expression evaluates on Python ints or on numpy arrays alike, which
keeps the analytical model vectorized.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from coexplore.models.ir import CoexploreError

ALLOWED_NAMES = ("rows", "cols", "T", "stages")
# ``stages``: the register stages a pipelined PE adds to the data path (``Accelerator.pe_stages``); an
# accelerator binds its own value into its template's formulas (``Expr.bind``), unbound it is 0.
DEFAULTS: dict[str, Any] = {"stages": 0}
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
    """A parsed formula; call it with keyword values for ``rows``, ``cols`` and ``T`` (``stages``: bound or 0)."""

    text: str
    bound: tuple[tuple[str, int], ...] = ()  # names fixed by ``bind`` (an accelerator's ``stages``)

    def __post_init__(self) -> None:
        _compile(self.text)  # raises ExprError with the offending token

    def __call__(self, **values: Any) -> Any:
        return _evaluate(_compile(self.text), {**DEFAULTS, **dict(self.bound), **values})

    def bind(self, **values: int) -> Expr:
        """This formula with ``values`` fixed (names it does not use are dropped, as are defaults:
        a formula bound to its defaults equals the unbound one)."""
        keep = {**dict(self.bound), **values}
        used = self.names
        return Expr(self.text, tuple(sorted((k, v) for k, v in keep.items() if k in used and DEFAULTS.get(k) != v)))

    @property
    def names(self) -> frozenset[str]:
        """The variable names the formula uses."""
        return frozenset(n.id for n in ast.walk(_compile(self.text)) if isinstance(n, ast.Name) and n.id not in _FUNCS)


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
        if not isinstance(
            node,
            (
                ast.Expression,
                ast.BinOp,
                ast.UnaryOp,
                ast.USub,
                ast.UAdd,
                ast.Name,
                ast.Load,
                ast.Constant,
                ast.Call,
                *_BINOPS,
            ),
        ):
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


# ---- range check at load time --------------------------------------------------------------------
# Array sides and fold lengths a formula must stay finite and non-negative on: every side a design
# space here uses, and fold lengths from 1 to 4096 (all of 1..64, then powers of two and their
# neighbours, where off-by-one formulas break).
CHECK_SIDES: tuple[int, ...] = (1, 2, 3, 4, 8, 16, 32, 64, 128, 256)
CHECK_T: tuple[int, ...] = tuple(
    sorted({*range(1, 65), *(t + d for t in (2**k for k in range(7, 13)) for d in (-1, 0, 1) if t + d <= 4096)})
)


def range_problem(expr: Expr) -> str | None:
    """Why ``expr`` is not a usable cycle count over ``CHECK_SIDES`` x ``CHECK_SIDES`` x ``CHECK_T``, or None.

    Returns e.g. ``"negative (-3) at rows=1, cols=1, T=1"`` or ``"division by zero (inf) at rows=1, ..."``.
    """
    rows, cols, t = np.meshgrid(
        np.array(CHECK_SIDES, dtype=np.float64),
        np.array(CHECK_SIDES, dtype=np.float64),
        np.array(CHECK_T, dtype=np.float64),
        indexing="ij",
    )
    with np.errstate(all="ignore"):
        value = np.broadcast_to(np.asarray(expr(rows=rows, cols=cols, T=t), dtype=np.float64), rows.shape)
    bad = ~np.isfinite(value) | (value < 0)
    if not bad.any():
        return None
    i = tuple(int(x) for x in np.argwhere(bad)[0])
    v = float(value[i])
    where = f"rows={int(rows[i])}, cols={int(cols[i])}, T={int(t[i])}"
    if np.isnan(v):
        return f"not a number (0/0 or inf-inf) at {where}"
    if np.isinf(v):
        return f"infinite (division by zero) at {where}"
    return f"negative ({v:g}) at {where}"


@lru_cache(maxsize=1024)
def _cached_problem(text: str) -> str | None:
    return range_problem(Expr(text))


def check_range(text: str, where: str) -> None:
    """Raise ExprError naming ``where`` (e.g. ``template 'x' field 'timing.fill'``) if ``text`` fails
    :func:`range_problem`."""
    problem = _cached_problem(str(text))
    if problem is not None:
        raise ExprError(
            f"{where} = {text!r} is {problem} (a cycle count must be finite and >= 0 for rows, cols "
            f"in {{{', '.join(map(str, CHECK_SIDES))}}} and T in 1..{CHECK_T[-1]})"
        )
