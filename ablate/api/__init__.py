"""The public API: the library behind every `ablate` command (the CLI parses, calls these, prints).

Docstrings follow the Google style (Args, Returns, Raises, Example). Every error a user can
cause is an `ablate.AblateError` subclass (`SpecError`, `StoreError`, `ReportError`, ...), never
SystemExit; the CLI maps them to exit codes.

The design/search split lives in one place: `kind_of(spec)` (`ablate.api.kinds`) is the only place
that asks whether a spec is a search, and returns the object (`DESIGN` or `SEARCH`) whose methods
do what differs. The modules: `specs` (load, plan, estimate), `stores`, `running` (the checks
before a run, the run, its result), `results` (status, frames, reports) and `commands` (tricks,
models, lr-find, NNI import, logs, export).

Heavy modules (torch, pandas, optuna) load inside the functions that need them, so that
`import ablate` and the command line's start stay fast.

Example:
    >>> import ablate
    >>> result = ablate.run("quickstart", store="ablate.db")   # doctest: +SKIP
    >>> result.lift                                            # doctest: +SKIP
"""

from __future__ import annotations

from ablate.api.commands import LrFind, export, import_nni, logs, lr_find, models, tricks
from ablate.api.kinds import DESIGN, SEARCH, kind_of
from ablate.api.results import (ExperimentState, build_report, effects, epochs, experiment_state, finalists,
                                lift_table, report_folder, status, trials, write_report)
from ablate.api.running import (Interrupted, PreparedRun, RunResult, console_progress, executor, final_counts,
                                finish_run, prepare_run, run, run_experiment)
from ablate.api.specs import Estimate, estimate, load_spec, load_spec_and_notes, plan, plan_text
from ablate.api.stores import default_store, load_experiment, open_store

__all__ = [
    "kind_of", "DESIGN", "SEARCH", "load_spec", "load_spec_and_notes", "plan", "plan_text", "Estimate",
    "estimate", "default_store", "open_store", "load_experiment", "Interrupted", "RunResult", "PreparedRun",
    "prepare_run", "run", "run_experiment", "executor", "finish_run", "final_counts", "console_progress",
    "ExperimentState", "experiment_state", "status", "trials", "epochs", "lift_table", "effects",
    "finalists", "report_folder", "build_report", "write_report", "tricks", "models", "LrFind", "lr_find",
    "import_nni", "logs", "export",
]
