"""The public API: the library behind every `ablate` command (the CLI parses, calls these, prints).

Docstrings follow the Google style (Args, Returns, Raises, Example). Every error a user can
cause is an `ablate.AblateError` subclass (`SpecError`, `StoreError`, `ReportError`, ...), never
SystemExit; the CLI maps them to exit codes.

The design/search split lives here once: `kind_of(spec)` is the only place that asks whether a
spec is a search, and returns the object (`DESIGN` or `SEARCH`) whose methods do what differs.

Heavy modules (torch, pandas, optuna) load inside the functions that need them, so that
`import ablate` and the command line's start stay fast.

Example:
    >>> import ablate
    >>> result = ablate.run("quickstart", store="ablate.db")   # doctest: +SKIP
    >>> result.lift                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError, MetricNotReported, ReportError, SpecError, StoreError

if TYPE_CHECKING:
    import pandas as pd

    from ablate.design.plan import Plan
    from ablate.runner.engine import RunSummary
    from ablate.runner.events import Executor
    from ablate.runner.progress import Progress
    from ablate.report.build import Report
    from ablate.report.compare import Comparison
    from ablate.report.search import SearchReport
    from ablate.design.spec import Spec
    from ablate.export.to_mlflow import MlflowExport
    from ablate.export.to_tensorboard import TensorBoardExport
    from ablate.nni.convert import Conversion
    from ablate.store import Store


class Interrupted(AblateError):
    """A run stopped by Ctrl-C or SIGTERM; finished trials are kept (the CLI exits 130)."""


# -- the one design/search dispatch -----------------------------------------------------------

class _Design:
    """What a design (the arms of a plan, each on every seed) does where a search differs."""

    is_search = False

    def plan_text(self, p: Plan) -> tuple[str, int | None]:
        return p.describe(), len(p.trials)

    def current(self, p: Plan, frame: pd.DataFrame) -> pd.DataFrame:
        """The stored trials of the spec as it is now (earlier versions' trials left out)."""
        from ablate.results import outcomes

        return outcomes(p, frame)

    def default_jobs(self, spec: Spec) -> int:
        return 1

    def search_line(self, spec: Spec):
        return None

    def run(self, p: Plan, store: Store, executor: Executor, summary: RunSummary, *, progress, source, lease_s,
            jobs, early_stop) -> None:
        from ablate.runner.engine import Engine
        from ablate.runner.sources import AdaptiveSeedSource, DesignSource

        spec = p.spec
        trials = AdaptiveSeedSource(p) if spec.seeds.adaptive is not None else DesignSource(p.trials)
        engine = Engine(store, spec.name, executor, retries=spec.retries, progress=progress, pruner=early_stop,
                        metric=spec.metric.name, metric_source=source or f"spec '{spec.name}'", lease_s=lease_s)
        engine.run(trials, summary)

    def after_retry(self, p: Plan, store: Store, put: list[str]) -> None:
        pass

    def build_report(self, store: Store, p: Plan, *, confidence: float, test: str, diverged: str, columns):
        from ablate.report.build import build_report

        return build_report(store, p.spec.name, confidence=confidence, test=test, columns=tuple(columns),
                            diverged=diverged)

    def lift(self, store: Store, p: Plan, *, confidence: float, test: str, diverged: str):
        from ablate.report.frames import lift_table

        return lift_table(p, self.current(p, store.trials_frame(p.spec.name)), confidence=confidence, test=test,
                          diverged=diverged)

    def status_text(self, store: Store, state: ExperimentState) -> str:
        c = state.current["status"].value_counts().to_dict()
        parts = ", ".join(f"{n} {s}" for s, n in sorted(c.items())) or "no trials"
        if state.gone:
            parts += f" ({len(state.gone)} of them running with their driver gone)"
        older = f"; {state.earlier} more from earlier versions of its spec, not reported" if state.earlier else ""
        return f"{state.name}: {len(state.current)} trials ({parts}){older}"


class _Search(_Design):
    """What a search (Optuna studies, then validation stages) does where a design differs."""

    is_search = True

    def plan_text(self, p: Plan) -> tuple[str, int | None]:
        from ablate.search.progress import search_plan

        return search_plan(p)   # None: a timeout bounds the search, not a trial count

    def current(self, p: Plan, frame: pd.DataFrame) -> pd.DataFrame:
        return frame            # every stored trial of a search is its own

    def default_jobs(self, spec: Spec) -> int:
        return spec.search.jobs

    def search_line(self, spec: Spec):
        from ablate.console import SearchLine
        from ablate.config.search import search_metrics

        first = search_metrics(spec)[0]
        return SearchLine(spec.search.n_trials, first.name, first.direction)

    def run(self, p: Plan, store: Store, executor: Executor, summary: RunSummary, *, progress, source, lease_s,
            jobs, early_stop) -> None:
        from ablate.search.runner import run_search

        run_search(p, store, executor, summary=summary, progress=progress, source=source, lease_s=lease_s, jobs=jobs,
                   early_stop=early_stop)

    def after_retry(self, p: Plan, store: Store, put: list[str]) -> None:
        from ablate.search.retry import retry_failed_study_trials

        retry_failed_study_trials(p, store, put)      # a searched trial's values are asked again

    def build_report(self, store: Store, p: Plan, *, confidence: float, test: str, diverged: str, columns):
        from ablate.report.search import build_search_report

        return build_search_report(store, p, confidence=confidence, test=test, diverged=diverged)

    def lift(self, store: Store, p: Plan, *, confidence: float, test: str, diverged: str):
        report = self.build_report(store, p, confidence=confidence, test=test, diverged=diverged, columns=())
        if report.lift is None:
            why = "; ".join(report.notes) or "the search is not per_arm (one study: no arms to compare)"
            raise ReportError(f"experiment '{p.spec.name}' has no lift table: {why}")
        return report.lift

    def status_text(self, store: Store, state: ExperimentState) -> str:
        from ablate.search.progress import search_status

        return search_status(store, state.plan)


DESIGN, SEARCH = _Design(), _Search()


def kind_of(spec: Spec) -> _Design:
    """`SEARCH` for a spec with a `search:` section, else `DESIGN`: the one place that asks."""
    return SEARCH if spec.search is not None else DESIGN


# -- specs and plans --------------------------------------------------------------------------

def load_spec_and_notes(source: str | os.PathLike | Mapping | Spec, *, overrides: Sequence[str] = (),
                        shrink: bool = False, check_files: bool = True) -> tuple[Spec, list[str]]:
    """`load_spec`, also returning the notes of an NNI config's conversion (empty otherwise)."""
    from ablate.design.shrink import apply_overrides, load_run_spec, shrink_spec
    from ablate.design.spec import Spec, spec_from_dict

    if isinstance(overrides, str):
        raise SpecError(f"overrides must be a list of 'KEY=VALUE' strings, got the string {overrides!r}; "
                        f"write overrides=[{overrides!r}]")
    if isinstance(source, (Spec, Mapping)):
        spec = source if isinstance(source, Spec) else spec_from_dict(dict(source), source="<dict>",
                                                                     check_files=False)
        spec = apply_overrides(spec, overrides, source="<dict>") if overrides else spec
        spec = shrink_spec(spec) if shrink else spec
        if check_files and spec.trial is None:
            from ablate.data import check_data

            check_data(spec.data)
        return spec, []
    if not isinstance(source, (str, os.PathLike)):
        raise SpecError(f"a spec is a path, the name of a spec in search_spaces/, a dict or a Spec; got a "
                        f"{type(source).__name__}")
    if isinstance(source, str) and "\n" in source:
        raise SpecError("a spec given as a string is a path or a name in search_spaces/, not YAML text; "
                        "for YAML text pass yaml.safe_load(text) (a dict)")
    from ablate.nni import load_spec_or_nni

    notes: list[str] = []

    def load(path, *, check_files: bool = True):
        spec, said = load_spec_or_nni(path, check_files=check_files)
        notes.extend(said)
        return spec

    spec = load_run_spec(source, overrides=overrides, shrink=shrink, check_files=check_files, load=load)
    return spec, notes


def load_spec(source: str | os.PathLike | Mapping | Spec, *, overrides: Sequence[str] = (),
              shrink: bool = False) -> Spec:
    """Load and validate a spec.

    Args:
        source: a YAML file's path, the name of a spec in search_spaces/ (``"quickstart"``), an
            NNI experiment config (converted), a dict of the spec's sections, or a `Spec`. A string
            is a path or a name, never YAML text.
        overrides: ``"KEY=VALUE"`` edits applied in order, as ``ablate run --override``
            (``"recipe.epochs=1"``, ``"tricks.mixup.alpha=0.4"``).
        shrink: toy scale on the CPU, as ``ablate run --shrink`` (experiment ``<name>-shrunk``).

    Returns:
        The validated `Spec`.

    Raises:
        SpecError: the file is missing, not YAML, or a field is invalid (the message names the
            file, line and field). DataError: the spec's data files are absent.

    Example:
        >>> spec = ablate.load_spec("quickstart", overrides=["recipe.epochs=1"])  # doctest: +SKIP
    """
    return load_spec_and_notes(source, overrides=overrides, shrink=shrink)[0]


def _spec(spec_or_source, *, check_files: bool = True) -> Spec:
    from ablate.design.spec import Spec

    if isinstance(spec_or_source, Spec):
        return spec_or_source
    return load_spec_and_notes(spec_or_source, check_files=check_files)[0]


def plan(spec: Spec | str | os.PathLike | Mapping) -> Plan:
    """The arms and trials of a spec (what ``ablate plan`` prints), running nothing.

    Args:
        spec: a `Spec`, or anything `load_spec` takes (data files are not checked).

    Returns:
        The `Plan`: ``.arms``, ``.trials``, ``.seeds``, ``.describe()`` (arms, aliasing).

    Raises:
        SpecError: as `load_spec`. DesignError: a design that cannot be built.

    Example:
        >>> len(ablate.plan("quickstart").trials)  # doctest: +SKIP
    """
    from ablate.design.plan import plan as make_plan

    return make_plan(_spec(spec, check_files=False))


def plan_text(p: Plan) -> tuple[str, int | None]:
    """What ``ablate plan`` prints about a plan, and the most trials it runs (None: a timeout bounds it)."""
    return kind_of(p.spec).plan_text(p)


# -- stores -----------------------------------------------------------------------------------

def default_store() -> str:
    """The store when none is given: $ABLATE_STORE, else ablate.db (read at each call)."""
    return os.environ.get("ABLATE_STORE") or "ablate.db"


def open_store(url: str | os.PathLike | None = None, *, create: bool = False) -> Store:
    """Open a store.

    Args:
        url: a SQLite path or a SQLAlchemy URL (``postgresql://...``); None: $ABLATE_STORE, else
            ablate.db.
        create: make the store (and its folders) when it does not exist.

    Returns:
        The `Store`; ``.label`` names it in messages (a URL without its password).

    Raises:
        StoreError: absent (without `create`), not an ablate database, unreachable, or a URL
            ablate cannot use.

    Example:
        >>> store = ablate.open_store("ablate.db")  # doctest: +SKIP
    """
    if url is not None and not isinstance(url, (str, os.PathLike)):
        raise StoreError(f"a store is a SQLite path or a SQLAlchemy URL string, got a {type(url).__name__}")
    target = default_store() if url is None else os.fspath(url)
    if not target.strip():
        raise StoreError("a store is a SQLite path or a SQLAlchemy URL; got an empty string")
    if create:
        return _create_store(target)[0]
    from ablate.store import Store

    return Store(target, create=False)


def _create_store(target: str) -> tuple[Store, str | None]:
    """The store at `target`, made if absent; and a note when it is new (which folders are made)."""
    from ablate.preflight import prepare_store_path
    from ablate.store import Store

    new_store = prepare_store_path(target)
    try:
        return Store(target, create=True), new_store
    except OSError as exc:
        from ablate.store_engine import display_name

        raise StoreError(f"cannot create store '{display_name(target)}': {exc}") from None


def _store(store: Store | str | os.PathLike | None) -> Store:
    from ablate.store import Store

    return store if isinstance(store, Store) else open_store(store)


def load_experiment(store: Store | str | os.PathLike | None, experiment: str) -> Plan:
    """The plan of a stored experiment, from the spec saved with it.

    Raises:
        ReportError: no experiment of that name in the store (the message lists those there).
    """
    from ablate.report.frames import load_experiment as load

    if not isinstance(experiment, str):
        raise ReportError(f"an experiment is named by a string, got a {type(experiment).__name__}")
    return load(_store(store), experiment)


# -- running ----------------------------------------------------------------------------------

def executor(spec: Spec, *, store_target, device: str | None = None, source: str | None = None, jobs: int = 1,
             fuse: str | None = None, runner: str = "local", address: str | None = None) -> Executor:
    """The executor a run of `spec` uses (see `ablate.runner.experiment.executor_for`), its weights
    folder beside the store."""
    from ablate.runner.paths import weights_root_for
    from ablate.runner.experiment import executor_for

    return executor_for(spec, device=device, source=source, jobs=jobs, fuse=fuse, runner=runner, address=address,
                        weights_root=weights_root_for(store_target))


def run_experiment(spec: Spec, store: Store, *, source: str | None = None, progress: Progress | None = None,
                   device: str | None = None, executor: Executor | None = None,
                   lease_s: float = 60.0, jobs: int = 1, fuse: str | None = None) -> tuple[Plan, RunSummary]:
    """Save the spec, run every planned trial the store lacks, then adaptive rounds if asked
    (the run step of `run`, without its checks).

    Bad input the executor can see (a command or folder that does not exist) is refused before
    anything is written."""
    from ablate.design.plan import plan as make_plan
    from ablate.runner.early_stop import local_early_stop
    from ablate.runner.engine import RunSummary
    from ablate.design.spec import spec_to_dict

    p = make_plan(spec)
    if executor is None:
        from ablate.runner.paths import weights_root_for
        from ablate.runner.experiment import executor_for

        executor = executor_for(spec, device=device, source=source, jobs=jobs, weights_root=weights_root_for(store),
                                fuse=fuse)
    executor.check(p.trials)
    # no sort_keys: the order of tricks is the order of a cumulative design
    text = json.dumps(spec_to_dict(spec))
    before = store.experiment(spec.name)
    store.save_experiment(spec.name, text, source)
    summary = RunSummary()
    kind = kind_of(spec)
    if before is not None and not kind.is_search and not _same_spec(before["spec"], text):
        ids = {p.trial_id(a.index, s) for a in p.arms for s in set(store.trial_seeds(spec.name)) | set(p.seeds)}
        stale = sum(1 for tid in store.trial_statuses(spec.name) if tid not in ids)
        summary.notes.append(
            f"the spec of '{spec.name}' changed since it was last run; {stale} stored trial(s) of the old "
            f"version are kept in the store but not reported (unchanged trials are reused)")
    # `early_stop:` on the local runners (Ray runs Tune's ASHA itself): one for the whole run
    kind.run(p, store, executor, summary, progress=progress, source=source, lease_s=lease_s, jobs=jobs,
             early_stop=local_early_stop(spec, executor))
    return p, summary


def _same_spec(stored: str, text: str) -> bool:
    """Whether a stored spec is this one, also when an older ablate wrote it with fewer keys."""
    from ablate.design.spec import spec_from_dict, spec_to_dict

    if stored == text:
        return True
    try:
        return json.dumps(spec_to_dict(spec_from_dict(json.loads(stored), check_files=False))) == text
    except (AblateError, ValueError):
        return False



@dataclass
class PreparedRun:
    """A run checked and ready (`prepare_run`): the store is open, the spec recorded nowhere yet.

    The lines of text are what ``ablate run`` prints before the trials start."""

    spec: Spec
    store: Store
    executor: Executor
    source: str | None
    device: str | None
    jobs: int
    new_store: str | None = None     # "new store at PATH" when this run made it
    replaced: str | None = None      # what --replace deleted
    jobs_note: str | None = None     # why fewer trials run at once than asked
    retried: str | None = None       # what --retry-failed put back to pending

    def execute(self, progress: Progress | None = None) -> RunResult:
        """Run the trials the store lacks; counts, but no report (see `RunResult`).

        Raises:
            Interrupted: Ctrl-C or SIGTERM; finished trials are kept.
        """
        start = time.perf_counter()
        try:
            p, summary = run_experiment(self.spec, self.store, source=self.source, progress=progress,
                                        device=self.device, jobs=self.jobs, executor=self.executor)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted after {_fmt_s(time.perf_counter() - start)}: finished trials are "
                              f"kept in {self.store.label}; run the same command again to finish the "
                              f"rest.") from None
        except MetricNotReported as exc:
            from ablate.design.plan import plan as make_plan

            return RunResult(self.spec.name, make_plan(self.spec), self.store, None,
                             elapsed_s=time.perf_counter() - start, error=exc)
        failed, complete = final_counts(self.store, p)
        return RunResult(self.spec.name, p, self.store, summary, failed=failed, complete=complete,
                         elapsed_s=time.perf_counter() - start)


