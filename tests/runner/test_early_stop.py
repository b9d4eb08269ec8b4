"""`early_stop:` (ASHA) on the local runners: in-process, `--jobs` threads and command trials
stop weak trials after an epoch, recorded as the Ray executor records them (pruned, "stopped
early by ASHA after epoch N", out of the lift table); combinations that cannot work are refused
when the spec loads. (The same stops as on Ray: tests/runner/test_ray.py.)"""

from __future__ import annotations

import sys

import pytest
import yaml

from ablate.errors import SpecError
from ablate.design.plan import plan
from ablate.results import metric_matrix, outcomes
from ablate.runner.command import CommandExecutor
from ablate.runner.early_stop import AshaPruner, asha_scheduler
from ablate.api import run_experiment
from ablate.runner.inprocess import InProcessExecutor
from ablate.design.spec import parse_spec
from ablate.store import Store
from tests.conftest import tiny_spec

pytest.importorskip("ray")
ONE_ARM = {"design": {"kind": "explicit", "arms": [[]]}}


def scored(trial, report, device=None):
    """Four epochs whose metric falls with the seed (seed 0 is best)."""
    for epoch in range(1, 5):
        report({"epoch": epoch, "val_acc": 50.0 - 10 * trial.seed + epoch})
    return {"val_acc": 54.0 - 10 * trial.seed}


def asha_spec(**changes):
    return tiny_spec(**{**ONE_ARM, "seeds": 4, "recipe": {"epochs": 4},
                        "early_stop": {"grace_epochs": 1, "reduction": 2}, **changes})


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_local_runner_stops_weak_trials_recorded_as_ray_records_them(tmp_path, jobs):
    spec = asha_spec()
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(spec, store, executor=InProcessExecutor(run_fn=scored, jobs=jobs))
    frame = store.trials_frame("tiny").set_index("seed")
    assert frame.loc[0, "status"] == "complete" and frame.loc[3, "status"] == "pruned"
    pruned = frame[frame.status == "pruned"]
    assert summary.outcomes.get("pruned", 0) == len(pruned) >= 2
    assert all(e.startswith("stopped early by ASHA after epoch ") for e in pruned.error), list(pruned.error)
    values, _ = metric_matrix(p, outcomes(p, store.trials_frame("tiny")), "val_acc")
    assert (values[0][pruned.index.to_numpy()] != values[0][pruned.index.to_numpy()]).all(), "pruned: NaN"


