"""Cost factor per voice model: effective characters = raw characters x factor."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("shared.data").joinpath("model_costs.json").read_text("utf-8"))


def cost_factor(model_id: str) -> float:
    table = _table()
    return float(table["models"].get(model_id, table["default"]))


def effective_chars(raw_chars: int, model_id: str) -> int:
    """Characters charged against the quota; rounded up so a note never costs nothing."""
    return math.ceil(raw_chars * cost_factor(model_id))


def raw_chars_within(effective_budget: int, model_id: str) -> int:
    """The longest text whose effective cost stays within `effective_budget`."""
    return math.floor(effective_budget / cost_factor(model_id))
