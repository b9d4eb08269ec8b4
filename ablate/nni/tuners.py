"""NNI tuners, advisors and assessors -> a spec's `search.sampler` and `search.pruner`.

Each mapping says why it is the nearest Optuna equivalent; a tuner with none is refused with
the reason, never silently replaced (NNI docs: docs/source/hpo/tuners.rst, assessors.rst).
"""

from __future__ import annotations

import difflib
from typing import Any

from ablate.nni.space import Fail, is_continuous

# lower-cased NNI name (v2 `name`, v1 `builtinTunerName`, and the v1/v2 aliases) -> (sampler, why)
SAMPLERS: dict[str, tuple[str, str]] = {
    "tpe": ("tpe", "the same algorithm (tree-structured Parzen estimator)"),
    "random": ("random", "the same algorithm"),
    "randomsearch": ("random", "the same algorithm"),
    "anneal": ("tpe", "Optuna has no annealing sampler; NNI's Anneal samples ever closer to the best points "
                      "found, and TPE also concentrates on the good region it models"),
    "evolution": ("cmaes", "Optuna's CMA-ES is an evolution strategy (a population moved toward the best), the "
                           "nearest to NNI's naive evolution for one objective; categorical parameters are "
                           "sampled at random by Optuna's fallback"),
    "smac": ("tpe", "SMAC models the objective with a random forest, which Optuna lacks; TPE is its nearest "
                    "model-based sampler for mixed numeric and categorical spaces"),
    "gridsearch": ("grid", "the same algorithm"),
    "gp": ("gp", "the same algorithm family (Gaussian-process Bayesian optimisation)"),
    "gptuner": ("gp", "the same algorithm family (Gaussian-process Bayesian optimisation)"),
    "metis": ("gp", "Metis is Gaussian-process based (with re-sampling of outliers); Optuna's GP sampler is nearest"),
    "metistuner": ("gp", "Metis is Gaussian-process based (with re-sampling of outliers); Optuna's GP sampler is "
                         "nearest"),
    "hyperband": ("random", "NNI's Hyperband draws configurations at random and stops the poor ones early: "
                            "random sampler + Optuna's Hyperband pruner"),
    "bohb": ("tpe", "BOHB is Hyperband with a TPE-like model proposing configurations: TPE sampler + "
                    "Optuna's Hyperband pruner"),
}
HYPERBAND = ("hyperband", "bohb")

REFUSED: dict[str, str] = {
    "pbt": "Population Based Training changes hyper-parameters during training and copies checkpoints "
           "between trials; ablate's trials are independent runs",
    "pbttuner": "Population Based Training changes hyper-parameters during training and copies checkpoints "
                "between trials; ablate's trials are independent runs",
    "dngo": "DNGO's Bayesian-neural-network surrogate has no Optuna equivalent; name TPE or GP as the tuner",
    "dngotuner": "DNGO's Bayesian-neural-network surrogate has no Optuna equivalent; name TPE or GP as the tuner",
    "ppo": "the PPO tuner is reinforcement learning for neural architecture search, not an HPO sampler",
    "ppotuner": "the PPO tuner is reinforcement learning for neural architecture search, not an HPO sampler",
    "networkmorphism": "network morphism is neural architecture search (it edits the model), not HPO",
    "batchtuner": "BatchTuner runs a fixed list of configurations: write them as an explicit design of command "
                  "trials (or one choice parameter searched with GridSearch)",
    "batch": "BatchTuner runs a fixed list of configurations: write them as an explicit design of command "
             "trials (or one choice parameter searched with GridSearch)",
}

ASSESSORS = {"medianstop": "median", "curvefitting": "median"}


def _known() -> str:
    return ", ".join(sorted({*SAMPLERS, *REFUSED} - {"randomsearch", "gptuner", "metistuner", "pbttuner",
                                                     "dngotuner", "ppotuner", "batch"}))


