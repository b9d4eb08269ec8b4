"""The streaming data path: a folder of JPEGs decoded by DataLoader workers gives the trainer the
same batches, in the same order, as the in-memory path; `in_memory: auto` picks by size; workers
stop with the trial."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch
from PIL import Image

import ablate.data.stream as stream
import ablate.train as train
from ablate.data import ImageFolderConfig, load_data
from ablate.data.base import ImageData
from ablate.data.batches import LoaderBatches, TensorBatches, closing_batches, open_split
from ablate.data.stream import StreamedData
from ablate.errors import TrialPruned
from ablate.design.plan import plan
from tests.conftest import tiny_spec

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]


def write_jpegs(root, split: str, per_class: int, seed: int) -> None:
    """Small JPEGs whose class shows in their colour (plus noise, so the task is not trivial)."""
    rng = np.random.default_rng(seed)
    for c, colour in enumerate(COLOURS):
        d = root / split / f"class{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(colour) + rng.normal(0, 60, (10, 14, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{i:03d}.jpg", quality=90)


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    """300 JPEGs: 3 classes x 70 train, 3 x 15 val, 3 x 15 test."""
    root = tmp_path_factory.mktemp("jpegs")
    write_jpegs(root, "train", 70, 0)
    write_jpegs(root, "val", 15, 1)
    write_jpegs(root, "test", 15, 2)
    return root


def folder_cfg(root, **changes) -> dict:
    return {"name": "imagefolder", "root": str(root), "image_size": 12, "crop_padding": 2, "flip": True,
            **changes}


def test_in_memory_setting_picks_the_path_and_auto_follows_the_threshold(jpeg_folder, monkeypatch):
    assert isinstance(load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=True))), ImageData)
    assert isinstance(load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=False, workers=0))),
                      StreamedData)
    size = 300 * 12 * 12 * 3   # files x image_size^2 x channels
    for limit, kind in ((size, ImageData), (size - 1, StreamedData)):
        load_data.cache_clear()
        monkeypatch.setattr(stream, "IN_MEMORY_LIMIT_BYTES", limit)
        assert isinstance(load_data(ImageFolderConfig(**folder_cfg(jpeg_folder))), kind), limit


def test_streamed_batches_and_statistics_equal_the_in_memory_ones(jpeg_folder):
    mem = load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=True)))
    streamed = load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=False, workers=0)))
    assert streamed.sizes() == mem.sizes() == {"train": 210, "val": 45, "test": 45}
    assert streamed.classes == mem.classes
    for a, b in zip(streamed.mean_std(), mem.mean_std()):
        torch.testing.assert_close(a, b)
    order = torch.randperm(210, generator=torch.Generator().manual_seed(3))
    cpu = torch.device("cpu")
    pairs = zip(split_of(mem, "train").shuffled(order, 32, 7), split_of(streamed, "train").shuffled(order, 32, 7))
    for (x1, y1), (x2, y2) in pairs:
        assert x2.dtype == torch.uint8 and torch.equal(x1, x2) and torch.equal(y1, y2)
    for split in ("val", "test"):
        got = list(open_split(streamed, split, cpu).in_order(16))
        assert [len(y) for _, y in got] == [16, 16, 13]
        assert torch.equal(torch.cat([x for x, _ in got]), getattr(mem, f"{split}_x"))


def split_of(data, split):
    return open_split(data, split, torch.device("cpu"))


def trial_on(root, **data):
    spec = tiny_spec(data=folder_cfg(root, image_size=8, train_size=60, **data),
                     model={"name": "convnet", "width": 4},
                     recipe={"epochs": 2, "batch_size": 16, "eval_batch_size": 20},
                     tricks={"mixup": {"alpha": 0.4}}, seeds=1)
    return plan(spec).trials[1]   # the mixup arm: tricks draw from their stream in both paths


def test_a_seed_trains_on_the_same_batches_in_both_paths(jpeg_folder, monkeypatch):
    seen: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[], []]
    real = train.prepare_batch
    run = 0

    def record(xb, yb, *args, **kwargs):
        seen[run].append((xb.clone(), yb.clone()))
        return real(xb, yb, *args, **kwargs)

    monkeypatch.setattr(train, "prepare_batch", record)
    in_memory = train.run_trial(trial_on(jpeg_folder, in_memory=True))
    run = 1
    streamed = train.run_trial(trial_on(jpeg_folder, in_memory=False, workers=0))
    assert len(seen[0]) == len(seen[1]) == 2 * 4   # 2 epochs of ceil(60 / 16) batches
    for (x1, y1), (x2, y2) in zip(*seen):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(seen[0][0][1], seen[0][4][1]), "each epoch has its own order"
    for key in ("train_loss", "val_loss", "val_acc", "test_acc", "test_loss"):
        assert streamed[key] == pytest.approx(in_memory[key], rel=1e-5, abs=1e-6), key


@pytest.mark.slow   # starts worker processes
def test_worker_processes_stop_with_the_trial_even_when_it_is_stopped(jpeg_folder):
    """Also: with worker processes the trial's result is the in-process decoding's."""
    alive_during = []

    def prune(metrics):
        alive_during.append(len(multiprocessing.active_children()))
        raise TrialPruned("stop after epoch 1")

    with pytest.raises(TrialPruned) as info:
        train.run_trial(trial_on(jpeg_folder, in_memory=False, workers=2), prune)
    assert alive_during[0] >= 2, "the train and val loaders' workers were running"
    assert info.traceback is not None   # the traceback (which holds the trial's frames) is alive...
    assert multiprocessing.active_children() == []   # ...and the workers are gone all the same
    with_workers = train.run_trial(trial_on(jpeg_folder, in_memory=False, workers=2))
    assert multiprocessing.active_children() == []
    in_process = train.run_trial(trial_on(jpeg_folder, in_memory=False, workers=0))
    assert with_workers["val_loss"] == in_process["val_loss"]


def test_closing_batches_closes_only_what_it_opened(jpeg_folder):
    streamed = load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=False, workers=1)))
    outside = open_split(streamed, "val", torch.device("cpu"))
    with closing_batches():
        inside = open_split(streamed, "val", torch.device("cpu"))
        next(iter(inside.in_order(8)))
        next(iter(outside.in_order(8)))
        assert isinstance(inside, LoaderBatches) and inside.loader._iterator is not None
    assert inside.loader._iterator is None and outside.loader._iterator is not None
    outside.close()
    assert multiprocessing.active_children() == []
    mem = load_data(ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=True)))
    assert isinstance(open_split(mem, "val", torch.device("cpu")), TensorBatches)


def test_plumbing_settings_stay_out_of_the_config_at_their_defaults(jpeg_folder):
    plain = ImageFolderConfig(**folder_cfg(jpeg_folder))
    assert "in_memory" not in plain.model_dump(mode="json") and "workers" not in plain.model_dump(mode="json")
    set_ = ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=False, workers=3)).model_dump(mode="json")
    assert set_["in_memory"] is False and set_["workers"] == 3
    assert ImageFolderConfig(**set_) == ImageFolderConfig(**folder_cfg(jpeg_folder, in_memory=False, workers=3))
