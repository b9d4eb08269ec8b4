"""The public API (`import ablate`): the notebook quickstart, every function from Python, and the
errors a user can cause."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import ablate
from tests.conftest import tiny_dict

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["recipe.epochs=1", "data.train_size=64", "data.image_size=8", "seeds=2"]


def test_import_ablate_loads_no_heavy_library():
    code = ("import sys, ablate; ablate.__all__; dir(ablate); ablate.AblateError; "
            "print(sorted(m for m in ('torch', 'optuna', 'ray', 'plotly', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_is_documented():
    names = {"load_spec", "plan", "run", "open_store", "trials", "epochs", "lift_table", "effects", "finalists",
             "status", "build_report", "write_report", "AblateError", "SpecError", "StoreError", "CompileError"}
    assert names <= set(ablate.__all__) and names <= set(dir(ablate))
    for name in ablate.__all__:
        value = getattr(ablate, name)
        if callable(value) and name[0].islower():
            doc = getattr(ablate.api, name).__doc__
            assert doc and all(f"{part}:" in doc for part in ("Args", "Returns", "Raises", "Example")), name
    assert issubclass(ablate.CompileError, ablate.AblateError)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ablate.nope


def test_plan_and_run_are_the_api_functions_whatever_was_imported_before():
    import importlib.util

    import ablate.design.plan
    import ablate.runner.engine  # noqa: F401

    # no module of the package takes an API function's name (the engine is ablate.runner)
    assert importlib.util.find_spec("ablate.run") is None and importlib.util.find_spec("ablate.plan") is None
    assert ablate.plan is ablate.api.plan and ablate.run is ablate.api.run
    assert len(ablate.plan("quickstart").trials) == 24
    with pytest.raises(ablate.AblateError, match="jobs must be an integer >= 1, got 0"):
        ablate.run("quickstart", store="never.db", jobs=0)


def test_the_notebook_quickstart_at_toy_scale(tmp_path, monkeypatch):
    """The five lines of the README, on a smaller quickstart (the full one is the slow test below)."""
    monkeypatch.chdir(tmp_path)
    spec = ablate.load_spec("quickstart", overrides=SMALL)
    result = ablate.run(spec, store="ablate.db")
    assert isinstance(result.lift, pd.DataFrame) and len(result.lift) == 6
    assert result.exit_code == 0 and result.ok and result.complete == 12 and result.failed == 0
    assert sorted(p.name for p in result.paths) == ["lift.csv", "lift.md", "report.html"]
    assert (tmp_path / "reports" / "quickstart" / "lift.md").read_text() == result.report.markdown()

    # the stored results, from Python
    store = ablate.open_store("ablate.db")
    trials = ablate.trials(store, "quickstart")
    assert len(trials) == 12 and set(trials["status"]) == {"complete"}
    assert len(ablate.epochs("ablate.db", "quickstart")) == 12      # one epoch each
    lift = ablate.lift_table("ablate.db", "quickstart", test="wilcoxon", confidence=0.9)
    assert list(lift["label"]) == list(result.lift["label"])
    pd.testing.assert_series_equal(lift["val_mean"], result.lift["val_mean"], rtol=1e-12)
    assert not lift["lift"].equals(lift["lift_low"])
    st = ablate.status("ablate.db")
    assert st.to_dict("records") == [{"experiment": "quickstart", "kind": "one_at_a_time", "trials": 12,
                                      "complete": 12, "failed": 0, "diverged": 0, "pruned": 0, "running": 0,
                                      "pending": 0, "driver_gone": 0, "earlier": 0}]
    report = ablate.build_report(store, "quickstart", test="t", confidence=0.95, diverged="worst",
                                 columns=["params"])
    paths = ablate.write_report(report, tmp_path / "again", formats=("md", "json"))
    assert [p.name for p in paths] == ["lift.md", "report.json"]

    # a rerun resumes: nothing runs again, the same table
    again = ablate.run(spec, store="ablate.db", report=False)
    assert again.summary.ran == 0 and again.report is None and again.lift is None


def test_effects_and_finalists_say_which_kind_of_experiment_they_need(tmp_path):
    db = str(tmp_path / "a.db")
    ablate.run(tiny_dict(recipe={"epochs": 1}), store=db, report=False)
    with pytest.raises(ablate.ReportError, match="'tiny' is a one_at_a_time design; effects need a factorial"):
        ablate.effects(db, "tiny")
    with pytest.raises(ablate.ReportError, match="not a search; finalists are a search's"):
        ablate.finalists(db, "tiny")
    ablate.run(tiny_dict(name="fact", recipe={"epochs": 1}, design={"kind": "full_factorial"}), store=db,
               report=False)
    eff = ablate.effects(db, "fact")
    assert {"cosine", "label_smoothing"} <= set(eff["term"])


@pytest.mark.parametrize("call, error, message", [
    (lambda: ablate.load_spec("quickstrt"), "SpecError", "no spec file 'quickstrt' (did you mean 'quickstart'?)"),
    (lambda: ablate.load_spec({"name": "x", "recipe": {"epochs": 1}}), "SpecError",
     "<dict>, field 'data': the 'data' section is required"),
    (lambda: ablate.load_spec("name: x\ndata: digits"), "SpecError", "not YAML text"),
    (lambda: ablate.load_spec(3), "SpecError", "a dict or a Spec; got a int"),
    (lambda: ablate.load_spec("quickstart", overrides="seeds=2"), "SpecError", "write overrides=['seeds=2']"),
    (lambda: ablate.load_spec("quickstart", overrides=["recipe.epochs=zero"]), "SpecError",
     "field 'recipe.epochs'"),
    (lambda: ablate.open_store("foo://bar"), "StoreError", "cannot use store 'foo://bar'"),
    (lambda: ablate.open_store(""), "StoreError", "got an empty string"),
    (lambda: ablate.trials("nowhere/none.db", "x"), "StoreError", "does not exist"),
    (lambda: ablate.run("quickstart", store="x.db", runner="slurm"), "AblateError", "unknown runner 'slurm'"),
    (lambda: ablate.run("quickstart", store="x.db", fuse="yes"), "AblateError", "fuse must be auto, on or off"),
    (lambda: ablate.run("quickstart", store="x.db", device="tpu"), "AblateError", "device 'tpu' is not a device"),
])
def test_bad_input_raises_the_right_error_and_writes_nothing(tmp_path, monkeypatch, call, error, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(getattr(ablate, error)) as exc:
        call()
    assert message in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_experiment_and_bad_options_on_a_store(tmp_path):
    db = str(tmp_path / "a.db")
    ablate.run(tiny_dict(recipe={"epochs": 1}, seeds=1), store=db, report=False)
    with pytest.raises(ablate.ReportError, match=r"no experiment 'tinny' in store .*did you mean 'tiny'"):
        ablate.lift_table(db, "tinny")
    with pytest.raises(ablate.ReportError, match="unknown column"):
        ablate.build_report(db, "tiny", columns=["colour"])
    with pytest.raises(ablate.ReportError, match="give one experiment, or compare=True"):
        ablate.build_report(db, ["tiny", "tiny"])
    with pytest.raises(ablate.ReportError, match="unknown report format"):
        ablate.write_report(ablate.build_report(db, "tiny"), tmp_path / "r", formats="pdf")
    with pytest.raises(ablate.ReportError, match="experiments are named by strings"):
        ablate.status(db, [3])


@pytest.mark.slow
def test_the_five_notebook_lines_reproduce_the_quickstarts_lift_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = ablate.run("quickstart", store="ablate.db")
    assert result.exit_code == 0 and result.complete == 24
    assert len(result.lift) == 6

    def numbers(text: str) -> list[list[str]]:   # the first table's cells, the time column left out
        rows = [line for line in text.split("\n\n")[1].splitlines() if line.startswith("| ResNet")]
        return [row.strip("|").split("|")[:-1] for row in rows]

    expected = (ROOT / "reports" / "quickstart" / "lift.md").read_text()
    assert numbers(result.report.markdown()) == numbers(expected)


def test_the_long_functions_the_review_named_are_split():
    """nni/convert.py:convert_dict (178 lines), report/frames.py:lift_table (156) and
    fused/loop.py:_train_group (121) are each a short function calling named steps."""
    import ast

    limits = {"nni/convert.py": "convert_dict", "report/frames.py": "lift_table", "fused/loop.py": "_train_group"}
    root = Path(ablate.__file__).parent
    for path, name in limits.items():
        (node,) = [n for n in ast.walk(ast.parse((root / path).read_text()))
                   if isinstance(n, ast.FunctionDef) and n.name == name]
        assert node.end_lineno - node.lineno + 1 <= 70, f"{path}:{name} has {node.end_lineno - node.lineno + 1} lines"


def test_the_other_commands_are_library_calls_too(tmp_path, monkeypatch):
    """tricks, models, lr-find, import-nni, logs and export: what the CLI prints comes from these."""
    monkeypatch.chdir(tmp_path)
    assert list(ablate.api.tricks(["mixup", "cosine"])) == ["mixup", "cosine"]
    assert {p["name"] for p in ablate.api.tricks(["mixup"])["mixup"].describe_params()} >= {"alpha"}
    assert len(ablate.api.tricks()) > 20
    with pytest.raises(ablate.AblateError, match="nope"):
        ablate.api.tricks(["nope"])
    assert "cifar_resnet (depth=20)" in {r["model"] for r in ablate.api.models()}

    conversion, text = ablate.api.import_nni(ROOT / "tests" / "nni" / "nni_example" / "config_v2.yml", "spec.yaml")
    assert (tmp_path / "spec.yaml").read_text() == text and conversion.notes
    shutil.copytree(ROOT / "tests" / "nni" / "nni_example", tmp_path / "nni")
    with pytest.raises(ablate.AblateError, match="is the NNI config itself"):
        ablate.api.import_nni(tmp_path / "nni" / "config_v2.yml", tmp_path / "nni" / "config_v2.yml")

    spec = ablate.load_spec("quickstart", overrides=SMALL)
    with pytest.raises(ablate.AblateError, match="--steps must be >= 5"):
        ablate.api.lr_find(spec, steps=4)
    seen = []
    found = ablate.api.lr_find(spec, start=1e-3, end=1.0, steps=6, on_start=seen.append)
    assert seen == [found.trial] and all(p.exists() for p in found.paths) and len(found.result.lrs) <= 6

    result = ablate.run(spec, store="ablate.db", report=False)
    assert result.complete == 12
    assert ablate.api.logs("ablate.db", spec.name) == (f"{spec.name}: no failed attempt (12 complete); "
                                                       f"`ablate logs {spec.name} TRIAL` shows any trial's attempts")
    first = ablate.trials("ablate.db", spec.name)["trial_id"].iloc[0]
    assert first[:8] in ablate.api.logs("ablate.db", spec.name, first[:8])
    done = ablate.api.export("ablate.db", spec.name, "tensorboard", logdir=tmp_path / "tb")
    assert spec.name in done.describe(spec.name) and any((tmp_path / "tb").iterdir())
    with pytest.raises(ablate.AblateError, match="choose mlflow or tensorboard"):
        ablate.api.export("ablate.db", spec.name, "wandb")