def sampler_for(name: Any, class_args: dict, params: dict[str, dict], path: tuple,
                fail: Fail) -> tuple[str | dict, str | dict | None, list[str]]:
    """(sampler, pruner or None, notes) for an NNI tuner or advisor `name`."""
    key = str(name).replace("_", "").replace(" ", "").lower()
    if key in REFUSED:
        raise fail(path, f"the NNI tuner '{name}' has no equivalent in ablate's search: {REFUSED[key]}")
    if key not in SAMPLERS:
        near = difflib.get_close_matches(key, list(SAMPLERS) + list(REFUSED), n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise fail(path, f"unknown NNI tuner '{name}'{hint}; known: {_known()}")
    sampler, why = SAMPLERS[key]
    notes = []
    if sampler == "cmaes" and all(d["type"] == "categorical" for d in params.values()):
        sampler, why = "random", ("every parameter is a choice, where CMA-ES (the nearest evolution strategy) "
                                  "would fall back to random sampling anyway")
    if sampler == "grid":
        continuous = [k for k, d in params.items() if is_continuous(d)]
        if continuous:
            raise fail(path, f"GridSearch cannot enumerate the continuous range of {', '.join(continuous)}; give "
                             f"them a q (quniform, qloguniform with q=1 on whole numbers) or a choice, or use TPE")
    notes.append(f"tuner {name} -> sampler {sampler}: {why}")
    out: dict = {"name": sampler}
    if "seed" in class_args:
        out["seed"] = class_args["seed"]
        notes.append(f"tuner classArgs.seed {class_args['seed']} -> sampler seed")
    options = {}
    tpe_args = class_args.get("tpe_args") or {}
    if sampler == "tpe" and isinstance(tpe_args, dict) and "n_startup_jobs" in tpe_args:
        options["n_startup_trials"] = tpe_args["n_startup_jobs"]
        notes.append(f"tuner classArgs.tpe_args.n_startup_jobs {tpe_args['n_startup_jobs']} -> n_startup_trials")
    if sampler == "cmaes" and "population_size" in class_args:
        options["popsize"] = class_args["population_size"]
        notes.append(f"tuner classArgs.population_size {class_args['population_size']} -> CMA-ES popsize")
    if options:
        out["options"] = options
    pruner = None
    if key in HYPERBAND:
        pruner = {"name": "hyperband"}
        if "R" in class_args:
            pruner["max_resource"] = class_args["R"]
        if "eta" in class_args:
            pruner["reduction_factor"] = class_args["eta"]
        notes.append(f"{name} -> pruner hyperband (max_resource R={class_args.get('R', 'auto')}, reduction_factor "
                     f"eta={class_args.get('eta', 3)}), fed by the trial's intermediate results; each trial gets "
                     f"TRIAL_BUDGET = R in its parameters and is stopped early instead of given smaller budgets")
    used = {"optimize_mode", "seed", "tpe_args", "population_size", "R", "eta"}
    for k in class_args:
        if k not in used:
            notes.append(f"not carried over: tuner classArgs.{k} = {class_args[k]!r} (no Optuna counterpart here)")
    return (out if len(out) > 1 else sampler), pruner, notes


def pruner_for(name: Any, class_args: dict, path: tuple, fail: Fail) -> tuple[dict, list[str]]:
    """(pruner, notes) for an NNI assessor."""
    key = str(name).lower()
    if key not in ASSESSORS:
        raise fail(path, f"unknown NNI assessor '{name}'; known: Medianstop, Curvefitting")
    start = class_args.get("start_step", 0)
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise fail((*path[:-1], "classArgs", "start_step"), f"start_step must be a whole number >= 0, got {start!r}")
    pruner = {"name": "median", "n_warmup_steps": start}
    if key == "medianstop":
        notes = [f"assessor Medianstop -> pruner median (n_warmup_steps {start}): a trial whose best intermediate "
                 f"result is worse than the median of earlier trials at the same step is stopped, as NNI's rule"]
    else:
        notes = [f"assessor Curvefitting -> pruner median (n_warmup_steps {start}): approximated; Optuna cannot "
                 f"extrapolate learning curves, so trials are stopped on the median rule instead"]
    for k in class_args:
        if k not in ("optimize_mode", "start_step"):
            notes.append(f"not carried over: assessor classArgs.{k} = {class_args[k]!r}")
    return pruner, notes


def check_tuner_spec(tuner: Any, where: str, path: tuple, fail: Fail, name_keys: tuple[str, ...]) -> tuple[str, dict]:
    """(name, classArgs) of a tuner/advisor/assessor mapping; a custom class is refused."""
    if not isinstance(tuner, dict):
        raise fail(path, f"'{where}' must be a mapping such as {{{name_keys[0]}: TPE, classArgs: {{optimize_mode: "
                         f"maximize}}}}, got {tuner!r}")
    if any(k in tuner for k in ("className", "codeDir", "codeDirectory", "classFileName")):
        raise fail(path, f"a custom NNI {where} (className/codeDirectory) cannot run in ablate: it is NNI code; "
                         f"pick a built-in one ({_known()})")
    name = next((tuner[k] for k in name_keys if k in tuner), None)
    if name is None:
        raise fail(path, f"'{where}' names no algorithm: give {name_keys[0]}")
    args = tuner.get("classArgs") or {}
    if not isinstance(args, dict):
        raise fail((*path, "classArgs"), f"classArgs must be a mapping, got {args!r}")
    return name, args

