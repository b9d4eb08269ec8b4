"""`recipe: {compile: true}`: the training forward through `torch.compile`, compiled before the
first step and timed apart from training.

torch.compile caches its graphs on the module class's `forward` code, with the parameters as
graph inputs (torch >= 2.5 inlines nn.Modules), so a graph compiled for one model serves every
later model of the same class, structure and input shape in this process: the next trial of the
same shape pays for guard checks only, and its `compile_s` is near zero.

To compile without touching the trial's weights, optimiser state or BatchNorm statistics, the
warm-up runs forward and backward on a throwaway copy of the model (the copy's graphs are the
model's graphs: same code, same guards), once per input shape training will see (the full batch
and, when the epoch ends with a smaller batch, that one too) and per variant of the step (SAM's
second pass freezes BatchNorm statistics, which torch.compile guards on). Evaluation stays eager:
it is a small part of a trial, and compiling the eval-mode graph for its batch sizes would about
double the compile time.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ablate.errors import CompileError

# torch.compile's backend. Tests swap in "aot_eager" (dynamo and AOTAutograd without Inductor's
# code generation) to exercise this path in seconds; users get Inductor.
BACKEND = "inductor"

# Graphs one forward may hold before dynamo stops compiling it and runs it eagerly: a design's
# arms change the model's modules (attention blocks, ResNet-D), each change is a recompile of
# the same `forward` code, and torch's default (8) would silently stop compiling a big design.
RECOMPILE_LIMIT = 64


def _raise_recompile_limit() -> None:
    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    setattr(cfg, name, max(getattr(cfg, name), RECOMPILE_LIMIT))


def compile_for_training(model: nn.Module, shapes: Iterable[tuple[int, ...]], *, device: torch.device,
                         autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                         variants: Iterable[Callable[[nn.Module], contextlib.AbstractContextManager]] = (),
                         ) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """(the compiled forward of `model`, seconds spent compiling). The compiled callable shares
    `model`'s parameters and buffers; `model` itself stays the eager module (state dicts,
    evaluation, EMA). `shapes` are the training input shapes; `autocast()` the step's autocast
    context; each of `variants(module)` a context the step also runs the model under."""
    _raise_recompile_limit()
    compiled = torch.compile(model, backend=BACKEND)
    scratch = copy.deepcopy(model)
    scratch.train()
    warm = torch.compile(scratch, backend=BACKEND)
    contexts = [lambda m: contextlib.nullcontext(), *variants]
    t0 = time.perf_counter()
    try:
        for shape in dict.fromkeys(tuple(s) for s in shapes):
            x = torch.randn(shape, device=device)
            if device.type == "cuda" and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            for context in contexts:
                with context(scratch), autocast():
                    out = warm(x)
                out.float().sum().backward()
                scratch.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as exc:   # noqa: BLE001 -- Inductor's failures (no C++ compiler, ...) are long
        root = exc                 # dynamo wraps the backend's own error (BackendCompilerFailed)
        while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None:
            root = inner
        first = next((line for line in str(root).splitlines() if line.strip()), "")
        raise CompileError(f"recipe.compile: torch.compile failed for {type(model).__name__} on {device} "
                           f"({type(root).__name__}: {first}); set `compile: false` in the recipe, or on the "
                           f"CPU check that a C++ compiler (gcc or clang) is installed") from exc
    finally:
        del scratch, warm
    return compiled, time.perf_counter() - t0
