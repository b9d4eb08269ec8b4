"""The `search:` section: every bad input is refused at load with the file, field and line (and
the CLI exits 2 writing nothing); good ones load, round-trip and apply their values."""

from __future__ import annotations

import copy

import pytest
import yaml

from ablate.cli import main
from ablate.errors import SpecError
from ablate.plan import plan
from ablate.search.source import make_trial
from ablate.spec import spec_from_dict, spec_to_dict
from tests.search_helpers import SEARCH, search_dict, search_spec


def _params(**changes):
    d = copy.deepcopy(SEARCH["search"]["params"])
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


BAD = [
    # (changes to search, or a whole spec dict; field path in the error; words in the message)
    (dict(params=_params(**{"recipe.lrr": {"type": "float", "low": 0.1, "high": 1}})),
     "search.params.recipe.lrr", ["unknown parameter path", "did you mean 'recipe.lr'"]),
    (dict(params=_params(**{"tricks.mixup.alpah": {"type": "float", "low": 0.1, "high": 1}})),
     "search.params.tricks.mixup.alpah", ["did you mean 'tricks.mixup.alpha'"]),
    (dict(params=_params(**{"tricks.cutmix.alpha": {"type": "float", "low": 0.1, "high": 1}})),
     "search.params.tricks.cutmix.alpha", ["unknown parameter path"]),
    (dict(params=_params(**{"params.hidden": {"type": "int", "low": 1, "high": 8}})),
     "search.params.params.hidden", ["command trial"]),
    (dict(params=_params(**{"recipe.lr": {"type": "float", "low": 0.5, "high": 0.5}})),
     "search.params.recipe.lr", ["low < high", "low=0.5, high=0.5"]),
    (dict(params=_params(**{"recipe.momentum": {"type": "float", "low": 0.0, "high": 0.9, "log": True}})),
     "search.params.recipe.momentum.low", ["log-scaled range needs low > 0"]),
    (dict(params=_params(**{"recipe.optimizer": {"type": "categorical", "choices": []}})),
     "search.params.recipe.optimizer.choices", ["at least 1"]),
    (dict(params=_params(**{"recipe.optimizer": {"type": "categorical", "choices": ["sgd", "lion"]}})),
     "search.params.recipe.optimizer.choices[1]", ["'lion'", "outside what 'recipe.optimizer' accepts"]),
    (dict(params=_params(**{"recipe.lr": {"low": 0.1, "high": 1}})),
     "search.params.recipe.lr.type", ["needs 'type'"]),
    (dict(n_trials=0), "search.n_trials", ["greater than or equal to 1"]),
    (dict(n_trials=None), "search", ["needs a budget"]),
    (dict(sampler="tpee"), "search.sampler", ["unknown sampler 'tpee'", "did you mean 'tpe'"]),
    (dict(sampler={"name": "cmaess"}), "search.sampler.name", ["did you mean 'cmaes'"]),
    (dict(pruner="medain"), "search.pruner", ["unknown pruner 'medain'", "did you mean 'median'"]),
    (dict(pruner={"name": "median", "n_warmup_stepz": 2}), "search.pruner", ["n_warmup_stepz", "takes: n_startup_trials"]),
    (dict(sampler="grid", params=_params(**{"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0}})),
     "search.params.recipe.lr", ["grid sampler needs a finite grid", "step"]),
    (dict(params=_params(**{"tricks.mixup.alpha": {"type": "float", "low": 0.0, "high": 1.0}})),
     "search.params.tricks.mixup.alpha.low", ["outside what 'tricks.mixup.alpha' accepts", "greater than 0"]),
    (dict(params=_params(**{"recipe.lr": {"type": "float", "low": 0.1, "high": 20.0}})),
     "search.params.recipe.lr.high", ["outside", "less than or equal to 10"]),
    (dict(compare_to={"recipe.lrr": 0.1}), "search.compare_to.recipe.lrr", ["not a searched parameter"]),
    (dict(compare_to={"recipe.lr": -1.0}), "search.compare_to.recipe.lr", ["hand-picked value -1.0 is outside"]),
    (dict(metrics=["wall_s"]), "search.metrics[0]", ["give its direction"]),
    (dict(metrics=["val_acc", {"name": "wall_s", "mode": "min"}], sampler="cmaes"), "search.sampler",
     ["optimises one metric"]),
    (dict(per_arm=True), "search.per_arm", ["give a 'design'"]),
    (dict(paramz={}), "search.paramz", ["unknown key 'paramz'", "did you mean 'params'"]),
]


@pytest.mark.parametrize("changes,path,words", BAD, ids=[b[1] + ":" + b[2][0][:20] for b in BAD])
def test_bad_search_is_refused_at_load_with_its_field_and_line(changes, path, words):
    text = yaml.safe_dump(search_dict(**changes), sort_keys=False)
    with pytest.raises(SpecError) as err:
        from ablate.spec import parse_spec

        parse_spec(text, source="srch.yaml")
    e = err.value
    assert e.path == path, str(e)
    for w in words:
        assert w in str(e), str(e)
    if path.startswith("search.params."):
        assert e.line is not None and e.line > 1


def test_a_search_on_a_trick_the_design_turns_off_is_refused():
    d = search_dict(per_arm=True)
    d["design"] = {"kind": "one_at_a_time"}
    with pytest.raises(SpecError, match="turns 'mixup' off in arm"):
        search_spec(d)


def test_a_plain_search_over_a_many_arm_design_is_refused():
    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0}})
    d["design"] = {"kind": "one_at_a_time"}
    with pytest.raises(SpecError, match="per_arm: true") as err:
        search_spec(d)
    assert err.value.path == "design"


