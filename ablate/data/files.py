"""Data sets read from disk: CIFAR-10/100 (torchvision's files) and ImageFolder trees.

ablate never downloads: when the files are absent the error says where it looked and how to
get them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ablate.errors import DataError

CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", ["train", "test"],
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def check_cifar(cfg) -> None:
    folder, files, url = CIFAR_FILES[cfg.name]
    root = Path(cfg.root).expanduser()
    missing = [f for f in files if not (root / folder / f).is_file()]
    if missing:
        raise DataError(
            f"{cfg.name} files not found: expected {root / folder}/ with {', '.join(files)}; "
            f"missing {', '.join(missing)}. ablate does not download data: fetch {url} and "
            f"extract it under {root} (or set data.root to where it is)")


def load_cifar(cfg):
    """CIFAR via torchvision (download=False): a fixed stratified validation split of `val_size`
    images from the official training set; the official test set as test."""
    import torch
    from torchvision import datasets

    from ablate.data.base import ImageData, resize_uint8, stratified_split, subsample

    check_cifar(cfg)
    cls = datasets.CIFAR10 if cfg.name == "cifar10" else datasets.CIFAR100
    root = str(Path(cfg.root).expanduser())
    try:
        tr, te = cls(root, train=True, download=False), cls(root, train=False, download=False)
    except RuntimeError as exc:   # torchvision's checksum or unpickling failed
        folder, _, url = CIFAR_FILES[cfg.name]
        raise DataError(f"{cfg.name} files under {Path(root) / folder} are corrupt or incomplete "
                        f"(torchvision: {exc}); extract {url} there again") from None

    def tensors(ds):
        x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        return resize_uint8(x, cfg.image_size), np.asarray(ds.targets)

    x, y = tensors(tr)
    tx, ty = tensors(te)
    val, train = stratified_split(y, (cfg.val_size / len(y),))
    train = train[subsample(y[train], cfg.train_size)]
    t = torch.from_numpy(y).long()
    return ImageData(cfg.name, tuple(tr.classes), x[train], t[train], x[val], t[val],
                     tx, torch.from_numpy(ty).long())


def _class_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_imagefolder(cfg) -> None:
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"imagefolder root '{root}' does not exist or is not a directory")
    for split in ("train", "val", "test"):
        sub = getattr(cfg, split)
        if sub is None:
            continue
        path = root / sub
        if not path.is_dir():
            raise DataError(f"imagefolder {split} folder '{path}' does not exist (data.{split} is "
                            f"'{sub}', relative to data.root); set data.{split} to the folder holding "
                            f"one sub-folder per class{', or null to split it from train' if split != 'train' else ''}")
        classes = [d for d in _class_dirs(path)
                   if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())]
        if not classes:
            raise DataError(f"imagefolder {split} folder '{path}' has no classes: expected one "
                            f"sub-folder per class holding images ({', '.join(IMAGE_EXTENSIONS)})")


def list_folder(path: Path, classes: list[str] | None) -> tuple[list[str], np.ndarray, list[str]]:
    """The image files of a folder of class sub-folders, class by class in name order, and their
    labels; `classes` (the training folder's) fixes the label numbers of a val/test folder."""
    found = [d.name for d in _class_dirs(path)]
    classes = classes or found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"folder '{path}' has classes not in the training folder: {', '.join(unknown)}")
    files, labels = [], []
    for label, name in enumerate(classes):
        d = path / name
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(f))
                labels.append(label)
    return files, np.asarray(labels, dtype=np.int64), classes


def folder_data(name: str, classes, splits: dict[str, tuple[list[str], np.ndarray]], cfg):
    """Split file lists as in-memory tensors (`ImageData`) or streamed (`StreamedData`), as
    `cfg.in_memory` says ("auto": by the decoded size, see ablate.data.stream)."""
    import torch

    from ablate.data.base import ImageData
    from ablate.data.stream import FileImages, StreamedData, default_workers, keeps_in_memory

    images = {s: FileImages(f, y, image_size=cfg.image_size, channels=cfg.channels) for s, (f, y) in splits.items()}
    total = sum(len(i) for i in images.values())
    workers = cfg.workers if cfg.workers is not None else default_workers()
    if not keeps_in_memory(cfg.in_memory, total, cfg.image_size, cfg.channels):
        return StreamedData(name, tuple(classes), images["train"], images["val"], images["test"], workers)
    tensors = []
    for split in ("train", "val", "test"):
        x, _ = images[split].stack(range(len(images[split])))
        tensors += [x, torch.from_numpy(images[split].labels)]
    return ImageData(name, tuple(classes), *tensors)


def load_imagefolder(cfg):
    """train/val/test folders of class sub-folders (e.g. Intel scenes: seg_train, seg_test).
    A missing split is carved from train with a fixed stratified split."""
    from ablate.data.base import stratified_split, subsample

    check_imagefolder(cfg)
    root = Path(cfg.root).expanduser()
    files, y, classes = list_folder(root / cfg.train, None)
    carve = [f for f, sub in ((cfg.val_fraction, cfg.val), (cfg.val_fraction, cfg.test)) if sub is None]
    parts = stratified_split(y, tuple(carve)) if carve else []
    splits = {}
    for split in ("val", "test"):
        sub = getattr(cfg, split)
        if sub is not None:
            sf, sy, _ = list_folder(root / sub, classes)
            splits[split] = (sf, sy)
    train_idx = parts[-1] if parts else np.arange(len(y))
    k = 0
    for split in ("val", "test"):
        if split not in splits:
            splits[split] = ([files[i] for i in parts[k]], y[parts[k]])
            k += 1
    train_idx = train_idx[subsample(y[train_idx], cfg.train_size)]
    splits["train"] = ([files[i] for i in train_idx], y[train_idx])
    return folder_data(f"imagefolder:{root.name}", classes, splits, cfg)
