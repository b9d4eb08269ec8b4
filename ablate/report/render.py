"""Text renderings of the report frames: markdown (like the reference READMEs), CSV, JSON, LaTeX."""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import math

import numpy as np
import pandas as pd

from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS
from ablate.report.frames import LiftTable
from ablate.report.numbers import fmt_num

from ablate.design.changes import EXECUTION_ONLY_RECIPE

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec


def p_text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def mean_std(mean, std, n) -> str:
    if n == 0:
        return "–"
    return f"{fmt_num(mean)} ± {fmt_num(std)} ({n})" if n > 1 else f"{fmt_num(mean)} (1)"


def ci_text(mean, low, high, digits=2) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    if isinstance(low, float) and math.isnan(low):
        return fmt_num(mean, digits, sign=True)
    return f"{fmt_num(mean, digits, sign=True)} [{fmt_num(low, digits, sign=True)}, {fmt_num(high, digits, sign=True)}]"


def unit(metric: str) -> str:
    return "pp" if metric.endswith("acc") else ""


def p_cell(p: float, significant, zero_variance=False) -> str:
    """A Holm p with its star; a t-test that could not be computed says why instead."""
    if zero_variance and (p is None or (isinstance(p, float) and math.isnan(p))):
        return "n/a (zero variance)"
    return p_text(p) + (" *" if significant is True or (significant and not pd.isna(significant)) else "")


