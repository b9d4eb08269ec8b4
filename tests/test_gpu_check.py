"""benchmarks/gpu/: the prepared GPU check. Its dry run on the CPU (every step at smoke size, the
packages the GPU machine lacks hidden), its time boxes and failure handling through a stand-in
interpreter, its summary's reading of step logs, the wheel pins and the install plan."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "benchmarks" / "gpu"
CHECK = GPU / "check.sh"
LOGS = ["0-setup.txt", "1-cuda-tests.txt", "2-quickstart.txt", "3-throughput.txt", "4-fused.txt",
        "5-headline.txt", "6-compile-memory.txt"]
# The GPU machine as benchmarks/gpu/README.md describes it (read off such a machine, 2026-11)
GPU_MACHINE = {"python": "3.12.3", "torch": "2.11.0", "torchvision": "0.26.0", "numpy": "2.5.2", "safetensors": "0.8.0"}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", GPU / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def summarize():
    return load("summarize")


@pytest.fixture(scope="module")
def install():
    return load("install")


def run_check(*args, env=None, timeout=120):
    return subprocess.run(["bash", str(CHECK), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


# -- the dry run -----------------------------------------------------------------------------

@pytest.mark.slow    # every step at smoke size: about a minute on a quiet 2-core machine
def test_the_cpu_dry_run_reports_every_step_ok_and_writes_what_comes_back(tmp_path):
    out = tmp_path / "out"
    done = run_check(out, "--cpu-dry-run", "--python", sys.executable, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # what a `run` call brings back: at most 8 plain files, plain names, no folders
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([*LOGS, "summary.txt"]) and len(files) <= 8
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) and (out / f).is_file() for f in files)
    summary = (out / "summary.txt").read_text()
    assert summary == done.stdout[done.stdout.index("ablate GPU check: summary"):]
    for step in range(7):
        assert re.search(rf"^\[{step}\] [^:]+: ok \(", summary, re.M), summary
    assert "all steps ok: yes" in summary
    ratios = re.findall(r"^    (eager|compile): (\w+) ablate/(bare|dataloader) [\d.]+ ", summary, re.M)
    assert sorted(ratios) == sorted((mode, m, p) for mode in ("eager", "compile")
                                    for m in ("resnet20", "resnet18", "airbench") for p in ("bare", "dataloader"))
    for figure in ("skipped", "one at a time / fused, seeds:", "one at a time / fused, design:", "wall ",
                   "compile_s first", "same verdict as the CPU table", "ablate imports: ok"):
        assert figure in summary, figure
    assert "backend aot_eager" in (out / "6-compile-memory.txt").read_text()


def test_the_dry_run_hides_what_the_gpu_machine_lacks_and_keeps_ablates_paths():
    path = [str(GPU / "device_env"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "ABLATE_CHECK_ABSENT": "optuna,plotly,ray"}
    code = ("import ablate.cli, ablate.runner.fused, ablate.report.build\n"
            "for name in ('optuna', 'plotly.graph_objects', 'ray'):\n"
            "    try:\n        __import__(name)\n    except ModuleNotFoundError as e:\n        print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the GPU machine has none") == 3, done.stdout


def test_the_headline_prints_a_line_per_finished_trial_and_the_peak_memory_column(capsys):
    spec = importlib.util.spec_from_file_location("airbench_headline", ROOT / "benchmarks" / "airbench_ablation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--smoke", "--device", "cpu"])
    out = capsys.readouterr().out
    done = re.findall(r"^trial (\d+)/6 complete at ([\d.]+) s \(Airbench", out, re.M)
    assert [int(k) for k, _ in done] == list(range(1, 7))
    assert [float(t) for _, t in done] == sorted(float(t) for _, t in done)
    assert "| Peak GPU mem (MiB) |" in out and "peak memory:" not in out     # none measured on the CPU


# -- failures and time boxes, through a stand-in interpreter ------------------------------------

def stand_in(tmp_path: Path, *, sleeps_on: str) -> Path:
    """A 'python' that runs the check's own helpers with this interpreter, sleeps (until the time
    box stops it) for commands naming `sleeps_on`, and fails every other command."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
