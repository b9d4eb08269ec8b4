"""Random residual-branch regularisers: ShakeDrop and stochastic depth, appended to the end of
every residual branch (`ablate.models.blocks.wrap_residual_branches`).

Randomness: each module owns a CPU generator seeded, when the module is built, from the global
RNG -- which the trainer has forked and seeded from the trial's "init" stream (`seeded_model`)
-- so the draws are a function of the trial seed and the global RNG is never read in training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def _generator_from_global_rng() -> torch.Generator:
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))


@contextlib.contextmanager
def device_rng_from(generator: torch.Generator, device: torch.device) -> Iterator[None]:
    """Run a block that draws from `device`'s global RNG (torchvision's StochasticDepth calls
    `bernoulli_` on its input's device) on a private copy seeded from `generator`."""
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    if device.type == "cuda":
        with torch.random.fork_rng(devices=[device]):
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)
            yield
    else:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


def linear_rate(index: int, count: int, final_rate: float) -> float:
    """The linear decay rule of both papers: block `index` of `count` (1-based, input to output)
    drops with probability index / count * final_rate, so the last block drops with final_rate."""
    return index / count * final_rate


class BranchStochasticDepth(nn.Module):
    """Huang et al. 2016: drop the residual branch with probability p (torchvision's
    StochasticDepth, which rescales kept branches by 1 / (1 - p) in training, so evaluation
    uses the branch as is)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        from torchvision.ops import StochasticDepth

        self.drop = StochasticDepth(p, mode)
        self.generator = _generator_from_global_rng()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop.p == 0.0:
            return x
        with device_rng_from(self.generator, x.device):
            return self.drop(x)


class _ShakeDropFunction(torch.autograd.Function):
    """Forward multiplies by (b + alpha - b alpha), backward by (b + beta - b beta)."""

    @staticmethod
    def forward(ctx, x, gate, alpha, beta):
        ctx.save_for_backward(gate, beta)
        return x * (gate + (1 - gate) * alpha)   # = b + alpha - b alpha, exact for b = 1

    @staticmethod
    def backward(ctx, grad):
        gate, beta = ctx.saved_tensors
        return grad * (gate + (1 - gate) * beta), None, None, None


def shakedrop_eval_scale(p: float, alpha_range: tuple[float, float]) -> float:
    """E[b + alpha - b alpha] with b ~ Bernoulli(1 - p), alpha ~ U(alpha_range): what the branch
    is multiplied by at test time (1 - p for the paper's alpha in [-1, 1])."""
    return (1.0 - p) + p * (alpha_range[0] + alpha_range[1]) / 2.0


class ShakeDrop(nn.Module):
    """Yamada et al. 2018 (arXiv:1802.02375), on a residual branch's output F(x): in training
    F(x) (b + alpha - b alpha) with one gate b ~ Bernoulli(1 - p) per batch (as the authors'
    code) and alpha ~ U(alpha_range) per image; the backward pass uses beta ~ U(beta_range) per
    image in place of alpha; at test time F(x) E[b + alpha - b alpha]."""

    def __init__(self, p: float, alpha_range: tuple[float, float], beta_range: tuple[float, float]) -> None:
        super().__init__()
        self.p, self.alpha_range, self.beta_range = p, alpha_range, beta_range
        self.generator = _generator_from_global_rng()

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, 1, 1, 1, generator=self.generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * shakedrop_eval_scale(self.p, self.alpha_range)
        gate = (torch.rand((), generator=self.generator) >= self.p).float()
        n = x.shape[0]
        alpha, beta = self._uniform(n, *self.alpha_range), self._uniform(n, *self.beta_range)
        gate, alpha, beta = (t.to(device=x.device, dtype=x.dtype) for t in (gate, alpha, beta))
        return _ShakeDropFunction.apply(x, gate, alpha, beta)

    def extra_repr(self) -> str:
        return f"p={self.p:.4g}, alpha_range={self.alpha_range}, beta_range={self.beta_range}"


def add_shakedrop(model: nn.Module, final_p: float, alpha_range: tuple[float, float],
                  beta_range: tuple[float, float]) -> int:
    from ablate.models.blocks import wrap_residual_branches

    return wrap_residual_branches(
        model, lambda i, n: ShakeDrop(linear_rate(i, n, final_p), alpha_range, beta_range))


def add_stochastic_depth(model: nn.Module, rate: float, linear_decay: bool, mode: str) -> int:
    from ablate.models.blocks import wrap_residual_branches

    return wrap_residual_branches(
        model, lambda i, n: BranchStochasticDepth(linear_rate(i, n, rate) if linear_decay else rate, mode))
