"""Base class of every typed config: frozen, and unknown keys are errors (no silent typos)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    # allow_inf_nan=False: a .inf or .nan in a spec is a mistake, never a setting
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