@dataclass
class RunResult:
    """What a run did.

    Attributes:
        experiment: the experiment's name. plan: its `Plan`. store: the `Store` it ran into.
        summary: the engine's `RunSummary` (``.describe()``); None when `error` stopped it.
        failed: trials of the spec failed after their retries. complete: trials complete.
        elapsed_s: seconds the trials took. error: a `MetricNotReported` that stopped the run.
        report: the built report (None with ``report=False``, or no trial complete).
        report_note: why there is no report when trials failed (e.g. the baseline's).
        paths: the report files written.
    """

    experiment: str
    plan: Plan
    store: Store
    summary: RunSummary | None
    failed: int = 0
    complete: int = 0
    elapsed_s: float = 0.0
    error: MetricNotReported | None = None
    report: Any = None
    report_note: str | None = None
    paths: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every trial that ran is final and none failed."""
        return self.error is None and not self.failed

    @property
    def exit_code(self) -> int:
        """``ablate run``'s exit code: 0 ok, 3 trials failed (or did not report the metric)."""
        return 0 if self.ok else 3

    @property
    def lift(self) -> pd.DataFrame | None:
        """The lift table (one row per arm) of the report, None without one."""
        table = getattr(self.report, "lift", None)
        return None if table is None else table.frame


def prepare_run(spec: Spec, *, store: str | os.PathLike | None = None, source: str | None = None,
                runner: str = "local", address: str | None = None, jobs: int | None = None,
                device: str | None = None, fuse: str | None = None, replace: bool = False,
                retry_failed: bool = False, out: str | os.PathLike | None = None,
                report: bool = True) -> PreparedRun:
    """Every check ``ablate run`` makes before a trial starts, in its order: device, data
    files, distillation teachers, the executor (its command, the Ray cluster), the report
    folder, the store (made if absent), the spec against the stored one (`replace`), then
    `retry_failed`. Nothing is written until the checks before the store have passed.

    Raises:
        AblateError: any check that fails (SpecError, DataError, StoreError, ...).
    """
    from ablate.preflight import check_device, check_spec_change

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise AblateError(f"jobs must be an integer >= 1, got {jobs!r}")
    if fuse not in (None, "auto", "on", "off"):
        raise AblateError(f"fuse must be auto, on or off, got {fuse!r}")
    target = default_store() if store is None else os.fspath(store)
    check_device(device)
    if spec.trial is None:
        from ablate.data import load_data

        load_data(spec.data)   # the first trial's data: a broken file fails here, not in trial 1
        _check_teachers(spec, target)
    jobs = jobs or kind_of(spec).default_jobs(spec)
    ex = executor(spec, store_target=target, device=device, source=source, jobs=jobs, fuse=fuse, runner=runner,
                  address=address)
    ex.check(())   # a bad command, an unreachable Ray cluster: refused, no store written
    if report:     # a report folder that cannot be written fails now, not after the run
        from ablate.report.files import ReportFolder

        ReportFolder(report_folder(spec.name, out), (), create=False)
    opened, new_store = _create_store(target)
    replaced = check_spec_change(opened, spec, replace=replace)
    from ablate.runner.experiment import jobs_note

    prepared = PreparedRun(spec, opened, ex, source, device, jobs, new_store=new_store, replaced=replaced,
                           jobs_note=jobs_note(ex))
    if retry_failed:
        prepared.retried = _retry_failed(opened, spec)
    return prepared


