"""Train a group of trials as one fused model (see `ablate.fused.model`), member by member
exactly as `ablate.train` trains each alone:

- each member is built by the trainer's own `seeded_model` (its init stream, its init edits),
  has its own `Procedure`, its own `Streams` (batch order, base augmentation, tricks' draws) and
  its batch goes through the trainer's `prepare_batch` with its own tricks;
- one forward of the fused model computes every member; each member's loss is its own
  criterion (label smoothing, soft targets) on its own logits, and the losses are summed for
  one backward (a member's parameters get the gradient of its own loss only);
- the fused optimiser (SGD, Adam, AdamW) steps each member with its own lr (its
  `lr_multiplier`), momentum or betas, and decay;
- per epoch the trainer's metrics per member; a member whose training loss is not finite is
  recorded as diverged (the trainer's message) and masked: its weights are zeroed, its lr is 0
  and its outputs are ignored; a member the caller stops (pruning) is masked the same way;
- at the end each member's weights go back into its own model and the trainer's
  `final_metrics` computes its final metrics (the same keys, the same test evaluation);
- bfloat16 mixed precision (`amp`, shared by the group: part of its fusion key) autocasts the
  fused forward and loss; `recipe.compile` compiles the fused model once for the group
  (`ablate.compiling`), its compile time reported in every member's final metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate.data import load_data
from ablate.data.augment import to_float
from ablate.fused.model import NotFusable, fuse_input, fuse_models, member_view, split_output, unfuse_into
from ablate.fused.optim import MemberSettings, fused_optimizer
from ablate.train import (Setup, Streams, autocast, determinism, batch_sizes, build_procedure, final_metrics,
                          pick_device, prepare_batch, seeded_model, steps_per_epoch)
from ablate.tricks import lr_multiplier

# report(member index, epoch metrics) -> False to stop that member (pruned)
EpochReport = Callable[[int, dict[str, Any]], bool]
# ended(member index, outcome, payload): ("final", metrics) | ("diverged" | "pruned", message)
Ended = Callable[[int, str, Any], None]


@torch.no_grad()
def fused_evaluate(fused: nn.Module, x: torch.Tensor, y: torch.Tensor, members: int, *, mean, std,
                   batch_size: int, autocast_dtype: str | None = None) -> tuple[list[float], list[float]]:
    """Every member's loss and top-1 accuracy (%) on uint8 images `x` (the same for all), like
    `ablate.train.evaluate`."""
    fused.eval()
    loss = torch.zeros(members, device=x.device)
    correct = torch.zeros(members, device=x.device)
    for i in range(0, len(y), batch_size):
        xb = to_float(x[i:i + batch_size], mean, std)
        yb = y[i:i + batch_size]
        with autocast(x.device, autocast_dtype):
            out = fused(xb.repeat(1, members, 1, 1))
        out = split_output(out, members).float()     # (M, B, K)
        loss += F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.repeat(members),
                                reduction="none").view(members, -1).sum(1)
        correct += (out.argmax(2) == yb).sum(1)
    fused.train()
    n = max(len(y), 1)
    return (loss / n).tolist(), (100.0 * correct / n).tolist()


def train_group(trials, report: EpochReport, ended: Ended, *, device: str | None = None,
                on_fused: Callable[[], None] | None = None) -> None:
    """Train `trials` (equal `ablate.fused.rules.fusion_key`) fused; every member ends through
    `ended`. `on_fused()` is called once the fused model is built, before the first step; before
    that, `NotFusable` is raised when the models cannot be fused."""
    dev = pick_device(device)
    start = time.perf_counter()
    with determinism(dev):
        _train_group(list(trials), report, ended, dev, start, on_fused)


def _train_group(trials, report: EpochReport, ended: Ended, dev: torch.device, start: float,
                 on_fused: Callable[[], None] | None) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    m = len(trials)
    data = load_data(trials[0].data)
    if not hasattr(data, "train_x"):
        raise NotFusable("the data is streamed from files (too large for memory); fused trials slice in-memory tensors")
    procs = [build_procedure(t, data.num_classes) for t in trials]
    models = [seeded_model(t, data, p).to(dev) for t, p in zip(trials, procs)]
    families = {p.optimizer for p in procs}
    if len(families) != 1:
        raise NotFusable(f"members use different optimisers: {sorted(families)}")
    fused = fuse_models(models)
    if on_fused is not None:
        on_fused()
    if dev.type == "cuda":
        fused.to(memory_format=torch.channels_last)
    shapes = dict(models[0].named_parameters())
    names, params = zip(*[(n, p) for n, p in fused.named_parameters() if p.requires_grad])
    opt = fused_optimizer(procs[0].optimizer, list(params), [shapes[n].ndim for n in names],
                          [MemberSettings.of(p) for p in procs])
    criteria = [nn.CrossEntropyLoss(label_smoothing=p.label_smoothing) for p in procs]
    streams = [Streams.for_seed(t.seed, dev) for t in trials]
    train_x, train_y = data.on_device("train", dev)
    val_x, val_y = data.on_device("val", dev)
    mean, std = (t.to(dev) for t in data.mean_std())
    recipe, proc0 = trials[0].recipe, procs[0]
    pad, flip = trials[0].data.crop_padding, trials[0].data.flip
    n, bs = len(train_y), proc0.batch_size
    steps = steps_per_epoch(n, bs)
    forward, compile_s = fused, None
    if recipe.compile:
        from ablate.compiling import compile_for_training

        c, h, w = train_x.shape[1:]
        forward, compile_s = compile_for_training(
            fused, [(b, m * c, h, w) for b in batch_sizes(n, bs)], device=dev,
            autocast=lambda: autocast(dev, proc0.autocast_dtype))
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
    active = [True] * m
    histories: list[list[dict[str, Any]]] = [[] for _ in trials]
    lrs = [p.lr for p in procs]

    def mask(k: int, outcome: str, message: str) -> None:
        active[k] = False
        with torch.no_grad():
            for p in params:
                member_view(p, m)[k].zero_()          # no NaN flows through a masked member
        ended(k, outcome, message)

    for epoch in range(1, proc0.epochs + 1):
        t0 = time.perf_counter()
        loss_sum = torch.zeros(m, device=dev)
        correct = torch.zeros(m, device=dev)
        seen = 0
        perms = [torch.randperm(n, generator=s.order).to(dev) if active[k] else None for k, s in enumerate(streams)]
        for i in range(steps):
            xs, targets, labels = [], [], []
            for k in range(m):
                if not active[k]:
                    xs.append(None)
                    targets.append(None)
                    labels.append(None)
                    continue
                idx = perms[k][i * bs:(i + 1) * bs]
                yb = train_y[idx]
                xb, target = prepare_batch(train_x[idx], yb, procs[k], streams[k], mean=mean, std=std,
                                           pad=pad, flip=flip)
                xs.append(xb)
                targets.append(target)
                labels.append(yb)
            filler = next(x for x in xs if x is not None)
            xin = fuse_input(torch.stack([x if x is not None else torch.zeros_like(filler) for x in xs]))
            if dev.type == "cuda":
                xin = xin.contiguous(memory_format=torch.channels_last)
            step = (epoch - 1) * steps + i
            lrs = [p.lr * lr_multiplier(p, step, steps) for p in procs]
            with autocast(dev, proc0.autocast_dtype):
                outs = split_output(forward(xin), m)
                losses = {k: criteria[k](outs[k], targets[k]) for k in range(m) if active[k]}
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step(torch.tensor(lrs, dtype=torch.float64, device=dev),
                     torch.tensor(active, device=dev))
            for k, loss in losses.items():
                loss_sum[k] += loss.detach().float() * len(labels[k])
                correct[k] += (outs[k].detach().argmax(1) == labels[k]).sum()
            seen += len(filler)
        train_s = time.perf_counter() - t0
        train_loss = (loss_sum / seen).tolist()
        train_acc = (100.0 * correct / seen).tolist()
        for k in range(m):
            if active[k] and not math.isfinite(train_loss[k]):
                mask(k, "diverged", f"training loss became {train_loss[k]} in epoch {epoch} (lr {lrs[k]:.4g})")
        if not any(active):
            return
        val_loss, val_acc = fused_evaluate(fused, val_x, val_y, m, mean=mean, std=std,
                                           batch_size=recipe.eval_batch_size, autocast_dtype=proc0.autocast_dtype)
        epoch_s = time.perf_counter() - t0
        for k in range(m):
            if not active[k]:
                continue
            metrics = {"epoch": epoch, "train_loss": train_loss[k], "train_acc": train_acc[k],
                       "val_loss": val_loss[k], "val_acc": val_acc[k], "lr": lrs[k],
                       "images_per_s": seen / train_s, "epoch_s": epoch_s}
            histories[k].append(metrics)
            if not report(k, metrics):
                mask(k, "pruned", f"pruned after epoch {epoch}")
        if not any(active):
            return
    unfuse_into(fused, models)
    for k in range(m):
        if active[k]:
            setup = Setup(procs[k], data, models[k], None, criteria[k])
            final = final_metrics(setup, histories[k], dev, mean=mean, std=std,
                                  eval_bs=recipe.eval_batch_size, start=start)
            if compile_s is not None:
                final["compile_s"] = compile_s       # the group's: compiled once for all members
            ended(k, "final", final)
