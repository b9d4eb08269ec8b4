"""Pretrained weights, `save: final` and knowledge distillation (teachers from an earlier run)."""

from __future__ import annotations

import pytest
import torch

from ablate.errors import AblateError, SpecError
from ablate.models import CifarResNetConfig, build_model
from ablate.models.weights import WeightsError, fit_state_dict, load_pretrained, read_state_dict, saved_meta
from ablate.design.plan import plan
from ablate.api import run_experiment
from ablate.store import Store
from tests.conftest import tiny_spec

SMALL = {"name": "cifar_resnet", "depth": 8, "width": 8}
SYNTH4 = {"name": "synthetic", "num_classes": 4, "image_size": 8, "channels": 1, "train_size": 32,
          "val_size": 16, "test_size": 16}
ONE_ARM = {"design": {"kind": "explicit", "arms": [[]]}, "tricks": {}, "seeds": 1}


def _saved(tmp_path, num_classes=10, suffix=".safetensors", channels=1, **model):
    torch.manual_seed(3)
    m = build_model(CifarResNetConfig(**{**SMALL, **model}), in_channels=channels, num_classes=num_classes)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    else:
        torch.save(m.state_dict(), path)
    return m, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_round_trip_into_a_model_with_another_head(tmp_path, suffix):
    saved, path = _saved(tmp_path, num_classes=10, suffix=suffix)
    cfg = CifarResNetConfig(**SMALL, weights=str(path))
    torch.manual_seed(4)
    fresh = build_model(cfg, in_channels=1, num_classes=4)
    head_before = fresh.fc.weight.detach().clone()
    info = load_pretrained(fresh, cfg, num_classes=4)
    assert info["weights_file"] == str(path) and "head 'fc' re-initialised for 4 classes (the file's has 10)" in info["weights_note"]
    for k, v in fresh.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, saved.state_dict()[k]), k
    assert torch.equal(fresh.fc.weight, head_before), "the head keeps its fresh init"


def test_rgb_first_conv_is_summed_for_one_channel_data(tmp_path):
    saved, path = _saved(tmp_path, channels=3)
    model = build_model(CifarResNetConfig(**SMALL), in_channels=1, num_classes=10)
    fitted, notes = fit_state_dict(model, read_state_dict(path), num_classes=10, source="w")
    assert torch.allclose(fitted["conv1.weight"], saved.conv1.weight.sum(1, keepdim=True))
    assert notes == ["first conv 'conv1.weight' adapted from 3 input channels to 1"]


def test_the_first_mismatching_tensor_is_named_with_both_shapes(tmp_path):
    _, path = _saved(tmp_path, width=16)
    model = build_model(CifarResNetConfig(**SMALL), in_channels=1, num_classes=10)
    with pytest.raises(WeightsError, match=r"tensor 'conv1.weight' has shape \(16, 1, 3, 3\) in the file, the model expects \(8, 1, 3, 3\)"):
        fit_state_dict(model, read_state_dict(path), num_classes=10, source="w")


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"), (b"not a tensor file", "is not a state-dict file"),
    ([1, 2, 3], "holds list, not a state dict"), ({"a": 1}, "values are not all tensors"),
])
def test_bad_weight_files_fail_when_the_spec_loads(tmp_path, content, words):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(SpecError, match=rf"field 'model.weights'.*{words}"):
        tiny_spec(model={**SMALL, "weights": str(path)})


def test_a_mismatching_file_fails_when_the_spec_loads_and_a_fitting_one_passes(tmp_path):
    _, path = _saved(tmp_path, width=16)
    with pytest.raises(SpecError, match=r"model.weights.*tensor 'conv1.weight' has shape \(16, 1, 3, 3\)"):
        tiny_spec(model={**SMALL, "weights": str(path)})
    _, good = _saved(tmp_path, num_classes=10)
    assert tiny_spec(model={**SMALL, "weights": str(good)}).model.weights == str(good)


