"""The `search:` section of a spec: what is searched (dotted paths -> Optuna distributions), how
(sampler, pruner, budget), on which metrics, and what follows (validation round, hand-picked
comparison, per-arm tuning; the seeds of each stage: `ablate.design.stages`).

Paths: `recipe.<field>` (built-in trainer), `tricks.<key>.<param>` (a trick listed in `tricks`),
`params.<name>` (a command trial's own parameter). A sampled trial keeps its values in
`Trial.values`, keyed by the dotted path, except `params.<name>`, kept under the bare `<name>`:
that is the key a command trial reads in the ABLATE_TRIAL JSON's `values` (and the `--name`
flag with `args: flags`).

The schema is checked here (pydantic); `ablate.design.search` checks it against the rest of the
spec (paths exist, ranges are inside what the recipe or trick accepts, the design does not vary a
searched parameter) and builds Optuna's sampler and pruner from it.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union

from pydantic import ConfigDict, Field, field_validator, model_validator

from ablate.config import Frozen
from ablate.config.sections import Metric, NamedMetric
from ablate.config.spec_errors import suggest

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid", "qmc")
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband")
MAX_SEARCH_TRIALS = 100_000
Scalar = Union[bool, int, float, str]


class FloatParam(Frozen):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)


class IntParam(Frozen):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)


class CategoricalParam(Frozen):
    type: Literal["categorical"]
    choices: tuple[Scalar, ...] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v):
        if len(set(map(repr, v))) != len(v):
            raise ValueError(f"choices must be distinct, got {list(v)}")
        return v


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


class SamplerConfig(Frozen):
    """`tpe` is Optuna 5's default TPESampler: multivariate for one objective (independent for
    several, Optuna's own rule) with the constant liar, so parallel trials spread out."""

    name: Literal["tpe", "random", "cmaes", "gp", "grid", "qmc"] = "tpe"
    seed: int | None = Field(None, ge=0, le=2 ** 32 - 1)
    options: dict[str, Any] = Field(default_factory=dict)


class PrunerConfig(Frozen):
    """A pruner by name; any other key is an option of Optuna's pruner of that name
    (`{name: median, n_warmup_steps: 2}`)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    name: Literal["none", "median", "percentile", "successive_halving", "hyperband"] = "none"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SearchMetric(NamedMetric):
    """One metric a search optimises (`search.metrics`)."""

    EXAMPLE_MODE: ClassVar[str] = "min"


class Validation(Frozen):
    """The rounds after the search (`ablate.design.stages`): `top_k` finalists run on
    `select_seeds` seeds to choose the winner; the winner, the runner-up and the hand-picked values
    run on `report_seeds` other seeds (default: every seed after the selection seeds), which the
    report is measured on."""

    top_k: int = Field(3, ge=1, le=100)
    select_seeds: int | None = Field(None, ge=1, le=1000)
    report_seeds: int | None = Field(None, ge=2, le=1000)


with warnings.catch_warnings():
    # `validate` is the spec's word; it shadows pydantic's deprecated BaseModel.validate only
    warnings.simplefilter("ignore", UserWarning)

    class SearchConfig(Frozen):
        params: dict[str, SearchParam] = Field(min_length=1)
        sampler: SamplerConfig = SamplerConfig()
        pruner: PrunerConfig = PrunerConfig()
        n_trials: int | None = Field(None, ge=1, le=MAX_SEARCH_TRIALS)
        timeout_s: float | None = Field(None, gt=0)
        metrics: tuple[SearchMetric, ...] = ()       # () = the spec's `metric`
        validate: Validation | None = Validation()  # type: ignore[assignment]
        compare_to: dict[str, Scalar] | None = None
        per_arm: bool = False
        jobs: int = Field(1, ge=1, le=1024)
        study: str | None = Field(None, min_length=1, max_length=200)

        @field_validator("sampler", "pruner", mode="before")
        @classmethod
        def _by_name(cls, v):
            return {"name": v} if isinstance(v, str) else v

        @field_validator("metrics", mode="before")
        @classmethod
        def _metric_names(cls, v):
            if isinstance(v, (str, dict)):
                v = [v]
            return [{"name": m} if isinstance(m, str) else m for m in v]

        @field_validator("validate", mode="before")
        @classmethod
        def _validate_switch(cls, v):
            if v is False or v is None:
                return None
            return {} if v is True else v

        @model_validator(mode="after")
        def _budget(self):
            if self.n_trials is None and self.timeout_s is None:
                raise ValueError("a search needs a budget: give 'n_trials' (e.g. n_trials: 50), "
                                 "'timeout_s', or both")
            names = [m.name for m in self.metrics]
            if len(set(names)) != len(names):
                raise ValueError(f"metrics must be distinct, got {names}")
            return self

        @property
        def multi_objective(self) -> bool:
            return len(self.metrics) > 1


class SearchedSpec(Protocol):
    """What `search_metrics` reads of a spec (`ablate.design.spec.Spec` is one)."""

    search: SearchConfig | None
    metric: Metric


def search_metrics(spec: SearchedSpec) -> tuple[SearchMetric, ...]:
    """The metrics a search optimises: its own, else the spec's."""
    s = spec.search
    return s.metrics or (SearchMetric(name=spec.metric.name, mode=spec.metric.direction),)


def check_raw_names(raw: Any, fail) -> None:
    """Sampler and pruner names with the nearest one suggested (pydantic's literal errors do not),
    and the parameters' `type`."""
    if not isinstance(raw, dict):
        return
    for key, names in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        v = raw.get(key)
        name = v.get("name") if isinstance(v, dict) else v
        if name is not None and not isinstance(name, str) or isinstance(name, str) and name not in names:
            where = ("search", key) if not isinstance(v, dict) else ("search", key, "name")
            raise fail(where, f"unknown {key} '{name}'{suggest(str(name), list(names))}; allowed: {', '.join(names)}")
    params = raw.get("params")
    for path, d in (params.items() if isinstance(params, dict) else ()):
        t = d.get("type") if isinstance(d, dict) else None
        if t not in ("float", "int", "categorical"):
            raise fail(("search", "params", path, "type") if isinstance(d, dict) else ("search", "params", path),
                       f"each searched parameter needs 'type': float, int or categorical (e.g. "
                       f"{{type: float, low: 0.01, high: 1.0, log: true}}), got {t!r}")


def trial_values(values: dict[str, Scalar]) -> dict[str, Scalar]:
    """The values as a trial keeps them: `params.<name>` under the bare name (see the module doc)."""
    return {(k[len("params."):] if k.startswith("params.") else k): v for k, v in values.items()}