def _check_teachers(spec: Spec, store_target: str) -> None:
    """Distillation teachers named by trial exist in the store's weights folder (before the store is opened)."""
    from ablate.runner.paths import weights_root_for
    from ablate.design.plan import plan as make_plan
    from ablate.tricks.base import check_saved_weights, reads_saved_weights

    if reads_saved_weights(spec.tricks.values()):
        check_saved_weights(make_plan(spec).trials, weights_root_for(store_target))


def _retry_failed(store: Store, spec: Spec) -> str:
    """`--retry-failed`: the spec's failed trials back to pending, their attempts kept."""
    from ablate.design.plan import plan as make_plan

    p = make_plan(spec)
    frame = kind_of(spec).current(p, store.trials_frame(spec.name))
    failed = list(frame.loc[frame["status"] == "failed", "trial_id"])
    put = store.retry_failed(spec.name, failed, note="put back to pending by `ablate run --retry-failed`")
    if put:
        kind_of(spec).after_retry(p, store, put)
    if not put:
        return f"--retry-failed: no failed trial of '{spec.name}' to run again"
    return (f"--retry-failed: {len(put)} failed trial(s) of '{spec.name}' run again; their earlier attempts "
            f"are kept (ablate logs {spec.name})")


def final_counts(store: Store, p: Plan) -> tuple[int, int]:
    """(failed, complete) trials of the spec in the store after a run."""
    status = kind_of(p.spec).current(p, store.trials_frame(p.spec.name))["status"]
    return int((status == "failed").sum()), int((status == "complete").sum())


