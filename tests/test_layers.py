"""The import structure (DESIGN.md's layers): import-linter's contracts hold, and break on an
upward import (also one inside a function); no import cycles; the pieces the layering moved keep
their rules (the one metric-direction rule, the trick hooks for saved weights, spec messages
without the registries, where a store's weights go)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ablate.config.metric import BUILTIN_METRICS, metric_direction, required_direction

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
# ../shared beside the clone (CI), or beside the folder of worktrees
CYCLES = next((p for p in (ROOT.parent / "shared" / "tools" / "import_cycles.py",
                           ROOT.parent.parent / "shared" / "tools" / "import_cycles.py") if p.exists()),
              ROOT.parent / "shared" / "tools" / "import_cycles.py")


def _lint(root: Path) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_import_contracts_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("where, line, broken", [
    # config (the bottom layer) reaching up to the search, at the top of the module
    ("ablate/config/metric.py", "import ablate.search.study\n", "ablate.config is not allowed to import ablate.search"),
    # a late import counts as much as any other
    ("ablate/models/weights.py", "def _late():\n    from ablate.store import Store\n",
     "ablate.models is not allowed to import ablate.store"),
    # the run engine calling into a search
    ("ablate/runner/engine.py", "def _late():\n    from ablate.search.runner import run_search\n",
     "ablate.runner is not allowed to import ablate.search"),
    # the library below the API reaching up to it, and the API to the CLI that calls it
    ("ablate/report/build.py", "def _late():\n    from ablate.api import run\n",
     "ablate.report is not allowed to import ablate.api"),
    ("ablate/api/running.py", "def _late():\n    from ablate.cli import main\n", "ablate.api is not allowed to import ablate.cli"),
    # two modules of one package importing each other
    ("ablate/runner/recorder.py", "def _late():\n    from ablate.runner import engine\n",
     "No cycles are allowed in ablate.runner"),
])
def test_an_upward_import_breaks_the_contract(tmp_path, where, line, broken):
    shutil.copytree(ROOT / "ablate", tmp_path / "ablate", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if "recorder" in where:   # make a cycle: engine -> recorder -> engine
        assert "recorder" in (tmp_path / "ablate/runner/engine.py").read_text()
    with open(tmp_path / where, "a", encoding="utf-8") as f:
        f.write("\n\n" + line)
    r = _lint(tmp_path)
    assert r.returncode == 1, r.stdout
    assert broken in r.stdout


@pytest.mark.skipif(not CYCLES.exists(), reason="../shared/tools/import_cycles.py is not beside the clone")
def test_no_import_cycles():
    r = subprocess.run([sys.executable, str(CYCLES), "ablate"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "cycles: 0", r.stdout


def test_spec_messages_and_configs_import_no_registry():
    """The config layer loads without the tricks, models, data, store or anything above."""
    code = ("import sys, ablate.config.spec_errors, ablate.config.sections, ablate.config.search, "
            "ablate.config.run, ablate.config.spec_yaml\n"
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('ablate.')}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                       env={"PYTHONPATH": str(ROOT)})
    assert r.stdout.strip() == "['config', 'errors']"


# -- the one metric-direction rule ---------------------------------------------------------------

def test_one_direction_rule_for_every_metric_section():
    from ablate.config.run import EarlyStop
    from ablate.config.search import SearchMetric
    from ablate.config.sections import Metric

    for name, right in BUILTIN_METRICS.items():
        wrong = "min" if right == "max" else "max"
        assert metric_direction(name, None) == right
        assert Metric(name=name).direction == SearchMetric(name=name).direction == right
        assert EarlyStop(metric=name).direction("val_acc", "max") == right
        for cls in (Metric, SearchMetric):
            with pytest.raises(ValueError, match=f"mode must be '{right}'"):
                cls(name=name, mode=wrong)
        with pytest.raises(ValueError, match=f"mode must be '{right}'"):
            metric_direction(name, wrong)
    # a metric that is not built in: its mode, else what the spec metric says, else unknown
    assert Metric(name="top5", mode="max").direction == "max"
    assert EarlyStop(metric="top5").direction("top5", "min") == "min"
    assert EarlyStop(metric="top5").direction("val_acc", "max") is None
    with pytest.raises(ValueError, match="the spec metric says so"):
        metric_direction("top5", "max", known="min")
    for cls in (Metric, SearchMetric):
        with pytest.raises(ValueError, match="'top5' is not built in"):
            cls(name="top5")
    with pytest.raises(ValueError, match=r"mode: min\}"):
        required_direction("top5", None, example="min")


# -- the trick hooks: files and saved weights, asked of every trick --------------------------------

def test_saved_weights_are_asked_of_every_trick(monkeypatch):
    from types import SimpleNamespace

    from ablate.tricks import base, get_trick

    asked = []
    label = get_trick("label_smoothing")
    monkeypatch.setattr(type(label), "reads_saved_weights", lambda self, params: True, raising=False)
    monkeypatch.setattr(type(label), "check_saved_weights",
                        lambda self, uses, root: asked.append((len(uses), root)), raising=False)
    setting = SimpleNamespace(use="label_smoothing", params=label.Params())
    other = SimpleNamespace(use="cutout", params=get_trick("cutout").Params())
    trials = [SimpleNamespace(tricks=(setting, other)), SimpleNamespace(tricks=(setting,)), SimpleNamespace()]
    assert base.reads_saved_weights([setting]) and not base.reads_saved_weights([other])
    base.check_saved_weights(trials, Path("/w"))
    assert asked == [(2, Path("/w"))]           # once, with both trials that use it
    assert get_trick("cutout").check_files(other.params, None) is None


def test_distillation_reads_saved_weights_and_checks_its_teachers(tmp_path):
    from types import SimpleNamespace

    from ablate.errors import AblateError
    from ablate.tricks import base, get_trick

    distill = get_trick("distill")
    params = distill.Params(trial="teachers/0123456789ab")
    assert distill.reads_saved_weights(params)
    student = SimpleNamespace(tricks=(SimpleNamespace(use="distill", params=params),), data=None)
    with pytest.raises(AblateError, match="no saved weights of experiment 'teachers'"):
        base.check_saved_weights([student], tmp_path)


def test_weights_root_for_a_store(tmp_path, monkeypatch):
    from ablate.runner.paths import weights_root_for

    monkeypatch.chdir(tmp_path)
    assert weights_root_for(tmp_path / "a" / "s.db") == (tmp_path / "a" / "weights").resolve()
    assert weights_root_for("postgresql://u@h/db") == tmp_path / "ablate-weights"
