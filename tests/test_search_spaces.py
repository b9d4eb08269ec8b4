"""Every shipped spec, shrunk to a few CPU batches, plans and trains; the screening design
reports main effects end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.plan import plan
from ablate.report import build_report
from ablate.run.engine import run_trials
from ablate.run.experiment import run_experiment
from ablate.run.inprocess import InProcessExecutor
from ablate.spec import load_spec, spec_from_dict, spec_to_dict
from ablate.store import Store

SPECS = sorted(p.stem for p in (Path(__file__).parent.parent / "search_spaces").glob("*.yaml"))
SMALL_DATA = {"name": "synthetic", "num_classes": 10, "image_size": 16, "channels": 3, "train_size": 48,
              "val_size": 32, "test_size": 32}


def shrink(name: str, *, seeds: int = 1):
    """The spec with tiny data (digits stays digits; files become synthetic), 1 epoch, fewer seeds."""
    raw = spec_to_dict(load_spec_unchecked(name))
    if raw["data"]["name"] == "digits":
        raw["data"] = {**raw["data"], "image_size": 8, "train_size": 64}
    else:
        raw["data"] = {**SMALL_DATA, "crop_padding": raw["data"].get("crop_padding", 0),
                       "flip": raw["data"].get("flip", False)}
    raw["recipe"] = {**raw["recipe"], "epochs": 2, "batch_size": 16}
    for t in raw["tricks"].values():
        if t["use"] == "warmup":
            t["epochs"] = 1
    raw["seeds"] = seeds
    return spec_from_dict(raw, check_files=False)


def load_spec_unchecked(name: str):
    from ablate.spec import parse_spec, resolve_spec_path

    path = resolve_spec_path(name)
    return parse_spec(path.read_text(), source=str(path), default_name=name, check_files=False)


@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_trains_shrunk_through_the_engine(name, tmp_path):
    p = plan(shrink(name))
    assert len(p.arms) >= 2 or p.spec.search is not None   # a search tunes one arm (tests/test_search_run.py)
    store = Store(tmp_path / "s.db", create=True)
    # the baseline and the arm with the most tricks
    trials = [p.trials[0], p.trials[-1]] if len(p.arms) > 1 else [p.trials[0]]
    summary = run_trials(trials, store, InProcessExecutor(device="cpu"))
    assert summary.outcomes == {"complete": len(trials)}, store.trials_frame(p.spec.name).error.tolist()
    frame = store.trials_frame(p.spec.name)
    assert (frame.epochs == 2).all() and frame.val_acc.between(0, 100).all()


def test_quickstart_is_digits_one_trick_at_a_time_six_arms_four_seeds():
    # the README shows this run's real output: keep the two in step
    spec = load_spec("quickstart")
    p = plan(spec)
    assert spec.data.name == "digits" and spec.design.kind == "one_at_a_time"
    assert len(p.arms) == 6 and spec.seeds.values == (0, 1, 2, 3) and len(p.trials) == 24


def test_seven_trick_fractional_design_runs_and_reports_main_effects(tmp_path):
    spec = shrink("digits_screening", seeds=2)
    assert len(spec.tricks) == 7
    store = Store(tmp_path / "f.db", create=True)
    p, summary = run_experiment(spec, store)
    assert len(p.arms) == 16 and summary.outcomes == {"complete": 32}
    report = build_report(store, spec.name)
    eff = report.effects
    mains = eff[eff.order == 1]
    assert sorted(mains.term) == sorted(spec.tricks)
    assert mains.std_err.notna().all() and (mains.ci_low <= mains.estimate).all()
    twos = eff[eff.order == 2]
    assert (twos.aliases != "").all(), "resolution IV: two-trick interactions come in alias chains"
    assert list(eff.estimate.abs()) == sorted(eff.estimate.abs(), reverse=True)
    md = report.markdown()
    assert "### Effects" in md and "Aliased with" in md
