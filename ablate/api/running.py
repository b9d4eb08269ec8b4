"""Running an experiment: the checks before a run, the executor, the run itself and its result."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.api.kinds import kind_of
from ablate.api.results import build_report, report_folder, write_report
from ablate.api.specs import load_spec_and_notes
from ablate.api.stores import create_store, default_store
from ablate.errors import AblateError, MetricNotReported, ReportError

if TYPE_CHECKING:
    import pandas as pd

    from ablate.design.plan import Plan
    from ablate.runner.engine import RunSummary
    from ablate.runner.events import Executor
    from ablate.runner.progress import Progress
    from ablate.design.spec import Spec
    from ablate.store import Store


class Interrupted(AblateError):
    """A run stopped by Ctrl-C or SIGTERM; finished trials are kept (the CLI exits 130)."""


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
    opened, new_store = create_store(target)
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
