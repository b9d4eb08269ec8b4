"""A trial's paths made absolute on the driver, before the trial leaves it.

A spec's relative paths (a command's `cwd`, data roots, model weights, a distillation teacher's
file) mean "relative to where ablate runs". A Ray worker runs elsewhere: its working folder is
Tune's trial folder, so a relative path read there names nothing (or the wrong file). The Ray
executor therefore ships `absolute_trial(trial)` and `absolute_command(config)`, resolved here
against the driver's working folder; this is the one place that knows which fields are paths.

Only the shipped copy changes: the trial keeps its id (computed from the spec as written, so
the same spec run from the same folder resumes the same trials), and the store keeps the spec's
own text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ablate.config.run import CommandTrial
from ablate.design.trial import Trial
from ablate.store import Store, store_url

WEIGHTS_CACHE = "cache"    # model.weights: torchvision's or timm's cache, not a path


def absolute(path: str, base: Path) -> str:
    """`path` with `~` expanded, resolved against `base` when relative."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def absolute_command(config: CommandTrial | None, base: str | Path | None = None) -> CommandTrial | None:
    """The command with an absolute `cwd` (no `cwd`: the driver's folder, where it would run
    here). The program and the script it names are resolved from that folder by the command
    itself, as they are on the driver."""
    if config is None:
        return None
    base = Path(base or Path.cwd())
    return config.model_copy(update={"cwd": absolute(config.cwd or ".", base)})


def _model(cfg, base: Path):
    weights = getattr(cfg, "weights", None)
    if cfg is None or weights is None or weights == WEIGHTS_CACHE:
        return cfg
    return cfg.model_copy(update={"weights": absolute(weights, base)})


def _trick(setting, base: Path):
    params = setting.params
    update = {}
    if getattr(params, "path", None):               # a distillation teacher's state-dict file
        update["path"] = absolute(params.path, base)
    if getattr(params, "model", None) is not None:  # ... and its model config's weights
        model = _model(params.model, base)
        if model is not params.model:
            update["model"] = model
    if not update:
        return setting
    return setting.model_copy(update={"params": params.model_copy(update=update)})


def absolute_trial(trial: Trial, base: str | Path | None = None) -> Trial:
    """`trial` with every path absolute (resolved against `base`, default the working folder);
    its id, label, seed and values unchanged."""
    base = Path(base or Path.cwd())
    data = trial.data
    if getattr(data, "root", None):
        data = data.model_copy(update={"root": absolute(data.root, base)})
    return dataclasses.replace(trial, data=data, model=_model(trial.model, base),
                               tricks=tuple(_trick(t, base) for t in trial.tricks),
                               command=absolute_command(trial.command, base))


def weights_root_for(store: Store | str | Path) -> Path:
    """Where a store's trials save weights: `<folder of the SQLite file>/weights`, or
    `./ablate-weights` for a server database (PostgreSQL...). `store` is a Store or its target
    (a path or URL, as `--store` takes)."""
    if isinstance(store, (str, Path)):
        url = store_url(store)
    else:
        url = getattr(store, "url", "")
    if url.startswith("sqlite") and "///" in url:
        path = url.split("///", 1)[1]
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent / "weights"
    return Path.cwd() / "ablate-weights"
