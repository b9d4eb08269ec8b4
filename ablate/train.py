"""The trainer: `run_trial(trial, report) -> metrics`. It imports neither Optuna nor Ray.

Tricks edit a `Procedure` (ablate.tricks); this module applies it in one fixed order:

1. model: build (seeded), structural edits (ResNet-B/C/D, attention), init edits (zero-gamma);
2. optimiser: param groups (no bias decay), then the optimiser the procedure names;
3. per batch: per-image policies on uint8 (AutoAugment, RandAugment) -> float, normalise ->
   base translation and flip -> batched erasing (random erasing, cutout) -> mixing (mixup or
   CutMix) -> lr for this iteration (warmup x schedule) -> forward under autocast (mixed
   precision) -> cross-entropy with label smoothing -> backward (SAM: ascent, second backward)
   -> optimiser step -> EMA update;
4. per epoch: evaluate (the EMA weights when EMA is on), report, stop if the loss is not finite;
5. at the end: test accuracy (top-1, top-5 with >= 10 classes).

Randomness: a trial's seed fixes model initialisation, data order, base augmentation and the
tricks' own draws, each from its own stream. Paired arms therefore see the same batches in the
same order with the same crops, whatever their tricks draw. On the CPU runs are bit-for-bit
repeatable; on CUDA cuDNN autotuning is allowed, so they are repeatable only statistically.
Accuracies are percentages.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate.data import load_data
from ablate.data.augment import random_flip, random_translate, to_float
from ablate.errors import TrialDiverged
from ablate.models import build_model, count_params
from ablate.tricks import Procedure, get_trick, lr_multiplier
from ablate.tricks.weight_decay import param_groups

Report = Callable[[dict[str, Any]], None]

# Offsets that split one trial seed into independent streams.
_STREAMS = {"init": 0, "order": 1_000_003, "augment": 2_000_003, "tricks": 3_000_017}


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_procedure(trial, num_classes: int) -> Procedure:
    r = trial.recipe
    proc = Procedure(epochs=r.epochs, batch_size=r.batch_size, optimizer=r.optimizer, lr=r.lr,
                     momentum=r.momentum, nesterov=r.nesterov, weight_decay=r.weight_decay,
                     schedule=r.schedule, milestones=tuple(r.milestones), gamma=r.gamma,
                     num_classes=num_classes)
    for setting in trial.tricks:
        get_trick(setting.use).apply(setting.params, proc)
    return proc


def build_optimizer(proc: Procedure, model: nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, proc.weight_decay, decay_norm_and_bias=proc.decay_norm_and_bias)
    if proc.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=proc.lr, momentum=proc.momentum, nesterov=proc.nesterov)
    else:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}[proc.optimizer]
        opt = cls(groups, lr=proc.lr, betas=proc.betas)
    for g in opt.param_groups:
        g["base_lr"] = proc.lr
    return opt


@contextlib.contextmanager
def _determinism(device: torch.device):
    """Fast autotuned kernels on CUDA (restored afterwards). On the CPU nothing is switched:
    torch's CPU kernels are already repeatable for a fixed thread count (the trick contract test
    checks every trick), and `use_deterministic_algorithms` cost about 5% here for nothing."""
    bench = torch.backends.cudnn.benchmark
    try:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.backends.cudnn.benchmark = bench


def _autocast(device: torch.device, dtype: str | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mean, std, batch_size: int,
             autocast_dtype: str | None = None, topk: int = 1) -> dict[str, float]:
    """Loss and top-1 (and top-k) accuracy (%) on uint8 images `x`, no augmentation."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    correct_k = torch.zeros((), device=x.device)
    for i in range(0, len(y), batch_size):
        xb = to_float(x[i:i + batch_size], mean, std)
        yb = y[i:i + batch_size]
        with _autocast(x.device, autocast_dtype):
            out = model(xb)
        out = out.float()
        loss += F.cross_entropy(out, yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
        if topk > 1:
            correct_k += (out.topk(topk, dim=1).indices == yb[:, None]).any(1).sum()
    n = max(len(y), 1)
    res = {"loss": loss.item() / n, "acc": 100.0 * correct.item() / n}
    if topk > 1:
        res[f"top{topk}"] = 100.0 * correct_k.item() / n
    model.train()
    return res


def _sam_perturb(params: list[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """Move weights to the (first-order) worst case within radius rho; return the offsets."""
    grads = [p.grad for p in params]
    norm = torch.norm(torch.stack([g.norm() for g in grads if g is not None]))
    scale = rho / (norm + 1e-12)
    eps = []
    with torch.no_grad():
        for p, g in zip(params, grads):
            e = g * scale if g is not None else torch.zeros_like(p)
            p.add_(e)
            eps.append(e)
    return eps


def run_trial(trial, report: Report | None = None, *, device: str | None = None) -> dict[str, Any]:
    """Train one trial and return its final metrics.

    `report(metrics)` is called after every epoch with: epoch, train_loss, train_acc, val_loss,
    val_acc, lr, images_per_s, epoch_s. It may raise `TrialPruned` to stop early (the exception
    propagates). A non-finite training loss raises `TrialDiverged`.
    """
    dev = pick_device(device)
    start = time.perf_counter()
    with _determinism(dev):
        return _train(trial, report, dev, start)


@dataclass
class Setup:
    """Everything built for a trial before its first step (tests inspect it)."""

    proc: Procedure
    data: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    scaler: Any = None
    ema: Any = None


def prepare(trial, device: torch.device | str = "cpu") -> Setup:
    """Load data, apply tricks to the procedure, build and edit the model, build the optimiser."""
    dev = torch.device(device)
    data = load_data(trial.data)
    proc = build_procedure(trial, data.num_classes)
    torch.manual_seed(trial.seed + _STREAMS["init"])
    model = build_model(trial.model, in_channels=data.channels, num_classes=data.num_classes)
    for edit in proc.model_edits:
        edit(model)
    for edit in proc.init_edits:
        edit(model)
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = build_optimizer(proc, model)
    scaler = torch.amp.GradScaler(dev.type) if proc.autocast_dtype == "float16" else None
    ema = None
    if proc.ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel

        from ablate.tricks.training import ema_update_fn

        ema = AveragedModel(model, multi_avg_fn=ema_update_fn(proc.ema_decay, warmup=proc.ema_warmup),
                            use_buffers=True)
    criterion = nn.CrossEntropyLoss(label_smoothing=proc.label_smoothing)
    return Setup(proc, data, model, opt, criterion, scaler, ema)


def forward_gflops(model: nn.Module, image: torch.Tensor, mean, std) -> float:
    """Forward GFLOPs for one image (torch's FlopCounterMode: convs and matmuls, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(to_float(image, mean, std))
    model.train()
    return counter.get_total_flops() / 1e9


def _train(trial, report: Report | None, dev: torch.device, start: float) -> dict[str, Any]:
    seed = trial.seed
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    setup = prepare(trial, dev)
    proc, data, model, opt = setup.proc, setup.data, setup.model, setup.optimizer
    criterion, scaler, ema = setup.criterion, setup.scaler, setup.ema
    n_params = count_params(model)
    params = [p for p in model.parameters() if p.requires_grad]

    train_x, train_y = data.train_x.to(dev), data.train_y.to(dev)
    val_x, val_y = data.val_x.to(dev), data.val_y.to(dev)
    mean, std = (t.to(dev) for t in data.mean_std())
    order_gen = torch.Generator().manual_seed(seed + _STREAMS["order"])
    aug_gen = torch.Generator(device=dev).manual_seed(seed + _STREAMS["augment"])
    torch.manual_seed(seed + _STREAMS["tricks"])

    n, bs = len(train_y), proc.batch_size
    steps = max(n // bs, 1) if n % bs == 1 else math.ceil(n / bs)   # a 1-image batch breaks BN
    pad, flip = trial.data.crop_padding, trial.data.flip
    eval_bs = trial.recipe.eval_batch_size
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(1, proc.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=order_gen).to(dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        seen = 0
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = train_x[idx], train_y[idx]
            for policy in proc.sample_policies:
                xb = policy(xb)
            xb = to_float(xb, mean, std)
            xb = random_translate(xb, pad, aug_gen)
            if flip:
                xb = random_flip(xb, aug_gen)
            for erase in proc.batch_erasers:
                xb = erase(xb)
            target = yb
            if proc.batch_mixers:
                k = 0 if len(proc.batch_mixers) == 1 else int(torch.randint(len(proc.batch_mixers), ()))
                xb, target = proc.batch_mixers[k](xb, yb)
            if dev.type == "cuda":
                xb = xb.contiguous(memory_format=torch.channels_last)
            factor = lr_multiplier(proc, step, steps)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
            with _autocast(dev, proc.autocast_dtype):
                out = model(xb)
                loss = criterion(out, target)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            elif proc.sam_rho is not None:
                loss.backward()
                eps = _sam_perturb(params, proc.sam_rho)
                opt.zero_grad(set_to_none=True)
                with _autocast(dev, proc.autocast_dtype):
                    criterion(model(xb), target).backward()
                with torch.no_grad():
                    for p, e in zip(params, eps):
                        p.sub_(e)
                opt.step()
            else:
                loss.backward()
                opt.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach().float() * len(yb)
            correct += (out.detach().argmax(1) == yb).sum()
            seen += len(yb)
            step += 1
        train_loss = loss_sum.item() / seen
        train_s = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            raise TrialDiverged(f"training loss became {train_loss} in epoch {epoch} "
                                f"(lr {opt.param_groups[0]['lr']:.4g})")
        evaluated = ema.module if ema is not None else model
        val = evaluate(evaluated, val_x, val_y, mean=mean, std=std, batch_size=eval_bs,
                       autocast_dtype=proc.autocast_dtype)
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": 100.0 * correct.item() / seen,
                   "val_loss": val["loss"], "val_acc": val["acc"], "lr": opt.param_groups[0]["lr"],
                   "images_per_s": seen / train_s, "epoch_s": time.perf_counter() - t0}
        history.append(metrics)
        if report is not None:
            report(metrics)

    evaluated = ema.module if ema is not None else model
    gflops = forward_gflops(evaluated, data.test_x[:1].to(dev), mean, std)
    topk = 5 if data.num_classes >= 10 else 1
    test = evaluate(evaluated, data.test_x.to(dev), data.test_y.to(dev), mean=mean, std=std,
                    batch_size=eval_bs, autocast_dtype=proc.autocast_dtype, topk=topk)
    last = history[-1]
    final = {"val_acc": last["val_acc"], "val_loss": last["val_loss"], "test_acc": test["acc"],
             "test_loss": test["loss"], "train_loss": last["train_loss"], "train_acc": last["train_acc"],
             "best_val_acc": max(h["val_acc"] for h in history), "epochs": len(history),
             "params": n_params, "images_per_s": sum(h["images_per_s"] for h in history) / len(history),
             "wall_s": time.perf_counter() - start, "device": str(dev), "gflops": gflops,
             "peak_mem_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None}
    if topk > 1:
        final["test_top5"] = test["top5"]
    return final


def measure_throughput(trial, *, steps: int = 6, device: str | None = None) -> tuple[float, int]:
    """Training images per second of `trial`'s model on this device, from a few plain steps
    (after one warm-up step), and the model's parameter count. Used by `ablate plan` to
    estimate cost; no tricks applied."""
    dev = pick_device(device)
    data = load_data(trial.data)
    torch.manual_seed(trial.seed)
    model = build_model(trial.model, in_channels=data.channels, num_classes=data.num_classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    mean, std = (t.to(dev) for t in data.mean_std())
    bs = min(trial.recipe.batch_size, len(data.train_y))
    x = to_float(data.train_x[:bs].to(dev), mean, std)
    y = data.train_y[:bs].to(dev)
    elapsed = 0.0
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:
            elapsed += time.perf_counter() - t0
    return steps * bs / max(elapsed, 1e-9), count_params(model)
