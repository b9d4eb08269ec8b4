"""`recipe: {compile: true}`: the compiled training forward trains what the eager one trains,
its compile time is reported apart, later trials of the same shape reuse its graphs, and
toggling it keeps trial ids and the experiment.

Fast tests compile with torch's "aot_eager" backend (dynamo and AOTAutograd, no code
generation: the same capture, seconds instead of a minute); on the CPU it computes exactly what
eager mode computes. The slow test compiles with Inductor, as users do.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import ablate.compiling
from ablate.errors import CompileError
from ablate.design.plan import plan
from ablate.api import run_experiment
from ablate.design.spec import spec_to_dict
from ablate.store import Store
from ablate.train import batch_sizes, run_trial
from tests.conftest import tiny_spec

SMALL = {"data": {"name": "digits", "image_size": 8, "train_size": 40}, "model": {"name": "convnet", "width": 4},
         "recipe": {"epochs": 2, "batch_size": 16, "lr": 0.05, "eval_batch_size": 512}}


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(ablate.compiling, "BACKEND", "aot_eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _trial(compile_: bool, tricks=None, seed_index: int = 0, **changes):
    recipe = {**SMALL["recipe"], "compile": compile_}
    spec = tiny_spec(data=SMALL["data"], model=SMALL["model"], recipe=recipe, tricks=tricks or {},
                     design={"kind": "explicit", "arms": [[]]}, **changes)
    return plan(spec).trials[seed_index]


def test_batch_sizes_are_the_full_batch_and_the_epochs_last_one():
    assert batch_sizes(40, 16) == [16, 8]
    assert batch_sizes(32, 16) == [16]
    assert batch_sizes(33, 16) == [16]          # a 1-image last batch is dropped (it breaks BN)
    assert batch_sizes(10, 16) == [10]


def test_a_compiled_trial_trains_exactly_what_the_eager_trial_trains_and_reports_compile_time(aot_eager):
    eager, compiled = [], []
    plain = run_trial(_trial(False), eager.append, device="cpu")
    final = run_trial(_trial(True), compiled.append, device="cpu")
    assert "compile_s" not in plain
    assert final["compile_s"] > 0 and final["wall_s"] >= final["compile_s"]
    for a, b in zip(eager, compiled, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert a[key] == b[key], key
        assert b["epoch_s"] < final["wall_s"]
    for key in ("test_acc", "test_loss", "val_acc", "params", "gflops"):
        assert plain[key] == final[key], key


def test_sam_compiles_both_of_its_passes_and_still_matches_eager(aot_eager):
    eager = run_trial(_trial(False, tricks={"sam": {}}), device="cpu")
    compiled = run_trial(_trial(True, tricks={"sam": {}}), device="cpu")
    assert compiled["train_loss"] == eager["train_loss"] and compiled["val_acc"] == eager["val_acc"]


def test_the_next_trial_of_the_same_shape_reuses_the_compiled_graphs(aot_eager):
    from torch._dynamo.utils import counters

    run_trial(_trial(True), device="cpu")
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    run_trial(_trial(True, seeds=2, seed_index=1), device="cpu")   # another seed: another model instance
    assert counters["stats"]["unique_graphs"] == graphs, "the second trial recompiled"


def test_a_backend_failure_fails_the_trial_with_a_message_naming_the_option(monkeypatch):
    def broken(gm, example_inputs):
        raise RuntimeError("no C++ compiler found\nlong traceback")

    monkeypatch.setattr(ablate.compiling, "BACKEND", broken)
    torch._dynamo.reset()
    try:
        with pytest.raises(CompileError) as err:
            run_trial(_trial(True), device="cpu")
    finally:
        torch._dynamo.reset()
    message = str(err.value)
    assert "recipe.compile" in message and "compile: false" in message and "no C++ compiler found" in message
    assert "long traceback" not in message


def test_toggling_compile_keeps_trial_ids_and_the_stored_experiment(tmp_path, aot_eager):
    eager, compiled = _trial(False), _trial(True)
    assert eager.id == compiled.id
    store = Store(tmp_path / "s.db", create=True)
    spec = tiny_spec(data=SMALL["data"], recipe={**SMALL["recipe"], "epochs": 1}, seeds=1)
    run_experiment(spec, store)
    again = tiny_spec(data=SMALL["data"], recipe={**SMALL["recipe"], "epochs": 1, "compile": True}, seeds=1)
    _, summary = run_experiment(again, store)
    assert summary.ran == 0 and not any("different" in n for n in summary.notes)
    assert json.loads(json.dumps(spec_to_dict(again)))["recipe"]["compile"] is True


def test_a_fused_group_compiles_once_and_matches_the_eager_group(aot_eager):
    from ablate.fused.loop import train_group

    spec_tricks = {"ls": {"use": "label_smoothing"}}
    results = {}
    for compile_ in (False, True):
        spec = tiny_spec(data=SMALL["data"], recipe={**SMALL["recipe"], "compile": compile_}, tricks=spec_tricks,
                         model=SMALL["model"], seeds=1)
        trials = plan(spec).trials
        ends = {}
        train_group(trials, lambda k, m: True, lambda k, outcome, payload: ends.__setitem__(k, (outcome, payload)),
                    device="cpu")
        results[compile_] = ends
    for k, (outcome, final) in results[True].items():
        eager_outcome, eager_final = results[False][k]
        assert outcome == eager_outcome == "final"
        assert final["compile_s"] > 0 and "compile_s" not in eager_final
        assert math.isclose(final["train_loss"], eager_final["train_loss"], rel_tol=1e-6)


@pytest.mark.slow
def test_inductor_compiles_a_trial_on_the_cpu_and_agrees_with_eager():
    torch._dynamo.reset()
    eager = run_trial(_trial(False), device="cpu")
    compiled = run_trial(_trial(True), device="cpu")
    # Inductor fuses and reorders floating-point work: equal to float tolerance, not bit for bit
    assert math.isclose(compiled["train_loss"], eager["train_loss"], rel_tol=1e-3)
    assert abs(compiled["val_acc"] - eager["val_acc"]) <= 2 * 100 / 360
    assert compiled["compile_s"] > 0


def test_the_lift_tables_time_column_leaves_out_compile_time_and_says_how_much(tmp_path, aot_eager):
    from ablate.report import build_report

    store = Store(tmp_path / "s.db", create=True)
    spec = tiny_spec(data=SMALL["data"], model=SMALL["model"], recipe={**SMALL["recipe"], "epochs": 1, "compile": True},
                     seeds=1)
    run_experiment(spec, store)
    trials = store.trials_frame(spec.name)
    assert trials["compile_s"].notna().all()
    report = build_report(store, spec.name)
    by_arm = (trials["wall_s"] - trials["compile_s"]).groupby(trials["arm"]).mean()
    assert list(report.lift.frame["time_s"]) == list(by_arm)
    assert any("leaves out torch.compile's time" in n for n in report.lift.notes)
    assert "leaves out torch.compile's time" in report.markdown()
