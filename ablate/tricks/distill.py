"""Knowledge distillation (Hinton, Vinyals & Dean 2015, Distilling the Knowledge in a Neural
Network, arXiv:1503.02531).

The loss becomes (1 - alpha) * (the trial's loss) + alpha * T^2 * KL(teacher_T || student_T),
where x_T = softmax(logits / T); T^2 keeps the soft term's gradient scale independent of T (the
paper's section 2). The teacher runs in eval mode under no_grad on the same (augmented, mixed)
batch as the student.

The teacher is either
- `trial: <experiment>/<trial id>` or `trial: <experiment>/<arm label>@<seed>`: the final weights
  a trial of an earlier experiment saved (`save: final`) in the same store's weights folder;
  the file's metadata rebuilds its model (with its tricks' model edits);
- `path: <file>` with `model: {...}`: any state-dict file and its model config.
Either way it must predict the data's classes (checked when the spec loads for `path:`, and
before anything runs for `trial:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from ablate.errors import AblateError
from ablate.models import ModelConfig
from ablate.tricks.base import SpecView, Trick, TrickParams, register_trick

if TYPE_CHECKING:
    import torch
    from torch import nn

_TRIAL_REF = re.compile(r"^(?P<experiment>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<ref>.+)$")
_TRIAL_ID = re.compile(r"^[0-9a-f]{16}$")


class DistillParams(TrickParams):
    temperature: float = Field(4.0, gt=0, le=100, description="softmax temperature T of both models")
    alpha: float = Field(0.9, gt=0, le=1, description="weight of the soft-target term (1 - alpha: the hard loss)")
    trial: str | None = Field(None, description="teacher: <experiment>/<trial id> or <experiment>/<arm label>@<seed>")
    path: str | None = Field(None, description="teacher: a state-dict file (with model:)")
    model: ModelConfig | None = Field(None, description="the teacher's model config (with path:), "
                                                        "e.g. {name: cifar_resnet, depth: 56}")

    @model_validator(mode="after")
    def _one_teacher(self):
        if (self.trial is None) == (self.path is None):
            raise ValueError("give the teacher as exactly one of trial: <experiment>/<trial id or label@seed> "
                             "or path: <file> (with model:), got " + ("both" if self.trial else "neither"))
        if self.path is not None and self.model is None:
            raise ValueError("path: needs the teacher's model config as model: {name: ..., ...}")
        if self.trial is not None:
            if self.model is not None:
                raise ValueError("trial: teachers rebuild their model from the saved file; remove model:")
            if not _TRIAL_REF.match(self.trial):
                raise ValueError(f"trial must be <experiment>/<trial id> or <experiment>/<arm label>@<seed>, "
                                 f"got {self.trial!r}")
        return self


@dataclass(frozen=True)
class TeacherRef:
    """What the trick puts in the procedure; the trainer loads it (`Distillation.load`)."""

    temperature: float
    alpha: float
    trial: str | None
    path: str | None
    model: Any


@register_trick
class Distill(Trick):
    name = "distill"
    code = "KD"
    title = "Knowledge distillation"
    paper = "Hinton et al. 2015, Distilling the Knowledge in a Neural Network (arXiv:1503.02531)"
    kind = "loss"
    slot = "teacher"
    Params = DistillParams

    def apply(self, params, proc):
        proc.distill = TeacherRef(params.temperature, params.alpha, params.trial, params.path, params.model)

    def check_files(self, params, spec: SpecView) -> str | None:
        """For `path:` teachers: the file is a state dict fitting the teacher model and the data's
        classes (run when a spec loads with its files checked)."""
        if params.path is None:
            return None
        from ablate.models.weights import WeightsError, data_shape

        shape = data_shape(spec.data)
        try:
            if shape is None:
                from ablate.models.weights import read_state_dict

                read_state_dict(params.path)
            else:
                build_path_teacher(params.path, params.model, channels=shape[0], num_classes=shape[1],
                                   image_size=getattr(spec.data, "image_size", None), shapes_only=True)
        except WeightsError as exc:
            return f"teacher: {exc}"
        return None

    def reads_saved_weights(self, params) -> bool:
        return True

    def check_saved_weights(self, uses, weights_root) -> None:
        check_trial_teachers([(params.trial, trial) for params, trial in uses], weights_root)


# -- finding and building teachers -----------------------------------------------------------

def _fit_teacher(model: nn.Module, state: dict, *, num_classes: int, source: str) -> dict:
    from ablate.models.weights import WeightsError, fit_state_dict, head_keys

    heads = head_keys(model, num_classes)
    for key in heads:
        if key in state and state[key].shape[0] != num_classes:
            raise WeightsError(f"the teacher '{source}' predicts {state[key].shape[0]} classes (tensor '{key}'), "
                               f"but the data has {num_classes}; a teacher must be trained on the same classes")
    fitted, _ = fit_state_dict(model, state, num_classes=num_classes, source=source, replace_head=False)
    return fitted


def build_path_teacher(path: str, model_cfg, *, channels: int, num_classes: int, image_size: int | None,
                       shapes_only: bool = False) -> nn.Module:
    """The teacher of a `path:` reference with its weights loaded (`shapes_only`: only checked
    against a model built for shapes, see `build_for_shapes`)."""
    from ablate.models import build_for_shapes, build_model
    from ablate.models.weights import read_state_dict

    state = read_state_dict(path)
    build = build_for_shapes if shapes_only else build_model
    model = build(model_cfg, in_channels=channels, num_classes=num_classes, image_size=image_size)
    fitted = _fit_teacher(model, state, num_classes=num_classes, source=str(path))
    if not shapes_only:
        model.load_state_dict(fitted)
    return model


def find_trial_teacher(ref: str, weights_root: str | Path | None) -> Path:
    """The saved weights file a `trial:` reference names, or an error saying what was looked at."""
    from ablate.models.weights import SAFETENSORS_SUFFIX, saved_meta

    if weights_root is None:
        raise AblateError(f"teacher trial '{ref}' is looked up in a store's weights folder, but this run has "
                          f"none (run it with `ablate run --store ...`, the store the teacher was saved in)")
    m = _TRIAL_REF.match(ref)
    folder = Path(weights_root) / m["experiment"]
    if not folder.is_dir():
        raise AblateError(f"teacher trial '{ref}': no saved weights of experiment '{m['experiment']}' in "
                          f"{folder}; run that experiment with 'save: final' first (same store)")
    if _TRIAL_ID.match(m["ref"]):
        path = folder / f"{m['ref']}{SAFETENSORS_SUFFIX}"
        if path.is_file():
            return path
    saved = {}
    for p in sorted(folder.glob(f"*{SAFETENSORS_SUFFIX}")):
        meta = saved_meta(p)
        saved[f"{meta.get('label')}@{meta.get('seed')}"] = p
    if m["ref"] in saved:
        return saved[m["ref"]]
    listed = ", ".join(sorted(saved)) or "(none)"
    raise AblateError(f"teacher trial '{ref}' was not found in {folder}: give a saved trial id or one of "
                      f"these <arm label>@<seed>: {listed}")


def build_trial_teacher(path: Path, *, num_classes: int, channels: int | None = None) -> nn.Module:
    """Rebuild a saved trial's model (config and tricks' model edits from the file's metadata)
    and load its weights."""
    from pydantic import TypeAdapter

    from ablate.models import build_model
    from ablate.models.weights import WeightsError, read_state_dict, saved_meta
    from ablate.tricks.base import Procedure, get_trick

    meta = saved_meta(path)
    if "model" not in meta:
        raise WeightsError(f"'{path}' has no ablate metadata (it was not saved by 'save: final')")
    if meta["num_classes"] != num_classes:
        raise WeightsError(f"the teacher '{path}' (trial {meta['trial_id']} of '{meta['experiment']}') predicts "
                           f"{meta['num_classes']} classes, but the data has {num_classes}; a teacher must be "
                           f"trained on the same classes")
    if channels is not None and meta["channels"] != channels:
        raise WeightsError(f"the teacher '{path}' takes {meta['channels']}-channel images, but the data has "
                           f"{channels} channel(s); the teacher sees the student's batches")
    model_cfg = TypeAdapter(ModelConfig).validate_python(meta["model"])
    proc = Procedure(epochs=1, batch_size=2, optimizer="sgd", lr=0.1, momentum=0.0, nesterov=False,
                     weight_decay=0.0, num_classes=num_classes)
    for t in meta["tricks"]:
        trick = get_trick(t["use"])
        trick.apply(trick.Params.model_validate(t["params"]), proc)
    model = build_model(model_cfg, in_channels=meta["channels"], num_classes=num_classes,
                        image_size=meta.get("image_size"))
    for edit in proc.model_edits:
        edit(model)
    model.load_state_dict(_fit_teacher(model, read_state_dict(path), num_classes=num_classes, source=str(path)))
    return model


def check_trial_teachers(teachers: list[tuple[str | None, Any]], weights_root) -> None:
    """Before anything runs: every `trial:` teacher exists and predicts the data's classes.
    `teachers`: (the teacher trial's id or None for a `path:` teacher, the student trial)."""
    from ablate.models.weights import WeightsError, data_shape, saved_meta

    seen = set()
    for ref, trial in teachers:
        if ref is None or ref in seen:
            continue
        seen.add(ref)
        path = find_trial_teacher(ref, weights_root)
        shape = data_shape(trial.data)
        meta = saved_meta(path)
        if shape is not None and meta.get("num_classes") != shape[1]:
            raise WeightsError(f"teacher trial '{ref}' predicts {meta.get('num_classes')} classes, "
                               f"but {trial.data.name} has {shape[1]}; a teacher must be trained on the "
                               f"same classes")
        if shape is not None and meta.get("channels") != shape[0]:
            raise WeightsError(f"teacher trial '{ref}' takes {meta.get('channels')}-channel images, "
                               f"but {trial.data.name} has {shape[0]} channel(s); the teacher sees the "
                               f"student's batches")


class Distillation:
    """The teacher (eval mode, no gradients) and the blended loss."""

    def __init__(self, teacher: nn.Module, temperature: float, alpha: float) -> None:
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha

    @classmethod
    def load(cls, ref: TeacherRef, *, data, data_cfg, device, weights_root) -> Distillation:
        if ref.trial is not None:
            teacher = build_trial_teacher(find_trial_teacher(ref.trial, weights_root), num_classes=data.num_classes,
                                          channels=data.channels)
        else:
            teacher = build_path_teacher(ref.path, ref.model, channels=data.channels, num_classes=data.num_classes,
                                         image_size=getattr(data_cfg, "image_size", None))
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return cls(teacher, ref.temperature, ref.alpha)

    def __call__(self, loss: torch.Tensor, student_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.no_grad():
            teacher_logits = self.teacher(x)
        return (1 - self.alpha) * loss + self.alpha * soft_target_loss(student_logits, teacher_logits,
                                                                       self.temperature)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch."""
    import torch.nn.functional as F

    t = temperature
    return F.kl_div(F.log_softmax(student_logits.float() / t, dim=1), F.log_softmax(teacher_logits.float() / t, dim=1),
                    reduction="batchmean", log_target=True) * t * t
