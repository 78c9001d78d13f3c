"""Numbers as JSON traits: NaN and infinity (from NaN weights, a float16 model overflowing, an
empty dataset's mean) are not JSON numbers, so an undefined value travels as null and the views
say it is undefined."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def json_matrix(values: np.ndarray, decimals: int = 5) -> list[list[float | None]]:
    rounded = np.asarray(values, dtype=np.float64).round(decimals).tolist()
    return [[json_number(v) for v in row] for row in rounded]


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json_number(v) if isinstance(v, float) else v for k, v in row.items()}
