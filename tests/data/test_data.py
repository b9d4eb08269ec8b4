"""Data sets: fixed splits, clear errors for absent or broken files, ImageFolder trees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ablate.data import (
    CifarConfig,
    DigitsConfig,
    ImageFolderConfig,
    SyntheticConfig,
    check_data,
    load_data,
)
from ablate.data.augment import random_flip, random_translate
from ablate.errors import DataError


def test_digits_split_is_fixed_disjoint_and_stratified():
    d = load_data(DigitsConfig(name="digits", image_size=8))
    assert d.sizes() == {"train": 1079, "val": 359, "test": 359}
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape[1:] == (1, 8, 8)
    counts = torch.bincount(d.val_y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37
    load_data.cache_clear()
    again = load_data(DigitsConfig(name="digits", image_size=8))
    assert torch.equal(again.val_x, d.val_x) and torch.equal(again.test_y, d.test_y)
    # no image is in two splits
    rows = lambda x: {bytes(r) for r in x.flatten(1).numpy()}
    assert not rows(d.val_x) & rows(d.test_x) or len(rows(d.val_x) & rows(d.test_x)) < 3  # digits has a few exact duplicates


def test_digits_subset_channels_and_size():
    d = load_data(DigitsConfig(name="digits", image_size=24, channels=3, train_size=200))
    assert d.train_x.shape == (200, 3, 24, 24) and d.num_classes == 10
    counts = torch.bincount(d.train_y)
    assert counts.sum() == 200 and counts.min() >= 19 and counts.max() <= 21   # in proportion
    full = load_data(DigitsConfig(name="digits", image_size=24, channels=3))
    assert torch.equal(full.val_x, d.val_x), "subsetting train leaves val alone"


def test_cifar_absent_files_are_reported_before_anything_runs(tmp_path):
    cfg = CifarConfig(name="cifar10", root=str(tmp_path))
    with pytest.raises(DataError, match="cifar10 files not found.*data_batch_1.*cifar-10-python.tar.gz"):
        check_data(cfg)
    with pytest.raises(DataError, match="cifar-100-python"):
        check_data(CifarConfig(name="cifar100", root=str(tmp_path)))


def test_cifar_corrupt_files_give_a_clear_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f).write_bytes(b"not a pickle")
    cfg = CifarConfig(name="cifar10", root=str(tmp_path))
    check_data(cfg)   # the files are there
    with pytest.raises(DataError, match="corrupt or incomplete"):
        load_data(cfg)


def _tree(root, splits=("train", "val", "test"), classes=("forest", "sea"), n=6):
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_imagefolder_reads_and_resizes(tmp_path):
    _tree(tmp_path)
    cfg = ImageFolderConfig(name="imagefolder", root=str(tmp_path), image_size=16)
    check_data(cfg)
    d = load_data(cfg)
    assert d.classes == ("forest", "sea")
    assert d.sizes() == {"train": 12, "val": 12, "test": 12}
    assert d.train_x.shape == (12, 3, 16, 16)


def test_imagefolder_carves_missing_splits_from_train(tmp_path):
    _tree(tmp_path, splits=("seg_train",), n=20)
    cfg = ImageFolderConfig(name="imagefolder", root=str(tmp_path), train="seg_train", val=None, test=None,
                            val_fraction=0.2, image_size=8, channels=1)
    d = load_data(cfg)
    assert d.sizes() == {"train": 24, "val": 8, "test": 8} and d.channels == 1


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        check_data(ImageFolderConfig(name="imagefolder", root=str(tmp_path / "none")))
    (tmp_path / "train" / "empty_class").mkdir(parents=True)
    with pytest.raises(DataError, match="has no classes"):
        check_data(ImageFolderConfig(name="imagefolder", root=str(tmp_path), val=None, test=None))
    _tree(tmp_path / "t2", splits=("train",))
    with pytest.raises(DataError, match="val folder .* does not exist"):
        check_data(ImageFolderConfig(name="imagefolder", root=str(tmp_path / "t2")))


def test_synthetic_sizes():
    d = load_data(SyntheticConfig(name="synthetic", num_classes=3, image_size=8, train_size=30, val_size=10,
                                  test_size=10))
    assert d.sizes() == {"train": 30, "val": 10, "test": 10} and d.num_classes == 3


def test_splits_are_copied_to_a_device_once_and_shared_by_later_trials():
    from ablate.data.batches import split_batches

    d = load_data(SyntheticConfig(name="synthetic", num_classes=3, image_size=8, train_size=30, val_size=10,
                                  test_size=10))
    assert d.on_device("train", "cpu")[0] is d.train_x            # the CPU needs no copy
    # "meta" stands in for a GPU here: a device other than the CPU, without one
    x, y = d.on_device("val", "meta")
    assert x.device.type == "meta" and x.dtype == torch.uint8 and tuple(x.shape) == tuple(d.val_x.shape)
    assert d.on_device("val", "meta")[0] is x, "copied again"
    assert split_batches(d, "val", torch.device("meta")).x is x, "the trainer's batches slice the kept copy"
    mean, std = d.mean_std()
    mean.zero_()                                                   # a caller's edit does not reach the memo
    assert d.mean_std()[0].abs().sum() > 0


def test_translate_moves_each_image_by_its_own_offset():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5) + 1
    g = torch.Generator().manual_seed(0)
    out = random_translate(x, 2, g)
    assert out.shape == x.shape
    for i in range(2):   # every output is a shifted window of the zero-padded input
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        assert any(torch.equal(out[i], padded[:, dy:dy + 5, dx:dx + 5]) for dy in range(5) for dx in range(5))
    assert torch.equal(random_translate(x, 0, g), x)
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


# -- ImageNet's layout ------------------------------------------------------------------------

WNIDS = ("n01440764", "n01443537")


def _imagenet(root, *, flat_val=False, per_class=20, val_per_class=5):
    rng = np.random.default_rng(0)

    def save(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (6, 7, 3), dtype=np.uint8)).save(path, format="JPEG")

    for w in WNIDS:
        for i in range(per_class):
            save(root / "train" / w / f"{w}_{i}.JPEG")
    rows = ["ImageId,PredictionString"]
    for k, w in enumerate(WNIDS):
        for i in range(val_per_class):
            name = f"ILSVRC2012_val_{k * val_per_class + i:08d}"
            save(root / "val" / (name + ".JPEG") if flat_val else root / "val" / w / (name + ".JPEG"))
            rows.append(f"{name},{w} 1 2 3 4")
    if flat_val:
        (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("flat_val", [False, True])
def test_imagenet_carves_val_from_train_and_tests_on_the_official_val(tmp_path, flat_val):
    from ablate.data import ImageNetConfig

    _imagenet(tmp_path, flat_val=flat_val)
    cfg = ImageNetConfig(name="imagenet", root=str(tmp_path), image_size=8, val_fraction=0.1)
    check_data(cfg)
    d = load_data(cfg)
    assert d.classes == WNIDS
    assert d.sizes() == {"train": 36, "val": 4, "test": 10}
    assert d.test_x.shape == (10, 3, 8, 8) and d.test_y.tolist() == [0] * 5 + [1] * 5
    assert torch.bincount(d.val_y).tolist() == [2, 2]


def test_imagenet_errors_name_the_root_what_was_expected_and_what_was_found(tmp_path):
    from ablate.data import ImageNetConfig

    def check(root):
        check_data(ImageNetConfig(name="imagenet", root=str(root)))

    with pytest.raises(DataError, match=r"imagenet root '.*none' does not exist.*expected train/<wnid>/\*\.JPEG"):
        check(tmp_path / "none")
    (tmp_path / "a" / "train" / WNIDS[0]).mkdir(parents=True)
    (tmp_path / "a" / "README.txt").write_text("x")
    with pytest.raises(DataError, match=r"root '.*a' has no val/: expected .*; found 2 entries: README.txt, train/"):
        check(tmp_path / "a")
    (tmp_path / "a" / "val").mkdir()
    with pytest.raises(DataError, match=r"train folder '.*train' has no class folders with images.*found 1 entry: n01440764/"):
        check(tmp_path / "a")
    _imagenet(tmp_path / "b", flat_val=True)
    (tmp_path / "b" / "LOC_val_solution.csv").unlink()
    with pytest.raises(DataError, match="holds images without class folders, and no LOC_val_solution.csv"):
        check(tmp_path / "b")
    _imagenet(tmp_path / "c")
    (tmp_path / "c" / "val" / "n99999999").mkdir()
    with pytest.raises(DataError, match="val folder .* has classes not in train/: n99999999"):
        check(tmp_path / "c")
    _imagenet(tmp_path / "d", flat_val=True)
    lines = (tmp_path / "d" / "LOC_val_solution.csv").read_text().splitlines()
    (tmp_path / "d" / "LOC_val_solution.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="ILSVRC2012_val_00000009.JPEG' is not listed in"):
        load_data(ImageNetConfig(name="imagenet", root=str(tmp_path / "d")))


def test_an_imagenet_spec_without_its_folders_fails_at_load_naming_the_field(tmp_path):
    from ablate.errors import SpecError
    from tests.conftest import tiny_spec

    with pytest.raises(SpecError, match=r"field 'data.root'.*imagenet root .*expected train/<wnid>"):
        tiny_spec(data={"name": "imagenet", "root": str(tmp_path / "nowhere")})
