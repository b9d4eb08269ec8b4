"""What an export sends, read from the store: one record per trial of an experiment's current spec
(the trials its report counts), with the flattened config, trick codes, per-epoch and final
metrics; and the experiment's report files (lift table or search report, md, csv, html).

Tracker-neutral: `ablate.export.to_mlflow` and `ablate.export.to_tensorboard` write these.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ablate.errors import AblateError, ReportError
from ablate.report import build_report, write_report
from ablate.report.frames import load_experiment, outcomes
from ablate.report.search import build_search_report, write_search_report
from ablate.store import numeric_metrics

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec
    from ablate.store import Store

Scalar = str | int | float | bool | None


class ExportError(AblateError):
    """An export that cannot be made: a missing extra, an unusable tracking URI or logdir, an
    experiment with nothing to export."""


def require(module: str, extra: str, what: str):
    """Import `module` (a tracker's library), or say which pip command installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"ablate export {extra} needs {what}, which is not installed here ({exc}); "
                          f"install it with: pip install 'ablate[{extra}]'") from None


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial as the trackers see it."""

    trial_id: str
    arm: int
    label: str
    seed: int
    reason: str                      # why it was added, as the store keeps it
    origin: str                      # the reason's first word: design, adaptive, search, select, report
    status: str                      # pending, running, complete, failed, diverged, pruned
    kind: str | None                 # the failure kind of the last attempt
    error: str | None
    attempts: int
    started: float | None            # seconds since the Unix epoch
    finished: float | None
    config: dict                     # the resolved config, as stored with the trial
    codes: tuple[str, ...]           # table codes of its tricks, in spec order
    params: dict[str, Scalar]        # the config flattened with dotted keys, plus arm, label, codes
    final: dict[str, float]          # final metrics as the trial reported them (NaN kept)
    epochs: dict[str, list[tuple[int, float]]]   # metric -> [(epoch, value)], NaN points left out
    epoch_times: dict[int, float]    # epoch -> when it ended (start + the epochs' epoch_s so far)
    env: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A run name: the arm's label and seed; after why it was added, unless it is a design's
        (a search's `search: study trial 3`, `select: finalist 1`, `report: winner`)."""
        name = f"{self.label} seed {self.seed}"
        return name if self.origin in ("design", "adaptive") else f"{self.reason} | {name}"

    @property
    def detail(self) -> str:
        """The reason after its first word: `study trial 3`, `finalist 1`, `hand-picked`."""
        return self.reason.split(":", 1)[1].strip() if ":" in self.reason else ""

    @property
    def last_epoch(self) -> int:
        return max(self.epoch_times, default=0)


@dataclass
class ExperimentData:
    name: str
    store_label: str
    plan: Any                       # ablate.design.plan.Plan
    kind: str                       # the design kind, or "search"
    spec_json: str
    trials: list[TrialRecord]
    left_out: int                   # stored trials of earlier versions of the spec (not exported)

    @property
    def is_search(self) -> bool:
        return self.plan.spec.search is not None


def collect(store: Store, experiment: str) -> ExperimentData:
    """Every trial of `experiment` that its current spec's report counts (a search: every stored
    trial), in arm and seed order. Unknown experiment: ReportError listing the stored ones; no
    such trial: ExportError."""
    p = load_experiment(store, experiment)
    frame = store.trials_frame(experiment)
    spec = p.spec
    current = frame if spec.search is not None else outcomes(p, frame)
    left_out = len(frame) - len(current)
    if not len(current):
        older = (f"; its {left_out} stored trials belong to earlier versions of its spec, which the report "
                 f"leaves out too" if left_out else "")
        raise ExportError(f"experiment '{experiment}' in store '{store.label}' has no trials to export{older}; "
                          f"run it first (ablate run SPEC --store {store.label})")
    epochs = store.epochs_frame(experiment)
    by_trial = {tid: g for tid, g in epochs.groupby("trial_id", sort=False)} if len(epochs) else {}
    codes_of = _trick_codes(spec)
    records = []
    for r in current.itertuples(index=False):
        row = store.trial_row(experiment, r.trial_id)
        config = json.loads(row["config"])
        started = _num(r.started)
        series, times = _epoch_series(by_trial.get(r.trial_id), started)
        codes = tuple(codes_of(config))
        params = flatten_config(config, codes_of)
        params.update({"arm": int(r.arm), "label": str(r.label), "codes": "+".join(codes) or "(none)"})
        records.append(TrialRecord(
            trial_id=r.trial_id, arm=int(r.arm), label=str(r.label), seed=int(r.seed), reason=str(r.reason),
            origin=str(r.reason).split(":", 1)[0].strip() or "design", status=str(r.status),
            kind=None if pd.isna(r.kind) else str(r.kind), error=None if pd.isna(r.error) else str(r.error),
            attempts=int(r.attempts), started=started, finished=_num(r.finished), config=config, codes=codes,
            params=params, final=numeric_metrics(json.loads(row["metrics"])) if row["metrics"] else {},
            epochs=series, epoch_times=times, env=_json_dict(r.env)))
    kind = "search" if spec.search is not None else spec.design.kind
    return ExperimentData(experiment, store.label, p, kind, store.experiment(experiment)["spec"], records, left_out)


