"""NNI experiments converted to specs: every `_type`, tuner and assessor, both config formats,
durations, and conversion errors (the CLI: test_nni_cli.py; the `nni` shim: test_nni_shim.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ablate.errors import SpecError
from ablate.nni import convert_config, looks_like_nni, parse_duration
from ablate.nni.convert import convert_dict
from ablate.nni.space import convert_param

EXAMPLE = Path(__file__).parent / "nni_example"


def fail(path, message):
    return SpecError(message, source="space.json", path=".".join(map(str, path)))


def convert(entry, name="x"):
    return convert_param(name, entry, (name,), fail)


# -- search-space _types ------------------------------------------------------------------------

TYPE_CASES = [
    ({"_type": "choice", "_value": ["a", 2, True]}, {"type": "categorical", "choices": ["a", 2, True]}, "same options"),
    ({"_type": "randint", "_value": [3, 8]}, {"type": "int", "low": 3, "high": 7}, "exclusive"),
    ({"_type": "randint", "_value": [5]}, {"type": "int", "low": 0, "high": 4}, "exclusive"),
    ({"_type": "uniform", "_value": [0.1, 0.5]}, {"type": "float", "low": 0.1, "high": 0.5}, "the same"),
    ({"_type": "quniform", "_value": [0.1, 0.5, 0.1]}, {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1},
     "the same values"),
    ({"_type": "quniform", "_value": [16, 128, 16]}, {"type": "int", "low": 16, "high": 128, "step": 16},
     "the same values"),
    ({"_type": "quniform", "_value": [16.0, 128, 16.0]}, {"type": "float", "low": 16.0, "high": 128, "step": 16.0},
     "the same values"),
    ({"_type": "quniform", "_value": [0.05, 1.0, 0.1]}, {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1},
     "approximated"),
    ({"_type": "loguniform", "_value": ["1e-5", 0.1]}, {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
     "log scale"),
    ({"_type": "qloguniform", "_value": [8, 512, 1]}, {"type": "int", "low": 8, "high": 512, "log": True}, "whole"),
    ({"_type": "qloguniform", "_value": [0.001, 1, 0.001]}, {"type": "float", "low": 0.001, "high": 1, "log": True},
     "NOT rounded"),
    ({"_type": "normal", "_value": [0, 1]}, {"type": "float", "low": -3.0, "high": 3.0}, "mu +- 3 sigma"),
    ({"_type": "qnormal", "_value": [10, 2, 1]}, {"type": "int", "low": 4, "high": 16, "step": 1}, "mu +- 3 sigma"),
    ({"_type": "lognormal", "_value": [0, 1]},
     {"type": "float", "low": float(f"{math.exp(-3):.12g}"), "high": float(f"{math.exp(3):.12g}"), "log": True},
     "of log x"),
    ({"_type": "qlognormal", "_value": [0, 1, 0.5]},
     {"type": "float", "low": float(f"{math.exp(-3):.12g}"), "high": float(f"{math.exp(3):.12g}"), "log": True},
     "NOT rounded"),
]


@pytest.mark.parametrize("entry, dist, said", TYPE_CASES)
def test_every_nni_type_maps_to_its_nearest_distribution_and_says_how(entry, dist, said):
    got, note = convert(entry)
    assert got == dist
    assert said in note and note.startswith("params.x: " + entry["_type"])


@pytest.mark.parametrize("entry", [case[0] for case in TYPE_CASES])
def test_every_mapped_distribution_is_one_optuna_takes_without_changing_it(entry, recwarn):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist, _ = convert(entry)
    kind = {"float": FloatDistribution, "int": IntDistribution, "categorical": CategoricalDistribution}[dist["type"]]
    made = kind(**{k: v for k, v in dist.items() if k != "type"})
    if dist["type"] != "categorical":
        assert (made.low, made.high) == (dist["low"], dist["high"]), "Optuna moved a bound: the step does not fit"
    assert not [w for w in recwarn if "optuna" in str(w.filename).lower()]


def _values(dist):
    step = dist.get("step", 1)
    n = round((dist["high"] - dist["low"]) / step)
    return {round(dist["low"] + k * step, 9) for k in range(n + 1)}


@pytest.mark.parametrize("low, high, q", [(0.1, 0.5, 0.1), (16, 128, 16), (0.0, 1.0, 0.25), (-1.0, 2.0, 0.5)])
def test_quniform_yields_exactly_the_values_nni_s_rounding_yields(low, high, q):
    # NNI: clip(round(uniform(low, high) / q) * q, low, high)
    rng = np.random.default_rng(0)
    nni = np.clip(np.round(rng.uniform(low, high, 200_000) / q) * q, low, high)
    dist, _ = convert({"_type": "quniform", "_value": [low, high, q]})
    assert {round(float(v), 9) for v in nni} == _values(dist)


def test_randint_never_yields_nni_s_exclusive_upper_bound():
    nni = set(np.random.default_rng(0).integers(3, 8, 10_000).tolist())   # numpy's upper is exclusive too
    dist, _ = convert({"_type": "randint", "_value": [3, 8]})
    assert nni == _values(dist)


@pytest.mark.parametrize("entry, message", [
    ({"_type": "normalish", "_value": [0, 1]}, "unknown NNI _type 'normalish' (did you mean 'normal'?)"),
    ({"_type": "choice", "_value": [{"_name": "a", "lr": {"_type": "uniform", "_value": [0, 1]}}, {"_name": "b"}]},
     "parameter 'x' is a nested choice"),
    ({"_type": "choice", "_value": []}, "non-empty list"),
    ({"_type": "choice", "_value": [[1, 2], [3]]}, "must be numbers, text"),
    ({"_type": "randint", "_value": [8, 8]}, "needs upper > lower"),
    ({"_type": "randint", "_value": [1.5, 8]}, "whole numbers"),
    ({"_type": "uniform", "_value": [0.5, 0.1]}, "low < high must hold, got low=0.5, high=0.1"),
    ({"_type": "uniform", "_value": [0.1]}, "takes _value: [low, high]"),
    ({"_type": "loguniform", "_value": [0, 1]}, "needs low > 0"),
    ({"_type": "quniform", "_value": [0, 1, 0]}, "q must be > 0"),
    ({"_type": "quniform", "_value": [0.1, 0.2, 1]}, "no multiple of q"),
    ({"_type": "normal", "_value": [0, 0]}, "needs sigma > 0"),
    ({"_type": "uniform"}, "must be a mapping {_type"),
])
def test_a_bad_parameter_is_refused_naming_it(entry, message):
    with pytest.raises(SpecError, match=None) as exc:
        convert(entry)
    assert message in str(exc.value) and "space.json" in str(exc.value)


# -- tuners and assessors -------------------------------------------------------------------------

SPACE = {"lr": {"_type": "loguniform", "_value": [1e-4, 1]}, "bs": {"_type": "choice", "_value": [16, 32]}}


def nni_dict(**changes):
    raw = {"searchSpace": SPACE, "trialCommand": "python3 trial.py", "maxTrialNumber": 4,
           "trainingService": {"platform": "local"}}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def conv(raw, folder=EXAMPLE):
    return convert_dict(raw, source="config.yml", folder=folder, relative_to=folder)


@pytest.mark.parametrize("tuner, sampler, pruner", [
    ("TPE", "tpe", "none"), ("Random", "random", "none"), ("Anneal", "tpe", "none"), ("Evolution", "cmaes", "none"),
    ("SMAC", "tpe", "none"), ("GPTuner", "gp", "none"), ("GP", "gp", "none"), ("MetisTuner", "gp", "none"),
    ("Hyperband", "random", "hyperband"), ("BOHB", "tpe", "hyperband"),
])
def test_each_tuner_maps_to_the_nearest_sampler_with_the_reason(tuner, sampler, pruner):
    c = conv(nni_dict(tuner={"name": tuner, "classArgs": {"optimize_mode": "minimize"}}))
    search = c.spec["search"]
    assert search["sampler"] == sampler
    assert (search["pruner"] if isinstance(search["pruner"], str) else search["pruner"]["name"]) == pruner
    assert any(line.startswith(f"tuner {tuner} -> sampler {sampler}: ") for line in c.notes)
    assert c.spec["metric"] == {"name": "default", "mode": "min"}


def test_hyperband_passes_r_and_eta_to_the_pruner_and_the_budget_to_the_trial():
    c = conv(nni_dict(advisor={"name": "Hyperband", "classArgs": {"R": 27, "eta": 3, "optimize_mode": "maximize"}}))
    assert c.spec["search"]["pruner"] == {"name": "hyperband", "max_resource": 27, "reduction_factor": 3}
    assert c.spec["trial"]["env"] == {"ABLATE_NNI_TRIAL_BUDGET": "27"}


def test_tuner_seed_and_options_are_carried_and_unknown_class_args_are_listed():
    c = conv(nni_dict(tuner={"name": "TPE", "classArgs": {"seed": 7, "tpe_args": {"n_startup_jobs": 5},
                                                          "parallel_optimize": True}}))
    assert c.spec["search"]["sampler"] == {"name": "tpe", "seed": 7, "options": {"n_startup_trials": 5}}
    assert any("not carried over: tuner classArgs.parallel_optimize" in n for n in c.notes)
    assert any("optimize_mode maximize (NNI's default)" in n for n in c.notes)


def test_evolution_over_choices_only_is_random_and_grid_takes_stepped_ranges():
    only_choices = {"bs": {"_type": "choice", "_value": [16, 32]}}
    assert conv(nni_dict(searchSpace=only_choices, tuner={"name": "Evolution"})).spec["search"]["sampler"] == "random"
    grid = {"bs": {"_type": "choice", "_value": [16, 32]}, "d": {"_type": "quniform", "_value": [0, 0.5, 0.1]},
            "n": {"_type": "randint", "_value": [1, 4]}}
    assert conv(nni_dict(searchSpace=grid, tuner={"name": "GridSearch"})).spec["search"]["sampler"] == "grid"
    with pytest.raises(SpecError, match=r"GridSearch cannot enumerate the continuous range of params.lr"):
        conv(nni_dict(tuner={"name": "GridSearch"}))


@pytest.mark.parametrize("tuner, message", [
    ("PBTTuner", "Population Based Training"), ("DNGOTuner", "DNGO"), ("PPOTuner", "PPO tuner"),
    ("NetworkMorphism", "architecture search"), ("BatchTuner", "fixed list of configurations"),
    ("TPEE", "unknown NNI tuner 'TPEE' (did you mean 'tpe'?)"),
])
def test_a_tuner_without_an_equivalent_is_refused_with_the_reason(tuner, message):
    with pytest.raises(SpecError) as exc:
        conv(nni_dict(tuner={"name": tuner}))
    assert message in str(exc.value) and "field 'tuner.name'" in str(exc.value)


def test_a_custom_tuner_class_is_refused():
    with pytest.raises(SpecError, match="custom NNI tuner"):
        conv(nni_dict(tuner={"className": "MyTuner", "codeDirectory": "."}))


@pytest.mark.parametrize("assessor, said", [("Medianstop", "as NNI's rule"), ("Curvefitting", "approximated")])
def test_assessors_map_to_the_median_pruner_warmed_up_by_start_step(assessor, said):
    c = conv(nni_dict(assessor={"name": assessor, "classArgs": {"start_step": 3, "threshold": 0.9}}))
    assert c.spec["search"]["pruner"] == {"name": "median", "n_warmup_steps": 3}
    assert any(f"assessor {assessor} -> pruner median" in n and said in n for n in c.notes)


def test_an_unknown_assessor_or_an_assessor_beside_hyperband_is_refused():
    with pytest.raises(SpecError, match="unknown NNI assessor 'Early'"):
        conv(nni_dict(assessor={"name": "Early"}))
    with pytest.raises(SpecError, match="already stops trials early"):
        conv(nni_dict(advisor={"name": "BOHB"}, assessor={"name": "Medianstop"}))


# -- durations -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("10s", 10), ("30m", 1800), ("1h", 3600), ("2d", 172800),
                                           ("1.5h", 5400), (" 5 m", 300), ("1H", 3600), (90, 90)])
def test_durations_parse_like_nni(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1w", "", "h", "-1h", "0s", True, "10"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(ValueError, match="s, m, h or d"):
        parse_duration(text)


# -- both config formats -----------------------------------------------------------------------------

EXPECTED_SEARCH = {
    "params": {"params.alpha": {"type": "float", "low": 1e-05, "high": 0.1, "log": True},
               "params.penalty": {"type": "categorical", "choices": ["l2", "l1", "elasticnet"]},
               "params.eta0": {"type": "float", "low": 0.01, "high": 0.5, "step": 0.01},
               "params.epochs": {"type": "int", "low": 3, "high": 7}},
    "sampler": "tpe", "pruner": {"name": "median", "n_warmup_steps": 2}, "n_trials": 6, "timeout_s": 600.0,
    "jobs": 2, "validate": {"top_k": 3},
}


@pytest.mark.parametrize("config, fmt, name", [("config_v2.yml", "v2", "digits_sgd"),
                                               ("config_v1.yml", "v1", "digits_sgd_v1")])
def test_the_example_experiment_converts_in_both_formats(config, fmt, name, monkeypatch):
    monkeypatch.chdir(EXAMPLE.parent)
    c = convert_config(f"nni_example/{config}")
    assert c.spec["name"] == name
    assert c.spec["search"] == EXPECTED_SEARCH
    assert c.spec["trial"] == {"command": "python3 trial.py", "cwd": "nni_example", "shell": True, "api": "nni"}
    assert c.spec["metric"] == {"name": "default", "mode": "max"} and c.spec["seeds"] == 7
    assert c.notes[0] == f"NNI config nni_example/{config} read as NNI {fmt} format"
    assert any("randint [3, 8] -> int in [3, 7]" in n for n in c.notes)
    assert looks_like_nni(yaml.safe_load((EXAMPLE / config).read_text()))


def test_an_ablate_spec_is_not_taken_for_an_nni_config():
    from tests.conftest import tiny_dict

    assert not looks_like_nni(tiny_dict())
    assert not looks_like_nni({"name": "cmd", "data": {"name": "digits"}, "trial": {"command": ["python", "t.py"]},
                               "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1})


def test_nni_only_keys_are_listed_as_not_carried_over_harmless_ones_included():
    c = conv(nni_dict(logLevel="debug", nniManagerIp="10.0.0.1", experimentWorkingDirectory="~/x",
                      useAnnotation=False, experimentType="hpo", experimentName="exp one"))
    for key in ("logLevel", "nniManagerIp", "experimentWorkingDirectory", "useAnnotation", "experimentType"):
        assert any(n.startswith(f"not carried over: {key}") for n in c.notes), key
    assert "experimentName 'exp one' -> name 'exp_one'" in c.notes
    v1 = conv({"authorName": "someone", "searchSpacePath": "search_space.json", "useAnnotation": False,
               "trial": {"command": "python3 t.py", "codeDir": "."}})
    assert any(n.startswith("not carried over: authorName = 'someone'") for n in v1.notes)
    assert any(n.startswith("not carried over: useAnnotation = False") for n in v1.notes)


@pytest.mark.parametrize("raw, path", [
    (nni_dict(trialGpuNumber=1), "trialGpuNumber"),
    (nni_dict(trialGpuNumber=None, trialCommand=None, trainingService={"platform": "local", "trialGpuNumber": 1,
                                                                      "trialCommand": "python3 t.py"}),
     "trainingService.trialGpuNumber"),
    ({"searchSpacePath": "search_space.json", "trial": {"command": "python3 t.py", "codeDir": ".", "gpuNum": 1}},
     "trial.gpuNum"),
])
def test_trial_gpus_become_resources_gpu(raw, path):
    c = conv(raw)
    assert c.spec["resources"] == {"gpu": 1}
    assert any(n.startswith(f"{path} 1 -> resources.gpu 1") for n in c.notes)
    assert "GPU" not in c.spec["description"]
    from ablate.design.spec import spec_from_dict

    assert spec_from_dict(c.spec, check_files=False).resources.gpu == 1   # the converted spec loads


def test_no_gpus_asked_for_adds_no_resources_and_bad_gpu_counts_are_refused_naming_the_field():
    c = conv(nni_dict(trialGpuNumber=0))
    assert "resources" not in c.spec and any(n.startswith("trialGpuNumber 0 -> no GPU") for n in c.notes)
    for bad in (-1, 1.5, "two", True):
        with pytest.raises(SpecError, match="trialGpuNumber must be a number of GPUs") as err:
            conv(nni_dict(trialGpuNumber=bad))
        assert err.value.path == "trialGpuNumber"


@pytest.mark.parametrize("raw, key", [
    (nni_dict(trainingService={"platform": "remote", "machineList": []}), "trainingService.platform"),
    ({"searchSpacePath": "search_space.json", "trainingServicePlatform": "pai",
      "trial": {"command": "python3 t.py", "codeDir": "."}}, "trainingServicePlatform"),
])
def test_a_remote_platform_is_refused_saying_how_to_run_it_on_ray(raw, key):
    with pytest.raises(SpecError, match=r"runner ray --address HOST:PORT") as err:
        conv(raw)
    assert err.value.path == key and "comes later" not in str(err.value)
    assert f"Set {key} to local" in str(err.value)


def test_v2_training_service_fields_may_sit_inside_the_training_service():
    raw = nni_dict(trialCommand=None, trainingService={"platform": "local", "trialCommand": "python3 t.py",
                                                       "trialCodeDirectory": ".", "useActiveGpu": False})
    c = conv(raw)
    assert c.spec["trial"]["command"] == "python3 t.py" and c.spec["trial"]["cwd"] == "."
    assert any(n.startswith("not carried over: trainingService.useActiveGpu") for n in c.notes)
    assert not any("trainingService.trialCommand" in n for n in c.notes)


def test_an_unknown_key_is_refused_with_the_nearest_as_nni_does():
    with pytest.raises(SpecError, match=r"unknown key 'maxTrialNumbr' in an NNI v2 config \(did you mean "
                                        r"'maxTrialNumber'\?\)"):
        conv(nni_dict(maxTrialNumbr=5))
    with pytest.raises(SpecError, match="unknown key 'trialComand' in an NNI v1 config"):
        conv({"searchSpacePath": "x.json", "trial": {"command": "python3 t.py", "codeDir": "."}, "trialComand": 1})
    with pytest.raises(SpecError, match="experimentType: hpo"):
        conv(nni_dict(experimentType="nas"))
    assert conv(nni_dict(useAnnotation=False)).spec["name"] == "config"


def test_no_budget_gets_a_stated_default_and_mixed_formats_are_refused():
    c = conv(nni_dict(maxTrialNumber=None))
    assert c.spec["search"]["n_trials"] == 100 and any("would run until stopped" in n for n in c.notes)
    with pytest.raises(SpecError, match="mixes NNI v2 keys"):
        conv(nni_dict(maxTrialNum=3))
