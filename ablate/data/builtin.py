"""Bundled and synthetic data sets: `digits` (scikit-learn) and `synthetic` (benchmarks only)."""

from __future__ import annotations

import numpy as np
import torch

from ablate.data.base import ImageData, resize_uint8, stratified_split, subsample


def load_digits(cfg) -> ImageData:
    """scikit-learn's 1,797 real 8x8 handwritten digits (UCI), resized; a fixed stratified split
    of 60% train / 20% validation / 20% test, then an optional fixed training subset."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.from_numpy(d.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    x = resize_uint8(x, cfg.image_size)
    if cfg.channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    y = np.asarray(d.target)
    val, test, train = stratified_split(y, (0.2, 0.2))
    train = train[subsample(y[train], cfg.train_size)]
    t = torch.from_numpy(y).long()
    return ImageData("digits", tuple(str(i) for i in range(10)),
                     x[train], t[train], x[val], t[val], x[test], t[test])


def load_synthetic(cfg) -> ImageData:
    """Random images with a weak class signal (a per-class mean pattern), for throughput runs."""
    g = torch.Generator().manual_seed(1234)
    n = cfg.train_size + cfg.val_size + cfg.test_size
    shape = (cfg.channels, cfg.image_size, cfg.image_size)
    y = torch.randint(0, cfg.num_classes, (n,), generator=g)
    patterns = torch.rand((cfg.num_classes, *shape), generator=g) * 64
    x = (torch.rand((n, *shape), generator=g) * 192 + patterns[y]).to(torch.uint8)
    a, b = cfg.train_size, cfg.train_size + cfg.val_size
    return ImageData("synthetic", tuple(str(i) for i in range(cfg.num_classes)),
                     x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])