def test_a_command_trial_searches_its_own_params():
    d = search_dict(params={"params.hidden": {"type": "int", "low": 16, "high": 256, "log": True}})
    for k in ("model", "recipe"):
        d.pop(k)
    d["tricks"] = {}
    d["trial"] = {"command": ["python", "train.py"]}
    spec = search_spec(d)
    t = make_trial(plan(spec), 0, 0, {"params.hidden": 64}, reason="t")
    assert t.values == {"hidden": 64} and t.params()["values"] == {"hidden": 64}
    d["search"]["params"] = {"recipe.lr": {"type": "float", "low": 0.1, "high": 1.0}}
    with pytest.raises(SpecError, match="params.<name>"):
        search_spec(d)


def test_the_cli_exits_2_and_writes_nothing_for_a_bad_search(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(search_dict(sampler="tpee"), sort_keys=False))
    store = tmp_path / "s.db"
    assert main(["run", str(path), "--store", str(store)]) == 2
    assert "unknown sampler 'tpee'" in capsys.readouterr().err
    assert not store.exists()


def test_a_search_spec_without_design_tunes_every_trick_on_and_round_trips():
    spec = search_spec()
    p = plan(spec)
    assert len(p.arms) == 1 and set(p.arms[0].tricks) == {"mixup", "label_smoothing"}
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert spec.search.sampler.name == "random" and spec.search.validate.top_k == 3


def test_validate_false_turns_the_round_off():
    assert search_spec(validate=False).search.validate is None


def test_sampled_values_are_applied_revalidated_and_hashed():
    p = plan(search_spec())
    a = make_trial(p, 0, 0, {"recipe.lr": 0.3, "tricks.mixup.alpha": 0.7}, reason="t")
    b = make_trial(p, 0, 0, {"recipe.lr": 0.3, "tricks.mixup.alpha": 0.6}, reason="t")
    assert a.recipe.lr == 0.3 and next(t for t in a.tricks if t.use == "mixup").params.alpha == 0.7
    assert a.values == {"recipe.lr": 0.3, "tricks.mixup.alpha": 0.7} and a.origin == "search"
    assert a.id != b.id and a.id == make_trial(p, 0, 0, {"recipe.lr": 0.3, "tricks.mixup.alpha": 0.7}, reason="x").id
    with pytest.raises(SpecError, match="cannot be applied"):
        make_trial(p, 0, 0, {"recipe.lr": 50.0}, reason="t")


def test_specs_without_search_keep_their_stored_text():
    from tests.conftest import tiny_spec

    assert "search" not in spec_to_dict(tiny_spec())


def test_plan_describes_the_search(capsys):
    assert main(["plan", "digits_search"]) == 0
    out = capsys.readouterr().out
    assert "search: tpe sampler (seed 0), pruner median, 16 trials per study" in out
    assert "tricks.mixup.alpha" in out and "hand-picked values" in out
