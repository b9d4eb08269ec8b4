"""The trainer: `run_trial(trial, report) -> metrics`. It imports neither Optuna nor Ray.

Tricks edit a `Procedure` (ablate.tricks); this module applies it in one fixed order:

1. model: build (seeded), pretrained weights (`weights:`), structural edits (ResNet-B/C/D,
   attention, ShakeDrop, stochastic depth, weight standardisation, EvoNorm), init edits
   (initialisation scheme, then zero-gamma);
2. optimiser: param groups (no bias decay; no decay on what a regulariser handles), then the
   optimiser the procedure names, wrapped in Lookahead when asked;
3. per batch: per-image policies on uint8 (AutoAugment, RandAugment) -> float, normalise ->
   base translation and flip -> batched erasing (random erasing, cutout) -> mixing (mixup or
   CutMix, RICAP) -> lr for this iteration (warmup x schedule) -> forward under autocast (mixed
   precision) -> cross-entropy with label smoothing (or GHM-C), blended with distillation's
   soft-target term -> + regularisers (shifted L2) -> backward (SAM/ASAM: ascent, second forward with BN running stats frozen, second
   backward) -> optimiser step (Lookahead: every k steps, the slow-weight update) -> EMA update;
4. per epoch: evaluate (the EMA weights when EMA is on), report, stop if the loss is not finite;
5. at the end: test accuracy (top-1, top-5 with >= 10 classes); with `save_final`, the evaluated
   weights are saved.

Randomness: a trial's seed fixes model initialisation, data order, base augmentation and the
tricks' own draws, each from its own stream (`Streams`; the tricks' callables are handed the
"tricks" generator). The global torch RNG is never read or advanced, so a trial's result does
not depend on what ran before it. Paired arms see the same batches in the same order with the
same crops, whatever their tricks draw. On the CPU runs are bit-for-bit repeatable; on CUDA
cuDNN autotuning is allowed, so they are repeatable only statistically. Accuracies are
percentages.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ablate import checkpoint
from ablate.data import load_data
from ablate.data.augment import random_flip, random_translate, to_float
from ablate.data.batches import TensorBatches, closing_batches, open_split
from ablate.errors import AblateError, TrialDiverged
from ablate.models import build_model, count_params
from ablate.models.weights import load_pretrained, save_trial_weights
from ablate.tricks import Procedure, get_trick, lr_multiplier
from ablate.tricks.base import GLOBAL_RNG_LOCK
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


def _exempt_from_decay(groups: list[dict], exempt: list[torch.Tensor]) -> list[dict]:
    """Move `exempt` parameters (regularised by a term of the objective) to a group without
    weight decay."""
    ids = {id(p) for p in exempt}
    if not ids:
        return groups
    out = [{**g, "params": [p for p in g["params"] if id(p) not in ids]} for g in groups]
    out = [g for g in out if g["params"]]
    return out + [{"params": [p for g in groups for p in g["params"] if id(p) in ids], "weight_decay": 0.0}]


def build_optimizer(proc: Procedure, model: nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, proc.weight_decay, decay_norm_and_bias=proc.decay_norm_and_bias)
    groups = _exempt_from_decay(groups, [p for exempt in proc.decay_exempt for p in exempt(model)])
    # on CUDA, SGD, Adam and AdamW step every tensor in one fused kernel (torch's `fused=True`);
    # on the CPU torch's default (foreach) keeps the results every earlier run computed
    fused = {"fused": True} if next(model.parameters()).device.type == "cuda" else {}
    if proc.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=proc.lr, momentum=proc.momentum, nesterov=proc.nesterov,
                              **{**fused, **proc.optimizer_options})
    elif proc.optimizer == "adabound":
        from ablate.optim import AdaBound

        opt = AdaBound(groups, lr=proc.lr, betas=proc.betas, **proc.optimizer_options)
    elif proc.optimizer == "radam":     # no fused kernel in torch
        opt = torch.optim.RAdam(groups, lr=proc.lr, betas=proc.betas, **proc.optimizer_options)
    else:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[proc.optimizer]
        opt = cls(groups, lr=proc.lr, betas=proc.betas, **{**fused, **proc.optimizer_options})
    for g in opt.param_groups:
        g["base_lr"] = proc.lr
    if proc.lookahead is not None:
        from ablate.optim import Lookahead

        k, alpha = proc.lookahead
        opt = Lookahead(opt, k=k, alpha=alpha)
    return opt


def build_criterion(proc: Procedure) -> nn.Module:
    """Cross-entropy with label smoothing, or GHM-C (which smooths its targets the same way)."""
    if proc.loss == "ghmc":
        from ablate.losses import GHMCLoss

        return GHMCLoss(label_smoothing=proc.label_smoothing, **proc.loss_options)
    return nn.CrossEntropyLoss(label_smoothing=proc.label_smoothing)


@contextlib.contextmanager
def determinism(device: torch.device):
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


def autocast(device: torch.device, dtype: str | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


@torch.no_grad()
def evaluate(model: nn.Module, x, y: torch.Tensor | None = None, *, mean, std, batch_size: int,
             autocast_dtype: str | None = None, topk: int = 1) -> dict[str, float]:
    """Loss and top-1 (and top-k) accuracy (%) on a split's batches `x` (or uint8 images `x` with
    labels `y`), no augmentation."""
    model.eval()
    batches = x if y is None else TensorBatches(x, y)
    dev = batches.device
    loss = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev)
    correct_k = torch.zeros((), device=dev)
    for xb, yb in batches.in_order(batch_size):
        xb = to_float(xb, mean, std)
        with autocast(dev, autocast_dtype):
            out = model(xb)
        out = out.float()
        loss += F.cross_entropy(out, yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
        if topk > 1:
            correct_k += (out.topk(topk, dim=1).indices == yb[:, None]).any(1).sum()
    n = max(len(batches), 1)
    res = {"loss": loss.item() / n, "acc": 100.0 * correct.item() / n}
    if topk > 1:
        res[f"top{topk}"] = 100.0 * correct_k.item() / n
    model.train()
    return res


def run_trial(trial, report: Report | None = None, *, device: str | None = None,
              weights_root: str | Path | None = None, save_final: bool = False,
              checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Train one trial and return its final metrics.

    `weights_root` is the folder of saved weights (`<root>/<experiment>/<trial id>.safetensors`,
    see `ablate.models.weights`): teachers named by trial are read from it, and with
    `save_final` this trial's final weights (the evaluated ones: EMA's when EMA is on) are
    written there, their path in the final metrics as `weights`. The store is never touched.

    With `checkpoint_dir`, the state after every epoch is saved there (`ablate.checkpoint`),
    before that epoch is reported; a checkpoint already there is resumed after its epoch (the
    earlier epochs are not reported again).

    `report(metrics)` is called after every epoch with: epoch, train_loss, train_acc, val_loss,
    val_acc, lr, images_per_s, epoch_s. It may raise `TrialPruned` to stop early (the exception
    propagates). A non-finite training loss raises `TrialDiverged`. The global torch RNG is
    neither read nor advanced: every draw comes from the trial's own generators.
    """
    dev = pick_device(device)
    start = time.perf_counter()
    # passed only when given: `_train(trial, report, dev, start)` stays the form tests patch
    extra = {k: v for k, v in (("weights_root", weights_root), ("checkpoint_dir", checkpoint_dir)) if v is not None}
    if weights_root is not None:
        extra["save_final"] = save_final
    with determinism(dev), closing_batches():   # streamed data: its workers stop with the trial
        return _train(trial, report, dev, start, **extra)


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
    distill: Any = None     # ablate.tricks.distill.Distillation: adds the teacher's soft-target loss
    forward: Any = None     # the compiled training forward (`recipe.compile`); None: the model itself


