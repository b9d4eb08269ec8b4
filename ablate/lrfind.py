"""Leslie Smith's learning-rate range test (Smith 2017, Cyclical Learning Rates for Training
Neural Networks, arXiv:1506.01186, section 3.3): train from the spec's initial weights with the
lr growing exponentially from `start` to `end`, one mini-batch per lr, and watch the loss.

The trial is the spec's first planned trial (arm 0, first seed: its model, data, recipe and
tricks); its lr schedule and warmup are overridden by the sweep. The loss is smoothed by a
bias-corrected exponential moving average; the sweep stops once the smoothed loss exceeds
`diverge_factor` x its best (or is not finite). Two suggestions are reported:

- steepest: the lr where the smoothed loss falls fastest per unit of log lr (the first tenth
  of the sweep left out: its average holds only a few batches);
- min/10: a tenth of the lr at the smoothed loss's minimum (the usual rule of thumb: the
  minimum is already at the edge of divergence).

Data first (`lr_range_test` returns plain lists), figure second (`lr_find_figure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ablate.errors import AblateError

MIN_STEPS = 5


@dataclass(frozen=True)
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: bool           # the smoothed loss diverged before `end`
    label: str                    # the trial's arm label

    @property
    def steepest_lr(self) -> float:
        """The lr of the steepest descent of the smoothed loss against log lr (the point at the
        divergence, if any, left out)."""
        import numpy as np

        n = len(self.smoothed) - (1 if self.stopped_early else 0)
        skip = n // 10   # the first points' average is a few batches' noise (the bias correction)
        if n - skip < 2:
            return self.lrs[0]
        slope = np.gradient(np.asarray(self.smoothed[skip:n]), np.log(np.asarray(self.lrs[skip:n])))
        return self.lrs[skip + int(np.argmin(slope))]

    @property
    def min_over_10_lr(self) -> float:
        finite = [(s, lr) for s, lr in zip(self.smoothed, self.lrs) if math.isfinite(s)]
        return min(finite)[1] / 10.0 if finite else self.lrs[0] / 10.0


def check_range(start: float, end: float, steps: int) -> None:
    """The sweep's bounds; AblateError (exit 2) naming what is allowed and what was given."""
    if not (math.isfinite(start) and start > 0):
        raise AblateError(f"--start must be a finite lr > 0, got {start}")
    if not (math.isfinite(end) and end > start):
        raise AblateError(f"--end must be > --start, got start={start}, end={end}")
    if steps < MIN_STEPS:
        raise AblateError(f"--steps must be >= {MIN_STEPS} (one mini-batch per lr), got {steps}")


def sweep_lrs(start: float, end: float, steps: int) -> list[float]:
    """`steps` learning rates growing exponentially from `start` to `end` (both included)."""
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def lr_range_test(trial, *, start: float = 1e-7, end: float = 10.0, steps: int = 100,
                  smoothing: float = 0.98, diverge_factor: float = 4.0,
                  device: str | None = None) -> LRFindResult:
    """Run the sweep on `trial` (an in-process trial); see the module docstring."""
    import torch

    from ablate.train import Streams, pick_device, prepare, prepare_batch, step_function, steps_per_epoch

    check_range(start, end, steps)
    if trial.recipe is None:
        raise AblateError("lr-find trains the spec's own model; a command trial ('trial: {command: ...}') "
                          "trains elsewhere, so there is nothing to sweep")
    dev = pick_device(device)
    setup = prepare(trial, dev)
    step_fn = step_function(setup)
    data = setup.data
    train_x, train_y = data.train_x.to(dev), data.train_y.to(dev)
    mean, std = (t.to(dev) for t in data.mean_std())
    streams = Streams.for_seed(trial.seed, dev)
    bs = setup.proc.batch_size
    per_epoch = steps_per_epoch(len(train_y), bs)
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, False
    perm = None
    setup.model.train()
    for i, lr in enumerate(sweep_lrs(start, end, steps)):
        if i % per_epoch == 0:
            perm = torch.randperm(len(train_y), generator=streams.order).to(dev)
        idx = perm[(i % per_epoch) * bs:(i % per_epoch + 1) * bs]
        xb, target = prepare_batch(train_x[idx], train_y[idx], setup.proc, streams, mean=mean, std=std,
                                   pad=trial.data.crop_padding, flip=trial.data.flip)
        for g in setup.optimizer.param_groups:
            g["lr"] = lr
        loss, _ = step_fn(xb, target)
        value = float(loss.detach().float())
        avg = smoothing * avg + (1 - smoothing) * value
        smooth = avg / (1 - smoothing ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(smooth) or (i > 0 and smooth > diverge_factor * best):
            stopped = True
            break
        best = min(best, smooth)
    return LRFindResult(lrs, losses, smoothed, stopped, trial.label)


def lr_find_figure(result: LRFindResult):
    """Loss and smoothed loss against lr (log axis), with both suggestions marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result.lrs, y=result.losses, mode="markers", name="loss (one batch)",
                             marker=dict(size=4, color="rgba(120,120,120,0.6)")))
    fig.add_trace(go.Scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss",
                             line=dict(width=2)))
    for lr, name, dash in ((result.steepest_lr, "steepest", "dash"), (result.min_over_10_lr, "min/10", "dot")):
        fig.add_vline(x=lr, line_dash=dash, annotation_text=f"{name}: {lr:.3g}")
    finite = [s for s in result.smoothed if math.isfinite(s)]
    top = max(finite[0] * 1.5, min(finite) * 4) if finite else None
    fig.update_layout(template="plotly_white", title=f"LR range test: {result.label}",
                      xaxis=dict(type="log", title="learning rate"),
                      yaxis=dict(title="training loss", range=[0, top] if top else None))
    return fig


def write_lr_find(result: LRFindResult, out: Path) -> tuple[Path, Path]:
    """lr_find.csv (lr, loss, smoothed) and lr_find.html (plotly.js inlined: opens offline)."""
    import csv

    import io

    folder = lr_find_folder(out)
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["lr", "loss", "smoothed"])
    for row in zip(result.lrs, result.losses, result.smoothed):
        w.writerow([f"{v:.6g}" for v in row])
    csv_path = folder.write_text("lr_find.csv", text.getvalue())
    html_path = folder.write_text("lr_find.html", lr_find_figure(result).to_html(include_plotlyjs=True,
                                                                                full_html=True))
    folder.finish()
    return csv_path, html_path


def lr_find_folder(out: Path, *, create: bool = True):
    """The output folder, checked (a file, a link: ReportError); the CLI checks it before training."""
    from ablate.report.files import ReportFolder

    return ReportFolder(out, ["lr_find.csv", "lr_find.html"], what="-o", create=create)
