"""`ablate export mlflow`: an experiment's trials as MLflow runs, through MLflow's own client.

Layout: one MLflow experiment named after the ablate experiment; in it one run per trial
(params: the resolved config flattened with dotted keys, seed, `arm`, `label`, `codes`; metrics:
each epoch metric under its own name with the epoch as step, each final metric as
`final.<name>`; tags: `ablate.trial_id`, `ablate.experiment`, `ablate.status`, `ablate.origin`,
`ablate.reason`, the error and where it ran; the config as `config.json`), all children of one
summary run (`ablate.kind = summary`) whose artifacts are the report: `report/lift.md`,
`report/lift.csv`, `report/report.html` (a search: its search report), and `spec.json`.

Idempotent: runs are found by their `ablate.trial_id` tag. A run whose content is unchanged (its
`ablate.fingerprint` tag) is left alone; one that holds part of what the store holds now (a
trial that ran more epochs, finished, failed) is updated in place: tags, status, the metric
points it lacks. MLflow keeps params and metric points for good, so a run that contradicts the
store (an arm relabelled, a trial run again with other values) is replaced: the old run is
deleted (MLflow keeps it restorable) and a new one made. Active runs of one trial beyond the
first are deleted too, so there is never more than one.

MLflow's limits, with one rule each: a key (param, metric, tag) keeps letters, digits and
`_ - . / space`, any other character becomes `_`, and a key over 250 characters (or one that
would equal another after that) is cut and ends with `-` and 8 hex digits of its SHA-256; a
param value over 6,000 characters is cut and says so (the whole config is in `config.json`);
a tag value over 8,000 characters keeps its end (an error's last lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import json
import math
import posixpath
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ablate.export.mlflow_uri import artifact_location, open_client, shown_uri
from ablate.export.trials import (
    ExperimentData,
    ExportError,
    TrialRecord,
    collect,
    report_files,
    require,
    temporary_folder,
)

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

MAX_KEY = 250             # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
MAX_PARAM_VALUE = 6000    # MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE = 8000      # MAX_TAG_VAL_LENGTH
CUT_NOTE = " ... (cut to MLflow's 6000 characters; the whole config is in config.json)"
TRIAL_TAG = "ablate.trial_id"
KIND_TAG = "ablate.kind"
FINGERPRINT_TAG = "ablate.fingerprint"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
STATUS = {"pending": "SCHEDULED", "running": "RUNNING", "complete": "FINISHED", "failed": "FAILED",
          "diverged": "FAILED", "pruned": "KILLED"}


@dataclass
class MlflowExport:
    """What an export did."""

    tracking_uri: str
    experiment_id: str
    summary_run_id: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    replaced: int = 0
    duplicates_removed: int = 0
    left_out: int = 0
    artifacts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self, experiment: str) -> str:
        lines = [f"exported '{experiment}' to MLflow experiment '{experiment}' (id {self.experiment_id}) at "
                 f"{shown_uri(self.tracking_uri)}: {self.created} runs created, {self.updated} updated, "
                 f"{self.unchanged} unchanged" + (f", {self.replaced} replaced" if self.replaced else "")
                 + (f", {self.duplicates_removed} duplicate runs deleted" if self.duplicates_removed else "")]
        if self.artifacts:
            lines.append(f"report: {', '.join(self.artifacts)} in run {self.summary_run_id} (the trials' parent)")
        if self.left_out:
            lines.append(f"{self.left_out} stored trials of earlier versions of its spec are not exported "
                         f"(the report leaves them out too)")
        return "\n".join(lines + self.notes)


# -- MLflow's limits ------------------------------------------------------------------------

class KeyNamer:
    """Names as MLflow keys (see the module docstring), the same name always the same key."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.taken: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in self.keys:
            return self.keys[name]
        key = re.sub(r"[^A-Za-z0-9_.\- /]", "_", name)
        if posixpath.normpath(key) != key or key.startswith("/") or key in ("", ".") or key.startswith(".."):
            key = key.replace("/", "_").lstrip(".") or "_"
        if len(key) > MAX_KEY or (key in self.taken and self.taken[key] != name):
            key = key[:MAX_KEY - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        self.keys[name], self.taken[key] = key, name
        return key


def param_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > MAX_PARAM_VALUE:
        text = text[:MAX_PARAM_VALUE - len(CUT_NOTE)] + CUT_NOTE
    return text


def tag_value(text: str) -> str:
    return text if len(text) <= MAX_TAG_VALUE else "..." + text[-(MAX_TAG_VALUE - 3):]


# -- export -----------------------------------------------------------------------------------

def export_mlflow(store: Store, experiment: str, *, tracking_uri: str | None = None) -> MlflowExport:
    """Export `experiment` (a name in `store`) to MLflow at `tracking_uri` (see the module
    docstring for the layout and the update rule). Bad input raises, with nothing written:
    ReportError (unknown experiment), ExportError (no trials, no MLflow, an unusable URI)."""
    require("mlflow", "mlflow", "MLflow")
    data = collect(store, experiment)
    client, uri = open_client(tracking_uri)
    exp_id = _experiment(client, uri, data)
    runs = _existing_runs(client, exp_id)
    out = MlflowExport(uri, exp_id, "", left_out=data.left_out)
    summary = _summary_run(client, exp_id, data, runs.pop("summary", []))
    out.summary_run_id = summary
    namer = KeyNamer()
    for rec in data.trials:
        found = runs.get(rec.trial_id, [])
        for extra in found[1:]:
            client.delete_run(extra.info.run_id)
            out.duplicates_removed += 1
        _export_trial(client, exp_id, summary, data, rec, found[0] if found else None, namer, out)
    with temporary_folder() as tmp:
        paths, why = report_files(store, data, Path(tmp))
        _replace_report(client, summary, paths)
        out.artifacts = [f"report/{p.name}" for p in paths]
    client.set_tag(summary, "ablate.report", "written" if paths else tag_value(f"not yet: {why}"))
    if why:
        out.notes.append(f"no report yet: {why}")
    return out


def _experiment(client, uri: str, data: ExperimentData) -> str:
    found = client.get_experiment_by_name(data.name)
    if found is not None and found.lifecycle_stage == "deleted":
        raise ExportError(f"MLflow experiment '{data.name}' at {shown_uri(uri)} is deleted; restore it "
                          f"(mlflow experiments restore --experiment-id {found.experiment_id}) or remove it for "
                          f"good (mlflow gc), then export again")
    spec = data.plan.spec
    note = ((spec.description + "\n\n") if spec.description else "") + (
        f"Exported by ablate from store {data.store_label}: one run per trial, under the summary run whose "
        f"artifacts hold the report (lift table, HTML report).")
    tags = {"ablate.experiment": data.name, "ablate.store": data.store_label, "mlflow.note.content": note}
    if found is None:
        exp_id = client.create_experiment(data.name, artifact_location=artifact_location(uri, data.name), tags=tags)
    else:
        exp_id = found.experiment_id
        for k, v in tags.items():
            if found.tags.get(k) != v:
                client.set_experiment_tag(exp_id, k, v)
    return exp_id


def _existing_runs(client, exp_id: str) -> dict[str, list]:
    """Active runs made by ablate: {trial id: [runs, oldest first]}, and 'summary'."""
    from mlflow.entities import ViewType

    out: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        for run in page:
            tags = run.data.tags
            key = "summary" if tags.get(KIND_TAG) == "summary" else tags.get(TRIAL_TAG)
            if key:
                out.setdefault(key, []).append(run)
        token = page.token
        if not token:
            return out


def _summary_run(client, exp_id: str, data: ExperimentData, found: list) -> str:
    spec = data.plan.spec
    tags = {KIND_TAG: "summary", "ablate.experiment": data.name, "ablate.store": data.store_label,
            "ablate.design": data.kind, "ablate.metric": spec.metric.name, "ablate.trials": str(len(data.trials)),
            RUN_NAME_TAG: f"{data.name}: report"}
    for extra in found[1:]:
        client.delete_run(extra.info.run_id)
    if found:
        run_id = found[0].info.run_id
        _set_tags(client, run_id, tags)
    else:
        run_id = client.create_run(exp_id, tags=tags, run_name=tags[RUN_NAME_TAG]).info.run_id
    client.log_text(run_id, json.dumps(json.loads(data.spec_json), indent=1, sort_keys=True), "spec.json")
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _replace_report(client, run_id: str, paths: list[Path]) -> None:
    """The report files as the run's `report/` artifacts, the earlier export's removed first
    (where the artifact store can delete; elsewhere same-named files are overwritten)."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts("report")
    except (NotImplementedError, MlflowException):
        pass       # an artifact store that cannot delete: same-named files are overwritten below
    for p in paths:
        client.log_artifact(run_id, str(p), "report")


def _trial_content(rec: TrialRecord, data: ExperimentData, parent: str, namer: KeyNamer):
    """(params, tags, epoch points, final metrics) of a trial, as MLflow will hold them."""
    params = {namer(k): param_value(v) for k, v in rec.params.items()}
    tags = {TRIAL_TAG: rec.trial_id, KIND_TAG: "trial", "ablate.experiment": data.name,
            "ablate.status": rec.status, "ablate.origin": rec.origin, "ablate.reason": tag_value(rec.reason),
            "ablate.attempts": str(rec.attempts), PARENT_TAG: parent, RUN_NAME_TAG: rec.name[:MAX_KEY]}
    if rec.kind:
        tags["ablate.failure_kind"] = rec.kind
    if rec.error:
        tags["ablate.error"] = tag_value(rec.error)
    for k, v in rec.env.items():
        if v is not None:
            tags[namer(f"ablate.env.{k}")] = tag_value(str(v))
    points = {namer(name): [(step, value, rec.epoch_times.get(step)) for step, value in series]
              for name, series in rec.epochs.items()}
    final = {namer(f"final.{name}"): value for name, value in rec.final.items()}
    return params, tags, points, final


def _fingerprint(rec: TrialRecord, params, tags, points, final) -> str:
    text = json.dumps([params, tags, {k: [(s, _plain(v)) for s, v, _ in p] for k, p in points.items()},
                       {k: _plain(v) for k, v in final.items()}, rec.status, rec.started, rec.finished],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(v: float):
    return "nan" if math.isnan(v) else v


def _export_trial(client, exp_id, parent, data, rec: TrialRecord, run, namer, out: MlflowExport) -> None:
    params, tags, points, final = _trial_content(rec, data, parent, namer)
    tags[FINGERPRINT_TAG] = _fingerprint(rec, params, tags, points, final)
    if run is not None and run.data.tags.get(FINGERPRINT_TAG) == tags[FINGERPRINT_TAG]:
        out.unchanged += 1
        return
    replaced = False
    if run is not None:
        missing = _missing_points(client, run, params, points, final)
        if missing is None:
            client.delete_run(run.info.run_id)
            replaced = True
        else:
            run_id = run.info.run_id
            new_params = {k: v for k, v in params.items() if k not in run.data.params}
            stale = [k for k in run.data.tags if k.startswith("ablate.") and k not in tags]
            new_final = {k: v for k, v in final.items() if k not in run.data.metrics}
            _log(client, run_id, rec, new_params, tags, missing, new_final)
            for k in stale:
                client.delete_tag(run_id, k)
            _set_status(client, run_id, rec, run.info.status)
            out.updated += 1
            return
    start = rec.started if rec.started is not None else time.time()
    run_id = client.create_run(exp_id, start_time=_ms(start), tags={TRIAL_TAG: rec.trial_id},
                               run_name=tags[RUN_NAME_TAG]).info.run_id
    _log(client, run_id, rec, params, tags, points, final)
    client.log_dict(run_id, rec.config, "config.json")
    _set_status(client, run_id, rec, "RUNNING")
    if replaced:
        out.replaced += 1
    else:
        out.created += 1


def _missing_points(client, run, params, points, final):
    """The epoch points `run` lacks, or None when it holds something the store no longer does
    (another param value, another value at a step, a step the store has not, a final metric
    that changed): such a run cannot be corrected in MLflow, only replaced."""
    have = run.data.params
    if any(k in have and have[k] != v for k, v in params.items()):
        return None
    for k, v in final.items():
        if k in run.data.metrics and not _same(run.data.metrics[k], v):
            return None
    missing = {}
    for key, series in points.items():
        logged = {}
        if key in run.data.metrics:
            for m in client.get_metric_history(run.info.run_id, key):
                if m.step in logged:
                    return None
                logged[m.step] = m.value
        want = {s: v for s, v, _ in series}
        if any(s not in want or not _same(v, want[s]) for s, v in logged.items()):
            return None
        missing[key] = [p for p in series if p[0] not in logged]
    # a metric the run has and the store no longer reports at all
    if any(k not in points and k not in final for k in run.data.metrics):
        return None
    return missing


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _log(client, run_id: str, rec: TrialRecord, params: dict, tags: dict, points: dict, final: dict) -> None:
    """One batch (MLflow's client splits it at its limits); final metrics at the last epoch's step."""
    from mlflow.entities import Metric, Param, RunTag

    now = _ms(time.time())
    metrics = [Metric(k, v, _ms(t) if t is not None else now, s) for k, series in points.items()
               for s, v, t in series]
    end = _ms(rec.finished) if rec.finished is not None else now
    metrics += [Metric(k, v, end, rec.last_epoch) for k, v in final.items()]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])


def _set_tags(client, run_id: str, tags: dict) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _set_status(client, run_id: str, rec: TrialRecord, current: str) -> None:
    status = STATUS[rec.status]
    if status in ("FINISHED", "FAILED", "KILLED"):
        end = rec.finished if rec.finished is not None else time.time()
        client.set_terminated(run_id, status, end_time=_ms(end))
    elif status != current:
        client.update_run(run_id, status=status)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))
