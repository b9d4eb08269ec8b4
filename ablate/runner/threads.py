"""How many CPU threads a trial computes with: the same on every runner, so one spec gives one
table whether it runs here, `--jobs N` at once or on Ray.

The count is the spec's `resources.cpu` (default 1), whole. It matters for results, not only
speed: torch splits a convolution's sums over its intra-op threads, so 1 and 2 threads give
floats that differ in the last bits, and a short schedule amplifies that into different
accuracies. Every executor sets it (in-process and fused: `torch.set_num_threads`; a command:
OMP_NUM_THREADS and MKL_NUM_THREADS unless the spec's `trial.env` sets them; a Ray worker: both)
and records it in the trial's environment (`threads`).

`--jobs N` runs at most as many trials at once as the cores hold at that count
(`concurrent_jobs`), as Ray does with `resources.cpu`: N trials each taking every core slow each
other by up to 20x.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def trial_threads(resources) -> int:
    """The thread count of a trial taking `resources` (`Resources`; cpu 0.5 counts as 1)."""
    return max(1, int(resources.cpu))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def concurrent_jobs(jobs: int, threads: int) -> int:
    """Trials at once for `--jobs jobs` when each takes `threads` threads: at most what the cores
    hold. Both must be whole numbers >= 1 (ValueError otherwise): every executor sizes itself here."""
    for name, value in (("jobs", jobs), ("threads", threads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return max(1, min(jobs, usable_cores() // threads))


@contextlib.contextmanager
def torch_threads(threads: int, *, load: bool = True) -> Iterator[None]:
    """torch's intra-op threads set to `threads` for the block, restored after. New threads take
    the value at their first parallel op (ATen's lazy per-thread init), so `--jobs` worker threads
    started inside the block compute with it too. With `load=False` a process that has not
    imported torch (a stand-in trainer) does not pay its import."""
    torch = sys.modules.get("torch")
    if torch is None and load:
        import torch
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def thread_env(threads: int, spec_env: Mapping[str, str]) -> dict[str, str]:
    """What a command trial's environment gets: the thread variables the spec's env leaves unset."""
    return {k: str(threads) for k in THREAD_VARIABLES if k not in spec_env}
