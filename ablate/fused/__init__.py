"""Trials fused into one model: several trials of one shape trained as one grouped-conv model.

`rules.fusion_key` decides which trials fuse, `model` builds the fused model, `optim` steps
each member with its own settings, `loop.train_group` trains a group; the executor that plugs
into the engine is `ablate.runner.fused.FusedExecutor`.
"""

from ablate.fused.rules import TRICK_FUSION, fusion_decision, fusion_key

__all__ = ["TRICK_FUSION", "fusion_decision", "fusion_key"]