def console_progress(spec: Spec, store: Store):
    """The console's counter; a search's lines also name the study trial and the best so far."""
    from ablate.console import ConsoleProgress, expected_trials

    return ConsoleProgress(expected=expected_trials(spec, store), search=kind_of(spec).search_line(spec))


def report_folder(experiment: str, out: str | os.PathLike | None = None, *, check: bool = False) -> Path:
    """Where a report goes: `out`, else reports/<experiment>. `check`: raise ReportError now if
    it cannot be written (a file or a link there), before a report is built or printed."""
    folder = Path(out) if out is not None else Path("reports") / experiment
    if check:
        from ablate.report.files import ReportFolder

        ReportFolder(folder, (), create=False)
    return folder


def finish_run(result: RunResult, *, out: str | os.PathLike | None = None,
               formats: Sequence[str] = ("md", "csv", "html")) -> RunResult:
    """Build the report of a finished run and write it to `out` (when a trial completed and no
    `error` stopped the run). A report that cannot be built is an error unless trials failed
    (e.g. the baseline's): then `report_note` says why."""
    if result.error is not None or not result.complete:
        return result
    try:
        result.report = build_report(result.store, result.experiment)
    except ReportError as exc:
        if not result.failed:
            raise
        result.report_note = str(exc)
        return result
    result.paths = write_report(result.report, report_folder(result.experiment, out), formats)
    return result


