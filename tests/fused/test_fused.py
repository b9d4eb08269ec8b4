"""Trials fused into one model: the fused model, optimiser and loop equal one-at-a-time training
within float tolerance; fusion decisions trick by trick; the executor in the engine.

Tolerance: fused members run grouped convolutions and batched matmuls, whose sums run in
another order than one model's convolution and linear layer (about 1e-7 relative on a
forward), and two epochs of SGD carry that along; losses must agree to 1e-5 relative here
(measured: about 2e-7). Accuracies are counts of argmaxes, so they agree exactly unless a
logit pair is within that tolerance: within one example of the validation set is allowed.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ablate.data import load_data
from ablate.errors import TrialDiverged
from ablate.fused.loop import train_group
from ablate.fused.model import NotFusable, fuse_input, fuse_models, split_output, unfuse_into
from ablate.fused.optim import FusedSGD, MemberSettings
from ablate.fused.rules import TRICK_FUSION, fusion_decision, fusion_key
from ablate.models import build_model
from ablate.design.plan import plan
from ablate.runner.events import EpochMetrics, Failure, FinalMetrics, Started
from ablate.train import run_trial
from ablate.design.trial import Trial
from ablate.tricks import get_trick, trick_names
from ablate.config.sections import TrickSetting
from tests.conftest import tiny_spec

LOSS_RTOL = 1e-5
EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: on a shared 2-core machine two threads per model run 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _close(a: float, b: float, key: str, val_n: int) -> bool:
    if key.endswith("acc"):
        return abs(a - b) <= 100.0 / val_n + 1e-9
    return math.isclose(a, b, rel_tol=LOSS_RTOL, abs_tol=1e-7)


def _run_fused(trials):
    epochs = {t.id: [] for t in trials}
    ends = {}

    def report(k, metrics):
        epochs[trials[k].id].append(metrics)
        return True

    def ended(k, outcome, payload):
        ends[trials[k].id] = (outcome, payload)

    train_group(trials, report, ended, device="cpu")
    return epochs, ends


# -- the fused model and optimiser ------------------------------------------------------------

@pytest.mark.parametrize("cfg, edits", [
    ({"name": "convnet", "width": 4}, ()),
    ({"name": "cifar_resnet", "depth": 8, "width": 4, "shortcut": "padding"}, ()),
    ({"name": "cifar_resnet", "depth": 11, "width": 4, "block": "bottleneck"}, ("stride_in_3x3", "deep_stem",
                                                                                "avgpool_shortcut")),
    ({"name": "cifar_resnet", "depth": 8, "width": 4, "preact": True}, ()),
    ({"name": "airbench", "widths": [8, 16, 16], "stem": 4}, ()),
])
def test_the_fused_model_computes_each_member_and_keeps_its_batchnorm_statistics(cfg, edits):
    from pydantic import TypeAdapter

    from ablate.models import ModelConfig, resnet

    config = TypeAdapter(ModelConfig).validate_python(cfg)
    torch.manual_seed(0)
    models = [build_model(config, in_channels=3, num_classes=5) for _ in range(3)]
    for model in models:                       # ResNet-B, -C, -D: the structural tricks that fuse
        for edit in edits:
            getattr(resnet, edit)(model)
    fused = fuse_models(models)
    xs = torch.randn(3, 6, 3, 8, 8)
    out = split_output(fused(fuse_input(xs)), 3)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(xs[k]), rtol=1e-5, atol=1e-5)
    copies = [build_model(config, in_channels=3, num_classes=5) for _ in range(3)]
    for model in copies:
        for edit in edits:
            getattr(resnet, edit)(model)
    unfuse_into(fused, copies)
    for model, copy in zip(models, copies):      # train-mode forwards updated both the same way
        for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_module_the_fused_model_does_not_know_is_refused():
    models = [nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm(4)) for _ in range(2)]
    with pytest.raises(NotFusable, match="LayerNorm"):
        fuse_models(models)
    with pytest.raises(NotFusable, match="shapes"):
        fuse_models([nn.Sequential(nn.Conv2d(3, 4, 3)), nn.Sequential(nn.Conv2d(3, 5, 3))])


def test_fused_sgd_equals_torch_sgd_for_each_member_with_its_own_settings():
    settings = [MemberSettings(0.9, False, 5e-4, True), MemberSettings(0.9, True, 1e-2, False),
                MemberSettings(0.0, False, 0.0, True)]
    lrs = [0.1, 0.05, 0.3]
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2))
              for _ in settings]
    fused = fuse_models(models)
    names, params = zip(*fused.named_parameters())
    shapes = dict(models[0].named_parameters())
    opt = FusedSGD(list(params), [shapes[n].ndim for n in names], settings)
    refs = []
    for model, s, lr in zip(models, settings, lrs):
        from ablate.tricks.weight_decay import param_groups

        refs.append(torch.optim.SGD(param_groups(model, s.weight_decay, decay_norm_and_bias=s.decay_norm_and_bias),
                                    lr=lr, momentum=s.momentum, nesterov=s.nesterov))
    _train_both_and_compare(fused, opt, models, refs, lrs, steps=3, make=lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 2)))


@pytest.mark.parametrize("family", ["adam", "adamw"])
def test_fused_adam_equals_torch_adam_for_each_member_with_its_own_settings(family):
    from ablate.fused.optim import FusedAdam
    from ablate.tricks.weight_decay import param_groups

    settings = [MemberSettings(0.0, False, 5e-4, True, (0.9, 0.999)),
                MemberSettings(0.0, False, 5e-2, False, (0.8, 0.99)),
                MemberSettings(0.0, False, 0.0, True, (0.95, 0.9))]
    lrs = [1e-3, 3e-3, 1e-2]
    torch.manual_seed(0)
    # no conv bias before BN: its gradient is float noise around 0, which Adam scales up to +-lr
    make = lambda: nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(),  # noqa: E731
                                 nn.Linear(64, 2))
    models = [make() for _ in settings]
    fused = fuse_models(models)
    names, params = zip(*fused.named_parameters())
    shapes = dict(models[0].named_parameters())
    opt = FusedAdam(list(params), [shapes[n].ndim for n in names], settings, decoupled=family == "adamw")
    cls = torch.optim.AdamW if family == "adamw" else torch.optim.Adam
    refs = [cls(param_groups(m, s.weight_decay, decay_norm_and_bias=s.decay_norm_and_bias), lr=lr, betas=s.betas)
            for m, s, lr in zip(models, settings, lrs)]
    _train_both_and_compare(fused, opt, models, refs, lrs, steps=4, make=make)


def _train_both_and_compare(fused, opt, models, refs, lrs, *, steps: int, make) -> None:
    """`steps` updates of the fused model (fused optimiser) and of each member alone (its torch
    optimiser) on the same inputs; then every member's weights must equal its fused slice."""
    m = len(models)
    xs = torch.randn(m, 5, 3, 6, 6)
    for _ in range(steps):
        opt.zero_grad()
        split_output(fused(fuse_input(xs)), m).square().mean(dim=(1, 2)).sum().backward()
        opt.step(torch.tensor(lrs), torch.ones(m, dtype=torch.bool))
        for k, (model, ref) in enumerate(zip(models, refs)):
            ref.zero_grad()
            model(xs[k]).square().mean().backward()
            ref.step()
    copies = [make() for _ in models]
    unfuse_into(fused, copies)
    for model, copy in zip(models, copies):
        for a, b in zip(model.parameters(), copy.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# -- which trials fuse ------------------------------------------------------------------------

def test_every_registered_trick_is_classified_for_fusion():
    assert set(TRICK_FUSION) == set(trick_names()), \
        f"classify in ablate/fused/rules.py: {sorted(set(trick_names()) - set(TRICK_FUSION))}"


PARAMS = {"distill": {"trial": "teacher/0123456789abcdef"}}   # tricks without defaults for every parameter


def _trial(*uses: str, seed: int = 0, **recipe):
    spec = tiny_spec()
    settings = [TrickSetting(key=u, use=u, code=get_trick(u).code, params=get_trick(u).Params(**PARAMS.get(u, {})))
                for u in uses]
    return Trial.create(experiment="t", arm=1, label="+".join(uses), seed=seed, data=spec.data, model=spec.model,
                        recipe=spec.recipe.model_copy(update=recipe), tricks=settings)


@pytest.mark.parametrize("use", sorted(TRICK_FUSION))
def test_fusion_decision_for_each_trick(use):
    baseline = fusion_key(_trial())
    key, reason = fusion_decision(_trial(use, seed=3))
    kind = TRICK_FUSION[use]
    if kind in ("data", "loss", "optimizer", "schedule", "init"):
        assert key == baseline and reason == "fusable"
    elif kind in ("structure", "precision") or (kind == "family" and use not in ("radam", "adabound")):
        assert key is not None and key != baseline and key == fusion_key(_trial(use, seed=5))
    else:
        assert key is None and use in reason


def test_recipe_settings_fuse_but_shared_settings_separate_groups():
    base = fusion_key(_trial())
    assert fusion_key(_trial(lr=0.3, momentum=0.5, weight_decay=0.0, schedule="cosine")) == base
    assert fusion_key(_trial(batch_size=8)) != base
    assert fusion_key(_trial(epochs=3)) != base
    assert fusion_key(_trial(optimizer="adam")) not in (None, base)
    assert fusion_key(_trial(optimizer="adam")) == fusion_key(_trial(optimizer="adam", lr=0.001))
    assert fusion_key(_trial(optimizer="adam")) != fusion_key(_trial(optimizer="adamw"))
    key, reason = fusion_decision(_trial(optimizer="radam"))
    assert key is None and "radam" in reason and "recipe.optimizer" in reason


# -- fused training equals one-at-a-time training ---------------------------------------------

DESIGN = {"ls": {"use": "label_smoothing"}, "mix": {"use": "mixup"}, "cos": {"use": "cosine"},
          "warm": {"use": "warmup", "epochs": 1}, "nbd": {"use": "no_bias_decay"},
          "re": {"use": "random_erasing"}}


@pytest.mark.parametrize("model", [
    {"name": "convnet", "width": 4},
    pytest.param({"name": "cifar_resnet", "depth": 8, "width": 4, "shortcut": "padding"}, marks=pytest.mark.slow),
])
def test_each_fused_member_matches_its_one_at_a_time_run(model):
    spec = tiny_spec(tricks=DESIGN, model=model, data={"name": "digits", "image_size": 8, "train_size": 48})
    trials = plan(spec).trials                     # 7 arms x 2 seeds, every trick in its own arm
    assert len({fusion_key(t) for t in trials}) == 1
    epochs, ends = _run_fused(trials)
    data = load_data(spec.data)
    for t in trials:
        history = []
        final = run_trial(t, history.append, device="cpu")
        outcome, fused_final = ends[t.id]
        assert outcome == "final" and set(fused_final) == set(final)
        assert len(epochs[t.id]) == len(history)
        for got, want in zip(epochs[t.id], history):
            assert set(got) == set(want)
            for key in EPOCH_KEYS:
                assert _close(got[key], want[key], key, len(data.val_y)), (t.label, t.seed, key, got[key], want[key])
        for key in ("val_loss", "train_loss", "best_val_acc"):
            assert _close(fused_final[key], final[key], key, len(data.val_y)), (t.label, key)
        for key in ("test_acc", "test_loss", "test_top5"):
            assert _close(fused_final[key], final[key], key, len(data.test_y)), (t.label, key)
        assert fused_final["params"] == final["params"] and fused_final["gflops"] == final["gflops"]


def test_adamw_members_with_their_own_lr_match_their_one_at_a_time_runs():
    spec = tiny_spec(tricks={"aw": {"use": "adamw", "lr": 0.003}, "nbd": {"use": "no_bias_decay"}},
                     design={"kind": "cumulative"}, model={"name": "convnet", "width": 4},
                     data={"name": "digits", "image_size": 8, "train_size": 32})
    trials = [t for t in plan(spec).trials if t.tricks]          # adamw, adamw + no bias decay
    assert len(trials) == 4 and len({fusion_key(t) for t in trials}) == 1
    epochs, ends = _run_fused(trials)
    for t in trials:
        history = []
        run_trial(t, history.append, device="cpu")
        for got, want in zip(epochs[t.id], history, strict=True):
            for key in EPOCH_KEYS:
                assert _close(got[key], want[key], key, 300), (t.label, key, got[key], want[key])


def test_a_diverging_member_is_masked_and_the_others_still_match(monkeypatch):
    # BN keeps these small models finite even at lr=10 (see test_train), so one member's
    # batches are poisoned instead, through its procedure, in the fused loop and the trainer
    import ablate.fused.loop as loop
    import ablate.train as train

    spec = tiny_spec(tricks={"ls": {"use": "label_smoothing"}}, model={"name": "convnet", "width": 4},
                     data={"name": "digits", "image_size": 8, "train_size": 48}, recipe={"epochs": 3})
    trials = plan(spec).trials[:3]
    wild = trials[1]
    real = train.build_procedure

    def poisoned(trial, num_classes):
        proc = real(trial, num_classes)
        if trial.id == wild.id:
            proc.batch_erasers.append(lambda x, generator: x * float("inf"))
        return proc

    monkeypatch.setattr(loop, "build_procedure", poisoned)
    monkeypatch.setattr(train, "build_procedure", poisoned)
    epochs, ends = _run_fused(trials)
    outcome, message = ends[wild.id]
    assert outcome == "diverged" and epochs[wild.id] == []
    with pytest.raises(TrialDiverged) as info:
        run_trial(wild, device="cpu")
    assert message == str(info.value) == "training loss became nan in epoch 1 (lr 0.05)"
    for t in (trials[0], trials[2]):
        history = []
        final = run_trial(t, history.append, device="cpu")
        assert ends[t.id][0] == "final" and len(epochs[t.id]) == 3
        for got, want in zip(epochs[t.id], history):
            for key in EPOCH_KEYS:
                assert _close(got[key], want[key], key, 300), (key, got[key], want[key])
        assert _close(ends[t.id][1]["test_loss"], final["test_loss"], "test_loss", 300)


def test_a_member_stopped_by_the_caller_is_pruned_and_the_others_go_on():
    spec = tiny_spec(model={"name": "convnet", "width": 4}, data={"name": "digits", "image_size": 8, "train_size": 32})
    trials = plan(spec).trials[:3]
    ends, seen = {}, []

    def report(k, metrics):
        seen.append((k, metrics["epoch"]))
        return k != 1

    train_group(trials, report, lambda k, o, p: ends.setdefault(k, (o, p)), device="cpu")
    assert ends[1] == ("pruned", "pruned after epoch 1")
    assert ends[0][0] == ends[2][0] == "final"
    assert (1, 2) not in seen and (0, 2) in seen and (2, 2) in seen


# -- the executor in the engine ---------------------------------------------------------------

def test_ablate_run_with_fuse_on_fuses_what_fuses_and_runs_the_rest_alone(tmp_path):
    from ablate.runner.experiment import executor_for
    from ablate.api import run_experiment
    from ablate.runner.fused import FusedExecutor
    from ablate.store import Store

    spec = tiny_spec(fuse="on", tricks={"cos": {"use": "cosine"}, "ema": {"use": "ema"}},
                     model={"name": "convnet", "width": 4},
                     data={"name": "digits", "image_size": 8, "train_size": 32})
    executor = executor_for(spec, device="cpu")
    assert isinstance(executor, FusedExecutor)
    p = plan(spec)
    fused, alone = executor.groups(p.trials)
    assert [len(g) for g in fused] == [4] and [t.tricks[0].use for t in alone] == ["ema", "ema"]
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store, device="cpu")
    assert summary.outcomes == {"complete": len(p.trials)}
    frame = store.trials_frame("tiny")
    assert len(frame) == len(p.trials) and (frame.status == "complete").all()


