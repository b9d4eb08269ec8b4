"""In-memory image data: every split is a uint8 tensor (N, C, H, W) plus int64 labels.

Small-image ablations (digits, CIFAR, a few thousand ImageFolder images) fit in memory, and
holding them as tensors lets the trainer index batches and augment them on the device with no
DataLoader workers (the habit airbench uses for its speed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class ImageData:
    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    # what `on_device` and `mean_std` computed once (load_data memoises the data per process, so
    # every trial of an experiment shares them)
    _memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` training images and labels (throughput and GFLOP measurements)."""
        return self.train_x[:n], self.train_y[:n]

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units, shape (C,)."""
        if "mean_std" not in self._memo:     # a float copy of CIFAR-10's train set is 600 MB
            x = self.train_x.float().div_(255)
            self._memo["mean_std"] = (x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-3))
        mean, std = self._memo["mean_std"]
        return mean.clone(), std.clone()

    def on_device(self, split: str, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """`split`'s uint8 images and labels on `device`. On a GPU they are copied once and kept
        there for the data's lifetime: every later trial slices the same device tensors, with no
        host-to-device copy per trial (CIFAR-10's train set is 150 MB)."""
        x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
        dev = torch.device(device)
        if dev.type == "cpu":
            return x, y
        key = ("on_device", split, str(dev))
        if key not in self._memo:
            self._memo[key] = (x.to(dev), y.to(dev))
        return self._memo[key]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], *, seed: int = 0) -> list[np.ndarray]:
    """Split indices into len(fractions)+1 parts, class by class, with a fixed RNG.

    The split never depends on the trial seed: every arm and seed sees the same validation and
    test images. Part i gets round(fractions[i] * class size) of each class; the last part gets
    the rest.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for i, f in enumerate(fractions):
            n = int(round(f * len(idx)))
            parts[i].append(idx[start:start + n])
            start += n
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


def subsample(labels: np.ndarray, size: int | None, *, seed: int = 1) -> np.ndarray:
    """A fixed subset of exactly `size` indices, classes in proportion (largest remainders), or
    all indices when size is None. Never depends on the trial seed."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / len(labels)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]:
        quota[i] += 1
    keep = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(keep))


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 (N, C, H, W) batch to size x size with antialiased bilinear interpolation."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear",
                                          antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)
