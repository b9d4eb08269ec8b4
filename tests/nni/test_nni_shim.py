"""The `nni` shim: NNI trial scripts run unmodified as command trials with `api: nni`, get their
parameters, report through ablate's client, and are stopped when pruned; nothing else sees it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from argparse import Namespace

import pytest

from ablate.nni import SHIM_DIR
from ablate.runner.command import NNI_SHIM, CommandExecutor
from ablate.config.run import CommandTrial
from ablate.runner.engine import run_trials
from ablate.runner.events import EpochMetrics, Failure, FinalMetrics
from ablate.design.spec import spec_from_dict
from ablate.store import Store
from ablate.design.trial import Trial

DATA = spec_from_dict({"name": "d", "data": {"name": "digits"}, "trial": {"command": ["python"]},
                       "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1}, check_files=False).data


def script(tmp_path, body: str, name: str = "trial.py") -> None:
    (tmp_path / name).write_text(textwrap.dedent(body))


def nni_trial(tmp_path, values=None, api="nni", env=None) -> Trial:
    command = CommandTrial(command=[sys.executable, "trial.py"], cwd=str(tmp_path), api=api, env=env or {})
    return Trial.create(experiment="nni", arm=0, label="nni", seed=0, data=DATA, model=None, recipe=None, tricks=(),
                        command=command, values=values or {}, origin="search", reason="search")


def run_collect(trial: Trial, stop_after_epoch: int | None = None) -> list:
    events = []

    def emit(event):
        events.append(event)
        if isinstance(event, EpochMetrics) and stop_after_epoch and event.metrics["epoch"] >= stop_after_epoch:
            return "stop"
        return None

    CommandExecutor(trial.command, stop_grace_s=30).run([trial], emit)
    return events


NNI_SCRIPT = """
    import json, sys
    import nni
    params = nni.get_next_parameter()
    seen = {"params": params, "current": nni.get_current_parameter(), "lr": nni.get_current_parameter("lr"),
            "trial_id": nni.get_trial_id(), "experiment": nni.get_experiment_id(),
            "sequence": nni.get_sequence_id(), "file": nni.__file__}
    json.dump(seen, open("seen.json", "w"))
    nni.report_intermediate_result(0.5)
    nni.report_intermediate_result(0.6)
    nni.report_intermediate_result({"default": 0.7, "loss": 0.3})
    nni.report_final_result({"default": 0.8, "loss": 0.2, "note": "not a number"})
"""


def test_an_nni_script_gets_its_parameters_and_its_results_reach_the_store(tmp_path):
    script(tmp_path, NNI_SCRIPT)
    trial = nni_trial(tmp_path, {"params.lr": 0.1, "params.opt": "adam"})
    store = Store(tmp_path / "s.db", create=True)
    summary = run_trials([trial], store, CommandExecutor(trial.command))
    assert summary.outcomes == {"complete": 1}
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["params"] == seen["current"] == {"lr": 0.1, "opt": "adam"} and seen["lr"] == 0.1
    assert seen["trial_id"] == trial.id and seen["experiment"] == "nni"
    assert seen["sequence"] == int(trial.id[:7], 16)
    assert seen["file"] == str(SHIM_DIR / "nni" / "__init__.py")
    final = store.trials_frame("nni").iloc[0]
    assert final["default"] == 0.8 and final["loss"] == 0.2 and final["epochs"] == 3
    epochs = store.epochs_frame("nni")
    assert epochs["epoch"].tolist() == [1, 2, 3] and epochs["default"].tolist() == [0.5, 0.6, 0.7]
    assert epochs["loss"].tolist()[2] == 0.3


def test_the_shim_never_enters_ablate_s_own_process(tmp_path):
    script(tmp_path, NNI_SCRIPT)
    path, modules = list(sys.path), set(sys.modules)
    events = run_collect(nni_trial(tmp_path, {"params.lr": 0.1}))
    assert isinstance(events[-1], FinalMetrics)
    assert sys.path == path and "nni" not in sys.modules and "nni" not in set(sys.modules) - modules
    assert all(str(SHIM_DIR) not in p for p in sys.path)


def test_only_an_nni_trial_sees_the_shim_and_a_real_nni_elsewhere_is_not_shadowed(tmp_path):
    real = tmp_path / "site" / "nni"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    script(tmp_path, """
        import json, os
        import nni
        json.dump({"real": getattr(nni, "REAL", False), "path": os.environ.get("PYTHONPATH", "")},
                  open("seen.json", "w"))
        print('{"default": 1}')
    """)
    env = {"PYTHONPATH": str(tmp_path / "site")}
    run_collect(nni_trial(tmp_path, api="ablate", env=env))
    plain = json.loads((tmp_path / "seen.json").read_text())
    assert plain["real"] is True and str(SHIM_DIR) not in plain["path"]
    run_collect(nni_trial(tmp_path, api="nni", env=env))
    shimmed = json.loads((tmp_path / "seen.json").read_text())
    assert shimmed["real"] is False
    assert shimmed["path"].split(os.pathsep) == [str(SHIM_DIR), str(tmp_path / "site")]


def test_a_pruned_nni_script_ends_at_its_next_intermediate_report(tmp_path):
    script(tmp_path, """
        import os, time
        import nni
        nni.report_intermediate_result(0.1)
        for _ in range(100):   # until the driver has pruned the trial (it touches ABLATE_STOP)
            if os.path.exists(os.environ["ABLATE_STOP"]):
                break
            time.sleep(0.05)
        nni.report_intermediate_result(0.2)
        open("went_on", "w").close()
        nni.report_final_result(0.2)
    """)
    events = run_collect(nni_trial(tmp_path), stop_after_epoch=1)
    assert isinstance(events[-1], Failure) and events[-1].kind == "pruned"
    assert [e.metrics["epoch"] for e in events if isinstance(e, EpochMetrics)] == [1]
    assert not (tmp_path / "went_on").exists()


def standalone(tmp_path, body: str, env=None) -> subprocess.CompletedProcess:
    script(tmp_path, body)
    full = {k: v for k, v in os.environ.items() if not k.startswith("ABLATE_")}
    full.update({"PYTHONPATH": str(SHIM_DIR), **(env or {})})
    return subprocess.run([sys.executable, "trial.py"], cwd=tmp_path, env=full, capture_output=True, text=True,
                          timeout=60)


def test_outside_ablate_the_script_runs_as_in_nni_s_standalone_mode(tmp_path):
    done = standalone(tmp_path, """
        import nni
        print(nni.get_current_parameter(), nni.get_next_parameter(), nni.get_trial_id(), nni.get_experiment_id(),
              nni.get_sequence_id())
        nni.report_final_result(0.5)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["None {} STANDALONE STANDALONE 0", '{"default": 0.5}']