def test_the_fused_executor_streams_every_members_events_in_order():
    from ablate.runner.fused import FusedExecutor

    spec = tiny_spec(model={"name": "convnet", "width": 4}, data={"name": "digits", "image_size": 8, "train_size": 32})
    trials = plan(spec).trials[:2]
    events = []
    FusedExecutor(device="cpu").run(trials, lambda e: events.append(e) or "continue")
    for t in trials:
        mine = [e for e in events if e.trial_id == t.id]
        assert isinstance(mine[0], Started) and mine[0].env["fused_members"] == 2
        assert [type(e) for e in mine[1:]] == [EpochMetrics, EpochMetrics, FinalMetrics]
    assert not any(isinstance(e, Failure) for e in events)


def test_fuse_switch_picks_the_executor():
    from ablate.runner.experiment import executor_for
    from ablate.runner.fused import FusedExecutor
    from ablate.runner.inprocess import InProcessExecutor

    spec = tiny_spec()
    assert spec.fuse == "auto"
    assert isinstance(executor_for(spec, device="cpu"), InProcessExecutor)        # auto: CUDA only
    assert isinstance(executor_for(spec, device="cuda"), FusedExecutor)
    assert isinstance(executor_for(spec, device="cuda", fuse="off"), InProcessExecutor)
    assert isinstance(executor_for(tiny_spec(fuse="off"), device="cuda"), InProcessExecutor)
    assert isinstance(executor_for(spec, device="cpu", fuse="on"), FusedExecutor)


