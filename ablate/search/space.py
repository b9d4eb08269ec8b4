"""The `search:` section of a spec: what is searched (dotted paths -> Optuna distributions), how
(sampler, pruner, budget), on which metrics, and what follows (validation round, hand-picked
comparison, per-arm tuning; the seeds of each stage: `ablate.search.stages`).

Paths: `recipe.<field>` (built-in trainer), `tricks.<key>.<param>` (a trick listed in `tricks`),
`params.<name>` (a command trial's own parameter). A sampled trial keeps its values in
`Trial.values`, keyed by the dotted path, except `params.<name>`, kept under the bare `<name>`:
that is the key a command trial reads in the ABLATE_TRIAL JSON's `values` (and the `--name`
flag with `args: flags`).

The schema is checked here (pydantic); `check_search` checks it against the rest of the spec
(paths exist, ranges are inside what the recipe or trick accepts, the design does not vary a
searched parameter). Optuna is imported only when a study is built.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from ablate.config import Frozen
from ablate.search.stages import check_stages
from ablate.tricks import get_trick, suggest

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


class SearchMetric(Frozen):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=100)
    mode: Literal["max", "min"] | None = None

    @model_validator(mode="after")
    def _mode(self):
        from ablate.spec import BUILTIN_METRICS

        if self.mode is None and self.name not in BUILTIN_METRICS:
            raise ValueError(f"metric '{self.name}' is not built in ({', '.join(BUILTIN_METRICS)}): give its "
                             f"direction, e.g. {{name: {self.name}, mode: min}}")
        right = BUILTIN_METRICS.get(self.name)
        if right is not None and self.mode is not None and self.mode != right:
            raise ValueError(f"metric '{self.name}' is better when {'larger' if right == 'max' else 'smaller'}: "
                             f"mode must be '{right}' (or left out), got '{self.mode}'")
        return self

    @property
    def direction(self) -> str:
        from ablate.spec import BUILTIN_METRICS

        return self.mode or BUILTIN_METRICS[self.name]


class Validation(Frozen):
    """The rounds after the search (`ablate.search.stages`): `top_k` finalists run on
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


def search_metrics(spec) -> tuple[SearchMetric, ...]:
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


# -- the searched parameters against the rest of the spec ------------------------------------


def valid_paths(spec, arm_keys: tuple[str, ...] | None = None) -> list[str]:
    """Every path a search of `spec` may name (for suggestions)."""
    from ablate.spec import Recipe

    if spec.trial is not None:
        return [f"params.{n}" for n in ("lr", "hidden", "epochs")]   # any name: examples only
    keys = arm_keys if arm_keys is not None else tuple(spec.tricks)
    out = [f"recipe.{f}" for f in Recipe.model_fields]
    for k in keys:
        out += [f"tricks.{k}.{p}" for p in get_trick(spec.tricks[k].use).Params.model_fields]
    return out


def check_search(spec, fail, arms: list[tuple[str, ...]]) -> None:
    """Check a spec's `search:` against its recipe, tricks, design and trial kind; `arms` are the
    design's arms (trick keys)."""
    s = spec.search
    if not s.per_arm and len(arms) != 1:
        raise fail(("design",), f"a search tunes one configuration, but the design has {len(arms)} arms; "
                                f"set 'search.per_arm: true' to tune each arm separately, or give one arm "
                                f"(or no design: the recipe with every listed trick on)")
    for path, d in s.params.items():
        where = ("search", "params", path)
        _check_path(spec, path, arms, where, fail)
        if isinstance(d, (FloatParam, IntParam)):
            if d.low >= d.high:
                raise fail(where, f"low < high must hold, got low={d.low}, high={d.high}")
            if d.log and d.low <= 0:
                raise fail((*where, "low"), f"a log-scaled range needs low > 0, got low={d.low}")
            if d.log and isinstance(d, FloatParam) and d.step is not None:
                raise fail((*where, "step"), "a float range cannot have both 'log: true' and 'step' (Optuna "
                                             "samples one or the other); remove one")
            if isinstance(d, IntParam) and d.log and d.step != 1:
                raise fail((*where, "step"), f"a log-scaled int range needs step 1, got {d.step}")
            if d.step is not None and d.step > d.high - d.low:
                raise fail((*where, "step"), f"step {d.step} is larger than the range (high - low = "
                                             f"{d.high - d.low:g}), which would hold the one value {d.low}; give a "
                                             f"step up to {d.high - d.low:g}, or leave the parameter out of the search")
            for bound in ("low", "high"):
                _check_value(spec, path, getattr(d, bound), (*where, bound), fail, what=bound)
        else:
            for i, c in enumerate(d.choices):
                _check_value(spec, path, c, (*where, "choices", i), fail, what="choice")
        if s.sampler.name == "grid" and isinstance(d, FloatParam) and d.step is None:
            raise fail(where, "the grid sampler needs a finite grid: give this float range a 'step' (e.g. "
                              "step: 0.1), make it categorical, or use another sampler")
    if s.compare_to is not None:
        for path, value in s.compare_to.items():
            if path not in s.params:
                raise fail(("search", "compare_to", path), f"'{path}' is not a searched parameter"
                                                           f"{suggest(path, list(s.params))}; searched: "
                                                           f"{', '.join(s.params)}")
            _check_value(spec, path, value, ("search", "compare_to", path), fail, what="the hand-picked value")
    check_stages(spec, fail)
    metrics = search_metrics(spec)
    if len(metrics) > 1 and s.sampler.name in ("cmaes", "gp"):
        raise fail(("search", "sampler"), f"sampler '{s.sampler.name}' optimises one metric; with several "
                                          f"metrics use tpe, random, grid or qmc")
    # the default top_k (3) means "up to 3": a spec saved with it (or re-dumped by --override)
    # and a small n_trials stays valid; a top_k the user chose above the budget is a contradiction
    if s.validate is not None and s.n_trials is not None and s.validate.top_k > s.n_trials \
            and s.validate.top_k != Validation.model_fields["top_k"].default:
        raise fail(("search", "validate", "top_k"), f"the validation round re-runs the best top_k of the search's "
                                                    f"n_trials configurations: top_k {s.validate.top_k} > n_trials "
                                                    f"{s.n_trials}; give top_k <= {s.n_trials}")
    from ablate.search.study import make_pruner, make_sampler

    if "seed" in s.sampler.options:
        raise fail(("search", "sampler", "options", "seed"), "give the sampler's seed as 'search.sampler.seed' (ablate "
                                                             "seeds a resumed study past the trials it has), not in "
                                                             "its options")
    for section, make in (("sampler", lambda: make_sampler(s, seed_offset=0)), ("pruner", lambda: make_pruner(s.pruner))):
        try:
            made = make()
        except (TypeError, ValueError) as exc:
            name = getattr(s, section).name
            where = ("search", section, "options") if section == "sampler" else ("search", section)
            raise fail(where, f"bad options for {section} '{name}': {exc}{_options_of(section, name)}") from None
        del made


