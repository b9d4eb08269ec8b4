"""Optimisers torch lacks: AdaBound and the Lookahead wrapper.

torch.optim has neither (timm has both, but timm is an optional extra, and each is a few lines
here). The trainer builds them from a `Procedure` (`ablate.train.build_optimizer`).
"""

from __future__ import annotations

import math

import torch


def adabound_bounds(final_lr: float, gamma: float, step: int) -> tuple[float, float]:
    """AdaBound's clip range of the per-coordinate step size at `step` (1-based): it starts at
    (0, inf) and closes on `final_lr` from both sides as 1 / (gamma * step)."""
    lower = final_lr * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = final_lr * (1.0 + 1.0 / (gamma * step))
    return lower, upper


class AdaBound(torch.optim.Optimizer):
    """Luo et al. 2019, Adaptive Gradient Methods with Dynamic Bound of Learning Rate
    (arXiv:1902.09843): Adam whose per-coordinate step size lr / (sqrt(v) + eps) is clipped to
    `adabound_bounds`, so it moves from Adam towards SGD with lr `final_lr`.

    As in the paper's code, `final_lr` follows the learning-rate schedule: the bound used is
    final_lr * lr / base_lr (base_lr: the group's "base_lr", else the lr it was built with).
    Weight decay is L2 added to the gradient, as in Adam.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 final_lr: float = 0.1, gamma: float = 1e-3, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        for group in self.param_groups:
            group.setdefault("base_lr", lr)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                lower, upper = adabound_bounds(group["final_lr"] * group["lr"] / group["base_lr"],
                                               group["gamma"], t)
                rate = (step_size / (exp_avg_sq.sqrt() + group["eps"])).clamp_(lower, upper)
                p.sub_(rate * exp_avg)
        return loss


class Lookahead:
    """Zhang et al. 2019, Lookahead Optimizer: k steps forward, 1 step back (arXiv:1907.08610).

    The inner ("fast") optimiser steps as usual; every k steps the slow weights move a fraction
    alpha towards the fast ones, and the fast weights restart from there:
    slow <- slow + alpha (fast - slow); fast <- slow. It exposes the inner optimiser's
    `param_groups`, `state` and `defaults`, so learning-rate schedules and GradScaler work on it.
    """

    def __init__(self, inner: torch.optim.Optimizer, *, k: int, alpha: float) -> None:
        self.inner, self.k, self.alpha = inner, k, alpha
        self.fast_steps = 0
        self.slow = [p.detach().clone() for g in inner.param_groups for p in g["params"]]

    @property
    def param_groups(self):
        return self.inner.param_groups

    @property
    def state(self):
        return self.inner.state

    @property
    def defaults(self):
        return self.inner.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.inner.step(closure)
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            fast = [p for g in self.inner.param_groups for p in g["params"]]
            for s, f in zip(self.slow, fast):
                s.lerp_(f, self.alpha)
                f.copy_(s)
        return loss

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "slow": [s.clone() for s in self.slow],
                "fast_steps": self.fast_steps}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        for s, saved in zip(self.slow, state["slow"]):
            s.copy_(saved)
        self.fast_steps = state["fast_steps"]
