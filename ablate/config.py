"""Base class of every typed config: frozen, and unknown keys are errors (no silent typos)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
