"""The other commands as functions: tricks, models, lr-find, NNI import, logs, export."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.api.results import report_folder
from ablate.api.specs import as_spec, plan
from ablate.api.stores import as_store, load_experiment
from ablate.errors import AblateError

if TYPE_CHECKING:
    from ablate.design.spec import Spec
    from ablate.export.to_mlflow import MlflowExport
    from ablate.export.to_tensorboard import TensorBoardExport
    from ablate.nni.convert import Conversion
    from ablate.store import Store


def tricks(names: Sequence[str] | None = None) -> dict[str, Any]:
    """The registered tricks, by name (`ablate tricks`).

    Args:
        names: the tricks to describe (None or empty: all of them).

    Returns:
        {name: trick}; each trick has ``code``, ``title``, ``kind``, ``paper``, ``slot`` and
        ``describe_params()`` (name, type, default, range and help of each parameter).

    Raises:
        AblateError: a name that is not a trick (the message lists those that are).

    Example:
        >>> ablate.api.tricks(["mixup"])["mixup"].paper  # doctest: +SKIP
    """
    from ablate.tricks import all_tricks, get_trick

    if not names:
        return all_tricks()
    try:
        return {n: get_trick(n) for n in names}
    except KeyError as exc:
        raise AblateError(str(exc.args[0])) from None


def models() -> list[dict]:
    """The built-in model families (`ablate models`): one row each with ``model``,
    ``digits_params`` and ``cifar_params`` (parameter counts on digits and on CIFAR shapes, None
    where it cannot be built here), ``needs_timm`` and ``paper``."""
    from ablate.models.catalog import model_rows

    return model_rows()


@dataclass
class LrFind:
    """An LR range test: the trial it trained (the spec's first), its result
    (`ablate.lrfind.LRFindResult`: lrs, losses, suggested lrs) and the CSV and HTML written."""

    trial: Any
    result: Any
    paths: tuple[Path, Path]


def lr_find(spec_or_source: Spec | str | os.PathLike | Mapping, *, start: float = 1e-7, end: float = 10.0,
            steps: int = 100, device: str | None = None, out: str | os.PathLike | None = None,
            on_start: Any = None) -> LrFind:
    """The LR range test (Smith 2017) on the spec's first trial (`ablate lr-find`): the lr grows
    geometrically from `start` to `end` over `steps` batches; the CSV and HTML figure go to
    `out` (default reports/<experiment>). `on_start(trial)` is called once the checks pass,
    before training. Bad input (the range, a command spec, the device, an unwritable folder)
    raises AblateError before anything is trained or written."""
    from ablate.lrfind import check_range, lr_find_folder, lr_range_test, write_lr_find
    from ablate.preflight import check_device

    check_range(start, end, steps)
    spec = as_spec(spec_or_source)
    if spec.trial is not None:
        raise AblateError(f"spec '{spec.name}' runs a command ('trial:'), which ablate cannot sweep the lr of; "
                          f"lr-find needs a spec with model, data and recipe")
    check_device(device)
    folder = report_folder(spec.name, out)
    lr_find_folder(folder, create=False)       # a file or a link there: refused before training
    trial = plan(spec).trials[0]
    if on_start is not None:
        on_start(trial)
    result = lr_range_test(trial, start=start, end=end, steps=steps, device=device)
    return LrFind(trial, result, write_lr_find(result, folder))


def import_nni(config: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[Conversion, str]:
    """Convert an NNI experiment config (v1 or v2 YAML) to an ablate spec (`ablate import-nni`).

    Returns:
        (conversion, text): the conversion (``.spec`` as a dict, ``.notes``: what became what and
        what was not carried over) and the spec's YAML, written to `out` when given.

    Raises:
        SpecError: what NNI's config has that ablate cannot run (named by its key).
        AblateError: `out` is the config itself or cannot be written.
    """
    from ablate.nni import check_converted, convert_config, spec_yaml

    conversion = convert_config(config)
    check_converted(conversion)
    if out is None:
        return conversion, spec_yaml(conversion, f"{conversion.spec['name']}.yaml")
    if Path(out).resolve() == Path(config).resolve():
        raise AblateError(f"-o {out} is the NNI config itself; give another file name")
    text = spec_yaml(conversion, out)
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AblateError(f"cannot write {out}: {exc}") from None
    return conversion, text


def logs(store: Store | str | os.PathLike | None, experiment: str, trial: str | None = None) -> str:
    """Every attempt of the experiment's failed trials, or of `trial` (an id or its first
    characters), as text: status, kind, host, error and output (`ablate logs`); says so when
    no trial failed."""
    from ablate.runner.logs import attempts, failed_trial_ids, find_trials, format_attempts, gone_drivers

    store = as_store(store)
    load_experiment(store, experiment)   # an unknown name: raises with the list of experiments
    frame = store.trials_frame(experiment)
    if trial is not None:
        ids = find_trials(frame, trial, experiment)
    else:
        ids = failed_trial_ids(store, experiment)
        if not ids:
            counts = frame["status"].value_counts().to_dict()
            parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
            return (f"{experiment}: no failed attempt ({parts}); `ablate logs {experiment} TRIAL` shows any "
                    f"trial's attempts")
    statuses = dict(zip(frame["trial_id"], frame["status"]))
    gone = gone_drivers(store, experiment, [t for t in ids if statuses.get(t) == "running"])
    return format_attempts(attempts(store, experiment, set(ids)), gone=gone, statuses=statuses)


def export(store: Store | str | os.PathLike | None, experiment: str, tracker: str, *,
           tracking_uri: str | None = None, logdir: str | os.PathLike | None = None) -> MlflowExport | TensorBoardExport:
    """Send an experiment's trials to MLflow (`tracking_uri`, default $MLFLOW_TRACKING_URI) or
    TensorBoard (`logdir`); again, it updates what an earlier export wrote (`ablate export`).
    Returns the export's summary (``.describe(experiment)``)."""
    from ablate.export import export_mlflow, export_tensorboard

    store = as_store(store)
    if tracker == "mlflow":
        return export_mlflow(store, experiment, tracking_uri=tracking_uri)
    if tracker == "tensorboard":
        if logdir is None:
            raise AblateError("a TensorBoard export needs logdir, the folder its run folders go to")
        return export_tensorboard(store, experiment, logdir)
    raise AblateError(f"unknown tracker '{tracker}'; choose mlflow or tensorboard")
