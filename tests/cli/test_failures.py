"""When trials fail, the user sees why and can act, from the console alone: exit codes a script
can trust, one line per failure, `ablate logs`, `ablate status`, and `ablate run --retry-failed`
after a fix. Real command processes, through the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest
import yaml

from ablate.cli import EXIT_TRIALS_FAILED, main
from ablate.store import Store

CRASHES = """
import json, os
p = json.load(open(os.environ["ABLATE_TRIAL"]))
print("loading the data")
import numpyy
"""
WORKS = """
import json, os
p = json.load(open(os.environ["ABLATE_TRIAL"]))
print(json.dumps({"epoch": 1, "val_acc": 40.0 + p["seed"]}))
print(json.dumps({"val_acc": 50.0 + p["seed"] + len(p["tricks"])}))
"""


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with train.py and spec.yaml (a command trial, 2 arms x 2 seeds), as a user has."""
    monkeypatch.chdir(tmp_path)

    def write(script: str, command=(sys.executable, "train.py"), **sections):
        (tmp_path / "train.py").write_text(textwrap.dedent(script))
        raw = {"name": "cmd", "data": {"name": "digits"}, "trial": {"command": list(command)},
               "tricks": {"wd": {"weight-decay": 0.1}}, "design": {"kind": "one_at_a_time"}, "seeds": 2, **sections}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        return tmp_path

    return write


def test_a_crashing_script_is_fixed_then_retry_failed_runs_it_again_keeping_every_attempt(project, capsys):
    project(CRASHES)
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db")
    assert code == EXIT_TRIALS_FAILED == 3, out + err
    failed = [x for x in out.splitlines() if x.startswith("[") and "FAILED" in x]
    assert len(failed) == 4 and all("FAILED (exit): ModuleNotFoundError: No module named 'numpyy'" in x
                                    for x in failed), out
    assert "Traceback" not in out + err, "one line per failure; the traceback is in the logs"
    assert "retrying cmd" not in out and sum("retrying" in x for x in out.splitlines()) == 4, "1 retry each"
    assert "ablate logs cmd --store s.db" in out and "ablate run spec.yaml --store s.db --retry-failed" in out
    assert "no report: no trial of 'cmd' has completed" in out

    # the same command again, nothing fixed: nothing runs, and it still says what to do
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db")
    assert code == 3 and "nothing to run" in out and "--retry-failed" in out, out + err

    project(WORKS)             # the fix is in the script: the trials (and their ids) are the same
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db", "--retry-failed")
    assert code == 0, out + err
    assert "--retry-failed: 4 failed trial(s) of 'cmd' run again" in out
    store = Store("s.db")
    assert (store.trials_frame("cmd")["status"] == "complete").all()
    tries = store.attempts_frame("cmd")
    for _, t in tries.groupby("trial_id"):
        assert list(t.sort_values("attempt").status) == ["failed", "failed", "requeued", "complete"]
        assert "No module named 'numpyy'" in t.error.iloc[0] and "loading the data" in t.error.iloc[0]


def test_a_retried_trial_gets_its_retries_afresh_and_a_rerun_after_that_does_not(project, capsys):
    project(CRASHES, seeds=1, design={"kind": "explicit", "arms": [[]]})
    assert run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")[0] == 3
    code, out, _ = run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report", "--retry-failed")
    assert code == 3 and "retrying" in out, "retries.count 1 again after --retry-failed"
    tries = Store("s.db").attempts_frame("cmd").sort_values("attempt")
    assert list(tries.status) == ["failed", "failed", "requeued", "failed", "failed"]


def test_a_typo_in_the_spec_fails_and_the_fixed_spec_runs_its_own_trials(project, capsys):
    project(WORKS, command=(sys.executable, "trian.py"))
    code, out, _ = run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")
    assert code == 3 and "can't open file" in out
    project(WORKS)
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db")
    assert code == 0 and "4 complete" in out, out + err


