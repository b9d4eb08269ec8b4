"""Tidy pandas frames built from the store: outcomes, lift table, effects, learning curves.

Frames first, rendering second (`ablate.report.render`): tests check these frames.
Every comparison is over seeds: an arm's accuracy is a mean with its spread and n, and a lift
is the mean of the paired per-seed differences with a t interval and a p-value (ablate.stats).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ablate import stats
from ablate.errors import ReportError
from ablate.design.plan import FACTORIAL_DESIGNS, Plan, plan
from ablate.results import metric_matrix, num_classes, outcomes, worst_value  # noqa: F401 (re-exported)
from ablate.design.spec import Spec, spec_from_dict
from ablate.config.spec_errors import suggest

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

FAILED = ("failed", "diverged", "pruned")


def load_experiment(store: Store, name: str) -> Plan:
    """The plan of a stored experiment, from the spec saved with it."""
    row = store.experiment(name)
    if row is None:
        names = store.experiment_names()
        raise ReportError(f"no experiment '{name}' in store '{store.label}'{suggest(name, names)}; "
                          f"experiments there: {', '.join(names) or '(none)'}")
    spec = spec_from_dict(json.loads(row["spec"]), source=f"experiment '{name}' in {store.label}",
                          check_files=False)
    return plan(spec)


DIVERGED_RULES = ("worst", "exclude")


@dataclass
class LiftTable:
    experiment: str
    design: str
    metric: str
    frame: pd.DataFrame                 # one row per arm, design order
    confidence: float
    test: str
    noise_floor: float                  # SD of the paired differences (pooled over arms): what lifts are measured in
    detectable_lift: float              # smallest lift detected with 80% power at `detectable_alpha`
    seeds: list[int]
    status_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05                 # 1 - confidence: one level for CI and star
    baseline_std: float = float("nan")  # the reference arm's own seed-to-seed std
    n_pairs: int = 0                    # typical (median) number of paired seeds of the lifts
    detectable_alpha: float = float("nan")  # Holm level of the first step: alpha / tested arms
    tested: int = 0                     # lifts with a p-value (the Holm family size)
    diverged: str = "worst"             # how diverged seeds enter the paired analysis
    worst_value: float | None = None    # what a diverged seed scores under "worst"
    pilot_seeds: int | None = None      # adaptive seeds: the spec's seeds, the pilot that chose n
    direction: str = "max"              # whether larger (max) or smaller (min) values of the metric are better
    min_lift: float | None = None       # smallest lift of interest (metric.min_lift or its default)
    values: np.ndarray | None = None    # (arms x seeds) metric the lifts were computed from (diverged scored)


def check_options(confidence: float, test: str, diverged: str, min_lift: float | None = None) -> None:
    if min_lift is not None and not (isinstance(min_lift, (int, float)) and np.isfinite(min_lift) and min_lift > 0):
        raise ReportError(f"min_lift must be a finite number > 0 (the smallest lift of interest), got {min_lift!r}")
    if test not in stats.TESTS:
        raise ReportError(f"unknown test {test!r}; allowed: {', '.join(stats.TESTS)}")
    if diverged not in DIVERGED_RULES:
        raise ReportError(f"unknown diverged rule {diverged!r}; allowed: {', '.join(DIVERGED_RULES)}")
    if not 0.0 < confidence < 1.0:
        raise ReportError(f"confidence must be in (0, 1), got {confidence!r}")


def _score_diverged(p: Plan, out: pd.DataFrame, values: np.ndarray, seeds: list[int], worst: float) -> np.ndarray:
    """`values` with every diverged trial's cell set to the metric's worst meaningful value."""
    bad = out[out["status"] == "diverged"]
    scored = values.copy()
    if len(bad):
        scored[bad["arm"].to_numpy(dtype=int), np.searchsorted(seeds, bad["seed"].to_numpy(dtype=int))] = worst
    return scored


def _adaptive_columns(p: Plan, out: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per arm: how many seeds adaptive seeding added, and the reason of the last one."""
    n_arms = len(p.arms)
    if "reason" not in out or not len(out):
        return np.zeros(n_arms, dtype=int), [""] * n_arms
    extra = out[out["reason"].astype(str).str.startswith("adaptive")]
    counts = extra.groupby("arm").size().reindex(range(n_arms), fill_value=0).to_numpy()
    last = extra.sort_values("seed").groupby("arm")["reason"].last().to_dict()
    return counts, [str(last.get(a, "")).removeprefix("adaptive: ") for a in range(n_arms)]


