"""Report and planner scale: lift and effects tables from a big store, planning a big design.

1. A synthetic store of 20,480 trials (a 2^10 full factorial x 20 seeds) x 20 epochs each
   (409,600 epoch rows), filled with made-up accuracies (no training). Times building the lift
   table and the effects table from the store, as `ablate report` does. Target: < 3 s.
2. Planning a 2^12 full factorial x 5 seeds (20,480 trials) from a spec. Target: < 2 s.

    python benchmarks/report_scale.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ablate.design.plan import plan  # noqa: E402
from ablate.report import frames  # noqa: E402
from ablate.design.spec import spec_from_dict, spec_to_dict  # noqa: E402
from ablate.store import Store  # noqa: E402
from ablate.store_schema import epoch_metrics, final_metrics, trials  # noqa: E402

TRICKS = ["cosine", "label_smoothing", "mixup", "cutmix", "zero_gamma", "no_bias_decay", "resnet_d",
          "resnet_c", "random_erasing", "cutout", "ema", "warmup"]


def spec(k: int, seeds: int):
    raw = {"name": f"scale{k}", "data": {"name": "digits"}, "model": {"name": "cifar_resnet", "depth": 8},
           "recipe": {"epochs": 20}, "tricks": {t: ({"epochs": 2} if t == "warmup" else {}) for t in TRICKS[:k]},
           "design": {"kind": "full_factorial"}, "seeds": seeds}
    return spec_from_dict(raw)


def fill(store: Store, p, n_epochs: int) -> None:
    rng = np.random.default_rng(0)
    effects = rng.normal(0, 0.5, len(p.spec.tricks))
    seed_offset = rng.normal(0, 1.0, max(p.seeds) + 1)
    now = time.time()
    trial_rows, final_rows, epoch_rows = [], [], []
    for t in p.trials:
        levels = np.array(p.arms[t.arm].levels)
        acc = 90 + levels @ effects / 2 + seed_offset[t.seed] + rng.normal(0, 0.3)
        key = dict(experiment=p.spec.name, trial_id=t.id)
        trial_rows.append(dict(**key, arm=t.arm, label=t.label, seed=t.seed, reason="design", config="{}",
                               status="complete", metrics="{}", attempts=1, created=now))
        final = dict(val_acc=acc, val_loss=0.3, test_acc=acc + 0.5, test_loss=0.3, params=78000.0, wall_s=3.0)
        final_rows += [dict(**key, name=k, value=float(v)) for k, v in final.items()]
        for e in range(1, n_epochs + 1):
            metrics = dict(train_loss=1 / e, train_acc=acc - 10 / e, val_loss=1 / e, val_acc=acc - 10 / e,
                           lr=0.1, images_per_s=3000.0, epoch_s=0.2)
            epoch_rows += [dict(**key, epoch=e, name=k, value=float(v)) for k, v in metrics.items()]
    with store.engine.begin() as c:
        c.execute(trials.insert(), trial_rows)
        c.execute(final_metrics.insert(), final_rows)
        c.execute(epoch_metrics.insert(), epoch_rows)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "scale.db", create=True)
        s = spec(10, 20)
        p = plan(s)
        store.save_experiment(s.name, json.dumps(spec_to_dict(s)), None)
        t0 = time.perf_counter()
        fill(store, p, 20)
        with store.engine.connect() as c:
            pairs = sa.select(epoch_metrics.c.trial_id, epoch_metrics.c.epoch).distinct().subquery()
            n_epochs = c.execute(sa.select(sa.func.count()).select_from(pairs)).scalar()
        print(f"store: {len(p.trials):,} trials, {n_epochs:,} epoch rows (filled in {time.perf_counter() - t0:.1f}s)")

        t0 = time.perf_counter()
        p2 = frames.load_experiment(store, s.name)
        out = frames.outcomes(p2, store.trials_frame(s.name))
        t_load = time.perf_counter() - t0
        t1 = time.perf_counter()
        lift = frames.lift_table(p2, out)
        t_lift = time.perf_counter() - t1
        t1 = time.perf_counter()
        eff = frames.effects_table(p2, out)
        t_eff = time.perf_counter() - t1
        total = time.perf_counter() - t0
        print(f"lift and effects tables: load {t_load:.2f}s + lift {t_lift:.2f}s ({len(lift.frame)} arms) + "
              f"effects {t_eff:.2f}s ({len(eff)} terms) = {total:.2f}s  (target < 3 s)")
        t0 = time.perf_counter()
        c = frames.curves(p2, out, store.epochs_frame(s.name))
        print(f"learning curves (HTML report only): {time.perf_counter() - t0:.2f}s ({len(c):,} rows)")

    s12 = spec(12, 5)
    t0 = time.perf_counter()
    p12 = plan(s12)
    print(f"plan 2^12 full factorial x 5 seeds: {len(p12.trials):,} trials in {time.perf_counter() - t0:.2f}s "
          f"(target < 2 s)")
    t0 = time.perf_counter()
    spec(12, 5)
    print(f"validate that spec (includes planning its arms for conflict checks): {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
