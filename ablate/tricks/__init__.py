"""The trick registry. Importing this package registers every built-in trick."""

from ablate.tricks import (  # noqa: F401  (imported to register)
    attention,
    branch_drop,
    distill,
    erasing,
    ghm,
    initialization,
    label_smoothing,
    mixing,
    normalization,
    optimizers,
    policies,
    resnet_tweaks,
    schedule,
    training,
    weight_decay,
    zero_gamma,
)
from ablate.tricks.base import (
    NoParams,
    Procedure,
    Trick,
    TrickParams,
    all_tricks,
    get_trick,
    register_trick,
    trick_names,
)
from ablate.tricks.schedule import lr_multiplier

__all__ = ["NoParams", "Procedure", "Trick", "TrickParams", "all_tricks", "get_trick",
           "register_trick", "trick_names", "lr_multiplier"]