def lift_table(p: Plan, out: pd.DataFrame, *, confidence: float = 0.95, test: str = "t",
               diverged: str = "worst", min_lift: float | None = None) -> LiftTable:
    """Per arm: val/test accuracy mean, std, n; lift vs arm 0 (paired over seeds) with CI,
    p-value, Holm-adjusted p across the arms, significance at alpha = 1 - confidence; in
    cumulative designs also the step lift vs the previous arm.

    ``diverged="worst"`` scores a diverged seed at the metric's worst meaningful value in the
    paired analysis (`results.worst_value`), so a trick that blows up is charged for it;
    ``"exclude"`` judges the arm on its surviving seeds only, with a warning on the arm. Adaptive
    seeds give every arm the same seeds, chosen blind to the lifts (`stats.adaptive`), so they
    are analysed as a fixed design.

    For the verdict, each lift also gets an equivalence test at the smallest lift of interest
    ``m`` (``min_lift``, default the spec's `metric.lift_of_interest`): the TOST p-value,
    Holm-adjusted like the lifts (``equivalent`` when below alpha), and ``seeds_needed``, the
    paired seeds that would detect a lift of m with 80% power at the first Holm level given that
    arm's own paired SD.
    """
    check_options(confidence, test, diverged, min_lift)
    spec: Spec = p.spec
    metric = spec.metric.name
    alpha = 1.0 - confidence
    values, seeds = _metric_values(p, out)
    notes: list[str] = []
    n_arms = len(p.arms)
    n_diverged = (out[out["status"] == "diverged"].groupby("arm").size()
                  .reindex(range(n_arms), fill_value=0).to_numpy())
    worst = worst_value(metric, num_classes(spec.data), values) if diverged == "worst" else None
    if diverged == "worst" and n_diverged.any():
        if worst is None:
            diverged = "exclude"
            notes.append(f"Diverged seeds are left out: the worst meaningful value of '{metric}' is not "
                         f"known (only accuracy and loss metrics with a known class count have one).")
        else:
            values = _score_diverged(p, out, values, seeds, worst)
    frame = _arm_columns(p, out, n_diverged, diverged, notes)
    min_lift = spec.metric.lift_of_interest if min_lift is None else min_lift
    _lift_columns(frame, values, confidence=confidence, test=test,
                  cumulative=spec.design.kind == "cumulative" and n_arms > 1)
    baseline_std = float(np.nanstd(values[0], ddof=1)) if np.sum(~np.isnan(values[0])) > 1 else float("nan")
    diff_sd, n_pairs, tested, first_step, detectable = _power(frame, alpha)
    _equivalence_columns(frame, min_lift, alpha, first_step)
    notes += _table_notes(p, frame, test, tested, first_step)
    counts = out["status"].value_counts().to_dict()
    return LiftTable(spec.name, spec.design.kind, metric, frame, confidence, test, diff_sd, detectable,
                     seeds, counts, notes, alpha=alpha, baseline_std=baseline_std, n_pairs=n_pairs,
                     detectable_alpha=first_step, tested=tested, diverged=diverged, worst_value=worst,
                     pilot_seeds=len(p.seeds) if spec.seeds.adaptive is not None else None,
                     min_lift=min_lift, direction=spec.metric.direction, values=values)


