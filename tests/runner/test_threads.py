"""A trial's thread count (ablate/runner/threads.py): the spec's resources.cpu on every runner, and
`--jobs` held to what the cores take at that count."""

from __future__ import annotations

import torch

from ablate.runner import experiment, threads
from ablate.runner.command import CommandExecutor
from ablate.config.run import CommandTrial, Resources
from ablate.runner.inprocess import InProcessExecutor
from tests.conftest import tiny_spec


def test_the_thread_count_is_resources_cpu_whole():
    assert threads.trial_threads(Resources()) == 1
    assert threads.trial_threads(Resources(cpu=0.5)) == 1
    assert threads.trial_threads(Resources(cpu=3)) == 3


def test_jobs_are_held_to_what_the_cores_take(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert [threads.concurrent_jobs(j, 1) for j in (1, 3, 4, 8)] == [1, 3, 4, 4]
    assert threads.concurrent_jobs(8, 2) == 2 and threads.concurrent_jobs(8, 3) == 1 and threads.concurrent_jobs(8, 16) == 1


def test_executors_take_the_specs_threads_and_say_when_jobs_are_held(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(experiment, "usable_cores", lambda: 4)
    ex = experiment.executor_for(tiny_spec(resources={"cpu": 2}), device="cpu", jobs=4)
    assert isinstance(ex, InProcessExecutor) and ex.threads == 2 and ex.jobs == 2 and ex.capacity == 2
    assert experiment.jobs_note(ex) == ("--jobs 4: 2 trial(s) at once, as 4 core(s) hold at 2 thread(s) per trial "
                                        "(resources.cpu); results do not depend on it")
    assert experiment.jobs_note(experiment.executor_for(tiny_spec(), device="cpu", jobs=4)) is None
    big = experiment.executor_for(tiny_spec(resources={"cpu": 8}), device="cpu")
    assert "asks for 8 threads per trial and this machine has 4 core(s)" in experiment.jobs_note(big)


def test_torch_threads_are_set_for_the_block_and_restored():
    before = torch.get_num_threads()
    with threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_command_gets_the_thread_variables_unless_its_env_sets_them():
    assert threads.thread_env(2, {}) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert threads.thread_env(2, {"OMP_NUM_THREADS": "4"}) == {"MKL_NUM_THREADS": "2"}
    ex = CommandExecutor(CommandTrial(command=["python", "t.py"]), threads=3)
    assert ex.threads == 3
