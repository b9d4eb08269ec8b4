"""The trick registry and the `Procedure` that tricks edit.

A trick is a small stateless object: it declares its parameters (a pydantic model with types,
ranges and defaults), a short table code, the paper it comes from, and one `apply` method that
edits a `Procedure` -- the plain description of how a trial trains. The trainer reads the
procedure and composes the effects in one documented order (see `ablate.train`). Tricks never
touch the training loop themselves, so two tricks cannot fight over it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ablate.config import TrickParams
from ablate.config.spec_errors import suggest

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ablate.config.sections import Recipe, TrickSetting
    from ablate.data import DataConfig
    from ablate.models import ModelConfig


class SpecView(Protocol):
    """What a trick's checks read of a spec: its data, model, recipe and tricks. A
    `ablate.design.spec.Spec` is one; typing the checks against this keeps the trick registry
    below the spec that looks tricks up."""

    data: DataConfig
    model: ModelConfig | None
    recipe: Recipe | None
    tricks: dict[str, TrickSetting]


class NoParams(TrickParams):
    """For tricks that take no parameters."""


@dataclass
class Procedure:
    """How one trial trains, after its tricks have been applied.

    The recipe fills the defaults; each trick edits only the fields it owns. Lists hold
    callables that the trainer calls in list order (tricks are applied in a fixed order, so the
    lists are deterministic for a given set of tricks).
    """

    epochs: int
    batch_size: int
    # optimiser (torch.optim names: sgd, adam, adamw, radam)
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    decay_norm_and_bias: bool = True
    # extra keyword arguments of the optimiser class (AdaBound's final_lr and gamma)
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    lookahead: tuple[int, float] | None = None   # (k, alpha): wrap the optimiser in Lookahead
    # parameters a regulariser below handles instead of weight decay (each callable lists them)
    decay_exempt: list[Callable[[nn.Module], list[torch.Tensor]]] = field(default_factory=list)
    # learning-rate schedule, evaluated per iteration by `lr_multiplier`
    schedule: str = "constant"            # constant | step | cosine
    milestones: tuple[float, ...] = (0.5, 0.75)   # fractions of training, for "step"
    gamma: float = 0.1
    final_lr_factor: float = 0.0          # cosine ends at lr * final_lr_factor
    warmup_epochs: float = 0.0
    warmup_start_factor: float = 0.0
    # model: structural edits right after construction, then init edits after weight init
    model_edits: list[Callable[[nn.Module], None]] = field(default_factory=list)
    init_edits: list[Callable[[nn.Module], None]] = field(default_factory=list)
    # data: per-image uint8 policies, then batched erasing on normalised floats, then mixing.
    # Each callable takes the trial's "tricks" generator as its last argument and draws all its
    # randomness from it (never from the global torch RNG).
    sample_policies: list[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = field(default_factory=list)
    batch_erasers: list[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = field(default_factory=list)
    batch_mixers: list[Callable[[torch.Tensor, torch.Tensor, torch.Generator],
                                tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    # loss
    label_smoothing: float = 0.0
    loss: str = "cross_entropy"           # cross_entropy | ghmc
    loss_options: dict[str, Any] = field(default_factory=dict)
    # terms added to the training objective (not to the reported loss), each a function of the model
    regularisers: list[Callable[[nn.Module], torch.Tensor]] = field(default_factory=list)
    # step
    autocast_dtype: str | None = None     # "bfloat16" | "float16"
    ema_decay: float | None = None
    ema_warmup: bool = True
    sam_rho: float | None = None
    distill: Any = None                   # knowledge distillation (ablate.tricks.distill.TeacherRef)
    sam_eta: float | None = None          # ASAM: the ascent is scaled by |w| + eta (None: plain SAM)
    num_classes: int = 0                  # filled by the trainer before tricks apply


GLOBAL_RNG_LOCK = threading.RLock()
"""Held by every block that forks and seeds torch's global CPU RNG (model init, torchvision's
transforms), so trials running in threads (`--jobs`) never draw from each other's state."""


@contextlib.contextmanager
def global_rng_from(generator: torch.Generator) -> Iterator[None]:
    """Run a block that uses the global CPU torch RNG (torchvision's v2 transforms draw from it)
    on a private copy seeded from `generator`; the global state is restored afterwards.

    torchvision's MixUp, CutMix, AutoAugment, RandAugment and TrivialAugmentWide take no
    generator. Forking costs about 0.1 ms a call (measured), small next to the per-image
    policies (about 1 ms an image), so wrapping them keeps torchvision's implementations and
    still makes every draw a function of the trial's own stream.
    """
    import torch

    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)   # CPU only: torch.manual_seed would reseed CUDA
        yield