def lift_rows(t: LiftTable, *, extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the human lift table (shared by markdown, LaTeX and HTML).

    The star sits in the p cell (no column without a header); an "Adaptive seeds" column shows
    only when adaptive seeding added seeds to some arm."""
    u = unit(t.metric)
    lift_name = f"Lift {t.metric} ({u})" if u else f"Lift {t.metric}"
    pct = _pct(t.confidence)
    header = ["Arm", "Val acc (%)", "Test acc (%)", f"{lift_name} [{pct}% CI]", "p (Holm)"]
    cumulative = t.design == "cumulative" and "step_lift" in t.frame
    if cumulative:
        header += [f"Step ({u}) [{pct}% CI]" if u else f"Step [{pct}% CI]", "p step (Holm)"]
    adaptive = bool(t.frame["adaptive_seeds"].any()) if "adaptive_seeds" in t.frame else False
    if adaptive:
        header.append("Adaptive seeds")
    for col in extra_columns:
        header.append(EXTRA_COLUMNS[col][0])
    rows = []
    for r in t.frame.to_dict("records"):
        base = r["arm"] == 0
        cells = [r["label"], mean_std(r["val_mean"], r["val_std"], r["n"]),
                 mean_std(r["test_mean"], r["test_std"], r["n"]),
                 "reference" if base else ci_text(r["lift"], r["lift_low"], r["lift_high"]),
                 "" if base else p_cell(r["p_holm"], r.get("significant"), r.get("zero_variance", False))]
        if cumulative:
            cells += ["" if base else ci_text(r["step_lift"], r["step_low"], r["step_high"]),
                      "" if base else p_cell(r.get("step_p_holm"), r.get("step_significant"),
                                             r.get("step_zero_variance", False))]
        if adaptive:
            cells.append(f"+{int(r['adaptive_seeds'])}" if r["adaptive_seeds"] else "")
        for col in extra_columns:
            _, key, scale, digits = EXTRA_COLUMNS[col]
            v = r.get(key)
            cells.append(fmt_num(v * scale, digits) if v is not None and not pd.isna(v) else "–")
        rows.append(cells)
    return header, rows


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.10g}"


def _params_text(setting, *, all_params: bool = False) -> str:
    """A trick's parameters that differ from the trick's defaults (all of them with
    `all_params`), as `name=value`."""
    from ablate.tricks import get_trick

    given = setting.params.model_dump(mode="json")
    if all_params:
        return ", ".join(f"{k}={v}" for k, v in given.items())
    try:
        defaults = get_trick(setting.use).Params().model_dump(mode="json")
    except Exception:   # noqa: BLE001 -- a Params with required fields has no defaults to omit
        defaults = {}
    return ", ".join(f"{k}={v}" for k, v in given.items() if defaults.get(k, object()) != v)


def _fields(model, skip=()) -> str:
    return ", ".join(f"{k} {v}" for k, v in model.model_dump(mode="json").items()
                     if k != "name" and k not in skip and v is not None)


def subject(spec: Spec) -> str:
    """What was trained, in a few words: "ResNet20 on cifar10", or a command trial's command."""
    if getattr(spec, "trial", None) is not None:
        return f"command `{' '.join(spec.trial.command)}`"
    from ablate.models import model_info

    return f"{model_info(spec.model).label} on {spec.data.name}"


def settings_lines(spec: Spec) -> list[str]:
    """What the numbers were measured with: model, data, recipe, seeds, and each trick's code,
    registered name and the parameters where they differ from its defaults."""
    if getattr(spec, "trial", None) is not None:   # a command trial: its command is the setup
        lines = [f"Setup: command `{' '.join(spec.trial.command)}`"
                 + (f" in {spec.trial.cwd}" if spec.trial.cwd else "") + f"; metric {spec.metric.name}."]
    else:
        lines = [f"Setup: model {spec.model.name} ({_fields(spec.model)}); data {spec.data.name} "
                 f"({_fields(spec.data)}); recipe: {_fields(spec.recipe, EXECUTION_ONLY_RECIPE)}; metric {spec.metric.name}."]
    seeds = ", ".join(map(str, spec.seeds.values))
    policy = spec.seeds.adaptive
    lines.append(f"Seeds: {seeds}" + (f"; adaptive: more seeds while an arm's lift CI half-width exceeds "
                                      f"{policy.target_half_width}, up to {policy.max_seeds} per arm." if policy else "."))
    if spec.tricks:
        parts = []
        for k, s in spec.tricks.items():
            # a key made with `use:` names a variant: show every parameter, not only changed
            # ones; a command's tricks are its own flags, with no registered defaults
            params = _params_text(s, all_params=k != s.use or getattr(spec, "trial", None) is not None)
            name = s.use if k == s.use else f"{s.use} (as '{k}')"
            parts.append(f"{s.code} = {name}" + (f" [{params}]" if params else " [defaults]"))
        lines.append("Codes: " + ", ".join(parts) + ".")
    return lines


def _decided(r: dict) -> bool:
    return bool(r.get("significant")) and not pd.isna(r.get("significant"))


def _seeds_text(n) -> str:
    if n is None or pd.isna(n):
        return "–"    # fewer than 2 pairs, or zero spread: no SD to size from
    return ">1000" if math.isinf(n) else f"~{int(n)}"


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def verdict(t: LiftTable) -> str:
    """One plain line that never says more than the table shows: the decided lifts (Holm star),
    those whose unadjusted CI excludes 0 (suggestive), those an equivalence test puts within
    ±min_lift, and the undecided rest with the paired seeds each would need (its own SD)."""
    rows = [r for r in t.frame.to_dict("records") if r["arm"] != 0]
    if not rows:
        return "Only the reference arm: no lifts to judge."
    u = unit(t.metric)
    suffix = f" {u}" if u else ""
    decided = [r for r in rows if _decided(r)]
    better = 1 if t.direction == "max" else -1
    words = [f"{r['label']} {'helps' if r['lift'] * better > 0 else 'hurts'} ({fmt_num(r['lift'], sign=True)}{suffix})"
             for r in decided]
    parts = [f"{len(decided)} of {len(rows)} lifts decided" + (": " + ", ".join(words) if words else "")]
    rest = [r for r in rows if not _decided(r)]
    # an unadjusted CI that excludes 0 without a Holm star is worth naming: it is what a
    # single-comparison reading would call significant, and the table alone reads as a conflict
    hint = [r for r in rest if not pd.isna(r.get("lift_low")) and (r["lift_low"] > 0 or r["lift_high"] < 0)]
    if hint:
        names = ", ".join(f"{r['label']} ({fmt_num(r['lift'], sign=True)}{suffix})" for r in hint)
        parts.append(f"{names} {'is' if len(hint) == 1 else 'are'} suggestive only: "
                     f"{'its CI excludes' if len(hint) == 1 else 'their CIs exclude'} 0, but not after Holm's "
                     f"correction for {len(rows)} lifts")
        rest = [r for r in rest if r not in hint]
    same = [r for r in rest if r.get("equivalent") is True]
    if same:
        parts.append(f"{_names([r['label'] for r in same])} {'is' if len(same) == 1 else 'are'} within noise: "
                     f"no larger than ±{fmt_num(t.min_lift)}{suffix} (equivalence test, Holm-adjusted)")
        rest = [r for r in rest if r not in same]
    if rest:
        # past a handful of arms a list of names reads as noise: the count, and the range of seeds
        many = len(rest) > 5
        text = f"undecided: {len(rest)} {'others' if decided or hint or same else 'lifts'}" if many else \
            f"undecided: {_names([r['label'] for r in rest])}"
        if t.min_lift is None:
            text += " (set metric.min_lift, the smallest lift of interest, to size the seeds they need)"
        else:
            need = [_seeds_text(r.get("seeds_needed")) for r in rest]
            counts = sorted(float(r["seeds_needed"]) for r in rest if not pd.isna(r.get("seeds_needed")))
            if many and counts:
                span = " to ".join(">1000" if math.isinf(n) else str(int(n)) for n in (counts[0], counts[-1]))
                text += (f" (paired seeds each would need to decide a lift of {fmt_num(t.min_lift)}{suffix} with 80% "
                         f"power: {span}; per arm in the CSV's seeds_needed)")
            elif counts:
                text += (f" (paired seeds each would need to decide a lift of {fmt_num(t.min_lift)}{suffix} with 80% "
                         f"power: {', '.join(need)})")
        parts.append(text)
    return "; ".join(parts) + "."


def footnotes(t: LiftTable, spec: Spec=None) -> list[str]:
    u = unit(t.metric) or "units"
    lines = settings_lines(spec) if spec is not None else []
    test = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test",
            "permutation": "exact paired sign-flip (randomisation) test"}[t.test]
    families = ("lifts and steps are separate families, each Holm-adjusted" if "step_lift" in t.frame
                else "Holm-adjusted across the arms")
    lines.append(
        f"Lift: mean of the paired per-seed differences vs the reference arm with its {_pct(t.confidence)}% t "
        f"interval, not adjusted for multiplicity; p: {test}, {families}; * = Holm p < α = {t.alpha:.3g} "
        f"(α = 1 − confidence). Accuracies are final-epoch values: mean ± std (n seeds).")
    if t.min_lift is not None and len(t.frame) > 1:
        m = f"{fmt_num(t.min_lift)}{' ' + unit(t.metric) if unit(t.metric) else ''}"
        lines.append(
            f"Verdict: a lift is decided by its star; \"within noise\" means an equivalence test (two one-sided "
            f"t-tests at ±{m}, the smallest lift of interest, metric.min_lift; Holm-adjusted) shows it is no "
            f"larger than that; otherwise it is undecided, with the paired seeds that would detect a lift of {m} "
            f"with 80% power at the first Holm level given that arm's own SD.")
    if t.pilot_seeds is not None:
        lines.append(
            f"Adaptive seeds: the first {t.pilot_seeds} seed(s) were a pilot; from the root mean square of their "
            f"paired differences, pooled over the arms and blind to the lifts' signs, one seed count was chosen "
            f"once for every arm, so the lifts are tested and their intervals computed as in a fixed design of "
            f"that many seeds (simulated: the t-test stays within 0.4 pp of α under normal, t3 and 360-image "
            f"accuracy noise; exact for the sign-flip test when the noise is symmetric).")
    if "zero_variance" in t.frame and t.frame["zero_variance"].any() and t.test == "t":
        lines.append("n/a (zero variance): every paired seed gave the same difference, so the t-test cannot be "
                     "computed and no star is given (--test permutation gives an exact p).")
    if not math.isnan(t.noise_floor):
        floor = (f"Noise floor: the paired differences vs the reference arm vary by {fmt_num(t.noise_floor)} {u} "
                 f"(SD, pooled over the arms"
                 + ("" if not t.frame["n_diverged"].iloc[1:].any() else " without diverged seeds")
                 + f"; the reference arm alone varies by {fmt_num(t.baseline_std)} {u} across "
                 f"seeds)")
        if not math.isnan(t.detectable_lift):
            # a "detectable lift" beyond the whole range of a percentage is no figure to quote
            beyond = u == "pp" and t.detectable_lift > 100
            floor += ((f"; with {t.n_pairs} paired seeds no lift can be detected with 80% power (it would have "
                       f"to exceed 100 pp) by the paired t-test at the first Holm level " if beyond else
                       f"; with {t.n_pairs} paired seeds a lift must be about {fmt_num(t.detectable_lift)} {u} to be "
                       f"detected with 80% power by the paired t-test at the first Holm level ")
                      + f"(α/m = {t.alpha:.3g}/{t.tested} = {t.detectable_alpha:.3g}).")
        lines.append(floor + ("" if floor.endswith(".") else "."))
    counts = ", ".join(f"{v} {k}" for k, v in sorted(t.status_counts.items()))
    lines.append(f"Trials: {counts}.")
    failures = [f"{r['label']}: {r['failures']}" for r in t.frame.to_dict("records") if r["n_failed"]]
    if failures:
        lines.append("Failed, diverged or pruned (not averaged into the accuracies): " + "; ".join(failures) + "."
                     + (f" Why each failed: `ablate logs {spec.name if spec else 'EXPERIMENT'}`; after fixing the "
                        f"cause, `ablate run SPEC "
                        f"--retry-failed` runs the failed ones again." if t.status_counts.get("failed") else ""))
    if "n_diverged" in t.frame and t.frame["n_diverged"].any():
        if t.diverged == "worst":
            lines.append(f"Diverged seeds count against their arm: each scores {fmt_num(t.worst_value)} {u} in the "
                         f"paired lift, the worse of the {t.metric} of chance and the worst completed seed "
                         f"(report --diverged exclude leaves them out).")
        else:
            warn = [f"{r['label']}: {r['warning']}" for r in t.frame.to_dict("records") if r.get("warning")]
            lines.append("Warning: " + "; ".join(warn) + ".")
    adaptive = [r for r in t.frame.to_dict("records") if r.get("adaptive_seeds")]
    if adaptive and len(adaptive) == len(t.frame) and len({(r["adaptive_seeds"], r["adaptive_reason"])
                                                           for r in adaptive}) == 1:
        r = adaptive[0]
        lines.append(f"Adaptive seeds added: +{int(r['adaptive_seeds'])} to every arm ({r['adaptive_reason']}).")
    elif adaptive:
        lines.append("Adaptive seeds added: " + "; ".join(
            f"{r['label']} +{int(r['adaptive_seeds'])} ({r['adaptive_reason']})" for r in adaptive) + ".")
    lines += t.notes
    return lines