def _metric_values(p: Plan, out: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
    """(arms x seeds) values of the spec's metric; ReportError when nothing (or no baseline
    trial) is complete, saying what to do."""
    spec = p.spec
    if not (out["status"] == "complete").any():
        counts = out["status"].value_counts().to_dict() if len(out) else {}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials stored"
        todo = (f"`ablate logs {spec.name}` says why they failed; after fixing the cause: ablate run SPEC "
                f"--retry-failed" if counts.get("failed") else "run it with: ablate run SPEC --store STORE")
        raise ReportError(f"experiment '{spec.name}' has no complete trials yet ({detail}); {todo}")
    values, seeds = metric_matrix(p, out, spec.metric.name)
    if np.isnan(values[0]).all():
        base_failed = bool(((out["arm"] == 0) & (out["status"] == "failed")).any())
        todo = (f"its trials failed: `ablate logs {spec.name}` says why; after fixing the cause, ablate run SPEC "
                f"--retry-failed" if base_failed else "rerun it to fill it in")
        raise ReportError(f"experiment '{spec.name}' has no complete trial of its baseline arm "
                          f"'{p.arms[0].label}', so no lift can be measured; {todo}")
    return values, seeds


def _arm_columns(p: Plan, out: pd.DataFrame, n_diverged: np.ndarray, diverged: str, notes: list[str]) -> pd.DataFrame:
    """The lift table's per-arm columns before the lifts: accuracies, failures, costs."""
    n_arms = len(p.arms)
    test_acc, _ = metric_matrix(p, out, "test_acc")
    val_acc, _ = metric_matrix(p, out, "val_acc")
    sv, st = stats.summarize_rows(val_acc), stats.summarize_rows(test_acc)
    failed = out[out["status"].isin(FAILED)]
    n_failed = failed.groupby("arm").size().reindex(range(n_arms), fill_value=0).to_numpy()
    # a pruned seed says why (e.g. "stopped early by ASHA after epoch 3"): it did not finish
    failures = {a: "; ".join(f"seed {s}: {x}" + (f" ({e})" if x == "pruned" and isinstance(e, str) and e else "")
                             for s, x, e in zip(g["seed"], g["status"], g.get("error", [None] * len(g))))
                for a, g in failed.groupby("arm")}
    done = out[out["status"] == "complete"]
    means = {c: pd.to_numeric(done[c] if c in done else pd.Series(np.nan, index=done.index), errors="coerce")
             .groupby(done["arm"]).mean().reindex(range(n_arms))
             for c in ("params", "gflops", "peak_mem_mb", "wall_s", "test_top5")}
    if "compile_s" in done and done["compile_s"].notna().any():
        # torch.compile's time (recipe.compile) is reported apart: the time column is training
        compile_s = pd.to_numeric(done["compile_s"], errors="coerce").fillna(0.0)
        means["wall_s"] = ((pd.to_numeric(done["wall_s"], errors="coerce") - compile_s)
                           .groupby(done["arm"]).mean().reindex(range(n_arms)))
        notes.append(f"Time/trial leaves out torch.compile's time (recipe.compile): {compile_s.sum():.1f} s "
                     f"over {int((compile_s > 0).sum())} trial(s), most of it in the first trial of each shape.")
    adaptive_seeds, adaptive_reason = _adaptive_columns(p, out)
    warning = ["" if diverged == "worst" or not k else
               f"{k} diverged seed(s) excluded: lift over surviving seeds only, biased in the trick's favour"
               for k in n_diverged]
    return pd.DataFrame({
        "arm": [a.index for a in p.arms], "label": [a.label for a in p.arms],
        "tricks": [", ".join(a.tricks) for a in p.arms],
        "n": sv["n"], "n_planned": len(p.seeds), "n_failed": n_failed, "n_diverged": n_diverged,
        "failures": [failures.get(a.index, "") for a in p.arms], "warning": warning,
        "adaptive_seeds": adaptive_seeds, "adaptive_reason": adaptive_reason,
        "val_mean": sv["mean"], "val_std": sv["std"], "test_mean": st["mean"], "test_std": st["std"],
        "params": means["params"].to_numpy(), "gflops": means["gflops"].to_numpy(),
        "peak_mem_mb": means["peak_mem_mb"].to_numpy(), "time_s": means["wall_s"].to_numpy(),
        "test_top5": means["test_top5"].to_numpy(),   # mean over complete seeds (>= 10 classes)
    })


def _holm_of(r: dict[str, np.ndarray]) -> np.ndarray:
    # a zero-variance t-test has no p-value; it still counts in Holm's m (as p = 1) so that
    # dropping it after seeing the data does not loosen the other arms' threshold
    return stats.holm(r["p_value"], untestable=r["zero_variance"])


def _pad(x) -> np.ndarray:
    return np.concatenate([[np.nan], np.asarray(x, dtype=float)])


def _lift_columns(frame: pd.DataFrame, values: np.ndarray, *, confidence: float, test: str,
                  cumulative: bool) -> None:
    """The lifts vs arm 0 (paired over seeds, Holm-adjusted) and, for a cumulative design, the
    step lifts vs the arm before (a family of its own), added to `frame`."""
    alpha = 1.0 - confidence
    n_arms = len(frame)

    def lifts_of(arms: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        return stats.paired_lifts(arms, ref, confidence=confidence, test=test)

    if n_arms > 1:
        lifts = lifts_of(values[1:], values[0])
        for col, key in (("lift", "mean"), ("lift_low", "ci_low"), ("lift_high", "ci_high"), ("p", "p_value"),
                         ("n_pairs", "n"), ("lift_std", "std"), ("n_nonzero", "n_nonzero")):
            frame[col] = _pad(lifts[key])
        frame["zero_variance"] = np.concatenate([[False], lifts["zero_variance"]])
        frame["p_holm"] = _pad(_holm_of(lifts))
    else:
        nan = np.full(n_arms, np.nan)
        for col in ("lift", "lift_low", "lift_high", "p", "n_pairs", "lift_std", "n_nonzero", "p_holm"):
            frame[col] = nan
        frame["zero_variance"] = False
    frame["significant"] = frame["p_holm"] < alpha
    if cumulative:   # each arm against the one before it: a family of its own
        steps = _step_lifts(values, lifts_of)
        for col, key in (("step_lift", "mean"), ("step_low", "ci_low"), ("step_high", "ci_high"),
                         ("step_p", "p_value"), ("step_n_pairs", "n")):
            frame[col] = _pad(steps[key])
        frame["step_zero_variance"] = np.concatenate([[False], steps["zero_variance"]])
        frame["step_p_holm"] = _pad(_holm_of(steps))
        frame["step_significant"] = frame["step_p_holm"] < alpha


def _power(frame: pd.DataFrame, alpha: float) -> tuple[float, int, int, float, float]:
    """(pooled paired SD, typical paired seeds, tested lifts, first Holm level, the lift
    detectable with 80% power there)."""
    # arms with diverged seeds scored at chance are outliers, not the seed noise lifts are measured in
    clean = frame[frame["n_diverged"] == 0] if (frame["n_diverged"].iloc[1:] == 0).any() else frame
    diff_sd = _pooled_diff_sd(clean)
    pairs = frame["n_pairs"].to_numpy()[1:]
    pairs = pairs[~np.isnan(pairs)]
    n_pairs = int(np.median(pairs)) if pairs.size else 0
    tested = int(np.sum(~np.isnan(frame["p"].to_numpy()[1:]) | frame["zero_variance"].to_numpy()[1:]))
    first_step = alpha / max(tested, 1)   # the first Holm step tests at alpha / m
    detectable = (stats.min_detectable_lift(diff_sd, n_pairs, alpha=first_step)
                  if n_pairs >= 2 and not np.isnan(diff_sd) else float("nan"))
    return diff_sd, n_pairs, tested, first_step, detectable


def _table_notes(p: Plan, frame: pd.DataFrame, test: str, tested: int, first_step: float) -> list[str]:
    """The notes under the table: leave-one-out's reading, arms missing seeds, a rank test that cannot decide."""
    notes = []
    if p.spec.design.kind == "leave_one_out":
        notes.append("Leave-one-out: arm 0 has every trick; a negative lift is what removing a trick costs.")
    short = frame[frame["n"] < frame["n_planned"]]
    if len(short):
        notes.append("Arms missing seeds: " + ", ".join(f"{r.label} (n={r.n} of {r.n_planned})"
                                                        for r in short.itertuples()) + ".")
    if test != "t" and len(frame) > 1 and tested:
        # a zero difference flips to itself (and Wilcoxon drops it): only the non-zero ones count
        most = int(np.nanmax(frame["n_nonzero"].to_numpy()[1:]))
        floor = stats.smallest_p_value(test, most)
        if floor >= first_step:
            name = "Wilcoxon" if test == "wilcoxon" else "sign-flip"
            notes.append(f"Warning: with at most {most} non-zero paired difference(s) per arm the {name} test's "
                         f"smallest possible p is {floor:.3g}, not below the first Holm level α/m = "
                         f"{first_step:.3g}: no lift can be significant; add seeds or use the t-test.")
    return notes


def _equivalence_columns(frame: pd.DataFrame, min_lift: float | None, alpha: float, first_step: float) -> None:
    """TOST p at the smallest lift of interest (Holm-adjusted over the lifts, zero-variance rows
    counted as p = 1), whether it shows equivalence, and the seeds each arm would need."""
    n_arms = len(frame)
    frame["tost_p"] = frame["tost_p_holm"] = frame["seeds_needed"] = np.full(n_arms, np.nan)
    frame["equivalent"] = False
    if min_lift is None or n_arms < 2:
        return
    rest = frame.iloc[1:]
    tost = stats.equivalence_p_values(rest["lift"], rest["lift_std"], rest["n_pairs"], min_lift)
    frame.loc[frame.index[1:], "tost_p"] = tost
    frame.loc[frame.index[1:], "tost_p_holm"] = stats.holm(tost, untestable=rest["zero_variance"].to_numpy())
    frame["equivalent"] = frame["tost_p_holm"] < alpha
    # NaN: no SD to size from (under 2 pairs, or zero spread); inf: more than 1000 seeds
    need = [(stats.seeds_to_detect(min_lift, sd, alpha=first_step) or np.inf) if k >= 2 and sd > 0 else np.nan
            for sd, k in zip(rest["lift_std"].fillna(0.0), rest["n_pairs"].fillna(0))]
    frame.loc[frame.index[1:], "seeds_needed"] = need


def _step_lifts(values: np.ndarray, lifts_of) -> dict[str, np.ndarray]:
    """Each arm vs the one before it, with the same test as the lifts."""
    rows = [lifts_of(values[i:i + 1], values[i - 1]) for i in range(1, values.shape[0])]
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def _pooled_diff_sd(frame: pd.DataFrame) -> float:
    """Pooled std of paired differences over arms (weights n-1): the noise a lift is measured in."""
    ok = frame[(frame["n_pairs"] >= 2) & frame["lift_std"].notna()]
    if ok.empty:
        return float("nan")
    dof = ok["n_pairs"] - 1
    return float(np.sqrt((dof * ok["lift_std"] ** 2).sum() / dof.sum()))


def effects_table(p: Plan, out: pd.DataFrame, *, confidence: float = 0.95, max_order: int = 2,
                  diverged: str = "worst") -> pd.DataFrame:
    """Main effects and two-way interactions of a factorial design (OLS over seeds), sorted by
    size; aliased terms listed (their estimate is of the sum), and in a Plackett-Burman design
    the partially aliased ones (|r| >= 0.3, codes with r: the estimate carries r x their effect).
    Diverged runs enter as in `lift_table`: at the metric's worst meaningful value, or left out
    with ``"exclude"``. An exact fit has no p-value (``zero_variance``) and counts as 1 in Holm."""
    if p.spec.design.kind not in FACTORIAL_DESIGNS:
        raise ReportError(f"effects need a factorial design; experiment '{p.spec.name}' is "
                          f"'{p.spec.design.kind}'")
    levels = np.array([a.levels for a in p.arms], dtype=float)
    values, seeds = metric_matrix(p, out, p.spec.metric.name)
    worst = worst_value(p.spec.metric.name, num_classes(p.spec.data), values) if diverged == "worst" else None
    if worst is not None:
        values = _score_diverged(p, out, values, seeds, worst)
    keep = ~np.isnan(values).all(axis=1)
    if keep.sum() < 2:
        raise ReportError(f"experiment '{p.spec.name}' has fewer than two complete runs; no effects yet")
    keys = list(p.spec.tricks)
    codes = [p.spec.tricks[k].code for k in keys]
    effects = stats.factorial_effects(levels[keep], values[keep], max_order=max_order, confidence=confidence)

    def name(term, names):
        return " x ".join(names[i] for i in term)

    def partial(term) -> str:
        if p.design is None:
            return ""
        pos = {k: i for i, k in enumerate(keys)}
        found = p.design.partial_aliases(tuple(keys[i] for i in term), max_order=2)
        return "; ".join(f"{name(tuple(pos[k] for k in t), codes)} ({r:+.2f})" for t, r in found)

    rows = [{"term": name(e.term, keys), "code": name(e.term, codes), "order": len(e.term),
             "estimate": e.estimate, "std_err": e.std_err, "ci_low": e.ci_low, "ci_high": e.ci_high,
             "p": e.p_value, "zero_variance": e.zero_variance,
             "aliases": "; ".join(name(t, keys) for t in e.aliases), "partial_aliases": partial(e.term)}
            for e in effects]
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["p_holm"] = stats.holm(frame["p"].to_numpy(), untestable=frame["zero_variance"].to_numpy())
        frame["significant"] = frame["p_holm"] < 1.0 - confidence
    return frame


def effects_warning(p: Plan) -> str | None:
    """What a reader of the effects table must know when main effects are aliased with
    two-factor interactions (resolution III: Plackett-Burman, or such a fractional design)."""
    d = p.design
    if d is None or (d.resolution or 5) > 3:
        return None
    fix = ("'design: {kind: plackett_burman, foldover: true}' doubles the runs and frees the main effects from "
           "them" if d.kind == "plackett_burman" else "a resolution IV design frees the main effects from them")
    return (f"Warning: in this resolution III design every main effect is aliased (fully or partly, as listed) with "
            f"two-factor interactions; its CI and p-value assume those interactions are zero, and an active one "
            f"can put a star on a null main effect. {fix}.")


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
