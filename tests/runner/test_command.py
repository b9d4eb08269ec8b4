"""Command trials: any script as a trial; parameters in, JSON lines out; failures, timeouts,
pruning and bad input, each with a clear message and nothing lost."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time

import pytest
import yaml

from ablate.errors import MetricNotReported, SpecError
from ablate.api import run_experiment
from ablate.design.spec import parse_spec
from ablate.store import Store

# A training script stand-in: echoes its parameters back as metrics (no ablate import).
ECHO = """
import json, os, sys
p = json.load(open(os.environ["ABLATE_TRIAL"]))
flags = sys.argv[1:]
bonus = 2.0 * ("--cosine" in flags) + (float(flags[flags.index("--label-smoothing") + 1]) * 10
                                       if "--label-smoothing" in flags else 0.0)
for e in (1, 2):
    print(json.dumps({"epoch": e, "val_acc": 50 + e + p["seed"] + bonus, "grad_norm": 0.5 * e}))
print("some ordinary log line")
print(json.dumps({"val_acc": 52 + p["seed"] + bonus, "top1": 0.9, "n_tricks": len(p["tricks"])}))
"""


def command_spec(tmp_path, script: str, *, trial: dict | None = None, **sections):
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    raw = {"name": "cmd", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path), **(trial or {})},
           "tricks": {"ls": {"label-smoothing": 0.1}, "cos": {"cosine": True}},
           "design": {"kind": "one_at_a_time"}, "seeds": 2, **sections}
    return parse_spec(yaml.safe_dump(raw, sort_keys=False), source="cmd.yaml")


def test_parameters_reach_the_command_and_every_metric_is_kept(tmp_path):
    spec = command_spec(tmp_path, ECHO, trial={"args": "flags"})
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": 6}
    frame = store.trials_frame("cmd").set_index(["arm", "seed"])
    assert frame.loc[(0, 1), "val_acc"] == 53.0            # seed reached it (JSON file)
    assert frame.loc[(1, 0), "val_acc"] == 53.0            # --label-smoothing 0.1 (flags)
    assert frame.loc[(2, 0), "val_acc"] == 54.0            # --cosine (a bare flag)
    assert frame.loc[(1, 0), "n_tricks"] == 1 and frame.loc[(0, 0), "top1"] == 0.9   # any metric kept
    assert (frame.epochs == 2).all()
    epochs = store.epochs_frame("cmd")
    assert len(epochs) == 12 and set(epochs.grad_norm) == {0.5, 1.0}
    env = json.loads(frame.loc[(0, 0), "env"])
    assert "train.py" in env["command"] and env["host"]


def test_the_client_reports_and_reads_parameters(tmp_path):
    script = """
    from ablate import client
    p = client.params()
    for e in (1, 2, 3):
        client.report(epoch=e, top1=0.1 * e + p["seed"])
    client.report(top1=0.3 + p["seed"])
    """
    spec = command_spec(tmp_path, script, metric={"name": "top1", "mode": "max"})
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": 6}
    frame = store.trials_frame("cmd")
    assert sorted(frame.top1) == pytest.approx([0.3, 0.3, 0.3, 1.3, 1.3, 1.3])
    from ablate.report import build_report

    lift = build_report(store, "cmd").lift
    assert lift.metric == "top1" and lift.frame.lift.iloc[1:].abs().max() < 1e-9   # tricks change nothing


def test_a_failing_command_keeps_its_stderr_tail_and_is_retried_per_policy(tmp_path):
    script = """
    import sys
    print("Traceback: something broke in the data loader", file=sys.stderr)
    sys.exit(3)
    """
    spec = command_spec(tmp_path, script, retries={"count": 1, "kinds": ["exit"]},
                        design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"failed": 1}
    row = store.trials_frame("cmd").iloc[0]
    assert row.kind == "exit" and row.attempts == 2
    assert "exited with code 3" in row.error and "something broke in the data loader" in row.error
    assert list(store.attempts_frame("cmd").status) == ["failed", "failed"]


def test_no_final_metric_is_a_failed_trial(tmp_path):
    spec = command_spec(tmp_path, "print('trained, but said nothing')\n", retries={"count": 0},
                        design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(MetricNotReported, match="without reporting a metric"):
        run_experiment(spec, store)
    row = store.trials_frame("cmd").iloc[0]
    assert row.status == "failed" and row.kind == "no_metric" and "without reporting a metric" in row.error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    script = f"""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(r"{tmp_path / 'child.pid'}", "w").write(str(child.pid))
    time.sleep(60)
    """
    spec = command_spec(tmp_path, script, trial={"timeout_s": 1.5}, retries={"count": 0},
                        design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    t0 = time.monotonic()
    run_experiment(spec, store)
    assert time.monotonic() - t0 < 30
    row = store.trials_frame("cmd").iloc[0]
    assert row.status == "failed" and row.kind == "timeout" and "timeout of 1.5 s" in row.error
    child = int((tmp_path / "child.pid").read_text())
    end = time.monotonic() + 5
    while _alive(child) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(child), "the command's own child survived"


def test_a_malformed_json_line_warns_with_the_line_and_the_trial_goes_on(tmp_path, capsys):
    script = """
    print('{"epoch": 1, "val_acc": 50')
    print('{"val_acc": 51}')
    """
    spec = command_spec(tmp_path, script, design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": 1}
    err = capsys.readouterr().err
    assert "not valid JSON" in err and '{"epoch": 1, "val_acc": 50' in err


class PruneAtFirstEpoch:
    def should_stop(self, trial, metrics):
        return True


def test_a_pruned_command_stops_and_is_final(tmp_path):
    script = """
    import time
    from ablate import client
    for e in range(1, 1000):
        client.report(epoch=e, val_acc=e)
        if client.should_stop():
            break
        time.sleep(0.05)
    client.report(val_acc=99)
    """
    spec = command_spec(tmp_path, script, design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    from ablate.runner.command import CommandExecutor
    from ablate.runner.engine import Engine
    from ablate.runner.sources import DesignSource
    from ablate.design.plan import plan

    p = plan(spec)
    engine = Engine(store, "cmd", CommandExecutor(spec.trial), pruner=PruneAtFirstEpoch())
    summary = engine.run(DesignSource(p.trials))
    assert summary.outcomes == {"pruned": 1}
    assert len(store.epochs_frame("cmd")) <= 3
    again = Engine(store, "cmd", CommandExecutor(spec.trial)).run(DesignSource(p.trials))
    assert again.ran == 0, "pruned is final"


@pytest.mark.parametrize("trial, field, message", [
    ({"command": ["no-such-program-xyz"]}, "trial.command[0]", "not found on the PATH"),
    ({"command": ["./missing.sh"]}, "trial.command[0]", "not an executable file"),
    ({"command": ["python"], "cwd": "/no/such/folder"}, "trial.cwd", "does not exist"),
])
def test_a_bad_command_or_folder_is_refused_before_anything_is_written(tmp_path, trial, field, message):
    raw = {"name": "cmd", "data": {"name": "digits"}, "trial": trial, "tricks": {"a": {"x": 1}},
           "design": {"kind": "one_at_a_time"}, "seeds": 1}
    spec = parse_spec(yaml.safe_dump(raw), source="cmd.yaml")
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(SpecError, match=message) as err:
        run_experiment(spec, store, source="cmd.yaml")
    assert err.value.path == field and "cmd.yaml" in str(err.value)
    assert store.experiment_names() == []


def test_trial_with_model_or_recipe_is_refused_at_load():
    raw = {"name": "cmd", "data": {"name": "digits"}, "trial": {"command": ["python", "t.py"]},
           "model": {"name": "cifar_resnet", "depth": 8}, "design": {"kind": "explicit", "arms": [[]]},
           "seeds": 1}
    with pytest.raises(SpecError, match="cannot be given with it") as err:
        parse_spec(yaml.safe_dump(raw), source="cmd.yaml")
    assert err.value.path == "trial"


def test_an_unknown_metric_needs_its_direction():
    raw = {"name": "cmd", "data": {"name": "digits"}, "trial": {"command": ["python", "t.py"]},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1, "metric": {"name": "top1"}}
    with pytest.raises(SpecError, match=r"give its direction, e.g. \{name: top1, mode: max\}"):
        parse_spec(yaml.safe_dump(raw), source="cmd.yaml")


def test_a_metric_never_reported_fails_the_first_trial_and_stops_the_run(tmp_path):
    spec = command_spec(tmp_path, ECHO, metric={"name": "top5", "mode": "max"})
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(MetricNotReported, match="the command reported n_tricks, top1, val_acc, not top5") as err:
        run_experiment(spec, store, source="cmd.yaml")
    assert err.value.path == "metric.name" and "--retry-failed" in str(err.value)
    assert sorted(store.trial_statuses("cmd").values()).count("failed") == 1, "the first trial is kept, failed"
    row = store.trials_frame("cmd").query("status == 'failed'").iloc[0]
    assert row.kind == "no_metric" and "not top5 (the metric this spec needs)" in row.error
    assert "some ordinary log line" in row.error, "the stdout tail is kept with the error"


@pytest.mark.parametrize("final, said", [
    ('{"accuracy": 90.0}', "the command reported accuracy, not val_acc"),
    ('{"val_acc": "high"}', 'the command reported val_acc = "high", which is not a number'),
    ('{"val_acc": null, "loss": 0.3}', "the command reported val_acc = null, which is not a number"),
])
def test_a_command_that_reports_another_metric_or_no_number_is_failed_saying_what_it_reported(tmp_path, final, said):
    script = f"print('trained')\nprint({final!r})\n"
    spec = command_spec(tmp_path, script, design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(MetricNotReported):
        run_experiment(spec, store, source="cmd.yaml")
    row = store.trials_frame("cmd").iloc[0]
    assert row.status == "failed" and row.kind == "no_metric" and said in row.error, row.error
    assert row.attempts == 1, "not retried: the default retry kinds leave no_metric out"


def test_a_trial_after_the_metric_was_seen_fails_without_stopping_the_run(tmp_path):
    script = """
    import json, os
    p = json.load(open(os.environ["ABLATE_TRIAL"]))
    print(json.dumps({"val_acc": 50.0} if p["seed"] == 0 else {"accuracy": 50.0}))
    """
    spec = command_spec(tmp_path, script, design={"kind": "explicit", "arms": [[]]}, seeds=2)
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": 1, "failed": 1}


def test_shell_true_runs_one_command_string(tmp_path):
    spec = command_spec(tmp_path, ECHO, trial={"command": f"{sys.executable} train.py", "shell": True},
                        design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": 1}


def _cli_in_child(argv: list[str]) -> None:
    import signal

    from ablate.cli import main

    # Ctrl-C's default, as in a terminal: a test run started in the background by a shell
    # inherits SIGINT ignored, and a forked driver would inherit that too
    signal.signal(signal.SIGINT, signal.default_int_handler)

    os._exit(main(argv))


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stopping_ablate_run_kills_the_command_and_keeps_the_trial_pending(tmp_path, sig):
    import multiprocessing
    import signal

    script = f"""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(r"{tmp_path / 'pids'}", "w").write(f"{{os.getpid()}} {{child.pid}}")
    time.sleep(60)
    """
    spec = command_spec(tmp_path, script, design={"kind": "explicit", "arms": [[]]}, seeds=1)
    path = tmp_path / "cmd.yaml"
    from ablate.design.spec import spec_to_dict

    path.write_text(yaml.safe_dump(spec_to_dict(spec), sort_keys=False))
    db = tmp_path / "s.db"
    driver = multiprocessing.get_context("fork").Process(
        target=_cli_in_child, args=(["run", str(path), "--store", str(db), "--no-report"],))
    driver.start()
    end = time.monotonic() + 60
    while not (tmp_path / "pids").exists() or len((tmp_path / "pids").read_text().split()) < 2:
        assert time.monotonic() < end and driver.is_alive()
        time.sleep(0.05)
    os.kill(driver.pid, getattr(signal, sig))
    driver.join(timeout=30)
    assert driver.exitcode == 130
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    end = time.monotonic() + 3
    while any(_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.02)
    assert not [p for p in pids if _alive(p)], "the command or its child survived"
    row = Store(db).trials_frame("cmd").iloc[0]
    assert row.status == "pending" and "interrupted" in row.error


def test_the_cli_refuses_a_missing_command_with_exit_2_and_writes_no_store(tmp_path, capsys):
    from ablate.cli import main

    raw = {"name": "cmd", "data": {"name": "digits"}, "trial": {"command": ["no-such-program-xyz", "t.py"]},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1}
    path = tmp_path / "cmd.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--store", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert "cmd.yaml" in err and "trial.command[0]" in err and "no-such-program-xyz" in err
    assert not (tmp_path / "s.db").exists()


def test_the_timeout_holds_after_the_command_closes_its_stdout(tmp_path):
    script = """
    import os, sys, time
    print('{"epoch": 1, "val_acc": 1}', flush=True)
    os.close(1)
    time.sleep(60)
    """
    spec = command_spec(tmp_path, script, trial={"timeout_s": 1.0}, retries={"count": 0},
                        design={"kind": "explicit", "arms": [[]]}, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    t0 = time.monotonic()
    run_experiment(spec, store)
    assert time.monotonic() - t0 < 30
    row = store.trials_frame("cmd").iloc[0]
    assert row.status == "failed" and row.kind == "timeout"


def test_jobs_run_commands_at_once_each_with_its_share_of_the_cores(tmp_path, monkeypatch):
    # each trial waits (up to 20 s) until another has started: with one at a time they would
    # all time out waiting; OMP_NUM_THREADS is the trial's share of the cores
    script = f"""
    import json, os, pathlib, time
    p = json.load(open(os.environ["ABLATE_TRIAL"]))
    here = pathlib.Path({str(tmp_path)!r}) / "started"
    here.mkdir(exist_ok=True)
    (here / p["trial_id"]).touch()
    deadline = time.time() + 20
    while len(list(here.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.02)
    together = len(list(here.iterdir())) >= 2
    print(json.dumps({{"val_acc": 50.0 + together, "omp": int(os.environ["OMP_NUM_THREADS"])}}))
    """
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spec = command_spec(tmp_path, script, seeds=1)
    store = Store(tmp_path / "s.db", create=True)
    _, summary = run_experiment(spec, store, jobs=2)
    assert summary.outcomes == {"complete": 3}
    frame = store.trials_frame("cmd")
    assert (frame.val_acc == 51.0).all(), "trials did not overlap"
    assert (frame.omp == max(1, (os.cpu_count() or 1) // 2)).all()
