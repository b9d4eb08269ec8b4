"""NNI configs through the CLI: `ablate import-nni`, `ablate run`/`plan` on an NNI config, bad
input (exit 2, file, field and line, nothing written), and the example experiment end to end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from ablate.cli import main
from ablate.nni import convert_config, load_spec_or_nni

EXAMPLE = Path(__file__).parent / "nni_example"
SPACE = {"lr": {"_type": "loguniform", "_value": [1e-4, 1]}, "bs": {"_type": "choice", "_value": [16, 32]}}

# -- the CLI and bad input -----------------------------------------------------------------------

def test_import_nni_writes_a_spec_with_a_header_and_prints_the_mappings(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(EXAMPLE.parent)
    out = tmp_path / "spec.yaml"
    assert main(["import-nni", "nni_example/config_v2.yml", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nni: tuner TPE -> sampler tpe" in printed and f"ablate run {out}" in printed
    text = out.read_text()
    assert text.startswith("# Converted by `ablate import-nni nni_example/config_v2.yml`")
    assert f"# Run it: ablate run {out}" in text
    assert yaml.safe_load(text) == convert_config("nni_example/config_v2.yml").spec


def test_import_nni_without_o_prints_the_spec_and_never_overwrites_the_config(capsys, monkeypatch):
    monkeypatch.chdir(EXAMPLE)
    assert main(["import-nni", "config_v1.yml"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Converted by") and yaml.safe_load(printed) == convert_config("config_v1.yml").spec
    before = (EXAMPLE / "config_v1.yml").read_text()
    assert main(["import-nni", "config_v1.yml", "-o", "./config_v1.yml"]) == 2
    assert "is the NNI config itself" in capsys.readouterr().err
    assert (EXAMPLE / "config_v1.yml").read_text() == before


def write_experiment(tmp_path, config: str, space: dict | str | tuple | None = None) -> Path:
    if isinstance(space, tuple):   # (file name, text)
        (tmp_path / space[0]).write_text(space[1])
    elif space is not None:
        (tmp_path / "space.json").write_text(space if isinstance(space, str) else json.dumps(space, indent=2))
    (tmp_path / "trial.py").write_text("import nni\n")
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(config))
    return path


V2 = """\
searchSpaceFile: space.json
trialCommand: python3 trial.py
maxTrialNumber: 3
tuner:
  name: TPE
trainingService:
  platform: {platform}
