"""What ablate's search bookkeeping costs per trial: N no-op trials of an 8-parameter TPE search
through ablate (engine, claims, recorder, the study in the store's SQLite file) beside plain
Optuna `study.optimize` with in-memory, journal (file) and RDB SQLite storage, same sampler and
seed, in one run.

    PYTHONPATH=. python benchmarks/search_overhead.py [--trials 1000]

Target (issue 9): <= 15 ms of ablate bookkeeping per trial at 1,000 trials. TPE's own cost grows
with the trials it has seen (every `ask` fits its model on the history), so the table separates
what the sampler and storage cost (plain Optuna on the same SQLite storage) from what ablate adds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402

from ablate.api import run_experiment  # noqa: E402
from ablate.runner.inprocess import InProcessExecutor  # noqa: E402
from ablate.runner.provenance import environment  # noqa: E402
from ablate.design.search import distributions  # noqa: E402
from ablate.design.spec import spec_from_dict  # noqa: E402
from ablate.store import Store  # noqa: E402

PARAMS = {   # 8 parameters: recipe fields and trick parameters, floats (some log) and ints
    "recipe.lr": {"type": "float", "low": 0.001, "high": 1.0, "log": True},
    "recipe.momentum": {"type": "float", "low": 0.5, "high": 0.99},
    "recipe.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "recipe.gamma": {"type": "float", "low": 0.05, "high": 0.5},
    "recipe.batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
    "tricks.mixup.alpha": {"type": "float", "low": 0.1, "high": 2.0},
    "tricks.label_smoothing.eps": {"type": "float", "low": 0.01, "high": 0.3},
    "tricks.random_erasing.prob": {"type": "float", "low": 0.05, "high": 0.9},
}


def no_op(trial, report, device=None):
    """The in-process trial: one epoch report and a value from the sampled lr, no training."""
    v = -abs(trial.recipe.lr - 0.1)
    report({"epoch": 1, "val_acc": v})
    return {"val_acc": v}


def spec_of(n: int):
    raw = {"name": "overhead", "data": {"name": "digits"}, "model": {"name": "cifar_resnet", "depth": 8},
           "recipe": {"epochs": 1}, "tricks": {"mixup": {}, "label_smoothing": {}, "random_erasing": {}},
           "seeds": 1, "search": {"params": PARAMS, "sampler": {"name": "tpe", "seed": 0}, "n_trials": n,
                                  "validate": False}}
    return spec_from_dict(raw, check_files=False)


def plain_optuna(storage, n: int, dists) -> float:
    def objective(trial):
        values = {k: trial._suggest(k, d) for k, d in dists.items()}
        trial.report(-abs(values["recipe.lr"] - 0.1), step=1)
        return -abs(values["recipe.lr"] - 0.1)

    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return time.perf_counter() - t0


class timed_optuna_calls:
    """Adds the time spent inside the Optuna calls ablate makes to `acc[0]` (outermost calls only)."""

    NAMES = [(optuna.study.Study, n) for n in ("ask", "tell", "enqueue_trial", "get_trials", "set_user_attr")] + \
            [(optuna.trial.Trial, n) for n in ("report", "should_prune", "set_user_attr")] + \
            [(optuna.storages.RDBStorage, n) for n in ("__init__", "set_trial_user_attr", "get_all_trials",
                                                       "get_study_id_from_name", "get_trial_id_from_study_id_trial_number")]

    def __init__(self, acc: list) -> None:
        self.acc, self.saved, self.depth = acc, [], [0]

    def __enter__(self):
        for owner, name in self.NAMES:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original))
        create = optuna.create_study
        self.saved.append((optuna, "create_study", create))
        optuna.create_study = self._wrap(create)
        return self

    def _wrap(self, fn):
        acc, depth = self.acc, self.depth

        def timed(*args, **kwargs):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    acc[0] += time.perf_counter() - t0
        return timed

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    n = parser.parse_args().trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = spec_of(n)
    dists = distributions(spec.search)
    environment()              # once per driver (imports torch, asks git): not counted
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        times = {"optuna in-memory": plain_optuna(None, n, dists)}
        journal = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(folder / "journal.log")))
        times["optuna journal (file)"] = plain_optuna(journal, n, dists)
        times["optuna RDB SQLite"] = plain_optuna(f"sqlite:///{folder / 'optuna.db'}", n, dists)
        store = Store(folder / "ablate.db", create=True)
        in_optuna = [0.0]
        with timed_optuna_calls(in_optuna):
            t0 = time.perf_counter()
            _, summary = run_experiment(spec, store, executor=InProcessExecutor(run_fn=no_op))
            times["ablate (store's SQLite file)"] = time.perf_counter() - t0
        assert summary.outcomes == {"complete": n}, summary.describe()
    ms = 1000.0 / n
    print(f"{n} no-op trials, 8-parameter TPE (seed 0)      total s   ms per trial")
    for name, took in times.items():
        print(f"  {name:<38} {took:9.1f} {took * ms:12.2f}")
    added = (times["ablate (store's SQLite file)"] - times["optuna RDB SQLite"]) * ms
    own = (times["ablate (store's SQLite file)"] - in_optuna[0]) * ms
    tpe = times["optuna in-memory"] * ms
    print(f"inside Optuna's calls during the ablate run (ask, tell, report, attrs): {in_optuna[0] * ms:.2f} ms per trial")
    print(f"ablate's own bookkeeping (the ablate run minus its time inside Optuna): {own:.2f} ms per trial "
          f"(target <= 15: {'ok' if own <= 15 else 'MISSED'})")
    print(f"difference of the totals, ablate - optuna RDB SQLite: {added:.2f} ms per trial; "
          f"TPE itself (in-memory): {tpe:.2f} ms per trial")
    ratio = times["ablate (store's SQLite file)"] / times["optuna RDB SQLite"]
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
