"""Fused trials vs one at a time: the same trials through `FusedExecutor` (one grouped-conv model
per fusion group) and through `InProcessExecutor` (the trainer, one trial after another).

Cases (CIFAR-shaped synthetic data, 32x32x3, 10 classes; say so when quoting):
- seeds:  5 seeds of ResNet-20, no tricks;
- design: a 5-arm x 5-seed cumulative design of ResNet-20 (baseline, + cosine, + label
  smoothing, + mixup, + no bias decay): 25 trials, one fused group.
Each case runs `--repeats` times, fused and one-at-a-time interleaved so that drift in machine
load hits both alike; the table shows medians and `ratio:` lines give one-at-a-time time /
fused time (above 1: fusing is faster). `--approach` adds the measurement behind the choice of
grouped convolutions over torch.func's vmap (`ablate/fused/model.py`).

    python benchmarks/fused_trials.py                       # CUDA when present, else the CPU
    python benchmarks/fused_trials.py --train-size 2048 --epochs 2 --repeats 3
    python benchmarks/fused_trials.py --smoke               # seconds: the test suite's form

Target (issue 12): ratio >= 3 for the seeds case on a GPU (not measured: no GPU was available).
On the CPU the ratio says how much per-step overhead fusing saves there, not what a GPU gains;
measured figures are in the README ("Fused trials").
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ablate.fused.model import fuse_input, fuse_models  # noqa: E402
from ablate.design.plan import plan  # noqa: E402
from ablate.runner.events import Failure, FinalMetrics  # noqa: E402
from ablate.runner.fused import FusedExecutor  # noqa: E402
from ablate.runner.inprocess import InProcessExecutor  # noqa: E402
from ablate.design.spec import spec_from_dict  # noqa: E402
from ablate.train import pick_device  # noqa: E402

CUMULATIVE_TRICKS = {"cos": {"use": "cosine"}, "ls": {"use": "label_smoothing"}, "mix": {"use": "mixup"},
                     "nbd": {"use": "no_bias_decay"}}


def spec_for(case: str, *, model: dict, data: dict, epochs: int, batch_size: int, seeds: int):
    design = ({"kind": "explicit", "arms": [[]]} if case == "seeds" else {"kind": "cumulative"})
    tricks = {} if case == "seeds" else CUMULATIVE_TRICKS
    return spec_from_dict({"name": f"fused-{case}", "data": data, "model": model,
                           "recipe": {"epochs": epochs, "batch_size": batch_size, "lr": 0.1, "schedule": "constant",
                                      "eval_batch_size": 1024},
                           "tricks": tricks, "design": design, "seeds": seeds}, source="fused_trials.py")


def timed_run(executor, trials) -> tuple[float, dict[str, dict]]:
    finals, failures = {}, []

    def emit(event):
        if isinstance(event, FinalMetrics):
            finals[event.trial_id] = event.metrics
        elif isinstance(event, Failure):
            failures.append(f"{event.kind}: {event.message.splitlines()[0]}")
        return "continue"

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    executor.run(trials, emit)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if failures or len(finals) != len(trials):
        raise SystemExit(f"benchmark trials did not all complete: {failures}")
    return elapsed, finals


def compare(trials, device: str, repeats: int) -> dict:
    alone, fused = [], []
    for _ in range(repeats):
        t_alone, ref = timed_run(InProcessExecutor(device=device), trials)
        t_fused, got = timed_run(FusedExecutor(device=device, capacity=len(trials)), trials)
        alone.append(t_alone)
        fused.append(t_fused)
    gap = max(abs(ref[t.id]["val_loss"] - got[t.id]["val_loss"]) / abs(ref[t.id]["val_loss"]) for t in trials)
    return {"alone": statistics.median(alone), "fused": statistics.median(fused), "trials": len(trials),
            "val_loss_gap": gap}


def approach(device: str, members: int, batch: int, width: int, repeats: int) -> dict:
    """One forward + backward of `members` convnets: vmap (torch.func) vs grouped convs vs a loop."""
    from torch.func import functional_call, stack_module_state, vmap

    from ablate.models.convnet import convnet

    dev = torch.device(device)
    torch.manual_seed(0)
    models = [convnet(width=width, in_channels=3, num_classes=10).to(dev) for _ in range(members)]
    fused = fuse_models(models)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    vmapped = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))
    xs = torch.randn(members, batch, 3, 32, 32, device=dev)
    xf = fuse_input(xs)
    runs = {"vmap": lambda: vmapped(params, buffers, xs).sum().backward(),
            "grouped": lambda: fused(xf).sum().backward(),
            "loop": lambda: [m(x).sum().backward() for m, x in zip(models, xs)]}
    out = {}
    for name, fn in runs.items():
        fn()
        times = []
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", help="default: cuda if available, else cpu")
    ap.add_argument("--train-size", type=int, help="synthetic training images (default: 5000 on CUDA, 512 on CPU)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1, help="runs per case; medians are shown")
    ap.add_argument("--cases", default="seeds,design", help="comma-separated: seeds, design")
    ap.add_argument("--approach", action="store_true", help="also time vmap vs grouped convs vs a loop")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite (correctness, not speed)")
    args = ap.parse_args(argv)
    device = str(pick_device(args.device))
    on_gpu = device.startswith("cuda")
    model = {"name": "cifar_resnet", "depth": 20, "width": 16}
    data = {"name": "synthetic", "image_size": 32, "channels": 3, "num_classes": 10,
            "train_size": args.train_size or (5000 if on_gpu else 512), "val_size": 500, "test_size": 500,
            "crop_padding": 4, "flip": True}
    seeds, batch_size, epochs = args.seeds, args.batch_size, args.epochs
    if args.smoke:
        model = {"name": "convnet", "width": 4}
        data = {"name": "synthetic", "image_size": 8, "channels": 3, "num_classes": 10, "train_size": 32,
                "val_size": 16, "test_size": 16}
        seeds, batch_size, epochs = 2, 16, 1
    name = torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"fused_trials on {device} ({name}); model {model}; data {data['name']} "
          f"{data['image_size']}x{data['image_size']}x{data['channels']}, {data['train_size']} train images; "
          f"{epochs} epoch(s), batch {batch_size}, {args.repeats} repeat(s), medians")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ("seeds", "design")]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from seeds, design")
    rows = []
    print(f"{'case':<8} {'trials':>6} {'one_at_a_time_s':>16} {'fused_s':>9} {'ratio':>7} {'val_loss_rel_gap':>17}",
          flush=True)
    for case in cases:
        spec = spec_for(case, model=model, data=data, epochs=epochs, batch_size=batch_size, seeds=seeds)
        r = compare(plan(spec).trials, device, args.repeats)
        rows.append((case, r))
        print(f"{case:<8} {r['trials']:>6} {r['alone']:>16.2f} {r['fused']:>9.2f} "
              f"{r['alone'] / r['fused']:>7.2f} {r['val_loss_gap']:>17.2e}", flush=True)
    for case, r in rows:
        print(f"ratio: {case} {r['alone'] / r['fused']:.2f}")
    if args.approach:
        members = 2 if args.smoke else 5
        t = approach(device, members, 4 if args.smoke else 64, 4 if args.smoke else 16, max(args.repeats, 3))
        print(f"approach ({members} convnets, one forward + backward): vmap {t['vmap']:.3f} s, "
              f"grouped {t['grouped']:.3f} s, loop {t['loop']:.3f} s")
        print(f"ratio: vmap_over_grouped {t['vmap'] / t['grouped']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
