"""Pretrained and saved weights: read a state-dict file, fit it to a model, save a trial's final
weights, and the checks a spec gets when it loads.

Files are read with safetensors (`.safetensors`) or `torch.load(weights_only=True)` (anything
else), never unpickled freely, and never downloaded: `weights: cache` looks in torchvision's or
timm's local download cache (`ablate.models.zoo.cache_file`) and fails naming the paths it
looked at. Fitting is strict: every tensor of the model must be in the file with its shape,
except
- the head (the last Linear, or 1x1 conv, producing the classes) when the classes differ: it
  keeps its fresh initialisation, and the trial's final metrics say so (`weights_note`);
- the first conv when the file has 3 input channels and the data another number: the kernel
  is summed (1 channel) or averaged and repeated, the usual adaptation of RGB weights.
Anything else names the first mismatching tensor with both shapes.

Saved weights (`save: final`) are a safetensors file whose metadata (`ablate`, JSON) says
which trial made them and how to rebuild the model: experiment, trial id, arm label, seed,
model config, the tricks (their model edits change the architecture), channels and classes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError

if TYPE_CHECKING:
    import torch
    from torch import nn

SAFETENSORS_SUFFIX = ".safetensors"


class WeightsError(AblateError):
    """A weights file that is absent, not a state dict, or does not fit the model."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state-dict file; `{"state_dict": ...}` and `{"model": ...}` wrappers
    (common in training checkpoints) are unwrapped."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        if path.suffix == SAFETENSORS_SUFFIX:
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any reader failure means "not a weights file"
        raise WeightsError(f"'{path}' is not a state-dict file torch.load(weights_only=True) or safetensors "
                           f"can read: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        kind = type(state).__name__ if not isinstance(state, dict) else (
            "an empty dict" if not state else "a dict whose values are not all tensors")
        raise WeightsError(f"'{path}' holds {kind}, not a state dict (a mapping of parameter names to "
                           f"tensors, as model.state_dict() gives)")
    return state


def head_keys(model: nn.Module, num_classes: int) -> set[str]:
    """State-dict keys of the classifier head: the last Linear (or 1x1 conv) with num_classes outputs."""
    from torch import nn

    head = None
    for name, m in model.named_modules():
        if (isinstance(m, nn.Linear) and m.out_features == num_classes) or \
                (isinstance(m, nn.Conv2d) and m.out_channels == num_classes and m.kernel_size == (1, 1)):
            head = name
    if head is None:
        return set()
    return {f"{head}.{k}" for k, _ in model.get_submodule(head).named_parameters(recurse=False)}


def _first_conv_key(model: nn.Module) -> str | None:
    from torch import nn

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return f"{name}.weight"
    return None


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, num_classes: int,
                   source: str, replace_head: bool = True) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`state` made loadable into `model` (see the module docstring); returns it and notes."""
    expected = model.state_dict()
    heads = head_keys(model, num_classes) if replace_head else set()
    first_conv = _first_conv_key(model)
    fitted: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    for key, want in expected.items():
        if key not in state:
            raise WeightsError(f"'{source}' does not fit the model: it has no tensor '{key}' (expected shape "
                               f"{tuple(want.shape)}); its first keys are {', '.join(list(state)[:3])}")
        got = state[key]
        if tuple(got.shape) == tuple(want.shape):
            fitted[key] = got
        elif key in heads:
            fitted[key] = want
            if not notes or not notes[-1].startswith("head"):
                notes.append(f"head '{key.rsplit('.', 1)[0]}' re-initialised for {num_classes} classes "
                             f"(the file's has {got.shape[0]})")
        elif key == first_conv and got.dim() == 4 and got.shape[1] == 3 and got.shape[0] == want.shape[0] \
                and got.shape[2:] == want.shape[2:]:
            c = want.shape[1]
            fitted[key] = got.sum(1, keepdim=True) if c == 1 else got.mean(1, keepdim=True).repeat(1, c, 1, 1) * 3 / c
            notes.append(f"first conv '{key}' adapted from 3 input channels to {c}")
        else:
            raise WeightsError(f"'{source}' does not fit the model: tensor '{key}' has shape {tuple(got.shape)} "
                               f"in the file, the model expects {tuple(want.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise WeightsError(f"'{source}' does not fit the model: it has tensor '{extra[0]}' (shape "
                           f"{tuple(state[extra[0]].shape)}) that the model lacks"
                           + (f", and {len(extra) - 1} more" if len(extra) > 1 else ""))
    return fitted, notes


def weights_file(cfg) -> Path | None:
    """The file a model config's `weights:` names (the zoo's cache for `cache`), or None."""
    if cfg.weights is None:
        return None
    if cfg.weights == "cache":
        from ablate.models.zoo import cache_file

        try:
            return cache_file(cfg)
        except AblateError as exc:
            raise WeightsError(str(exc)) from None
    return Path(cfg.weights).expanduser()


def load_pretrained(model: nn.Module, cfg, *, num_classes: int) -> dict[str, str]:
    """Load `cfg.weights` into `model` (in place); what happened, for the trial's final metrics."""
    path = weights_file(cfg)
    if path is None:
        return {}
    fitted, notes = fit_state_dict(model, read_state_dict(path), num_classes=num_classes, source=str(path))
    model.load_state_dict(fitted)
    info = {"weights_file": str(path)}
    if notes:
        info["weights_note"] = "; ".join(notes)
    return info


