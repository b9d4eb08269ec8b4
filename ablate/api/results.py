"""Results: status, tidy frames (trials, epochs, lift table, effects, finalists) and reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.api.kinds import DESIGN, SEARCH, ExperimentState, kind_of
from ablate.api.stores import as_store, load_experiment
from ablate.errors import ReportError

if TYPE_CHECKING:
    import pandas as pd

    from ablate.report.build import Report
    from ablate.report.compare import Comparison
    from ablate.report.search import SearchReport
    from ablate.store import Store


def report_folder(experiment: str, out: str | os.PathLike | None = None, *, check: bool = False) -> Path:
    """Where a report goes: `out`, else reports/<experiment>. `check`: raise ReportError now if
    it cannot be written (a file or a link there), before a report is built or printed."""
    folder = Path(out) if out is not None else Path("reports") / experiment
    if check:
        from ablate.report.files import ReportFolder

        ReportFolder(folder, (), create=False)
    return folder


def experiment_state(store: Store | str | os.PathLike | None, experiment: str) -> ExperimentState:
    """The `ExperimentState` of a stored experiment (ReportError when there is none of that name)."""
    from ablate.runner.logs import gone_drivers

    store = as_store(store)
    p = load_experiment(store, experiment)
    frame = store.trials_frame(experiment)
    current = kind_of(p.spec).current(p, frame)
    gone = gone_drivers(store, experiment, current.loc[current["status"] == "running", "trial_id"])
    return ExperimentState(experiment, p, frame, current, gone, len(frame) - len(current))


STATUSES = ("complete", "failed", "diverged", "pruned", "running", "pending")


def status(store: Store | str | os.PathLike | None = None, experiments: str | Sequence[str] | None = None
           ) -> pd.DataFrame:
    """Trial counts per experiment (what ``ablate status`` prints).

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiments: a name or names (None: every experiment in the store).

    Returns:
        One row per experiment: ``experiment``, ``kind`` (the design's kind, or ``search``),
        ``trials`` (of the current spec), one column per status (complete, failed, diverged,
        pruned, running, pending), ``driver_gone`` (running trials whose driver is gone) and
        ``earlier`` (trials of earlier versions of the spec, not reported).

    Raises:
        StoreError: the store cannot be opened. ReportError: an unknown experiment.

    Example:
        >>> ablate.status("ablate.db")  # doctest: +SKIP
    """
    import pandas as pd

    store = as_store(store)
    names = _names(experiments) if experiments is not None else store.experiment_names()
    rows = []
    for name in names:
        st = experiment_state(store, name)
        counts = st.current["status"].value_counts().to_dict()
        spec = st.plan.spec
        rows.append({"experiment": name, "kind": "search" if kind_of(spec).is_search else spec.design.kind,
                     "trials": len(st.current), **{s: int(counts.get(s, 0)) for s in STATUSES},
                     "driver_gone": len(st.gone), "earlier": st.earlier})
    columns = ["experiment", "kind", "trials", *STATUSES, "driver_gone", "earlier"]
    return pd.DataFrame(rows, columns=columns)


def _names(experiments: str | Sequence[str]) -> list[str]:
    if isinstance(experiments, str):
        return [experiments]
    names = list(experiments)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ReportError(f"experiments are named by strings, got {bad[0]!r}")
    return names


def trials(store: Store | str | os.PathLike | None, experiment: str) -> pd.DataFrame:
    """The trials of an experiment's current spec (a search's: every trial).

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiment: the experiment's name.

    Returns:
        One row per trial: id, arm, label, seed, status, metrics, times, failure kind and error.

    Raises:
        StoreError: the store cannot be opened. ReportError: no such experiment.

    Example:
        >>> ablate.trials("ablate.db", "quickstart")  # doctest: +SKIP
    """
    return experiment_state(store, experiment).current


def epochs(store: Store | str | os.PathLike | None, experiment: str) -> pd.DataFrame:
    """Every epoch of every trial of an experiment.

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiment: the experiment's name.

    Returns:
        One row per trial and epoch: trial id, epoch, losses, metrics (the learning curves).

    Raises:
        StoreError: the store cannot be opened. ReportError: no such experiment.

    Example:
        >>> ablate.epochs("ablate.db", "quickstart").groupby("trial_id").size()  # doctest: +SKIP
    """
    store = as_store(store)
    load_experiment(store, experiment)
    return store.epochs_frame(experiment)


def lift_table(store: Store | str | os.PathLike | None, experiment: str, *, test: str = "t",
               confidence: float = 0.95, diverged: str = "worst") -> pd.DataFrame:
    """The lift table of an experiment: one row per arm, the mean metric over seeds, the lift
    over the reference arm paired on seeds with its CI, p-value and Holm-adjusted p-value.

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiment: the experiment's name.
        test: ``t`` (paired t), ``wilcoxon`` (signed-rank) or ``permutation`` (exact sign-flip).
        confidence: the CI level, in (0, 1).
        diverged: ``worst`` (a diverged seed scores the metric's worst value) or ``exclude``.

    Returns:
        The table as a DataFrame (a search's: the per-arm lift table of its tuned arms).

    Raises:
        ReportError: no such experiment, no complete trials, no baseline, bad options.

    Example:
        >>> ablate.lift_table("ablate.db", "quickstart", test="wilcoxon")  # doctest: +SKIP
    """
    store = as_store(store)
    p = load_experiment(store, experiment)
    return kind_of(p.spec).lift(store, p, confidence=confidence, test=test, diverged=diverged).frame


def effects(store: Store | str | os.PathLike | None, experiment: str, *, confidence: float = 0.95,
            max_order: int = 2, diverged: str = "worst") -> pd.DataFrame:
    """The main effects and interactions of a factorial design, with CIs.

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiment: the experiment's name.
        confidence: the CI level, in (0, 1).
        max_order: the highest interaction order (2: two-trick interactions).
        diverged: ``worst`` or ``exclude``, as `lift_table`.

    Returns:
        One row per term (a trick, or tricks joined by ``:``): the effect, its CI and p-value.

    Raises:
        ReportError: no such experiment, or a design that is not factorial (full or fractional).

    Example:
        >>> ablate.effects("ablate.db", "cifar10_augmentation_factorial")  # doctest: +SKIP
    """
    from ablate.design.plan import FACTORIAL_DESIGNS
    from ablate.report.frames import effects_table

    store = as_store(store)
    p = load_experiment(store, experiment)
    kind = "search" if kind_of(p.spec).is_search else p.spec.design.kind
    if kind not in FACTORIAL_DESIGNS:
        raise ReportError(f"experiment '{experiment}' is a {kind} design; effects need a factorial design "
                          f"({', '.join(FACTORIAL_DESIGNS)})")
    return effects_table(p, DESIGN.current(p, store.trials_frame(experiment)), confidence=confidence,
                         max_order=max_order, diverged=diverged)


def finalists(store: Store | str | os.PathLike | None, experiment: str, *, confidence: float = 0.95,
              test: str = "t") -> pd.DataFrame:
    """A search's finalists, per searched arm: their values, search value, selection score and,
    for the winner, runner-up and hand-picked values, mean and CI over the report seeds.

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiment: the search's name.
        confidence: the CI level, in (0, 1). test: the paired test, as `lift_table`.

    Returns:
        One row per finalist, with an ``arm`` column (the searched arm).

    Raises:
        ReportError: no such experiment, or one that is not a search.

    Example:
        >>> ablate.finalists("ablate.db", "digits_search")  # doctest: +SKIP
    """
    import pandas as pd

    store = as_store(store)
    p = load_experiment(store, experiment)
    if not kind_of(p.spec).is_search:
        raise ReportError(f"experiment '{experiment}' is a {p.spec.design.kind} design, not a search; "
                          f"finalists are a search's (the lift table is a design's: ablate.lift_table)")
    report = SEARCH.build_report(store, p, confidence=confidence, test=test, diverged="worst", columns=())
    tables = [f.table.assign(arm=f.arm) for f in report.finalists if len(f.table)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def build_report(store: Store | str | os.PathLike | None, experiments: str | Sequence[str], *, test: str = "t",
                 confidence: float = 0.95, diverged: str = "worst", columns: Sequence[str] | None = None,
                 compare: bool = False) -> Report | SearchReport | Comparison:
    """Build the report of one experiment (a design's lift table and effects, or a search's
    finalists), or with `compare` the side-by-side report of several.

    Args:
        store: a `Store`, or a path/URL (None: $ABLATE_STORE, else ablate.db).
        experiments: a name, or names (several need ``compare=True``).
        test: as `lift_table`.
        confidence: as `lift_table`.
        diverged: as `lift_table`.
        compare: one side-by-side report of the experiments (the same tricks on other models or data).
        columns: optional lift-table columns (params, gflops, memory, time, top5; None: params, time).

    Returns:
        A report: ``.markdown()``, ``.write(out, formats)``; a design's ``.lift.frame`` is its lift table.

    Raises:
        StoreError, ReportError: as `lift_table`.

    Example:
        >>> report = ablate.build_report("ablate.db", "quickstart")  # doctest: +SKIP
        >>> print(report.markdown())  # doctest: +SKIP
    """
    from ablate.report import DEFAULT_COLUMNS

    columns = tuple(DEFAULT_COLUMNS if columns is None else columns)
    store = as_store(store)
    names = _names(experiments)
    if compare:
        from ablate.report.build import build_report as build_design
        from ablate.report.compare import Comparison

        return Comparison([build_design(store, n, confidence=confidence, test=test, columns=columns,
                                        diverged=diverged) for n in names])
    if len(names) != 1:
        raise ReportError(f"give one experiment, or compare=True to put {len(names)} side by side; got "
                          f"{', '.join(names) or 'none'}")
    p = load_experiment(store, names[0])
    return kind_of(p.spec).build_report(store, p, confidence=confidence, test=test, diverged=diverged,
                                        columns=columns)


def write_report(report: Report | SearchReport | Comparison, out: str | os.PathLike, formats: Sequence[str] = ("md", "csv", "html")) -> list[Path]:
    """Write a report's files into the folder `out` (made if absent; plain files, never through a
    link; earlier report files there that this write does not rewrite are removed).

    Args:
        report: what `build_report` returned.
        out: the folder.
        formats: any of md, csv, json, html, latex.

    Returns:
        The written paths.

    Raises:
        ReportError: an unknown format. AblateError: `out` cannot be written (a file, a link).

    Example:
        >>> ablate.write_report(report, "reports/quickstart", formats=("md", "html"))  # doctest: +SKIP
    """
    if isinstance(formats, str):
        formats = [formats]
    return report.write(out, tuple(formats))
