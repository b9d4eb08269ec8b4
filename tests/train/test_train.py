"""The trainer: metrics, determinism, pairing, divergence, pruning."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ablate.errors import TrialDiverged, TrialPruned
from ablate.design.plan import plan
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


# -- randomness: only the trial's own generators -------------------------------------------------

# tricks that draw at random, and one that adds modules to the model (their init is random too)
RANDOM_TRICKS = {"mixup": {}, "cutmix": {}, "random_erasing": {}, "cutout": {}, "randaugment": {}, "se": {}}


def test_a_trial_neither_reads_nor_advances_the_global_rng():
    trial = plan(tiny_spec(tricks=RANDOM_TRICKS, design={"kind": "cumulative"}, seeds=1,
                           recipe={"epochs": 1})).trials[-1]
    assert {t.use for t in trial.tricks} == set(RANDOM_TRICKS)
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        m = run_trial(trial)
        assert torch.equal(torch.get_rng_state(), before), "the global RNG was advanced"
        results.append({k: v for k, v in m.items() if k not in ("wall_s", "images_per_s")})
    assert results[0] == results[1]


# -- SAM ---------------------------------------------------------------------------------------

def _sam_setup(rho: float, model: torch.nn.Module, lr: float = 1.0):
    from ablate.train import Setup
    from ablate.tricks import Procedure

    proc = Procedure(epochs=1, batch_size=8, optimizer="sgd", lr=lr, momentum=0.0, nesterov=False,
                     weight_decay=0.0, sam_rho=rho)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return Setup(proc, None, model, opt, torch.nn.CrossEntropyLoss())


def _loss(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def test_sam_ascends_by_rho_along_the_gradient_then_steps_with_the_gradient_there():
    from ablate.train import sam_step

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    rho, lr = 0.3, 0.5
    w = [p.detach().clone() for p in model.parameters()]
    # independently: gradient at w, the ascent point w + rho g/|g|, the gradient there
    grads = torch.autograd.grad(_loss(model, x, y), list(model.parameters()))
    norm = torch.sqrt(sum((gr ** 2).sum() for gr in grads))
    ascent = [rho * gr / norm for gr in grads]
    probe = copy.deepcopy(model)
    with torch.no_grad():
        for p, e in zip(probe.parameters(), ascent):
            p.add_(e)
    assert _loss(probe, x, y) > _loss(model, x, y), "the ascent step raises the loss"
    assert torch.sqrt(sum((e ** 2).sum() for e in ascent)) == pytest.approx(rho)
    far_grads = torch.autograd.grad(_loss(probe, x, y), list(probe.parameters()))

    sam_step(_sam_setup(rho, model, lr), x, y)
    for p, w0, fg in zip(model.parameters(), w, far_grads):
        assert torch.allclose(p.detach(), w0 - lr * fg, atol=1e-6)


def test_sam_counts_each_batch_once_in_batchnorm_running_stats():
    from ablate.train import sam_step

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
    reference = copy.deepcopy(model)
    reference(x)                        # one plain training forward at the same weights
    sam_step(_sam_setup(0.5, model, lr=0.1), x, y)
    bn, ref_bn = model[1], reference[1]
    assert int(bn.num_batches_tracked) == 1
    assert torch.equal(bn.running_mean, ref_bn.running_mean)
    assert torch.equal(bn.running_var, ref_bn.running_var)
    assert bn.track_running_stats, "restored after the second pass"


def test_sam_trial_tracks_one_batchnorm_update_per_step():
    trial = plan(tiny_spec(tricks={"sam": {}}, design={"kind": "one_at_a_time"}, seeds=1)).trials[1]
    setup = prepare(trial)
    from ablate.train import Streams, step_function, train_epoch

    data = setup.data
    mean, std = data.mean_std()
    train_epoch(setup, step_function(setup), Streams.for_seed(trial.seed, torch.device("cpu")),
                data.train_x, data.train_y, first_step=0, mean=mean, std=std, pad=0, flip=False)
    steps = math.ceil(len(data.train_y) / setup.proc.batch_size)
    tracked = {int(m.num_batches_tracked) for m in setup.model.modules()
               if isinstance(m, torch.nn.BatchNorm2d)}
    assert tracked == {steps}
