"""Run mypy on the ``coexplore`` package as it is installed, from the checkout.

The package maps top-level folders into ``coexplore.*`` (``models`` -> ``coexplore.models`` ...: see
``[tool.setuptools] package-dir`` in pyproject.toml), which mypy cannot follow by itself, and the
editable install resolves imports through an import hook that mypy does not run. So this script builds
``build/typecheck/coexplore`` from that same mapping out of symbolic links (folders link whole, so new
modules are seen without rebuilding) and points mypy at it; mypy's settings live in ``[tool.mypy]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "build" / "typecheck"


def build_tree() -> Path:
    """The link tree of the package mapping; returns the ``coexplore`` folder in it."""
    mapping: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    root = TREE / "coexplore"
    root.mkdir(parents=True)
    for entry in (REPO / mapping["coexplore"]).iterdir():
        if entry.suffix in (".py", ".pyi", ".typed"):
            (root / entry.name).symlink_to(entry)
    for package, folder in sorted(mapping.items()):
        parts = package.split(".")[1:]
        if len(parts) != 1:
            continue  # nested packages come with their parent's folder link
        (root / parts[0]).symlink_to(REPO / folder, target_is_directory=True)
    return root


def checkout_paths(text: str) -> str:
    """mypy's messages with the link tree's paths turned back into the checkout's own."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    prefix = f"{TREE.relative_to(REPO)}{os.sep}coexplore{os.sep}"
    for package, folder in mapping.items():
        parts = package.split(".")[1:]
        if len(parts) == 1:
            text = text.replace(f"{prefix}{parts[0]}{os.sep}", f"{folder}{os.sep}")
    return text.replace(prefix, f"{mapping['coexplore']}{os.sep}")


def main() -> int:
    from mypy import api

    root = build_tree()
    os.chdir(REPO)
    out, err, status = api.run([str(root.relative_to(REPO)), *sys.argv[1:]])
    sys.stdout.write(checkout_paths(out))
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
