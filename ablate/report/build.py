"""Build a report from the store and write its files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ablate.errors import ReportError
from ablate.design.plan import FACTORIAL_DESIGNS, Plan
from ablate.report import DEFAULT_COLUMNS, EXTRA_COLUMNS, FORMATS, frames, render
from ablate.report.frames import LiftTable
from ablate.report.protocol import write_files
from ablate.runner.logs import attempts

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store


MANIFEST = ".ablate-report.json"
FILES = {"md": ("lift.md",), "csv": ("lift.csv", "effects.csv"), "json": ("report.json",), "latex": ("lift.tex",),
         "html": ("report.html",)}


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

    FILES = FILES

    def format_error(self, bad: list[str]) -> str:
        return f"unknown report format(s) {', '.join(bad)}; allowed: {', '.join(FORMATS)}"

    def files(self, fmt: str) -> list:
        """The report protocol (`ablate.report.protocol`): the files of one format."""
        if fmt == "md":
            return [("lift.md", self.markdown)]
        if fmt == "csv":
            made = [("lift.csv", lambda: render.lift_csv(self.lift))]
            if self.effects is not None:
                made.append(("effects.csv", lambda: self.effects.to_csv(index=False, float_format="%.6g")))
            return made
        if fmt == "json":
            return [("report.json", lambda: render.lift_json(self.lift, self.effects, self.plan.spec))]
        if fmt == "latex":
            return [("lift.tex", lambda: render.lift_latex(self.lift, extra_columns=self.columns))]
        from ablate.report.html import report_html

        return [("report.html", lambda: report_html(self))]

    def write(self, out_dir: str | Path, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
        """Write the files of `formats` into `out_dir` (`ablate.report.protocol.write_files`)."""
        return write_files(self, out_dir, formats)


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




def write_report(report: Report, out_dir: str | Path, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
    """Write the report files into `out_dir` (`ablate.report.protocol.write_files`); returns the written paths."""
    return write_files(report, out_dir, formats)
