"""The `search:` section: every bad input is refused at load with the file, field and line (and
the CLI exits 2 writing nothing); good ones load, round-trip and apply their values."""

from __future__ import annotations

import copy

import pytest
import yaml

from ablate.cli import main
from ablate.errors import SpecError
from ablate.design.plan import plan
from ablate.search.source import make_trial
from ablate.design.spec import spec_from_dict, spec_to_dict
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
        from ablate.design.spec import parse_spec

        parse_spec(text, source="srch.yaml")
    e = err.value
    assert e.path == path, str(e)
    for w in words:
        assert w in str(e), str(e)
    if path.startswith("search.params."):
        assert e.line is not None and e.line > 1


def _staged(seeds, **search_changes) -> dict:
    d = search_dict(**search_changes)
    d["seeds"] = seeds
    return d


STAGES_BAD = [
    # (spec dict; field path; words): `seeds:` that do not fit the search's stages
    (_staged(3), "seeds", ["1 for the search, 3 to choose among the finalists", "lists 3 value(s), which leaves 0 to "
                                                                               "report on", "at least 6 seeds"]),
    (_staged(5), "seeds", ["leaves 1 to report on", "at least 6"]),
    (_staged(6, validate={"top_k": 3, "report_seeds": 3}), "search.validate.report_seeds",
     ["1 + 3 + 3 = 7 seeds, but 'seeds' lists 6", "give 'seeds: 7'"]),
    (_staged(9, validate={"top_k": 3, "select_seeds": 2, "report_seeds": 3}), "search.validate.report_seeds",
     ["1 + 2 + 3 = 6 seeds, but 'seeds' lists 9"]),
    (_staged(4, validate={"top_k": 1, "select_seeds": 2}), "search.validate.select_seeds",
     ["nothing to select", "given 2"]),
    (_staged(4, validate={"top_k": 2, "select_seeds": 0}), "search.validate.select_seeds",
     ["greater than or equal to 1"]),
    (_staged(4, validate={"top_k": 2, "select_seeds": 1, "report_seeds": 1}), "search.validate.report_seeds",
     ["greater than or equal to 2"]),
    (_staged(3, validate=False), "seeds", ["runs each configuration once, on the first seed", "give 'seeds: 1'"]),
    (_staged(2, validate=False, compare_to={"recipe.lr": 0.1}), "seeds", ["leaves 1 to report on", "at least 3"]),
    (_staged({"count": 6, "adaptive": {"max_seeds": 8}}), "seeds.adaptive", ["adaptive seeds add seeds to the arms"]),
    (_staged(7, validate={"top_k": 3, "select_seedz": 3}), "search.validate.select_seedz",
     ["unknown key 'select_seedz'", "did you mean 'select_seeds'"]),
]


@pytest.mark.parametrize("raw,path,words", STAGES_BAD, ids=[f"{b[1]}:{b[2][0][:24]}" for b in STAGES_BAD])
def test_seeds_that_do_not_fit_the_stages_are_refused_at_load(raw, path, words):
    from ablate.design.spec import parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec(yaml.safe_dump(raw, sort_keys=False), source="srch.yaml")
    e = err.value
    assert e.path == path and e.line is not None, str(e)
    for w in words:
        assert w in str(e), str(e)


@pytest.mark.parametrize("seeds,validate,compare,stages", [
    (7, {"top_k": 3}, None, ((0,), (1, 2, 3), (4, 5, 6))),                           # the rest reports
    ([9, 4, 7, 1, 3, 8], {"top_k": 2, "select_seeds": 2}, None, ((9,), (4, 7), (1, 3, 8))),   # listed: in order
    (6, {"top_k": 2, "select_seeds": 1, "report_seeds": 4}, None, ((0,), (1,), (2, 3, 4, 5))),
    (4, {"top_k": 1}, None, ((0,), (), (1, 2, 3))),                                   # one finalist: no selection
    (3, False, {"recipe.lr": 0.1}, ((0,), (), (1, 2))),                              # compare_to still reports
    (1, False, None, ((0,), (), ())),                                                # nothing after the search
])
def test_the_stages_split_the_seeds_in_order_and_never_share_one(seeds, validate, compare, stages):
    from ablate.design.stages import stage_seeds

    st = stage_seeds(search_spec(_staged(seeds, validate=validate, compare_to=compare)))
    assert (st.search, st.select, st.report) == stages
    assert not set(st.search) & set(st.select) and not set(st.select) & set(st.report)


def test_the_cli_refuses_seeds_that_do_not_fit_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_staged(3), sort_keys=False))
    store = tmp_path / "s.db"
    for command in (["run", str(path), "--store", str(store)], ["plan", str(path), "--no-estimate"],
                    ["run", "digits_search", "--seeds", "3", "--store", str(store)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "a search splits 'seeds' in order" in err and "Traceback" not in err, err
    assert not store.exists()


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


def test_plan_says_how_many_trials_each_stage_runs_and_what_the_whole_search_costs(tmp_path, capsys):
    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}}, per_arm=True,
                    n_trials=4, sampler="tpe", validate={"top_k": 2, "select_seeds": 1}, compare_to={"recipe.lr": 0.1})
    d["seeds"], d["design"] = 4, {"kind": "one_at_a_time"}
    d["tricks"] = {"label_smoothing": {"eps": 0.1}, "cosine": {}}
    path = tmp_path / "perarm.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "srch: a search of 1 parameter(s) for each of the 3 arms tuned by its own study" in out
    assert "tpe sampler (unseeded: each run samples other values)" in out and "seed None" not in out
    # 3 studies x 4 trials; 2 finalists x 1 seed per study; winner, runner-up, hand-picked x 2 seeds per study
    assert "  search  seed 0: 12 trials (4 per study x 3 studies)" in out
    assert "  select  seeds 1: 6 trials, the top 2 configurations of each study x 1 seeds" in out
    assert "  report  seeds 2, 3: 18 trials, the winner, runner-up, hand-picked values of each study x 2 seeds" in out
    assert "total: at most 36 trials" in out
    assert "cost: 36 trials x 2 epochs x 64 images = 4,608 training images (at most: a pruned trial stops early)" in out
    assert "in all at most" in out
    d["search"].update(n_trials=None, timeout_s=5, per_arm=False, sampler={"name": "tpe", "seed": 3})
    d["design"] = {"kind": "explicit", "arms": [["label_smoothing", "cosine"]]}
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    assert main(["plan", str(path), "--no-estimate"]) == 0
    out = capsys.readouterr().out
    assert "tpe sampler (seeded 3: a rerun samples the same values)" in out
    assert "search  seed 0: as many trials as 5 s allow" in out
    assert "total: the search's trials (unknown before it runs) + 8 after it" in out     # 2 x 1 + 3 x 2
    assert "(baseline)" not in out, "one searched configuration is no baseline"
