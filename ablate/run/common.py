"""What every runner shares: the environment record and the trial lifecycle in the store."""

from __future__ import annotations

import functools
import platform
import subprocess
import traceback
from pathlib import Path
from typing import Any, Protocol

from ablate.errors import TrialDiverged, TrialPruned


class Progress(Protocol):
    def trial_started(self, index: int, total: int, trial) -> None: ...
    def epoch(self, trial, metrics: dict[str, Any]) -> None: ...
    def trial_finished(self, trial, status: str, metrics: dict[str, Any] | None, error: str | None) -> None: ...


class SilentProgress:
    def trial_started(self, index, total, trial):
        pass

    def epoch(self, trial, metrics):
        pass

    def trial_finished(self, trial, status, metrics, error):
        pass


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the ablate source tree, with '+dirty' if it has local changes."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("+dirty" if dirty else "")) or None


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions, device and revision saved with every trial (so results can be traced)."""
    import torch
    import torchvision

    from ablate import __version__
    from ablate.train import pick_device

    dev = pick_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {"ablate": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(dev),
            "device_name": name, "threads": torch.get_num_threads(), "git": git_revision()}


def execute(store, trial, *, progress: Progress, device: str | None = None) -> str:
    """Run one trial in this process and record its outcome. Returns the final status.

    A raised exception becomes `failed` (with its traceback), a non-finite loss `diverged`,
    a pruning request `pruned`; the caller's run goes on. Ctrl-C puts the trial back to
    pending (its partial epochs dropped) and propagates.
    """
    from ablate.train import run_trial

    exp = trial.experiment
    store.start_trial(exp, trial.id, environment(device))

    def report(metrics: dict[str, Any]) -> None:
        store.add_epoch(exp, trial.id, metrics)
        progress.epoch(trial, metrics)

    try:
        metrics = run_trial(trial, report, device=device)
    except KeyboardInterrupt:
        store.reset_trial(exp, trial.id, "interrupted (Ctrl-C or SIGTERM); will run again")
        raise
    except TrialDiverged as exc:
        status, metrics, error = "diverged", None, str(exc)
    except TrialPruned as exc:
        status, metrics, error = "pruned", None, str(exc) or "pruned"
    except Exception as exc:  # noqa: BLE001 -- any failure is recorded, the run goes on
        status, metrics, error = "failed", None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    else:
        status, error = "complete", None
    store.finish_trial(exp, trial.id, status, metrics=metrics, error=error)
    progress.trial_finished(trial, status, metrics, error)
    return status
