"""The one number formatter of every report (a design's, a search's, a comparison's)."""

from __future__ import annotations

import math

MINUS = "\u2212"     # the typographic minus of the tables: "−2.37", never "-2.37"
MISSING = "\u2013"   # a value that is not there (no trial, no interval): "–"


def fmt_num(v, digits: int = 2, *, sign: bool = False, general: bool = False) -> str:
    """A number as the reports show it.

    Fixed (default): `digits` decimals, `+` on positive values when `sign`, the typographic
    minus, MISSING for None or NaN. `general`: `digits` significant digits in ASCII, as a value is
    written in a spec (a searched lr of 0.0003 or 1e-05, to copy back); a value that is not a
    float (an int, a string, a bool) as `str(v)`."""
    if general:
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    text = f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return text.replace("-", MINUS)
