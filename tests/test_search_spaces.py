"""Every shipped spec, shrunk to a few CPU batches (ablate.design.shrink, the `--shrink` of the command
line), plans and trains; shrunk on digits, each runs end to end from the command line; the
screening design reports main effects end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.design.plan import plan
from ablate.report import build_report
from ablate.runner.engine import run_trials
from ablate.api import run_experiment
from ablate.runner.inprocess import InProcessExecutor
from ablate.design.shrink import SHRUNK_SEARCH_TRIALS, load_run_spec
from ablate.design.spec import load_spec
from ablate.store import Store

SPECS = sorted(p.stem for p in (Path(__file__).parent.parent / "search_spaces").glob("*.yaml"))
# Specs of one arm by design: a distillation teacher, and the model zoo (one network per run,
# the others by --override model=...; see their headers).
ONE_ARM = {"imagenet_resnet152_teacher", "cifar10_model_zoo"}
# The overrides each spec's header documents for a run without its files beyond the data:
# pretrained weights from torchvision's cache become none (the tests never download, and the
# cache may be empty); the ResNet-152 teacher becomes a ResNet-18 so its shrunk run is quick;
# colour jitter's saturation needs colour digits where `--override data=digits` would give grey.
TEST_OVERRIDES = {
    "intel_scenes_tricks": ["model.weights=null"],
    "intel_scenes_efficientnet": ["model.weights=null"],
    "intel_scenes_regnet": ["model.weights=null"],
    "imagenet_resnet152_teacher": ["model.arch=resnet18", "data.channels=3"],
    "imagenet_resnet50_tricks": ["data.channels=3"],
}
# A student whose distillation teacher is a trial of another shipped spec: the teacher runs
# first (shrunk, same store) and the student's reference names the shrunk teacher's trial.
TEACHERS = {"imagenet_resnet50_tricks": (
    "imagenet_resnet152_teacher",
    "tricks.distill.trial=imagenet_resnet152_teacher-shrunk/ResNet-152@0")}


def shrink(name: str, *, seeds: int = 1):
    """The spec as `ablate run NAME --override data.image_size=8 --shrink` runs it (digits for data
    on disk, 1 epoch, 64 training images; see ablate/design/shrink.py), with `seeds` seeds and the
    overrides above (TEST_OVERRIDES, the shrunk teacher's reference)."""
    extra = TEST_OVERRIDES.get(name, []) + ([TEACHERS[name][1]] if name in TEACHERS else [])
    spec = load_run_spec(name, overrides=["data.image_size=8", *extra], shrink=True)
    return spec if seeds == 1 else spec.with_changes(seeds=seeds)


def run_teacher_shrunk(name: str, store: Store, weights_root: Path) -> None:
    """Train the shrunk teacher `name` needs, if any, saving its final weights under weights_root."""
    if name not in TEACHERS:
        return
    teacher = plan(shrink(TEACHERS[name][0]))
    assert teacher.spec.save == "final"
    summary = run_trials(teacher.trials, store, InProcessExecutor(device="cpu", weights_root=weights_root,
                                                                  save_final=True))
    assert summary.outcomes == {"complete": len(teacher.trials)}


# Shrunk runs that take more than a few seconds on a CPU: ImageNet-size networks (even on
# 16-px digits) and WRN-28-10's width; each still plans in
# test_shipped_spec_plans_and_its_header_says_what_and_how.
SLOW_SHRUNK = {"imagenet_resnet50_tricks", "imagenet_resnet152_teacher", "imagenet_attention", "intel_scenes_tricks",
               "intel_scenes_efficientnet", "intel_scenes_regnet", "cifar10_wrn_regularizers", "cifar10_model_zoo"}
# The reference experiments of issue 10: each header names its write-up and what differs from it.
REFERENCE_SPECS = {"intel_scenes_tricks", "intel_scenes_efficientnet", "intel_scenes_regnet", "imagenet_resnet50_tricks",
                   "imagenet_resnet152_teacher", "imagenet_attention", "cifar10_wrn_regularizers", "cifar10_model_zoo"}
SHRUNK_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SHRUNK else n for n in SPECS]


