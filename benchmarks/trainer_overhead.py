"""Trainer overhead: ablate's `run_trial` (no tricks) vs a bare hand-written PyTorch loop.

Both train the same model (built by ablate's registry, so the architecture is identical) on the
same in-memory digits data with the same batch size, epochs, SGD + step schedule, and per-epoch
validation; base augmentation is off in both (crop_padding: 0) so only the trainer differs. Runs are interleaved (ablate, bare,
ablate, bare, ...) and the medians compared, so drift in machine load hits both alike.

    python benchmarks/trainer_overhead.py            # prints per-run times, "ratio: N.NN", quickstart wall time
    python benchmarks/trainer_overhead.py --repeats 7 --skip-quickstart

Target: ratio <= 1.05 on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ablate.data import load_data  # noqa: E402
from ablate.models import build_model  # noqa: E402
from ablate.design.plan import plan  # noqa: E402
from ablate.design.spec import parse_spec  # noqa: E402
from ablate.train import run_trial  # noqa: E402

SPEC = """
name: overhead
data: {name: digits, image_size: 16, crop_padding: 0}
model: {name: cifar_resnet, depth: 8}
recipe: {epochs: 6, batch_size: 64, lr: 0.1, momentum: 0.9, weight_decay: 5.0e-4, schedule: step}
tricks: {}
design: {kind: explicit, arms: [[]]}
seeds: 1
"""


def bare_loop(trial) -> float:
    """The plain loop a researcher would write; returns final validation accuracy (%)."""
    torch.manual_seed(trial.seed)
    data = load_data(trial.data)
    model = build_model(trial.model, in_channels=data.channels, num_classes=data.num_classes)
    r = trial.recipe
    opt = torch.optim.SGD(model.parameters(), lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    x_all = data.train_x.float() / 255
    mean, std = x_all.mean(dim=(0, 2, 3)).view(1, -1, 1, 1), x_all.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
    val_x = (data.val_x.float() / 255 - mean) / std
    n, bs, pad = len(data.train_y), r.batch_size, trial.data.crop_padding
    steps = (n + bs - 1) // bs
    total = r.epochs * steps
    step = 0
    acc = 0.0
    for _ in range(r.epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            x = (data.train_x[idx].float() / 255 - mean) / std
            x = F.pad(x, (pad,) * 4)
            dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()   # one offset per batch: the usual shortcut
            x = x[:, :, dy:dy + data.train_x.shape[2], dx:dx + data.train_x.shape[3]]
            for g in opt.param_groups:
                g["lr"] = r.lr * (0.1 ** sum(step >= m * total for m in r.milestones))
            loss = F.cross_entropy(model(x), data.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        with torch.no_grad():
            acc = (model(val_x).argmax(1) == data.val_y).float().mean().item() * 100
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-quickstart", action="store_true")
    args = ap.parse_args()
    trial = plan(parse_spec(SPEC)).trials[0]
    load_data(trial.data)
    run_trial(trial), bare_loop(trial)   # warm-up: imports, allocator, oneDNN primitives
    times = {"ablate": [], "bare": []}
    for i in range(args.repeats):
        for name, fn in (("ablate", run_trial), ("bare", bare_loop)):
            t0 = time.perf_counter()
            fn(trial)
            times[name].append(time.perf_counter() - t0)
        print(f"repeat {i + 1}: ablate {times['ablate'][-1]:.3f}s  bare {times['bare'][-1]:.3f}s", flush=True)
    a, b = statistics.median(times["ablate"]), statistics.median(times["bare"])
    print(f"device: cpu, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{trial.recipe.epochs} epochs of {len(load_data(trial.data).train_y)} images")
    print(f"median ablate {a:.3f}s, bare {b:.3f}s")
    print(f"ratio: {a / b:.2f}")
    if not args.skip_quickstart:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ablate", "run", "quickstart", "--store", f"{tmp}/q.db",
                            "--out", f"{tmp}/rep"], cwd=tmp, check=True, capture_output=True,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
            print(f"quickstart wall time: {time.perf_counter() - t0:.1f}s (ablate run quickstart, 15 trials)")


if __name__ == "__main__":
    main()
