"""Image folders too large for memory: a torch Dataset over the files, decoded and resized on
the CPU in DataLoader workers, one batch at a time.

`load_data` picks this path for an imagefolder/imagenet config with `in_memory: false`, or with
`in_memory: auto` (the default) when the decoded training, validation and test images would take
more than `IN_MEMORY_LIMIT_BYTES` (file count x image_size^2 x channels bytes, uint8). Both paths
decode a file with the same `decode_image`, so a streamed batch holds exactly the pixels the
in-memory path would slice, as a uint8 (N, C, H, W) tensor: the base augmentation and every
trick run unchanged on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

# Decoded size above which `in_memory: auto` streams: 2 GiB leaves room for the model and the
# float copies of a batch on a laptop; ImageNet at 224 px (~200 GB) always streams.
IN_MEMORY_LIMIT_BYTES = 2 * 2 ** 30

# mean/std of a streamed data set come from this many training images (a fixed, evenly spaced
# subset): exact for small folders, and reading all of ImageNet twice would cost an epoch.
MEAN_STD_IMAGES = 5000


def decode_image(path: str | Path, size: int, channels: int) -> np.ndarray:
    """One image file as uint8 (size, size, channels): PIL decode, RGB or L, bilinear resize."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.BILINEAR)
        arr = np.array(im, dtype=np.uint8)   # a writable copy: torch.from_numpy wants one
    return arr if arr.ndim == 3 else arr[:, :, None]


def decoded_bytes(n_images: int, image_size: int, channels: int) -> int:
    """What `n_images` take in memory as uint8 tensors."""
    return n_images * image_size * image_size * channels


def keeps_in_memory(setting: str | bool, n_images: int, image_size: int, channels: int) -> bool:
    """The data config's `in_memory` (true, false or "auto") resolved for this many images."""
    if setting == "auto":
        return decoded_bytes(n_images, image_size, channels) <= IN_MEMORY_LIMIT_BYTES
    return bool(setting)


def default_workers() -> int:
    """DataLoader workers when the config gives none: one per CPU core, at most 8 (beyond that a
    ResNet's GPU step, not JPEG decoding, is usually the bottleneck)."""
    return max(1, min(os.cpu_count() or 1, 8))


class FileImages(torch.utils.data.Dataset):
    """Image files and their labels; item i is (uint8 (C, H, W) tensor, label)."""

    def __init__(self, files: list[str], labels: np.ndarray, *, image_size: int, channels: int) -> None:
        self.files = list(files)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.image_size = image_size
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        arr = decode_image(self.files[i], self.image_size, self.channels)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), int(self.labels[i])

    def stack(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode `indices` in this process: (uint8 images, int64 labels)."""
        items = [self[int(i)] for i in indices]
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items], dtype=torch.long)


@dataclass(frozen=True, eq=False)
class StreamedData:
    """The streaming counterpart of `ImageData`: splits are file lists, decoded per batch."""

    name: str
    classes: tuple[str, ...]
    train: FileImages
    val: FileImages
    test: FileImages
    workers: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.train.channels

    @property
    def image_size(self) -> int:
        return self.train.image_size

    def split(self, name: str) -> FileImages:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` training images and labels (throughput and GFLOP measurements)."""
        return self.train.stack(range(min(n, len(self.train))))

    @cached_property
    def _mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.train)
        idx = np.unique(np.linspace(0, n - 1, min(n, MEAN_STD_IMAGES)).round().astype(int))
        total = torch.zeros(self.channels, dtype=torch.float64)
        total_sq = torch.zeros(self.channels, dtype=torch.float64)
        count = 0
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.train, idx.tolist()),
                                             batch_size=256, num_workers=min(self.workers, 8))
        for x, _ in loader:   # running sums: the sample need not fit in memory as floats
            x = x.double().div_(255)
            total += x.sum(dim=(0, 2, 3))
            total_sq += x.pow(2).sum(dim=(0, 2, 3))
            count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        # the unbiased per-channel std, as ImageData.mean_std computes it with torch.std
        var = (total_sq - count * mean ** 2) / max(count - 1, 1)
        return mean.float(), var.clamp_min(0).sqrt().float().clamp_min(1e-3)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of (a fixed subset of) the training images, in [0, 1] units."""
        return self._mean_std
