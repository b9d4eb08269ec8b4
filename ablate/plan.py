"""The planner: a pure function from a `Spec` to arms and trials.

Designs (the arm list; arm 0 is the baseline that lifts are measured against):

- explicit: the listed arms;
- one_at_a_time: baseline, then each trick alone;
- leave_one_out: all tricks, then all but one (lift = what removing the trick costs);
- cumulative: baseline, then tricks stacked in the listed order (the bag-of-tricks tables);
- full_factorial: all 2^k on/off combinations;
- fractional_factorial / plackett_burman: a two-level screening design (`ablate.factorial`).

Every arm runs on the same seeds (paired). A trial's id is a hash of its resolved config (data,
model, recipe, tricks with parameters, seed): re-planning an edited spec keeps the ids of
unchanged trials, so a rerun resumes instead of repeating work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ablate.errors import DesignError
from ablate.models import model_info
from ablate.spec import ExplicitArm, Spec, TrickSetting

# Bump when the meaning of a resolved config changes (e.g. the trainer's defaults), so old
# results are not mistaken for new ones.
CONFIG_VERSION = 1


@dataclass(frozen=True)
class Arm:
    index: int
    label: str
    tricks: tuple[str, ...]                 # keys of spec.tricks, in spec order
    levels: tuple[int, ...] | None = None   # +1/-1 per trick, for factorial designs


@dataclass(frozen=True, eq=False)
class Trial:
    """One training run: an arm of an experiment on one seed, fully resolved."""

    experiment: str
    arm: int
    label: str
    seed: int
    data: Any
    model: Any
    recipe: Any
    tricks: tuple[TrickSetting, ...]        # sorted by registered name: order has no meaning
    id: str = field(default="")

    @property
    def config(self) -> dict[str, Any]:
        return {
            "version": CONFIG_VERSION,
            "data": self.data.model_dump(mode="json"),
            "model": self.model.model_dump(mode="json"),
            "recipe": self.recipe.model_dump(mode="json"),
            "tricks": [t.resolved() for t in self.tricks],
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Plan:
    spec: Spec
    arms: tuple[Arm, ...]
    trials: tuple[Trial, ...]
    design: Any = None                      # ablate.factorial.TwoLevelDesign for factorial kinds

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.spec.seeds.values

    @cached_property
    def _fragments(self) -> tuple[str, dict[str, str]]:
        spec = self.spec
        base = json.dumps({"version": CONFIG_VERSION, "data": spec.data.model_dump(mode="json"),
                           "model": spec.model.model_dump(mode="json"),
                           "recipe": spec.recipe.model_dump(mode="json")}, sort_keys=True)
        per = {k: json.dumps(t.resolved(), sort_keys=True) for k, t in spec.tricks.items()}
        return base, per

    @cached_property
    def _arm_settings(self) -> list[tuple[tuple[TrickSetting, ...], str]]:
        """Per arm: its trick settings in canonical order, and the hash text without the seed."""
        base, per = self._fragments
        out = []
        for a in self.arms:
            settings = tuple(sorted((self.spec.tricks[k] for k in a.tricks), key=lambda t: (t.use, per[t.key])))
            out.append((settings, base + "|" + ",".join(per[t.key] for t in settings)))
        return out

    def trial_id(self, arm: int, seed: int) -> str:
        """The id of `arm` on `seed`: a hash of the resolved config (labels and order excluded)."""
        return hashlib.sha256(f"{self._arm_settings[arm][1]}|seed={seed}".encode()).hexdigest()[:16]

    def trial(self, arm: int, seed: int, *, experiment: str | None = None) -> Trial:
        """The trial of `arm` on `seed` (also for seeds outside the spec, e.g. adaptive ones)."""
        a = self.arms[arm]
        return Trial(experiment or self.spec.name, a.index, a.label, seed, self.spec.data, self.spec.model,
                     self.spec.recipe, self._arm_settings[arm][0], self.trial_id(arm, seed))

    def describe(self) -> str:
        spec = self.spec
        n_arms, n_seeds = len(self.arms), len(self.seeds)
        lines = [f"{spec.name}: {spec.design.kind} design, {n_arms} arms x {n_seeds} seeds "
                 f"= {len(self.trials)} trials (seeds {', '.join(map(str, self.seeds))})"]
        if spec.seeds.adaptive:
            a = spec.seeds.adaptive
            lines.append(f"adaptive seeds: up to {a.max_seeds} per arm while its lift CI half-width "
                         f"exceeds {a.target_half_width} pp (precision only, whatever the sign; the "
                         f"t-test p-values are corrected for the stopping rule)")
        if self.design is not None:
            # one legend for both namings: codes label the arms, letters name the factors in
            # the design's generators and aliases (a letter and a code may share a character)
            letters = dict(zip(self.design.factors, self.design.letters))
            lines.append("tricks: factor letter (generators, aliases) / code (arm labels) / name")
            lines += [f"  {letters[k]:>2}  {t.code:<5} {k}" for k, t in spec.tricks.items()]
        elif spec.tricks:
            lines.append("codes: " + ", ".join(f"{t.code}={k}" for k, t in spec.tricks.items()))
        width = max(len(a.label) for a in self.arms)
        lines.append(f"  {'arm':>4}  {'label':<{width}}")
        shown = self.arms if n_arms <= 64 else self.arms[:32] + self.arms[-8:]
        for a in shown:
            note = "  (baseline)" if a.index == 0 and spec.design.kind in LIFT_DESIGNS else ""
            if a.index == 0 and spec.design.kind == "leave_one_out":
                note = "  (reference: all tricks)"
            lines.append(f"  {a.index:>4}  {a.label:<{width}}{note}")
            if n_arms > 64 and a.index == 31:
                lines.append(f"  {'...':>4}  ({n_arms - 40} more)")
        if self.design is not None:
            lines.append("")
            lines += _without_factor_list(self.design.describe(), self.design.letters)
            flipped = flipped_factors(self.design.matrix)
            if flipped:
                names = ", ".join(self.design.factors[i] for i in flipped)
                lines.append(f"Sign convention: the levels of {names} are flipped so that run 0 has every "
                             f"trick off; generators of those factors hold with a minus sign (e.g. E = -ABCD). "
                             f"Aliasing is unchanged.")
        return "\n".join(lines)


def _without_factor_list(text: str, letters) -> list[str]:
    """The design's description with its letter list replaced by a pointer to the legend."""
    out, skipping = [], False
    for line in text.splitlines():
        if line == "Factors:":
            out.append(f"Factors: {', '.join(letters)} (see the tricks legend above)")
            skipping = True
            continue
        if skipping and line.startswith("  ") and line.strip()[:1] in letters and " = " in line:
            continue
        skipping = False
        out.append(line)
    return out


