"""The experiment spec: typed, validated, frozen. Loading never runs anything.

A spec file is YAML (see `search_spaces/`). `load_spec` accepts a path or the name of a file in
`search_spaces/`, and raises `SpecError` naming the file, the field path (and YAML line), what is
allowed and what was given, for any problem: bad YAML, unknown keys (typos are never ignored),
unknown trick/model/data/design names (with the nearest valid name), out-of-range parameters,
tricks that conflict or need another model, and data files that are absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from ablate.design.arms import arm_tricks
from ablate.config import Frozen
from ablate.config.metric import BUILTIN_METRICS
from ablate.config.sections import (
    MAX_SEEDS_PER_ARM,
    MAX_TRIALS,
    MIN_TRICKS,
    Design,
    ExplicitArm,
    Metric,
    Recipe,
    Seeds,
    TrickSetting,
)
from ablate.data import DATA_NAMES, DataConfig, check_data
from ablate.errors import DataError, DesignError, SpecError
from ablate.models import MODEL_NAMES, ModelConfig
from ablate.config.spec_yaml import MAX_SPEC_BYTES, read_yaml
from ablate.config.spec_errors import DESIGN_KINDS, dotted_path, first_error, line_for, pydantic_message, suggest
from ablate.config.run import CommandFlags, CommandTrial, EarlyStop, Resources, Retries
from ablate.config.search import SearchConfig, check_raw_names
from ablate.design.search import check_search
from ablate.tricks import get_trick, trick_names

class Spec(Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str = ""
    data: DataConfig
    model: ModelConfig | None = None        # required unless `trial` runs a command
    recipe: Recipe | None = None            # required unless `trial` runs a command
    trial: CommandTrial | None = None
    retries: Retries = Retries()
    resources: Resources = Resources()      # per trial on Ray (`--runner ray`)
    early_stop: EarlyStop | None = None     # ASHA, on every runner (ablate.runner.early_stop)
    tricks: dict[str, TrickSetting] = Field(default_factory=dict)
    design: Design
    seeds: Seeds
    metric: Metric = Metric()
    # `save: final` keeps each trial's final weights (see ablate.models.weights); not part of the
    # trial ids: saving does not change what a trial computes
    save: Literal["final"] | None = None
    # Train trials of one shape as one fused model (`ablate.runner.fused`): "auto" fuses on CUDA
    # (on the CPU fused results equal one-at-a-time ones only to float tolerance, and CPU runs
    # promise bit-for-bit repeats), "on" fuses on any device, "off" never.
    fuse: Literal["auto", "on", "off"] = "auto"
    search: SearchConfig | None = None      # an Optuna search (ablate.search); design optional then

    @field_validator("fuse", mode="before")
    @classmethod
    def _fuse_switch(cls, v):
        # YAML 1.1 reads an unquoted `on` / `off` (as the README writes them) as true / false
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_shorthand(cls, v):
        # `seeds: 3` means seeds 0, 1, 2; `seeds: [0, 7]` lists them; a mapping may add `adaptive`.
        if isinstance(v, int) and not isinstance(v, bool):
            return {"values": list(range(_seed_count(v, "seeds")))}
        if isinstance(v, list):
            if len(v) > MAX_SEEDS_PER_ARM:
                raise ValueError(f"{len(v):,} seeds listed; the limit is {MAX_SEEDS_PER_ARM:,} per arm")
            return {"values": v}
        if isinstance(v, dict) and "count" in v:
            v = dict(v)
            v["values"] = list(range(_seed_count(v.pop("count"), "seeds.count")))
            return v
        if isinstance(v, dict) or isinstance(v, Seeds):
            return v
        raise ValueError(f"seeds must be a number of seeds ('seeds: 3' runs seeds 0, 1, 2), a list of "
                         f"seed values ('seeds: [0, 7, 42]') or a mapping ('seeds: {{count: 3, adaptive: "
                         f"{{max_seeds: 10}}}}'); got {v!r}")

    def with_changes(self, **sections: Any) -> Spec:
        """A re-validated copy with some fields replaced: `with_changes(recipe={'epochs': 1},
        seeds=1)` merges mappings into their section and replaces other values."""
        raw = spec_to_dict(self)
        for section, changes in sections.items():
            if isinstance(changes, dict) and isinstance(raw.get(section), dict) and section != "tricks":
                raw[section] = {**raw[section], **changes}
            else:
                raw[section] = changes
        return spec_from_dict(raw, source=f"<{self.name}, modified>", check_files=False)


def _seed_count(n: Any, where: str) -> int:
    # checked before range(n) is built: `seeds: 1000000000` must fail here, not in the allocator
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{where} must be >= 1 (a whole number: the seeds per arm), got {n!r}")
    if n > MAX_SEEDS_PER_ARM:
        raise ValueError(f"{where} asks for {n:,} seeds per arm; the limit is {MAX_SEEDS_PER_ARM:,}")
    return n


# -- loading ----------------------------------------------------------------------------------

SEARCH_SPACES = Path(__file__).resolve().parents[2] / "search_spaces"   # a source checkout


def spec_dirs() -> list[Path]:
    """Where spec names are looked up: ./search_spaces, then the installed ones."""
    dirs = [Path.cwd() / "search_spaces", SEARCH_SPACES]
    try:
        from importlib.resources import files

        dirs.append(Path(str(files("ablate.search_spaces"))))
    except (ModuleNotFoundError, TypeError):
        pass
    seen, out = set(), []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            out.append(d)
    return out


def available_specs() -> list[str]:
    return sorted({p.stem for d in spec_dirs() for p in d.glob("*.yaml")})


def resolve_spec_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name).expanduser()
    if p.is_file():
        return p
    if p.suffix == "" and len(p.parts) == 1:
        for d in spec_dirs():
            cand = d / f"{p.name}.yaml"
            if cand.is_file():
                return cand
    names = available_specs()
    hint = suggest(p.stem, names)
    raise SpecError(f"no spec file '{path_or_name}'{hint}; give a path to a YAML file or one of the "
                    f"bundled names: {', '.join(names) or '(none found)'}", source=str(path_or_name))


def load_spec(path_or_name: str | Path, *, check_files: bool = True) -> Spec:
    """Load and validate a spec file (a path, or a name in search_spaces/)."""
    if Path(path_or_name).suffix == ".py":
        raise _script_given(Path(path_or_name))
    path = resolve_spec_path(path_or_name)
    if path.is_file() and path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"the spec file is {path.stat().st_size:,} bytes; the limit is {MAX_SPEC_BYTES:,} "
                        f"(a spec is a few kB of YAML; is this the right file?)", source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec file: {exc}", source=str(path)) from None
    if text.startswith("#!") and "python" in text.splitlines()[0]:
        raise _script_given(path)
    return parse_spec(text, source=str(path), default_name=path.stem, check_files=check_files)


def _script_given(path: Path) -> SpecError:
    return SpecError(f"'{path}' is a Python script, not a spec. ablate runs the trials a YAML spec "
                     f"describes (see search_spaces/quickstart.yaml); to train with your own script, "
                     f"the spec names it as the trials' command, 'trial: {{command: [python, {path}]}}', "
                     f"beside the tricks, design and seeds to try (command trials, see the README)",
                     source=str(path))


def parse_spec(text: str, *, source: str = "<string>", default_name: str | None = None,
               check_files: bool = True) -> Spec:
    """Validate a spec from YAML text. `check_files=False` skips the data-file checks."""
    raw, lines = read_yaml(text, source=source)
    return spec_from_dict(raw, source=source, default_name=default_name, check_files=check_files,
                          lines=lines)


def spec_from_dict(raw: Any, *, source: str = "<dict>", default_name: str | None = None,
                   check_files: bool = True, lines: dict[tuple, int] | None = None) -> Spec:
    """Validate a spec given as plain data (the parsed YAML, or `spec_to_dict` output)."""
    lines = lines or {}
    if raw is None:
        raise SpecError("the spec file is empty; see search_spaces/quickstart.yaml for a template",
                        source=source)
    if not isinstance(raw, dict):
        raise SpecError(f"a spec must be a YAML mapping of sections, got a {type(raw).__name__}",
                        source=source)
    raw = dict(raw)
    if default_name and "name" not in raw:
        raw["name"] = default_name

    def fail(path: tuple, message: str) -> SpecError:
        return SpecError(message, source=source, path=dotted_path(path), line=line_for(lines, path))

    _check_names(raw, fail)
    _search_defaults(raw, fail)
    raw["tricks"] = _resolve_tricks(raw.get("tricks"), fail, command=raw.get("trial") is not None)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise first_error(exc, raw, fail, Spec) from None
    _check_consistency(spec, fail, check_files=check_files)
    return spec


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as plain data in the YAML file's own shape (tricks as `key: {use, code, params}`)."""
    raw = spec.model_dump(mode="json", exclude={"tricks"})
    if raw.get("search") is None:
        raw.pop("search", None)        # specs without a search keep their stored text
    raw["tricks"] = {k: {"use": t.use, "code": t.code, **t.params.model_dump(mode="json")}
                     for k, t in spec.tricks.items()}
    return raw


