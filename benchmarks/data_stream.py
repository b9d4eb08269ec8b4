"""Streaming data path vs in-memory path: training images/s on the same folder of JPEGs.

Generates a folder of JPEGs (default 400 train + 80 val + 80 test, 96x96 px, 4 classes) in a
temporary directory and trains the same model, batch size and epochs on it twice per repeat:
`in_memory: true` (decoded once, batches sliced from tensors on the device) and `in_memory:
false` (decoded and resized per batch by DataLoader workers, pinned memory and non-blocking
copies on CUDA). Runs are interleaved (memory, stream, memory, ...) so drift in machine load hits
both alike; each run's figure is `run_trial`'s mean training images/s over its epochs (decoding
included for the stream, not the one-off load for the memory path, which is memoised after the
warm-up run). Prints a table of the repeats, the medians and `ratio:` (stream / memory).

    python benchmarks/data_stream.py
    python benchmarks/data_stream.py --images 800 --size 128 --image-size 64 --workers 4 --repeats 5

With a small model the stream's JPEG decoding is the bottleneck, so the ratio shows what the
workers cost against free in-memory slicing; with a large model on a GPU, whether enough
workers hide decoding behind the step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ablate.data.stream import default_workers  # noqa: E402
from ablate.design.plan import plan  # noqa: E402
from ablate.design.spec import parse_spec  # noqa: E402
from ablate.train import pick_device, run_trial  # noqa: E402


def write_folder(root: Path, images: int, size: int, classes: int = 4) -> None:
    """train/val/test class folders of JPEGs whose class shows in their colour."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 215, (classes, 3))
    for split, n in (("train", images), ("val", images // 5), ("test", images // 5)):
        for i in range(n):
            c = i % classes
            img = np.clip(colours[c] + rng.normal(0, 50, (size, size, 3)), 0, 255).astype(np.uint8)
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i:05d}.jpg", quality=90)


def trial_for(root: Path, *, in_memory: bool, image_size: int, workers: int, batch_size: int, epochs: int):
    spec = {"name": "stream-bench",
            "data": {"name": "imagefolder", "root": str(root), "image_size": image_size,
                     "in_memory": in_memory, "workers": workers},
            "model": {"name": "cifar_resnet", "depth": 8},
            "recipe": {"epochs": epochs, "batch_size": batch_size, "schedule": "constant"},
            "tricks": {}, "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1}
    return plan(parse_spec(yaml.safe_dump(spec))).trials[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=400, help="training JPEGs (val and test: a fifth each)")
    ap.add_argument("--size", type=int, default=96, help="JPEG side in pixels")
    ap.add_argument("--image-size", type=int, default=32, help="side the trainer resizes to")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = ap.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, args.images, args.size)
        trials = {name: trial_for(root, in_memory=name == "memory", image_size=args.image_size,
                                  workers=args.workers, batch_size=args.batch_size, epochs=args.epochs)
                  for name in ("memory", "stream")}
        for t in trials.values():   # warm-up: imports, the in-memory load, the stream's mean/std
            run_trial(t, device=str(device))
        rates: dict[str, list[float]] = {"memory": [], "stream": []}
        print(f"{'repeat':>6}  {'memory img/s':>12}  {'stream img/s':>12}")
        for i in range(args.repeats):
            for name, t in trials.items():
                rates[name].append(run_trial(t, device=str(device))["images_per_s"])
            print(f"{i + 1:>6}  {rates['memory'][-1]:>12,.0f}  {rates['stream'][-1]:>12,.0f}", flush=True)
    mem, stream = statistics.median(rates["memory"]), statistics.median(rates["stream"])
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.images} JPEGs of {args.size}px -> {args.image_size}px, ResNet-8, batch {args.batch_size}, "
          f"{args.epochs} epochs, {args.workers} workers, {args.repeats} repeats")
    print(f"median memory {mem:,.0f} img/s, stream {stream:,.0f} img/s")
    print(f"ratio: {stream / mem:.2f}")


if __name__ == "__main__":
    main()
