"""Shared fixtures: the repository root and the reference outputs of other tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def scalesim_reference() -> dict:
    path = REFERENCE_DIR / "scalesim.json"
    if not path.exists():
        pytest.skip(f"reference file {path} not present (it ships beside the repository in shared/)")
    return json.loads(path.read_text())
