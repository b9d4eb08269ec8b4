"""The one design/search dispatch: `kind_of(spec)` is the only place that asks whether a spec
is a search; the object it returns (`DESIGN` or `SEARCH`) does what differs, and
`ExperimentState` is what it reads of a stored experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ablate.errors import ReportError

if TYPE_CHECKING:
    import pandas as pd

    from ablate.design.plan import Plan
    from ablate.runner.engine import RunSummary
    from ablate.runner.events import Executor
    from ablate.design.spec import Spec
    from ablate.store import Store


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
