"""Bad input that got through the first checks: each exits 2 with the file, line and field, says
what is allowed and what was given, and writes nothing; and the input that is fine (unquoted
`fuse: on`, an override of a search bound) is taken."""

from __future__ import annotations

import sys

import optuna
import pytest
import yaml

from ablate.cli import main
from tests.conftest import tiny_dict
from tests.search_helpers import search_dict


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(capsys, path, argv, field: str, *words: str, line: int | None = None) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2, out + err
    where = f"{path.name}:{line}" if line else f"{path.name}:"
    assert where in err and f"field '{field}'" in err, err
    for w in words:
        assert w in err, err
    return err


def _command_dict(tmp_path, **changes) -> dict:
    (tmp_path / "t.py").write_text("print('{\"val_acc\": 1}')\n")
    return {"name": "cmd", "data": {"name": "digits"},
            "trial": {"command": [sys.executable, "t.py"], "cwd": str(tmp_path)},
            "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1, **changes}


@pytest.mark.parametrize("early, field, words", [
    ({"metric": "val_loss", "mode": "max"}, "early_stop.mode", ["better when smaller", "mode must be 'min'", "'max'"]),
    ({"mode": "min"}, "early_stop.mode", ["'val_acc' is better when larger", "got 'min'"]),
])
def test_an_early_stop_mode_against_its_metric_is_refused(tmp_path, spec_file, capsys, early, field, words):
    path = spec_file(tiny_dict(early_stop=early))
    _refused(capsys, path, ["run", str(path), "--store", str(tmp_path / "s.db")], field, *words)
    assert not (tmp_path / "s.db").exists()


def test_a_search_metric_against_its_direction_is_refused(tmp_path, spec_file, capsys):
    path = spec_file(search_dict(metrics=["val_acc", {"name": "val_loss", "mode": "max"}]))
    _refused(capsys, path, ["plan", str(path), "--no-estimate"], "search.metrics[1]", "mode must be 'min'")


@pytest.mark.parametrize("changes, field, words", [
    ({"save": "final"}, "save", ["command trial", "remove 'save'"]),
    ({"fuse": "on"}, "fuse", ["command trial"]),
])
def test_command_trials_refuse_what_only_the_built_in_trainer_does(tmp_path, spec_file, capsys, changes, field, words):
    path = spec_file(_command_dict(tmp_path, **changes))
    _refused(capsys, path, ["run", str(path), "--store", str(tmp_path / "s.db")], field, *words)
    assert not (tmp_path / "s.db").exists()


def test_fuse_on_with_save_final_is_a_contradiction(tmp_path, spec_file, capsys):
    path = spec_file(tiny_dict(fuse="on", save="final"))
    _refused(capsys, path, ["plan", str(path), "--no-estimate"], "fuse", "'save: final'")


@pytest.mark.parametrize("word, value", [("on", "on"), ("off", "off"), ("auto", "auto")])
def test_fuse_on_and_off_unquoted_as_the_readme_writes_them_are_taken(tmp_path, capsys, word, value):
    text = yaml.safe_dump(tiny_dict(), sort_keys=False) + f"fuse: {word}\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["fuse"] == {"on": True, "off": False}.get(word, word), "YAML 1.1 reads on/off as bools"
    from ablate.design.spec import load_spec

    assert load_spec(path).fuse == value


def test_a_command_that_is_not_there_is_refused_with_its_line(tmp_path, spec_file, capsys):
    d = _command_dict(tmp_path)
    d["trial"]["command"] = ["./no-such-script.sh"]
    path = spec_file(d)
    line = path.read_text().splitlines().index("  command:") + 1
    _refused(capsys, path, ["run", str(path), "--store", str(tmp_path / "s.db")], "trial.command[0]",
             "not an executable file", line=line + 1)
    assert not (tmp_path / "s.db").exists()


def test_a_working_folder_that_is_a_file_says_so(tmp_path, spec_file, capsys):
    d = _command_dict(tmp_path)
    d["trial"]["cwd"] = str(tmp_path / "t.py")
    path = spec_file(d)
    _refused(capsys, path, ["run", str(path), "--store", str(tmp_path / "s.db")], "trial.cwd", "is a file, not a folder")


def test_epochs_on_the_command_line_for_a_command_trial_is_refused(tmp_path, spec_file, capsys):
    path = spec_file(_command_dict(tmp_path))
    code, _, err = _run(capsys, "run", str(path), "--store", str(tmp_path / "s.db"), "--epochs", "3")
    assert code == 2 and "--epochs sets recipe.epochs" in err and not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("search, field, words", [
    (dict(pruner={"name": "median", "n_warmup_stepz": 2}), "search.pruner",
     ["pruner 'median'", "n_warmup_stepz", "takes: n_startup_trials, n_warmup_steps"]),
    (dict(sampler={"name": "tpe", "options": {"n_startup_trialz": 2}}), "search.sampler.options",
     ["sampler 'tpe'", "n_startup_trialz", "takes: consider_prior"]),
    (dict(sampler={"name": "tpe", "options": {"seed": 2}}), "search.sampler.options.seed", ["search.sampler.seed"]),
    (dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "bogus": 1}}),
     "search.params.recipe.lr.bogus", ["allowed keys: type, low, high, log, step"]),
    (dict(params={"recipe.epochs": {"type": "int", "low": 1, "high": 3, "step": 5}}),
     "search.params.recipe.epochs.step", ["step 5 is larger than the range"]),
    (dict(n_trials=2, validate={"top_k": 5}), "search.validate.top_k", ["top_k 5 > n_trials 2"]),
])
def test_bad_search_options_name_their_own_field(tmp_path, spec_file, capsys, search, field, words):
    path = spec_file(search_dict(**search))
    _refused(capsys, path, ["plan", str(path), "--no-estimate"], field, *words)


