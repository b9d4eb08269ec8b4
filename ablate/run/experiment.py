"""Run a designed experiment: record the spec, plan, run what is missing through the engine, then
(optionally) the adaptive seeds the pilot asks for (`ablate.run.sources.adaptive_requests`).
`start_experiment` is the part a search shares (`ablate.search.runner.run_experiment` runs a
spec of either kind)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import json

from ablate.design.plan import Plan, plan
from ablate.run.early_stop import local_early_stop
from ablate.run.engine import Engine, RunSummary
from ablate.run.events import Executor
from ablate.run.inprocess import InProcessExecutor
from ablate.run.progress import Progress
from ablate.run.sources import AdaptiveSeedSource, DesignSource
from ablate.run.threads import trial_threads, usable_cores
from ablate.errors import AblateError
from ablate.design.spec import Spec, spec_from_dict, spec_to_dict

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store


def executor_for(spec: Spec, *, device: str | None = None, source: str | None = None, jobs: int = 1,
                 weights_root=None, fuse: str | None = None, runner: str = "local", address: str | None = None):
    """The executor a spec asks for: its own command (`trial:`), else the built-in trainer here
    (reading teachers from and, with `save: final`, saving weights to `weights_root`); `jobs`
    trials at once. `fuse` (default: the spec's `fuse`) picks the fused executor: "on" always,
    "auto" when the device is CUDA, "off" never; a spec that saves weights is never fused (the
    fused loop keeps no per-member weights files). With `runner="ray"` trials run as Ray Tune
    trials (in-process Ray, or the cluster at `address`), `jobs` > 1 capping how many run at once."""
    threads = trial_threads(spec.resources)     # the same on every runner: one spec, one table
    if runner == "ray":
        from ablate.run.ray import RayExecutor

        return RayExecutor(address, resources=spec.resources, max_concurrent=jobs if jobs > 1 else None,
                           early_stop=spec.early_stop, metric=spec.metric.name, mode=spec.metric.direction,
                           epochs=spec.recipe.epochs if spec.recipe is not None else None,
                           retries=spec.retries, command=spec.trial, device=device, source=source,
                           weights_root=weights_root, save_final=spec.save == "final",
                           required_metrics=required_metrics(spec))
    if runner != "local":
        raise AblateError(f"unknown runner '{runner}'; choose local or ray")
    if address is not None:
        raise AblateError(f"--address '{address}' is for --runner ray; add --runner ray or leave --address out")
    if spec.trial is not None:
        from ablate.run.command import CommandExecutor

        return CommandExecutor(spec.trial, source=source, jobs=jobs, threads=threads,
                               metrics=required_metrics(spec))
    single = InProcessExecutor(device=device, jobs=jobs, weights_root=weights_root, save_final=spec.save == "final",
                               threads=threads)
    fuse = fuse or spec.fuse
    if spec.save is None and (fuse == "on" or (fuse == "auto" and _device_type(device) == "cuda")):
        from ablate.run.fused import FusedExecutor

        return FusedExecutor(device=device, jobs=jobs, single=single)
    return single


def required_metrics(spec: Spec) -> tuple[str, ...]:
    """The metrics every trial must report: the spec's, and a search's own."""
    names = [spec.metric.name]
    if spec.search is not None:
        names += [m.name for m in spec.search.metrics or () if m.name not in names]
    return tuple(names)


def jobs_note(executor) -> str | None:
    """Why fewer trials run at once than `--jobs` asked (the cores hold fewer at the spec's
    threads per trial), or that a trial's threads outnumber the cores; None if neither."""
    asked, jobs = getattr(executor, "jobs_asked", None), getattr(executor, "jobs", None)
    threads, cores = getattr(executor, "threads", 1), usable_cores()
    notes = []
    if threads > cores:
        notes.append(f"resources.cpu asks for {threads} threads per trial and this machine has {cores} core(s): "
                     f"each trial runs {threads} threads all the same (the results of a larger machine, slower)")
    if asked is not None and jobs is not None and jobs < asked:
        notes.append(f"--jobs {asked}: {jobs} trial(s) at once, as {cores} core(s) hold at {threads} thread(s) per "
                     f"trial (resources.cpu); results do not depend on it")
    return "; ".join(notes) or None


def _device_type(device: str | None) -> str:
    from ablate.train import pick_device

    return pick_device(device).type


def start_experiment(spec: Spec, store: Store, *, source: str | None = None, device: str | None = None,
                     executor: Executor | None = None, jobs: int = 1,
                     fuse: str | None = None) -> tuple[Plan, Executor, RunSummary, object | None]:
    """Plan, save the spec and note a changed one: (plan, executor, summary, the early-stop
    pruner of `early_stop:` on the local runners or None). Bad input the executor can see (a
    command or folder that does not exist) is refused before anything is written."""
    p = plan(spec)
    if executor is None:
        from ablate.run.paths import weights_root_for

        executor = executor_for(spec, device=device, source=source, jobs=jobs, weights_root=weights_root_for(store),
                                fuse=fuse)
    executor.check(p.trials)
    # no sort_keys: the order of tricks is the order of a cumulative design
    text = json.dumps(spec_to_dict(spec))
    before = store.experiment(spec.name)
    store.save_experiment(spec.name, text, source)
    summary = RunSummary()
    if before is not None and spec.search is None and not _same_spec(before["spec"], text):
        ids = {p.trial_id(a.index, s) for a in p.arms for s in set(store.trial_seeds(spec.name)) | set(p.seeds)}
        stale = sum(1 for tid in store.trial_statuses(spec.name) if tid not in ids)
        summary.notes.append(
            f"the spec of '{spec.name}' changed since it was last run; {stale} stored trial(s) of the old "
            f"version are kept in the store but not reported (unchanged trials are reused)")
    # `early_stop:` on the local runners (Ray runs Tune's ASHA itself): one for the whole run
    return p, executor, summary, local_early_stop(spec, executor)


def run_design(p: Plan, store: Store, executor: Executor, summary: RunSummary, *, early_stop=None,
               progress: Progress | None = None, source: str | None = None, lease_s: float = 60.0) -> RunSummary:
    """Run every planned trial of a design the store lacks, then adaptive rounds if asked."""
    spec = p.spec
    trials = AdaptiveSeedSource(p) if spec.seeds.adaptive is not None else DesignSource(p.trials)
    engine = Engine(store, spec.name, executor, retries=spec.retries, progress=progress, pruner=early_stop,
                    metric=spec.metric.name, metric_source=source or f"spec '{spec.name}'", lease_s=lease_s)
    engine.run(trials, summary)
    return summary


def _same_spec(stored: str, text: str) -> bool:
    """Whether a stored spec is this one, also when an older ablate wrote it with fewer keys."""
    if stored == text:
        return True
    try:
        return json.dumps(spec_to_dict(spec_from_dict(json.loads(stored), check_files=False))) == text
    except (AblateError, ValueError):
        return False