LIFT_DESIGNS = ("explicit", "one_at_a_time", "cumulative", "full_factorial", "fractional_factorial",
                "plackett_burman")
FACTORIAL_DESIGNS = ("full_factorial", "fractional_factorial", "plackett_burman")


def two_level_design(spec: Spec):
    """The factorial design object for factorial kinds, with run 0 = every trick off."""
    from ablate import factorial

    keys = list(spec.tricks)
    kind = spec.design.kind
    if kind == "full_factorial":
        d = factorial.full_factorial(keys)
    elif kind == "fractional_factorial":
        d = factorial.fractional_factorial(keys, resolution=spec.design.resolution, runs=spec.design.runs)
    elif kind == "plackett_burman":
        d = factorial.plackett_burman(keys)
    else:
        return None
    return d


def flipped_factors(matrix: np.ndarray) -> list[int]:
    """Columns `_baseline_first` negates (none when the design already has an all-off run)."""
    m = np.asarray(matrix)
    if (m == -1).all(axis=1).any():
        return []
    return [int(i) for i in np.flatnonzero(m[0] == 1)]


def _baseline_first(matrix: np.ndarray) -> np.ndarray:
    """Rows reordered so an all-off row comes first. Flipping a column's sign keeps a two-level
    design's balance, orthogonality and alias structure, so when no row is all -1 the columns
    that are +1 in row 0 are flipped (which trick level is called 'on' does not matter to the
    design, only that the baseline is run)."""
    m = np.array(matrix, dtype=np.int8)
    off = np.flatnonzero((m == -1).all(axis=1))
    if len(off) == 0:
        m[:, m[0] == 1] *= -1
        off = np.array([0])
    order = [int(off[0])] + [i for i in range(len(m)) if i != off[0]]
    return m[order]


def arm_tricks(spec: Spec) -> list[tuple[str, ...]]:
    """The trick keys of each arm, in design order (arm 0 first)."""
    keys = list(spec.tricks)
    kind = spec.design.kind
    if kind == "explicit":
        return [tuple(a.tricks if isinstance(a, ExplicitArm) else a) for a in spec.design.arms]
    if kind == "one_at_a_time":
        return [()] + [(k,) for k in keys]
    if kind == "leave_one_out":
        return [tuple(keys)] + [tuple(x for x in keys if x != k) for k in keys]
    if kind == "cumulative":
        return [tuple(keys[:i]) for i in range(len(keys) + 1)]
    design = two_level_design(spec)
    m = _baseline_first(design.matrix)
    return [tuple(k for k, v in zip(keys, row) if v > 0) for row in m]


def plan(spec: Spec) -> Plan:
    """Arms and trials for `spec` (pure: builds nothing, runs nothing)."""
    design = two_level_design(spec) if spec.design.kind in FACTORIAL_DESIGNS else None
    levels = _baseline_first(design.matrix) if design is not None else None
    model_label = model_info(spec.model).label
    explicit_labels = ([a.label if isinstance(a, ExplicitArm) else None for a in spec.design.arms]
                       if spec.design.kind == "explicit" else None)
    arms = []
    for i, keys in enumerate(arm_tricks(spec)):
        ordered = tuple(k for k in spec.tricks if k in keys)
        label = " + ".join([model_label] + [spec.tricks[k].code for k in ordered])
        if explicit_labels and explicit_labels[i]:
            label = explicit_labels[i]
        arms.append(Arm(i, label, ordered, tuple(int(v) for v in levels[i]) if levels is not None else None))
    labels = [a.label for a in arms]
    dup = next((lab for lab in labels if labels.count(lab) > 1), None)
    if dup:
        raise DesignError(f"two arms share the label '{dup}'; give explicit arms distinct labels")
    p = Plan(spec, tuple(arms), (), design)
    trials = tuple(p.trial(a.index, s) for a in arms for s in spec.seeds.values)
    object.__setattr__(p, "trials", trials)
    return p
