"""Spec sections of the run engine: `trial:` (a command as the trial) and `retries:`.

They live in the config layer, below the engine that reads them; `Spec` only holds them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ablate.config import Frozen, TrickParams
from ablate.config.metric import metric_direction

FAILURE_KINDS = ("error", "exit", "timeout", "no_metric")
"""error: the trial raised (in-process); exit: the command exited non-zero or was killed by a
signal; timeout: it outlived `timeout_s`; no_metric: it finished without reporting a metric."""


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a name is taken for a secret when one of its _-separated words is one of these, or two adjacent
# words are (API KEY): HF_TOKEN, WANDB_API_KEY, AWS_SECRET_ACCESS_KEY; not TOKENIZERS_PARALLELISM
SECRET_WORDS = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATE"}
SECRET_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("AUTH", "KEY"), ("SECRET", "KEY")}


def looks_secret(name: str) -> bool:
    words = name.upper().split("_")
    return bool(SECRET_WORDS & set(words)) or any(pair in SECRET_PAIRS for pair in zip(words, words[1:]))


class CommandTrial(Frozen):
    """Run each trial as a command (any training script) instead of the built-in trainer.

    The trial's parameters reach it as a JSON file named in the `ABLATE_TRIAL` environment
    variable; with `args: flags` also as arguments: `--seed N`, then each parameter of the
    arm's tricks as `--name value` (`true` as a bare `--name`, `false` left out).
    """

    command: tuple[str, ...] = Field(min_length=1, description="argv; one string when shell is true")
    cwd: str | None = Field(None, description="working directory (relative: to where ablate runs)")
    env: dict[str, str] = Field(default_factory=dict, description="added to the environment (kept with the "
                                "spec and part of every trial's id: no secrets here)")
    pass_env: tuple[str, ...] = Field((), description="names of variables passed from the driver's environment "
                                      "(API keys, tokens): required to be set, never stored, not part of a "
                                      "trial's id")
    timeout_s: float | None = Field(None, gt=0, description="kill the trial after this many seconds")
    shell: bool = Field(False, description="run through /bin/sh (one command string)")
    args: Literal["json", "flags"] = Field("json", description="flags: also pass parameters as --name value")
    api: Literal["ablate", "nni"] = Field("ablate", description="nni: the command is an NNI trial script; its "
                                          "`import nni` finds ablate's shim (on this trial's path only)")

    @field_validator("command", mode="before")
    @classmethod
    def _one_string(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("pass_env", mode="before")
    @classmethod
    def _names(cls, v):
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"give a list of environment variable names, got {v!r}")
        for name in v:
            if isinstance(name, str) and "=" in name:     # NAME=value: the value is not repeated here
                raise ValueError(f"pass_env takes names only, not NAME=value (a value here would be kept in "
                                 f"the store); got an entry for '{name.partition('=')[0]}'")
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _, not "
                                 f"starting with a digit); give names only, e.g. [WANDB_API_KEY], never values")
        return v

    @field_validator("env")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]):
        for name in v:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _, not "
                                 f"starting with a digit)")
            if looks_secret(name):
                raise ValueError(f"'{name}' looks like a secret: its value would be kept in plain text in the "
                                 f"store (the spec and every trial's config) and be part of every trial's id, so "
                                 f"changing it would run every trial again. Set it in the environment and list "
                                 f"its name under trial.pass_env: [{name}]")
        return v

    @model_validator(mode="after")
    def _shell_takes_one_string(self):
        if self.shell and len(self.command) != 1:
            raise ValueError(f"with shell: true give the command as one string, got {len(self.command)} items")
        if any(not part for part in self.command):
            raise ValueError(f"command parts must not be empty, got {list(self.command)}")
        both = sorted(set(self.env) & set(self.pass_env))
        if both:
            raise ValueError(f"{', '.join(both)} is both in env (a value in the spec) and in pass_env (taken "
                             f"from the driver's environment); keep one")
        reserved = sorted((set(self.env) | set(self.pass_env)) & {"ABLATE_TRIAL", "ABLATE_STOP"})
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is set by ablate for each trial; choose another name")
        return self

    def identity(self) -> dict:
        """What makes two trials the same experiment (the timeout does not change results). `api`
        changes how parameters reach the script, so it counts, but only when not the default: the
        ids of command trials stored before it existed stay the same."""
        exclude = {"timeout_s", "pass_env"} | ({"api"} if self.api == "ablate" else set())
        return self.model_dump(mode="json", exclude=exclude)

    def passed_env(self) -> dict[str, str]:
        """The values of `pass_env` from this process's environment (those set)."""
        import os

        return {n: os.environ[n] for n in self.pass_env if n in os.environ}


class CommandFlags(TrickParams):
    """The parameters of a trick of a command trial: the command's own flags, any name, scalars."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _scalars(self):
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"parameter '{name}' of a command trial's trick must be a number, text or "
                                 f"true/false (it becomes --{name} VALUE), got {value!r}")
        return self


class Retries(Frozen):
    """How often a failed attempt is tried again, for which failure kinds; then `failed` is final."""

    count: int = Field(1, ge=0, le=100)
    kinds: tuple[Literal["error", "exit", "timeout", "no_metric"], ...] = ("error", "exit", "timeout")


class Resources(Frozen):
    """What one trial takes on a Ray node: several trials share a GPU with `gpu: 0.25`.

    Fractions of a GPU only up to one (Ray packs fractions onto one device); more than one GPU
    only as a whole number. On CPU-only trials `cpu` is also the trial's torch thread count.
    """

    cpu: float = Field(1, gt=0, description="CPUs per trial (also its torch threads when it has no GPU)")
    gpu: float = Field(0, description="GPUs per trial: a fraction in [0, 1] or a whole number")

    @field_validator("gpu")
    @classmethod
    def _fraction_or_whole(cls, v: float) -> float:
        if v < 0 or (v > 1 and v != int(v)):
            raise ValueError(f"gpu must be a fraction between 0 and 1 (several trials share one GPU) or a "
                             f"whole number of GPUs, got {v:g}")
        return v


class EarlyStop(Frozen):
    """Stop unpromising trials early with Ray Tune's ASHA (asynchronous successive halving): at
    epochs grace_epochs * reduction^k a trial goes on only if it is in the top 1/reduction of the
    trials that reached that epoch. Acts on every runner (`ablate.runner.early_stop`); stopped
    trials are recorded as pruned and kept out of lift tables."""

    kind: Literal["asha"] = "asha"
    grace_epochs: int = Field(1, ge=1, description="epochs every trial runs before it can be stopped")
    reduction: float = Field(3, gt=1, description="keep the top 1/reduction at each rung")
    metric: str | None = Field(None, description="the per-epoch metric compared (default: the spec's metric)")
    mode: Literal["max", "min"] | None = Field(None, description="whether larger or smaller `metric` is better "
                                               "(default: the spec metric's, or a built-in metric's own)")

    def direction(self, spec_metric: str, spec_mode: str) -> str | None:
        """max or min for the compared metric; None when unknown (refused when the spec loads)."""
        name = self.metric or spec_metric
        return metric_direction(name, self.mode, known=spec_mode if name == spec_metric else None)
