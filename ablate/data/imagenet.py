"""ImageNet (ILSVRC-2012) from its train/val folders; never downloaded.

Accepted layouts under `root`:
- train/<wnid>/*.JPEG and val/<wnid>/*.JPEG: what torchvision.datasets.ImageNet leaves after it
  sorts the official archives (and what most ImageNet mirrors ship);
- train/<wnid>/*.JPEG and a flat val/*.JPEG, labelled by Kaggle's LOC_val_solution.csv
  (`ImageId,PredictionString`, the wnid first) in root or up to three folders above it (Kaggle's
  ILSVRC/Data/CLS-LOC/ root keeps it at the top of the download).
The devkit's ILSVRC2012_validation_ground_truth.txt numbers classes by the devkit's own ids
(meta.mat), not wnids; sorting val/ with torchvision.datasets.ImageNet once turns it into the
first layout, so it is not read here.

Splits: the validation split (model selection, `val_fraction` of each class) is carved from train
with a fixed stratified split; the official validation images are the test split.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ablate.errors import DataError

EXPECTED = ("expected train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the layout torchvision.datasets."
            "ImageNet produces), or a flat val/*.JPEG with LOC_val_solution.csv in the root")
SOLUTION_FILE = "LOC_val_solution.csv"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _found(path: Path, limit: int = 6) -> str:
    """What a folder holds, in a few words, for error messages."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return "nothing (it does not exist)" if not path.exists() else "a file, not a folder"
    if not names:
        return "an empty folder"
    shown = ", ".join(n + ("/" if (path / n).is_dir() else "") for n in names[:limit])
    return f"{len(names)} {'entry' if len(names) == 1 else 'entries'}: {shown}" + (", ..." if len(names) > limit else "")


def _has_image(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.name.lower().endswith(IMAGE_SUFFIXES) for e in entries)


def _class_dirs(path: Path) -> list[str]:
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _solution_file(root: Path) -> Path | None:
    for folder in [root, *list(root.parents)[:3]]:
        if (folder / SOLUTION_FILE).is_file():
            return folder / SOLUTION_FILE
    return None


def check_imagenet(cfg) -> None:
    """Raise DataError naming the root, what was expected and what was found (reads no images;
    one directory listing per class)."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"imagenet root '{root}' does not exist or is not a folder; {EXPECTED}. "
                        f"ablate does not download ImageNet: get it from image-net.org and set data.root")
    train, val = root / "train", root / "val"
    if not train.is_dir() or not val.is_dir():
        missing = " and ".join(f"{p.name}/" for p in (train, val) if not p.is_dir())
        raise DataError(f"imagenet root '{root}' has no {missing}: {EXPECTED}; found {_found(root)}")
    classes = _class_dirs(train)
    empty = [c for c in classes if not _has_image(train / c)]
    if not classes or len(empty) == len(classes):
        raise DataError(f"imagenet train folder '{train}' has no class folders with images: {EXPECTED}; "
                        f"found {_found(train)}")
    if empty:
        raise DataError(f"imagenet train folder '{train}' has {len(empty)} class folder(s) without images "
                        f"(e.g. {', '.join(empty[:3])}); each of train/<wnid>/ must hold that class's JPEGs")
    val_classes = _class_dirs(val)
    if val_classes:
        unknown = sorted(set(val_classes) - set(classes))
        if unknown:
            raise DataError(f"imagenet val folder '{val}' has classes not in train/: {', '.join(unknown[:5])}"
                            f"{' ...' if len(unknown) > 5 else ''}")
        return
    if not _has_image(val):
        raise DataError(f"imagenet val folder '{val}' holds neither class folders nor images: {EXPECTED}; "
                        f"found {_found(val)}")
    if _solution_file(root) is None:
        raise DataError(f"imagenet val folder '{val}' holds images without class folders, and no "
                        f"{SOLUTION_FILE} was found in '{root}' or the three folders above it to label "
                        f"them; sort val/ into val/<wnid>/ (torchvision.datasets.ImageNet does) or put "
                        f"Kaggle's {SOLUTION_FILE} beside train/")


def _class_files(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.path for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES))


def list_val(root: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """The official validation images and their labels (sorted sub-folders or the solution file)."""
    val = root / "val"
    index = {c: i for i, c in enumerate(classes)}
    if _class_dirs(val):
        files, labels = [], []
        for c in _class_dirs(val):
            f = _class_files(val / c)
            files += f
            labels += [index[c]] * len(f)
        return files, np.asarray(labels, dtype=np.int64)
    solution = _solution_file(root)
    wnid_of: dict[str, str] = {}
    with open(solution, newline="") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if line == 1 and row[:1] == ["ImageId"]:
                continue
            if len(row) < 2 or not row[1].split():
                raise DataError(f"{solution}:{line}: expected 'ImageId,PredictionString' with the wnid "
                                f"first, got {','.join(row)!r}")
            wnid_of[row[0]] = row[1].split()[0]
    files, labels = [], []
    for f in _class_files(val):
        stem = Path(f).stem
        if stem not in wnid_of:
            raise DataError(f"validation image '{f}' is not listed in {solution}")
        if wnid_of[stem] not in index:
            raise DataError(f"{solution} labels '{stem}' with '{wnid_of[stem]}', which is not a class in "
                            f"{root / 'train'}")
        files.append(f)
        labels.append(index[wnid_of[stem]])
    return files, np.asarray(labels, dtype=np.int64)


def load_imagenet(cfg):
    """Train minus a carved validation split, the carved split, and the official val as test."""
    from ablate.data.base import stratified_split, subsample
    from ablate.data.files import folder_data

    check_imagenet(cfg)
    root = Path(cfg.root).expanduser()
    classes = _class_dirs(root / "train")
    files, labels = [], []
    for i, c in enumerate(classes):
        f = _class_files(root / "train" / c)
        files += f
        labels += [i] * len(f)
    y = np.asarray(labels, dtype=np.int64)
    val_idx, train_idx = stratified_split(y, (cfg.val_fraction,))
    train_idx = train_idx[subsample(y[train_idx], cfg.train_size)]
    splits = {"train": ([files[i] for i in train_idx], y[train_idx]),
              "val": ([files[i] for i in val_idx], y[val_idx]),
              "test": list_val(root, classes)}
    return folder_data(f"imagenet:{root.name}", classes, splits, cfg)
