"""Choosing the winner on the selection seeds, measuring it on the report seeds: pure numpy over
any leading axes (one search in a report; thousands of simulated searches in the tests).

`finalist_order` ranks finalists by their mean over the selection seeds; `choose_and_report`
picks the winner and the runner-up that way and measures them, and the hand-picked values, on
the report seeds only (`ablate.design.stages` says why). Ties within a relative 1e-9 go to the
finalist the search ranked higher, so every driver and every resumed run, reading the same
stored results, names the same winner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ablate import stats

TIE_RTOL = 1e-9   # float means of equal accuracies differ in their last bits, never by this much


def _means(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis without NaNs; NaN where a row has no value (no warning)."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)


def rank(means, *, direction: str) -> np.ndarray:
    """Indices of the last axis of `means`, best first. A value within TIE_RTOL (relative, at
    least 1e-9 absolute) of the best left counts as tied with it, and ties go to the lower index;
    NaN (no result) ranks last."""
    m = np.asarray(means, dtype=float)
    score = np.where(np.isnan(m), -np.inf, m if direction == "max" else -m)
    k = score.shape[-1]
    left = np.ones(score.shape, dtype=bool)
    order = np.empty(score.shape, dtype=int)
    idx = np.arange(k)
    for pos in range(k):
        best = np.where(left, score, -np.inf).max(axis=-1, keepdims=True)
        tol = TIE_RTOL * np.maximum(1.0, np.abs(np.where(np.isfinite(best), best, 0.0)))
        near = left & ((score >= best - tol) | (np.isneginf(best) & np.isneginf(score)))
        pick = np.where(near, idx, k).min(axis=-1)
        order[..., pos] = pick
        np.put_along_axis(left, pick[..., None], False, axis=-1)
    return order


def finalist_order(select, *, direction: str) -> np.ndarray:
    """Finalists (axis -2 of `select`, shaped (..., finalists, seeds)) ranked by their mean over
    the selection seeds (NaN seeds left out); with no selection seed, the search's order."""
    return rank(_means(np.asarray(select, dtype=float)), direction=direction)


@dataclass(frozen=True)
class Chosen:
    """The choice and what the report seeds say about it, each field shaped like the leading axes.

    `winner` and `runner_up` index the finalists (runner_up -1 with one finalist); `winner_mean`
    and `runner_up_mean` are the n, mean, std and t interval over the report seeds; the lifts are
    paired over the report seeds (`stats.paired_lifts` fields), None when there is nothing to compare."""

    winner: np.ndarray
    runner_up: np.ndarray
    winner_mean: dict
    runner_up_mean: dict | None
    over_runner_up: dict | None
    over_hand: dict | None


def _take(report: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.take_along_axis(report, i[..., None, None], axis=-2)[..., 0, :]


def _over_reps(x: np.ndarray, lead: tuple, confidence: float, test: str) -> dict:
    """`stats.paired_lifts` of the rows of x (..., seeds) against 0: a mean's t interval, or a
    paired lift when x holds differences."""
    flat = x.reshape(int(np.prod(lead, dtype=int)), x.shape[-1])
    if flat.shape[-1] == 0:   # no report seed: nothing measured
        flat = np.full((flat.shape[0], 1), np.nan)
    r = stats.paired_lifts(flat, np.zeros(flat.shape[-1]), confidence=confidence, test=test)
    return {k: np.asarray(v).reshape(lead) for k, v in r.items()}


def choose_and_report(select, report, hand=None, *, direction: str, confidence: float = 0.95,
                      test: str = "t") -> Chosen:
    """Rank the finalists on `select` (..., k, selection seeds), then measure the winner, the
    runner-up and their difference, and the winner over `hand` (..., report seeds), on `report`
    (..., k, report seeds). Rows of `report` for finalists neither chosen nor runner-up are never
    read (NaN in a real search: they do not run on the report seeds)."""
    select, report = np.asarray(select, dtype=float), np.asarray(report, dtype=float)
    lead = report.shape[:-2]
    order = finalist_order(select, direction=direction)
    win = order[..., 0]
    w = _take(report, win)
    chosen = dict(winner=win, runner_up=np.full(lead, -1), winner_mean=_over_reps(w, lead, confidence, "t"),
                  runner_up_mean=None, over_runner_up=None, over_hand=None)
    if report.shape[-2] > 1:
        run = order[..., 1]
        r = _take(report, run)
        chosen.update(runner_up=run, runner_up_mean=_over_reps(r, lead, confidence, "t"),
                      over_runner_up=_over_reps(w - r, lead, confidence, test))
    if hand is not None:
        chosen["over_hand"] = _over_reps(w - np.asarray(hand, dtype=float), lead, confidence, test)
    return Chosen(**chosen)


def search_order(values, *, direction: str) -> np.ndarray:
    """The search's ranking of its trials (last axis), best first, ties in trial order: each value
    is one stored run, compared as stored (a mean's float noise does not arise)."""
    v = np.asarray(values, dtype=float)
    score = np.where(np.isnan(v), np.inf, -v if direction == "max" else v)
    return np.argsort(score, axis=-1, kind="stable")
