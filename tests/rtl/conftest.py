"""Shared pieces of the RTL checks: accelerators, the emission cache, the expected cycles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".coexplore_cache" / "rtl"


@pytest.fixture(scope="session")
def rtl_cache() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(autouse=True)
def _needs_icarus():
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
