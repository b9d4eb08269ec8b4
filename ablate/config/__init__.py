"""The config layer: the frozen schemas of every spec section, the one metric-direction rule
(`ablate.config.metric`) and the spec's YAML reading and error messages. It imports nothing of
ablate but `ablate.errors`, so every layer above can use it.

`Frozen` is the base of every typed config: frozen, and unknown keys are errors (no silent typos).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    # allow_inf_nan=False: a .inf or .nan in a spec is a mistake, never a setting
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TrickParams(Frozen):
    """Base for every trick's parameters (and a command trial's flags): a frozen config."""