def markdown_table(header: list[str], rows: list[list[str]], *, align: list[str] | None = None) -> str:
    align = align or ([":--"] + ["--:"] * (len(header) - 1))
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def lift_markdown(t: LiftTable, spec: Spec=None, *, title: bool = True,
                  extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    header, rows = lift_rows(t, extra_columns=extra_columns)
    align = [":--"] + ["--:"] * (len(header) - 1)
    parts = []
    if title:
        seeds = len(t.seeds)
        parts.append(f"## {t.experiment}: {t.design.replace('_', ' ')} design, {t.metric}, "
                     f"{seeds} seed{'s' if seeds != 1 else ''} per arm\n")
    parts.append(markdown_table(header, rows, align=align))
    parts.append("")
    parts.append(f"**Verdict:** {verdict(t)}")
    parts.append("")
    parts += [f"- {line}" for line in footnotes(t, spec)]
    return "\n".join(parts) + "\n"


def effects_markdown(frame: pd.DataFrame, metric: str, confidence: float = 0.95, warning: str | None = None) -> str:
    u = unit(metric)
    partial = "partial_aliases" in frame and frame["partial_aliases"].astype(bool).any()
    header = ["Term", f"Effect ({u}) [{_pct(confidence)}% CI]" if u else f"Effect [{_pct(confidence)}% CI]",
              "p (Holm)", "Aliased with"] + (["Partially aliased with (r)"] if partial else [])
    rows = [[r["term"], ci_text(r["estimate"], r["ci_low"], r["ci_high"]),
             p_cell(r.get("p_holm"), r.get("significant"), r.get("zero_variance", False)), r["aliases"] or ""]
            + ([r["partial_aliases"] or ""] if partial else []) for r in frame.to_dict("records")]
    text = "### Effects (two-level factorial, OLS with seed blocks)\n\n"
    text += markdown_table(header, rows, align=[":--", "--:", "--:", ":--"] + ([":--"] if partial else []))
    text += ("\n\n- Effect: mean of the metric with the trick on minus with it off. Interaction A x B: half "
             "the difference between A's effect with B on and with B off. Aliased terms cannot be told "
             "apart by this design: the estimate is of their sum. CIs are unadjusted; * = Holm p < "
             f"{1 - confidence:.3g}.\n")
    if partial:
        text += ("- Partially aliased: interactions whose contrast correlates with the term's (|r| >= 0.3, codes): "
                 "the estimate also carries r times each one's effect.\n")
    if "zero_variance" in frame and frame["zero_variance"].any():
        text += ("- n/a (zero variance): the model fits every observation exactly, so there is no error estimate "
                 "and no test (counted as p = 1 in Holm).\n")
    if warning:
        text += f"- {warning}\n"
    return text


def lift_csv(t: LiftTable) -> str:
    return t.frame.to_csv(index=False, float_format="%.6g")


def settings_dict(spec: Spec) -> dict:
    """The resolved settings a report was measured with, as plain data: model, data, recipe,
    seeds, metric and per trick its registered name, code, every parameter and the non-default ones."""
    from ablate.design.spec import spec_to_dict

    raw = spec_to_dict(spec)
    tricks = {}
    for k, s in spec.tricks.items():
        params = s.params.model_dump(mode="json")
        changed = _params_text(s)
        tricks[k] = {"use": s.use, "code": s.code, "params": params,
                     "non_default": {name: params[name] for name in
                                     (x.split("=", 1)[0] for x in changed.split(", ") if x)}}
    return {key: raw.get(key) for key in ("model", "data", "recipe", "seeds", "metric", "design")} | {"tricks": tricks}


def _nan_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def lift_json(t: LiftTable, effects: pd.DataFrame | None = None, spec: Spec=None) -> str:
    def clean(df):
        return json.loads(df.replace({np.nan: None}).to_json(orient="records"))

    doc = {"experiment": t.experiment, "design": t.design, "metric": t.metric,
           "confidence": t.confidence, "alpha": t.alpha, "test": t.test, "seeds": t.seeds,
           "diverged": t.diverged, "diverged_score": t.worst_value,
           "noise_floor": _nan_none(t.noise_floor), "noise_floor_is": "SD of the paired differences, pooled over arms",
           "baseline_std": _nan_none(t.baseline_std), "n_pairs": t.n_pairs,
           "detectable_lift": _nan_none(t.detectable_lift), "detectable_alpha": _nan_none(t.detectable_alpha),
           "pilot_seeds": t.pilot_seeds, "min_lift": t.min_lift, "verdict": verdict(t),
           "status_counts": t.status_counts, "notes": footnotes(t, spec), "arms": clean(t.frame)}
    if spec is not None:
        doc["settings"] = settings_dict(spec)
    if effects is not None:
        doc["effects"] = clean(effects)
    return json.dumps(doc, indent=2)


def tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("−", "$-$"), ("–", "--"), ("<", r"$<$")):
        s = s.replace(a, b)
    return s


def lift_latex(t: LiftTable, *, extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    header, rows = lift_rows(t, extra_columns=extra_columns)
    cols = "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{tex(t.experiment)}: {tex(t.design)} design, {len(t.seeds)} seeds per arm. "
              rf"Lift: paired mean difference with {tex(_pct(t.confidence))}\% CI (not adjusted for multiplicity); "
              rf"p Holm-adjusted; * = Holm p $<$ {t.alpha:.3g}. {tex(verdict(t))}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"
