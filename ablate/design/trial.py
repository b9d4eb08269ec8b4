"""A trial: one fully resolved, self-describing training run, and its id.

The id is a hash of the resolved config (data, model and recipe or the command, the tricks with
their parameters in a canonical order, search values, the seed), computed here and nowhere
else: a rerun recognises finished work, and a trial that did not come from a design (a search
sample) has an identity too. Labels, arm numbers and where a trial came from are not hashed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from ablate.data import DataConfig
from ablate.models import ModelConfig
from ablate.config.run import CommandTrial
from ablate.config.sections import Recipe, TrickSetting
from ablate.design.changes import EXECUTION_ONLY_RECIPE

# Bump when the meaning of a resolved config changes (e.g. the trainer's defaults), so old
# results are not mistaken for new ones.
CONFIG_VERSION = 1

Origin = Literal["design", "adaptive", "search"]
SearchValue = float | int | str | bool


def base_text(data: DataConfig, model: ModelConfig | None, recipe: Recipe | None,
              command: CommandTrial | None) -> str:
    """The hashed text of what every arm of an experiment shares."""
    d: dict = {"version": CONFIG_VERSION, "data": data.model_dump(mode="json")}
    if command is None:
        d["model"] = model.model_dump(mode="json")
        d["recipe"] = recipe.model_dump(mode="json", exclude=set(EXECUTION_ONLY_RECIPE))
    else:
        d["trial"] = command.identity()
    return json.dumps(d, sort_keys=True)


def trick_text(setting: TrickSetting) -> str:
    return json.dumps(setting.resolved(), sort_keys=True)


def canonical_tricks(settings, texts: dict[str, str] | None = None) -> tuple[TrickSetting, ...]:
    """Tricks sorted by registered name and parameters: their order in a spec has no meaning.
    `texts` ({key: trick_text}) spares recomputing them for every arm of a big design."""
    if texts is None:
        return tuple(sorted(settings, key=lambda t: (t.use, trick_text(t))))
    return tuple(sorted(settings, key=lambda t: (t.use, texts[t.key])))


def hash_id(base: str, tricks_text: str, seed: int, values: dict[str, SearchValue] | None = None) -> str:
    """THE trial id: 16 hex digits of the SHA-256 of the resolved config's canonical text."""
    text = f"{base}|{tricks_text}|seed={seed}"
    if values:
        text += "|values=" + json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Trial:
    """One training run: an arm of an experiment (or a search sample) on one seed."""

    experiment: str
    arm: int
    label: str
    seed: int
    data: DataConfig
    model: ModelConfig | None
    recipe: Recipe | None
    tricks: tuple[TrickSetting, ...]        # canonical order (see `canonical_tricks`)
    id: str
    command: CommandTrial | None = None
    values: dict[str, SearchValue] = field(default_factory=dict)   # a search's sampled values
    origin: Origin = "design"
    reason: str = "design"                  # why it was added, in words (kept in the store)

    @classmethod
    def create(cls, *, experiment: str, arm: int, label: str, seed: int, data: DataConfig,
               model: ModelConfig | None, recipe: Recipe | None, tricks, command: CommandTrial | None = None,
               values: dict[str, SearchValue] | None = None, origin: Origin = "design",
               reason: str = "design") -> Trial:
        """A trial with its id computed from its fields."""
        tricks = canonical_tricks(tricks)
        tid = hash_id(base_text(data, model, recipe, command), ",".join(trick_text(t) for t in tricks),
                      seed, values)
        return cls(experiment, arm, label, seed, data, model, recipe, tricks, tid, command,
                   dict(values or {}), origin, reason)

    @property
    def config(self) -> dict:
        """The resolved config, as stored with the trial."""
        out: dict = {"version": CONFIG_VERSION, "data": self.data.model_dump(mode="json")}
        if self.command is None:
            out["model"] = self.model.model_dump(mode="json")
            out["recipe"] = self.recipe.model_dump(mode="json")
        else:
            out["trial"] = self.command.model_dump(mode="json")
        out["tricks"] = [t.resolved() for t in self.tricks]
        if self.values:
            out["values"] = dict(self.values)
        out["seed"] = self.seed
        return out

    def params(self) -> dict:
        """What a command trial receives: seed, tricks by key with their parameters, values."""
        return {"trial_id": self.id, "experiment": self.experiment, "arm": self.arm, "label": self.label,
                "seed": self.seed, "tricks": {t.key: t.params.model_dump(mode="json") for t in self.tricks},
                "values": dict(self.values), "data": self.data.model_dump(mode="json")}
