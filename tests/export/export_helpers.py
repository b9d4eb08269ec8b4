"""Stores for the export tests: a small cumulative design with known per-epoch and final metrics,
some trials still running (the MLflow databases they export to: tests/conftest.py)."""

from __future__ import annotations

import json

from ablate.design.plan import plan
from ablate.design.spec import spec_to_dict
from ablate.store import Store
from tests.conftest import tiny_spec


def design_spec(**changes):
    return tiny_spec(**{"tricks": {"cosine": {}, "label_smoothing": {}, "mixup": {}},
                        "design": {"kind": "cumulative"}, "seeds": 2, **changes})


def value(arm: int, seed: int, epoch: int) -> float:
    """The val_acc of a trial at an epoch: arms apart by 1 pp, seeds by 0.5, epochs by 5."""
    return 80.0 + arm + 0.5 * seed + 5.0 * epoch


def run_epoch(store, name: str, t, epoch: int) -> None:
    store.add_epoch(name, t.id, {"epoch": epoch, "val_acc": value(t.arm, t.seed, epoch),
                                 "train_loss": 1.0 / epoch, "epoch_s": 2.0, "acc@1 (top)": 0.5 * epoch})


def finish(store, name: str, t, epochs: int = 2) -> None:
    v = value(t.arm, t.seed, epochs)
    store.finish_trial(name, t.id, "complete", metrics={"val_acc": v, "test_acc": v + 1.0, "params": 1000,
                                                        "wall_s": 4.0})


def design_store(path, *, running=(), spec=None):
    """Every trial of `design_spec()` complete after 2 epochs, except (arm, seed) in `running`:
    started, one epoch done. Returns (store, plan)."""
    spec = spec or design_spec()
    store = Store(path, create=True)
    p = plan(spec)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(spec.name, list(p.trials))
    for t in p.trials:
        store.start_trial(spec.name, t.id, {"device": "cpu", "torch": "2.x", "host": "test"})
        run_epoch(store, spec.name, t, 1)
        if (t.arm, t.seed) in running:
            continue
        run_epoch(store, spec.name, t, 2)
        finish(store, spec.name, t)
    return store, p
