"""benchmarks/gpu_throughput.py in its CPU-sized form: it runs and prints its ratios, and its bare
and DataLoader paths do the work the trainer does (correctness, never speed)."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_throughput.py"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def bench():
    module_spec = importlib.util.spec_from_file_location("gpu_throughput_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


SMALL_AIRBENCH = {"name": "airbench", "widths": [16, 32, 32], "stem": 8}   # same type, fewer channels


@pytest.fixture
def one_thread():
    """Tiny models train several times faster on one thread when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_trial(bench, model=SMALL_AIRBENCH, *, train_size=32, epochs=1, compile=False):
    return bench.throughput_trial(model, train_size=train_size, eval_size=16, image_size=8, epochs=epochs,
                                  batch_size=16, compile=compile)


def ratio_lines(out: str) -> set[tuple[str, str]]:
    ratios = re.findall(r"^ratio: (\w+) ablate/(\w+) (\d+\.\d+)", out, flags=re.M)
    assert all(float(v) > 0 for _, _, v in ratios)
    return {(m, p) for m, p, _ in ratios}


def test_the_smoke_form_prints_the_table_and_both_ratios_for_every_model_given(bench, capsys):
    threads = torch.get_num_threads()
    assert bench.main(["--smoke", "--models", "airbench", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert torch.get_num_threads() == threads
    assert ratio_lines(out) == {("airbench", "bare"), ("airbench", "dataloader")}
    assert all(re.search(rf"^airbench +{p} +\d+\.\d$", out, flags=re.M) for p in bench.PATHS)


@pytest.mark.slow   # a fresh interpreter importing torch and ablate: several seconds on a loaded CPU
def test_the_smoke_command_exits_0_with_its_ratio_lines():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--models", "resnet20,airbench", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ratio_lines(done.stdout) == {(m, p) for m in ("resnet20", "airbench") for p in ("bare", "dataloader")}


def test_an_unknown_model_is_refused_with_the_choices(bench, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--smoke", "--models", "resnet20,vgg"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "vgg" in err and "resnet20, resnet18, airbench" in err


def test_the_bare_model_starts_from_the_trainers_weights(bench):
    from ablate.data import load_data
    from ablate.train import build_procedure, seeded_model

    trial = tiny_trial(bench, {"name": "cifar_resnet", "depth": 8, "width": 4})
    data = load_data(trial.data)
    trainer_model = seeded_model(trial, data, build_procedure(trial, data.num_classes))
    bare_model, opt = bench.bare_model_and_optimizer(trial, CPU, channels=3, num_classes=10)
    assert type(bare_model) is type(trainer_model)
    ours, theirs = bare_model.state_dict(), trainer_model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    group = opt.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)


def test_bare_and_trainer_first_epoch_losses_are_finite_and_near_chance(bench, monkeypatch, one_thread):
    trial = tiny_trial(bench)
    calls = []
    augment = bench.augment_batch
    monkeypatch.setattr(bench, "augment_batch", lambda *a, **k: calls.append(k) or augment(*a, **k))
    bare = bench.run_bare(trial, CPU)[0]["train_loss"]
    ablate = bench.run_ablate(trial, CPU)[0]["train_loss"]
    loader = bench.run_dataloader(trial, CPU, workers=0)[0]["train_loss"]
    for loss in (bare, ablate, loader):
        assert math.isfinite(loss) and abs(loss - math.log(10)) < 0.1, (bare, ablate, loader)
    assert len(calls) == 2 and all(k["pad"] == 4 and k["flip"] for k in calls)   # 32 images, batch 16


def test_the_bare_augmentation_draws_a_crop_and_flip_per_image(bench):
    image = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    batch = image.expand(64, -1, -1, -1)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    out = bench.augment_batch(batch, mean, std, pad=4, flip=True, generator=torch.Generator().manual_seed(0))
    distinct = torch.unique(out.flatten(1), dim=0)
    assert out.shape == (64, 3, 8, 8) and len(distinct) > 30   # one offset per batch would give 1


@pytest.mark.parametrize("n, batches", [(50, 4), (49, 3)])   # 49 = 3*16 + 1: no 1-image batch, as the trainer
def test_the_dataloader_yields_normalised_float_batches_of_the_trainers_count(bench, n, batches):
    from ablate.train import steps_per_epoch

    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(n) % 10
    mean, std = x.float().div(255).mean(dim=(0, 2, 3)), x.float().div(255).std(dim=(0, 2, 3))
    loader = bench.classic_loader(x, y, mean, std, pad=4, flip=True, batch_size=16, workers=0, dev=CPU)
    got = list(loader)
    assert len(got) == batches == steps_per_epoch(n, 16)
    assert all(xb.dtype == torch.float32 and xb.shape[1:] == (3, 8, 8) and yb.dtype == torch.int64 for xb, yb in got)
    assert [len(yb) for _, yb in got[:-1]] == [16] * (batches - 1)
    xs = torch.cat([xb for xb, _ in got])
    assert abs(xs.mean().item()) < 0.1 and 0.5 < xs.std().item() < 1.2 and xs.min().item() < -1
    labels = torch.cat([yb for _, yb in got])
    assert len(labels) == len(xs) and bool((labels.bincount(minlength=10) <= y.bincount(minlength=10)).all())


def test_a_single_epoch_is_refused_since_the_first_is_skipped(bench, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--epochs", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--epochs must be at least 2 (the first epoch is skipped), got 1" in err


def test_compile_reaches_all_three_paths_with_ablates_backend(bench, monkeypatch, one_thread):
    from ablate import compiling

    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")   # dynamo without Inductor's codegen: seconds
    compiled = []
    real_compile = torch.compile

    def recording_compile(model, **kw):
        compiled.append(kw.get("backend"))
        return real_compile(model, **kw)

    monkeypatch.setattr(torch, "compile", recording_compile)
    trial = tiny_trial(bench, compile=True)
    assert trial.recipe.compile and not tiny_trial(bench).recipe.compile
    losses = {}
    for path, run in (("bare", lambda: bench.run_bare(trial, CPU)),
                      ("dataloader", lambda: bench.run_dataloader(trial, CPU, workers=0)),
                      ("ablate", lambda: bench.run_ablate(trial, CPU))):
        before = len(compiled)
        losses[path] = run()[0]["train_loss"]
        assert len(compiled) > before and set(compiled) == {"aot_eager"}, path
    assert all(math.isfinite(v) for v in losses.values()), losses


def test_the_compile_backend_option_reaches_all_paths_and_is_restored(bench, monkeypatch, capsys):
    from ablate import compiling

    seen = []

    def fake_measure(trials, dev, **kw):
        seen.append((compiling.BACKEND, all(t.recipe.compile for t in trials.values())))
        return {m: {p: [1.0] for p in bench.PATHS} for m in trials}

    monkeypatch.setattr(bench, "measure", fake_measure)
    before = compiling.BACKEND
    assert bench.main(["--smoke", "--models", "airbench", "--device", "cpu", "--compile",
                       "--compile-backend", "aot_eager"]) == 0
    assert seen == [("aot_eager", True)] and compiling.BACKEND == before
    assert "torch.compile on (aot_eager)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        bench.main(["--smoke", "--compile-backend", "cudagraphs"])
    assert info.value.code == 2 and "invalid choice: 'cudagraphs'" in capsys.readouterr().err
