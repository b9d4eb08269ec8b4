"""Per-epoch checkpoints: a trial interrupted after epoch 2 and resumed ends exactly as an
uninterrupted run (CPU), every random stream included."""

from __future__ import annotations

import pytest

from ablate import checkpoint
from ablate.design.plan import plan
from ablate.train import run_trial
from tests.conftest import tiny_spec

# every stream in use: data order and base augmentation (crop, flip), mixup and random erasing
# (the tricks stream, mixup through torchvision on a global RNG seeded from it), cosine (the
# schedule position), EMA (its own weights and step count), SGD momentum (optimiser state)
TRICKS = {"cosine": {}, "mixup": {}, "random_erasing": {"prob": 0.5}, "ema": {"decay": 0.9}}
TIMINGS = {"images_per_s", "epoch_s", "wall_s"}


class Interrupt(Exception):
    pass


def _trial(**recipe):
    spec = tiny_spec(tricks=TRICKS, design={"kind": "explicit", "arms": [list(TRICKS)]}, seeds=1,
                     recipe={"epochs": 3, **recipe}, data={"name": "digits", "image_size": 8, "train_size": 32})
    return plan(spec).trials[-1]


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def test_interrupted_after_epoch_two_and_resumed_equals_an_uninterrupted_run(tmp_path):
    trial = _trial()
    assert {t.use for t in trial.tricks} == set(TRICKS)
    whole: list[dict] = []
    want = run_trial(trial, whole.append, device="cpu")

    seen: list[dict] = []

    def stop_after_two(metrics):
        seen.append(metrics)
        if metrics["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_trial(trial, stop_after_two, device="cpu", checkpoint_dir=str(tmp_path))
    assert checkpoint.load(tmp_path)["epoch"] == 2
    assert [h["epoch"] for h in checkpoint.history(tmp_path)] == [1, 2]
    got = run_trial(trial, seen.append, device="cpu", checkpoint_dir=str(tmp_path))

    assert [m["epoch"] for m in seen] == [1, 2, 3], "the resumed run reports only epoch 3"
    assert [_untimed(m) for m in seen] == [_untimed(m) for m in whole]
    assert _untimed(got) == _untimed(want)
    assert checkpoint.load(tmp_path)["epoch"] == 3


def test_a_checkpoint_of_another_trial_is_refused(tmp_path):
    run_trial(_trial(epochs=1), device="cpu", checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not of trial"):
        run_trial(_trial(epochs=2), device="cpu", checkpoint_dir=str(tmp_path))


def test_the_write_is_atomic_no_temporary_file_is_left(tmp_path):
    run_trial(_trial(epochs=1), device="cpu", checkpoint_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.FILE]
