"""Shared pieces of the search tests: tiny search specs and fake trainers whose metric is a
known function of the sampled values (plus seed noise)."""

from __future__ import annotations

import copy

import yaml

from ablate.design.spec import parse_spec

SEARCH = {
    "name": "srch",
    "data": {"name": "digits", "image_size": 8, "train_size": 64},
    "model": {"name": "cifar_resnet", "depth": 8, "width": 8},
    "recipe": {"epochs": 2, "batch_size": 16, "lr": 0.05, "eval_batch_size": 512},
    "tricks": {"mixup": {"alpha": 0.2}, "label_smoothing": {"eps": 0.1}},
    "seeds": 6,             # 1 to search, 3 to select among the finalists, 2 to report on
    "search": {
        "params": {
            "recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
            "tricks.mixup.alpha": {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1},
        },
        "sampler": {"name": "random", "seed": 0},
        "n_trials": 6,
    },
}


def search_dict(**search_changes) -> dict:
    """SEARCH with `search:` fields changed; a search with nothing after it (validate false, no
    compare_to or per_arm) gets the one seed it runs on."""
    d = copy.deepcopy(SEARCH)
    for k, v in search_changes.items():
        if v is None:
            d["search"].pop(k, None)
        else:
            d["search"][k] = v
    s = d["search"]
    if s.get("validate") is False and not s.get("compare_to") and not s.get("per_arm"):
        d["seeds"] = 1
    return d


def search_spec(d: dict | None = None, **search_changes):
    d = d if d is not None else search_dict(**search_changes)
    return parse_spec(yaml.safe_dump(d, sort_keys=False), source="srch.yaml")


def score(trial) -> float:
    """A smooth function of the searched values: best at lr = 0.1, alpha = 0.5."""
    import math

    lr = trial.recipe.lr if trial.recipe is not None else float(trial.values.get("lr", 0.1))
    alpha = next((t.params.alpha for t in trial.tricks if t.use == "mixup"), 0.5) if trial.recipe else 0.5
    return 90.0 - 10.0 * (math.log10(lr) + 1.0) ** 2 - 8.0 * (alpha - 0.5) ** 2


def fake_train(trial, report, device=None):
    """No training: two epochs whose val_acc approaches `score` (no seed noise)."""
    s = score(trial)
    report({"epoch": 1, "val_acc": s - 5.0})
    report({"epoch": 2, "val_acc": s})
    return {"val_acc": s, "test_acc": s, "wall_s": 0.01}
