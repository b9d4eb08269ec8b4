"""Run a spec's search: one study (or one per design arm with `per_arm`), then the finalists on
the selection seeds and the winner, runner-up and hand-picked values on the report seeds
(`ablate.design.stages`), all through the engine (claims, recorder, retries, resume)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.runner.early_stop import with_early_stop
from ablate.runner.engine import Engine, RunSummary
from ablate.runner.sources import DesignSource
from ablate.search.finalists import chosen_order, record_finalists, report_trials, select_trials, top_configurations
from ablate.search.source import SearchSource
from ablate.config.search import search_metrics
from ablate.design.stages import stage_seeds
from ablate.search.study import load_stored_study, open_study

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.design.spec import Spec
    from ablate.store import Store


def study_name(spec: Spec, arm: int | None = None) -> str:
    """The study of a spec (or of one arm of a per-arm search): `search.study`, else the
    experiment's name; `<name>/arm<i>` per arm."""
    base = spec.search.study or spec.name
    return base if arm is None else f"{base}/arm{arm}"


def searched_arms(p: Plan) -> list[int]:
    return [a.index for a in p.arms] if p.spec.search.per_arm else [0]


def open_arm_study(p: Plan, store: Store, arm: int):
    spec = p.spec
    metrics = search_metrics(spec)
    name = study_name(spec, arm if spec.search.per_arm else None)
    pruning = len(metrics) == 1 and spec.search.pruner.name != "none"
    return open_study(store, name, spec.search, [m.direction for m in metrics], pruning=pruning)


def load_arm_study(p: Plan, store: Store, arm: int):
    """The stored study of a searched arm, or None when its search has not started (nothing is created)."""
    return load_stored_study(store, study_name(p.spec, arm if p.spec.search.per_arm else None))


def run_search(p: Plan, store: Store, executor, *, summary: RunSummary, progress=None, source: str | None = None,
               lease_s: float = 60.0, jobs: int = 1, early_stop=None) -> RunSummary:
    """`early_stop`: the pruner of the spec's `early_stop:` on the local runners
    (`ablate.runner.early_stop`); it acts on the searched trials, beside the search's own pruner."""
    spec = p.spec
    s = spec.search
    metrics = search_metrics(spec)
    stages = stage_seeds(spec)
    if len(metrics) > 1 and s.pruner.name != "none":
        summary.notes.append(f"pruner '{s.pruner.name}' is off: Optuna cannot prune a multi-objective "
                             f"search ({', '.join(m.name for m in metrics)})")
    pruning = len(metrics) == 1 and s.pruner.name != "none"

    def engine(pruner=None) -> Engine:
        return Engine(store, spec.name, executor, retries=spec.retries, progress=progress, pruner=pruner,
                      metric=metrics[0].name, metric_source=source or f"spec '{spec.name}'", lease_s=lease_s)

    for arm in searched_arms(p):
        study = open_arm_study(p, store, arm)
        trials = SearchSource(p, study, arm=arm, metrics=metrics, n_trials=s.n_trials, timeout_s=s.timeout_s,
                              jobs=jobs, pruning=pruning, source=source)
        engine(with_early_stop(trials, early_stop)).run(trials, summary)   # the source is the pruner too
        summary.notes += trials.notes
        finalists = top_configurations(study, metrics, max(stages.top_k, 1))
        record_finalists(study, finalists)
        if not finalists:
            summary.notes.append(f"study '{study.study_name}' has no complete trial: nothing to validate")
            continue
        if not stages.validates:
            continue
        if len(finalists) > 1:
            engine().run(DesignSource(select_trials(p, arm, finalists, stages.select, source=source)), summary)
        # every select trial has ended here (the engine waits for other drivers' too): the
        # stored results decide, so every driver reports the same winner
        order = chosen_order(p, store.trials_frame(spec.name), arm, finalists, stages.select, metrics[0])
        engine().run(DesignSource(report_trials(p, arm, finalists, order, s.compare_to, stages.report,
                                                source=source)), summary)
    return summary

