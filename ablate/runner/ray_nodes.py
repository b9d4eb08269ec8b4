"""Whether a folder the driver names is the same folder on every node of a Ray cluster.

Workers get absolute paths (the weights folder of `save: final`, distillation teachers named
by trial). On a node that does not share the driver's storage such a path is another, empty
folder: a worker would save weights nobody sees, or find no teacher. So before anything runs,
the driver writes a marker file there and a zero-CPU task on each live node looks for it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ablate.errors import AblateError

PROBE_TIMEOUT_S = 120.0


def _sees(path: str) -> bool:
    return os.path.isfile(path)


def nodes_missing(path: str | Path) -> list[str]:
    """The live nodes ("id (ip)") on which `path` is not a file."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(_sees)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    futures = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
               .remote(str(path)) for n in nodes]
    seen = ray.get(futures, timeout=PROBE_TIMEOUT_S)
    return [f"{n['NodeID'][:12]} ({n.get('NodeManagerAddress', '?')})" for n, ok in zip(nodes, seen) if not ok]


def _nearest_existing(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def check_folder_on_every_node(folder: Path, what: str) -> None:
    """Refuse (AblateError) when some live node does not see `folder` (or, while it does not
    exist yet, its nearest existing parent) as the driver does. Leaves nothing behind."""
    where = _nearest_existing(Path(folder))
    marker = where / f".ablate-probe-{uuid.uuid4().hex}"
    try:
        marker.write_text("ablate: is this folder shared by every Ray node?\n")
    except OSError as exc:
        raise AblateError(f"cannot write to {where} ({what}): {exc.strerror or exc}") from None
    try:
        missing = nodes_missing(marker)
    finally:
        marker.unlink(missing_ok=True)
    if missing:
        raise AblateError(f"{what} is {folder}, but Ray node(s) {', '.join(missing)} do not see {where} as this "
                          f"machine does; put the store (its weights/ folder beside a SQLite file, or "
                          f"./ablate-weights for a database server) on storage every node mounts at the same path")
