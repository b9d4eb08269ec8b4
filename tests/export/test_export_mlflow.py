"""`ablate export mlflow`: runs read back with MLflow's own client (params, metric histories with
their steps, tags, artifacts); exporting again updates and never duplicates; MLflow's key and
value limits; the report as the parent run's artifacts; searches."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from ablate.export import collect, export_mlflow
from ablate.export.to_mlflow import MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE, KeyNamer, param_value, tag_value
from ablate.report import build_report
from ablate.design.spec import spec_to_dict
from tests.export.export_helpers import (
    design_spec,
    design_store,
    finish,
    run_epoch,
    value,
)


def _runs(client, exp_id, view=ViewType.ACTIVE_ONLY):
    return client.search_runs([exp_id], run_view_type=view, max_results=1000)


def _trial_runs(client, exp_id, view=ViewType.ACTIVE_ONLY):
    return {r.data.tags["ablate.trial_id"]: r for r in _runs(client, exp_id, view)
            if r.data.tags.get("ablate.kind") == "trial"}


def test_runs_params_metric_histories_tags_and_artifacts_read_back(tmp_path, tracking_uri):
    store, p = design_store(tmp_path / "s.db")
    done = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert (done.created, done.updated, done.unchanged, done.replaced) == (8, 0, 0, 0)
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("tiny")
    assert exp.experiment_id == done.experiment_id and exp.tags["ablate.experiment"] == "tiny"
    runs = _trial_runs(client, exp.experiment_id)
    assert set(runs) == {t.id for t in p.trials}
    for t in p.trials:
        run = runs[t.id]
        params, tags = run.data.params, run.data.tags
        # params: the resolved config flattened with dotted keys, seed, arm label, trick codes
        assert params["recipe.lr"] == "0.05" and params["model.depth"] == "8" and params["data.name"] == "digits"
        assert params["recipe.milestones"] == "[0.5, 0.75]"
        assert params["seed"] == str(t.seed) and params["arm"] == str(t.arm) and params["label"] == t.label
        codes = ["C", "S", "M"][:t.arm]
        assert params["codes"] == ("+".join(codes) or "(none)")
        if t.arm >= 1:
            assert params["tricks.cosine.use"] == "cosine"
        if t.arm >= 3:
            assert float(params["tricks.mixup.alpha"]) == pytest.approx(0.2)
        else:
            assert "tricks.mixup.alpha" not in params
        # metrics per epoch with their step, the final metrics
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert [m.step for m in history] == [1, 2]
        assert [m.value for m in history] == pytest.approx([value(t.arm, t.seed, 1), value(t.arm, t.seed, 2)])
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
        assert run.data.metrics["final.test_acc"] == pytest.approx(value(t.arm, t.seed, 2) + 1.0)
        assert run.data.metrics["final.params"] == pytest.approx(1000.0)
        # tags: status, origin and reason, trial id, experiment, where it ran, its parent
        assert tags["ablate.status"] == "complete" and tags["ablate.origin"] == "design"
        assert tags["ablate.reason"] == "design" and tags["ablate.experiment"] == "tiny"
        assert tags["ablate.env.device"] == "cpu" and tags["mlflow.parentRunId"] == done.summary_run_id
        assert run.info.run_name == f"{t.label} seed {t.seed}" and run.info.status == "FINISHED"
        assert run.info.end_time is not None and run.info.start_time <= run.info.end_time
        folder = tmp_path / "dl" / t.id
        folder.mkdir(parents=True)
        path = client.download_artifacts(run.info.run_id, "config.json", str(folder))
        assert json.loads(open(path, encoding="utf-8").read()) == t.config
    # the parent run holds the report: the same lift table as `ablate report`
    summary = client.get_run(done.summary_run_id)
    assert summary.data.tags["ablate.kind"] == "summary" and summary.data.tags["ablate.report"] == "written"
    names = sorted(f.path for f in client.list_artifacts(done.summary_run_id, "report"))
    assert names == ["report/lift.csv", "report/lift.md", "report/report.html"]
    md = client.download_artifacts(done.summary_run_id, "report/lift.md", str(tmp_path))
    assert open(md, encoding="utf-8").read() == build_report(store, "tiny").markdown()
    spec_json = client.download_artifacts(done.summary_run_id, "spec.json", str(tmp_path))
    assert json.load(open(spec_json)) == json.loads(json.dumps(spec_to_dict(p.spec)))


def test_exporting_again_updates_and_never_duplicates(tmp_path, tracking_uri):
    store, p = design_store(tmp_path / "s.db", running={(2, 0), (3, 1)})
    first = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert first.created == 8
    client = MlflowClient(tracking_uri=tracking_uri)
    runs = _trial_runs(client, first.experiment_id)
    running = [t for t in p.trials if (t.arm, t.seed) in {(2, 0), (3, 1)}]
    for t in running:
        run = runs[t.id]
        assert run.info.status == "RUNNING" and run.data.tags["ablate.status"] == "running"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1]
        assert "final.val_acc" not in run.data.metrics
    again = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert (again.created, again.updated, again.unchanged, again.replaced) == (0, 0, 8, 0)
    # the two trials finish between exports
    for t in running:
        run_epoch(store, "tiny", t, 2)
        finish(store, "tiny", t)
    third = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert (third.created, third.updated, third.unchanged, third.replaced) == (0, 2, 6, 0)
    assert third.summary_run_id == first.summary_run_id
    all_runs = _runs(client, first.experiment_id, ViewType.ALL)
    assert len(all_runs) == 9                       # 8 trials and the summary, none deleted
    runs = _trial_runs(client, first.experiment_id)
    for t in running:
        run = runs[t.id]
        assert run.info.status == "FINISHED" and run.data.tags["ablate.status"] == "complete"
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert [m.step for m in history] == [1, 2]  # epoch 1 once, epoch 2 added
        assert [m.value for m in history] == pytest.approx([value(t.arm, t.seed, 1), value(t.arm, t.seed, 2)])
        assert run.data.metrics["final.val_acc"] == pytest.approx(value(t.arm, t.seed, 2))
    assert export_mlflow(store, "tiny", tracking_uri=tracking_uri).unchanged == 8


def test_a_run_the_store_contradicts_is_replaced_and_stays_single(tmp_path, tracking_uri):
    store, p = design_store(tmp_path / "s.db")
    first = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    t = p.trials[3]
    old = _trial_runs(client, first.experiment_id)[t.id].info.run_id
    # run again (a retry): other values at the same epochs, which MLflow cannot overwrite
    store.start_trial("tiny", t.id, {"device": "cpu"})
    store.add_epoch("tiny", t.id, {"epoch": 1, "val_acc": 10.0})
    store.finish_trial("tiny", t.id, "diverged", error="loss became nan in epoch 2\n" + "x" * 9000)
    again = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert (again.created, again.updated, again.unchanged, again.replaced) == (0, 0, 7, 1)
    runs = _trial_runs(client, first.experiment_id)
    assert len(runs) == 8 and runs[t.id].info.run_id != old
    new = runs[t.id]
    assert [m.value for m in client.get_metric_history(new.info.run_id, "val_acc")] == [10.0]
    assert new.info.status == "FAILED" and new.data.tags["ablate.status"] == "diverged"
    assert new.data.tags["ablate.attempts"] == "2" and len(new.data.tags["ablate.error"]) == MAX_TAG_VALUE
    assert new.data.tags["ablate.error"].endswith("x" * 100)
    assert "final.val_acc" not in new.data.metrics
    deleted = _runs(client, first.experiment_id, ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [old]
    # a relabelled arm (its trick code changed; the trial ids stay): params cannot change, so replaced
    relabelled = design_spec(tricks={"cosine": {"code": "COS"}, "label_smoothing": {}, "mixup": {}})
    store.save_experiment("tiny", json.dumps(spec_to_dict(relabelled)), None)
    third = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert (third.created, third.replaced) == (0, 6)   # every arm but the baseline holds cosine
    runs = _trial_runs(client, first.experiment_id)
    assert len(runs) == 8 and {r.data.params["codes"] for r in runs.values()} == {"(none)", "COS", "COS+S",
                                                                                   "COS+S+M"}


def test_a_duplicate_run_of_one_trial_is_deleted(tmp_path, tracking_uri):
    store, p = design_store(tmp_path / "s.db")
    first = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    client.create_run(first.experiment_id, tags={"ablate.trial_id": p.trials[0].id, "ablate.kind": "trial"})
    again = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    assert again.duplicates_removed == 1 and len(_trial_runs(client, first.experiment_id)) == 8


def test_the_limits_are_mlflows_own():
    from mlflow.utils import validation

    assert (MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE) == (validation.MAX_ENTITY_KEY_LENGTH,
                                                         validation.MAX_PARAM_VAL_LENGTH, validation.MAX_TAG_VAL_LENGTH)
    for name in ("recipe.lr", "acc@1 (top)", "/abs", "a//b", "../up", "x" * 300, "tab\there", "ünï"):
        key = KeyNamer()(name)
        validation._validate_param_name(key)      # MLflow's own check of a key: raises if it would refuse it
        validation._validate_metric_name(key)


def test_mlflow_key_and_value_rules():
    namer = KeyNamer()
    assert namer("recipe.lr") == "recipe.lr" and namer("a b/c-d_e") == "a b/c-d_e"
    assert namer("acc@1 (top)") == "acc_1 _top_"
    assert namer("acc#1 (top)").startswith("acc_1 _top_-")      # would equal another: made distinct
    assert namer("acc@1 (top)") == "acc_1 _top_"                  # the same name, the same key
    for bad in ("/abs", "a//b", "../up", ".", "a/./b"):
        key = namer(bad)
        assert "/" not in key and ".." not in key and key not in ("", ".")
    long = namer("x" * 300)
    assert len(long) == MAX_KEY and long != namer("x" * 299 + "y") and long[MAX_KEY - 9] == "-"
    assert param_value(0.5) == "0.5" and param_value(True) == "true" and param_value(None) == "null"
    cut = param_value("v" * 7000)
    assert len(cut) == MAX_PARAM_VALUE and cut.endswith("the whole config is in config.json)")
    assert tag_value("e" * 10) == "e" * 10
    assert len(tag_value("a" + "e" * 9000)) == MAX_TAG_VALUE and tag_value("a" + "e" * 9000).startswith("...")


def test_odd_metric_names_and_long_values_reach_mlflow(tmp_path, tracking_uri):
    store, p = design_store(tmp_path / "s.db")
    t = p.trials[0]
    store.start_trial("tiny", t.id, {"device": "cpu", "note": "n" * 9000})
    run_epoch(store, "tiny", t, 1)
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 1.0, "top-1 acc (%)": 2.0,
                                                          "acc@1 (top)": 3.0})
    done = export_mlflow(store, "tiny", tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    run = _trial_runs(client, done.experiment_id)[t.id]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "acc_1 _top_")] == [0.5]
    assert run.data.metrics["final.top-1 acc ___"] == 2.0 and run.data.metrics["final.acc_1 _top_"] == 3.0
    assert len(run.data.tags["ablate.env.note"]) == MAX_TAG_VALUE


def test_search_exports_the_trials_of_every_stage_with_their_values(tmp_path, tracking_uri):
    from ablate.api import run_experiment
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.store import Store
    from tests.search_helpers import fake_train, search_spec

    store = Store(tmp_path / "s.db", create=True)
    spec = search_spec(n_trials=3, validate={"top_k": 2}, compare_to={"recipe.lr": 0.1})
    run_experiment(spec, store, executor=InProcessExecutor(run_fn=fake_train))
    data = collect(store, "srch")
    done = export_mlflow(store, "srch", tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    runs = _trial_runs(client, done.experiment_id)
    assert len(runs) == len(data.trials) == len(store.trials_frame("srch"))
    origins = {r.data.tags["ablate.origin"] for r in runs.values()}
    assert origins == {"search", "select", "report"}      # the stages: ablate.design.stages
    for rec in data.trials:
        run = runs[rec.trial_id]
        values = rec.config["values"]
        assert float(run.data.params["values.recipe.lr"]) == pytest.approx(values["recipe.lr"])
        assert float(run.data.params["recipe.lr"]) == pytest.approx(values["recipe.lr"])
        assert run.data.tags["ablate.reason"] == rec.reason and run.info.run_name.startswith(rec.reason)
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1, 2]
    study_trials = [r for r in runs.values() if r.data.tags["ablate.reason"].startswith("search: study trial")]
    assert len(study_trials) == 3
    names = {f.path for f in client.list_artifacts(done.summary_run_id, "report")}
    assert {"report/search.md", "report/history.csv", "report/report.html"} <= names