def test_cache_weights_are_never_downloaded_and_the_path_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(SpecError, match=r"no cached weights of torchvision 'shufflenet_v2_x0_5'.*"
                                        + str(tmp_path / "hub" / "checkpoints")):
        tiny_spec(model={"name": "torchvision", "arch": "shufflenet_v2_x0_5", "weights": "cache"})
    assert not (tmp_path / "hub").exists(), "nothing downloaded"
    with pytest.raises(SpecError, match="weights: cache .* needs name: torchvision or name: timm"):
        tiny_spec(model={**SMALL, "weights": "cache"})


def test_cached_torchvision_weights_are_found_where_torch_hub_keeps_them(tmp_path, monkeypatch):
    from ablate.models.zoo import torchvision_cache_file

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cfg = {"name": "torchvision", "arch": "shufflenet_v2_x0_5"}
    torch.manual_seed(0)
    m = build_model(tiny_spec(model=cfg).model, in_channels=3, num_classes=1000)
    path = torchvision_cache_file("shufflenet_v2_x0_5")
    path.parent.mkdir(parents=True)
    torch.save(m.state_dict(), path)
    spec = tiny_spec(model={**cfg, "weights": "cache"})     # digits: 1 channel, 10 classes
    fresh = build_model(spec.model, in_channels=1, num_classes=10)
    info = load_pretrained(fresh, spec.model, num_classes=10)
    assert "head 'fc' re-initialised" in info["weights_note"] and "first conv" in info["weights_note"]
    assert torch.equal(fresh.conv5[0].weight, m.conv5[0].weight)


def test_an_unset_weights_field_leaves_trial_ids_unchanged():
    spec = tiny_spec()
    assert "weights" not in spec.model.model_dump()
    assert plan(spec).trials[0].id == plan(tiny_spec(save="final")).trials[0].id, "save: is not hashed"


def test_save_must_be_final():
    with pytest.raises(SpecError, match=r"field 'save'.*final"):
        tiny_spec(save="all")


# -- save: final --------------------------------------------------------------------------------

@pytest.mark.parametrize("tricks", [{}, {"ema": {}}])
def test_save_final_writes_the_evaluated_weights(tmp_path, tricks):
    from ablate.data import load_data
    from ablate.tricks.distill import build_trial_teacher
    from ablate.train import evaluate, run_trial

    spec = tiny_spec(tricks=tricks, design={"kind": "explicit", "arms": [list(tricks)]}, seeds=1, save="final")
    trial = plan(spec).trials[0]
    final = run_trial(trial, weights_root=tmp_path, save_final=True)
    path = tmp_path / spec.name / f"{trial.id}.safetensors"
    assert final["weights"] == str(path) and path.is_file()
    assert saved_meta(path)["label"] == trial.label and saved_meta(path)["seed"] == trial.seed
    model = build_trial_teacher(path, num_classes=10)
    data = load_data(trial.data)
    mean, std = data.mean_std()
    test = evaluate(model, data.test_x, data.test_y, mean=mean, std=std, batch_size=512)
    assert test["acc"] == pytest.approx(final["test_acc"]) and test["loss"] == pytest.approx(final["test_loss"])


def test_without_a_weights_root_nothing_is_saved(tmp_path, monkeypatch):
    from ablate.train import run_trial

    monkeypatch.chdir(tmp_path)
    final = run_trial(plan(tiny_spec(**ONE_ARM)).trials[0], save_final=True)
    assert "weights" not in final and not any(tmp_path.iterdir())


# -- knowledge distillation -----------------------------------------------------------------------

def test_soft_target_loss_is_t_squared_kl():
    from ablate.tricks.distill import soft_target_loss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    T = 3.0
    p, q = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    expected = (p * (p.log() - q.log())).sum(1).mean() * T * T
    assert soft_target_loss(s, t, T) == pytest.approx(float(expected), rel=1e-5)
    assert soft_target_loss(t, t, T) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("params, words", [
    ({}, "exactly one of trial"), ({"trial": "x/y", "path": "p"}, "got both"),
    ({"path": "p"}, "needs the teacher's model config"), ({"trial": "no-slash"}, "<experiment>/<trial id>"),
])
def test_teacher_must_be_named_one_way(params, words):
    with pytest.raises(SpecError, match=rf"tricks.distill.*{words}"):
        tiny_spec(tricks={"distill": params})


