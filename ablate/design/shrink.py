"""Run any spec small: `--override KEY=VALUE` edits a loaded spec, `--shrink` cuts it down to a
few CPU batches on bundled data, so every spec in search_spaces/ can be exercised in seconds:

    ablate run cifar10_attention --override data=digits --shrink
    ablate plan intel_scenes_tricks --override recipe.epochs=5 --override tricks.mixup.alpha=0.4

An override is a dotted path into the spec's sections and a YAML value: `recipe.epochs=1`,
`tricks.mixup.alpha=0.4`, `data.root=/data/intel`, `seeds=2`. A plain value given to a section
chosen by its name or kind starts that section afresh: `data=digits` means `{name: digits}`,
`design=one_at_a_time` means `{kind: one_at_a_time}`; so does changing the name itself
(`model.name=resnet18`: the old model's fields do not carry over). Overrides apply in order, then
the shrink rules (`shrink_spec`), then the usual validation and data-file check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ablate.errors import SpecError
from ablate.design.spec import Spec, load_spec, resolve_spec_path, spec_from_dict, spec_to_dict
from ablate.config.spec_errors import suggest

SHRUNK_SUFFIX = "-shrunk"
SHRUNK_TRAIN_IMAGES = 64
SHRUNK_BATCH = 16
# Model fields shrunk to the smallest value the model config accepts, from this floor up to the
# spec's own value: depth as shallow as the family allows; widths at 8 channels where accepted
# (4 leave group-based norms almost nothing to normalise).
MODEL_FIELD_FLOORS = {"depth": 1, "width": 8, "base_width": 8, "widen": 1, "widen_factor": 1}
TAG_KEYS = ("name", "kind")   # the key that picks a section's schema (data/model name, design kind)


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """'recipe.epochs=1' -> (('recipe', 'epochs'), 1); the value is read as YAML."""
    key, sep, value = text.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not key.strip() or any(not p for p in path):
        raise SpecError(f"an override is KEY=VALUE with a dotted KEY, e.g. 'recipe.epochs=1' or "
                        f"'data=digits'; got {text!r}", source="--override")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise SpecError(f"the value {value!r} is not valid YAML ({str(exc).splitlines()[0]})",
                        source=f"--override {text}", path=".".join(path)) from None
    return path, parsed


def _keys_with_dots(raw: dict, path: tuple[str, ...]) -> tuple[str, ...]:
    """`path` with the segments that make up one key holding dots joined again: in
    'search.params.recipe.lr.low' the parameter is 'recipe.lr' (the longest key that exists)."""
    node, out, i = raw, [], 0
    while i < len(path):
        step = 1
        if isinstance(node, dict) and path[i] not in node:
            step = next((j - i for j in range(len(path), i + 1, -1) if ".".join(path[i:j]) in node), 1)
        key = ".".join(path[i:i + step])
        out.append(key)
        node = node.get(key) if isinstance(node, dict) else None
        i += step
    return tuple(out)


def _set(raw: dict, path: tuple[str, ...], value: Any, text: str) -> None:
    path = _keys_with_dots(raw, path)
    node = raw
    for depth, key in enumerate(path[:-1]):
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            where = ".".join(path[:depth + 1])
            if isinstance(node, dict) and key not in node:
                hint = suggest(key, [str(k) for k in node])
                raise SpecError(f"unknown path '{where}'{hint}; known here: {', '.join(map(str, node)) or '(none)'}",
                                source=f"--override {text}", path=where)
            raise SpecError(f"'{where}' is {child!r}, not a section with fields, so '{'.'.join(path)}' "
                            f"cannot be set", source=f"--override {text}", path=where)
        node = child
    key = path[-1]
    if len(path) == 1 and key not in Spec.model_fields:
        raise SpecError(f"unknown section '{key}'{suggest(key, list(Spec.model_fields))}; sections: "
                        f"{', '.join(Spec.model_fields)}", source=f"--override {text}", path=key)
    current = node.get(key)
    if isinstance(current, dict) and not isinstance(value, dict):
        tag = next((t for t in TAG_KEYS if t in current), None)
        if tag is not None and value is not None:
            value = {tag: value}           # data=digits -> {name: digits}
    if key in TAG_KEYS and len(path) == 2 and path[0] != "tricks" and node.get(key) != value:
        node.clear()                       # another model/data/design: its old fields do not apply
    node[key] = value


def apply_overrides(spec: Spec, overrides: Sequence[str], *, source: str = "<spec>") -> Spec:
    """`spec` with each 'KEY=VALUE' applied in order, re-validated (data files not checked).
    A bad path or value raises SpecError naming the override and the field."""
    if not overrides:
        return spec
    raw = spec_to_dict(spec)
    parsed = [(text, *parse_override(text)) for text in overrides]
    for text, path, value in parsed:
        _set(raw, path, value, text)
    return _validated(raw, source, parsed)


def _blame(field: str, parsed) -> str | None:
    """The last override that set `field`, a section holding it, or a field inside it."""
    for text, path, _ in reversed(parsed):
        dotted = ".".join(path)
        if field == dotted or field.startswith(dotted + ".") or dotted.startswith(field + "."):
            return text
    return None


def _validated(raw: dict, source: str, parsed=()) -> Spec:
    try:
        return spec_from_dict(raw, source=source, check_files=False)
    except SpecError as exc:
        if not parsed:
            raise
        culprit = _blame(exc.path or "", parsed)
        where = f"--override {culprit}" if culprit else f"{source} with --override " + ", ".join(t for t, *_ in parsed)
        raise SpecError(exc.message, source=where, path=exc.path) from None


def _shrunk_data(data: dict) -> dict:
    if data["name"] == "digits":
        size = data.get("train_size") or SHRUNK_TRAIN_IMAGES
        return {**data, "train_size": min(size, SHRUNK_TRAIN_IMAGES)}
    if data["name"] == "synthetic":
        return {**data, "image_size": min(data["image_size"], 16), "train_size": SHRUNK_TRAIN_IMAGES,
                "val_size": 32, "test_size": 32}
    # files (CIFAR, ImageFolder, ImageNet): digits with the same channels and base augmentation
    return {"name": "digits", "image_size": 16, "channels": data.get("channels", 3),
            "train_size": SHRUNK_TRAIN_IMAGES, "crop_padding": min(data.get("crop_padding", 2), 4),
            "flip": data.get("flip", False)}


def _shrunk_model(model: dict) -> dict:
    from ablate.models import ModelConfig
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(ModelConfig)
    out = dict(model)
    for field, floor in MODEL_FIELD_FLOORS.items():
        value = out.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        for candidate in range(floor, value):   # the first the model accepts
            try:
                adapter.validate_python({**out, field: candidate})
            except ValidationError:
                continue
            out[field] = candidate
            break
    return out


SHRUNK_SEARCH_TRIALS = 3


def shrink_spec(spec: Spec) -> Spec:
    """The spec at toy scale, runnable in seconds on a CPU, as experiment `<name>-shrunk`:

    - data: digits and synthetic keep their kind with a 64-image training set (synthetic: 32
      validation and test images, <= 16 px); data read from files (CIFAR, ImageFolder, ImageNet)
      becomes digits, 16 px, 64 training images, with its channels and flips;
    - recipe: 1 epoch and batches of at most 16; a trick with an integer `epochs` parameter
      (e.g. a warmup length) gets 1 and the recipe 2 epochs, a float one half an epoch;
    - seeds: the first seed only, or the first two with adaptive seeds (which then add none);
    - model: integer fields named in MODEL_FIELD_FLOORS (depth, width, ...) take the smallest
      value the model accepts between the floor and the spec's value (a ResNet-56 becomes a
      ResNet-8); models without such fields (torchvision's by name) stay as they are;
    - search: at most SHRUNK_SEARCH_TRIALS trials, no timeout, at most 2 finalists, each stage on
      the fewest seeds it takes (1 to search, 1 to select, 2 to report: the spec's first seeds);
    - design, tricks and their other parameters are untouched, so every arm still plans.
    Command trials (`trial:`) keep their command; only data, seeds and name change."""
    raw = spec_to_dict(spec)
    raw["name"] = (spec.name[: 100 - len(SHRUNK_SUFFIX)] + SHRUNK_SUFFIX) if not spec.name.endswith(SHRUNK_SUFFIX) else spec.name
    raw["description"] = ("(shrunk) " + spec.description).strip()
    raw["data"] = _shrunk_data(raw["data"])
    seeds = list(spec.seeds.values)
    if spec.seeds.adaptive is not None:
        raw["seeds"] = {"values": seeds[:2], "adaptive": {**raw["seeds"]["adaptive"], "max_seeds": 2}}
    else:
        raw["seeds"] = {"values": seeds[:1]}
    if spec.recipe is not None:
        lengths = [params for params in raw["tricks"].values() if "epochs" in params]
        epochs = 2 if any(type(params["epochs"]) is int for params in lengths) else 1
        for params in lengths:   # a trick's length in epochs must stay below the recipe's
            params["epochs"] = 1 if type(params["epochs"]) is int else epochs / 2
        raw["recipe"] = {**raw["recipe"], "epochs": epochs,
                         "batch_size": min(raw["recipe"]["batch_size"], SHRUNK_BATCH)}
        raw["model"] = _shrunk_model(raw["model"])
    if raw.get("search"):
        search = raw["search"]
        search["n_trials"] = min(search.get("n_trials") or SHRUNK_SEARCH_TRIALS, SHRUNK_SEARCH_TRIALS)
        search["timeout_s"] = None
        if search.get("validate"):
            k = min(search["validate"]["top_k"], 2)
            search["validate"] = {"top_k": k, "select_seeds": 1 if k > 1 else None, "report_seeds": 2}
        if search.get("validate") or search.get("compare_to") or search.get("per_arm"):
            # the stages' seeds (ablate.design.stages): one to search, one to select, two to report
            select = search["validate"]["select_seeds"] if search.get("validate") else None
            n = 1 + (select or 0) + 2
            raw["seeds"] = {"values": seeds[:n]}
    return _validated(raw, f"<{spec.name}, shrunk>")


def load_run_spec(path_or_name: str | Path, *, overrides: Sequence[str] = (), shrink: bool = False,
                  check_files: bool = True, load=None) -> Spec:
    """`load_spec` with the command line's overrides and shrink applied before the data files
    are checked (so `--override data=digits` runs a CIFAR spec on a machine without CIFAR).
    `load` replaces `load_spec` (the CLI's also reads NNI configs)."""
    load = load or load_spec
    if not overrides and not shrink:
        return load(path_or_name, check_files=check_files)
    source = str(resolve_spec_path(path_or_name))
    spec = load(path_or_name, check_files=False)
    spec = apply_overrides(spec, overrides, source=source)
    if shrink:
        spec = shrink_spec(spec)
    if check_files:
        from ablate.data import check_data
        from ablate.errors import DataError

        try:
            check_data(spec.data)
        except DataError as exc:
            field = "data.root" if hasattr(spec.data, "root") else "data.name"
            culprit = _blame(field, [(t, *parse_override(t)) for t in overrides])
            raise SpecError(str(exc), source=f"--override {culprit}" if culprit else source, path=field) from None
    return spec