def test_ablate_run_fuse_on_the_command_line_overrides_the_spec(capsys, spec_file, tmp_path):
    from ablate.cli import main
    from ablate.store import Store
    from tests.conftest import tiny_dict

    spec = tiny_dict(fuse="off", model={"name": "convnet", "width": 4},
                     data={"name": "digits", "image_size": 8, "train_size": 32})
    db = tmp_path / "runs.db"
    assert main(["run", str(spec_file(spec)), "--store", str(db), "--fuse", "on", "--no-report"]) == 0
    attempts = Store(db).attempts_frame("tiny")
    assert len(attempts) == 6 and attempts["env"].str.contains('"fused_members": 6').all()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(spec_file(spec)), "--store", str(tmp_path / "x.db"), "--fuse", "sometimes"])
    assert exit_info.value.code == 2 and "invalid choice: 'sometimes'" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_a_bad_fuse_value_names_the_field_and_the_choices():
    from ablate.errors import SpecError

    with pytest.raises(SpecError, match="fuse") as info:
        tiny_spec(fuse="maybe")
    assert "auto" in str(info.value) and "maybe" in str(info.value)


@pytest.mark.slow
def test_the_benchmark_runs_in_its_cpu_sized_form_and_prints_parsable_ratios(capsys):
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "fused_trials.py"
    module_spec = importlib.util.spec_from_file_location("fused_trials_benchmark", path)
    bench = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--approach", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    ratios = dict(re.findall(r"^ratio: (\w+) (\d+\.\d+)$", out, flags=re.M))
    assert set(ratios) == {"seeds", "design", "vmap_over_grouped"} and all(float(v) > 0 for v in ratios.values())


