"""The frozen schemas of the spec's own sections: `recipe`, a `tricks:` entry, `design`, `seeds`
and `metric` (the sections of the engine and of a search: `ablate.config.run`,
`ablate.config.search`). `ablate.design.spec` assembles them into a `Spec` and checks them
against the registries."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from ablate.config import Frozen, TrickParams
from ablate.config.metric import DEFAULT_MIN_LIFT_PP, is_accuracy, required_direction

# Sizes beyond these are mistakes (a plan of a billion trials is killed for memory, not run).
MAX_SEEDS_PER_ARM = 1000
MAX_TRIALS = 100_000
MAX_SEED_VALUE = 2 ** 32 - 1

class Recipe(Frozen):
    """The baseline training recipe every arm starts from."""

    epochs: int = Field(ge=1, le=100_000)
    batch_size: int = Field(128, ge=2, le=65_536)
    optimizer: Literal["sgd", "adam", "adamw", "radam"] = "sgd"
    lr: float = Field(0.1, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0, le=1)
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: tuple[float, ...] = Field((0.5, 0.75), description="fractions of training, for step")
    gamma: float = Field(0.1, gt=0, lt=1)
    eval_batch_size: int = Field(1024, ge=1)
    # torch.compile the training forward (ablate.compiling); how a trial runs, not what it
    # computes, so it is left out of trial ids and a stored experiment may toggle it
    compile: bool = Field(False, description="torch.compile the model for training (compile time reported apart)")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, v):
        if any(not 0 < m < 1 for m in v) or list(v) != sorted(v):
            raise ValueError(f"milestones must be increasing fractions of training in (0, 1), got {list(v)}")
        return v


class TrickSetting(Frozen):
    """One entry of `tricks:`. `key` is its name in the spec, `use` the registered trick."""

    key: str
    use: str
    code: str
    params: SerializeAsAny[TrickParams]

    def resolved(self) -> dict[str, Any]:
        return {"use": self.use, "params": self.params.model_dump(mode="json")}


class ExplicitArm(Frozen):
    label: str | None = None
    tricks: tuple[str, ...] = ()


class ExplicitDesign(Frozen):
    """Listed arms; the first is the baseline that lifts are measured against."""

    kind: Literal["explicit"]
    arms: tuple[Union[tuple[str, ...], ExplicitArm], ...] = Field(min_length=1)


class SimpleDesign(Frozen):
    kind: Literal["one_at_a_time", "leave_one_out", "cumulative", "full_factorial"]


class PlackettBurmanDesign(Frozen):
    """A Plackett-Burman screen; `foldover: true` adds the mirror image of every run (twice the
    runs), which frees the main effects from two-factor interactions (resolution IV)."""

    kind: Literal["plackett_burman"]
    foldover: bool = False


class FractionalDesign(Frozen):
    kind: Literal["fractional_factorial"]
    resolution: int = Field(4, ge=3, le=5)
    runs: int | None = Field(None, ge=4)


Design = Annotated[Union[ExplicitDesign, SimpleDesign, FractionalDesign, PlackettBurmanDesign],
                   Field(discriminator="kind")]
MIN_TRICKS = {"one_at_a_time": 1, "leave_one_out": 1, "cumulative": 1, "full_factorial": 1,
              "fractional_factorial": 3, "plackett_burman": 2}


class AdaptiveSeeds(Frozen):
    """The spec's seeds are a pilot: from it one seed count for every arm is chosen once, the
    fewest whose lift CI would be `target_half_width` wide at the pilot's SD (blind to the
    lifts: see `ablate.stats.adaptive`), at most `max_seeds`."""

    max_seeds: int = Field(10, ge=2, le=MAX_SEEDS_PER_ARM)
    target_half_width: float = Field(0.5, gt=0,
                                     description="the lift CI half-width to aim for (metric units, pp for accuracies)")


class Seeds(Frozen):
    input_keys: ClassVar[tuple[str, ...]] = ("count", "values", "adaptive")  # what a spec may write

    values: tuple[int, ...] = Field(min_length=1, max_length=MAX_SEEDS_PER_ARM)
    adaptive: AdaptiveSeeds | None = None

    @field_validator("values")
    @classmethod
    def _distinct(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {list(v)}")
        if any(not 0 <= s <= MAX_SEED_VALUE for s in v):
            bad = next(s for s in v if not 0 <= s <= MAX_SEED_VALUE)
            raise ValueError(f"seeds must be in [0, {MAX_SEED_VALUE}], got {bad}")
        return v

    @model_validator(mode="after")
    def _cap(self):
        if self.adaptive and self.adaptive.max_seeds < len(self.values):
            raise ValueError(f"adaptive.max_seeds ({self.adaptive.max_seeds}) must be >= the initial "
                             f"number of seeds ({len(self.values)})")
        return self


class NamedMetric(Frozen):
    """A metric by name, and `mode` where the name does not say whether larger or smaller is
    better (the rule: `ablate.config.metric`). The spec's `metric` and a search's `metrics` are
    ones."""

    EXAMPLE_MODE: ClassVar[str] = "max"     # the mode the error message suggests

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=100)
    mode: Literal["max", "min"] | None = None

    @model_validator(mode="after")
    def _mode(self):
        required_direction(self.name, self.mode, example=self.EXAMPLE_MODE)
        return self

    @property
    def direction(self) -> str:
        return required_direction(self.name, self.mode)


class Metric(NamedMetric):
    """The metric lifts are measured in: a built-in one, or any metric the trials report
    (then `mode` says whether larger or smaller is better). `min_lift` is the smallest lift
    worth finding, in the metric's units: the verdict sizes seeds to detect it and calls a lift
    "within ±min_lift" only when an equivalence test shows it; default 1 pp for accuracy
    metrics, none for others."""

    name: str = Field("val_acc", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=100)
    min_lift: float | None = Field(None, gt=0,
                                   description="smallest lift of interest (metric units; default 1 pp for accuracies)")

    @property
    def lift_of_interest(self) -> float | None:
        """`min_lift`, else its default: 1 pp for accuracy metrics, None for others."""
        if self.min_lift is not None:
            return self.min_lift
        return DEFAULT_MIN_LIFT_PP if is_accuracy(self.name) else None