# -- checks -----------------------------------------------------------------------------------


def _search_defaults(raw: dict, fail) -> None:
    """A search may omit `design`: it then tunes the recipe with every listed trick on (one
    explicit arm). A per-arm search needs the design whose arms it tunes."""
    search = raw.get("search")
    if search is None:
        return
    check_raw_names(search, fail)
    if "design" not in raw:
        if isinstance(search, dict) and search.get("per_arm"):
            raise fail(("search", "per_arm"), "'per_arm: true' tunes each arm of the design: give a 'design' "
                                              "(e.g. 'design: {kind: one_at_a_time}')")
        tricks = raw.get("tricks")
        raw["design"] = {"kind": "explicit", "arms": [[str(k) for k in tricks] if isinstance(tricks, dict) else []]}


def _check_names(raw: dict, fail) -> None:
    """Registry-backed names get a nearest-name suggestion (pydantic's union errors do not)."""
    for section, key, names in (("data", "name", DATA_NAMES), ("model", "name", MODEL_NAMES),
                                ("design", "kind", DESIGN_KINDS)):
        value = raw.get(section)
        if isinstance(value, dict):
            given = value.get(key)
            if given is None:
                raise fail((section,), f"'{section}.{key}' is required; one of: {', '.join(names)}")
            if given not in names:
                raise fail((section, key), f"unknown {section} {key} '{given}'{suggest(str(given), names)}; "
                                           f"allowed: {', '.join(names)}")


