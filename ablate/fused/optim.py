"""SGD, Adam and AdamW for fused members: each member's own lr, momentum or betas, and decay.

Hand-written because a fused parameter holds every member in one tensor (member k is row k of
`member_view`), and torch.optim's param groups can only hold whole tensors, not slices of one;
so per-member hyper-parameters become vectors along the member dimension here. The update is
torch.optim.SGD's (dampening 0, not maximising), term for term:

    d = g + wd * p;   buf = d at the first step, else momentum * buf + d;
    d = g' + momentum * buf with Nesterov (g' = d above), else buf;   p -= lr * d

Adam and AdamW follow torch.optim.Adam / AdamW (amsgrad off, eps 1e-8) the same way: L2 decay
added to the gradient (Adam) or decoupled, p *= 1 - lr * wd (AdamW); m = lerp(m, g, 1 - b1);
v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

A masked member (diverged or pruned) gets lr 0 and its gradient ignored, so its weights stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ablate.fused.model import member_view


@dataclass(frozen=True)
class MemberSettings:
    """One member's optimiser settings (from its procedure)."""

    momentum: float
    nesterov: bool
    weight_decay: float
    decay_norm_and_bias: bool
    betas: tuple[float, float] = (0.9, 0.999)

    @classmethod
    def of(cls, proc) -> MemberSettings:
        return cls(proc.momentum, proc.nesterov, proc.weight_decay, proc.decay_norm_and_bias, tuple(proc.betas))


def _decay_columns(ndims, members, col) -> list[torch.Tensor]:
    """Per parameter, each member's weight decay (0 on biases and norms with no-bias-decay)."""
    return [col([s.weight_decay if (s.decay_norm_and_bias or nd > 1) else 0.0 for s in members]) for nd in ndims]


class FusedSGD:
    """SGD over fused parameters. `ndims[i]` is the dimension of parameter i in one member's
    model (no-bias-decay spares parameters of fewer than 2 dimensions, as
    `ablate.tricks.weight_decay.param_groups` does)."""

    def __init__(self, params: list[torch.Tensor], ndims: list[int], members: list[MemberSettings]) -> None:
        self.params, self.m = params, len(members)
        dev = params[0].device
        col = lambda values: torch.tensor(values, dtype=params[0].dtype, device=dev).view(-1, 1)  # noqa: E731
        self.momentum = col([s.momentum for s in members])
        self.nesterov = torch.tensor([s.nesterov for s in members], device=dev).view(-1, 1)
        self.weight_decay = _decay_columns(ndims, members, col)
        self.buffers: list[torch.Tensor | None] = [None] * len(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor) -> None:
        """`lr` (M,): this iteration's lr per member; `active` (M,) bool: members still training."""
        lr = torch.where(active, lr.to(self.params[0].dtype), 0.0).view(-1, 1)
        keep = active.view(-1, 1)
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            w = member_view(p, self.m)
            g = torch.where(keep, member_view(p.grad, self.m), 0.0)     # a masked member may hold NaN
            d = g.addcmul(w, self.weight_decay[i])
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = d.clone()
            else:
                buf.mul_(self.momentum).add_(d)
            d = torch.where(self.nesterov, d.addcmul(buf, self.momentum), buf)
            w.copy_(torch.where(keep, w.addcmul(d, lr, value=-1), w))   # NaN * 0 is NaN: select


class FusedAdam:
    """Adam (`decoupled=False`) or AdamW (`decoupled=True`) over fused parameters."""

    eps = 1e-8

    def __init__(self, params: list[torch.Tensor], ndims: list[int], members: list[MemberSettings], *,
                 decoupled: bool) -> None:
        self.params, self.m, self.decoupled = params, len(members), decoupled
        dev = params[0].device
        col = lambda values: torch.tensor(values, dtype=params[0].dtype, device=dev).view(-1, 1)  # noqa: E731
        self.beta1 = torch.tensor([s.betas[0] for s in members], dtype=torch.float64, device=dev).view(-1, 1)
        self.beta2 = torch.tensor([s.betas[1] for s in members], dtype=torch.float64, device=dev).view(-1, 1)
        self.weight_decay = _decay_columns(ndims, members, col)
        self.exp_avg = [torch.zeros_like(member_view(p, self.m)) for p in params]
        self.exp_avg_sq = [torch.zeros_like(member_view(p, self.m)) for p in params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor) -> None:
        """`lr` (M,): this iteration's lr per member; `active` (M,) bool: members still training."""
        self.steps += 1
        dtype = self.params[0].dtype
        lr64 = torch.where(active, lr.to(torch.float64), 0.0).view(-1, 1)
        keep = active.view(-1, 1)
        # bias corrections in float64, as torch computes them in Python floats
        step_size = (lr64 / (1 - self.beta1 ** self.steps)).to(dtype)
        bc2_sqrt = ((1 - self.beta2 ** self.steps) ** 0.5).to(dtype)
        one_minus_b1 = (1 - self.beta1).to(dtype)
        b2, one_minus_b2 = self.beta2.to(dtype), (1 - self.beta2).to(dtype)
        lr32 = lr64.to(dtype)
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            w = member_view(p, self.m)
            g = torch.where(keep, member_view(p.grad, self.m), 0.0)
            new_w = w.clone()
            if self.decoupled:
                new_w.mul_(1 - lr32 * self.weight_decay[i])
            else:
                g = g.addcmul(w, self.weight_decay[i])
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            m.copy_(torch.where(keep, m.lerp(g, one_minus_b1), m))
            v.copy_(torch.where(keep, v * b2 + one_minus_b2 * g * g, v))
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            new_w.sub_(m / denom * step_size)          # addcdiv_(m, denom, value=-step_size)
            w.copy_(torch.where(keep, new_w, w))


def fused_optimizer(family: str, params: list[torch.Tensor], ndims: list[int], members: list[MemberSettings]):
    """The fused optimiser of `family` (a procedure's optimizer name)."""
    if family == "sgd":
        return FusedSGD(params, ndims, members)
    if family in ("adam", "adamw"):
        return FusedAdam(params, ndims, members, decoupled=family == "adamw")
    raise ValueError(f"no fused optimiser for '{family}'")   # fusion_key keeps these trials apart
