"""Per-epoch checkpoints of a trial, so a retried trial resumes after its last finished epoch and,
on the CPU, ends with exactly the metrics of an uninterrupted run.

A checkpoint holds everything the next epoch depends on: the model (weights and batch-norm
buffers), the optimiser (momentum, Adam moments), the float16 loss scaler, the EMA weights, the
schedule position (the epoch: the learning rate is a function of the step, no hidden counter),
the epochs' metrics so far, and the state of every random stream of the trial (`Streams`: data
order, base augmentation, tricks). Tricks draw only from the "tricks" stream (torchvision's
generator-less transforms run on a global RNG seeded from it, `global_rng_from`), so these three
generators are all the randomness there is. It is written to a temporary file and renamed, so a
kill mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FILE = "trial.pt"
FORMAT = 1


def path_of(folder: str | Path) -> Path:
    return Path(folder) / FILE


def save(folder: str | Path, *, trial_id: str, epoch: int, setup, streams, history: list[dict[str, Any]]) -> Path:
    """Write the state after `epoch` (atomically: write, fsync, rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "trial_id": trial_id, "epoch": epoch, "history": history,
        "model": setup.model.state_dict(), "optimizer": setup.optimizer.state_dict(),
        "scaler": setup.scaler.state_dict() if setup.scaler is not None else None,
        "ema": setup.ema.state_dict() if setup.ema is not None else None,
        "streams": {name: getattr(streams, name).get_state() for name in ("order", "augment", "tricks")},
    }
    final = path_of(folder)
    tmp = final.with_name(f".{FILE}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def load(folder: str | Path | None) -> dict[str, Any] | None:
    """The checkpoint in `folder`, or None when there is none."""
    if folder is None or not path_of(folder).is_file():
        return None
    # weights_only: tensors, numbers, strings, lists and dicts are all a checkpoint holds
    return torch.load(path_of(folder), map_location="cpu", weights_only=True)


def history(folder: str | Path | None) -> list[dict[str, Any]]:
    """The metrics of the epochs a checkpoint in `folder` holds ([] when none): what a resumed
    attempt reports again, so its record keeps every epoch."""
    state = load(folder)
    return list(state["history"]) if state else []


def resume(folder: str | Path | None, *, trial_id: str, setup, streams) -> tuple[int, list[dict[str, Any]]]:
    """Restore `setup` and `streams` from the checkpoint in `folder`; returns the first epoch to
    run and the history so far ((1, []) when there is no checkpoint)."""
    state = load(folder)
    if state is None:
        return 1, []
    if state.get("format") != FORMAT or state.get("trial_id") != trial_id:
        raise ValueError(f"the checkpoint in {folder} is of trial {state.get('trial_id')!r} (format "
                         f"{state.get('format')}), not of trial {trial_id!r}; give each trial its own folder")
    setup.model.load_state_dict(state["model"])
    setup.optimizer.load_state_dict(state["optimizer"])
    if setup.scaler is not None and state["scaler"] is not None:
        setup.scaler.load_state_dict(state["scaler"])
    if setup.ema is not None and state["ema"] is not None:
        setup.ema.load_state_dict(state["ema"])
    for name, value in state["streams"].items():
        getattr(streams, name).set_state(value)
    return int(state["epoch"]) + 1, list(state["history"])