def _options_of(section: str, name: str) -> str:
    """'; it takes: a, b' from the signature of Optuna's class behind a sampler or pruner name."""
    import inspect

    import optuna.pruners as pr
    import optuna.samplers as sm

    cls = {"tpe": sm.TPESampler, "random": sm.RandomSampler, "cmaes": sm.CmaEsSampler, "gp": sm.GPSampler,
           "qmc": sm.QMCSampler, "grid": sm.GridSampler, "none": pr.NopPruner, "median": pr.MedianPruner,
           "percentile": pr.PercentilePruner, "successive_halving": pr.SuccessiveHalvingPruner,
           "hyperband": pr.HyperbandPruner}.get(name)
    if cls is None:
        return ""
    taken = {"seed", "search_space"} if section == "sampler" else set()
    names = [n for n in inspect.signature(cls).parameters if n not in taken and n != "self"]
    return f"; {section} '{name}' takes: {', '.join(names) or '(no options)'}"


def _check_path(spec, path: str, arms, where, fail) -> None:
    parts = path.split(".")
    ok = False
    if spec.trial is not None:
        ok = len(parts) == 2 and parts[0] == "params" and parts[1] != ""
        if not ok:
            raise fail(where, f"a command trial's search names its own parameters as 'params.<name>' (they "
                              f"reach the command in the ABLATE_TRIAL JSON's 'values'), got '{path}'")
        return
    from ablate.spec import Recipe

    if parts[0] == "recipe" and len(parts) == 2:
        ok = parts[1] in Recipe.model_fields
    elif parts[0] == "tricks" and len(parts) == 3 and parts[1] in spec.tricks:
        ok = parts[2] in get_trick(spec.tricks[parts[1]].use).Params.model_fields
        off = [i for i, a in enumerate(arms) if parts[1] not in a]
        if ok and off:
            raise fail(where, f"the design turns '{parts[1]}' off in arm(s) {', '.join(map(str, off))}, so "
                              f"'{path}' does not exist there; search it in an experiment whose every arm "
                              f"has '{parts[1]}', or search a recipe field")
    if not ok:
        paths = valid_paths(spec)
        hint = "" if parts[0] != "params" else " ('params.*' are a command trial's parameters; this spec trains " \
                                               "with the built-in trainer)"
        raise fail(where, f"unknown parameter path '{path}'{suggest(path, paths)}{hint}; allowed: "
                          f"{', '.join(paths)}")


def _check_value(spec, path: str, value, where, fail, *, what: str) -> None:
    """A value the recipe or trick would refuse is refused now, with the field's own rule."""
    if spec.trial is not None:
        return
    try:
        apply_values(spec.recipe, {k: spec.tricks[k] for k in spec.tricks}, {path: value})
    except ValueError as exc:
        raise fail(where, f"{what} {value!r} is outside what '{path}' accepts: {exc}") from None


def apply_values(recipe, tricks: dict, values: dict[str, Scalar]):
    """(recipe, tricks) with `values` applied, each re-validated; ValueError (the field's own
    message) when the recipe or a trick refuses a value. `tricks` maps keys to TrickSettings."""
    from ablate.spec import Recipe
    from ablate.spec_errors import _pydantic_message

    rec = {k[len("recipe."):]: v for k, v in values.items() if k.startswith("recipe.")}
    if rec:
        try:
            recipe = Recipe.model_validate({**recipe.model_dump(), **rec})
        except ValidationError as exc:
            raise ValueError(_pydantic_message(exc.errors()[0])) from None
    tricks = dict(tricks)
    for key in {k.split(".")[1] for k in values if k.startswith("tricks.")}:
        setting = tricks[key]
        changed = {k.split(".")[2]: v for k, v in values.items() if k.startswith(f"tricks.{key}.")}
        try:
            params = get_trick(setting.use).Params.model_validate({**setting.params.model_dump(), **changed})
        except ValidationError as exc:
            raise ValueError(_pydantic_message(exc.errors()[0])) from None
        tricks[key] = setting.model_copy(update={"params": params})
    return recipe, tricks


def trial_values(values: dict[str, Scalar]) -> dict[str, Scalar]:
    """The values as a trial keeps them: `params.<name>` under the bare name (see the module doc)."""
    return {(k[len("params."):] if k.startswith("params.") else k): v for k, v in values.items()}
