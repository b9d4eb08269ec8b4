"""SGD for fused members: each member's own lr, momentum, Nesterov and weight decay.

Hand-written because a fused parameter holds every member in one tensor (member k is row k of
`member_view`), and torch.optim's param groups can only hold whole tensors, not slices of one;
so per-member hyper-parameters become vectors along the member dimension here. The update is
torch.optim.SGD's (dampening 0, not maximising), term for term:

    d = g + wd * p;   buf = d at the first step, else momentum * buf + d;
    d = g' + momentum * buf with Nesterov (g' = d above), else buf;   p -= lr * d

A masked member (diverged or pruned) gets lr 0 and its gradient ignored, so its weights stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ablate.fused.model import member_view


@dataclass(frozen=True)
class MemberSettings:
    """One member's SGD settings (from its procedure)."""

    momentum: float
    nesterov: bool
    weight_decay: float
    decay_norm_and_bias: bool


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
        self.weight_decay = [col([s.weight_decay if (s.decay_norm_and_bias or nd > 1) else 0.0 for s in members])
                             for nd in ndims]
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
