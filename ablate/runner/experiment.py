"""The executor a spec asks for (`executor_for`), the metrics its trials must report and why
fewer trials run at once than asked. `ablate.api.run_experiment` runs a spec through them."""

from __future__ import annotations

from ablate.runner.inprocess import InProcessExecutor
from ablate.runner.threads import trial_threads, usable_cores
from ablate.errors import AblateError
from ablate.design.spec import Spec


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
        from ablate.runner.ray import RayExecutor

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
        from ablate.runner.command import CommandExecutor

        return CommandExecutor(spec.trial, source=source, jobs=jobs, threads=threads,
                               metrics=required_metrics(spec))
    single = InProcessExecutor(device=device, jobs=jobs, weights_root=weights_root, save_final=spec.save == "final",
                               threads=threads)
    fuse = fuse or spec.fuse
    if spec.save is None and (fuse == "on" or (fuse == "auto" and _device_type(device) == "cuda")):
        from ablate.runner.fused import FusedExecutor

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
