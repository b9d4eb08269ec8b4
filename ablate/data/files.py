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


def _read_folder(path: Path, size: int, channels: int, classes: list[str] | None):
    import torch
    from PIL import Image

    found = [d.name for d in _class_dirs(path)]
    classes = classes or found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"folder '{path}' has classes not in the training folder: {', '.join(unknown)}")
    images, labels = [], []
    mode = "RGB" if channels == 3 else "L"
    for label, name in enumerate(classes):
        d = path / name
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                with Image.open(f) as im:
                    im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                    arr = np.asarray(im, dtype=np.uint8)
                images.append(arr if arr.ndim == 3 else arr[:, :, None])
                labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, np.asarray(labels), classes


def load_imagefolder(cfg):
    """train/val/test folders of class sub-folders (e.g. Intel scenes: seg_train, seg_test).
    A missing split is carved from train with a fixed stratified split."""
    import torch

    from ablate.data.base import ImageData, stratified_split, subsample

    check_imagefolder(cfg)
    root = Path(cfg.root).expanduser()
    x, y, classes = _read_folder(root / cfg.train, cfg.image_size, cfg.channels, None)
    carve = [f for f, sub in ((cfg.val_fraction, cfg.val), (cfg.val_fraction, cfg.test)) if sub is None]
    parts = stratified_split(y, tuple(carve)) if carve else []
    splits = {}
    for split in ("val", "test"):
        sub = getattr(cfg, split)
        if sub is not None:
            sx, sy, _ = _read_folder(root / sub, cfg.image_size, cfg.channels, classes)
            splits[split] = (sx, torch.from_numpy(sy).long())
    train_idx = parts[-1] if parts else np.arange(len(y))
    t = torch.from_numpy(y).long()
    k = 0
    for split in ("val", "test"):
        if split not in splits:
            splits[split] = (x[parts[k]], t[parts[k]])
            k += 1
    train_idx = train_idx[subsample(y[train_idx], cfg.train_size)]
    return ImageData(f"imagefolder:{root.name}", tuple(classes), x[train_idx], t[train_idx],
                     *splits["val"], *splits["test"])