"""
BAD_SPACE = '{\n  "lr": {"_type": "uniform", "_value": [0.1, 1]},\n  "d": {"_type": "betavariate", "_value": [1, 2]}\n}'


@pytest.mark.parametrize("config, space, where, message", [
    (V2.format(platform="remote"), SPACE, "config.yml:7, field 'trainingService.platform'",
     "training service 'remote' is not supported"),
    ("trainingServicePlatform: pai\nsearchSpacePath: space.json\ntrial:\n  command: python3 trial.py\n  codeDir: .\n",
     SPACE, "config.yml:1, field 'trainingServicePlatform'", "training service 'pai'"),
    (V2.format(platform="local"), BAD_SPACE, "space.json:3, field 'd._type'", "unknown NNI _type 'betavariate'"),
    (V2.format(platform="local"), '{"m": {"_type": "choice", "_value": [{"_name": "a"}]}}', "space.json:1, field 'm",
     "parameter 'm' is a nested choice"),
    (V2.format(platform="local"), '{"n":\n {"_type": "randint", "_value": [4, 2]}}', "space.json:2, field 'n._value'",
     "needs upper > lower"),
    (V2.format(platform="local").replace("trialCommand: python3 trial.py\n", ""), SPACE, "field 'trialCommand'",
     "the trial command is missing"),
    ("searchSpacePath: space.json\ntrial:\n  codeDir: .\n", SPACE, "config.yml:2, field 'trial.command'",
     "the trial command is missing"),
    ("searchSpace:\n  lr:\n    _type: uniform\n    _value: [1, 0.5]\ntrialCommand: python3 trial.py\n", None,
     "config.yml:4, field 'searchSpace.lr._value'", "low < high must hold, got low=1, high=0.5"),
    (V2.format(platform="local").replace("space.json", "space.yml"),
     ("space.yml", "lr:\n  _type: loguniform\n  _value: [1e-3, 1]\nbs:\n  _type: qnormal\n  _value: [1, 0, 1]\n"),
     "space.yml:6, field 'bs._value'", "'qnormal' needs sigma > 0"),
    (V2.format(platform="local").replace("space.json", "nowhere.json"), None, "config.yml:1, field 'searchSpaceFile'",
     "nowhere.json' does not exist"),
])
def test_bad_nni_input_exits_2_naming_file_field_and_line_and_writes_nothing(tmp_path, capsys, config, space, where,
                                                                            message):
    path = write_experiment(tmp_path, config, space)
    out = tmp_path / "out.yaml"
    assert main(["import-nni", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err, err
    assert not out.exists()
    assert main(["run", str(path), "--store", str(tmp_path / "s.db"), "--no-report"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "s.db").exists()
    assert main(["plan", str(path), "--no-estimate"]) == 2 and message in capsys.readouterr().err


def test_load_spec_or_nni_loads_an_ablate_spec_as_before(spec_file):
    from tests.conftest import tiny_dict

    spec, notes = load_spec_or_nni(spec_file(tiny_dict()))
    assert spec.name == "tiny" and notes == []


def test_load_spec_or_nni_converts_an_nni_config_and_returns_the_notes():
    spec, notes = load_spec_or_nni(EXAMPLE / "config_v2.yml")
    assert spec.trial.api == "nni" and spec.metric.name == "default"
    assert any("tuner TPE -> sampler tpe" in n for n in notes)


@pytest.mark.slow   # the script imports scikit-learn: a few seconds
def test_the_example_trial_script_runs_unmodified_under_the_shim(tmp_path):
    from ablate.runner.command import CommandExecutor
    from ablate.runner.engine import run_trials
    from ablate.store import Store
    from ablate.design.trial import Trial

    spec = spec_from_converted(convert_config(EXAMPLE / "config_v2.yml", relative_to=EXAMPLE))
    trial = Trial.create(experiment="digits_sgd", arm=0, label="nni", seed=0, data=spec.data, model=None,
                         recipe=None, tricks=(), command=spec.trial, origin="search",
                         values={"params.alpha": 1e-4, "params.penalty": "l2", "params.eta0": 0.05,
                                 "params.epochs": 3})
    store = Store(tmp_path / "s.db", create=True)
    executor = CommandExecutor(spec.trial.model_copy(update={"cwd": str(EXAMPLE)}))
    assert run_trials([trial], store, executor).outcomes == {"complete": 1}
    assert 0.8 < store.trials_frame("digits_sgd")["default"].iloc[0] <= 1.0   # SGD on digits: ~95%
    assert store.epochs_frame("digits_sgd")["epoch"].tolist() == [1, 2, 3]


def spec_from_converted(conversion):
    """The converted spec validated without its `search` section (this branch may lack it)."""
    from ablate.design.spec import spec_from_dict

    return spec_from_dict({k: v for k, v in conversion.spec.items() if k != "search"}, check_files=False)


@pytest.mark.slow
@pytest.mark.parametrize("config, name", [("config_v2.yml", "digits_sgd"), ("config_v1.yml", "digits_sgd_v1")])
def test_the_nni_example_runs_end_to_end_as_is(tmp_path, config, name, monkeypatch, capsys):
    from ablate.store import Store

    monkeypatch.chdir(EXAMPLE.parents[2])   # the repository
    store = tmp_path / "s.db"
    assert main(["run", f"tests/nni/nni_example/{config}", "--store", str(store), "--no-report"]) == 0
    assert "nni: tuner TPE -> sampler tpe" in capsys.readouterr().out
    frame = Store(str(store), create=False).trials_frame(name)
    assert set(frame["status"]) <= {"complete", "pruned"} and (frame["status"] == "complete").any()
    done = frame[frame["status"] == "complete"]
    assert done["default"].between(0, 1).all() and done["default"].max() > 0.8
    assert len(Store(str(store), create=False).epochs_frame(name)) >= 3
