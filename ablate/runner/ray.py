"""The Ray executor: trials run as Ray Tune trials, in-process Ray or on a cluster.

Ray Tune is the engine here; ablate adds no scheduler. Per-trial resources come from the spec
(`resources: {cpu: 1, gpu: 0.25}`: four trials share a GPU), early stopping is Tune's ASHA
(`early_stop:`), retries are Tune's `FailureConfig(max_failures=retries.count)` with per-epoch
checkpoints, so a retried trial resumes after its last epoch.

The engine hands over a batch of claimed trials; they run as one `Tuner.fit()` (a grid over
the trial ids) because a Tune run costs seconds to set up, and at most `max_concurrent` of them
run at once (otherwise as many as the cluster's resources hold). A Tune callback turns each
result (`ablate.runner.ray_worker`) back into the engine's events. Tune calls its callbacks from
the thread that runs `fit()`, the engine's own thread, so events reach the recorder as the
executor contract asks, and the driver's recorder alone writes the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ablate.errors import AblateError, SpecError
from ablate.config.run import CommandTrial, EarlyStop, Resources, Retries
from ablate.runner.events import Emit, EpochMetrics, Failure, FinalMetrics, Started
from ablate.runner.paths import absolute_command, absolute_trial
from ablate.runner.threads import trial_threads
from ablate.design.trial import Trial
from ablate.tricks.base import check_saved_weights, reads_saved_weights

# Tune's own per-result work that ablate does not need: its JSON/CSV/TensorBoard loggers and its
# console tables (the engine records and prints), and its SIGINT handler (Ctrl-C must reach
# the engine, which puts the running trials back to pending). (benchmarks/runner_overhead.py
# says which other Tune knobs were measured, and why they are not set.)
TUNE_SETTINGS = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_DISABLE_SIGINT_HANDLER": "1",
             "RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
             "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
# with its loggers off, Tune warns after each run that it found no result files: expected
_QUIET = ("ray.tune.analysis.experiment_analysis",)
# Tune logs every failed trial with its worker's whole traceback ("Trial task failed for
# trial ...", then "Trials did not complete"): the engine records each attempt's error and prints
# one line per failure (`ablate logs` has the full text), so these stay off the console
_SILENT = ("ray.tune.execution.tune_controller", "ray.tune.tune")
CONNECT_TIMEOUT_S = 5.0
ERROR_TAIL = 3000


class RayExecutor:
    """Run trials as Ray Tune trials.

    address: None starts Ray in this process (`num_cpus`, default all cores; a small object
    store); an address ("host:port", "ray://host:port" or "auto") joins that cluster.
    resources: per trial. max_concurrent: trials at once (None: as many as resources allow).
    early_stop + metric/mode: ASHA on the per-epoch metric. epochs: the trials' epochs (ASHA's
    last rung stays below it, so a trial that reached its last epoch always finishes).
    retries: Tune retries a failed trial `retries.count` times from its last checkpoint.
    command: run the spec's own command instead of the built-in trainer. run_fn: a stand-in
    trainer (benchmarks), a picklable `run_fn(trial, report, device=...)`. trials_per_run: how
    many claimed trials one `Tuner.fit()` gets (the engine's `capacity`). storage_path: where
    Tune keeps checkpoints (a folder every node sees, or s3://..., on a multi-node cluster;
    default: $ABLATE_RAY_STORAGE, else a temporary folder removed after each run).
    required_metrics: the metrics a command trial must report (else it fails, kind no_metric).
    weights_root + save_final: as the in-process runner's, saved weights (`save: final` writes
    `<weights_root>/<experiment>/<trial id>.safetensors`, a distillation teacher named by trial
    is read there); workers get its absolute path, so on a multi-node cluster it must be on
    storage every node sees (`check` refuses it otherwise).
    """

    def __init__(self, address: str | None = None, *, resources: Resources = Resources(),
                 max_concurrent: int | None = None, early_stop: EarlyStop | None = None,
                 metric: str = "val_acc", mode: str = "max", epochs: int | None = None,
                 retries: Retries = Retries(), command: CommandTrial | None = None,
                 device: str | None = None, source: str | None = None, run_fn: Callable | None = None,
                 trials_per_run: int = 256, num_cpus: int | None = None, object_store_mb: int = 200,
                 storage_path: str | None = None, weights_root=None, save_final: bool = False,
                 required_metrics: Sequence[str] = ()) -> None:
        if max_concurrent is not None and (not isinstance(max_concurrent, int) or max_concurrent < 1):
            raise ValueError(f"max_concurrent must be a whole number >= 1 or None, got {max_concurrent!r}")
        self.address, self.resources, self.max_concurrent = address, resources, max_concurrent
        self.threads = trial_threads(resources)       # every trial's, on every runner (ablate.runner.threads)
        self.required_metrics = tuple(required_metrics)
        self.early_stop, self.metric, self.mode, self.epochs = early_stop, metric, mode, epochs
        self.retries, self.command, self.device, self.source = retries, command, device, source
        self.run_fn, self.trials_per_run = run_fn, trials_per_run
        self.num_cpus, self.object_store_mb = num_cpus, object_store_mb
        self.storage_path = storage_path or os.environ.get("ABLATE_RAY_STORAGE") or None
        self.weights_root = Path(weights_root).expanduser().resolve() if weights_root is not None else None
        self.save_final = save_final
        self._asha = None
        self._started_ray = False

    @property
    def capacity(self) -> int:
        return self.trials_per_run

    @property
    def early_metric(self) -> str | None:
        if self.early_stop is None:
            return None
        return self.early_stop.metric or self.metric

    # -- before anything runs ---------------------------------------------------------------

    def check(self, trials: Sequence[Trial] = ()) -> None:
        """Connect (or start Ray here), then refuse resources no node has."""
        if self.command is not None:
            from ablate.runner.command import CommandExecutor

            CommandExecutor(self.command, source=self.source).check(trials)
        elif self.weights_root is not None:
            check_saved_weights(trials, self.weights_root)
        self.connect()
        self.check_resources()
        # in-process Ray runs on this machine; a joined cluster's nodes may not share its disk
        if self.address is not None and self.command is None and self.weights_root is not None \
                and (self.save_final or _teachers(trials)):
            from ablate.runner.ray_nodes import check_folder_on_every_node

            check_folder_on_every_node(self.weights_root, "the weights folder ('save: final', distillation "
                                                          "teachers named by trial)")

    def connect(self) -> None:
        import ray

        for key, value in TUNE_SETTINGS.items():
            os.environ.setdefault(key, value)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
        for name in _SILENT:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if ray.is_initialized():
            return
        if self.address is None:
            # "local": a new Ray here, even where `ray start` left a cluster address behind
            ray.init(address="local", num_cpus=self.num_cpus, object_store_memory=self.object_store_mb * 2**20,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
            self._started_ray = True
            return
        _check_reachable(self.address)
        try:
            # pass_env values reach the cluster's workers in Ray's runtime env (memory), never the store
            passed = self.command.passed_env() if self.command is not None else {}
            ray.init(address=self.address, log_to_driver=False, configure_logging=False,
                     **({"runtime_env": {"env_vars": passed}} if passed else {}))
        except Exception as exc:  # noqa: BLE001 -- Ray raises ConnectionError, RuntimeError, ValueError...
            raise AblateError(f"cannot join the Ray cluster at --address '{self.address}': "
                              f"{type(exc).__name__}: {exc}") from None
        self._started_ray = False

    def check_resources(self) -> None:
        import ray

        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        cpu, gpu = self.resources.cpu, self.resources.gpu
        if any(n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu for n in nodes):
            return
        largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
        where = "this machine's Ray" if self.address is None else f"the Ray cluster at '{self.address}'"
        raise SpecError(f"no node of {where} can run a trial with resources {{cpu: {cpu:g}, gpu: {gpu:g}}}; "
                        f"the largest node has {{cpu: {largest.get('CPU', 0):g}, gpu: {largest.get('GPU', 0):g}}} "
                        f"({len(nodes)} node(s)); ask for at most that", source=self.source, path="resources")

    def close(self) -> None:
        """Shut down the Ray this executor started (a joined cluster keeps running)."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

    # -- running ----------------------------------------------------------------------------

    def run(self, trials: Sequence[Trial], emit: Emit) -> None:
        import ray
        from ray import tune

        from ablate.runner.ray_worker import trainable

        self.connect()
        # a worker's working folder is Tune's trial folder: relative paths are resolved here
        by_id = {t.id: absolute_trial(t) for t in trials}
        options = {"device": self.device, "threads": self.threads, "early_metric": self.early_metric,
                   # an error kind the spec does not retry must not be retried by Tune either
                   "catch_errors": "error" not in self.retries.kinds, "run_fn": self.run_fn,
                   "command": absolute_command(self.command), "source": self.source,
                   "metrics": self.required_metrics,
                   "weights_root": str(self.weights_root) if self.weights_root is not None else None,
                   "save_final": self.save_final}
        # the batch is one object in Ray's store, fetched once per worker process (an actor Tune
        # reuses runs many of its trials); `tune.with_parameters` would fetch and unpickle it
        # again at every trial start, a round trip and O(batch) work per trial
        batch = ray.put(by_id)

        def ablate_trial(config):      # cloudpickle carries the batch's ref and the options by value
            trainable(config, trials=batch, options=options)

        fn = tune.with_resources(ablate_trial, {"cpu": self.resources.cpu, "gpu": self.resources.gpu})
        relay = _Relay(emit, self)
        storage = self.storage_path or tempfile.mkdtemp(prefix="ablate-ray-")
        retried = bool({"error", "exit"} & set(self.retries.kinds))
        tuner = tune.Tuner(
            fn, param_space={"ablate_trial": tune.grid_search(list(by_id))},
            tune_config=tune.TuneConfig(max_concurrent_trials=self.max_concurrent, reuse_actors=True,
                                        scheduler=self._scheduler()),
            run_config=tune.RunConfig(
                name=f"ablate-{uuid.uuid4().hex[:8]}", storage_path=storage_uri(storage), verbose=0,
                callbacks=[relay.callback()], stop=relay.stopper(),
                failure_config=tune.FailureConfig(max_failures=self.retries.count if retried else 0),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        try:
            tuner.fit()
        finally:
            if self.storage_path is None:
                shutil.rmtree(storage, ignore_errors=True)

    @property
    def stops_early_itself(self) -> bool:
        """`early_stop:` acts through Tune's ASHA here, not through the engine's pruner."""
        return True

    def _scheduler(self):
        """One ASHA for all of this executor's `Tuner.fit()` runs (a design's batches, a search's
        rounds): its rungs fill across them, as the local runners' rungs do."""
        if self._asha is None:
            from ablate.runner.early_stop import asha_scheduler

            self._asha = asha_scheduler(self.early_stop, metric=self.metric, mode=self.mode, epochs=self.epochs)
        return self._asha


class _Unpickled:
    """Tune pickles its run config into the experiment's state file; the relay (which holds
    the recorder and the store) stays behind: a restored copy is never used by this run.
    (Methods read `self.relay`, not a closure: cloudpickle would pickle a closure by value.)"""

    def __init__(self, relay: _Relay) -> None:
        self.relay = relay

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.relay = None


class _Relay:
    """Tune results -> engine events, on the thread running `fit()`."""

    def __init__(self, emit: Emit, executor: RayExecutor) -> None:
        self.emit, self.executor = emit, executor
        self.last_epoch: dict[str, int] = {}
        self.ended: set[str] = set()           # ablate trial ids whose attempt ended
        self.started: set[str] = set()         # ... whose current attempt's start was emitted
        self.stop: set[str] = set()            # Tune trial ids the engine asked to stop
        # ablate trial ids whose failure the recorder made final while Tune requeued them for a
        # retry (their earlier runs' failures used the retries up): the retry is stopped at its
        # first report and nothing of it is recorded
        self.refused: set[str] = set()

    def callback(self):
        from ray.tune import Callback

        class EngineEvents(_Unpickled, Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                self.relay.result(trial, result)

            def on_trial_complete(self, iteration, trials, trial, **info):
                self.relay.complete(trial)

            def on_trial_recover(self, iteration, trials, trial, **info):
                self.relay.failed(trial, retried=True)

            def on_trial_error(self, iteration, trials, trial, **info):
                self.relay.failed(trial, retried=False)

        return EngineEvents(self)

    def stopper(self):
        from ray.tune.stopper import Stopper

        class EngineStop(_Unpickled, Stopper):
            def __call__(self, trial_id, result):
                return trial_id in self.relay.stop

            def stop_all(self):
                return False

        return EngineStop(self)

    def result(self, trial, result: dict) -> None:
        from ablate.runner.ray_worker import decode

        event = decode(result)
        tid = trial.config["ablate_trial"]
        if event is None or tid in self.refused:
            return
        kind = event["kind"]
        if "started" in event:                              # the attempt's first report
            self.ended.discard(tid)
            self.started.add(tid)
            self.emit(Started(tid, event["started"]["env"]))
            for metrics in event["started"]["history"]:    # epochs a resumed attempt starts after
                self.emit(EpochMetrics(tid, metrics))
                self.last_epoch[tid] = metrics["epoch"]
        if kind == "epoch":
            self.last_epoch[tid] = event["metrics"]["epoch"]
            if self.emit(EpochMetrics(tid, event["metrics"])) == "stop":
                self.stop.add(trial.trial_id)
        elif kind == "final":
            self._end(tid, FinalMetrics(tid, event["metrics"]))
        elif kind == "failure":
            self._end(tid, Failure(tid, event["failure"], event["message"]))

    def _end(self, tid: str, event) -> str:
        """The attempt's outcome; an attempt that died before its first report gets its start
        recorded first, so the outcome lands on its own attempt. Returns the engine's answer."""
        if tid not in self.started:
            self.emit(Started(tid, {"runner": "ray", "note": "ended before its first report"}))
        self.started.discard(tid)
        self.ended.add(tid)
        return self.emit(event)

    def complete(self, trial) -> None:
        """The Tune trial ended without error: by its final report, or stopped early."""
        tid = trial.config["ablate_trial"]
        if tid in self.ended:
            return
        epoch = self.last_epoch.get(tid)
        if trial.trial_id in self.stop:
            self._end(tid, Failure(tid, "pruned", f"pruned after epoch {epoch}"))
        elif self.executor.early_stop is not None:
            from ablate.runner.early_stop import STOPPED_BY_ASHA

            self._end(tid, Failure(tid, "pruned", STOPPED_BY_ASHA.format(epoch=epoch)))
        else:
            self._end(tid, Failure(tid, "error", "the Ray trial ended without reporting final metrics"))

    def failed(self, trial, *, retried: bool) -> None:
        """An attempt failed: Tune retries it (`retried`, on_trial_recover) or gives up
        (on_trial_error). On a retry the engine keeps its claim, so no other driver sharing the
        store takes the trial while Tune is about to run it again."""
        tid = trial.config["ablate_trial"]
        if tid in self.ended:
            return
        text = _error_text(trial)
        # "exit": the worker process died (killed, out of memory, node lost); "error": it raised
        kind = "exit" if _worker_died(trial) else "error"
        answer = self._end(tid, Failure(tid, kind, text, retried_here=retried))
        if retried and answer == "stop":     # final for the engine (kind not retried, or none left)
            self.refused.add(tid)
            self.stop.add(trial.trial_id)
            return
        self.ended.discard(tid)              # Tune runs it again (on_trial_recover): a new attempt


def _teachers(trials: Sequence[Trial]) -> bool:
    return any(reads_saved_weights(getattr(trial, "tricks", ())) for trial in trials)


def storage_uri(storage: str) -> str:
    """Tune wants an absolute local path or a URI (s3://, gs://, file://...)."""
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text(errors="replace") if path else ""
    except OSError:
        text = ""
    return text[-ERROR_TAIL:].strip() or "the Ray trial failed (Tune gave no error text)"


def _worker_died(trial) -> bool:
    """Whether the attempt failed because its worker process or node died (not a raised error)."""
    import ray.exceptions
    from ray import cloudpickle

    try:
        with open(trial.pickled_error_file, "rb") as f:
            exc = cloudpickle.load(f)
    except Exception:  # noqa: BLE001 -- no pickled error: judge by the text
        return "actor died unexpectedly" in _error_text(trial)
    while isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None and exc.cause is not exc:
        exc = exc.cause
    return isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                            ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError))


def _check_reachable(address: str) -> None:
    """Fail within seconds, naming the address, when nothing listens there (ray.init would wait
    much longer)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise AblateError(f"--address '{address}' is not a Ray address: give host:port (e.g. "
                          f"127.0.0.1:6379), ray://host:10001 or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise AblateError(f"cannot reach the Ray cluster at --address '{address}' (host {host}, port {port}): "
                          f"{exc.strerror or exc}; start one with `ray start --head` (or runners/local-cluster.sh "
                          f"start), or leave --address out to run Ray in this process") from None