def seeded_model(trial, data, proc: Procedure) -> nn.Module:
    """`trial`'s model with the tricks' structural and init edits, initialised from its "init"
    stream on a private copy of the global CPU RNG (torch's init functions and the modules the
    edits add take no generator), so the caller's RNG state is neither used nor changed."""
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(trial.seed + _STREAMS["init"])
        model = build_model(trial.model, in_channels=data.channels, num_classes=data.num_classes,
                            image_size=getattr(trial.data, "image_size", None))
        # pretrained weights fit the unedited architecture; the edits and init edits come after
        model.weights_info = load_pretrained(model, trial.model, num_classes=data.num_classes)
        for edit in proc.model_edits:
            edit(model)
        for edit in proc.init_edits:
            edit(model)
    return model


def prepare(trial, device: torch.device | str = "cpu", *, weights_root: str | Path | None = None) -> Setup:
    """Load data, apply tricks to the procedure, build and edit the model, build the optimiser
    (and the distillation teacher, found under `weights_root` when named by trial)."""
    dev = torch.device(device)
    data = load_data(trial.data)
    proc = build_procedure(trial, data.num_classes)
    if proc.autocast_dtype == "bfloat16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise AblateError(f"amp with dtype bfloat16: {torch.cuda.get_device_name(dev)} has no bfloat16 support "
                          f"(it needs an Ampere or newer GPU); use amp with dtype: float16 on this GPU")
    model = seeded_model(trial, data, proc)
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
    criterion = build_criterion(proc)
    distill = None
    if proc.distill is not None:
        from ablate.tricks.distill import Distillation

        distill = Distillation.load(proc.distill, data=data, data_cfg=trial.data, device=dev,
                                    weights_root=weights_root)
    return Setup(proc, data, model, opt, criterion, scaler, ema, distill)