def test_exit_codes_do_not_depend_on_the_report(project, capsys):
    project(WORKS)
    assert run(capsys, "run", "spec.yaml", "--store", "ok.db", "--no-report")[0] == 0
    project(CRASHES)
    assert run(capsys, "run", "spec.yaml", "--store", "bad.db", "--no-report")[0] == 3
    # some trials fail: the report of the others is written, and the exit code still says it
    project(CRASHES.replace("import numpyy", "if p['seed'] == 1: import numpyy\n"
                                               "print(json.dumps({'val_acc': 50.0 + len(p['tricks'])}))"))
    code, out, _ = run(capsys, "run", "spec.yaml", "--store", "some.db", "--out", "rep")
    assert code == 3 and "| Arm |" in out and "2 trial(s) of 'cmd' failed" in out
    assert "Why each failed: `ablate logs cmd`; after fixing the cause, `ablate run SPEC --retry-failed`" in out


def test_a_metric_the_command_never_reports_exits_3_saying_what_it_reported(project, capsys):
    project(WORKS.replace('"val_acc"', '"accuracy"'))
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db")
    assert code == 3, out + err
    assert "the command reported accuracy, not val_acc" in err and "--retry-failed" in out + err
    assert sum(x.startswith("[") for x in out.splitlines()) == 1, "the run stopped after the first trial"


def test_logs_show_each_attempt_with_its_error_output_host_and_times(project, capsys):
    project(CRASHES, seeds=1)
    run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")
    code, out, err = run(capsys, "logs", "cmd", "--store", "s.db")
    assert code == 0, err
    assert out.count("attempt 1: failed (exit)") == 2 and out.count("attempt 2: failed (exit)") == 2
    assert f"on {socket.gethostname()}, started 20" in out and "took " in out
    assert "--- stdout (last lines) ---" in out and "loading the data" in out
    assert "--- stderr (last lines) ---" in out and "Traceback (most recent call last)" in out
    tid = Store("s.db").trials_frame("cmd").trial_id.iloc[0]
    code, one, _ = run(capsys, "logs", "cmd", tid[:6], "--store", "s.db")
    assert code == 0 and one.startswith(f"trial {tid}") and one.count("\ntrial ") == 0
    code, one, _ = run(capsys, "logs", "cmd", "train.py + wd@0", "--store", "s.db")
    assert code == 0 and "'train.py + wd'  seed 0" in one
    code, _, err = run(capsys, "logs", "cmd", "nosuch@3", "--store", "s.db")
    assert code == 2 and "no trial 'nosuch@3' in experiment 'cmd'" in err and "LABEL@SEED" in err
    code, _, err = run(capsys, "logs", "nosuch", "--store", "s.db")
    assert code == 2 and "no experiment 'nosuch'" in err


def test_logs_of_an_experiment_without_failures_says_so(project, capsys):
    project(WORKS, seeds=1)
    run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")
    code, out, _ = run(capsys, "logs", "cmd", "--store", "s.db")
    assert code == 0 and "no failed attempt (2 complete)" in out


def test_status_lists_ids_and_whole_errors_and_names_retry_failed(project, capsys):
    long = "x" * 150
    project(f"import sys\nsys.exit('the data folder /data/{long} is empty. Put the files there')\n", seeds=1,
            retries={"count": 0})
    run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")
    code, out, _ = run(capsys, "status", "cmd", "--store", "s.db")
    assert code == 0 and "cmd: 2 trials (2 failed)" in out
    lines = [x for x in out.splitlines() if "failed" in x and " arm " in x]
    assert len(lines) == 2 and all("is empty. Put the files there" in x for x in lines), out
    assert "--retry-failed" in out and "ablate logs cmd" in out


def test_status_shows_a_trial_whose_driver_is_gone(project, capsys):
    from ablate.design.plan import plan
    from ablate.design.spec import load_spec

    project(WORKS, seeds=1)
    run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")
    store = Store("s.db")
    trial = plan(load_spec("spec.yaml")).trials[1]
    store.reset_trial("cmd", trial.id, "test: back to pending")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.claim("cmd", trial.id, f"{socket.gethostname()}:{dead.pid}:abcd", lease_s=600)
    code, out, _ = run(capsys, "status", "cmd", "--store", "s.db")
    assert code == 0 and "1 of them running with their driver gone" in out
    line = next(x for x in out.splitlines() if x.strip().startswith(trial.id[:8]))
    assert "running" in line and f"its driver (process {dead.pid} on" in line and "the next `ablate run`" in line


