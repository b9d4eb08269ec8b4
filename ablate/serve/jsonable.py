"""Values the page receives as JSON: NaN-free plain Python, plotly figures as {data, layout}."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def clean(value: Any) -> Any:
    """`value` with NaN and infinities as None and numpy scalars as Python ones (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def figure_data(fig) -> dict:
    """A plotly figure as {data, layout} for Plotly.react in the page."""
    return json.loads(fig.to_json())
