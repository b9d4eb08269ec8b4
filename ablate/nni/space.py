"""NNI search-space `_type`s -> the distributions of a spec's `search.params` (Optuna's).

NNI's semantics (docs/source/hpo/search_space.rst) are kept where Optuna can express them and
said out loud where it cannot: every parameter yields one printable note. Pure functions; the
caller supplies `fail(path, message) -> SpecError` so errors name the file, field and line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

from ablate.errors import SpecError

Fail = Callable[[tuple, str], SpecError]

NNI_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
             "lognormal", "qlognormal")
SIGMAS = 3      # a normal-family parameter becomes a bounded range of mu +- SIGMAS sigma (99.7% of its mass)


def _tidy(x: float) -> float | int:
    """A bound for the spec: 12 significant digits (no 0.30000000000000004), ints kept ints."""
    if isinstance(x, int):
        return x
    return float(f"{x:.12g}")


def _whole(x: float) -> bool:
    return math.isclose(x, round(x), rel_tol=0, abs_tol=1e-9)


def _numbers(name: str, value: Any, count: tuple[int, ...], names: str, kind: str, path: tuple,
             fail: Fail) -> list[float]:
    """`_value` as a list of numbers. PyYAML reads `1e-3` (no dot) as text: accepted as a number."""
    if not isinstance(value, list) or len(value) not in count:
        raise fail(path, f"parameter '{name}': '{kind}' takes _value: [{names}], got {value!r}")
    out = []
    for v in value:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise fail(path, f"parameter '{name}': '{kind}' takes _value: [{names}] as finite numbers, got {value!r}")
        out.append(v)
    return out


def _check_q(name: str, q: float, kind: str, path: tuple, fail: Fail) -> None:
    if q <= 0:
        raise fail(path, f"parameter '{name}': '{kind}': q must be > 0, got {q!r}")


def _range(name: str, low: float, high: float, kind: str, path: tuple, fail: Fail) -> None:
    if not low < high:
        raise fail(path, f"parameter '{name}': '{kind}': low < high must hold, got low={low!r}, high={high!r}")


def _stepped(name: str, low: float, high: float, q: float, what: str) -> tuple[dict, str]:
    """NNI's q-rounding, clip(round(x / q) * q, low, high), over [low, high]: exact as an Optuna
    range with step q when low and high are multiples of q. An int q gives ints in NNI (Python's
    round() returns an int), so the range is of ints then."""
    if _whole(low / q) and _whole(high / q):
        if isinstance(q, int) and _whole(low) and _whole(high):
            dist = {"type": "int", "low": int(round(low)), "high": int(round(high)), "step": int(round(q))}
            return dist, f"{what} -> int in [{dist['low']}, {dist['high']}] step {dist['step']} (the same values)"
        dist = {"type": "float", "low": _tidy(low), "high": _tidy(high), "step": _tidy(q)}
        return dist, f"{what} -> float in [{dist['low']}, {dist['high']}] step {dist['step']} (the same values)"
    lo, hi = math.ceil(low / q - 1e-9) * q, math.floor(high / q + 1e-9) * q
    if lo > hi:
        raise SpecError(f"no multiple of q={q!r} lies in [{low!r}, {high!r}]")
    dist = {"type": "float", "low": _tidy(lo), "high": _tidy(hi), "step": _tidy(q)}
    return dist, (f"{what} -> float in [{dist['low']}, {dist['high']}] step {dist['step']}: approximated, NNI also "
                  f"yields the clipped ends {_tidy(low)} and {_tidy(high)}, which are not multiples of q")


def convert_param(name: str, entry: Any, path: tuple, fail: Fail) -> tuple[dict, str]:
    """One NNI parameter -> (distribution of `search.params`, a note saying how it was mapped)."""
    if not isinstance(entry, dict) or "_type" not in entry or "_value" not in entry:
        raise fail(path, f"parameter '{name}' must be a mapping {{_type: ..., _value: [...]}}, got {entry!r}")
    kind, value = entry["_type"], entry["_value"]
    vpath = (*path, "_value")
    if kind not in NNI_TYPES:
        near = difflib.get_close_matches(str(kind), NNI_TYPES, n=1, cutoff=0.5)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise fail((*path, "_type"), f"parameter '{name}': unknown NNI _type '{kind}'{hint}; allowed: "
                                     f"{', '.join(NNI_TYPES)}")
    what = f"params.{name}: {kind} {value!r}"
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise fail(vpath, f"parameter '{name}': 'choice' takes a non-empty list of options, got {value!r}")
        for i, option in enumerate(value):
            if isinstance(option, dict):
                raise fail((*vpath, i), f"parameter '{name}' is a nested choice (option {i} is a sub-search-space "
                                        f"{option!r}); ablate's search has no conditional parameters: flatten "
                                        f"it into separate parameters, or run one experiment per option")
            if option is not None and not isinstance(option, (bool, int, float, str)):
                raise fail((*vpath, i), f"parameter '{name}': option {i} is {option!r}; a choice's options must "
                                        f"be numbers, text, true/false or null")
        return {"type": "categorical", "choices": list(value)}, f"{what} -> categorical (the same options)"
    if kind == "randint":
        nums = _numbers(name, value, (1, 2), "lower, upper", kind, vpath, fail)
        lower, upper = (0, nums[0]) if len(nums) == 1 else nums
        if not (_whole(lower) and _whole(upper)):
            raise fail(vpath, f"parameter '{name}': 'randint' takes whole numbers [lower, upper), got {value!r}")
        if upper <= lower:
            raise fail(vpath, f"parameter '{name}': 'randint' [lower, upper) needs upper > lower (the upper bound "
                              f"is exclusive), got lower={lower!r}, upper={upper!r}")
        dist = {"type": "int", "low": int(round(lower)), "high": int(round(upper)) - 1}
        return dist, f"{what} -> int in [{dist['low']}, {dist['high']}] (NNI's upper bound is exclusive)"
    if kind in ("uniform", "loguniform", "quniform", "qloguniform"):
        q_form = kind.startswith("q")
        nums = _numbers(name, value, (3,) if q_form else (2,), "low, high, q" if q_form else "low, high", kind, vpath,
                        fail)
        low, high = nums[0], nums[1]
        _range(name, low, high, kind, vpath, fail)
        if "log" in kind and low <= 0:
            raise fail(vpath, f"parameter '{name}': '{kind}' needs low > 0 (a log scale), got low={low!r}")
        if kind == "uniform":
            return {"type": "float", "low": _tidy(low), "high": _tidy(high)}, f"{what} -> float (the same)"
        if kind == "loguniform":
            return ({"type": "float", "low": _tidy(low), "high": _tidy(high), "log": True},
                    f"{what} -> float, log scale (the same)")
        q = nums[2]
        _check_q(name, q, kind, vpath, fail)
        if kind == "quniform":
            try:
                return _stepped(name, low, high, q, what)
            except SpecError as exc:
                raise fail(vpath, f"parameter '{name}': {exc.message}") from None
        if q == 1 and _whole(low) and _whole(high):
            return ({"type": "int", "low": int(round(low)), "high": int(round(high)), "log": True},
                    f"{what} -> int, log scale (whole numbers, as NNI's rounding to q=1 gives)")
        return ({"type": "float", "low": _tidy(low), "high": _tidy(high), "log": True},
                f"{what} -> float, log scale, NOT rounded to multiples of q (Optuna cannot combine a log scale "
                f"with a step): approximated")
    # the normal family: Optuna has no unbounded normal prior. Mapped to the bounded range that
    # holds 99.7% of NNI's mass, sampled uniformly (on a log scale for lognormal): the tuner still
    # searches where NNI's would, only the prior differs. Said in the note.
    q_form = kind.startswith("q")
    nums = _numbers(name, value, (3,) if q_form else (2,), "mu, sigma, q" if q_form else "mu, sigma", kind, vpath, fail)
    mu, sigma = nums[0], nums[1]
    if sigma <= 0:
        raise fail(vpath, f"parameter '{name}': '{kind}' needs sigma > 0, got sigma={sigma!r}")
    low, high = mu - SIGMAS * sigma, mu + SIGMAS * sigma
    prior = f"approximated: NNI's {kind.lstrip('q')} prior becomes a uniform range over mu +- {SIGMAS} sigma"
    if kind.endswith("lognormal"):
        if q_form:
            _check_q(name, nums[2], kind, vpath, fail)
        low, high = math.exp(low), math.exp(high)
        dist = {"type": "float", "low": _tidy(low), "high": _tidy(high), "log": True}
        rounding = ", NOT rounded to multiples of q (no log scale with a step)" if q_form else ""
        return dist, f"{what} -> float in [{dist['low']}, {dist['high']}], log scale{rounding}: {prior} (of log x)"
    if not q_form:
        dist = {"type": "float", "low": _tidy(low), "high": _tidy(high)}
        return dist, f"{what} -> float in [{dist['low']}, {dist['high']}]: {prior}"
    q = nums[2]
    _check_q(name, q, kind, vpath, fail)
    lo, hi = math.ceil(low / q - 1e-9) * q, math.floor(high / q + 1e-9) * q
    if lo >= hi:
        raise fail(vpath, f"parameter '{name}': 'qnormal' with q={q!r} leaves at most one value within "
                          f"mu +- {SIGMAS} sigma; use a choice instead")
    dist, _ = _stepped(name, lo, hi, q, what)
    return dist, f"{what} -> {dist['type']} in [{dist['low']}, {dist['high']}] step {dist['step']}: {prior}"


def convert_space(space: Any, path: tuple, fail: Fail) -> tuple[dict[str, dict], list[str]]:
    """An NNI search space (name -> {_type, _value}) -> ({'params.NAME': distribution}, notes)."""
    if not isinstance(space, dict) or not space:
        raise fail(path, f"the search space must be a non-empty mapping of parameter names to "
                         f"{{_type: ..., _value: [...]}}, got {space!r}")
    params, notes = {}, []
    for name, entry in space.items():
        dist, note = convert_param(str(name), entry, (*path, name), fail)
        params[f"params.{name}"] = dist
        notes.append(note)
    return params, notes


def is_continuous(dist: dict) -> bool:
    """A float range without a step: a grid cannot enumerate it."""
    return dist["type"] == "float" and "step" not in dist