def test_progress_counts_over_the_whole_run_with_jobs(project, capsys):
    project(WORKS, seeds=3)
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db", "--jobs", "2", "--no-report")
    assert code == 0, out + err
    counters = [x.split("]")[0] + "]" for x in out.splitlines() if x.startswith("[")]
    assert counters == [f"[{k}/6]" for k in range(1, 7)], out
    last = [x for x in out.splitlines() if x.startswith("[")][-1]
    assert last.endswith("done)") and sum("done)" in x for x in out.splitlines()) == 1, out


def test_env_records_the_commands_thread_count(project, capsys):
    project(WORKS.replace('print(json.dumps({"val_acc"', 'print(json.dumps({"omp": int(os.environ["OMP_NUM_THREADS"]), "val_acc"'),
            seeds=1, resources={"cpu": 2})
    assert run(capsys, "run", "spec.yaml", "--store", "s.db", "--no-report")[0] == 0
    frame = Store("s.db").trials_frame("cmd")
    assert (frame["omp"] == 2).all() and {json.loads(e)["threads"] for e in frame["env"]} == {2}


def test_the_html_report_shows_every_attempt_of_the_failed_trials(project, capsys, tmp_path):
    project(CRASHES.replace("import numpyy", "if p['seed'] == 1: import numpyy\n"
                                               "print(json.dumps({'val_acc': 50.0 + len(p['tricks'])}))"))
    code, out, _ = run(capsys, "run", "spec.yaml", "--store", "s.db", "--out", "rep", "--format", "md,html")
    assert code == 3, out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "<h2>Failed trials</h2>" in page and page.count("<h3>") == 2, "the two failed trials"
    assert "ablate run SPEC --retry-failed" in page and "ablate logs cmd" in page
    section = page.split("<h2>Failed trials</h2>")[1]
    assert section.count("<summary>attempt ") == 4 and "No module named &#x27;numpyy&#x27;" in section
    assert socket.gethostname() in section and "loading the data" in section


NNI_CONFIG = """\
searchSpaceFile: space.json
trialCommand: python3 trial.py
maxTrialNumber: 3
tuner:
  name: Random
  classArgs: {optimize_mode: maximize, seed: 0}
trainingService:
  platform: local
"""
NNI_TRIAL = """\
import nni
params = nni.get_next_parameter()
BROKEN
nni.report_final_result(1.0 - abs(params["lr"] - 0.1))
"""


def test_a_search_whose_trials_all_failed_runs_them_again_after_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.json").write_text(json.dumps({"lr": {"_type": "uniform", "_value": [0.01, 0.5]}}))
    (tmp_path / "config.yml").write_text(NNI_CONFIG)
    (tmp_path / "trial.py").write_text(NNI_TRIAL.replace("BROKEN", "import numpyy"))
    code, out, err = run(capsys, "run", "config.yml", "--store", "s.db", "--no-report")
    assert code == 3 and out.count("FAILED (exit): ModuleNotFoundError") == 3, out + err
    assert "ablate run config.yml --store s.db --retry-failed" in out

    (tmp_path / "trial.py").write_text(NNI_TRIAL.replace("BROKEN", ""))
    code, out, err = run(capsys, "run", "config.yml", "--store", "s.db", "--retry-failed", "--no-report")
    assert code == 0, out + err
    frame = Store("s.db").trials_frame("config")
    searched = frame[frame["reason"].str.startswith("search")]
    assert len(searched) == 3 and (searched["status"] == "complete").all()
    assert (frame[~frame["reason"].str.startswith("search")]["status"] == "complete").all(), "validation ran"
    code, out, _ = run(capsys, "status", "config", "--store", "s.db")
    assert "3/3 trials done (3 complete, 0 pruned, 0 failed" in out, out


def test_a_failed_baseline_leaves_no_lift_table_and_still_exits_3_not_2(project, capsys):
    project(CRASHES.replace("import numpyy", "if not p['tricks']: import numpyy\n"
                                               "print(json.dumps({'val_acc': 50.0}))"))
    code, out, err = run(capsys, "run", "spec.yaml", "--store", "s.db", "--out", "rep")
    assert code == 3, out + err
    assert "no report: experiment 'cmd' has no complete trial of its baseline arm" in out
    assert "its trials failed: `ablate logs cmd` says why" in out and "--retry-failed" in out
