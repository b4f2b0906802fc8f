"""Shared fixtures: the repository root and the reference outputs of other tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "tests" / "data"  # measured outputs of other tools, copied as data (see its README)


@pytest.fixture(scope="session")
def scalesim_reference() -> dict:
    return json.loads((DATA_DIR / "scalesim.json").read_text())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/rtl with ``rtl`` (``pytest -m "not rtl"`` is the quick loop)."""
    rtl_dir = REPO / "tests" / "rtl"
    for item in items:
        if rtl_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.rtl)
