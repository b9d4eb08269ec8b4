"""Build a report from the store and write its files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ablate.errors import ReportError
from ablate.plan import FACTORIAL_DESIGNS, Plan
from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS, FORMATS, frames, render
from ablate.report.frames import LiftTable
from ablate.run.logs import attempts


@dataclass
class Report:
    plan: Plan
    outcomes: pd.DataFrame
    lift: LiftTable
    effects: pd.DataFrame | None
    curves: pd.DataFrame
    trials: pd.DataFrame
    columns: tuple[str, ...] = DEFAULT_COLUMNS   # optional lift-table columns
    failed_attempts: list = field(default_factory=list)   # every attempt of the failed trials (run.logs.Attempt)

    @property
    def name(self) -> str:
        return self.plan.spec.name

    def markdown(self) -> str:
        text = render.lift_markdown(self.lift, self.plan.spec, extra_columns=self.columns)
        if self.effects is not None and len(self.effects):
            text += "\n" + render.effects_markdown(self.effects, self.lift.metric, self.lift.confidence,
                                                    frames.effects_warning(self.plan))
        return text


def build_report(store, experiment: str, *, confidence: float = 0.95, test: str = "t",
                 columns: tuple[str, ...] = DEFAULT_COLUMNS, diverged: str = "worst") -> Report:
    p = frames.load_experiment(store, experiment)
    out = frames.outcomes(p, store.trials_frame(experiment))
    lift = frames.lift_table(p, out, confidence=confidence, test=test, diverged=diverged)
    effects = None
    if p.spec.design.kind in FACTORIAL_DESIGNS:
        try:
            effects = frames.effects_table(p, out, confidence=confidence, diverged=diverged)
        except ReportError as exc:
            lift.notes.append(f"No effects table: {exc}")
    curves = frames.curves(p, out, store.epochs_frame(experiment))
    bad = [c for c in columns if c not in EXTRA_COLUMNS]
    if bad:
        raise ReportError(f"unknown column(s) {', '.join(bad)}; allowed: {', '.join(EXTRA_COLUMNS)}")
    failed = set(out.loc[out["status"] == "failed", "trial_id"])
    tries = attempts(store, experiment, failed) if failed else []
    return Report(p, out, lift, effects, curves, frames.trial_table(out), tuple(columns), tries)


MANIFEST = ".ablate-report.json"


def clear_earlier_writes(out: Path, written: list[Path]) -> list[Path]:
    """Remove the files an earlier ablate write listed in `out`'s manifest that this write did
    not rewrite (e.g. effects.csv of a factorial design after the spec became cumulative), then
    record this write's files. Only files ablate wrote are touched, never a user's own.
    Returns the removed paths."""
    manifest = out / MANIFEST
    names = {p.name for p in written}
    removed = []
    try:
        earlier = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        earlier = []   # no manifest (first write) or an unreadable one: remove nothing
    for name in earlier:
        # names only, no paths: a tampered manifest cannot reach outside the folder
        if isinstance(name, str) and name == Path(name).name and name not in names and name != MANIFEST:
            stale = out / name
            if stale.is_file():
                stale.unlink()
                removed.append(stale)
    manifest.write_text(json.dumps({"written_by": "ablate report", "files": sorted(names)}, indent=1),
                        encoding="utf-8")
    return removed


def write_report(report: Report, out_dir: str | Path, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
    """Write the report files into `out_dir` and clear the files of earlier report writes there
    that this one does not rewrite (see `clear_earlier_writes`); returns the written paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReportError(f"unknown report format(s) {', '.join(bad)}; allowed: {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt == "md":
            path = out / "lift.md"
            path.write_text(report.markdown(), encoding="utf-8")
        elif fmt == "csv":
            path = out / "lift.csv"
            path.write_text(render.lift_csv(report.lift), encoding="utf-8")
            if report.effects is not None:
                eff = out / "effects.csv"
                eff.write_text(report.effects.to_csv(index=False, float_format="%.6g"), encoding="utf-8")
                paths.append(eff)
        elif fmt == "json":
            path = out / "report.json"
            path.write_text(render.lift_json(report.lift, report.effects, report.plan.spec), encoding="utf-8")
        elif fmt == "latex":
            path = out / "lift.tex"
            path.write_text(render.lift_latex(report.lift, extra_columns=report.columns), encoding="utf-8")
        else:
            from ablate.report.html import report_html

            path = out / "report.html"
            path.write_text(report_html(report), encoding="utf-8")
        paths.append(path)
    clear_earlier_writes(out, paths)
    return paths
