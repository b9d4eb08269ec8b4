"""The Tune trainable: one ablate trial on a Ray worker, its events sent back through `tune.report`.

Each engine event (epoch, final, failure) travels as one Tune result whose `ablate_event` entry
is the event as JSON; the first result of an attempt also carries its start (where it runs, the
epochs a resumed attempt starts after), so a trial costs Tune no more results than a plain Tune
trainable. Epoch results also carry `epoch` and the early-stop metric at the top level, where
Tune's ASHA reads them. The driver's callback
(`ablate.runner.ray`) turns them back into events; nothing here writes the store.

A trial resumed by Tune after a failure (its worker died, it raised) starts from its last
per-epoch checkpoint (`ablate.checkpoint`) and reports the checkpoint's epochs again, so the
new attempt's record holds every epoch.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import traceback
from typing import Any

EVENT = "ablate_event"


def encode(kind: str, *, early_metric: str | None = None, **fields: Any) -> dict[str, Any]:
    """A Tune result carrying one event."""
    result: dict[str, Any] = {EVENT: json.dumps({"kind": kind, **fields}, default=str)}
    metrics = fields.get("metrics") or {}
    if kind == "epoch":
        result["epoch"] = metrics["epoch"]
        value = metrics.get(early_metric) if early_metric else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            result[early_metric] = value
    return result


class Sender:
    """`tune.report` of events; the attempt's start rides on its first report."""

    def __init__(self, early_metric: str | None, env: dict[str, Any], history: list | None = None) -> None:
        self.early_metric = early_metric
        self.start: dict[str, Any] | None = {"env": env, "history": history or []}

    def __call__(self, kind: str, *, checkpoint=None, **fields: Any) -> None:
        from ray import tune

        if self.start is not None:
            fields["started"], self.start = self.start, None
        tune.report(encode(kind, early_metric=self.early_metric, **fields), checkpoint=checkpoint)


def decode(result: dict[str, Any]) -> dict[str, Any] | None:
    text = result.get(EVENT)
    return json.loads(text) if isinstance(text, str) else None


def _node_ip() -> str:
    import ray

    return ray.util.get_node_ip_address()


def worker_environment(device: str | None, gpu_ids: list) -> dict[str, Any]:
    """Where this trial runs: the in-process record plus the Ray node and the GPUs Ray assigned."""
    import ray

    from ablate.runner.provenance import environment

    ctx = ray.get_runtime_context()
    env = dict(environment(device))
    env.update({"runner": "ray", "host": socket.gethostname(), "node_ip": _node_ip(),
                "ray_node": ctx.get_node_id(), "gpu_ids": ",".join(str(g) for g in gpu_ids),
                "pid": os.getpid(), "threads": _torch_threads()})
    return env


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


_BATCH: dict[str, dict] = {}     # this worker process's current batch of trials, by its object ref


def batch_trials(ref) -> dict:
    """The trials of the executor's batch, fetched from Ray's store once per worker process."""
    import ray

    key = ref.hex()
    if key not in _BATCH:
        _BATCH.clear()                # only the current batch is kept
        _BATCH[key] = ray.get(ref)
    return _BATCH[key]


