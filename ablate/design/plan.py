"""The planner: a pure function from a `Spec` to arms and trials.

Designs (the arm list; arm 0 is the baseline that lifts are measured against):

- explicit: the listed arms;
- one_at_a_time: baseline, then each trick alone;
- leave_one_out: all tricks, then all but one (lift = what removing the trick costs);
- cumulative: baseline, then tricks stacked in the listed order (the bag-of-tricks tables);
- full_factorial: all 2^k on/off combinations;
- fractional_factorial / plackett_burman: a two-level screening design (`ablate.design.factorial`).

Every arm runs on the same seeds (paired). A trial's id is a hash of its resolved config
(`ablate.design.trial`): re-planning an edited spec keeps the ids of unchanged trials, so a rerun
resumes instead of repeating work.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePath

from ablate.design.arms import (  # noqa: F401  (re-exported: the planner's public names)
    FACTORIAL_DESIGNS,
    LIFT_DESIGNS,
    arm_tricks,
    baseline_first,
    flipped_factors,
    two_level_design,
)
from ablate.errors import DesignError
from ablate.models import model_info
from ablate.config.sections import ExplicitArm
from ablate.design.spec import Spec
from ablate.design.trial import CONFIG_VERSION, Trial, base_text, canonical_tricks, hash_id, trick_text  # noqa: F401


@dataclass(frozen=True)
class Arm:
    index: int
    label: str
    tricks: tuple[str, ...]                 # keys of spec.tricks, in spec order
    levels: tuple[int, ...] | None = None   # +1/-1 per trick, for factorial designs


@dataclass(frozen=True)
class Plan:
    spec: Spec
    arms: tuple[Arm, ...]
    design: object = None                   # ablate.design.factorial.TwoLevelDesign for factorial kinds

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.spec.seeds.values

    @cached_property
    def trials(self) -> tuple[Trial, ...]:
        """Every arm on every seed of the spec, arm by arm."""
        return tuple(self.trial(a.index, s) for a in self.arms for s in self.seeds)

    @cached_property
    def _arm_settings(self) -> list[tuple[tuple, str]]:
        """Per arm: its trick settings in canonical order, and their hashed text."""
        texts = {k: trick_text(t) for k, t in self.spec.tricks.items()}
        out = []
        for a in self.arms:
            settings = canonical_tricks((self.spec.tricks[k] for k in a.tricks), texts)
            out.append((settings, ",".join(texts[t.key] for t in settings)))
        return out

    @cached_property
    def _base(self) -> str:
        spec = self.spec
        return base_text(spec.data, spec.model, spec.recipe, spec.trial)

    def trial_id(self, arm: int, seed: int) -> str:
        """The id of `arm` on `seed` (labels and order excluded; see `ablate.design.trial.hash_id`)."""
        return hash_id(self._base, self._arm_settings[arm][1], seed)

    def trial(self, arm: int, seed: int, *, experiment: str | None = None, origin: str = "design",
              reason: str = "design") -> Trial:
        """The trial of `arm` on `seed` (also for seeds outside the spec, e.g. adaptive ones)."""
        a, spec = self.arms[arm], self.spec
        return Trial(experiment or spec.name, a.index, a.label, seed, spec.data, spec.model, spec.recipe,
                     self._arm_settings[arm][0], self.trial_id(arm, seed), spec.trial, {}, origin, reason)

    def describe(self) -> str:
        spec = self.spec
        n_arms, n_seeds = len(self.arms), len(self.seeds)
        lines = [f"{spec.name}: {spec.design.kind} design, {n_arms} arms x {n_seeds} seeds "
                 f"= {len(self.trials)} trials (seeds {', '.join(map(str, self.seeds))})"]
        if spec.seeds.adaptive:
            a = spec.seeds.adaptive
            lines.append(f"adaptive seeds: the {n_seeds} seed(s) above are a pilot; then every arm runs the "
                         f"same n seeds, n chosen once (at most {a.max_seeds}) so that a lift CI is about "
                         f"±{a.target_half_width} wide at the pilot's root-mean-square paired difference "
                         f"(blind to the lifts' signs); lifts are then tested as a fixed design of n seeds")
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
            lines += without_factor_list(self.design.describe(), self.design.letters)
            flipped = flipped_factors(self.design.matrix)
            if flipped:
                names = ", ".join(self.design.factors[i] for i in flipped)
                lines.append(f"Sign convention: the levels of {names} are flipped so that run 0 has every "
                             f"trick off; generators of those factors hold with a minus sign (e.g. E = -ABCD). "
                             f"Aliasing is unchanged.")
        return "\n".join(lines)


def without_factor_list(text: str, letters) -> list[str]:
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



def plan(spec: Spec) -> Plan:
    """Arms and trials for `spec` (pure: builds nothing, runs nothing)."""
    design = two_level_design(spec) if spec.design.kind in FACTORIAL_DESIGNS else None
    levels = baseline_first(design.matrix) if design is not None else None
    model_label = model_info(spec.model).label if spec.trial is None else command_label(spec.trial.command)
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
    return Plan(spec, tuple(arms), design)


def command_label(command: tuple[str, ...]) -> str:
    """A short name for a command trial: its script's file name (else the program's)."""
    for part in command[1:]:
        if not part.startswith("-") and PurePath(part).suffix:
            return PurePath(part).name
    return PurePath(command[0].split()[0]).name