def test_the_headline_benchmark_runs_its_smoke_form_fused_through_the_whole_product(capsys):
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "airbench_ablation.py"
    module_spec = importlib.util.spec_from_file_location("airbench_ablation_benchmark", path)
    bench = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(bench)
    bench.main(["--smoke", "--device", "cpu", "--fuse", "on"])
    out = capsys.readouterr().out
    assert re.search(r"^trials: 6 \(3 arms x 2 seeds\), 6 trained fused", out, flags=re.M), out
    assert re.search(r"^wall: \d+\.\d s for the whole ablation", out, flags=re.M)
    assert "| Airbench + MP |" in out and "reference" in out          # the lift table, bfloat16 in every arm


def test_a_group_the_fused_model_cannot_express_runs_one_at_a_time(monkeypatch):
    import ablate.fused.loop as loop
    from ablate.runner.fused import FusedExecutor

    def refuse(models):
        raise NotFusable("a layer it does not know")

    monkeypatch.setattr(loop, "fuse_models", refuse)
    spec = tiny_spec(model={"name": "convnet", "width": 4}, data={"name": "digits", "image_size": 8, "train_size": 32})
    trials = plan(spec).trials[:2]
    events = []
    FusedExecutor(device="cpu").run(trials, lambda e: events.append(e) or "continue")
    starts = [e for e in events if isinstance(e, Started)]
    assert len(starts) == 2 and all("fused_members" not in e.env for e in starts)
    assert sum(isinstance(e, FinalMetrics) for e in events) == 2


