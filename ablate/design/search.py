"""The `search:` section against the rest of the spec: searched paths that exist, values the
recipe or trick accepts, a design that does not vary a searched parameter; searched values
applied to a recipe and its tricks; and Optuna's distributions, sampler and pruner built from the
section (Optuna is imported only when one is built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from ablate.config.search import (
    CategoricalParam,
    FloatParam,
    IntParam,
    PrunerConfig,
    Scalar,
    SearchConfig,
    Validation,
    search_metrics,
)
from ablate.config.sections import Recipe
from ablate.config.spec_errors import pydantic_message, suggest
from ablate.design.stages import check_stages
from ablate.tricks import get_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec


def valid_paths(spec: Spec, arm_keys: tuple[str, ...] | None = None) -> list[str]:
    """Every path a search of `spec` may name (for suggestions)."""
    if spec.trial is not None:
        return [f"params.{n}" for n in ("lr", "hidden", "epochs")]   # any name: examples only
    keys = arm_keys if arm_keys is not None else tuple(spec.tricks)
    out = [f"recipe.{f}" for f in Recipe.model_fields]
    for k in keys:
        out += [f"tricks.{k}.{p}" for p in get_trick(spec.tricks[k].use).Params.model_fields]
    return out


def check_search(spec: Spec, fail, arms: list[tuple[str, ...]]) -> None:
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


def _check_path(spec: Spec, path: str, arms, where, fail) -> None:
    parts = path.split(".")
    ok = False
    if spec.trial is not None:
        ok = len(parts) == 2 and parts[0] == "params" and parts[1] != ""
        if not ok:
            raise fail(where, f"a command trial's search names its own parameters as 'params.<name>' (they "
                              f"reach the command in the ABLATE_TRIAL JSON's 'values'), got '{path}'")
        return
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


def _check_value(spec: Spec, path: str, value, where, fail, *, what: str) -> None:
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
    rec = {k[len("recipe."):]: v for k, v in values.items() if k.startswith("recipe.")}
    if rec:
        try:
            recipe = Recipe.model_validate({**recipe.model_dump(), **rec})
        except ValidationError as exc:
            raise ValueError(pydantic_message(exc.errors()[0])) from None
    tricks = dict(tricks)
    for key in {k.split(".")[1] for k in values if k.startswith("tricks.")}:
        setting = tricks[key]
        changed = {k.split(".")[2]: v for k, v in values.items() if k.startswith(f"tricks.{key}.")}
        try:
            params = get_trick(setting.use).Params.model_validate({**setting.params.model_dump(), **changed})
        except ValidationError as exc:
            raise ValueError(pydantic_message(exc.errors()[0])) from None
        tricks[key] = setting.model_copy(update={"params": params})
    return recipe, tricks


def distributions(search: SearchConfig) -> dict:
    import optuna.distributions as od

    out = {}
    for path, d in search.params.items():
        if isinstance(d, FloatParam):
            out[path] = od.FloatDistribution(d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, CategoricalParam):
            out[path] = od.CategoricalDistribution(list(d.choices))
        else:
            out[path] = od.IntDistribution(d.low, d.high, log=d.log, step=d.step)
    return out


def grid(search: SearchConfig) -> dict[str, list]:
    """Every value of every parameter for the grid sampler (floats need a step: checked at load)."""
    out = {}
    for path, d in search.params.items():
        if isinstance(d, CategoricalParam):
            out[path] = list(d.choices)
        else:
            n = int(np.floor((d.high - d.low) / d.step + 1e-9)) + 1
            vals = [d.low + i * d.step for i in range(n)]
            out[path] = [round(v, 12) for v in vals] if isinstance(d, FloatParam) else [int(v) for v in vals]
    return out


def make_sampler(search: SearchConfig, *, seed_offset: int):
    """The sampler a spec names. `seed_offset` (the trials the study already has) keeps a resumed
    seeded sampler from drawing the same values it drew before the restart."""
    import optuna.samplers as s

    cfg = search.sampler
    seed = None if cfg.seed is None else cfg.seed + seed_offset
    opts = dict(cfg.options)
    if cfg.name == "tpe":
        return s.TPESampler(seed=seed, **opts)     # Optuna 5's defaults: multivariate, constant liar
    if cfg.name == "random":
        return s.RandomSampler(seed=seed, **opts)
    if cfg.name == "cmaes":
        return s.CmaEsSampler(seed=seed, **opts)
    if cfg.name == "gp":
        return s.GPSampler(seed=seed, **opts)
    if cfg.name == "qmc":
        return s.QMCSampler(seed=cfg.seed, **opts)  # a QMC sequence goes on from the trials it has
    return _grid_sampler_class()(grid(search), seed=seed, **opts)


def _grid_sampler_class():
    from optuna.samplers import GridSampler

    class StoppingGridSampler(GridSampler):
        """Optuna's GridSampler, telling the search source that the grid is done instead of
        calling `study.stop()`, which Optuna allows only inside `study.optimize` (ablate's engine
        asks and tells itself)."""

        exhausted = False

        def after_trial(self, study, trial, state, values) -> None:
            unvisited = self._get_unvisited_grid_ids(study)
            if len(unvisited) == 0 or (len(unvisited) == 1 and study._storage.get_trial_system_attrs(
                    trial._trial_id).get("grid_id") == unvisited[0]):
                self.exhausted = True

    return StoppingGridSampler


def make_pruner(cfg: PrunerConfig):
    import optuna.pruners as p

    opts = cfg.options
    return {"none": lambda: p.NopPruner(**opts), "median": lambda: p.MedianPruner(**opts),
            "percentile": lambda: p.PercentilePruner(**{"percentile": 25.0, **opts}),
            "successive_halving": lambda: p.SuccessiveHalvingPruner(**opts),
            "hyperband": lambda: p.HyperbandPruner(**opts)}[cfg.name]()