def test_a_hyperband_trial_gets_its_budget(tmp_path):
    done = standalone(tmp_path, "import nni\nprint(nni.get_next_parameter())\n",
                      env={"ABLATE_NNI_TRIAL_BUDGET": "27"})
    assert done.stdout.strip() == "{'TRIAL_BUDGET': 27}"


@pytest.mark.parametrize("call, error", [
    ("nni.report_final_result('high')", "TypeError: nni.report_final_result: the result must be a number"),
    ("nni.report_final_result({'acc': 1})", "ValueError: nni.report_final_result: a dict result must have a "
                                            "'default' key"),
    ("nni.report_intermediate_result({'default': None})", "'default' must be a number"),
])
def test_a_result_nni_would_refuse_fails_the_script_with_the_reason(tmp_path, call, error):
    done = standalone(tmp_path, f"import nni\n{call}\n")
    assert done.returncode == 1 and error in done.stderr


def test_numpy_results_are_numbers_and_an_epoch_key_does_not_make_a_final_an_epoch(tmp_path):
    done = standalone(tmp_path, "import nni, numpy as np\nnni.report_final_result({'default': np.float32(0.5), "
                                "'epoch': 3})\n")
    assert json.loads(done.stdout) == {"default": 0.5, "nni_epoch": 3.0}


def test_merge_parameter_lays_tuned_values_over_argparse_defaults():
    spec = importlib.util.spec_from_file_location("shim_utils", SHIM_DIR / "nni" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    merged = utils.merge_parameter(Namespace(lr=0.1, epochs=10, name="x"), {"lr": 0.5, "epochs": 3})
    assert merged == Namespace(lr=0.5, epochs=3, name="x")
    lr = utils.merge_parameter({"lr": 0.1}, {"lr": 1})["lr"]
    assert lr == 1.0 and isinstance(lr, float)
    with pytest.raises(ValueError, match="parameter 'epochs' must be a int like its default, got float 2.5"):
        utils.merge_parameter(Namespace(epochs=10), {"epochs": 2.5})
    with pytest.raises(ValueError, match="'batch' of the tuned parameters"):
        utils.merge_parameter(Namespace(lr=0.1), {"batch": 32})


def test_api_counts_in_the_trial_id_but_old_command_trials_keep_theirs(tmp_path):
    plain = CommandTrial(command=["python", "t.py"])
    assert "api" not in plain.identity(), "ids of command trials stored before `api` existed must not change"
    assert CommandTrial(command=["python", "t.py"], api="nni").identity()["api"] == "nni"
    assert nni_trial(tmp_path, api="nni").id != nni_trial(tmp_path, api="ablate").id
    assert SHIM_DIR == NNI_SHIM