def flatten_config(config: dict, codes_of=None) -> dict[str, Scalar]:
    """The resolved config with dotted keys: `recipe.lr`, `data.name`, `tricks.<key>.use` and
    `tricks.<key>.<param>` (the trick's key in the spec), `values.<searched path>`, `seed`.
    Lists become JSON text; an empty mapping is '{}' (no tricks: no `tricks.*` key)."""
    out: dict[str, Scalar] = {}
    tricks = {}
    for entry in config.get("tricks", []):
        key = codes_of.key_of(entry) if codes_of is not None else entry["use"]
        while key in tricks:             # the same trick twice under one key: keep both
            key += "_"
        tricks[key] = {"use": entry["use"], **entry.get("params", {})}
    for k, v in config.items():
        if k == "tricks":
            if tricks:               # none (a baseline): the `codes` param says so
                _flatten(tricks, "tricks", out)
        elif k == "values":
            out.update({f"values.{path}": _scalar(x) for path, x in v.items()})
        else:
            _flatten(v, k, out)
    return out


def _flatten(value, key: str, out: dict) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{key}.{k}", out)
    else:
        out[key] = _scalar(value)


def _scalar(value) -> Scalar:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return value


class _TrickCodes:
    """A stored trick entry ({use, params}) to the spec's key and table code for it."""

    def __init__(self, spec: Spec) -> None:
        self.order = list(spec.tricks)
        self.by_text = {json.dumps(t.resolved(), sort_keys=True): (k, t.code) for k, t in spec.tricks.items()}

    def _match(self, entry) -> tuple[str, str]:
        # a search may have changed the parameters: then the spec entry of the same trick
        hit = self.by_text.get(json.dumps(entry, sort_keys=True))
        if hit is None:
            hit = next(((k, c) for text, (k, c) in self.by_text.items() if json.loads(text)["use"] == entry["use"]),
                       (entry["use"], entry["use"]))
        return hit

    def key_of(self, entry) -> str:
        return self._match(entry)[0]

    def __call__(self, config: dict) -> list[str]:
        found = [self._match(e) for e in config.get("tricks", [])]
        rank = {k: i for i, k in enumerate(self.order)}
        return [c for k, c in sorted(found, key=lambda kc: rank.get(kc[0], len(rank)))]


def _trick_codes(spec: Spec) -> _TrickCodes:
    return _TrickCodes(spec)


def _epoch_series(frame, started: float | None) -> tuple[dict, dict]:
    """{metric: [(epoch, value)]} without NaN points (the store's frame has NaN where a trial did
    not report a metric), and when each epoch ended."""
    if frame is None or not len(frame):
        return {}, {}
    frame = frame.sort_values("epoch")
    epochs = [int(e) for e in frame["epoch"]]
    series = {}
    for col in frame.columns:
        if col in ("trial_id", "epoch"):
            continue
        points = [(e, float(v)) for e, v in zip(epochs, frame[col], strict=True) if not _is_nan(v)]
        if points:
            series[col] = points
    times, t = {}, started if started is not None else 0.0
    secs = dict(series.get("epoch_s", []))
    for e in epochs:
        t += secs.get(e, 0.0)
        times[e] = t
    return series, times


def _is_nan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def _num(v) -> float | None:
    return None if _is_nan(v) else float(v)


def _json_dict(text) -> dict:
    if not isinstance(text, str) or not text:
        return {}
    try:
        out = json.loads(text)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def report_files(store: Store, data: ExperimentData, folder: Path) -> tuple[list[Path], str | None]:
    """Write the experiment's report (the lift table of a design, the search report of a search)
    as md, csv and html into `folder`, as `ablate report` would. Returns the files, and why there
    are none when the report cannot be built yet (e.g. no complete trial of the baseline)."""
    try:
        if data.is_search:
            return write_search_report(build_search_report(store, data.plan), folder, ("md", "csv", "html")), None
        return write_report(build_report(store, data.name), folder, ("md", "csv", "html")), None
    except ReportError as exc:
        return [], str(exc)


def temporary_folder():
    return tempfile.TemporaryDirectory(prefix="ablate-export-")
