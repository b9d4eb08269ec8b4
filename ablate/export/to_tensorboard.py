"""`ablate export tensorboard`: an experiment's trials as TensorBoard run folders under one logdir.

Layout of `--logdir DIR` (point `tensorboard --logdir DIR` at it):

- `DIR/<arm label>/seed<N>/` per trial (a search's: `DIR/search/<label>/study trial 3/seed<N>/`,
  `DIR/select/<label>/finalist 1/seed<N>/`, `DIR/report/<label>/winner/seed<N>/`; two trials that would share a folder get their ids
  after it): each epoch metric as scalar `epoch/<name>` at step = epoch,
  each final metric as `final/<name>`, the trial's hyperparameters for the HParams plugin, and text
  `ablate/trial` (id, status, reason, error) and `ablate/config` (the resolved config);
- `DIR/` itself: the HParams experiment (every hyperparameter with its values, the `final/*`
  metrics), and the report as text `ablate/report` (the lift table; a search: its report).

HParams: the hyperparameters are `arm`, `label`, `codes` and every key of the flattened config
(`recipe.lr`, `tricks.mixup.alpha`, searched `values.*`) whose value differs between the trials;
keys equal in all of them stay in `ablate/config`. The seed is not one: the seeds of a configuration
are one session group, so the HParams view compares arms with their metric's mean (or min, max,
median) over seeds.

Re-export replaces what an earlier export to DIR wrote (its run folders and event file, listed in
`DIR/.ablate-export.json`) and nothing else: TensorBoard appends event files, so writing beside the
old ones would double every point. A folder it would write that it did not write before (a user's)
stops the export before anything is written, as does a DIR that holds another experiment's export.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

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

MANIFEST = ".ablate-export.json"
SUFFIX = ".ablate"                   # ends the name of every event file ablate writes
DISCRETE_MAX = 30                    # numeric hyperparameters with more values get an interval domain
END_STATUS = {"complete": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "diverged": "STATUS_FAILURE",
              "pruned": "STATUS_ABORTED"}


@dataclass
class TensorBoardExport:
    logdir: Path
    runs: list[str]
    removed: int = 0
    left_out: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self, experiment: str) -> str:
        lines = [f"exported '{experiment}' to TensorBoard logdir {self.logdir}: {len(self.runs)} run folders"
                 + (f" (replacing the {self.removed} of the earlier export)" if self.removed else ""),
                 f"view it with: tensorboard --logdir {self.logdir}"]
        if self.left_out:
            lines.append(f"{self.left_out} stored trials of earlier versions of its spec are not exported "
                         f"(the report leaves them out too)")
        return "\n".join(lines + self.notes)


def safe_name(text: str) -> str:
    """A folder name: letters, digits and `_ . + = - space`; anything else as `_`."""
    out = re.sub(r"[^\w.+= -]", "_", text).strip(" .")[:80]
    return out or "_"


def run_folders(trials: list[TrialRecord]) -> dict[str, str]:
    """{trial id: run folder relative to the logdir}, distinct for every trial."""
    out: dict[str, str] = {}
    for rec in trials:
        if rec.origin in ("design", "adaptive"):
            out[rec.trial_id] = f"{safe_name(rec.label)}/seed{rec.seed}"
        else:
            out[rec.trial_id] = (f"{safe_name(rec.origin)}/{safe_name(rec.label)}/"
                                 f"{safe_name(rec.detail or rec.trial_id)}/seed{rec.seed}")
    counts: dict[str, int] = {}
    for name in out.values():
        counts[name] = counts.get(name, 0) + 1
    return {tid: (f"{name}-{tid[:8]}" if counts[name] > 1 else name) for tid, name in out.items()}


def hparam_keys(trials: list[TrialRecord]) -> list[str]:
    """`arm`, `label`, `codes`, searched values, and the config keys whose value differs between
    the trials (see the module docstring)."""
    keys = sorted({k for rec in trials for k in rec.params} - {"seed"})
    out = []
    for k in keys:
        values = {json.dumps(rec.params[k], sort_keys=True) if k in rec.params else "<absent>" for rec in trials}
        if k in ("arm", "label", "codes") or k.startswith("values.") or len(values) > 1:
            out.append(k)
    return out


def hparam_values(trials: list[TrialRecord], keys: list[str]) -> dict[str, dict[str, object]]:
    """{trial id: {key: value}} with one type per key, as the HParams plugin needs: bool if every
    value is, else a number if every value is, else text (JSON for what is not a string)."""
    out: dict[str, dict[str, object]] = {rec.trial_id: {} for rec in trials}
    for k in keys:
        present = [(rec.trial_id, rec.params[k]) for rec in trials if k in rec.params]
        vals = [v for _, v in present]
        if all(isinstance(v, bool) for v in vals):
            conv = bool
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            conv = float
        else:
            def conv(v):
                return v if isinstance(v, str) else json.dumps(v)
        for tid, v in present:
            out[tid][k] = conv(v)
    return out


def _domain(hp, values: list):
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v))
    if values and isinstance(values[0], float) and len(distinct) > DISCRETE_MAX:
        return hp.RealInterval(min(distinct), max(distinct))
    return hp.Discrete(distinct) if distinct else None


# -- the logdir -------------------------------------------------------------------------------

def read_manifest(root: Path, experiment: str) -> dict:
    """What an earlier export wrote to `root` ({} if none); refuses a logdir that is a file or
    holds another experiment's export."""
    if root.exists() and not root.is_dir():
        raise ExportError(f"--logdir {root} is a file; give a folder (it is made if missing)")
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs, files, name = data["runs"], data["files"], data["experiment"]
        if not (isinstance(runs, list) and isinstance(files, list) and isinstance(name, str)):
            raise ValueError("runs and files must be lists, experiment a name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{path} (what an earlier ablate export wrote there) cannot be read ({exc}); "
                          f"remove it with the folders it lists, or give another --logdir") from None
    if name != experiment:
        raise ExportError(f"--logdir {root} holds the TensorBoard export of experiment '{name}'; TensorBoard's "
                          f"HParams view shows one experiment per logdir: give another folder, e.g. "
                          f"--logdir {root / experiment}")
    return {"runs": [r for r in runs if _inside(r)], "files": [f for f in files if _inside(f) and "/" not in f]}


