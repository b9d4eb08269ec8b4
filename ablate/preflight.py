"""Checks `ablate run` makes before it writes anything: the device, where the store goes, and
whether the spec reuses a stored experiment's name for a different experiment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import os
import re
from pathlib import Path

from ablate.errors import AblateError, SpecError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec
    from ablate.store import Store


def check_device(name: str | None) -> None:
    """Refuse a device this machine does not have, before anything is written. The messages name
    the device, not the option: `--device` on the command line, `device=` from Python."""
    if name is None:
        return
    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", name)
    if not m or (m[2] is not None and m[1] != "cuda"):
        raise AblateError(f"device '{name}' is not a device ablate can train on; allowed: cpu, cuda, "
                          f"cuda:N (N a GPU index), mps")
    import torch

    if m[1] == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AblateError(f"device {name}: this machine has no CUDA GPU that torch "
                              f"{torch.__version__} can use; use cpu, or leave the device out (CUDA when there is one)")
        if m[2] is not None and int(m[2]) >= count:
            raise AblateError(f"device {name}: there are {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if m[1] == "mps" and not torch.backends.mps.is_available():
        raise AblateError(f"device {name}: Apple's MPS backend is not available on this machine; "
                          f"use cpu, or leave the device out (CUDA when there is one)")


def prepare_store_path(target: str) -> str | None:
    """Check that a SQLite store can be created at `target`; a note for the run's first line
    when it will be new (and which folders will be made). Writes nothing."""
    from ablate.store import store_url

    url = store_url(target)
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    path = Path(url.split("///", 1)[1])
    if path.exists():
        return None
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise StoreError(f"cannot create store '{target}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create store '{target}': folder '{parent}' is not writable")
    made = f" (creating folder {path.parent})" if parent != path.parent else ""
    return f"new store at {path}{made}"


def check_spec_change(store: Store, spec: Spec, *, replace: bool) -> str | None:
    """Refuse a spec that reuses a stored experiment's name for a different experiment (another
    design kind, data, model or recipe) unless `replace`; with `replace`, delete the stored
    trials and say how many. Small edits pass (unchanged trials are reused)."""
    from ablate.design.changes import section_differences, spec_changes
    from ablate.design.spec import spec_from_dict, spec_to_dict

    row = store.experiment(spec.name)
    if row is None:
        return None
    old, new = json.loads(row["spec"]), spec_to_dict(spec)
    try:   # through today's schema, so a field added since with its default is no difference
        old = spec_to_dict(spec_from_dict(old, source="<stored spec>", check_files=False))
    except AblateError:
        pass
    n = len(store.trial_statuses(spec.name))
    if replace:
        store.delete_trials(spec.name)
        studies = _delete_studies(store, [old, new])
        gone = f" and its Optuna stud{'y' if len(studies) == 1 else 'ies'} {', '.join(studies)}" if studies else ""
        return f"--replace: deleted the {n} stored trial(s) of '{spec.name}'{gone} in {store.label}"
    changed = spec_changes(old, new)
    if changed:
        what = "; ".join(f"{sec} ({', '.join(section_differences(old, new, sec))})" for sec in changed)
        study = (" (a search's study keeps the distributions it was created with: it would go on with the old "
                 "ranges)") if "search" in changed else ""
        raise SpecError(f"the store {store.label} already holds experiment '{spec.name}' ({n} trial(s)) "
                        f"with a different {', '.join(changed)}: {what}. That makes a different "
                        f"experiment{study}: give the spec a new 'name:', or run with --replace to delete the "
                        f"{n} stored trial(s) of '{spec.name}' and start again")
    return None


def _delete_studies(store: Store, specs: list[dict]) -> list[str]:
    """Delete the Optuna studies of the searches in `specs` (plain data) that exist in the store's
    database (--replace: a new search must not go on with an old study). Returns their names."""
    bases = {(raw["search"].get("study") or raw["name"]) for raw in specs if raw.get("search")}
    names = sorted(bases)
    if not names:
        return []
    import optuna

    from ablate.search.study import storage_for

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(store)
    deleted = []
    for study in storage.get_all_studies():       # the study, or one per arm (<name>/arm<i>)
        if any(study.study_name == b or study.study_name.startswith(f"{b}/arm") for b in names):
            optuna.delete_study(study_name=study.study_name, storage=storage)
            deleted.append(study.study_name)
    return deleted
