"""Run several trials at once in threads while every event reaches the engine from one thread.

The recorder and the store are used from the engine's thread only (the executor contract in
`ablate.runner.events`). Each worker thread hands its events to that thread through a queue and
waits for the engine's answer ("continue" or "stop"), so pruning works as it does one at a
time, and events are recorded in the order they happen.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ablate.errors import TrialPruned
from ablate.runner.events import Answer, Emit, Event
from ablate.design.trial import Trial

RunOne = Callable[[Trial, Emit], None]


def run_in_threads(trials: Sequence[Trial], run_one: RunOne, emit: Emit, *, jobs: int) -> None:
    """Call `run_one(trial, relay)` for every trial, `jobs` at a time. On an interruption
    (Ctrl-C, SIGTERM) or an executor bug, the workers are told to stop at their next event (a
    `TrialPruned` raised inside them) and the exception goes on to the engine, which puts their
    trials back to pending."""
    events: queue.Queue = queue.Queue()
    cancelled = threading.Event()

    def relay(event: Event) -> Answer:
        if cancelled.is_set():
            raise TrialPruned("the run was interrupted")
        reply: list[Answer] = []
        done = threading.Event()
        events.put((event, reply, done))
        done.wait()
        return reply[0] if reply else "stop"

    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(trials))), thread_name_prefix="ablate-trial")
    try:
        futures = [pool.submit(run_one, trial, relay) for trial in trials]
        pending = set(futures)
        while pending:
            try:
                event, reply, done = events.get(timeout=0.05)
            except queue.Empty:
                pending = {f for f in pending if not f.done()}
                continue
            try:
                reply.append(emit(event))
            finally:
                done.set()
        for f in futures:
            f.result()        # an exception out of run_one is the executor's own bug: surface it
    except BaseException:
        cancelled.set()
        while True:           # release workers waiting for an answer; they stop at their next event
            try:
                _, _, done = events.get_nowait()
            except queue.Empty:
                break
            done.set()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
