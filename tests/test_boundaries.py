"""The package boundaries of DESIGN.md, checked by parsing every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package folder -> coexplore subpackages it may import
ALLOWED = {
    "models": {"models"},
    "dataflows": {"models", "dataflows"},
    "sim": {"models", "dataflows", "sim"},
    "codesign": {"models", "dataflows", "sim", "codesign"},
    "rtl": {"models", "dataflows", "rtl"},
}
HEAVY = {"torch": {"models"}, "pyomo": {"codesign"}, "amaranth": {"rtl"}, "cocotb": set()}
# Single files allowed a heavy library outside its package: NASAIC's controller is a torch RNN policy.
HEAVY_FILES = {"torch": {"codesign/search/rl.py"}}
# cocotb runs only inside the benches that rtl/verify.py hands to the simulator.
HEAVY_DIRS = {"cocotb": ("rtl/benches/",)}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.heavy
def test_packages_import_only_what_design_allows() -> None:
    violations = []
    checked = 0
    for package, allowed in ALLOWED.items():
        for path in (REPO / package).rglob("*.py"):
            checked += 1
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "coexplore" and len(parts) > 1 and parts[1] in ALLOWED and parts[1] not in allowed:
                    violations.append(f"{path.relative_to(REPO)} imports {name}")
                rel = path.relative_to(REPO).as_posix()
                if (
                    parts[0] in HEAVY
                    and package not in HEAVY[parts[0]]
                    and rel not in HEAVY_FILES.get(parts[0], ())
                    and not rel.startswith(HEAVY_DIRS.get(parts[0], ("//",)))
                ):
                    violations.append(f"{path.relative_to(REPO)} imports heavy library {name}")
                if parts[0] in ALLOWED and parts[0] != package:
                    violations.append(f"{path.relative_to(REPO)} imports bare top-level {name}")
    assert checked > 5
    assert not violations, "\n".join(violations)


@pytest.mark.heavy
def test_the_cli_starts_without_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, coexplore.cli; heavy = [m for m in ('torch', 'pyomo', 'amaranth', 'cocotb', 'ortools') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
