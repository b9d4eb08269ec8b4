"""The trainer: metrics, determinism, pairing, divergence, pruning."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.errors import TrialDiverged, TrialPruned
from ablate.plan import plan
from ablate.train import prepare, run_trial
from tests.conftest import tiny_spec


def first_trial(**changes):
    return plan(tiny_spec(seeds=2, **changes)).trials[0]


def test_reports_every_epoch_and_returns_final_metrics():
    seen = []
    m = run_trial(first_trial(), seen.append)
    assert [e["epoch"] for e in seen] == [1, 2]
    for e in seen:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "epoch_s"):
            assert math.isfinite(e[key]), key
    assert m["val_acc"] == seen[-1]["val_acc"]
    assert 0 <= m["test_acc"] <= 100 and 0 <= m["test_top5"] <= 100 and m["test_top5"] >= m["test_acc"]
    assert m["params"] > 0 and m["epochs"] == 2 and m["device"] == "cpu" and m["gflops"] > 0


def test_same_seed_same_result_other_seed_other_result():
    p = plan(tiny_spec(seeds=2))
    a, b, c = run_trial(p.trials[0]), run_trial(p.trials[0]), run_trial(p.trials[1])
    assert a["val_loss"] == b["val_loss"] and a["train_loss"] == b["train_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_paired_arms_share_initialisation_and_data_order():
    """Seed s of two arms: same initial weights (when the model is the same) and same batches."""
    p = plan(tiny_spec(tricks={"label_smoothing": {}}, seeds=1))
    base, arm = prepare(p.trials[0]), prepare(p.trials[1])
    for w1, w2 in zip(base.model.parameters(), arm.model.parameters()):
        assert torch.equal(w1, w2)


def test_non_finite_loss_raises_diverged(monkeypatch):
    # BN keeps these small ResNets finite even at lr=10, so poison the inputs instead
    import ablate.train as train

    real = train.to_float
    monkeypatch.setattr(train, "to_float", lambda x, m, s: real(x, m, s) * float("inf"))
    with pytest.raises(TrialDiverged, match="training loss became nan in epoch 1"):
        run_trial(first_trial())


def test_report_may_prune():
    def stop(metrics):
        raise TrialPruned("pruned at epoch 1")

    with pytest.raises(TrialPruned):
        run_trial(first_trial(), stop)


def test_ema_is_evaluated_instead_of_raw_weights():
    p = plan(tiny_spec(tricks={"ema": {"decay": 0.5}}, seeds=1))
    base, ema = run_trial(p.trials[0]), run_trial(p.trials[1])
    assert base["train_loss"] == ema["train_loss"], "EMA does not change training"
    assert base["val_loss"] != ema["val_loss"], "but it changes what is evaluated"


def test_trainer_imports_no_backend():
    import ablate.train as t

    src = open(t.__file__).read()
    assert "import optuna" not in src and "import ray" not in src