def test_an_error_inside_a_fused_group_fails_its_open_members_only():
    from ablate.runner.fused import FusedExecutor

    spec = tiny_spec(model={"name": "convnet", "width": 4}, data={"name": "digits", "image_size": 8, "train_size": 32})
    trials = plan(spec).trials[:3]
    events = []

    def emit(event):
        events.append(event)
        if isinstance(event, EpochMetrics) and event.trial_id == trials[2].id:
            raise RuntimeError("the recorder broke (simulated)")
        return "stop" if event.trial_id == trials[0].id else "continue"

    FusedExecutor(device="cpu").run(trials, emit)
    ends = {e.trial_id: e for e in events if isinstance(e, (Failure, FinalMetrics))}
    assert ends[trials[0].id].kind == "pruned"
    assert ends[trials[1].id].kind == ends[trials[2].id].kind == "error"
    assert "simulated" in ends[trials[2].id].message


def test_bfloat16_members_fuse_and_match_their_one_at_a_time_runs():
    # the grouped and the plain convolutions round to bfloat16 alike here (measured: 3e-8
    # relative on the training loss), so the float32 tolerance holds
    spec = tiny_spec(tricks={"amp": {"use": "amp", "dtype": "bfloat16"}, "ls": {"use": "label_smoothing"}},
                     design={"kind": "explicit", "arms": [[], ["amp"], ["amp", "ls"]]},
                     model={"name": "convnet", "width": 4}, data={"name": "digits", "image_size": 8, "train_size": 48})
    trials = [t for t in plan(spec).trials if t.tricks]
    assert len({fusion_key(t) for t in trials}) == 1 and fusion_key(trials[0]) is not None
    epochs, ends = _run_fused(trials)
    fp32 = {t.seed: run_trial(t, device="cpu") for t in plan(spec).trials if not t.tricks}
    checked = 0
    for t in trials:
        history = []
        final = run_trial(t, history.append, device="cpu")
        assert ends[t.id][0] == "final"
        for got, want in zip(epochs[t.id], history, strict=True):
            for key in EPOCH_KEYS:
                assert _close(got[key], want[key], key, 360), (t.label, key, got[key], want[key])
        assert _close(ends[t.id][1]["test_loss"], final["test_loss"], "test_loss", 360)
        if len(t.tricks) == 1:     # autocast acted: bfloat16 training differs from float32's
            assert final["train_loss"] != fp32[t.seed]["train_loss"]
            checked += 1
    assert checked == 2


def test_float16_mixed_precision_is_not_fused_and_says_why():
    spec = tiny_spec()
    amp16 = TrickSetting(key="amp", use="amp", code=get_trick("amp").code, params=get_trick("amp").Params(dtype="float16"))
    trial = Trial.create(experiment="t", arm=1, label="amp16", seed=1, data=spec.data, model=spec.model,
                         recipe=spec.recipe, tricks=[amp16])
    key, reason = fusion_decision(trial)
    assert key is None and "float16" in reason and "loss scaler" in reason


def test_the_fused_loop_uses_only_the_trainers_public_names():
    """ablate/fused/ shares the trainer's pieces (autocast, kernel settings) by their public
    names: a private helper of ablate.train may change without notice."""
    import ast
    from pathlib import Path

    import ablate.fused

    private = []
    for path in Path(ablate.fused.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "ablate.train":
                private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    isinstance(node.value, ast.Name) and node.value.id == "train":
                private.append(f"{path.name}: train.{node.attr}")
    assert private == []
