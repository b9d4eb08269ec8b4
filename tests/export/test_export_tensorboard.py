"""`ablate export tensorboard`: event files read back with TensorBoard's EventAccumulator (scalars
per epoch, the HParams plugin's data), TensorBoard's own HParams backend grouping seeds by arm,
and re-export replacing what ablate wrote and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from ablate.errors import AblateError
from ablate.export import collect, export_tensorboard
from ablate.export.to_tensorboard import MANIFEST, hparam_keys, run_folders, safe_name
from ablate.design.spec import spec_to_dict
from tests.export.export_helpers import design_spec, design_store, finish, run_epoch, value


def _accumulator(path):
    ea = EventAccumulator(str(path), size_guidance={"tensors": 0, "scalars": 0})
    ea.Reload()
    return ea


def _hparams(ea):
    return {tag: content for tag, content in ea.PluginTagToContent(metadata.PLUGIN_NAME).items()}


def _event_files(folder):
    return sorted(p.name for p in folder.glob("events.out.tfevents.*"))


def test_scalars_per_epoch_and_hparams_read_back(tmp_path):
    store, p = design_store(tmp_path / "s.db", running={(3, 1)})
    done = export_tensorboard(store, "tiny", tmp_path / "tb")
    folders = run_folders(collect(store, "tiny").trials)
    assert sorted(done.runs) == sorted(folders.values()) and len(done.runs) == 8
    for t in p.trials:
        folder = tmp_path / "tb" / folders[t.id]
        assert folders[t.id] == f"{safe_name(t.label)}/seed{t.seed}"
        assert len(_event_files(folder)) == 1
        ea = _accumulator(folder)
        epochs = 1 if (t.arm, t.seed) == (3, 1) else 2
        scalars = ea.Scalars("epoch/val_acc")
        assert [s.step for s in scalars] == list(range(1, epochs + 1))
        assert [s.value for s in scalars] == pytest.approx([value(t.arm, t.seed, e) for e in range(1, epochs + 1)])
        assert [s.step for s in ea.Scalars("epoch/train_loss")] == list(range(1, epochs + 1))
        content = _hparams(ea)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        hp = {k: v for k, v in start.hparams.items()}
        assert hp["label"].string_value == t.label and hp["arm"].number_value == t.arm
        assert hp["codes"].string_value == ("+".join(["C", "S", "M"][:t.arm]) or "(none)")
        assert "seed" not in hp and "recipe.lr" not in hp          # the same in every trial: in ablate/config
        assert start.group_name == t.label                          # seeds of an arm: one session group
        if epochs == 2:
            assert ea.Scalars("final/test_acc")[0].value == pytest.approx(value(t.arm, t.seed, 2) + 1.0)
            end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
            assert end.status == api_pb2.STATUS_SUCCESS
        else:                                                       # still running: no final, no end
            assert "final/test_acc" not in ea.Tags()["scalars"]
            assert metadata.SESSION_END_INFO_TAG not in content
        assert {"ablate/trial/text_summary", "ablate/config/text_summary"} <= set(ea.Tags()["tensors"])
    root = _accumulator(tmp_path / "tb")
    experiment = metadata.parse_experiment_plugin_data(_hparams(root)[metadata.EXPERIMENT_TAG])
    infos = {h.name: h for h in experiment.hparam_infos}
    assert set(infos) >= {"arm", "label", "codes", "tricks.mixup.alpha", "tricks.cosine.use"}
    assert [v.string_value for v in infos["label"].domain_discrete.values] == sorted(a.label for a in p.arms)
    assert {m.name.tag for m in experiment.metric_infos} == {"final/val_acc", "final/test_acc", "final/params",
                                                            "final/wall_s"}
    assert "ablate/report/text_summary" in root.Tags()["tensors"]
    manifest = json.loads((tmp_path / "tb" / MANIFEST).read_text())
    assert manifest["experiment"] == "tiny" and sorted(manifest["runs"]) == sorted(done.runs)
    assert manifest["files"] == _event_files(tmp_path / "tb")


TENSORBOARD_PROBE = textwrap.dedent("""
    import json, sys, time, urllib.request
    from tensorboard import program
    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", sys.argv[1], "--host", "127.0.0.1", "--port", "0",
                       "--load_fast", "false", "--reload_interval", "0"])
    url = tb.launch()
    assert url.startswith("http://127.0.0.1:"), url
    def post(path, body):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=30).read())
    for _ in range(60):
        exp = post("data/plugin/hparams/experiment", {"experimentName": ""})
        if exp.get("hparamInfos"):
            break
        time.sleep(0.5)
    groups = post("data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
        "STATUS_RUNNING"], "colParams": [], "aggregationType": "AGGREGATION_AVG", "startIndex": 0,
        "sliceSize": 100})
    print(json.dumps({"experiment": exp, "groups": groups}))