def test_a_path_teacher_with_other_classes_is_refused_when_the_spec_loads(tmp_path):
    _, path = _saved(tmp_path, num_classes=4)
    with pytest.raises(SpecError, match=r"tricks.distill.*predicts 4 classes.*the data has 10"):
        tiny_spec(tricks={"distill": {"path": str(path), "model": SMALL}})
    _, good = _saved(tmp_path / "..", num_classes=10)
    assert tiny_spec(tricks={"distill": {"path": str(good), "model": SMALL}}).tricks["distill"].params.path


@pytest.mark.slow   # three tiny trials: about 2 s on an idle CPU
def test_distillation_from_a_saved_trial_runs_end_to_end(tmp_path):
    from ablate.tricks.distill import find_trial_teacher

    store = Store(tmp_path / "s.db", create=True)
    teacher = tiny_spec(name="teacher", save="final", **ONE_ARM)
    tp, _ = run_experiment(teacher, store)
    t = tp.trials[0]
    saved = tmp_path / "weights" / "teacher" / f"{t.id}.safetensors"
    assert find_trial_teacher(f"teacher/{t.id}", tmp_path / "weights") == saved
    assert find_trial_teacher(f"teacher/{t.label}@0", tmp_path / "weights") == saved
    student = tiny_spec(name="student", tricks={"distill": {"trial": f"teacher/{t.label}@0", "temperature": 2.0,
                                                            "alpha": 0.5}}, design={"kind": "one_at_a_time"}, seeds=1)
    _, summary = run_experiment(student, store)
    frame = store.trials_frame("student")
    assert summary.outcomes == {"complete": 2}, frame["error"].tolist()
    # the distilled arm trained differently from the baseline (same seed, same batches)
    assert frame["train_loss"].nunique() == 2


def test_a_teacher_trial_with_the_wrong_classes_or_absent_is_refused_before_anything_runs(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    tp, _ = run_experiment(tiny_spec(name="teacher4", save="final", data=SYNTH4, **ONE_ARM), store)
    tp3, _ = run_experiment(tiny_spec(name="teacher3ch", save="final", data={"name": "digits", "image_size": 8,
                                                                              "train_size": 64, "channels": 3},
                                      **ONE_ARM), store)
    for ref, words in ((f"teacher4/{tp.trials[0].id}", "predicts 4 classes, but digits has 10"),
                       (f"teacher3ch/{tp3.trials[0].id}", "takes 3-channel images, but digits has 1 channel"),
                       ("teacher4/nobody@0", "was not found.*@0"), ("ghost/x@0", "no saved weights of experiment 'ghost'")):
        student = tiny_spec(name="student", tricks={"distill": {"trial": ref}}, design={"kind": "one_at_a_time"},
                            seeds=1)
        with pytest.raises(AblateError, match=words):
            run_experiment(student, store)
        assert store.experiment("student") is None, "nothing written"


def test_ablate_run_with_an_absent_teacher_exits_2_and_writes_nothing(tmp_path, spec_file, capsys):
    import yaml

    from ablate.cli import main
    from tests.conftest import tiny_dict

    path = spec_file(yaml.safe_dump(tiny_dict(tricks={"distill": {"trial": "ghost/baseline@0"}},
                                              design={"kind": "one_at_a_time"}, seeds=1)))
    store = tmp_path / "out" / "s.db"
    assert main(["run", str(path), "--store", str(store), "--no-report"]) == 2
    assert "no saved weights of experiment 'ghost' in " + str(tmp_path / "out" / "weights" / "ghost") in capsys.readouterr().err
    assert not store.exists()
