"""What the run engine costs per trial: 200 zero-work trials through the engine (claim, events,
recorder, store transactions), in-process and as commands, side by side in one run, each
against a bare loop that does the same work 200 times without the engine.

    PYTHONPATH=. python benchmarks/runner_overhead.py [--trials 200]

Targets (issue 8): <= 20 ms engine overhead per in-process trial; <= 150 ms per command trial,
process start included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.plan import plan  # noqa: E402
from ablate.run.command import CommandExecutor  # noqa: E402
from ablate.run.config import CommandTrial  # noqa: E402
from ablate.run.engine import Engine  # noqa: E402
from ablate.run.provenance import environment  # noqa: E402
from ablate.run.inprocess import InProcessExecutor  # noqa: E402
from ablate.run.sources import DesignSource  # noqa: E402
from ablate.spec import spec_from_dict  # noqa: E402
from ablate.store import Store  # noqa: E402

ZERO_WORK_COMMAND = [sys.executable, "-c", "print('{\"epoch\": 1, \"val_acc\": 1.0}'); print('{\"val_acc\": 1.0}')"]


def zero_work(trial, report, device=None):
    """The in-process trial: one epoch report, final metrics, no training."""
    report({"epoch": 1, "val_acc": 1.0})
    return {"val_acc": 1.0, "test_acc": 1.0}


def trials_of(n: int, command: bool):
    raw = {"name": "overhead", "data": {"name": "digits"}, "design": {"kind": "explicit", "arms": [[]]},
           "seeds": n}
    if command:
        raw["trial"] = {"command": ZERO_WORK_COMMAND}
    else:
        raw["model"] = {"name": "cifar_resnet", "depth": 8}
        raw["recipe"] = {"epochs": 1}
    return plan(spec_from_dict(raw, check_files=False)).trials


def timed_engine(trials, executor, folder: Path) -> float:
    store = Store(folder / f"{type(executor).__name__}.db", create=True)
    engine = Engine(store, "overhead", executor)
    t0 = time.perf_counter()
    summary = engine.run(DesignSource(trials))
    took = time.perf_counter() - t0
    assert summary.outcomes == {"complete": len(trials)}, summary.describe()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    n = parser.parse_args().trials
    in_trials, cmd_trials = trials_of(n, False), trials_of(n, True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # once per driver, not per trial: the environment record (imports torch, asks git)
        t0 = time.perf_counter()
        environment()
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in in_trials:
            zero_work(t, lambda m: None)
        bare_in = time.perf_counter() - t0
        engine_in = timed_engine(in_trials, InProcessExecutor(run_fn=zero_work), folder)

        t0 = time.perf_counter()
        for _ in cmd_trials:
            subprocess.run(ZERO_WORK_COMMAND, capture_output=True, check=True)
        bare_cmd = time.perf_counter() - t0
        engine_cmd = timed_engine(cmd_trials, CommandExecutor(CommandTrial(command=ZERO_WORK_COMMAND)), folder)

    ms = 1000.0 / n
    print(f"once per driver: environment record {startup * 1000:.0f} ms (not counted below)")
    over_in = (engine_in - bare_in) * ms
    print(f"{n} zero-work trials (ms per trial)        bare loop    engine   overhead   target")
    print(f"in-process (run_trial stand-in)      {bare_in * ms:10.3f} {engine_in * ms:9.2f} {over_in:10.2f}   "
          f"<= 20 overhead  {'ok' if over_in <= 20 else 'MISSED'}")
    print(f"command (python -c, process start)   {bare_cmd * ms:10.2f} {engine_cmd * ms:9.2f} "
          f"{(engine_cmd - bare_cmd) * ms:10.2f}   <= 150 per trial  {'ok' if engine_cmd * ms <= 150 else 'MISSED'}")
    print(f"ratio engine / bare loop: in-process {engine_in / max(bare_in, 1e-9):,.0f}x, "
          f"command {engine_cmd / bare_cmd:.2f}x")


if __name__ == "__main__":
    main()