def test_without_early_stop_every_trial_finishes(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(asha_spec(early_stop=None), store, executor=InProcessExecutor(run_fn=scored))
    assert summary.outcomes == {"complete": 4}


COMMAND = """
import json, os
seed = json.load(open(os.environ["ABLATE_TRIAL"]))["seed"]
for e in (1, 2, 3, 4):
    print(json.dumps({"epoch": e, "val_acc": 50 - 10 * seed + e}), flush=True)
print(json.dumps({"val_acc": 54 - 10 * seed}))
"""


def test_command_trials_are_stopped_by_their_epoch_reports(tmp_path):
    (tmp_path / "train.py").write_text(COMMAND)
    raw = {"name": "cmd", "data": {"name": "digits"}, "trial": {"command": [sys.executable, "train.py"],
                                                                 "cwd": str(tmp_path)},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 4,
           "early_stop": {"grace_epochs": 1, "reduction": 2}}
    spec = parse_spec(yaml.safe_dump(raw), source="cmd.yaml")
    store = Store(tmp_path / "s.db", create=True)
    run_experiment(spec, store, executor=CommandExecutor(spec.trial, source="cmd.yaml"))
    frame = store.trials_frame("cmd").set_index("seed")
    assert frame.loc[0, "status"] == "complete"
    assert frame.loc[3, "status"] == "pruned" and frame.loc[3, "error"].startswith("stopped early by ASHA after epoch")


def test_rungs_follow_tunes_asha_and_stay_below_the_last_epoch():
    """Rungs at grace * reduction^k below the last epoch; at a rung the bar is the top
    1/reduction of the values recorded there so far; a passed rung is not judged again."""
    early = tiny_spec(early_stop={"grace_epochs": 1, "reduction": 2}).early_stop
    pruner = AshaPruner(early, metric="val_acc", mode="max", epochs=5)       # rungs at epochs 1, 2, 4
    trials = plan(tiny_spec(**ONE_ARM, seeds=3)).trials
    a, b, c = trials
    assert not pruner.should_stop(a, {"epoch": 1, "val_acc": 10.0})     # first at the rung: goes on
    assert pruner.should_stop(b, {"epoch": 1, "val_acc": 5.0})          # below the bar (10)
    assert not pruner.should_stop(c, {"epoch": 1, "val_acc": 12.0})
    assert not pruner.should_stop(c, {"epoch": 2, "val_acc": 1.0})      # first at rung 2
    assert not pruner.should_stop(a, {"epoch": 2, "val_acc": float("nan")}), "no number: nothing judged"
    assert pruner.should_stop(a, {"epoch": 3, "val_acc": 0.5}), "judged at rung 2 by its first report past it"
    assert not pruner.should_stop(c, {"epoch": 3, "val_acc": 0.0}), "a passed rung is not judged again"
    assert AshaPruner(early, metric="val_acc", mode="max", epochs=1).scheduler is None
    assert asha_scheduler(early, metric="val_acc", mode="max", epochs=5)._max_t == 4


def test_a_smaller_is_better_early_metric_stops_the_larger_values():
    early = tiny_spec(early_stop={"metric": "val_loss", "reduction": 2}).early_stop
    pruner = AshaPruner(early, metric="val_acc", mode="max", epochs=4)
    a, b = plan(tiny_spec(**ONE_ARM, seeds=2)).trials
    assert not pruner.should_stop(a, {"epoch": 1, "val_loss": 0.5})
    assert pruner.should_stop(b, {"epoch": 1, "val_loss": 0.9}), "val_loss: smaller is better"


def test_early_stop_beside_a_search_pruner_is_refused_naming_both_fields():
    search = {"params": {"recipe.lr": {"type": "float", "low": 0.01, "high": 0.1}}, "pruner": "median",
              "n_trials": 4}
    with pytest.raises(SpecError, match=r"'early_stop' \(ASHA\) and 'search.pruner' \(median\)") as err:
        tiny_spec(search=search, early_stop={"grace_epochs": 1}, seeds=6, **ONE_ARM)
    assert err.value.path == "early_stop"
    assert tiny_spec(search={**search, "pruner": "none"}, early_stop={"grace_epochs": 1}, seeds=6, **ONE_ARM).early_stop


def test_an_early_metric_of_unknown_direction_is_refused():
    with pytest.raises(SpecError, match="give its direction") as err:
        tiny_spec(early_stop={"metric": "f1"})
    assert err.value.path == "early_stop.metric"
    assert tiny_spec(early_stop={"metric": "f1", "mode": "max"}).early_stop.direction("val_acc", "max") == "max"


def test_a_search_on_the_local_runner_stops_weak_study_trials_early(tmp_path):
    from tests.search_helpers import fake_train, search_dict, search_spec

    d = search_dict(n_trials=8, validate=None)
    d["recipe"]["epochs"] = 3          # rungs at epochs 1 and 2; epoch 3 always finishes
    d["early_stop"] = {"grace_epochs": 1, "reduction": 2}
    store = Store(tmp_path / "s.db", create=True)

    def three_epochs(trial, report, device=None):
        fake_train(trial, report, device)
        return fake_train(trial, lambda m: report({**m, "epoch": 3}) if m["epoch"] == 2 else None, device)

    _, summary = run_experiment(search_spec(d), store, executor=InProcessExecutor(run_fn=three_epochs))
    frame = store.trials_frame("srch")
    pruned = frame[frame.status == "pruned"]
    assert summary.outcomes.get("pruned", 0) == len(pruned) >= 1, frame[["status", "error"]]
    assert all(e.startswith("stopped early by ASHA after epoch ") for e in pruned.error)
