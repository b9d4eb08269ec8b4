"""Tidy pandas frames built from the store: outcomes, lift table, effects, learning curves.

Frames first, rendering second (`ablate.report.render`): tests check these frames.
Every comparison is over seeds: an arm's accuracy is a mean with its spread and n, and a lift
is the mean of the paired per-seed differences with a t interval and a p-value (ablate.stats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ablate import stats
from ablate.errors import ReportError
from ablate.plan import FACTORIAL_DESIGNS, Plan, plan
from ablate.results import metric_matrix, num_classes, outcomes, worst_value  # noqa: F401 (re-exported)
from ablate.spec import Spec, spec_from_dict
from ablate.tricks import suggest

FAILED = ("failed", "diverged", "pruned")


def load_experiment(store, name: str) -> Plan:
    """The plan of a stored experiment, from the spec saved with it."""
    row = store.experiment(name)
    if row is None:
        names = store.experiment_names()
        raise ReportError(f"no experiment '{name}' in store '{store.label}'{suggest(name, names)}; "
                          f"experiments there: {', '.join(names) or '(none)'}")
    spec = spec_from_dict(json.loads(row["spec"]), source=f"experiment '{name}' in {store.label}",
                          check_files=False)
    return plan(spec)


@dataclass
class LiftTable:
    experiment: str
    design: str
    metric: str
    frame: pd.DataFrame                 # one row per arm, design order
    confidence: float
    test: str
    noise_floor: float                  # baseline seed std of the metric
    detectable_lift: float              # smallest lift the seeds detect with 80% power
    seeds: list[int]
    status_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


def lift_table(p: Plan, out: pd.DataFrame, *, confidence: float = 0.95, test: str = "t") -> LiftTable:
    """Per arm: val/test accuracy mean, std, n; lift vs arm 0 (paired over seeds) with CI,
    p-value, Holm-adjusted p across the arms, significance; in cumulative designs also the step
    lift vs the previous arm."""
    spec: Spec = p.spec
    metric = spec.metric.name
    if not (out["status"] == "complete").any():
        counts = out["status"].value_counts().to_dict() if len(out) else {}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials stored"
        raise ReportError(f"experiment '{spec.name}' has no complete trials yet ({detail}); "
                          f"run it with: ablate run <spec> --store <store>")
    values, seeds = metric_matrix(p, out, metric)
    if np.isnan(values[0]).all():
        raise ReportError(f"experiment '{spec.name}' has no complete trial of its baseline arm "
                          f"'{p.arms[0].label}', so no lift can be measured; rerun it to fill it in")
    test_acc, _ = metric_matrix(p, out, "test_acc")
    val_acc, _ = metric_matrix(p, out, "val_acc")
    n_arms = len(p.arms)
    sv, st = stats.summarize_rows(val_acc), stats.summarize_rows(test_acc)
    failed = out[out["status"].isin(FAILED)]
    n_failed = failed.groupby("arm").size().reindex(range(n_arms), fill_value=0).to_numpy()
    failures = {a: "; ".join(f"seed {s}: {x}" for s, x in zip(g["seed"], g["status"]))
                for a, g in failed.groupby("arm")}
    done = out[out["status"] == "complete"]
    means = {c: pd.to_numeric(done[c], errors="coerce").groupby(done["arm"]).mean().reindex(range(n_arms))
             for c in ("params", "gflops", "peak_mem_mb", "wall_s")}
    frame = pd.DataFrame({
        "arm": [a.index for a in p.arms], "label": [a.label for a in p.arms],
        "tricks": [", ".join(a.tricks) for a in p.arms],
        "n": sv["n"], "n_planned": len(p.seeds), "n_failed": n_failed,
        "failures": [failures.get(a.index, "") for a in p.arms],
        "val_mean": sv["mean"], "val_std": sv["std"], "test_mean": st["mean"], "test_std": st["std"],
        "params": means["params"].to_numpy(), "gflops": means["gflops"].to_numpy(),
        "peak_mem_mb": means["peak_mem_mb"].to_numpy(), "time_s": means["wall_s"].to_numpy(),
    })
    nan = np.full(n_arms, np.nan)
    lifts = stats.paired_lifts(values[1:], values[0], confidence=confidence, test=test) if n_arms > 1 else {}
    for col, key in (("lift", "mean"), ("lift_low", "ci_low"), ("lift_high", "ci_high"), ("p", "p_value"),
                     ("n_pairs", "n"), ("lift_std", "std")):
        frame[col] = np.concatenate([[np.nan], lifts[key]]) if n_arms > 1 else nan
    if spec.design.kind == "cumulative" and n_arms > 1:
        steps = {k: [] for k in ("mean", "ci_low", "ci_high", "p_value")}
        for i in range(1, n_arms):   # each arm against the one before it
            one = stats.paired_lift(values[i], values[i - 1], confidence=confidence, test=test)
            for k in steps:
                steps[k].append(getattr(one, k))
        for col, key in (("step_lift", "mean"), ("step_low", "ci_low"), ("step_high", "ci_high"),
                         ("step_p", "p_value")):
            frame[col] = [np.nan] + steps[key]
    frame["p_holm"] = np.concatenate([[np.nan], stats.holm(frame["p"].to_numpy()[1:])]) if len(frame) > 1 else np.nan
    frame["significant"] = frame["p_holm"] < 0.05
    if spec.design.kind == "cumulative" and len(frame) > 1:
        frame["step_p_holm"] = np.concatenate([[np.nan], stats.holm(frame["step_p"].to_numpy()[1:])])

    noise = float(np.nanstd(values[0], ddof=1)) if np.sum(~np.isnan(values[0])) > 1 else float("nan")
    diff_sd = _pooled_diff_sd(frame)
    if np.isnan(diff_sd) and not np.isnan(noise):
        diff_sd = noise * np.sqrt(2)  # no paired arm yet: independent-noise bound
    n_typical = int(np.median(frame["n"])) if len(frame) else 0
    detectable = stats.min_detectable_lift(diff_sd, n_typical) if n_typical >= 2 else float("nan")
    notes = []
    if spec.design.kind == "leave_one_out":
        notes.append("Leave-one-out: arm 0 has every trick; a negative lift is what removing a trick costs.")
    short = frame[frame["n"] < frame["n_planned"]]
    if len(short):
        notes.append("Arms missing seeds: " + ", ".join(f"{r.label} (n={r.n} of {r.n_planned})"
                                                        for r in short.itertuples()))
    counts = out["status"].value_counts().to_dict()
    return LiftTable(spec.name, spec.design.kind, metric, frame, confidence, test, noise, detectable,
                     seeds, counts, notes)


def _pooled_diff_sd(frame: pd.DataFrame) -> float:
    """Pooled std of paired differences over arms (weights n-1): the noise a lift is measured in."""
    ok = frame[(frame["n_pairs"] >= 2) & frame["lift_std"].notna()]
    if ok.empty:
        return float("nan")
    dof = ok["n_pairs"] - 1
    return float(np.sqrt((dof * ok["lift_std"] ** 2).sum() / dof.sum()))


def effects_table(p: Plan, out: pd.DataFrame, *, confidence: float = 0.95, max_order: int = 2) -> pd.DataFrame:
    """Main effects and two-way interactions of a factorial design (OLS over seeds), sorted by
    size; aliased terms listed (their estimate is of the sum)."""
    if p.spec.design.kind not in FACTORIAL_DESIGNS:
        raise ReportError(f"effects need a factorial design; experiment '{p.spec.name}' is "
                          f"'{p.spec.design.kind}'")
    levels = np.array([a.levels for a in p.arms], dtype=float)
    values, _ = metric_matrix(p, out, p.spec.metric.name)
    keep = ~np.isnan(values).all(axis=1)
    if keep.sum() < 2:
        raise ReportError(f"experiment '{p.spec.name}' has fewer than two complete runs; no effects yet")
    keys = list(p.spec.tricks)
    codes = [p.spec.tricks[k].code for k in keys]
    effects = stats.factorial_effects(levels[keep], values[keep], max_order=max_order, confidence=confidence)

    def name(term, names):
        return " x ".join(names[i] for i in term)

    rows = [{"term": name(e.term, keys), "code": name(e.term, codes), "order": len(e.term),
             "estimate": e.estimate, "std_err": e.std_err, "ci_low": e.ci_low, "ci_high": e.ci_high,
             "p": e.p_value, "aliases": "; ".join(name(t, keys) for t in e.aliases)}
            for e in effects]
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = stats.holm(frame["p"].to_numpy())
        frame["significant"] = frame["p_holm"] < 0.05
    return frame


def curves(p: Plan, out: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per arm and epoch: mean and std over complete seeds of val/train metrics."""
    done = out[out["status"] == "complete"][["trial_id", "arm", "label", "seed"]]
    merged = epochs.merge(done, on="trial_id")
    if merged.empty:
        return pd.DataFrame(columns=["arm", "label", "epoch", "n"])
    g = merged.groupby(["arm", "label", "epoch"])
    frame = g[["val_acc", "val_loss", "train_loss", "train_acc", "lr"]].agg(["mean", "std"])
    frame.columns = [f"{a}_{b}" for a, b in frame.columns]
    frame["n"] = g.size()
    return frame.reset_index()


def trial_table(out: pd.DataFrame) -> pd.DataFrame:
    """Every trial with its status, timings and the first line of its error."""
    cols = ["arm", "label", "seed", "reason", "status", "val_acc", "test_acc", "wall_s", "attempts", "error"]
    t = out[[c for c in cols if c in out]].copy()
    t["error"] = t["error"].fillna("").map(lambda e: e.strip().splitlines()[0] if e.strip() else "")
    return t
