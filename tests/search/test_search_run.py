"""Searches through the engine with fake trainers (no training): values reach the trials, the
study in the store's database sees everything, pruning, timeout, jobs, the winner chosen on
the selection seeds and measured on the report seeds, hand-picked and per-arm tables, the Pareto
front, and the report."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from ablate.errors import SpecError
from ablate.api import run_experiment
from ablate.runner.inprocess import InProcessExecutor
from ablate.report.search import build_search_report, write_search_report
from ablate.store import Store
from tests.search_helpers import fake_train, search_dict, search_spec


def _run(tmp_path, spec, run_fn=fake_train, jobs=1):
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(spec, store, executor=InProcessExecutor(run_fn=run_fn, jobs=jobs), jobs=jobs)
    return store, p, summary


def _study(store, name="srch"):
    return optuna.load_study(study_name=name, storage=store.url)


def test_sampled_values_reach_the_trial_and_the_study_sees_everything(tmp_path):
    store, p, _ = _run(tmp_path, search_spec(validate=False))
    study = _study(store)
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)
    frame = store.trials_frame("srch").set_index("trial_id")
    for t in study.trials:
        tid = t.user_attrs["ablate_trial_id"]
        config = json.loads(store.trial_row("srch", tid)["config"])
        assert config["recipe"]["lr"] == t.params["recipe.lr"]
        alpha = next(x["params"]["alpha"] for x in config["tricks"] if x["use"] == "mixup")
        assert alpha == t.params["tricks.mixup.alpha"]
        assert config["values"] == t.params
        assert t.values[0] == frame.at[tid, "val_acc"]
        assert t.intermediate_values == {1: t.values[0] - 5.0, 2: t.values[0]}
    assert (frame["reason"].str.startswith("search: study trial")).all()


@pytest.mark.slow
def test_the_winner_is_chosen_on_the_selection_seeds_and_measured_on_the_report_seeds(tmp_path):
    # lr 0.4 is best on the search seed (0) by luck; lr 0.2 is best on average over seeds
    base = {0.1: 80.0, 0.2: 82.0, 0.3: 81.0, 0.4: 79.0}

    def lucky(trial, report, device=None):
        v = base[trial.recipe.lr] + (5.0 if trial.recipe.lr == 0.4 and trial.seed == 0 else 0.0) + 0.1 * trial.seed
        report({"epoch": 1, "val_acc": v})
        return {"val_acc": v}

    d = search_dict(params={"recipe.lr": {"type": "categorical", "choices": [0.1, 0.2, 0.3, 0.4]}},
                    sampler={"name": "grid", "seed": 0}, n_trials=4)
    store, p, _ = _run(tmp_path, search_spec(d), run_fn=lucky)
    frame = store.trials_frame("srch")
    stage = {s: set(g["reason"]) for s, g in frame.groupby("seed")}
    # seed 0 searches, seeds 1-3 select, seeds 4-5 report: no trial serves two stages
    assert {r.split(":")[0] for r in stage[0]} == {"search"}
    assert all(stage[s] == {"select: finalist 1", "select: finalist 2", "select: finalist 3"} for s in (1, 2, 3))
    assert all(stage[s] == {"report: winner", "report: runner-up"} for s in (4, 5))
    r = build_search_report(store, p)
    f = r.finalists[0]
    assert list(f.table["config"]) == ["finalist 1", "finalist 2", "finalist 3"]
    assert json.loads(f.table["values"][0]) == {"recipe.lr": 0.4}, "the best single run comes first"
    assert f.winner == {"recipe.lr": 0.2} and f.runner_up == {"recipe.lr": 0.3}
    assert f.table["select_score"].round(4).tolist() == [79.2, 82.2, 81.2]      # seeds 1-3
    assert f.table["role"].tolist() == ["", "winner", "runner-up"]
    assert f.table["mean"].round(4).tolist()[1:] == [82.45, 81.45]             # seeds 4-5 only
    assert math.isnan(f.table["mean"][0]), "a finalist not chosen is not measured on the report seeds"
    assert f.lift.n == 2 and f.lift.mean == pytest.approx(1.0)     # winner 0.2 over runner-up 0.3
    md = r.markdown()
    assert "not the winner on the selection seeds" in md
    assert "Seeds: search 0 (each configuration once; the top 3 go on); select 1, 2, 3" in md
    assert "report 4, 5 (every mean, CI, lift and p below; these runs chose nothing)" in md


@pytest.mark.slow
def test_compare_to_gives_the_hand_picked_vs_searched_table(tmp_path):
    spec = search_spec(compare_to={"recipe.lr": 0.5, "tricks.mixup.alpha": 0.2})
    store, p, _ = _run(tmp_path, spec)
    r = build_search_report(store, p)
    f = r.finalists[0]
    hand = f.table[f.table["config"] == "hand-picked"].iloc[0]
    assert hand["n"] == 2 and json.loads(hand["values"]) == {"recipe.lr": 0.5, "tricks.mixup.alpha": 0.2}
    win = f.table[f.table["winner"] == True].iloc[0]   # noqa: E712
    assert f.compare.mean == pytest.approx(win["mean"] - hand["mean"])
    md = r.markdown()
    assert "## Hand-picked vs searched" in md and "| recipe.lr | 0.5 |" in md
    assert "lift, searched - hand-picked (paired)" in md


@pytest.mark.slow
def test_per_arm_search_tunes_each_arm_and_feeds_the_lift_table(tmp_path):
    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                    per_arm=True, n_trials=4, validate={"top_k": 1})
    d["design"] = {"kind": "one_at_a_time"}
    store, p, _ = _run(tmp_path, search_spec(d))
    names = [s.study_name for s in optuna.get_all_study_summaries(store.url)]
    assert sorted(names) == ["srch/arm0", "srch/arm1", "srch/arm2"]
    r = build_search_report(store, p)
    assert [len(_study(store, f"srch/arm{i}").trials) for i in range(3)] == [4, 4, 4]
    assert r.lift is not None and len(r.lift.frame) == 3
    # top_k 1: nothing to select, so every seed after the search seed reports (1-5), paired
    assert r.lift.frame["n"].tolist() == [5, 5, 5] and r.lift.seeds == [1, 2, 3, 4, 5], \
        "each arm's tuned configuration over the report seeds, never its search trial (seed 0)"
    # the lift table sees the validated trials: arm 1's mean is its winner's seed mean
    f1 = r.finalists[1]
    assert r.lift.frame["val_mean"][1] == pytest.approx(f1.table["mean"][0])
    for f in r.finalists:
        assert f.winner is not None and f.table["n"].iloc[0] == 5
    md = r.markdown()
    assert "## Each arm's tuned values" in md and "## Lift table" in md


@pytest.mark.slow
def test_per_arm_with_a_timeout_shows_each_arms_trial_count_beside_its_lift(tmp_path, monkeypatch):
    # a wall-clock budget per study gives the slow arm fewer trials: the lift table says how many.
    # The search's clock is a virtual one each trial advances (0.4 s, or 2.5 s with mixup), so the
    # counts do not depend on how loaded the machine is.
    import re
    import time
    import types

    from ablate.search import source

    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(source, "time", types.SimpleNamespace(monotonic=lambda: clock.now, time=time.time,
                                                              sleep=time.sleep))

    def mixup_is_slow(trial, report, device=None):
        clock.now += 2.5 if any(t.use == "mixup" for t in trial.tricks) else 0.4
        return fake_train(trial, report, device)

    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                    per_arm=True, n_trials=None, timeout_s=3.0, validate={"top_k": 1})
    d["seeds"] = 3
    d["design"] = {"kind": "explicit", "arms": [[], ["mixup"]]}
    store, p, _ = _run(tmp_path, search_spec(d), run_fn=mixup_is_slow)
    r = build_search_report(store, p)
    counts = [sum(1 for t in _study(store, f"srch/arm{i}").trials) for i in range(2)]
    assert counts == [8, 2], counts
    md = r.markdown()
    lift = md[md.index("## Lift table"):]
    header = lift.splitlines()[2]
    assert header.endswith("| Search trials |")
    rows = [x for x in lift.splitlines()[4:6]]
    assert [int(re.findall(r"\| (\d+) \|$", x)[0]) for x in rows] == counts
    assert f"different numbers of trials (a timeout bounds each study's time, not its trials): " \
           f"ResNet8-w8 {counts[0]}, ResNet8-w8 + M {counts[1]}" in md


def test_a_per_arm_report_before_its_report_runs_completed_says_so(tmp_path):
    def report_seeds_fail(trial, report, device=None):
        if trial.seed > 0:
            raise RuntimeError("out of memory")
        return fake_train(trial, report, device)

    d = search_dict(params={"recipe.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
                    per_arm=True, n_trials=2, validate={"top_k": 1})
    d["seeds"], d["retries"] = 3, {"count": 0}
    d["design"] = {"kind": "explicit", "arms": [[], ["mixup"]]}
    store, p, _ = _run(tmp_path, search_spec(d), run_fn=report_seeds_fail)
    r = build_search_report(store, p)
    assert r.lift is None and any(n.startswith("no lift table yet: experiment 'srch' has no complete trials")
                                  for n in r.notes), r.notes
    assert "note: no lift table yet" in r.markdown()


def test_pruning_stops_trials_and_keeps_the_reason(tmp_path):
    def slow_bad(trial, report, device=None):
        v = 90.0 if trial.recipe.lr > 0.05 else 10.0
        for e in range(1, 6):
            report({"epoch": e, "val_acc": v + e})
        return {"val_acc": v + 5}

    d = search_dict(params={"recipe.lr": {"type": "categorical", "choices": [0.1, 0.01]}}, n_trials=4,
                    sampler={"name": "grid", "seed": 1}, pruner={"name": "median", "n_startup_trials": 1},
                    validate=False)
    store, p, _ = _run(tmp_path, search_spec(d), run_fn=slow_bad)
    study = _study(store)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and all(t.params["recipe.lr"] == 0.01 for t in pruned)
    assert all("pruned after epoch" in t.user_attrs["ablate_reason"] for t in pruned)
    frame = store.trials_frame("srch")
    assert set(frame[frame["status"] == "pruned"]["trial_id"]) == {t.user_attrs["ablate_trial_id"] for t in pruned}


def test_timeout_stops_asking(tmp_path):
    import time

    def slow(trial, report, device=None):
        time.sleep(0.3)
        return {"val_acc": 1.0}

    store, p, summary = _run(tmp_path, search_spec(n_trials=None, timeout_s=0.5, validate=False), run_fn=slow)
    n = len(_study(store).trials)
    assert 1 <= n <= 3 and any("timeout" in note for note in summary.notes)


def test_jobs_two_give_n_trials_without_duplicates(tmp_path):
    store, p, _ = _run(tmp_path, search_spec(validate=False, n_trials=7), jobs=2)
    study = _study(store)
    assert len(study.trials) == 7 and all(t.state.name == "COMPLETE" for t in study.trials)
    frame = store.trials_frame("srch")
    assert frame["trial_id"].is_unique and len(frame) == len({t.user_attrs["ablate_trial_id"] for t in study.trials})


def test_two_metrics_make_a_pareto_front(tmp_path):
    def two(trial, report, device=None):
        lr = trial.recipe.lr
        return {"val_acc": 100 * lr, "wall_s": 10 * lr * lr}     # better accuracy costs time

    d = search_dict(metrics=["val_acc", {"name": "wall_s", "mode": "min"}], pruner="median", n_trials=8,
                    validate=False)
    store, p, summary = _run(tmp_path, search_spec(d), run_fn=two)
    assert any("cannot prune a multi-objective" in n for n in summary.notes)
    study = _study(store)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    r = build_search_report(store, p)
    front = r.pareto
    # every trial is on the front here: accuracy and time both grow with lr
    assert len(front) == 8 and {"value_0", "value_1"} <= set(front.columns)
    assert "## Pareto front" in r.markdown()


def test_a_refused_sampled_value_is_a_clear_error(tmp_path):
    # weight_decay: a trick-less recipe field with le=1; a sampled value cannot exceed the range
    # checked at load, so break the check by hand: the run must fail with a SpecError, not crash
    spec = search_spec(validate=False)
    from ablate.search import source

    original = source.apply_values

    def refuse(recipe, tricks, values):
        raise ValueError("Input should be less than or equal to 1")

    source.apply_values = refuse
    try:
        with pytest.raises(SpecError, match="cannot be applied"):
            _run(tmp_path, spec)
    finally:
        source.apply_values = original
    assert _study(Store(tmp_path / "s.db")).trials[0].state.name == "FAIL"


def test_report_files_and_status(tmp_path, capsys):
    from ablate.cli import main

    store, p, _ = _run(tmp_path, search_spec(compare_to={"recipe.lr": 0.5}))
    r = build_search_report(store, p)
    paths = write_search_report(r, tmp_path / "out", ("md", "csv", "json", "html"))
    names = sorted(x.name for x in paths)
    assert names == ["finalists.csv", "history.csv", "report.html", "search.json", "search.md"]
    data = json.loads((tmp_path / "out" / "search.json").read_text())
    assert data["arms"][0]["winner"] == r.finalists[0].winner
    html = (tmp_path / "out" / "report.html").read_text()
    for title in ("optimisation history", "parallel coordinates", "fANOVA", "intermediate values"):
        assert title in html
    assert main(["status", "srch", "--store", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert "6/6 trials done (6 complete, 0 pruned, 0 failed, 0 running); best so far val_acc" in out
    assert "select: 9 trials (9 complete); report: 6 trials (6 complete)" in out
    assert not math.isnan(r.finalists[0].table.query("role == 'winner'")["mean"].iloc[0])


def test_the_search_report_honours_test_and_confidence(tmp_path, capsys):
    from ablate.cli import main
    from ablate.stats import paired_lift

    def noisy(trial, report, device=None):     # seed noise, so intervals have a width
        v = fake_train(trial, report, device)["val_acc"] + [0.3, -0.2, 0.5, -0.4, 0.1, 0.2][trial.seed]
        return {"val_acc": v}

    store, p, _ = _run(tmp_path, search_spec(compare_to={"recipe.lr": 0.5}), run_fn=noisy)
    out = tmp_path / "rep"
    assert main(["report", "srch", "--store", str(tmp_path / "s.db"), "--out", str(out), "--confidence", "0.8",
                 "--test", "wilcoxon", "--format", "md,json"]) == 0
    md = capsys.readouterr().out
    assert "Intervals: 80% t intervals; p: Wilcoxon signed-rank test" in md
    assert "report: mean [80% CI]" in md and "mean [80% CI] over 2 report seeds" in md and "95%" not in md
    r = build_search_report(store, p, confidence=0.8, test="wilcoxon")
    f = r.finalists[0]
    seeds = [f"seed_{s}" for s in (4, 5)]
    win, hand = (f.table[f.table["role"] == x][seeds].to_numpy(dtype=float)[0] for x in ("winner", "hand-picked"))
    expected = paired_lift(win, hand, confidence=0.8, test="wilcoxon")
    assert f.compare.test == "wilcoxon" and f.compare.p_value == pytest.approx(expected.p_value)
    assert f.compare.ci_low == pytest.approx(expected.ci_low)
    data = json.loads((out / "search.json").read_text())
    assert data["confidence"] == 0.8 and data["test"] == "wilcoxon"
    assert data["seeds"] == {"search": [0], "select": [1, 2, 3], "report": [4, 5]}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_search", "cifar10_resnet32_search"])
def test_shipped_search_specs_run_shrunk_with_the_real_trainer(name, tmp_path):
    from tests.test_search_spaces import shrink

    spec = shrink(name).with_changes(search={"n_trials": 2, "validate": {"top_k": 1}, "pruner": "none"})
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(spec, store, executor=InProcessExecutor(device="cpu"))
    # 2 search trials on seed 0; one finalist: nothing to select; the winner and the hand-picked
    # values on the 3 report seeds (1-3)
    assert summary.outcomes == {"complete": 8}, summary.describe()
    r = build_search_report(store, p)
    assert r.finalists[0].winner is not None and r.finalists[0].compare is not None
    assert "## Hand-picked vs searched" in r.markdown()


def test_optuna_dashboard_opens_the_store(tmp_path):
    # `optuna-dashboard <store URL>` serves this WSGI app: it must list the study and its trials
    import io

    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    store, p, _ = _run(tmp_path, search_spec(validate=False, n_trials=3))
    app = optuna_dashboard.wsgi(store.url)

    def get(path: str):
        seen = {}
        body = app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(),
                    "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http"},
                   lambda status, headers, exc_info=None: seen.setdefault("status", status))
        return seen["status"], json.loads(b"".join(body))

    status, data = get("/api/studies")
    assert status.startswith("200") and [s["study_name"] for s in data["study_summaries"]] == ["srch"]
    status, data = get(f"/api/studies/{data['study_summaries'][0]['study_id']}")
    assert status.startswith("200") and len(data["trials"]) == 3
    assert {k["name"] for k in data["trials"][0]["params"]} == {"recipe.lr", "tricks.mixup.alpha"}


def test_two_drivers_share_one_search_without_repeating_a_trial(store_target):
    """Optuna's distributed pattern: two `ablate run`s on one store and study (SQLite, then
    PostgreSQL). Neither takes the other's running trials for abandoned, the budget is the
    study's, and both validate the same finalists."""
    import threading
    import time

    from ablate.search.source import OVER_BUDGET_ATTR, REQUEUED_ATTR

    drivers_seen: set[str] = set()

    def slow_train(trial, report, device=None):
        drivers_seen.add(threading.current_thread().name)   # jobs=1: a trial runs in its driver's thread
        deadline = time.time() + 20
        while len(drivers_seen) < 2 and time.time() < deadline:
            time.sleep(0.02)      # the first driver's trial waits until the second driver runs one too
        time.sleep(0.05)
        return fake_train(trial, report, device)

    spec = search_spec(n_trials=8, validate={"top_k": 2})
    Store(store_target, create=True)
    errors, summaries = [], []

    def drive():
        try:
            store = Store(store_target)
            summaries.append(run_experiment(spec, store, executor=InProcessExecutor(run_fn=slow_train))[1])
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    drivers = [threading.Thread(target=drive, name=f"driver{i}") for i in range(2)]
    drivers[0].start()
    deadline = time.time() + 30     # the second starts once the first runs a trial
    while time.time() < deadline:
        if "running" in Store(store_target).trial_statuses("srch").values():
            break
        time.sleep(0.05)
    drivers[1].start()
    for d in drivers:
        d.join()
    assert not errors, errors
    store = Store(store_target)
    study = optuna.load_study(study_name="srch", storage=store.url)
    requeued = [t.number for t in study.trials if t.user_attrs.get(REQUEUED_ATTR) and not t.user_attrs.get(OVER_BUDGET_ATTR)]
    assert not requeued, "a live driver's trial was re-asked"
    counted = [t for t in study.trials if not t.user_attrs.get(OVER_BUDGET_ATTR)]
    assert len(counted) == 8 and all(t.state.name == "COMPLETE" for t in counted)
    attempts = store.attempts_frame("srch")
    assert attempts.trial_id.is_unique, "a trial ran twice"
    assert len(drivers_seen) == 2 and all(s.ran > 0 for s in summaries), "both drivers ran trials"
    validated = store.trials_frame("srch").query("seed != 0")
    # 2 finalists x 3 selection seeds, winner and runner-up x 2 report seeds: had the drivers chosen
    # different winners, more configurations would have run on the report seeds
    assert len(validated) == 2 * 3 + 2 * 2, "each stage's trials ran once, for both drivers"
    assert sorted(validated["reason"].value_counts().tolist()) == [2, 2, 3, 3]
