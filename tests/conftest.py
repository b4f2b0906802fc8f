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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/rtl with ``rtl`` (``pytest -m "not rtl"`` is the quick loop)."""
    rtl_dir = REPO / "tests" / "rtl"
    for item in items:
        if rtl_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.rtl)