def _resolve_tricks(tricks: Any, fail, *, command: bool = False) -> dict[str, TrickSetting]:
    if tricks is None:
        return {}
    if not isinstance(tricks, dict):
        raise fail(("tricks",), "tricks must be a mapping of trick name to parameters, e.g. "
                                f"'mixup: {{alpha: 0.2}}'; got a {type(tricks).__name__}")
    out: dict[str, TrickSetting] = {}
    codes: dict[str, str] = {}
    settings: dict[str, str] = {}   # resolved settings -> key: equal settings would share trial ids
    for key, params in tricks.items():
        key = str(key)
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise fail(("tricks", key), f"parameters must be a mapping (use {{}} for none), got {params!r}")
        params = dict(params)
        use = str(params.pop("use", key))
        code = params.pop("code", None)
        if command:   # a command trial's tricks are its own flags, not registered tricks
            try:
                flags = CommandFlags.model_validate(params)
            except ValidationError as exc:
                raise fail(("tricks", key), pydantic_message(exc.errors()[0])) from None
            out[key] = TrickSetting(key=key, use=use, code=str(code) if code is not None else key, params=flags)
            continue
        try:
            trick = get_trick(use)
        except KeyError:
            names = trick_names()
            field = ("tricks", key, "use") if use != key else ("tricks", key)
            raise fail(field, f"unknown trick '{use}'{suggest(use, names)}; registered tricks: "
                              f"{', '.join(names)} (to use a trick twice with other parameters, "
                              f"give the entry any name and 'use: <trick>')") from None
        try:
            p = trick.Params.model_validate(params)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ("tricks", key, *err["loc"])
            allowed = list(trick.Params.model_fields)
            if err["type"] == "extra_forbidden":
                name = str(err["loc"][-1])
                raise fail(loc, f"unknown parameter '{name}' for trick '{use}'{suggest(name, allowed)}; "
                                f"allowed: {', '.join(allowed) or '(none)'}") from None
            raise fail(loc, f"{pydantic_message(err)}") from None
        resolved = json.dumps({"use": use, "params": p.model_dump(mode="json")}, sort_keys=True)
        if resolved in settings:
            raise fail(("tricks", key), f"'{key}' and '{settings[resolved]}' are the same trick with the "
                                        f"same parameters ({use} {p.model_dump(mode='json')}), so their "
                                        f"arms would be the same trials; remove one or change a parameter")
        settings[resolved] = key
        code = str(code) if code is not None else (trick.code if key == use else key)
        if code in codes:
            raise fail(("tricks", key), f"table code '{code}' is already used by '{codes[code]}'; "
                                        f"give this entry its own 'code:'")
        codes[code] = key
        out[key] = TrickSetting(key=key, use=use, code=code, params=p)
    return out


