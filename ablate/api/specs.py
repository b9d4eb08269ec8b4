"""Specs and plans: load a spec (a file, a name, an NNI config, a dict), plan it, estimate its cost."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ablate.api.kinds import kind_of
from ablate.errors import AblateError, SpecError

if TYPE_CHECKING:
    from ablate.design.plan import Plan
    from ablate.design.spec import Spec


def load_spec_and_notes(source: str | os.PathLike | Mapping | Spec, *, overrides: Sequence[str] = (),
                        shrink: bool = False, check_files: bool = True) -> tuple[Spec, list[str]]:
    """`load_spec`, also returning the notes of an NNI config's conversion (empty otherwise)."""
    from ablate.design.shrink import apply_overrides, load_run_spec, shrink_spec
    from ablate.design.spec import Spec, spec_from_dict

    if isinstance(overrides, str):
        raise SpecError(f"overrides must be a list of 'KEY=VALUE' strings, got the string {overrides!r}; "
                        f"write overrides=[{overrides!r}]")
    if isinstance(source, (Spec, Mapping)):
        spec = source if isinstance(source, Spec) else spec_from_dict(dict(source), source="<dict>",
                                                                     check_files=False)
        spec = apply_overrides(spec, overrides, source="<dict>") if overrides else spec
        spec = shrink_spec(spec) if shrink else spec
        if check_files and spec.trial is None:
            from ablate.data import check_data

            check_data(spec.data)
        return spec, []
    if not isinstance(source, (str, os.PathLike)):
        raise SpecError(f"a spec is a path, the name of a spec in search_spaces/, a dict or a Spec; got a "
                        f"{type(source).__name__}")
    if isinstance(source, str) and "\n" in source:
        raise SpecError("a spec given as a string is a path or a name in search_spaces/, not YAML text; "
                        "for YAML text pass yaml.safe_load(text) (a dict)")
    from ablate.nni import load_spec_or_nni

    notes: list[str] = []

    def load(path, *, check_files: bool = True):
        spec, said = load_spec_or_nni(path, check_files=check_files)
        notes.extend(said)
        return spec

    spec = load_run_spec(source, overrides=overrides, shrink=shrink, check_files=check_files, load=load)
    return spec, notes


def load_spec(source: str | os.PathLike | Mapping | Spec, *, overrides: Sequence[str] = (),
              shrink: bool = False) -> Spec:
    """Load and validate a spec.

    Args:
        source: a YAML file's path, the name of a spec in search_spaces/ (``"quickstart"``), an
            NNI experiment config (converted), a dict of the spec's sections, or a `Spec`. A string
            is a path or a name, never YAML text.
        overrides: ``"KEY=VALUE"`` edits applied in order, as ``ablate run --override``
            (``"recipe.epochs=1"``, ``"tricks.mixup.alpha=0.4"``).
        shrink: toy scale on the CPU, as ``ablate run --shrink`` (experiment ``<name>-shrunk``).

    Returns:
        The validated `Spec`.

    Raises:
        SpecError: the file is missing, not YAML, or a field is invalid (the message names the
            file, line and field). DataError: the spec's data files are absent.

    Example:
        >>> spec = ablate.load_spec("quickstart", overrides=["recipe.epochs=1"])  # doctest: +SKIP
    """
    return load_spec_and_notes(source, overrides=overrides, shrink=shrink)[0]


def as_spec(spec_or_source, *, check_files: bool = True) -> Spec:
    from ablate.design.spec import Spec

    if isinstance(spec_or_source, Spec):
        return spec_or_source
    return load_spec_and_notes(spec_or_source, check_files=check_files)[0]


def plan(spec: Spec | str | os.PathLike | Mapping) -> Plan:
    """The arms and trials of a spec (what ``ablate plan`` prints), running nothing.

    Args:
        spec: a `Spec`, or anything `load_spec` takes (data files are not checked).

    Returns:
        The `Plan`: ``.arms``, ``.trials``, ``.seeds``, ``.describe()`` (arms, aliasing).

    Raises:
        SpecError: as `load_spec`. DesignError: a design that cannot be built.

    Example:
        >>> len(ablate.plan("quickstart").trials)  # doctest: +SKIP
    """
    from ablate.design.plan import plan as make_plan

    return make_plan(as_spec(spec, check_files=False))


def plan_text(p: Plan) -> tuple[str, int | None]:
    """What ``ablate plan`` prints about a plan, and the most trials it runs (None: a timeout bounds it)."""
    return kind_of(p.spec).plan_text(p)


@dataclass
class Estimate:
    """What ``ablate plan`` measures: the data's sizes and shape, the baseline's parameters and
    training speed here, the seconds per trial."""

    data: str
    shape: str              # CxHxW
    num_classes: int
    sizes: dict[str, int]   # train, val, test images
    model: str
    n_params: int
    images_per_s: float
    per_trial_s: float
    device: str


def estimate(p: Plan) -> Estimate:
    """Time the plan's first trial's model on its data here (a few batches; nothing stored).

    Raises:
        AblateError: a spec that runs a command (``trial:``), whose cost ablate cannot measure.
    """
    spec = p.spec
    if spec.trial is not None:
        raise AblateError(f"spec '{spec.name}' runs a command ('trial:'); time one run of it to estimate the cost")
    from ablate.data import load_data
    from ablate.models import model_info
    from ablate.train import measure_throughput, pick_device

    data = load_data(spec.data)
    sizes = data.sizes()
    ips, n_params = measure_throughput(p.trials[0])
    per_trial = spec.recipe.epochs * (sizes["train"] + 0.3 * (sizes["val"])) / ips
    return Estimate(spec.data.name, f"{data.channels}x{data.image_size}x{data.image_size}", data.num_classes,
                    sizes, model_info(spec.model).label, n_params, ips, per_trial, str(pick_device()))
