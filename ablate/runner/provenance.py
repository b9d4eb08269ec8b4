"""Where a trial ran: versions, device, host and git revision, saved with every attempt."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=8)
def git_revision(folder: str | None = None) -> str | None:
    """The git commit of `folder` (default: the ablate source tree), '+dirty' if it has changes."""
    root = Path(folder) if folder else Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev.stdout.strip() + ("+dirty" if dirty else "")) or None


@functools.lru_cache(maxsize=4)
def environment(device: str | None = None) -> dict[str, Any]:
    """Of this process, training on `device` (computed once per device: it does not change)."""
    import torch
    import torchvision

    from ablate import __version__
    from ablate.train import pick_device

    dev = pick_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {"ablate": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(dev),
            "device_name": name, "threads": torch.get_num_threads(), "host": socket.gethostname(),
            "git": git_revision()}