def test_the_default_top_k_with_a_small_budget_is_fine(tmp_path, spec_file, capsys):
    path = spec_file(search_dict(n_trials=2))
    assert _run(capsys, "plan", str(path), "--no-estimate")[0] == 0


def test_an_override_reaches_a_search_bound(tmp_path, spec_file, capsys):
    path = spec_file(search_dict())
    code, out, err = _run(capsys, "plan", str(path), "--no-estimate", "--override", "search.params.recipe.lr.low=0.001",
                          "--override", "search.params.tricks.mixup.alpha.high=0.9")
    assert code == 0, err
    assert "recipe.lr: {'type': 'float', 'low': 0.001, 'high': 1.0" in out
    assert "tricks.mixup.alpha: {'type': 'float', 'low': 0.1, 'high': 0.9" in out


def test_a_widened_search_range_under_the_same_name_is_a_new_experiment(tmp_path, spec_file, capsys, monkeypatch):
    """Before: the run went on with the old study (its distributions), saying nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.py").write_text("import json, os\np = json.load(open(os.environ['ABLATE_TRIAL']))\n"
                                   "print(json.dumps({'val_acc': 50 + p['values']['lr']}))\n")
    d = _command_dict(tmp_path, search={"params": {"params.lr": {"type": "float", "low": 0.1, "high": 1.0}},
                                        "sampler": {"name": "random", "seed": 1}, "n_trials": 2, "validate": False})
    del d["design"]
    path = spec_file(d)
    store = str(tmp_path / "s.db")
    assert _run(capsys, "run", str(path), "--store", store, "--no-report")[0] == 0
    d["search"]["params"]["params.lr"]["low"] = 0.001
    path = spec_file(d)
    code, _, err = _run(capsys, "run", str(path), "--store", store, "--no-report")
    assert code == 2 and "different search" in err and "params.params.lr" in err and "0.001" in err, err
    assert "keeps the distributions" in err
    code, out, err = _run(capsys, "run", str(path), "--store", store, "--no-report", "--replace")
    assert code == 0, err
    assert "and its Optuna study cmd" in out
    study = optuna.load_study(study_name="cmd", storage=f"sqlite:///{store}")
    assert len(study.trials) == 2 and all(t.distributions["params.lr"].low == 0.001 for t in study.trials)
    d["search"]["n_trials"] = 3                     # a longer search goes on where it stopped
    path = spec_file(d)
    assert _run(capsys, "run", str(path), "--store", store, "--no-report")[0] == 0
    assert len(optuna.load_study(study_name="cmd", storage=f"sqlite:///{store}").trials) == 3


def test_a_store_in_a_folder_that_does_not_exist_is_created_with_a_note(tmp_path, spec_file, capsys):
    path = spec_file(_command_dict(tmp_path))
    code, out, err = _run(capsys, "run", str(path), "--store", str(tmp_path / "a" / "b" / "s.db"), "--no-report")
    assert code == 0, err
    assert f"(creating folder {tmp_path / 'a' / 'b'})" in out and (tmp_path / "a" / "b" / "s.db").is_file()
