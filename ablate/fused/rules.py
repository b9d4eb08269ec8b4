"""Which trials train together as one fused model: `fusion_key`.

Trials fuse when they share the data, the model and its shape, the batch size, the number of
epochs, the evaluation batch size and the optimiser family (SGD, Adam or AdamW). Members may
differ in their seed (batch order, initialisation, augmentation draws) and in tricks that change
only the data, the loss, the optimiser's settings, the schedule, or the initial weights: the fused loop gives each
member its own streams, loss, lr schedule and SGD settings. Tricks that change the model's
structure fuse only with trials that make the same change (they are part of the key); tricks
that change the step itself (two passes, an averaged copy, autocast) are not fused.
"""

from __future__ import annotations

import json
from typing import Literal

Fusion = Literal["data", "loss", "optimizer", "schedule", "init", "structure", "module", "step", "family"]

TRICK_FUSION: dict[str, Fusion] = {
    # data: the member's own batch pipeline (its "tricks" stream)
    "autoaugment": "data", "randaugment": "data", "trivialaugment": "data",
    "random_erasing": "data", "cutout": "data", "mixup": "data", "cutmix": "data",
    "color_jitter": "data", "ricap": "data",
    # loss: the member's own criterion
    "label_smoothing": "loss",
    # optimiser settings: vectors along the member dimension of the fused SGD
    "no_bias_decay": "optimizer", "nesterov": "optimizer",
    # schedule: the member's own lr multiplier each step
    "warmup": "schedule", "cosine": "schedule", "step": "schedule",
    # init: each member is built (and edited) as its own model, then fused
    "zero_gamma": "init", "init": "init",
    # structure: other shapes, same kinds of layers -> fused only with the same change
    "resnet_b": "structure", "resnet_c": "structure", "resnet_d": "structure",
    # modules the grouped-conv conversion (`ablate.fused.model`) does not know: not fused
    "se": "module", "cbam": "module", "sk": "module", "gc": "module", "bam": "module", "sge": "module",
    "srm": "module", "shakedrop": "module", "stochastic_depth": "module", "evonorm_b0": "module",
    "evonorm_s0": "module", "weight_standardization": "module",
    # the step: not fused
    # precision: autocast around the fused forward; bfloat16 only (float16's loss scaler is
    # one for the whole fused model: one member's overflow would skip every member's step)
    "amp": "precision",
    "sam": "step", "ema": "step", "asam": "step", "lookahead": "step", "distill": "step",
    "ghmc": "step",
    # another optimiser family: fused with members of the same family (its lr, betas, decay
    # per member); RAdam has no fused form
    "adam": "family", "adamw": "family", "radam": "family", "adabound": "family",
}
"""Every registered trick, classified (a test fails for a trick missing here)."""

STEP_REASONS = {"sam": "SAM takes two forward/backward passes per step",
                "ema": "EMA evaluates an averaged copy of the weights",
                "asam": "ASAM takes two forward/backward passes per step",
                "lookahead": "Lookahead keeps slow weights beside the optimiser",
                "distill": "distillation runs a teacher model every step",
                "ghmc": "GHM-C's loss keeps a running gradient-density histogram the fused loop does not"}

# Recipe fields each member may set for itself; every other recipe field must be equal.
PER_MEMBER_RECIPE = {"lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones", "gamma"}

FUSED_OPTIMIZERS = {"sgd", "adam", "adamw"}


def fusion_decision(trial) -> tuple[str | None, str]:
    """(key, reason): trials with equal non-None keys may be fused; None with the reason why not."""
    if trial.command is not None:
        return None, "a command trial trains in its own process"
    structure = []
    family = trial.recipe.optimizer
    for setting in trial.tricks:
        kind = TRICK_FUSION.get(setting.use)
        if kind is None:
            return None, f"trick '{setting.use}' has no fusion classification"
        if kind == "step":
            return None, f"trick '{setting.use}': {STEP_REASONS[setting.use]}"
        if kind == "module":
            return None, f"trick '{setting.use}' adds or swaps modules that the fused model does not convert"
        if kind == "family":
            family = setting.use
        if kind == "precision":
            if setting.params.dtype != "bfloat16":
                return None, (f"trick '{setting.use}' with dtype {setting.params.dtype}: its loss scaler would be "
                              f"shared by every member (bfloat16 fuses)")
            structure.append(setting.resolved())
        if kind == "structure":
            structure.append(setting.resolved())
    if family not in FUSED_OPTIMIZERS:
        return None, (f"trains with {family}; fused optimisers: {', '.join(sorted(FUSED_OPTIMIZERS))} "
                      f"(from {'recipe.optimizer' if family == trial.recipe.optimizer else 'trick ' + repr(family)})")
    shared = {k: v for k, v in trial.recipe.model_dump(mode="json").items() if k not in PER_MEMBER_RECIPE}
    shared["optimizer"] = family
    key = json.dumps({"data": trial.data.model_dump(mode="json"), "model": trial.model.model_dump(mode="json"),
                      "recipe": shared, "structure": structure}, sort_keys=True)
    return key, "fusable"


def fusion_key(trial) -> str | None:
    """The group `trial` fuses with, or None when it must run on its own (see `fusion_decision`)."""
    return fusion_decision(trial)[0]