def run(spec_or_source: Spec | str | os.PathLike | Mapping, *, store: str | os.PathLike | None = None,
        runner: str = "local", address: str | None = None, jobs: int | None = None, device: str | None = None,
        fuse: str | None = None, replace: bool = False, retry_failed: bool = False,
        progress: Progress | None = None, report: bool = True, out: str | os.PathLike | None = None,
        formats: Sequence[str] = ("md", "csv", "html")) -> RunResult:
    """Run an experiment (resuming: trials already in the store are reused), then build and
    write its report; what ``ablate run`` does, without printing.

    Args:
        spec_or_source: a `Spec`, or anything `load_spec` takes (``"quickstart"``, a path, a dict).
        store: SQLite path or SQLAlchemy URL (None: $ABLATE_STORE, else ablate.db); made if absent.
        runner: ``"local"`` (this process) or ``"ray"`` (Ray Tune trials; `address` joins a cluster).
        jobs: trials at once (None: 1, or a search's ``search.jobs``).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (None: CUDA if available, else CPU).
        fuse: ``auto`` (fused trials on CUDA), ``on`` or ``off`` (None: the spec's ``fuse``, auto).
        replace: delete the stored trials of an experiment of the same name first.
        retry_failed: run the spec's failed trials again, keeping their earlier attempts.
        progress: an `ablate.runner.progress.Progress` for the run's events (None: silent).
        report: build and write the report (`out`, else reports/<experiment>, in `formats`).

    Returns:
        A `RunResult`: ``.lift`` (the lift table), ``.report``, ``.failed``, ``.complete``,
        ``.exit_code`` (0, or 3 when trials failed).

    Raises:
        AblateError: bad input, found before anything is written (SpecError, DataError,
            StoreError, ...). Interrupted: Ctrl-C; finished trials are kept.

    Example:
        >>> result = ablate.run("quickstart", store="ablate.db")  # doctest: +SKIP
        >>> result.lift  # doctest: +SKIP
    """
    spec, _ = load_spec_and_notes(spec_or_source)
    source = _source_path(spec_or_source)
    prepared = prepare_run(spec, store=store, source=source, runner=runner, address=address, jobs=jobs,
                           device=device, fuse=fuse, replace=replace, retry_failed=retry_failed, out=out,
                           report=report)
    result = prepared.execute(progress)
    return finish_run(result, out=out, formats=formats) if report else result


