"""Three and four `ablate run` processes started together on one search (a SQLite file, then a
PostgreSQL database), several times: none crashes, no live driver's trial is taken for abandoned
and asked again, the budget is the study's, every trial runs once, and all drivers validate the
same finalists.

Before the ask wrote its driver in the same transaction as the trial, another driver could see
the new RUNNING trial without a driver, fail it and ask it again, and the asking driver then
crashed on `UpdateFinishedTrialError` when it told its result (3 of 6 runs of three drivers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import yaml

from ablate.search.finalists import FINALISTS_ATTR, top_configurations
from ablate.search.source import OVER_BUDGET_ATTR, REQUEUED_ATTR
from ablate.config.search import search_metrics
from ablate.design.spec import load_spec
from ablate.store import Store

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, time
p = json.load(open(os.environ["ABLATE_TRIAL"]))
lr = p["values"]["lr"]
for e in (1, 2):
    print(json.dumps({"epoch": e, "val_acc": 50 + 10 * lr * e}), flush=True)
    time.sleep(0.05)
print(json.dumps({"val_acc": 50 + 30 * lr + p["seed"] * 0.01}))
"""
N_TRIALS, TOP_K, SEEDS = 8, 2, 4      # seeds: 1 to search, 1 to select (SELECT_SEEDS), 2 to report
SELECT_SEEDS = 1


def _spec(tmp_path: Path, name: str) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    raw = {"name": name, "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
           "seeds": SEEDS,
           "search": {"params": {"params.lr": {"type": "float", "low": 0.01, "high": 1.0}},
                      "sampler": {"name": "random", "seed": 3}, "n_trials": N_TRIALS,
                      "validate": {"top_k": TOP_K, "select_seeds": SELECT_SEEDS}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _race(spec: Path, store: str, drivers: int, cwd: Path) -> None:
    name = spec.stem
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", store, "--no-report"]
    procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(drivers)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * drivers, "\n\n".join(outs)
    assert not [o for o in outs if "Traceback" in o], "\n\n".join(outs)

    s = Store(store)
    study = optuna.load_study(study_name=name, storage=s.url)
    requeued = [t.number for t in study.trials
                if t.user_attrs.get(REQUEUED_ATTR) and not t.user_attrs.get(OVER_BUDGET_ATTR)]
    assert not requeued, f"live drivers' trials were taken for abandoned: {requeued}"
    counted = [t for t in study.trials if not t.user_attrs.get(OVER_BUDGET_ATTR)]
    assert len(counted) == N_TRIALS and all(t.state.name == "COMPLETE" for t in counted)
    attempts = s.attempts_frame(name)
    assert attempts.trial_id.is_unique, "a trial ran twice"
    assert set(attempts.status) == {"complete"}
    # every driver validated the same finalists: the best TOP_K of all N_TRIALS, each on the
    # selection seed, then the winner and the runner-up on the report seeds
    finalists = top_configurations(study, search_metrics(load_spec(spec)), TOP_K)
    assert study.user_attrs[FINALISTS_ATTR] == finalists
    trials = s.trials_frame(name)
    selected = trials[trials.reason.str.startswith("select")]
    assert len(selected) == TOP_K * SELECT_SEEDS, selected[["label", "seed", "reason"]]
    reported = trials[trials.reason.str.startswith("report")]
    assert len(reported) == 2 * (SEEDS - 1 - SELECT_SEEDS), reported[["label", "seed", "reason"]]


@pytest.mark.slow
@pytest.mark.parametrize("drivers", [3, 4])
def test_drivers_started_together_share_a_search_without_crash_or_requeue(tmp_path, store_target, drivers):
    """Three rounds: the first on a store the drivers create together, the others beside it."""
    for round_ in range(3):
        _race(_spec(tmp_path, f"race{round_}"), str(store_target), drivers, tmp_path)


def test_of_drivers_finding_one_abandoned_trial_only_one_takes_it_over(store_target):
    """The take-over is a compare-and-set: the first driver fails and re-asks the trial, the
    second finds it ended and leaves it (before, both re-asked it)."""
    from ablate.search.source import REASON_ATTR, REQUEUED, SearchSource
    from ablate.search.runner import open_arm_study
    from ablate.design.plan import plan
    from tests.search_helpers import search_spec

    Store(store_target, create=True)
    p = plan(search_spec(n_trials=4))
    study = open_arm_study(p, Store(store_target), 0)
    dead = study.ask()                     # asked by an older ablate: no driver recorded, never told
    dead.suggest_float("recipe.lr", 0.01, 1.0, log=True)
    dead.suggest_float("tricks.mixup.alpha", 0.1, 1.0, step=0.1)
    sources = [SearchSource(p, open_arm_study(p, Store(store_target), 0), metrics=search_metrics(p.spec),
                            n_trials=4, timeout_s=None) for _ in range(2)]
    for s in sources:
        s._resume(Store(store_target))
    assert [len(s.reask) for s in sources] == [1, 0]
    t = optuna.load_study(study_name="srch", storage=Store(store_target).url).trials[0]
    assert t.state.name == "FAIL" and t.user_attrs[REASON_ATTR] == REQUEUED and t.user_attrs[REQUEUED_ATTR]
    again = sources[0]._ask()
    assert again.params == dead.params and again.user_attrs["ablate_requeued_from"] == 0
    assert again.user_attrs["ablate_driver"] == sources[0].driver


def test_a_driver_whose_ask_went_over_budget_waits_for_the_last_trial_before_the_finalists(store_target):
    """Driver A counts the budget, driver B asks the last trial, then A asks: A's trial gives way
    (over budget) and A's source returned an empty batch at once, which ended its engine; its
    finalists were then chosen while B's trial still ran (seen as a third 'select' trial in the
    race above). A must wait for B's trial as when its count says the budget is spent."""
    import threading

    from ablate.design.plan import plan
    from ablate.search.runner import open_arm_study
    from ablate.search.source import SearchSource
    from tests.search_helpers import search_spec

    Store(store_target, create=True)
    p = plan(search_spec(n_trials=1))
    a, b = (SearchSource(p, open_arm_study(p, Store(store_target), 0), metrics=search_metrics(p.spec),
                         n_trials=1, timeout_s=None) for _ in range(2))
    assert len(b.next_trials(Store(store_target))) == 1          # B runs the one trial of the budget
    real, stale = a._used, [True]

    def used(up_to=None):          # A's first count was taken before B asked
        if up_to is None and stale:
            stale.clear()
            return 0
        return real(up_to)

    a._used = used
    out: list = []
    waiting = threading.Thread(target=lambda: out.append(a.next_trials(Store(store_target))), daemon=True)
    waiting.start()
    waiting.join(2.0)
    assert waiting.is_alive(), "A returned while B's trial still ran"
    (number,) = [ot.number for ots in b.asked.values() for ot in ots]
    b.study.tell(number, [90.0])
    waiting.join(10.0)
    assert not waiting.is_alive() and out == [[]]
    over = [t for t in optuna.load_study(study_name="srch", storage=Store(store_target).url).trials
            if t.user_attrs.get(OVER_BUDGET_ATTR)]
    assert len(over) == 1, "A's ask gave way"