def _check_consistency(spec: Spec, fail, *, check_files: bool) -> None:
    kind = spec.design.kind
    if spec.trial is not None and (spec.model is not None or spec.recipe is not None):
        given = " and ".join(s for s in ("model", "recipe") if getattr(spec, s) is not None)
        raise fail(("trial",), f"'trial' runs your own command, so {given} cannot be given with it; "
                               f"remove {given}, or remove 'trial' to use the built-in trainer")
    if spec.trial is not None and spec.save is not None:
        raise fail(("save",), "'save: final' keeps the weights the built-in trainer trained; a command trial "
                              "trains in your own script, which saves its own weights where it likes (its "
                              "working folder is trial.cwd); remove 'save'")
    if spec.fuse == "on" and (spec.trial is not None or spec.save is not None):
        why = "a command trial trains in your own script" if spec.trial is not None else \
            "'save: final' keeps each trial's weights, which the fused loop does not make"
        raise fail(("fuse",), f"'fuse: on' trains trials of one shape as one fused model, but {why}; remove "
                              f"'fuse: on' (or set it to auto or off)")
    if spec.trial is None:
        for section in ("model", "recipe"):
            if getattr(spec, section) is None:
                raise fail((section,), f"the '{section}' section is required (or give 'trial: {{command: "
                                       f"[...]}}' to run your own training script)")
    n = len(spec.tricks)
    if kind != "explicit" and n < MIN_TRICKS[kind]:
        raise fail(("tricks",), f"design '{kind}' needs at least {MIN_TRICKS[kind]} trick(s) in 'tricks', "
                                f"got {n}; list the tricks to ablate, e.g. 'tricks: {{cosine: {{}}, mixup: {{alpha: 0.2}}}}'")
    if kind == "explicit":
        seen: dict[frozenset, int] = {}
        for i, arm in enumerate(spec.design.arms):
            keys = arm.tricks if isinstance(arm, ExplicitArm) else arm
            for key in keys:
                if key not in spec.tricks:
                    raise fail(("design", "arms", i), f"arm {i} uses '{key}', which is not in 'tricks'"
                                                       f"{suggest(key, list(spec.tricks))}; defined: "
                                                       f"{', '.join(spec.tricks) or '(none)'}")
            fs = frozenset(keys)
            if fs in seen:
                raise fail(("design", "arms", i), f"arm {i} repeats the tricks of arm {seen[fs]}")
            seen[fs] = i
    for key, setting in spec.tricks.items() if spec.trial is None else ():
        reason = get_trick(setting.use).check(setting.params, spec)
        if reason:
            raise fail(("tricks", key), reason)
    try:
        arms = arm_tricks(spec)
    except DesignError as exc:
        raise fail(("design",), str(exc)) from None
    seeds_per_arm = max(len(spec.seeds.values), spec.seeds.adaptive.max_seeds if spec.seeds.adaptive else 0)
    if len(arms) * seeds_per_arm > MAX_TRIALS:
        raise fail(("seeds",), f"this spec would make {len(arms):,} arms x {seeds_per_arm:,} seeds = "
                               f"{len(arms) * seeds_per_arm:,} trials; the limit is {MAX_TRIALS:,}. Use fewer "
                               f"seeds, fewer tricks, or a fractional design")
    for arm in arms if spec.trial is None else ():
        slots: dict[str, str] = {}
        for key in arm:
            slot = get_trick(spec.tricks[key].use).slot
            if slot and slot in slots:
                raise fail(("tricks", key), f"'{key}' and '{slots[slot]}' both set the {slot} and cannot "
                                            f"be combined in one arm, but design '{kind}' combines them; "
                                            f"use an explicit design or separate experiments")
            if slot:
                slots[slot] = key
    if spec.search is not None:
        check_search(spec, fail, arms)
    if spec.early_stop is not None:
        _check_early_stop(spec, fail)
    if check_files:
        try:
            check_data(spec.data)
        except DataError as exc:
            field = "root" if hasattr(spec.data, "root") else "name"
            raise fail(("data", field), str(exc)) from None
        _check_weight_files(spec, fail)


def _check_early_stop(spec: Spec, fail) -> None:
    """`early_stop:` compares a metric it knows the direction of, and is the only early stop."""
    e = spec.early_stop
    try:
        e.direction(spec.metric.name, spec.metric.mode)
    except ValueError as exc:
        raise fail(("early_stop", "mode"), f"{exc}; ASHA would keep the worst trials") from None
    if e.direction(spec.metric.name, spec.metric.direction) is None:
        raise fail(("early_stop", "metric"), f"early_stop compares '{e.metric}', which is neither built in "
                                             f"({', '.join(BUILTIN_METRICS)}) nor the spec's metric: give its "
                                             f"direction, e.g. {{metric: {e.metric}, mode: max}}")
    if spec.search is not None and spec.search.pruner.name != "none":
        raise fail(("early_stop",), f"'early_stop' (ASHA) and 'search.pruner' ({spec.search.pruner.name}) would "
                                    f"both stop trials early, each by its own rule; keep one: remove "
                                    f"'early_stop', or set 'search.pruner: none'")


def _check_weight_files(spec: Spec, fail) -> None:
    """Pretrained weights (`model.weights`) and teacher files (a trick's `check_files`)."""
    if spec.model is not None and spec.model.weights is not None:
        from ablate.models.weights import check_model_weights

        problem = check_model_weights(spec.model, spec.data)
        if problem:
            raise fail(("model", "weights"), problem)
    for key, setting in spec.tricks.items() if spec.trial is None else ():
        problem = get_trick(setting.use).check_files(setting.params, spec)
        if problem:
            raise fail(("tricks", key), problem)
