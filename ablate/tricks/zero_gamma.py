"""Zero-gamma: start every residual branch at zero output so each block starts as the identity,
which makes early training behave like a shallower network.

Post-activation blocks zero the scale (gamma) of the branch's last BN, as in the papers.
Pre-activation blocks end in a conv fed by BN-ReLU: zeroing that BN would stop every gradient
of the branch at ReLU(0), so their last conv's weight is zeroed instead
(`ablate.models.resnet.branch_output_init`)."""

from __future__ import annotations

from ablate.tricks.base import Trick, register_trick


@register_trick
class ZeroGamma(Trick):
    name = "zero_gamma"
    code = "ZG"
    title = "Zero-gamma BN init"
    paper = "Goyal et al. 2017, Accurate, Large Minibatch SGD (arXiv:1706.02677); He et al. 2019 (arXiv:1812.01187)"
    kind = "model"
    needs_resnet = True

    def apply(self, params, proc):
        from ablate.models.resnet import zero_branch_gamma

        proc.init_edits.append(zero_branch_gamma)