# -- saving a trial's weights -----------------------------------------------------------------

def save_weights(model: nn.Module, path: Path, meta: dict[str, Any]) -> Path:
    """Write `model`'s state dict as safetensors with `meta` (JSON) in the header."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"ablate": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)   # a killed run leaves no half-written file under the final name
    return path


def saved_meta(path: Path) -> dict[str, Any]:
    """The `ablate` metadata of a saved weights file ({} when it has none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"'{path}' is not a safetensors file: {exc}") from None
    return json.loads(meta["ablate"]) if "ablate" in meta else {}


def trial_weights_path(root: Path, experiment: str, trial_id: str) -> Path:
    return Path(root) / experiment / f"{trial_id}{SAFETENSORS_SUFFIX}"


# -- checks when a spec loads ---------------------------------------------------------------

def data_shape(data_cfg) -> tuple[int, int] | None:
    """(channels, classes) of a data config without loading images, or None when unknown."""
    name = data_cfg.name
    if name == "digits":
        return data_cfg.channels, 10
    if name in ("cifar10", "cifar100"):
        return 3, 10 if name == "cifar10" else 100
    if name == "synthetic":
        return data_cfg.channels, data_cfg.num_classes
    root, train = getattr(data_cfg, "root", None), getattr(data_cfg, "train", "train")
    if root is not None and train is not None and (Path(root) / train).is_dir():
        classes = sum(1 for p in (Path(root) / train).iterdir() if p.is_dir())
        return getattr(data_cfg, "channels", 3), classes
    return None


def check_model_weights(model_cfg, data_cfg) -> str | None:
    """Why `model_cfg.weights` cannot be used with this data, or None (reads the file; builds
    the model on the meta device, so no memory is spent on it)."""
    from ablate.models import build_for_shapes

    if model_cfg.weights is None:
        return None
    try:
        path = weights_file(model_cfg)
        state = read_state_dict(path)
        shape = data_shape(data_cfg)
        if shape is None:
            return None
        model = build_for_shapes(model_cfg, in_channels=shape[0], num_classes=shape[1],
                                 image_size=getattr(data_cfg, "image_size", None))
        fit_state_dict(model, state, num_classes=shape[1], source=str(path))
    except WeightsError as exc:
        return str(exc)
    return None


def save_trial_weights(trial, model: nn.Module, data, root: str | Path) -> Path:
    """Save a finished trial's weights under `root` with what is needed to rebuild the model."""
    meta = {"experiment": trial.experiment, "trial_id": trial.id, "arm": trial.arm, "label": trial.label,
            "seed": trial.seed, "model": trial.model.model_dump(mode="json"),
            "tricks": [t.resolved() for t in trial.tricks], "channels": data.channels,
            "num_classes": data.num_classes, "image_size": getattr(trial.data, "image_size", None)}
    return save_weights(model, trial_weights_path(Path(root), trial.experiment, trial.id), meta)