def _source_path(spec_or_source) -> str | None:
    """The spec file a run came from (recorded with the experiment), None for a dict or a Spec."""
    if isinstance(spec_or_source, (str, os.PathLike)):
        from ablate.design.spec import resolve_spec_path

        return str(resolve_spec_path(spec_or_source))
    return None


def _fmt_s(seconds: float) -> str:
    from ablate.console import fmt_s

    return fmt_s(seconds)


# -- results: frames, status, reports ---------------------------------------------------------

@dataclass
class ExperimentState:
    """A stored experiment now: its plan, every stored trial (`frame`), the current spec's
    (`current`), those shown running whose driver is gone, and how many trials belong to
    earlier versions of its spec."""

    name: str
    plan: Plan
    frame: pd.DataFrame
    current: pd.DataFrame
    gone: dict[str, str]
    earlier: int

    def text(self, store: Store) -> str:
        """The line ``ablate status`` prints for it."""
        return kind_of(self.plan.spec).status_text(store, self)


def experiment_state(store: Store | str | os.PathLike | None, experiment: str) -> ExperimentState:
    """The `ExperimentState` of a stored experiment (ReportError when there is none of that name)."""
    from ablate.runner.logs import gone_drivers

    store = _store(store)
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

    store = _store(store)
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
    store = _store(store)
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
    store = _store(store)
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

    store = _store(store)
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

    store = _store(store)
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
    store = _store(store)
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


