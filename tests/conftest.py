"""Shared fixtures: the repository root and the reference outputs of other tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples (a failure there is reproducible and not
# a matter of luck); local runs keep exploring new ones. A find is added as an @example.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "tests" / "data"  # measured outputs of other tools, copied as data (see its README)


@pytest.fixture(scope="session")
def scalesim_reference() -> dict:
    return json.loads((DATA_DIR / "scalesim.json").read_text())


# Tiers that run only when asked for: by naming the marker in -m (``-m slow``, ``-m "not slow"``), or
# with --full (then -m alone decides). ``pytest -m "not rtl"`` is therefore the quick loop: no RTL, no
# heavy, no slow test. ``make test`` runs ``--full -m "not slow"``; ``make test-slow`` runs ``-m slow``.
OPT_IN_TIERS = ("heavy", "slow")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the opt-in tiers (heavy, slow) that -m does not name; -m still filters",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not rtl"`` (alone or first in an ``and``) tests/rtl is not even imported: every test
    there is marked rtl, so nothing it holds could run, and importing its benches costs seconds."""
    expr = " ".join((config.getoption("-m") or "").split())
    if (expr == "not rtl" or expr.startswith("not rtl and ")) and collection_path == REPO / "tests" / "rtl":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/rtl with ``rtl``; deselect the opt-in tiers nobody asked for."""
    rtl_dir = REPO / "tests" / "rtl"
    for item in items:
        if rtl_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.rtl)
    expr = config.getoption("-m") or ""
    skipped = () if config.getoption("--full") else tuple(t for t in OPT_IN_TIERS if t not in expr)
    if not skipped:
        return
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(t) for t in skipped) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str | None:
    expr = config.getoption("-m") or ""
    off = [t for t in OPT_IN_TIERS if t not in expr]
    if config.getoption("--full") or not off:
        return None
    return f"quick loop: {' and '.join(off)} tests deselected (name them in -m, or use --full, or run make test)"