case "$*" in
    *summarize.py*|*install.py*) exec {sys.executable} "$@" ;;
    *{sleeps_on}*) exec sleep 300 ;;
esac
echo "stand-in failure for: $*" >&2
exit 3
""")
    fake.chmod(0o755)
    return fake


def test_a_failing_step_is_reported_and_the_next_one_runs(tmp_path):
    out = tmp_path / "out"
    done = run_check(out, "--cpu-dry-run", "--python", stand_in(tmp_path, sleeps_on="no-such-command"))
    assert done.returncode == 1
    summary = (out / "summary.txt").read_text()
    for step in range(7):
        assert re.search(rf"^\[{step}\] [^:]+: failed \(", summary, re.M), summary
    assert "all steps ok: no" in summary
    assert "exit 3" in (out / "5-headline.txt").read_text()
    assert "stand-in failure for: benchmarks/airbench_ablation.py --smoke --device cpu" in (out / "5-headline.txt").read_text()


def test_a_step_that_overruns_is_stopped_at_its_box_and_the_call_ends_within_the_budget(tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    done = run_check(out, "--cpu-dry-run", "--steps", "1,4,5", "--budget", "20",
                     "--python", stand_in(tmp_path, sleeps_on="fused_trials.py"))
    took = time.monotonic() - start
    assert done.returncode == 1
    assert took < 20 + 3, took     # the budget, plus a margin for a loaded machine's start-up
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^\[4\] fused trials: timed out \(", summary, re.M), summary
    assert re.search(r"^\[5\] airbench headline: failed \(", summary, re.M), summary   # it still ran
    assert not (out / "2-quickstart.txt").exists() and "[2]" not in summary             # not selected
    # step 4 was stopped at its limit: the budget less what step 5 and the summary are owed
    # (20 s x (190 + 5) / (30 + 65 + 35 + 190 + 5)) and the 2 s kill grace, less what the steps
    # before it took
    seconds, limit = map(float, re.search(r"timed out after ([\d.]+) s, limit ([\d.]+) s",
                                          (out / "4-fused.txt").read_text()).groups())
    assert 2.0 < limit <= 20 - 20 * 195 / 325 - 2 + 0.01 and abs(seconds - limit) < 0.5, (seconds, limit)


@pytest.mark.parametrize("args, message", [
    ([], "RESULTS_DIR is missing"),
    (["OUT", "--steps", "7"], "--steps must be step numbers 1-6 separated by commas, got '7'"),
    (["OUT", "--steps", "1,,2"], "got '1,,2'"),
    (["OUT", "--steps", "3,3"], "--steps names step 3 twice: '3,3'"),
    (["OUT", "--budget", "5"], "--budget must be whole seconds from 10 to 3600, got '5'"),
    (["OUT", "--budget", "8m"], "got '8m'"),
    (["OUT", "--budget", "0480"], "got '0480'"),
    (["OUT", "--budget", "4000"], "got '4000'"),
    (["OUT", "--python", "/no/such/python"], "--python: '/no/such/python' is not a program here"),
    (["OUT", "--gpu"], "unknown option '--gpu'"),
    (["OUT", "OTHER"], "one RESULTS_DIR only, got 'OUT' and 'OTHER'"),
    (["OUT", "--budget"], "--budget needs a value"),
])
def test_bad_arguments_exit_2_with_one_message_and_write_nothing(tmp_path, args, message):
    done = subprocess.run(["bash", str(CHECK), *(str(tmp_path / a) if a in ("OUT", "OTHER") else a for a in args)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    first, usage = done.stderr.splitlines()
    assert message.replace("OUT", str(tmp_path / "OUT")).replace("OTHER", str(tmp_path / "OTHER")) in first
    assert usage.startswith("usage: benchmarks/gpu/check.sh RESULTS_DIR")
    assert list(tmp_path.iterdir()) == []


# -- the summary reads the logs ------------------------------------------------------------------

def test_step_status_is_the_worst_of_its_commands(summarize):
    ok = "== result: ok after 1.500 s, limit 20.000 s, exit 0\n"
    late = "== result: timed out after 30.000 s, limit 30.000 s, exit 124\n"
    bad = "== result: failed after 2.000 s, limit 9.000 s, exit 1\n"
    assert summarize.step_status(ok) == ("ok", 1.5, 20.0)
    assert summarize.step_status(ok + late) == ("timed out", 31.5, 50.0)
    assert summarize.step_status(bad + ok)[0] == "failed"
    assert summarize.step_status("$ python -m pytest\n...")[0] == "cut off"


def test_the_quickstart_decisions_are_read_per_arm_from_the_table(summarize):
    rows = summarize.lift_rows((ROOT / "reports" / "quickstart" / "lift.md").read_text())
    assert rows == {"baseline": "reference", "+ C": "noise", "+ S": "noise", "+ M": "suggestive -",
                    "+ CM": "hurts", "+ RE": "noise"}


def test_a_gpu_summary_judges_each_figure_against_its_target(summarize, tmp_path):
    ok = "== result: ok after 1.000 s, limit 9.000 s, exit 0\n"
    cpu_table = (ROOT / "reports" / "quickstart" / "lift.md").read_text()
    logs = {
        "1-cuda-tests.txt": "...\n13 passed, 12 deselected in 41.20s\n" + ok,
        # the device's table: the same decisions, other digits; then the CPU table check.sh appends
        "2-quickstart.txt": cpu_table.replace("94.36", "95.01") + ok + "\n-- the CPU table\n" + cpu_table,
        "3-throughput.txt": ("-- throughput eager\nratio: resnet20 ablate/bare 0.97 (target >= 0.95 on a GPU)\n"
                             "ratio: resnet20 ablate/dataloader 2.50 (target >= 3 on a GPU)\n" + ok
                             + "-- throughput compile\nrepeat 1 resnet20: ablate 900.0, bare 1000.0, dataloader 100.0 "
                               "images/s\n== result: timed out after 50.000 s, limit 50.000 s, exit 124\n"),
        "4-fused.txt": ("case     trials  one_at_a_time_s   fused_s   ratio  val_loss_rel_gap\n"
                        "seeds         5             9.10      2.68    3.40          1.20e-04\n"
                        "== result: timed out after 35.000 s, limit 35.000 s, exit 124\n"),   # the design cut off
        "5-headline.txt": "trial 30/45 complete at 170.2 s (Airbench + MP, seed 4)\n"
                          "== result: timed out after 185.000 s, limit 185.000 s, exit 124\n",
    }
    for name, text in logs.items():
        (tmp_path / name).write_text(text)
    text = summarize.summary(tmp_path, [1, 2, 3, 4, 5, 6], dry_run=False)
    assert "13 passed, 12 deselected (target: all pass, none skipped: met)" in text
    assert "same verdict as the CPU table (the same lifts decided, same direction): yes; every arm reads" in text
    assert "eager: resnet20 ablate/bare 0.97 (target >= 0.95: met)" in text
    assert "eager: resnet20 ablate/dataloader 2.50 (target >= 3: MISSED)" in text
    assert "compile: resnet20 ablate/bare 0.90 (partial: from the finished repeats) (target >= 0.95: MISSED)" in text
    assert "compile: resnet20 ablate/dataloader 9.00 (partial" in text
    assert "[3] throughput: timed out (51.0 s of 59.0 s)" in text
    assert "seeds: 3.40 (target >= 3: met)" in text and "design:" not in text
    assert "no wall time: stopped after 30 of 45 trials at 170.2 s (target < 180 s: MISSED)" in text
    (tmp_path / "5-headline.txt").write_text("wall: 142.3 s for the whole ablation, 3.16 s per trial\n" + ok)
    assert "wall 142.3 s for the whole ablation (target < 180 s: met)" in summarize.summary(tmp_path, [5], dry_run=False)
    assert "[0] setup: not run" in text and "[6] peak memory and compile time: not run" in text
    assert "error:" not in text            # no step failed: the timed-out ones show what they printed
    assert text.rstrip().endswith("all steps ok: no")


def test_a_quickstart_that_printed_no_table_is_not_compared_with_the_appended_cpu_table(summarize, tmp_path):
    cpu_table = (ROOT / "reports" / "quickstart" / "lift.md").read_text()
    (tmp_path / "2-quickstart.txt").write_text("Traceback ...\n== result: failed after 3.000 s, limit 30.000 s, "
                                               "exit 1\n\n-- the CPU table (...):\n" + cpu_table)
    text = summarize.summary(tmp_path, [2], dry_run=False)
    assert "[2] quickstart on the device: failed" in text and "same verdict" not in text


def test_the_verdict_is_the_decided_lifts_and_moved_readings_are_listed(summarize):
    cpu = {"baseline": "reference", "+ M": "suggestive -", "+ CM": "hurts", "+ C": "noise"}
    assert summarize.compare_decisions({**cpu, "+ M": "noise"}, cpu) == (
        "same verdict as the CPU table (the same lifts decided, same direction): yes; "
        "readings that moved (CPU -> here): + M suggestive - -> noise")
    assert summarize.compare_decisions({**cpu, "+ CM": "noise", "+ C": "helps"}, cpu).startswith(
        "same verdict as the CPU table (the same lifts decided, same direction): NO; "
        "readings that moved (CPU -> here): + C noise -> helps; + CM hurts -> noise")


def test_a_failed_step_shows_its_last_error_and_failed_tests(summarize, tmp_path):
    (tmp_path / "1-cuda-tests.txt").write_text(
        "FAILED tests/train/test_cuda.py::test_mixed_precision_trains_with_either_dtype[cuda-float16] - Assert...\n"
        "1 failed, 12 passed, 12 deselected in 30.1s\n== result: failed after 31.000 s, limit 60.000 s, exit 1\n")
    (tmp_path / "5-headline.txt").write_text(
        "Traceback (most recent call last):\n  File ...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to "
        "allocate 2.00 GiB\n== result: failed after 12.000 s, limit 185.000 s, exit 1\n")
    text = summarize.summary(tmp_path, [1, 5], dry_run=False)
    assert "    FAILED tests/train/test_cuda.py::test_mixed_precision_trains_with_either_dtype[cuda-float16]" in text
    assert "1 failed, 12 passed, 12 deselected (target: all pass, none skipped: MISSED)" in text
    assert "    error: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in text


def test_pytest_counts_read_the_closing_line(summarize):
    assert summarize.pytest_counts("x\n2 failed, 11 passed, 1 error in 3.0s\n") == {"failed": 2, "passed": 11, "errors": 1}
    assert summarize.pytest_counts("no tests ran\n") == {}


# -- the wheels ----------------------------------------------------------------------------------

def pins() -> dict[str, Version]:
    from packaging.utils import canonicalize_name

    lines = [ln.split("#")[0].strip() for ln in (GPU / "wheels.txt").read_text().splitlines()]
    got = {}
    for line in filter(None, lines):
        name, _, version = line.partition("==")
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name) and version, line
        assert canonicalize_name(name) not in got, f"{name} pinned twice"
        got[canonicalize_name(name)] = Version(version)
    return got


def project_requirements() -> dict[str, Requirement]:
    from packaging.utils import canonicalize_name

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(Requirement(d).name): Requirement(d) for d in deps}


def test_each_wheel_is_pinned_once_inside_pyprojects_range():
    pinned, project = pins(), project_requirements()
    assert {"pydantic", "sqlalchemy"} <= set(pinned)      # what the GPU machine lacks of ablate's own deps
    assert not {"optuna", "plotly", "ray", "torch", "torchvision"} & set(pinned)
    for name, version in pinned.items():
        if name in project:
            assert project[name].specifier.contains(version), (name, version, str(project[name]))


def test_pyproject_admits_the_gpu_machines_python_and_packages():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(data["requires-python"]).contains(GPU_MACHINE["python"])
    project = project_requirements()
    for name in ("torch", "torchvision", "numpy", "safetensors"):
        assert project[name].specifier.contains(GPU_MACHINE[name]), (name, str(project[name]))


def test_the_pins_meet_each_others_requirements_where_this_machine_has_the_same_versions():
    """The pinned wheels' own requirements (read here from the installed copies of the same
    versions) are met by the other pins or left to the GPU machine only for what it has."""
    import importlib.metadata as md

    from packaging.utils import canonicalize_name

    pinned = pins()
    checked = 0
    for name, version in pinned.items():
        try:
            if Version(md.version(name)) != version:
                continue
        except md.PackageNotFoundError:
            continue
        for req in map(Requirement, md.requires(name) or []):
            if req.marker is not None and not req.marker.evaluate({"extra": "", "python_version": "3.12"}):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pinned, f"{name} needs {req}: pin it in wheels.txt"
            assert req.specifier.contains(pinned[dep]), f"{name} needs {req}, wheels.txt pins {pinned[dep]}"
        checked += 1
    if not checked:
        pytest.skip("none of the pinned versions is installed here")


# -- the install plan ------------------------------------------------------------------------

def V(v):
    return Version(v)


def R(*reqs):
    return [Requirement(r) for r in reqs]


def test_absent_wheels_are_installed_and_present_ones_kept(install):
    wheels = {"pydantic": (V("2.14.4"), R("typing-extensions>=4.16")), "typing-extensions": (V("4.16.0"), [])}
    assert install.plan_install(wheels, {"typing-extensions": V("4.17.0")}) == (["pydantic"], [])
    assert install.plan_install(wheels, {"typing-extensions": V("4.12.2")}) == (["pydantic", "typing-extensions"], [])
    assert install.plan_install(wheels, {"pydantic": V("2.14.4"), "typing-extensions": V("4.12.2")}) == ([], [])


def test_a_requirement_neither_wheel_nor_machine_meets_is_unmet(install):
    wheels = {"pydantic": (V("2.14.4"), R("typing-extensions>=4.16", "annotated-types>=0.6")),
              "typing-extensions": (V("4.15.0"), [])}
    chosen, unmet = install.plan_install(wheels, {"typing-extensions": V("4.12.2")})
    assert chosen == ["pydantic"]
    assert unmet == ["pydantic needs typing-extensions>=4.16; this machine has 4.12.2, the wheelhouse 4.15.0",
                     "pydantic needs annotated-types>=0.6, which is neither on this machine nor in the wheelhouse"]


def make_wheel(folder: Path, name: str, version: str, requires=()) -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}.py": "VALUE = 1\n", f"{info}/METADATA": meta,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(path, "w") as zf:
        for arc, text in files.items():
            zf.writestr(arc, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{a},,\n" for a in files) + f"{info}/RECORD,,\n")
    return path


def test_the_installer_puts_absent_wheels_in_the_target_and_refuses_two_versions(install, tmp_path, capsys):
    house, target = tmp_path / "house", tmp_path / "site"
    house.mkdir()
    make_wheel(house, "ablate_gpu_probe", "1.0", ["packaging>=20"])
    assert install.main([str(house), str(target), "--plan-only"]) == 0
    assert "would install: ablate-gpu-probe 1.0" in capsys.readouterr().out and not target.exists()
    assert install.main([str(house), str(target)]) == 0
    assert "installed: ablate-gpu-probe 1.0 into" in capsys.readouterr().out
    assert (target / "ablate_gpu_probe.py").read_text() == "VALUE = 1\n"
    make_wheel(house, "ablate_gpu_probe", "2.0")
    assert install.main([str(house), str(target)]) == 1
    assert "two wheels of ablate-gpu-probe" in capsys.readouterr().out


def test_a_missing_wheelhouse_installs_nothing_and_says_how_to_make_one(install, tmp_path, capsys):
    assert install.main([str(tmp_path / "none"), str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("installed: nothing (no wheels in") and "benchmarks/gpu/wheels.sh makes them" in out
    assert not (tmp_path / "site").exists()
