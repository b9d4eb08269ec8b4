"""Build a report from the store and write its files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ablate.errors import ReportError
from ablate.design.plan import FACTORIAL_DESIGNS, Plan
from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS, FORMATS, frames, render
from ablate.report.frames import LiftTable
from ablate.run.logs import attempts

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store


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


def build_report(store: Store, experiment: str, *, confidence: float = 0.95, test: str = "t",
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
FILES = {"md": ("lift.md",), "csv": ("lift.csv", "effects.csv"), "json": ("report.json",), "latex": ("lift.tex",),
         "html": ("report.html",)}


def clear_earlier_writes(out: Path, written: list[Path]) -> list[Path]:
    """Record files another writer put in `out` as this write's and clear the earlier writes'
    files (see `ablate.report.files`). Returns the removed paths."""
    from ablate.report.files import ReportFolder

    folder = ReportFolder(out, [p.name for p in written])
    for p in written:
        folder.adopt(p.name)
    return folder.finish()


def write_report(report: Report, out_dir: str | Path, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
    """Write the report files into `out_dir` (plain files, never through a link) and clear the
    files of earlier report writes there that this one does not rewrite (`ablate.report.files`);
    returns the written paths."""
    from ablate.report.files import ReportFolder

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReportError(f"unknown report format(s) {', '.join(bad)}; allowed: {', '.join(FORMATS)}")
    if not formats:
        raise ReportError(f"no report format given; allowed: {', '.join(FORMATS)}")
    folder = ReportFolder(out_dir, [n for f in formats for n in FILES[f]])
    paths = []
    for fmt in formats:
        if fmt == "md":
            path = folder.write_text("lift.md", report.markdown())
        elif fmt == "csv":
            path = folder.write_text("lift.csv", render.lift_csv(report.lift))
            if report.effects is not None:
                paths.append(folder.write_text("effects.csv", report.effects.to_csv(index=False, float_format="%.6g")))
        elif fmt == "json":
            path = folder.write_text("report.json", render.lift_json(report.lift, report.effects, report.plan.spec))
        elif fmt == "latex":
            path = folder.write_text("lift.tex", render.lift_latex(report.lift, extra_columns=report.columns))
        else:
            from ablate.report.html import report_html

            path = folder.write_text("report.html", report_html(report))
        paths.append(path)
    folder.finish()
    return paths