def _inside(name) -> bool:
    """A relative path that stays inside the logdir (a tampered manifest cannot reach outside)."""
    return isinstance(name, str) and bool(name) and not Path(name).is_absolute() and ".." not in Path(name).parts


def _write_manifest(root: Path, experiment: str, store: str, runs, files) -> None:
    text = json.dumps({"written_by": "ablate export tensorboard", "experiment": experiment, "store": store,
                       "runs": sorted(runs), "files": sorted(files)}, indent=1)
    (root / MANIFEST).write_text(text, encoding="utf-8")


def _remove(root: Path, runs, files) -> int:
    removed = 0
    for name in runs:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
            removed += 1
            parent = path.parent
            while parent != root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    for name in files:
        (root / name).unlink(missing_ok=True)
    return removed


# -- export -----------------------------------------------------------------------------------

def export_tensorboard(store: Store, experiment: str, logdir: str | Path) -> TensorBoardExport:
    """Export `experiment` (a name in `store`) as TensorBoard event files under `logdir` (see the
    module docstring). Bad input raises with nothing written: ReportError (unknown experiment),
    ExportError (no trials, no TensorBoard, a logdir that cannot be used)."""
    require("tensorboard", "tensorboard", "TensorBoard")
    data = collect(store, experiment)
    root = Path(logdir)
    earlier = read_manifest(root, experiment)
    folders = run_folders(data.trials)
    ours = set(earlier.get("runs", []))
    theirs = [n for n in folders.values() if (root / n).exists() and n not in ours]
    if theirs:
        raise ExportError(f"--logdir {root} already has {', '.join(sorted(theirs)[:3])}"
                          f"{' ...' if len(theirs) > 3 else ''}, which an ablate export did not write; nothing "
                          f"was written. Give another folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        # first the intent (what is there and what will be), so an interrupted export is cleaned next time
        _write_manifest(root, experiment, data.store_label, ours | set(folders.values()), earlier.get("files", []))
    except OSError as exc:
        raise ExportError(f"cannot write to --logdir {root}: {exc.strerror or exc}") from None
    removed = _remove(root, ours, earlier.get("files", []))
    from torch.utils.tensorboard import SummaryWriter

    keys = hparam_keys(data.trials)
    values = hparam_values(data.trials, keys)
    for rec in data.trials:
        _write_trial(SummaryWriter, root / folders[rec.trial_id], rec, values[rec.trial_id])
    files, note = _write_root(SummaryWriter, root, store, data, keys, values)
    _write_manifest(root, experiment, data.store_label, folders.values(), files)
    out = TensorBoardExport(root, sorted(folders.values()), removed, data.left_out)
    if note:
        out.notes.append(f"no report yet: {note}")
    return out


def _write_trial(SummaryWriter, folder: Path, rec: TrialRecord, hparams: dict) -> None:
    from tensorboard.plugins.hparams import summary_v2 as hp

    start = rec.started if rec.started is not None else time.time()
    w = SummaryWriter(log_dir=str(folder), filename_suffix=SUFFIX)
    try:
        group = rec.label if rec.origin in ("design", "adaptive") else None   # None: a hash of the values
        w.file_writer.add_summary(hp.hparams_pb(hparams, trial_id=group, start_time_secs=start), walltime=start)
        for name, series in rec.epochs.items():
            for step, value in series:
                w.add_scalar(f"epoch/{name}", value, global_step=step, walltime=rec.epoch_times.get(step, start))
        end = rec.finished if rec.finished is not None else start
        for name, value in rec.final.items():
            w.add_scalar(f"final/{name}", value, global_step=rec.last_epoch, walltime=end)
        w.add_text("ablate/trial", _trial_text(rec), global_step=0, walltime=start)
        w.add_text("ablate/config", "```json\n" + json.dumps(rec.config, indent=1, sort_keys=True) + "\n```",
                   global_step=0, walltime=start)
        if rec.status in END_STATUS:
            w.file_writer.add_summary(_session_end(rec.status, end), walltime=end)
    finally:
        w.close()


def _trial_text(rec: TrialRecord) -> str:
    rows = [("trial id", rec.trial_id), ("status", rec.status), ("origin", rec.origin), ("reason", rec.reason),
            ("arm", f"{rec.arm}: {rec.label}"), ("seed", str(rec.seed)), ("attempts", str(rec.attempts))]
    if rec.kind:
        rows.append(("failure kind", rec.kind))
    text = "\n".join(f"- **{k}**: {v}" for k, v in rows)
    if rec.error:
        text += "\n\n```\n" + rec.error[-4000:] + "\n```"
    return text


def _session_end(status: str, end: float):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(END_STATUS[status]), end_time_secs=end)
    meta = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=info))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=meta,
                                                                tensor=metadata.NULL_TENSOR)])


def _write_root(SummaryWriter, root: Path, store: Store, data: ExperimentData, keys, values) -> tuple[list[str], str | None]:
    """The HParams experiment and the report text, in an event file of the logdir itself."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    hparams = []
    for k in keys:
        domain = _domain(hp, [v[k] for v in values.values() if k in v])
        hparams.append(hp.HParam(k, domain))
    finals = sorted({name for rec in data.trials for name in rec.final})
    metrics = [hp.Metric(f"final/{name}", display_name=name) for name in finals]
    before = {p.name for p in root.glob(f"events.out.tfevents.*{SUFFIX}")}
    w = SummaryWriter(log_dir=str(root), filename_suffix=SUFFIX)
    try:
        w.file_writer.add_summary(hp.hparams_config_pb(hparams=hparams, metrics=metrics))
        with temporary_folder() as tmp:
            paths, why = report_files(store, data, Path(tmp))
            md = next((p for p in paths if p.suffix == ".md"), None)
            if md is not None:
                w.add_text("ablate/report", md.read_text(encoding="utf-8"), global_step=0)
    finally:
        w.close()
    files = sorted({p.name for p in root.glob(f"events.out.tfevents.*{SUFFIX}")} - before)
    return files, why