class Trick:
    """Base class. Subclasses set the class attributes and implement `apply`."""

    name: ClassVar[str]
    code: ClassVar[str]          # short code used in table labels, e.g. "C" in "ResNet20 + C + S"
    title: ClassVar[str]
    paper: ClassVar[str]
    kind: ClassVar[str]          # schedule | loss | augmentation | model | optimizer | training
    slot: ClassVar[str | None] = None   # tricks sharing a slot cannot be combined in one arm
    needs_resnet: ClassVar[bool] = False
    Params: ClassVar[type[TrickParams]] = NoParams

    def check(self, params: TrickParams, spec: SpecView) -> str | None:
        """Return a reason when this trick cannot be used with `spec`, else None."""
        if self.needs_resnet:
            from ablate.models import model_info

            info = model_info(spec.model)
            if info.family != "resnet":
                return (f"'{self.name}' needs a ResNet with residual blocks, but model "
                        f"'{spec.model.name}' is a {info.family}")
        return None

    def apply(self, params: TrickParams, proc: Procedure) -> None:
        raise NotImplementedError

    # -- files a trick reads: hooks every caller calls for every trick --------------------------

    def check_files(self, params: TrickParams, spec: SpecView) -> str | None:
        """A reason when a file this trick names is unusable with `spec`, else None (run when a
        spec loads with its files checked)."""
        return None

    def reads_saved_weights(self, params: TrickParams) -> bool:
        """Whether a trial with this trick may read weights that trials save (a distillation
        teacher): its runner then gets the store's weights folder."""
        return False

    def check_saved_weights(self, uses: list[tuple[TrickParams, Any]], weights_root: Path | None) -> None:
        """Before anything runs: the saved weights that `uses` ((params, trial) of every planned
        trial with this trick) read exist and fit their trials; raises an AblateError otherwise."""

    def describe_params(self) -> list[dict[str, Any]]:
        """Parameter rows for `ablate tricks`: name, type, default, allowed range, help."""
        rows = []
        for pname, finfo in self.Params.model_fields.items():
            lo = hi = None
            for m in finfo.metadata:
                for attr, side in (("ge", "[" ), ("gt", "("), ("le", "]"), ("lt", ")")):
                    v = getattr(m, attr, None)
                    if v is not None:
                        if attr in ("ge", "gt"):
                            lo = f"{side}{v}"
                        else:
                            hi = f"{v}{side}"
            ann = finfo.annotation
            tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
            rows.append({
                "name": pname, "type": tname, "default": finfo.default,
                "range": f"{lo or '(-inf'}, {hi or 'inf)'}" if (lo or hi) else "",
                "help": finfo.description or "",
            })
        return rows


_REGISTRY: dict[str, Trick] = {}


def register_trick(cls: type[Trick]) -> type[Trick]:
    """Class decorator: add a trick to the registry under `cls.name`."""
    if cls.name in _REGISTRY:
        raise RuntimeError(f"trick '{cls.name}' registered twice")
    codes = {t.code: n for n, t in _REGISTRY.items()}
    if cls.code in codes:
        raise RuntimeError(f"trick code '{cls.code}' of '{cls.name}' already used by '{codes[cls.code]}'")
    _REGISTRY[cls.name] = cls()
    return cls


def get_trick(name: str) -> Trick:
    """The registered trick `name`; KeyError naming the valid ones (and the nearest) otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        names = sorted(_REGISTRY)
        raise KeyError(f"unknown trick '{name}'{suggest(name, names)}; registered tricks: "
                       f"{', '.join(names)}") from None


def trick_names() -> list[str]:
    return sorted(_REGISTRY)


def all_tricks() -> dict[str, Trick]:
    return dict(sorted(_REGISTRY.items()))


def reads_saved_weights(settings: Iterable[Any]) -> bool:
    """Whether any of `settings` (a spec's or a trial's tricks: `use` and `params`) reads saved
    weights (`Trick.reads_saved_weights`)."""
    return any(get_trick(t.use).reads_saved_weights(t.params) for t in settings)


def check_saved_weights(trials: Iterable[Any], weights_root: Path | None) -> None:
    """Before anything runs: every trick of `trials` checks the saved weights it reads
    (`Trick.check_saved_weights`), once for all the trials that use it."""
    uses: dict[str, list[tuple[TrickParams, Any]]] = {}
    for trial in trials:
        for t in getattr(trial, "tricks", ()):
            uses.setdefault(t.use, []).append((t.params, trial))
    for name, pairs in uses.items():
        get_trick(name).check_saved_weights(pairs, weights_root)
