"""The residual-block protocol: how tricks that act on residual branches (ShakeDrop, stochastic
depth) find them in any model family.

A block opts in with one class attribute, `residual_branch_end`: the name of its child module
whose output *is* the residual branch's output, added to the shortcut right after (e.g. "bn2").
A trick wraps that child, `nn.Sequential(child, wrapper)`, so the wrapper sees exactly the
branch output; nothing else of the block changes. A family whose branch ends in a functional
op (no child module) should end it in a module (e.g. `nn.Identity()`) and name that.

torchvision's `BasicBlock`/`Bottleneck` and ablate's `PreActBlock` are known here without the
attribute (their branches end in bn2, bn3 and conv2). The blocks are found in forward
(registration) order, which is the order of their depth for the sequential ResNets ablate builds.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

BRANCH_END_ATTR = "residual_branch_end"


def branch_end_name(block: nn.Module) -> str | None:
    """The child ending `block`'s residual branch, or None when `block` is not a residual block."""
    name = getattr(type(block), BRANCH_END_ATTR, None)
    if name is not None:
        return name
    from torchvision.models import resnet as tv

    from ablate.models.resnet import PreActBlock

    if isinstance(block, tv.Bottleneck):
        return "bn3"
    if isinstance(block, tv.BasicBlock):
        return "bn2"
    if isinstance(block, PreActBlock):
        return "conv2"
    return None


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """Every residual block of `model` (see the module docstring), in registration order."""
    return [m for m in model.modules() if branch_end_name(m) is not None]


def wrap_residual_branches(model: nn.Module, make_wrapper: Callable[[int, int], nn.Module]) -> int:
    """Append `make_wrapper(index, count)` (index 1..count, in depth order) to the end of every
    residual branch. Returns the number of blocks wrapped; raises ValueError when there is none."""
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no residual blocks (no module declares "
                         f"'{BRANCH_END_ATTR}')")
    for i, block in enumerate(blocks, start=1):
        name = branch_end_name(block)
        setattr(block, name, nn.Sequential(getattr(block, name), make_wrapper(i, len(blocks))))
    return len(blocks)


def has_residual_blocks(model_cfg, in_channels: int = 3) -> bool:
    """Whether the model a config builds has residual blocks; built on the meta device (no
    memory, no initialisation cost), so a spec can be checked before anything runs."""
    import torch

    from ablate.models import build_model

    try:
        with torch.device("meta"):
            model = build_model(model_cfg, in_channels=in_channels, num_classes=10)
    except Exception:   # a builder that cannot run on meta tensors (e.g. loads weights): build it for real
        with torch.random.fork_rng(devices=[]):
            model = build_model(model_cfg, in_channels=in_channels, num_classes=10)
    return bool(residual_blocks(model))
