"""The trainer's device path: every test runs on the CPU and, where torch sees a CUDA GPU, again
on it (the `cuda` mark; skipped with the reason elsewhere). The CPU runs keep these tests honest
on machines without a GPU; the CUDA runs prove what only a GPU exercises: channels_last,
cuDNN autotuning, CUDA generators for augmentation, fused optimiser kernels, float16 with a
GradScaler, bfloat16 autocast, device-resident data, the peak-memory column, compiled and fused
trials.

On CUDA, cuDNN autotuning and TF32 convolutions make runs repeatable only to float tolerance
(see ablate.train), so CUDA comparisons use tolerances where the CPU's are exact.
"""

from __future__ import annotations

import math

import pytest
import torch

import ablate.compiling
from ablate.data import load_data
from ablate.design.plan import plan
from ablate.train import Streams, build_optimizer, prepare, prepare_batch, run_trial
from tests.conftest import tiny_spec

HAS_CUDA = torch.cuda.is_available()
ON_CUDA = pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not HAS_CUDA, reason=f"no CUDA GPU visible to torch {torch.__version__}")])

DATA = {"name": "digits", "image_size": 16, "train_size": 300, "channels": 3}   # 3: layouts differ
RECIPE = {"epochs": 1, "batch_size": 32, "lr": 0.1, "eval_batch_size": 512}
MODEL = {"name": "convnet", "width": 8}      # 3 epochs of it reach about 70% on these digits


@pytest.fixture(params=["cpu", ON_CUDA])
def device(request):
    return request.param


def _trials(tricks=None, seeds: int = 1, model=None, **recipe):
    spec = tiny_spec(data=DATA, recipe={**RECIPE, **recipe}, tricks=tricks or {}, seeds=seeds,
                     design={"kind": "explicit", "arms": [[], list(tricks or {})]} if tricks else
                     {"kind": "explicit", "arms": [[]]},
                     model=model or MODEL)
    return plan(spec).trials


def test_a_trial_trains_on_the_device_and_reports_its_peak_memory(device):
    history = []
    final = run_trial(_trials(epochs=3)[0], history.append, device=device)
    assert final["device"].startswith(device) and len(history) == 3
    assert all(math.isfinite(h["train_loss"]) and h["images_per_s"] > 0 for h in history)
    assert final["test_acc"] > 30.0              # chance is 10%
    if device == "cuda":
        assert final["peak_mem_mb"] > 0
    else:
        assert final["peak_mem_mb"] is None


def test_model_and_batches_are_channels_last_on_cuda(device):
    trial = _trials()[0]
    setup = prepare(trial, device)
    conv = next(m for m in setup.model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (device == "cuda")
    data = load_data(trial.data)
    x, y = data.on_device("train", device)
    assert x.device.type == device and x.dtype == torch.uint8
    mean, std = (t.to(device) for t in data.mean_std())
    xb, _ = prepare_batch(x[:8], y[:8], setup.proc, Streams.for_seed(0, torch.device(device)), mean=mean, std=std,
                          pad=2, flip=True)
    assert xb.is_contiguous(memory_format=torch.channels_last) == (device == "cuda")


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "radam"])
def test_fused_optimizer_kernels_on_cuda_only(device, optimizer):
    setup = prepare(_trials(optimizer=optimizer, lr=0.01)[0], device)
    fused = bool(setup.optimizer.defaults.get("fused"))
    assert fused == (device == "cuda" and optimizer != "radam")
    opt = build_optimizer(setup.proc, setup.model)              # and it steps
    setup.model(torch.zeros(2, 3, 16, 16, device=device)).sum().backward()
    opt.step()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_trains_with_either_dtype(device, dtype):
    if device == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name()} has no bfloat16")
    # float16 autocast is slow on the CPU: one epoch there, three (and a learning check) on CUDA
    trial = _trials(tricks={"amp": {"dtype": dtype}}, epochs=3 if device == "cuda" else 1)[1]
    setup = prepare(trial, device)
    assert (setup.scaler is not None) == (dtype == "float16")
    final = run_trial(trial, device=device)
    assert math.isfinite(final["train_loss"])
    if device == "cuda":
        assert final["test_acc"] > 30.0


def test_augmentation_draws_repeat_for_a_seed_on_the_device(device):
    trial = _trials(tricks={"mixup": {}, "random_erasing": {}})[1]
    setup = prepare(trial, device)
    data = load_data(trial.data)
    x, y = data.on_device("train", device)
    mean, std = (t.to(device) for t in data.mean_std())

    def batch(seed):
        return prepare_batch(x[:32], y[:32], setup.proc, Streams.for_seed(seed, torch.device(device)),
                             mean=mean, std=std, pad=2, flip=True)

    (a, ta), (b, tb), (c, _) = batch(1), batch(1), batch(2)
    assert a.device.type == device
    assert torch.equal(a, b) and torch.equal(ta[0] if isinstance(ta, tuple) else ta,
                                             tb[0] if isinstance(tb, tuple) else tb)
    assert not torch.equal(a, c)


def test_a_seed_repeats_on_the_device(device):
    trial = _trials()[0]
    first, second = [], []
    run_trial(trial, first.append, device=device)
    run_trial(trial, second.append, device=device)
    for a, b in zip(first, second, strict=True):
        if device == "cpu":
            assert a["train_loss"] == b["train_loss"] and a["val_acc"] == b["val_acc"]
        else:      # cuDNN autotuning may pick other kernels: equal to float tolerance
            assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=5e-2)


def test_fused_trials_match_their_one_at_a_time_runs_on_the_device(device):
    from ablate.fused.loop import train_group

    trials = _trials(tricks={"label_smoothing": {}}, seeds=2, model={"name": "convnet", "width": 8})
    ends = {}
    train_group(trials, lambda k, m: True, lambda k, outcome, payload: ends.__setitem__(k, (outcome, payload)),
                device=device)
    for k, trial in enumerate(trials):
        alone = run_trial(trial, device=device)
        outcome, fused = ends[k]
        assert outcome == "final"
        # TF32 convolutions on CUDA round grouped and plain convolutions differently
        assert math.isclose(fused["train_loss"], alone["train_loss"], rel_tol=1e-4 if device == "cpu" else 5e-2)
        # accuracies count argmaxes: a logit pair within the loss tolerance may flip an example
        assert abs(fused["test_acc"] - alone["test_acc"]) <= (3 * 100 / 359 if device == "cpu" else 5.0)


def test_a_compiled_trial_on_the_device(device, monkeypatch):
    if device == "cpu":      # Inductor on the CPU takes a minute: test_compile covers the CPU
        monkeypatch.setattr(ablate.compiling, "BACKEND", "aot_eager")
    torch._dynamo.reset()
    try:
        final = run_trial(_trials(compile=True)[0], device=device)
        eager = run_trial(_trials()[0], device=device)
    finally:
        torch._dynamo.reset()
    assert final["compile_s"] > 0
    assert math.isclose(final["train_loss"], eager["train_loss"], rel_tol=5e-2)


@pytest.mark.parametrize("device", [ON_CUDA])
def test_the_quickstart_runs_on_cuda_from_the_command_line(device, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ablate", "run", "quickstart", "--shrink", "--device", "cuda",
                          "--store", str(tmp_path / "q.db")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "lift" in out.stdout.lower()