def forward_gflops(model: nn.Module, image: torch.Tensor, mean, std) -> float:
    """Forward GFLOPs for one image (torch's FlopCounterMode: convs and matmuls, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(to_float(image, mean, std))
    model.train()
    return counter.get_total_flops() / 1e9


# -- one training step ------------------------------------------------------------------------

@dataclass
class Streams:
    """A trial's random streams: data order (CPU), base augmentation and tricks (on the device)."""

    order: torch.Generator
    augment: torch.Generator
    tricks: torch.Generator

    @classmethod
    def for_seed(cls, seed: int, dev: torch.device) -> Streams:
        return cls(order=torch.Generator().manual_seed(seed + _STREAMS["order"]),
                   augment=torch.Generator(device=dev).manual_seed(seed + _STREAMS["augment"]),
                   tricks=torch.Generator(device=dev).manual_seed(seed + _STREAMS["tricks"]))


def prepare_batch(xb: torch.Tensor, yb: torch.Tensor, proc: Procedure, streams: Streams, *,
                  mean: torch.Tensor, std: torch.Tensor, pad: int, flip: bool
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and integer labels -> model input and target, in the documented order:
    policies (uint8) -> float, normalise -> translate, flip -> erasing -> mixing."""
    for policy in proc.sample_policies:
        xb = policy(xb, streams.tricks)
    xb = to_float(xb, mean, std)
    xb = random_translate(xb, pad, streams.augment)
    if flip:
        xb = random_flip(xb, streams.augment)
    for erase in proc.batch_erasers:
        xb = erase(xb, streams.tricks)
    target = yb
    if proc.batch_mixers:
        k = 0
        if len(proc.batch_mixers) > 1:
            k = int(torch.randint(len(proc.batch_mixers), (), generator=streams.tricks,
                                  device=streams.tricks.device))
        xb, target = proc.batch_mixers[k](xb, yb, streams.tricks)
    if xb.device.type == "cuda":
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb, target


StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _forward(setup: Setup, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with autocast(xb.device, setup.proc.autocast_dtype):
        out = (setup.model if setup.forward is None else setup.forward)(xb)
        loss = setup.criterion(out, target)
        if setup.distill is not None:
            loss = setup.distill(loss, out, xb)
    return loss, out


def _objective(setup: Setup, loss: torch.Tensor) -> torch.Tensor:
    """What is differentiated: the loss plus the procedure's regularisers (weight
    standardisation's shifted L2). The reported training loss stays the data loss."""
    for term in setup.proc.regularisers:
        loss = loss + term(setup.model)
    return loss


def plain_step(setup: Setup, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    loss, out = _forward(setup, xb, target)
    setup.optimizer.zero_grad(set_to_none=True)
    _objective(setup, loss).backward()
    setup.optimizer.step()
    return loss, out


def scaled_step(setup: Setup, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float16 autocast: loss scaling against gradient underflow."""
    loss, out = _forward(setup, xb, target)
    setup.optimizer.zero_grad(set_to_none=True)
    setup.scaler.scale(_objective(setup, loss)).backward()
    setup.scaler.step(setup.optimizer)
    setup.scaler.update()
    return loss, out


def sam_offsets(params: list[torch.Tensor], grads: list[torch.Tensor | None], rho: float,
                eta: float | None = None) -> list[torch.Tensor]:
    """The ascent of SAM, rho g / |g|, or with `eta` that of ASAM (Kwon et al. 2021, eq. 7 with
    T_w = |w| + eta elementwise): rho T^2 g / |T g|, the worst case within a ball whose radius
    scales with each weight, so the sharpness measured does not change when a layer is rescaled."""
    scaled = [g if (g is None or eta is None) else (p.abs() + eta) * g for p, g in zip(params, grads)]
    norm = torch.norm(torch.stack([s.norm() for s in scaled if s is not None]))
    scale = rho / (norm + 1e-12)
    eps = []
    for p, s in zip(params, scaled):
        if s is None:
            eps.append(torch.zeros_like(p))
        else:
            eps.append(s * scale if eta is None else (p.abs() + eta) * s * scale)
    return eps


def _sam_perturb(params: list[torch.Tensor], rho: float, eta: float | None = None) -> list[torch.Tensor]:
    """Move weights to the (first-order) worst case within radius rho; return the offsets."""
    with torch.no_grad():
        eps = sam_offsets(params, [p.grad for p in params], rho, eta)
        for p, e in zip(params, eps):
            p.add_(e)
    return eps


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module):
    """Batch norms normalise with batch statistics but leave running stats and
    num_batches_tracked untouched (SAM's second pass, at perturbed weights, is not a new batch).
    With `track_running_stats` off in train mode torch passes no running buffers to the kernel,
    so nothing else about the forward changes."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def sam_step(setup: Setup, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM (Foret et al. 2021): gradient at w, ascend to w + rho g/|g| (ASAM: the adaptive
    ascent of `sam_offsets`), take the gradient there (BN running stats frozen: the batch was
    already counted), step from w with it."""
    params = [p for p in setup.model.parameters() if p.requires_grad]
    loss, out = _forward(setup, xb, target)
    setup.optimizer.zero_grad(set_to_none=True)
    _objective(setup, loss).backward()
    eps = _sam_perturb(params, setup.proc.sam_rho, setup.proc.sam_eta)
    setup.optimizer.zero_grad(set_to_none=True)
    with frozen_bn_stats(setup.model):
        perturbed_loss, _ = _forward(setup, xb, target)
    _objective(setup, perturbed_loss).backward()
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.sub_(e)
    setup.optimizer.step()
    return loss, out


def step_function(setup: Setup) -> StepFn:
    """The optimisation step this trial uses (the spec refuses SAM with float16 scaling)."""
    if setup.scaler is not None:
        return partial(scaled_step, setup)
    if setup.proc.sam_rho is not None:
        return partial(sam_step, setup)
    return partial(plain_step, setup)


# -- the loop ---------------------------------------------------------------------------------

def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(n // batch_size, 1) if n % batch_size == 1 else math.ceil(n / batch_size)   # a 1-image batch breaks BN


def train_epoch(setup: Setup, step_fn: StepFn, streams: Streams, train_x, train_y: torch.Tensor | None = None,
                *, first_step: int, mean, std, pad: int, flip: bool) -> tuple[float, float, int]:
    """One pass over the training set (its batches `train_x`, or uint8 images `train_x` with
    labels `train_y`), in the order the "order" stream draws; returns (mean loss, accuracy %,
    images seen)."""
    proc, model, opt = setup.proc, setup.model, setup.optimizer
    train = train_x if train_y is None else TensorBatches(train_x, train_y)
    dev = train.device
    n, bs = len(train), proc.batch_size
    steps = steps_per_epoch(n, bs)
    model.train()
    perm = torch.randperm(n, generator=streams.order)
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev)
    seen = 0
    for i, (xb, yb) in enumerate(train.shuffled(perm, bs, steps)):
        xb, target = prepare_batch(xb, yb, proc, streams, mean=mean, std=std, pad=pad, flip=flip)
        factor = lr_multiplier(proc, first_step + i, steps)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        loss, out = step_fn(xb, target)
        if setup.ema is not None:
            setup.ema.update_parameters(model)
        loss_sum += loss.detach().float() * len(yb)
        correct += (out.detach().argmax(1) == yb).sum()
        seen += len(yb)
    return loss_sum.item() / seen, 100.0 * correct.item() / seen, seen


def _train(trial, report: Report | None, dev: torch.device, start: float, *,
           weights_root: str | Path | None = None, save_final: bool = False,
           checkpoint_dir: str | None = None) -> dict[str, Any]:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    setup = prepare(trial, dev, weights_root=weights_root)
    proc, data, opt = setup.proc, setup.data, setup.optimizer
    step_fn = step_function(setup)
    # tensors on the device, or (data too large for memory) DataLoader workers decoding files
    train_batches, val_batches = open_split(data, "train", dev), open_split(data, "val", dev)
    mean, std = (t.to(dev) for t in data.mean_std())
    streams = Streams.for_seed(trial.seed, dev)
    steps = steps_per_epoch(len(train_batches), proc.batch_size)
    eval_bs = trial.recipe.eval_batch_size
    first_epoch, history = checkpoint.resume(checkpoint_dir, trial_id=trial.id, setup=setup, streams=streams)
    compile_s = _compile(setup, trial, len(train_batches), steps, dev) if trial.recipe.compile else None
    for epoch in range(first_epoch, proc.epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc, seen = train_epoch(
            setup, step_fn, streams, train_batches, first_step=(epoch - 1) * steps, mean=mean,
            std=std, pad=trial.data.crop_padding, flip=trial.data.flip)
        train_s = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            raise TrialDiverged(f"training loss became {train_loss} in epoch {epoch} "
                                f"(lr {opt.param_groups[0]['lr']:.4g})")
        val = evaluate(_evaluated(setup), val_batches, mean=mean, std=std, batch_size=eval_bs,
                       autocast_dtype=proc.autocast_dtype)
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val["loss"], "val_acc": val["acc"], "lr": opt.param_groups[0]["lr"],
                   "images_per_s": seen / train_s, "epoch_s": time.perf_counter() - t0}
        history.append(metrics)
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, trial_id=trial.id, epoch=epoch, setup=setup, streams=streams,
                            history=history)
        if report is not None:
            report(metrics)
    final = final_metrics(setup, history, dev, mean=mean, std=std, eval_bs=eval_bs, start=start)
    if compile_s is not None:
        final["compile_s"] = compile_s
    if save_final and weights_root is not None:
        final["weights"] = str(save_trial_weights(trial, _evaluated(setup), setup.data, weights_root))
    return final


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's training batches over `n` images: full ones, then the last."""
    steps = steps_per_epoch(n, batch_size)
    return sorted({batch_size if steps > 1 else min(batch_size, n), min(batch_size, n - (steps - 1) * batch_size)},
                  reverse=True)


def _compile(setup: Setup, trial, n: int, steps: int, dev: torch.device) -> float:
    """Compile the training forward (`ablate.compiling`) for this epoch's batch shapes; the
    seconds it took. The model's peak memory is counted from after the warm-up."""
    from ablate.compiling import compile_for_training

    image = setup.data.sample(1)[0]
    shapes = [(b, *image.shape[1:]) for b in batch_sizes(n, setup.proc.batch_size)]
    variants = [frozen_bn_stats] if setup.proc.sam_rho is not None else []
    setup.forward, seconds = compile_for_training(
        setup.model, shapes, device=dev, variants=variants,
        autocast=lambda: autocast(dev, setup.proc.autocast_dtype))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    return seconds


def _evaluated(setup: Setup) -> nn.Module:
    """The weights evaluated: the EMA's when EMA is on."""
    return setup.ema.module if setup.ema is not None else setup.model


def final_metrics(setup: Setup, history: list[dict[str, Any]], dev: torch.device, *, mean, std,
                  eval_bs: int, start: float) -> dict[str, Any]:
    """Test accuracy (top-1, and top-5 with >= 10 classes), cost, and the last epoch's metrics."""
    data, proc = setup.data, setup.proc
    evaluated = _evaluated(setup)
    gflops = forward_gflops(evaluated, data.sample(1)[0].to(dev), mean, std)
    topk = 5 if data.num_classes >= 10 else 1
    test = evaluate(evaluated, open_split(data, "test", dev), mean=mean, std=std,
                    batch_size=eval_bs, autocast_dtype=proc.autocast_dtype, topk=topk)
    last = history[-1]
    final = {"val_acc": last["val_acc"], "val_loss": last["val_loss"], "test_acc": test["acc"],
             "test_loss": test["loss"], "train_loss": last["train_loss"], "train_acc": last["train_acc"],
             "best_val_acc": max(h["val_acc"] for h in history), "epochs": len(history),
             "params": count_params(setup.model),
             "images_per_s": sum(h["images_per_s"] for h in history) / len(history),
             "wall_s": time.perf_counter() - start, "device": str(dev), "gflops": gflops,
             "peak_mem_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None}
    if topk > 1:
        final["test_top5"] = test["top5"]
    final.update(getattr(setup.model, "weights_info", {}))   # pretrained file and head note
    return final


def measure_throughput(trial, *, steps: int = 6, device: str | None = None) -> tuple[float, int]:
    """Training images per second of `trial`'s model on this device, from a few plain steps
    (after one warm-up step), and the model's parameter count. Used by `ablate plan` to
    estimate cost; no tricks applied."""
    dev = pick_device(device)
    data = load_data(trial.data)
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(trial.seed)
        model = build_model(trial.model, in_channels=data.channels, num_classes=data.num_classes,
                            image_size=getattr(trial.data, "image_size", None)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    mean, std = (t.to(dev) for t in data.mean_std())
    xs, ys = data.sample(trial.recipe.batch_size)
    bs = len(ys)
    x = to_float(xs.to(dev), mean, std)
    y = ys.to(dev)
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
