"""Text renderings of the report frames: markdown (like the reference READMEs), CSV, JSON, LaTeX."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS
from ablate.report.frames import LiftTable
from ablate.tricks import get_trick


def _num(v, digits: int = 2, *, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    s = f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return s.replace("-", "−")


def p_text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def mean_std(mean, std, n) -> str:
    if n == 0:
        return "–"
    return f"{_num(mean)} ± {_num(std)} ({n})" if n > 1 else f"{_num(mean)} (1)"


def ci_text(mean, low, high, digits=2) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    if isinstance(low, float) and math.isnan(low):
        return _num(mean, digits, sign=True)
    return f"{_num(mean, digits, sign=True)} [{_num(low, digits, sign=True)}, {_num(high, digits, sign=True)}]"


def unit(metric: str) -> str:
    return "pp" if metric.endswith("acc") else ""


def lift_rows(t: LiftTable, *, extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the human lift table (shared by markdown and LaTeX)."""
    u = unit(t.metric)
    lift_name = f"Lift {t.metric} ({u})" if u else f"Lift {t.metric}"
    pct = int(round(t.confidence * 100))
    header = ["Arm", "Val acc (%)", "Test acc (%)", f"{lift_name} [{pct}% CI]", "p (Holm)", ""]
    cumulative = t.design == "cumulative"
    if cumulative:
        header += [f"Step ({u}) [{pct}% CI]" if u else f"Step [{pct}% CI]", "p step (Holm)"]
    for col in extra_columns:
        header.append(EXTRA_COLUMNS[col][0])
    rows = []
    for r in t.frame.to_dict("records"):
        base = r["arm"] == 0
        cells = [r["label"], mean_std(r["val_mean"], r["val_std"], r["n"]),
                 mean_std(r["test_mean"], r["test_std"], r["n"]),
                 "reference" if base else ci_text(r["lift"], r["lift_low"], r["lift_high"]),
                 "" if base else p_text(r["p_holm"]),
                 "*" if (not base and r.get("significant")) else ""]
        if cumulative:
            cells += ["" if base else ci_text(r["step_lift"], r["step_low"], r["step_high"]),
                      "" if base else p_text(r.get("step_p_holm"))]
        for col in extra_columns:
            _, key, scale, digits = EXTRA_COLUMNS[col]
            v = r.get(key)
            cells.append(_num(v * scale, digits) if v is not None and not pd.isna(v) else "–")
        rows.append(cells)
    return header, rows


def footnotes(t: LiftTable, spec=None) -> list[str]:
    u = unit(t.metric) or "units"
    n = int(t.frame["n"].median()) if len(t.frame) else 0
    lines = []
    if spec is not None and spec.tricks:
        if getattr(spec, "trial", None) is not None:   # a command's tricks are its own flags
            lines.append("Codes: " + ", ".join(f"{s.code} = {k} ({s.params.model_dump(mode='json')})"
                                               for k, s in spec.tricks.items()) + ".")
        else:
            lines.append("Codes: " + ", ".join(f"{s.code} = {get_trick(s.use).title.lower()}"
                                               + (f" ({k})" if k != s.use else "")
                                               for k, s in spec.tricks.items()) + ".")
    test = "paired t-test" if t.test == "t" else "Wilcoxon signed-rank test"
    lines.append(
        f"Lift: mean of the paired per-seed differences vs the reference arm, {int(t.confidence * 100)}% t interval; "
        f"p: {test}, Holm-adjusted across the arms of its column (lifts and steps are separate families); "
        f"* = lift significant at 0.05. "
        f"Accuracies are final-epoch values: mean ± std (n seeds).")
    if not math.isnan(t.noise_floor):
        floor = (f"Noise floor: the reference arm's {t.metric} varies by {_num(t.noise_floor)} {u} (std) across seeds"
                 + (f"; with {n} seeds a lift must be about {_num(t.detectable_lift)} {u} to be detected "
                    f"(80% power, α = 0.05)." if not math.isnan(t.detectable_lift) else "."))
        lines.append(floor)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(t.status_counts.items()))
    lines.append(f"Trials: {counts}.")
    failures = [f"{r['label']}: {r['failures']}" for r in t.frame.to_dict("records") if r["n_failed"]]
    if failures:
        lines.append("Failed or diverged (counted, not averaged in): " + "; ".join(failures) + ".")
    lines += t.notes
    return lines


def markdown_table(header: list[str], rows: list[list[str]], *, align: list[str] | None = None) -> str:
    align = align or ([":--"] + ["--:"] * (len(header) - 1))
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def lift_markdown(t: LiftTable, spec=None, *, title: bool = True,
                  extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    header, rows = lift_rows(t, extra_columns=extra_columns)
    align = [":--", "--:", "--:", "--:", "--:", ":-:"] + ["--:"] * (len(header) - 6)
    parts = []
    if title:
        seeds = len(t.seeds)
        parts.append(f"## {t.experiment}: {t.design.replace('_', ' ')} design, {t.metric}, "
                     f"{seeds} seed{'s' if seeds != 1 else ''} per arm\n")
    parts.append(markdown_table(header, rows, align=align))
    parts.append("")
    parts += [f"- {line}" for line in footnotes(t, spec)]
    return "\n".join(parts) + "\n"


def effects_markdown(frame: pd.DataFrame, metric: str, confidence: float = 0.95) -> str:
    u = unit(metric)
    header = ["Term", f"Effect ({u}) [{int(confidence * 100)}% CI]" if u else "Effect", "p (Holm)", "", "Aliased with"]
    rows = [[r["term"], ci_text(r["estimate"], r["ci_low"], r["ci_high"]), p_text(r.get("p_holm")),
             "*" if r.get("significant") else "", r["aliases"] or ""] for r in frame.to_dict("records")]
    text = "### Effects (two-level factorial, OLS with seed blocks)\n\n"
    text += markdown_table(header, rows, align=[":--", "--:", "--:", ":-:", ":--"])
    text += ("\n\n- Effect: mean of the metric with the trick on minus with it off. Interaction A x B: half "
             "the difference between A's effect with B on and with B off. Aliased terms cannot be told "
             "apart by this design: the estimate is of their sum.\n")
    return text


def lift_csv(t: LiftTable) -> str:
    return t.frame.to_csv(index=False, float_format="%.6g")


def lift_json(t: LiftTable, effects: pd.DataFrame | None = None) -> str:
    def clean(df):
        return json.loads(df.replace({np.nan: None}).to_json(orient="records"))

    doc = {"experiment": t.experiment, "design": t.design, "metric": t.metric,
           "confidence": t.confidence, "test": t.test, "seeds": t.seeds,
           "noise_floor": None if math.isnan(t.noise_floor) else t.noise_floor,
           "detectable_lift": None if math.isnan(t.detectable_lift) else t.detectable_lift,
           "status_counts": t.status_counts, "notes": t.notes, "arms": clean(t.frame)}
    if effects is not None:
        doc["effects"] = clean(effects)
    return json.dumps(doc, indent=2)


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("−", "$-$"), ("–", "--"), ("<", r"$<$")):
        s = s.replace(a, b)
    return s


def lift_latex(t: LiftTable, *, extra_columns: tuple[str, ...] = DEFAULT_COLUMNS) -> str:
    header, rows = lift_rows(t, extra_columns=extra_columns)
    cols = "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{_tex(t.experiment)}: {_tex(t.design)} design, {len(t.seeds)} seeds per arm. "
              rf"Lift: paired mean difference with {int(t.confidence * 100)}\% CI; p Holm-adjusted.}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"
