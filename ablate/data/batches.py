"""Batches of one split as the trainer consumes them: uint8 (B, C, H, W) images and int64 labels
on the device, either sliced from tensors held there (`TensorBatches`, the in-memory path) or
decoded from files by DataLoader workers (`LoaderBatches`, the streaming path).

Both take the epoch's order from the caller (the trial's "order" stream), so a seed gives the
same batches in the same order whichever path holds the data.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

from ablate.data.base import ImageData
from ablate.data.stream import FileImages, StreamedData

Batch = tuple[torch.Tensor, torch.Tensor]


def order_batches(order: torch.Tensor, batch_size: int, steps: int) -> list[torch.Tensor]:
    """The epoch's batches of indices: consecutive slices of `order`, `steps` of them."""
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


class TensorBatches:
    """Batches sliced from uint8 images and labels held on the device."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.device = x.device

    def __len__(self) -> int:
        return len(self.y)

    def shuffled(self, order: torch.Tensor, batch_size: int, steps: int) -> Iterator[Batch]:
        for idx in order_batches(order.to(self.device), batch_size, steps):
            yield self.x[idx], self.y[idx]

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        for i in range(0, len(self.y), batch_size):
            yield self.x[i:i + batch_size], self.y[i:i + batch_size]

    def close(self) -> None:
        pass


class _SettableBatchSampler(torch.utils.data.Sampler):
    """A batch sampler whose batches the caller sets before each pass. With persistent workers a
    DataLoader keeps its workers and re-reads its batch sampler on every `iter(loader)`, so one
    loader serves every epoch's order and every evaluation."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LoaderBatches:
    """Batches decoded and resized by DataLoader workers on the CPU, copied to the device
    (pinned memory and non-blocking copies on CUDA)."""

    def __init__(self, images: FileImages, device: torch.device, *, workers: int, persistent: bool = True) -> None:
        self.images = images
        self.device = device
        self._sampler = _SettableBatchSampler()
        self.loader = torch.utils.data.DataLoader(
            images, batch_sampler=self._sampler, num_workers=workers, pin_memory=device.type == "cuda",
            persistent_workers=persistent and workers > 0)

    def __len__(self) -> int:
        return len(self.images)

    def _run(self, batches: list[list[int]]) -> Iterator[Batch]:
        self._sampler.batches = batches
        non_blocking = self.device.type == "cuda"
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)

    def shuffled(self, order: torch.Tensor, batch_size: int, steps: int) -> Iterator[Batch]:
        return self._run([b.tolist() for b in order_batches(order, batch_size, steps)])

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        n = len(self.images)
        return self._run([list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)])

    def close(self) -> None:
        """Stop the worker processes now (not whenever the loader is garbage-collected)."""
        it = getattr(self.loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self.loader._iterator = None


def split_batches(data: ImageData | StreamedData, split: str, device: torch.device) -> TensorBatches | LoaderBatches:
    """The batches of `split` ("train", "val" or "test") on `device`. Streamed splits get their
    own workers; the test split's are not kept between passes (it is read once)."""
    if isinstance(data, StreamedData):
        return LoaderBatches(data.split(split), device, workers=data.workers, persistent=split != "test")
    return TensorBatches(*data.on_device(split, device))


# The splits opened inside the current `closing_batches` block (a ContextVar: trials running in
# threads each close their own).
_opened: contextvars.ContextVar[list | None] = contextvars.ContextVar("ablate_opened_batches", default=None)


@contextlib.contextmanager
def closing_batches():
    """Every split opened with `open_split` inside this block is closed (its workers stopped)
    when the block ends, normally or by an exception (a pruned or diverged trial)."""
    opened: list[LoaderBatches] = []
    token = _opened.set(opened)
    try:
        yield
    finally:
        _opened.reset(token)
        for b in opened:
            b.close()


def open_split(data: ImageData | StreamedData, split: str, device: torch.device):
    """`split_batches`, registered for closing by the enclosing `closing_batches` block."""
    batches = split_batches(data, split, device)
    opened = _opened.get()
    if opened is not None and isinstance(batches, LoaderBatches):
        opened.append(batches)
    return batches