@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_plans_and_its_header_says_what_and_how(name):
    spec = load_spec(name, check_files=False)
    p = plan(spec)
    assert len(p.trials) == len(p.arms) * len(spec.seeds.values) or spec.search is not None
    path = Path(__file__).parent.parent / "search_spaces" / f"{name}.yaml"
    header = path.read_text().split("\nname:", 1)[0]
    assert header.startswith(f"# {name}: ")                    # what it reproduces, first
    assert f"ablate run {name}" in header                       # the exact command
    if name in REFERENCE_SPECS:
        assert "write-up 00" in header and "Differences from the write-up" in header


@pytest.mark.parametrize("student", sorted(TEACHERS))
def test_distillation_spec_names_its_shipped_teachers_saved_trial(student):
    # the unshrunk reference must find the teacher spec's saved trial: <experiment>/<label>@<seed>
    teacher = plan(load_spec(TEACHERS[student][0], check_files=False))
    assert teacher.spec.save == "final" and len(teacher.trials) == 1
    t = teacher.trials[0]
    ref = load_spec(student, check_files=False).tricks["distill"].params.trial
    assert ref == f"{teacher.spec.name}/{teacher.arms[t.arm].label}@{t.seed}"
    assert TEACHERS[student][1] == f"tricks.distill.trial={teacher.spec.name}-shrunk/{teacher.arms[t.arm].label}@{t.seed}"


@pytest.mark.parametrize("name", SHRUNK_PARAMS)
def test_shipped_spec_trains_shrunk_through_the_engine(name, tmp_path):
    p = plan(shrink(name))
    # a search tunes one arm (tests/search/test_search_run.py)
    assert len(p.arms) >= 2 or p.spec.search is not None or name in ONE_ARM
    store = Store(tmp_path / "s.db", create=True)
    run_teacher_shrunk(name, store, tmp_path / "weights")
    # the baseline and the arm with the most tricks
    trials = [p.trials[0], p.trials[-1]] if len(p.arms) > 1 else [p.trials[0]]
    summary = run_trials(trials, store, InProcessExecutor(device="cpu", weights_root=tmp_path / "weights"))
    assert summary.outcomes == {"complete": len(trials)}, store.trials_frame(p.spec.name).error.tolist()
    frame = store.trials_frame(p.spec.name)
    assert (frame.epochs == p.spec.recipe.epochs).all() and frame.val_acc.between(0, 100).all()


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


@pytest.mark.slow   # every arm of every shipped spec: a few minutes on 2 CPU cores
@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_runs_end_to_end_shrunk_on_digits(name, tmp_path, capsys, monkeypatch):
    from ablate.cli import main

    monkeypatch.chdir(tmp_path)   # the report goes to reports/<name>-shrunk here
    store = tmp_path / "s.db"
    if name in TEACHERS:   # the teacher first, in the same store, as the student's header says
        teacher = TEACHERS[name][0]
        overrides = [a for o in TEST_OVERRIDES.get(teacher, []) for a in ("--override", o)]
        assert main(["run", teacher, "--override", "data=digits", "--override", "data.image_size=8", *overrides,
                     "--shrink", "--store", str(store), "--no-report"]) == 0, capsys.readouterr().err
    extra = TEST_OVERRIDES.get(name, []) + ([TEACHERS[name][1]] if name in TEACHERS else [])
    overrides = [a for o in extra for a in ("--override", o)]
    assert main(["run", name, "--override", "data=digits", "--override", "data.image_size=8", *overrides,
                 "--shrink", "--store", str(store)]) == 0, capsys.readouterr().err
    frame = Store(store).trials_frame(f"{name}-shrunk")
    spec = load_spec(name, check_files=False)
    if spec.search is None:
        assert len(frame) == len(plan(spec).arms)
    else:   # at most SHRUNK_SEARCH_TRIALS samples, then each stage on the shrunk seeds (search.stages)
        from ablate.design.stages import stage_trials
        from ablate.design.shrink import shrink_spec

        shrunk = shrink_spec(spec)
        assert 1 <= len(frame) <= sum(stage_trials(shrunk, len(plan(shrunk).arms)).values())
    assert (frame.status == "complete").all(), frame.error.tolist()
    report = "lift.md" if spec.search is None else "search.md"
    assert (tmp_path / "reports" / f"{name}-shrunk" / report).is_file()
