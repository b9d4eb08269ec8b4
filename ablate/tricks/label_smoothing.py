"""Label smoothing: train on targets (1 - eps) one-hot + eps / K uniform.

Uses torch's `CrossEntropyLoss(label_smoothing=eps)`, which also smooths the soft targets that
mixup/CutMix produce.
"""

from __future__ import annotations

from pydantic import Field

from ablate.tricks.base import Trick, TrickParams, register_trick


class LabelSmoothingParams(TrickParams):
    eps: float = Field(0.1, gt=0, lt=1, description="probability mass spread over all classes")


@register_trick
class LabelSmoothing(Trick):
    name = "label_smoothing"
    code = "S"
    title = "Label smoothing"
    paper = "Szegedy et al. 2016, Rethinking the Inception Architecture (arXiv:1512.00567)"
    kind = "loss"
    Params = LabelSmoothingParams

    def apply(self, params, proc):
        proc.label_smoothing = params.eps