@dataclass
class Estimate:
    """What ``ablate plan`` measures: the data's sizes and shape, the baseline's parameters and
    training speed here, the seconds per trial."""

    data: str
    shape: str              # CxHxW
    num_classes: int
    sizes: dict[str, int]   # train, val, test images
    model: str
    n_params: int
    images_per_s: float
    per_trial_s: float
    device: str


def estimate(p: Plan) -> Estimate:
    """Time the plan's first trial's model on its data here (a few batches; nothing stored).

    Raises:
        AblateError: a spec that runs a command (``trial:``), whose cost ablate cannot measure.
    """
    spec = p.spec
    if spec.trial is not None:
        raise AblateError(f"spec '{spec.name}' runs a command ('trial:'); time one run of it to estimate the cost")
    from ablate.data import load_data
    from ablate.models import model_info
    from ablate.train import measure_throughput, pick_device

    data = load_data(spec.data)
    sizes = data.sizes()
    ips, n_params = measure_throughput(p.trials[0])
    per_trial = spec.recipe.epochs * (sizes["train"] + 0.3 * (sizes["val"])) / ips
    return Estimate(spec.data.name, f"{data.channels}x{data.image_size}x{data.image_size}", data.num_classes,
                    sizes, model_info(spec.model).label, n_params, ips, per_trial, str(pick_device()))


# -- the other commands: tricks, models, lr-find, NNI import, logs, export ---------------------

def tricks(names: Sequence[str] | None = None) -> dict[str, Any]:
    """The registered tricks, by name (`ablate tricks`).

    Args:
        names: the tricks to describe (None or empty: all of them).

    Returns:
        {name: trick}; each trick has ``code``, ``title``, ``kind``, ``paper``, ``slot`` and
        ``describe_params()`` (name, type, default, range and help of each parameter).

    Raises:
        AblateError: a name that is not a trick (the message lists those that are).

    Example:
        >>> ablate.api.tricks(["mixup"])["mixup"].paper  # doctest: +SKIP
    """
    from ablate.tricks import all_tricks, get_trick

    if not names:
        return all_tricks()
    try:
        return {n: get_trick(n) for n in names}
    except KeyError as exc:
        raise AblateError(str(exc.args[0])) from None


def models() -> list[dict]:
    """The built-in model families (`ablate models`): one row each with ``model``,
    ``digits_params`` and ``cifar_params`` (parameter counts on digits and on CIFAR shapes, None
    where it cannot be built here), ``needs_timm`` and ``paper``."""
    from ablate.models.catalog import model_rows

    return model_rows()


@dataclass
class LrFind:
    """An LR range test: the trial it trained (the spec's first), its result
    (`ablate.lrfind.LRFindResult`: lrs, losses, suggested lrs) and the CSV and HTML written."""

    trial: Any
    result: Any
    paths: tuple[Path, Path]


