"""What `ablate run` prints while it runs (ablate/console.py): one counter over the whole run,
whatever runs at once; search trials with their study number, values and the best so far;
validation trials named by their reason; and `ablate status` listing a search's trials."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

from ablate.cli import main
from ablate.console import ConsoleProgress, SearchLine, expected_trials
from ablate.api import run_experiment
from ablate.runner.inprocess import InProcessExecutor
from ablate.store import Store
from tests.search_helpers import fake_train, search_spec

COUNTER = re.compile(r"^\[(\d+)/(\d+)\] ")


def counters(text: str) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for line in text.splitlines() if (m := COUNTER.match(line))]


def fake_trial(i: int, reason: str = "design", values=None):
    return SimpleNamespace(id=f"t{i}", label="base", seed=i, arm=0, reason=reason, values=values or {}, recipe=None)


def test_trials_started_together_are_counted_as_they_end():
    """Ray and --jobs hand over several trials at once: each line counts the trials ended so far."""
    out = io.StringIO()
    progress = ConsoleProgress(out)
    trials = [fake_trial(i) for i in range(6)]
    progress.trials_queued(trials)
    for t in trials:
        progress.trial_started(t)
    for t in (trials[3], trials[0], trials[5], trials[1], trials[4], trials[2]):
        progress.trial_finished(t, "complete", {"val_acc": 50.0, "test_acc": 49.0}, None)
    assert counters(out.getvalue()) == [(k, 6) for k in range(1, 7)]
    assert out.getvalue().splitlines()[-1].endswith("done)")


def test_a_retry_is_not_counted_and_a_failure_is_one_line_with_its_kind():
    out = io.StringIO()
    progress = ConsoleProgress(out)
    t = fake_trial(0)
    progress.trials_queued([t])
    progress.trial_started(t)
    error = "ValueError: bad lr\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad lr"
    progress.trial_finished(t, "retrying", None, error, kind="error")
    progress.trial_started(t)
    progress.trial_finished(t, "failed", None, error, kind="error")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  retrying base (seed 0) after its attempt failed (error): ValueError: bad lr")
    assert lines[1].startswith("[1/1] base (seed 0)  FAILED (error): ValueError: bad lr  (") and len(lines) == 2


def test_a_search_counts_over_its_studies_and_validation_with_values_and_the_best_so_far(tmp_path):
    spec = search_spec()
    store = Store(tmp_path / "s.db", create=True)
    out = io.StringIO()
    expected = expected_trials(spec, store)
    progress = ConsoleProgress(out, expected=expected, search=SearchLine(6, "val_acc", "max"))
    run_experiment(spec, store, executor=InProcessExecutor(run_fn=fake_train), progress=progress)
    text = out.getvalue()
    got = counters(text)
    assert expected == len(store.trials_frame("srch")), "the count announced is the count run"
    assert [k for k, _ in got] == list(range(1, len(got) + 1)) and {n for _, n in got} == {expected}
    searched = [x for x in text.splitlines() if "study trial" in x]
    assert len(searched) == 6
    assert all(re.search(r"study trial \d/6: recipe\.lr [0-9.e-]+, tricks\.mixup\.alpha [0-9.]+", x) for x in searched)
    assert all("best so far val_acc" in x for x in searched)
    best = [float(re.search(r"best so far val_acc ([0-9.]+)", x)[1]) for x in searched]
    assert best == sorted(best), "the best so far never gets worse"
    validation = [x for x in text.splitlines() if "study trial" not in x and COUNTER.match(x)]
    assert validation and all(re.search(r"\[(select: finalist \d|report: [a-z-]+)\]", x) for x in validation)
    assert any("[report: winner]" in x for x in validation)


def test_status_of_a_search_lists_its_trials_like_a_designs(tmp_path, capsys):
    spec = search_spec()
    store = Store(tmp_path / "s.db", create=True)
    run_experiment(spec, store, executor=InProcessExecutor(run_fn=fake_train))
    assert main(["status", "srch", "--store", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    rows = [x for x in out.splitlines() if " arm " in x and " seed " in x]
    assert len(rows) == len(store.trials_frame("srch"))
    assert sum("[search: study trial" in x for x in rows) == 6 and any("[select: finalist 1]" in x for x in rows)
    assert all(len(x.split()[0]) == 8 for x in rows), "each starts with its trial id"


def test_an_error_line_is_cut_after_a_sentence_or_word_never_inside_one():
    from ablate.runner.logs import error_summary

    words = " ".join(["word"] * 40)
    text = f"First sentence is here. {words}. " * 4
    line = error_summary(text)
    assert len(line) <= 302 and line.endswith(" …") and line[:-2].endswith((".", "word"))
    assert error_summary("short error") == "short error"
    exit_text = "the command exited with code 1\n--- stderr (last lines) ---\nwarning: x\nOSError: disk full"
    assert error_summary(exit_text, "exit") == "the command exited with code 1; stderr: OSError: disk full"
    assert error_summary("the command reported accuracy, not val_acc\n--- stderr (last lines) ---\nnoise",
                         "no_metric") == "the command reported accuracy, not val_acc"
