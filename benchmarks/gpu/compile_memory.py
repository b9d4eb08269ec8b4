"""Step 6 of the GPU check: the peak-memory column and torch.compile's time, as the lift table
shows them.

Runs the quickstart (ResNet-8, bundled digits, 6 arms) at a few epochs and seeds with
`recipe: {compile: true}`, one trial at a time (`--fuse off`, so every trial has its own peak
memory and its own compile time), through `run_experiment` as `ablate run` does, then prints the
lift table with the `memory` and `time` columns and one line per trial. Expected on a GPU: a
peak-memory figure in every row; `compile_s` large for the first trial and near zero for the
later ones (same model class and batch shape: the graphs are reused); Time/trial without the
compile time and a note giving its total.

    python benchmarks/gpu/compile_memory.py --device cuda          # the GPU check's step 6
    python benchmarks/gpu/compile_memory.py --smoke --backend aot_eager --device cpu   # dry run
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ablate import compiling  # noqa: E402
from ablate.report import build_report  # noqa: E402
from ablate.api import run_experiment  # noqa: E402
from ablate.design.shrink import load_run_spec  # noqa: E402
from ablate.store import Store  # noqa: E402
from ablate.train import pick_device  # noqa: E402


def compiled_quickstart(*, epochs: int, seeds: int, smoke: bool):
    """The quickstart spec with compile on, `epochs` epochs and `seeds` seeds (`smoke`: shrunk)."""
    overrides = ["recipe.compile=true", f"recipe.epochs={epochs}", f"seeds={seeds}"]
    return load_run_spec("quickstart", overrides=overrides, shrink=smoke)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", help="default: cuda if available, else cpu")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--backend", choices=["inductor", "aot_eager"], default="inductor",
                    help="torch.compile's backend (aot_eager: no code generation, seconds on a CPU)")
    ap.add_argument("--smoke", action="store_true", help="the shrunk quickstart (1 epoch, 1 seed): the dry run's form")
    args = ap.parse_args(argv)
    for name, value in (("--epochs", args.epochs), ("--seeds", args.seeds)):
        if value < 1:
            ap.error(f"{name} must be at least 1, got {value}")
    device = str(pick_device(args.device))
    spec = compiled_quickstart(epochs=args.epochs, seeds=args.seeds, smoke=args.smoke)
    compiling.BACKEND = args.backend
    print(f"compile_memory on {device}: '{spec.name}' with recipe.compile (backend {args.backend}), "
          f"{spec.recipe.epochs} epoch(s), {len(spec.seeds.values)} seed(s), --fuse off", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "compile.db", create=True)
        start = time.perf_counter()
        plan_, _ = run_experiment(spec, store, device=device, fuse="off")
        wall = time.perf_counter() - start
        frame = store.trials_frame(spec.name)
        done = frame[frame["status"] == "complete"]
        if len(done) != len(plan_.trials):
            raise SystemExit(f"only {len(done)} of {len(plan_.trials)} trials completed")
        table = build_report(store, spec.name, columns=("params", "memory", "time")).markdown()
    done = done.sort_values("started", kind="stable")   # run order: the first trial pays for compiling
    for _, row in done.iterrows():
        peak = "none" if math.isnan(row["peak_mem_mb"]) else f"{row['peak_mem_mb']:.0f}"
        print(f"trial arm {row['arm']} seed {row['seed']}: compile_s {row['compile_s']:.2f}, "
              f"peak_mem_mb {peak}, wall_s {row['wall_s']:.2f}")
    compile_s = done["compile_s"].tolist()
    peak = done["peak_mem_mb"].dropna().tolist()
    later = compile_s[1:]
    print(f"figure: compile_s first {compile_s[0]:.2f}, later median "
          f"{statistics.median(later) if later else float('nan'):.2f}, total {sum(compile_s):.2f}")
    print(f"figure: peak_mem_mib {max(peak):.0f}" if peak else "figure: peak_mem_mib none (not on a GPU)")
    print(f"figure: wall_s {wall:.1f} for {len(done)} trials")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