def lr_find(spec_or_source: Spec | str | os.PathLike | Mapping, *, start: float = 1e-7, end: float = 10.0,
            steps: int = 100, device: str | None = None, out: str | os.PathLike | None = None,
            on_start: Any = None) -> LrFind:
    """The LR range test (Smith 2017) on the spec's first trial (`ablate lr-find`): the lr grows
    geometrically from `start` to `end` over `steps` batches; the CSV and HTML figure go to
    `out` (default reports/<experiment>). `on_start(trial)` is called once the checks pass,
    before training. Bad input (the range, a command spec, the device, an unwritable folder)
    raises AblateError before anything is trained or written."""
    from ablate.lrfind import check_range, lr_find_folder, lr_range_test, write_lr_find
    from ablate.preflight import check_device

    check_range(start, end, steps)
    spec = _spec(spec_or_source)
    if spec.trial is not None:
        raise AblateError(f"spec '{spec.name}' runs a command ('trial:'), which ablate cannot sweep the lr of; "
                          f"lr-find needs a spec with model, data and recipe")
    check_device(device)
    folder = report_folder(spec.name, out)
    lr_find_folder(folder, create=False)       # a file or a link there: refused before training
    trial = plan(spec).trials[0]
    if on_start is not None:
        on_start(trial)
    result = lr_range_test(trial, start=start, end=end, steps=steps, device=device)
    return LrFind(trial, result, write_lr_find(result, folder))


def import_nni(config: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[Conversion, str]:
    """Convert an NNI experiment config (v1 or v2 YAML) to an ablate spec (`ablate import-nni`).

    Returns:
        (conversion, text): the conversion (``.spec`` as a dict, ``.notes``: what became what and
        what was not carried over) and the spec's YAML, written to `out` when given.

    Raises:
        SpecError: what NNI's config has that ablate cannot run (named by its key).
        AblateError: `out` is the config itself or cannot be written.
    """
    from ablate.nni import check_converted, convert_config, spec_yaml

    conversion = convert_config(config)
    check_converted(conversion)
    if out is None:
        return conversion, spec_yaml(conversion, f"{conversion.spec['name']}.yaml")
    if Path(out).resolve() == Path(config).resolve():
        raise AblateError(f"-o {out} is the NNI config itself; give another file name")
    text = spec_yaml(conversion, out)
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AblateError(f"cannot write {out}: {exc}") from None
    return conversion, text


def logs(store: Store | str | os.PathLike | None, experiment: str, trial: str | None = None) -> str:
    """Every attempt of the experiment's failed trials, or of `trial` (an id or its first
    characters), as text: status, kind, host, error and output (`ablate logs`); says so when
    no trial failed."""
    from ablate.runner.logs import attempts, failed_trial_ids, find_trials, format_attempts, gone_drivers

    store = _store(store)
    load_experiment(store, experiment)   # an unknown name: raises with the list of experiments
    frame = store.trials_frame(experiment)
    if trial is not None:
        ids = find_trials(frame, trial, experiment)
    else:
        ids = failed_trial_ids(store, experiment)
        if not ids:
            counts = frame["status"].value_counts().to_dict()
            parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
            return (f"{experiment}: no failed attempt ({parts}); `ablate logs {experiment} TRIAL` shows any "
                    f"trial's attempts")
    statuses = dict(zip(frame["trial_id"], frame["status"]))
    gone = gone_drivers(store, experiment, [t for t in ids if statuses.get(t) == "running"])
    return format_attempts(attempts(store, experiment, set(ids)), gone=gone, statuses=statuses)


def export(store: Store | str | os.PathLike | None, experiment: str, tracker: str, *,
           tracking_uri: str | None = None, logdir: str | os.PathLike | None = None) -> MlflowExport | TensorBoardExport:
    """Send an experiment's trials to MLflow (`tracking_uri`, default $MLFLOW_TRACKING_URI) or
    TensorBoard (`logdir`); again, it updates what an earlier export wrote (`ablate export`).
    Returns the export's summary (``.describe(experiment)``)."""
    from ablate.export import export_mlflow, export_tensorboard

    store = _store(store)
    if tracker == "mlflow":
        return export_mlflow(store, experiment, tracking_uri=tracking_uri)
    if tracker == "tensorboard":
        if logdir is None:
            raise AblateError("a TensorBoard export needs logdir, the folder its run folders go to")
        return export_tensorboard(store, experiment, logdir)
    raise AblateError(f"unknown tracker '{tracker}'; choose mlflow or tensorboard")
