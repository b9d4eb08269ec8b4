"""Losses beyond torch's cross-entropy: GHM-C adapted to softmax classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gradient_norms(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each sample's "gradient norm" g in [0, 1]: half the L1 norm of d CE / d logits = p - t.
    For a one-hot target it is 1 - p_y, the softmax counterpart of GHM's |p - y| for a sigmoid."""
    return 0.5 * (probs - target).abs().sum(1)


def ghm_weights(g: torch.Tensor, bins: int, accumulated: torch.Tensor | None = None,
                momentum: float = 0.0) -> torch.Tensor:
    """GHM-C's per-sample weights (Li et al. 2019, eq. 6-8, with their code's normalisation):
    N / GD(g), the batch size over the number of samples in g's bin (with momentum, a running
    average of that count, updated in place in `accumulated`), divided by the number of
    non-empty bins. Samples in crowded bins (the many easy ones) weigh less. As in the paper's
    code the running counts start at 0, so the first batches weigh up to 1 / (1 - momentum) more."""
    idx = (g * bins).long().clamp_(0, bins - 1)
    counts = torch.bincount(idx, minlength=bins).to(g.dtype)
    filled = counts > 0
    if momentum > 0 and accumulated is not None:
        accumulated[filled] = momentum * accumulated[filled] + (1 - momentum) * counts[filled]
        density = accumulated
    else:
        density = counts
    weights = len(g) / density[idx]
    return weights / filled.sum().clamp(min=1)


class GHMCLoss(nn.Module):
    """Gradient harmonizing classification loss (Li, Liu & Wang 2019, arXiv:1811.05181), for
    softmax classification: cross-entropy per sample, weighted by `ghm_weights` of its gradient
    norm (`gradient_norms`), summed and divided by the batch size. Takes integer or soft targets
    (mixing) and smooths them like `CrossEntropyLoss(label_smoothing)`. The weights are constants
    (no gradient flows through them), as in the paper."""

    def __init__(self, *, bins: int = 10, momentum: float = 0.75, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.bins, self.momentum, self.label_smoothing = bins, momentum, label_smoothing
        self.register_buffer("accumulated", torch.zeros(bins))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        k = logits.shape[1]
        if target.ndim == 1:
            target = F.one_hot(target, k).float()
        target = target.float() * (1 - self.label_smoothing) + self.label_smoothing / k
        log_probs = logits.log_softmax(1)
        ce = -(target * log_probs).sum(1)
        with torch.no_grad():
            if self.accumulated.device != logits.device:
                self.accumulated = self.accumulated.to(logits.device)
            w = ghm_weights(gradient_norms(log_probs.exp(), target), self.bins,
                            self.accumulated if self.training else None, self.momentum)
        return (w * ce).sum() / len(ce)