def trainable(config: dict, *, trials: dict, options: dict) -> None:
    """Run `trials[config["ablate_trial"]]` (`trials`: a dict, or its ref in Ray's store). `options`: device (None: the GPU Ray assigned, else
    the CPU), threads (torch's, or a command's OMP/MKL threads: `ablate.runner.threads`), early_metric, catch_errors (report a trainer's
    exception as a failure instead of raising it for Tune to retry), run_fn (replaces
    `ablate.train.run_trial`: benchmarks), command (a `CommandTrial`: the user's command runs),
    weights_root + save_final (saved weights, as the in-process runner's), metrics (what a command
    trial must report)."""
    import ray

    if isinstance(trials, ray.ObjectRef):
        trials = batch_trials(trials)
    trial = trials[config["ablate_trial"]]
    gpu_ids = ray.get_gpu_ids()
    # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned, so the first visible one is ours
    device = options.get("device") or ("cuda:0" if gpu_ids else "cpu")
    if options.get("command") is not None:
        _run_command(trial, options, device, gpu_ids)
        return
    early = options.get("early_metric")
    run_fn = options.get("run_fn")
    # a stand-in that does not use torch does not pay its import (seconds, in each new worker)
    torch = importlib.import_module("torch") if run_fn is None else sys.modules.get("torch")
    threads = int(options.get("threads", 1))
    if torch is not None:
        # the spec's count, as on every runner (one spec, one table); and two torch processes on
        # two cores, each taking every core, slow each other many times over
        torch.set_num_threads(threads)
    if run_fn is not None:                     # a stand-in trainer: no checkpoints, no environment record
        send = Sender(early, {"runner": "ray", "pid": os.getpid(), "threads": threads})
        final = run_fn(trial, lambda m: send("epoch", metrics=dict(m)), device=device)
        send("final", metrics=dict(final))
        return
    _run_trainer(trial, options, device, gpu_ids, early)


def _run_trainer(trial, options: dict, device: str, gpu_ids: list, early: str | None) -> None:
    from ray import tune
    from ray.tune import Checkpoint

    from ablate import checkpoint
    from ablate.errors import TrialDiverged
    from ablate.train import run_trial

    local = tempfile.mkdtemp(prefix="ablate-ckpt-")
    try:
        restored = tune.get_checkpoint()
        if restored is not None:
            restored.to_directory(local)
        history = checkpoint.history(local)
        env = worker_environment(device, gpu_ids)
        if history:
            env["resumed_after_epoch"] = history[-1]["epoch"]
        send = Sender(early, env, history)

        def report(metrics: dict) -> None:
            # the checkpoint of this epoch is already on disk (run_trial saves, then reports)
            send("epoch", metrics=dict(metrics), checkpoint=Checkpoint.from_directory(local))

        try:
            final = run_trial(trial, report, device=device, checkpoint_dir=local, **weights_options(trial, options))
        except TrialDiverged as exc:
            send("failure", failure="diverged", message=str(exc))
            return
        except Exception as exc:  # noqa: BLE001 -- a failure kind the spec does not retry ends the trial here
            if not options.get("catch_errors"):
                raise                           # Tune retries it (FailureConfig) from the last checkpoint
            send("failure", failure="error", message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            return
        send("final", metrics=dict(final))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def weights_options(trial, options: dict) -> dict:
    """What a trial that saves its weights or reads a teacher's gets (as the in-process runner)."""
    from ablate.tricks.base import reads_saved_weights   # late: this module loads on every worker, kept light

    root, save = options.get("weights_root"), bool(options.get("save_final"))
    teacher = reads_saved_weights(trial.tricks)
    if root is None or not (save or teacher):
        return {}
    return {"weights_root": root, "save_final": save}


def _run_command(trial, options: dict, device: str, gpu_ids: list) -> None:
    """A command trial: the command executor's own logic on this worker, its events relayed."""
    from ablate.runner.command import CommandExecutor
    from ablate.runner.events import EpochMetrics, Failure, FinalMetrics, Started

    send: list[Sender] = []

    def relay(event) -> str:
        if isinstance(event, Started):
            send.append(Sender(options.get("early_metric"), {**event.env, "runner": "ray", "node_ip": _node_ip(),
                                                             "gpu_ids": ",".join(str(g) for g in gpu_ids)}))
        elif isinstance(event, EpochMetrics):
            send[0]("epoch", metrics=dict(event.metrics))
        elif isinstance(event, FinalMetrics):
            send[0]("final", metrics=dict(event.metrics))
        elif isinstance(event, Failure):
            send[0]("failure", failure=event.kind, message=event.message)
        return "continue"        # Tune's stopper and scheduler stop a trial by ending this worker

    CommandExecutor(options["command"], source=options.get("source"), threads=int(options.get("threads", 1)),
                    metrics=options.get("metrics") or ())._run_in_tmp(trial, relay)