""")


def test_tensorboards_hparams_view_compares_arms_over_seeds(tmp_path):
    """TensorBoard itself (its HParams backend, on 127.0.0.1) reads the export: one session group
    per arm, its seeds as sessions, the metric averaged over them."""
    store, p = design_store(tmp_path / "s.db")
    export_tensorboard(store, "tiny", tmp_path / "tb")
    out = subprocess.run([sys.executable, "-c", TENSORBOARD_PROBE, str(tmp_path / "tb")], capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    names = {h["name"] for h in answer["experiment"]["hparamInfos"]}
    assert {"arm", "label", "codes"} <= names and "seed" not in names
    groups = {g["name"]: g for g in answer["groups"]["sessionGroups"]}
    assert set(groups) == {a.label for a in p.arms}
    for a in p.arms:
        g = groups[a.label]
        assert sorted(s["name"] for s in g["sessions"]) == [f"{safe_name(a.label)}/seed{s}" for s in p.seeds]
        assert g["hparams"]["label"] == a.label
        mean = {m["name"]["tag"]: m["value"] for m in g["metricValues"]}
        assert mean["final/val_acc"] == pytest.approx(sum(value(a.index, s, 2) for s in p.seeds) / len(p.seeds))


def test_reexport_replaces_what_ablate_wrote_and_keeps_the_users_files(tmp_path):
    store, p = design_store(tmp_path / "s.db", running={(1, 0)})
    logdir = tmp_path / "tb"
    logdir.mkdir()
    (logdir / "notes.txt").write_text("mine")
    (logdir / "my_run").mkdir()
    (logdir / "my_run" / "events.out.tfevents.1.mine").write_text("x")
    first = export_tensorboard(store, "tiny", logdir)
    root_files = _event_files(logdir)
    t = next(t for t in p.trials if (t.arm, t.seed) == (1, 0))
    run_epoch(store, "tiny", t, 2)
    finish(store, "tiny", t)
    again = export_tensorboard(store, "tiny", logdir)
    assert again.removed == 8 and sorted(again.runs) == sorted(first.runs)
    for name in again.runs:
        assert len(_event_files(logdir / name)) == 1                # replaced, not appended to
    ea = _accumulator(logdir / f"{safe_name(t.label)}/seed0")
    assert [s.step for s in ea.Scalars("epoch/val_acc")] == [1, 2]
    assert len(_event_files(logdir)) == 1 and _event_files(logdir) != root_files
    assert (logdir / "notes.txt").read_text() == "mine" and (logdir / "my_run" / "events.out.tfevents.1.mine").exists()
    # trials the current spec no longer has: their folders go with the re-export
    store.save_experiment("tiny", json.dumps(spec_to_dict(design_spec(tricks={"cosine": {}, "label_smoothing": {}}))),
                          None)
    third = export_tensorboard(store, "tiny", logdir)
    assert len(third.runs) == 6 and third.left_out == 2
    assert not (logdir / safe_name(p.arms[3].label)).exists()


def test_a_users_folder_in_the_way_or_another_experiment_stops_the_export(tmp_path):
    store, p = design_store(tmp_path / "s.db")
    logdir = tmp_path / "tb"
    (logdir / safe_name(p.arms[0].label) / "seed0").mkdir(parents=True)
    with pytest.raises(AblateError, match=r"already has ResNet8-w8/seed0, which an ablate export did not write; "
                                          r"nothing was written"):
        export_tensorboard(store, "tiny", logdir)
    assert sorted(x.name for x in logdir.iterdir()) == [safe_name(p.arms[0].label)]
    other = tmp_path / "other"
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"experiment": "quickstart", "runs": [], "files": []}))
    with pytest.raises(AblateError, match=r"holds the TensorBoard export of experiment 'quickstart'.*"
                                          r"--logdir .*other/tiny"):
        export_tensorboard(store, "tiny", other)
    assert [x.name for x in other.iterdir()] == [MANIFEST]


def test_a_tampered_manifest_cannot_reach_outside_the_logdir(tmp_path):
    store, _ = design_store(tmp_path / "s.db")
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "f").write_text("x")
    logdir = tmp_path / "tb"
    logdir.mkdir()
    (logdir / MANIFEST).write_text(json.dumps({"experiment": "tiny", "runs": ["../keep", str(outside)],
                                               "files": ["../keep/f"]}))
    export_tensorboard(store, "tiny", logdir)
    assert (outside / "f").read_text() == "x"


def test_search_trials_get_folders_by_stage_and_values_as_hparams(tmp_path):
    from ablate.api import run_experiment
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.store import Store
    from tests.search_helpers import fake_train, search_spec

    store = Store(tmp_path / "s.db", create=True)
    run_experiment(search_spec(n_trials=3, validate={"top_k": 2}), store,
                   executor=InProcessExecutor(run_fn=fake_train))
    data = collect(store, "srch")
    done = export_tensorboard(store, "srch", tmp_path / "tb")
    assert len(done.runs) == len(data.trials) == len(set(done.runs))
    assert {r.split("/")[0] for r in done.runs} == {"search", "select", "report"}
    assert any("/study trial 0/" in r for r in done.runs) and any("/finalist 1/" in r for r in done.runs)
    assert any("/winner/" in r for r in done.runs) and any("/runner-up/" in r for r in done.runs)
    keys = hparam_keys(data.trials)
    assert {"values.recipe.lr", "values.tricks.mixup.alpha"} <= set(keys)
    folders = run_folders(data.trials)
    for rec in data.trials:
        content = _hparams(_accumulator(tmp_path / "tb" / folders[rec.trial_id]))
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        assert start.hparams["values.recipe.lr"].number_value == pytest.approx(rec.config["values"]["recipe.lr"])


def test_a_postgresql_store_exports_too(tmp_path, pg_url):
    store, p = design_store(pg_url)
    done = export_tensorboard(store, "tiny", tmp_path / "tb")
    assert len(done.runs) == 8
    ea = _accumulator(tmp_path / "tb" / f"{safe_name(p.arms[2].label)}/seed1")
    assert [s.value for s in ea.Scalars("epoch/val_acc")] == pytest.approx([value(2, 1, 1), value(2, 1, 2)])
