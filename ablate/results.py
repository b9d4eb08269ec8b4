"""Tidy frames of stored trials, below both the runner and the reports.

`outcomes` joins the store's trials to a plan's arms; `metric_matrix` lays a metric out as
(arms x seeds). The runner's adaptive seeding and every report read the store through these.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.design.plan import Plan
from ablate.config.metric import is_accuracy

__all__ = ["outcomes", "metric_matrix", "num_classes", "worst_value"]


def outcomes(p: Plan, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per stored trial of the plan's arms (any seed, including adaptive ones).

    Trials a previous version of the spec left in the store have other ids and are dropped.
    """
    seeds = sorted(set(p.seeds) | set(int(s) for s in trials["seed"].unique())) if len(trials) else list(p.seeds)
    ids = {p.trial_id(a.index, s): (a.index, s) for a in p.arms for s in seeds}
    out = trials[trials["trial_id"].isin(ids)].copy()
    out["arm"] = [ids[t][0] for t in out["trial_id"]]
    out["label"] = [p.arms[a].label for a in out["arm"]]
    return out.sort_values(["arm", "seed"]).reset_index(drop=True)


def metric_matrix(p: Plan, out: pd.DataFrame, metric: str) -> tuple[np.ndarray, list[int]]:
    """(arms x seeds) array of `metric` over complete trials, NaN where missing; and the seeds."""
    done = out[out["status"] == "complete"]
    seeds = sorted(int(s) for s in out["seed"].unique()) if len(out) else list(p.seeds)
    m = np.full((len(p.arms), len(seeds)), np.nan)
    if len(done):
        cols = np.searchsorted(seeds, done["seed"].to_numpy(dtype=int))
        m[done["arm"].to_numpy(dtype=int), cols] = pd.to_numeric(done[metric], errors="coerce").to_numpy(dtype=float)
    return m, seeds


def num_classes(data) -> int | None:
    """Classes of a data config without loading images; None when it cannot be known cheaply
    (an ImageFolder whose training folder is not there)."""
    fixed = {"digits": 10, "cifar10": 10, "cifar100": 100}
    if data.name in fixed:
        return fixed[data.name]
    if data.name == "synthetic":
        return int(data.num_classes)
    if data.name == "imagefolder":
        from pathlib import Path

        folder = Path(data.root) / data.train
        if folder.is_dir():
            return sum(1 for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")) or None
    return None


def worst_value(metric: str, classes: int | None, observed=None) -> float | None:
    """The metric's worst meaningful value, what a diverged seed scores in the paired analysis:
    chance accuracy 100/C (%) for accuracy metrics, the chance-level cross-entropy ln C for loss
    metrics, or the worst of the `observed` values (the experiment's complete trials) when that
    is worse: a badly trained model can exceed a loss of ln C (or fall below chance), and a seed
    that diverged must not score better than one that finished. None for other metrics or an
    unknown class count."""
    if classes is None or classes < 2:
        return None
    seen = np.asarray([] if observed is None else observed, dtype=float).ravel()
    seen = seen[np.isfinite(seen)]
    if is_accuracy(metric):
        return float(min(100.0 / classes, seen.min())) if seen.size else 100.0 / classes
    if metric.endswith("loss"):
        return float(max(math.log(classes), seen.max())) if seen.size else math.log(classes)
    return None
