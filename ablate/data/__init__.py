"""Data-set registry: a typed config per data set, `load_data` (memoised) and `check_data`.

`check_data` runs when a spec loads, so a missing CIFAR folder, an empty ImageFolder or an
ImageNet root without its train/val layout is reported before any trial starts.

Folders of image files (imagefolder, imagenet) are held in memory as uint8 tensors when they fit,
or streamed from disk by DataLoader workers (`ablate.data.stream`): `in_memory: auto` (the
default) streams when the decoded images would exceed `stream.IN_MEMORY_LIMIT_BYTES` (2 GiB);
`in_memory: true|false` forces a path. Both give the same batches for a seed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, model_serializer, model_validator

from ablate.config import Frozen
from ablate.data.files import check_cifar, check_imagefolder
from ablate.data.imagenet import check_imagenet

if TYPE_CHECKING:  # torch is imported when data is loaded, not when a spec is read
    from ablate.data.base import ImageData
    from ablate.data.stream import StreamedData


class _Augment(Frozen):
    # Base augmentation every arm gets (not a trick): random translation by up to
    # `crop_padding` pixels (pad-and-crop) and optional horizontal flips.
    crop_padding: int = Field(0, ge=0, le=64, description="pixels of random translation")
    flip: bool = Field(False, description="random horizontal flips")


class DigitsConfig(_Augment):
    """scikit-learn's handwritten digits (8x8, 10 classes), resized; bundled, no download."""

    name: Literal["digits"]
    image_size: int = Field(16, ge=8, le=64)
    channels: Literal[1, 3] = 1
    train_size: int | None = Field(None, ge=20, le=1079, description="fixed training subset (max 1079)")
    crop_padding: int = Field(2, ge=0, le=16)


class CifarConfig(_Augment):
    """CIFAR-10/100 from torchvision's python files under `root` (never downloaded)."""

    name: Literal["cifar10", "cifar100"]
    root: str = Field(description="folder holding cifar-10-batches-py/ or cifar-100-python/")
    image_size: int = Field(32, ge=8, le=256)
    val_size: int = Field(5000, ge=100, le=25000, description="held out from the training set")
    train_size: int | None = Field(None, ge=100, description="fixed training subset")
    crop_padding: int = 4
    flip: bool = True


class _Files(_Augment):
    # How a folder of image files is read: plumbing, not part of the experiment (both paths give
    # the same batches), so left out of the dumped config -- and of trial ids -- at the defaults.
    in_memory: bool | Literal["auto"] = Field(
        "auto", description="hold decoded images in memory (true), stream them from disk (false), "
                            "or stream when they would take more than 2 GiB (auto)")
    workers: int | None = Field(None, ge=0, le=64, description="DataLoader worker processes when "
                                                                "streaming (default: CPU cores, at most 8)")

    @model_serializer(mode="wrap")
    def _omit_default_plumbing(self, handler):
        out = handler(self)
        for key in ("in_memory", "workers"):
            if key in out and out[key] == type(self).model_fields[key].default:
                del out[key]
        return out


class ImageFolderConfig(_Files):
    """Folders of class sub-folders, e.g. Intel scenes: train: seg_train/seg_train."""

    name: Literal["imagefolder"]
    root: str
    train: str = "train"
    val: str | None = "val"
    test: str | None = "test"
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="carved from train when val/test is null")
    image_size: int = Field(64, ge=8, le=512)
    channels: Literal[1, 3] = 3
    train_size: int | None = Field(None, ge=10)
    crop_padding: int = 4
    flip: bool = True


class ImageNetConfig(_Files):
    """ImageNet (ILSVRC-2012) from `root`: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the layout
    torchvision.datasets.ImageNet leaves), or a flat val/*.JPEG with Kaggle's
    LOC_val_solution.csv in root (or up to three folders above it). The validation split for
    model selection is carved from train (`val_fraction`, stratified, fixed); the official
    validation set is the test split, so reported test accuracy is ImageNet's usual "val" figure.
    Every image is resized to image_size x image_size (aspect not kept, no centre crop), as for
    imagefolder; at 224 px ImageNet streams from disk unless `in_memory: true`."""

    name: Literal["imagenet"]
    root: str = Field(description="folder holding train/ and val/")
    image_size: int = Field(224, ge=8, le=512)
    channels: Literal[1, 3] = 3
    val_fraction: float = Field(0.01, gt=0, lt=0.5, description="of train, held out for model selection")
    train_size: int | None = Field(None, ge=10, description="fixed training subset")
    crop_padding: int = 16
    flip: bool = True


class SyntheticConfig(_Augment):
    """Random images with a weak class signal: for throughput benchmarks, not for conclusions."""

    name: Literal["synthetic"]
    num_classes: int = Field(10, ge=2, le=1000)
    image_size: int = Field(32, ge=4, le=512)
    channels: Literal[1, 3] = 3
    train_size: int = Field(5000, ge=10)
    val_size: int = Field(1000, ge=10)
    test_size: int = Field(1000, ge=10)

    @model_validator(mode="after")
    def _small_enough(self):
        total = (self.train_size + self.val_size + self.test_size) * self.channels * self.image_size ** 2
        if total > 8 * 2 ** 30:
            raise ValueError(f"synthetic data would take {total / 2 ** 30:.1f} GiB in memory (limit 8)")
        return self


DataConfig = Annotated[Union[DigitsConfig, CifarConfig, ImageFolderConfig, ImageNetConfig, SyntheticConfig],
                       Field(discriminator="name")]
DATA_NAMES = ["cifar10", "cifar100", "digits", "imagefolder", "imagenet", "synthetic"]
BUNDLED_DATA = ("digits", "synthetic")   # need no files


def check_data(cfg) -> None:
    """Raise DataError if the files `cfg` needs are absent (cheap: reads no images)."""
    if isinstance(cfg, CifarConfig):
        check_cifar(cfg)
    elif isinstance(cfg, ImageFolderConfig):
        check_imagefolder(cfg)
    elif isinstance(cfg, ImageNetConfig):
        check_imagenet(cfg)


@lru_cache(maxsize=4)
def load_data(cfg) -> "ImageData | StreamedData":
    """All splits of a data set: in-memory uint8 tensors (`ImageData`), or for a folder of files
    too large for memory, the file lists decoded per batch (`StreamedData`). Memoised per process."""
    from ablate.data.builtin import load_digits, load_synthetic
    from ablate.data.files import load_cifar, load_imagefolder
    from ablate.data.imagenet import load_imagenet

    loaders = {DigitsConfig: load_digits, CifarConfig: load_cifar, ImageFolderConfig: load_imagefolder,
               ImageNetConfig: load_imagenet, SyntheticConfig: load_synthetic}
    return loaders[type(cfg)](cfg)


__all__ = ["DataConfig", "DATA_NAMES", "BUNDLED_DATA", "ImageData", "StreamedData", "check_data", "load_data",
           "DigitsConfig", "CifarConfig", "ImageFolderConfig", "ImageNetConfig", "SyntheticConfig"]
