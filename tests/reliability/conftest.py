"""Reliability tests break things for real (SIGKILL, stopped stores, faulty providers).

Tests marked `slow` (the 500-perform soak) run only when asked: `pytest -m slow` or
RUN_SLOW=1; `make test` runs their short forms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.option.markexpr or "") or os.environ.get("RUN_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest -m slow` (or RUN_SLOW=1)")
    for item in items:
        if "slow" in item.keywords and Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(skip)
