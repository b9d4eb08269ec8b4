"""Turning pydantic's validation errors into spec messages: field path, YAML line, what is
allowed and what was given. Pure functions over the raw spec data and the schema models;
`ablate.design.spec` calls them (kept apart so the schema stays readable)."""

from __future__ import annotations

import difflib
import functools
import types
import typing
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from ablate.errors import SpecError

DESIGN_KINDS = ["cumulative", "explicit", "fractional_factorial", "full_factorial", "leave_one_out",
                "one_at_a_time", "plackett_burman"]

# Where a list was given for a single number: say how to compare several values instead.
MANY_VALUES_HINT = ("to compare several values, give one trick entry per value with 'use:' (e.g. "
                    "'mixup_02: {use: mixup, alpha: 0.2}' and 'mixup_1: {use: mixup, alpha: 1.0}'), "
                    "or run a search over it")


def suggest(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' for the nearest choice, or ''."""
    near = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{near[0]}'?)" if near else ""


def dotted_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def pydantic_message(err: dict) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    given = err.get("input")
    if err["type"] == "missing":
        return "this field is required"
    if err["type"] == "finite_number":
        return f"must be a finite number (not .inf or .nan); got {given!r}"
    if isinstance(given, list) and err["type"] in ("float_type", "int_type", "bool_type", "string_type",
                                                   "float_parsing", "int_parsing"):
        return f"{msg}, got the list {given!r}: a field takes one value; {MANY_VALUES_HINT}"
    if isinstance(given, (dict, list)) or err["type"].startswith("value_error"):
        return msg
    return f"{msg}; got {given!r}"


@functools.cache
def union_tags(root: type[BaseModel]) -> frozenset[str]:
    """Every tag value of the unions in `root`'s schema (a union member's Literal `name`, `kind` or
    `type`, e.g. 'cifar_resnet'): the names pydantic inserts into error locations. Read from the
    schema itself, so this module needs no registry."""
    tags: set[str] = set()
    seen: set[type] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for f in model.model_fields.values():
            for annotation in (f.annotation, _dict_values(f.annotation)):
                for cand in union_members(annotation):
                    if isinstance(cand, type) and issubclass(cand, BaseModel):
                        for key in ("name", "kind", "type"):
                            tag = cand.model_fields.get(key)
                            if tag is not None and typing.get_origin(tag.annotation) is typing.Literal:
                                tags.update(str(a) for a in typing.get_args(tag.annotation))
                        walk(cand)

    walk(root)
    return frozenset(tags)


def strip_tags(loc: tuple, raw: Any, root: type[BaseModel]) -> tuple:
    """Drop the union tags pydantic inserts into error locations (e.g. 'cifar_resnet')."""
    tags = union_tags(root)
    out, node = [], raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, (list, tuple)) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(part, str) and (part in tags
                                         or "[" in part or part in ("int", "list", "dict", "float", "categorical")):
            continue
        elif isinstance(part, str) and part[:1].isupper() and isinstance(node, dict):
            continue   # a union member's class name (e.g. 'ExplicitArm'); spec keys are lower case
        else:
            out.append(part)
            node = None
    return tuple(out)


def _model_of(annotation: Any, raw: Any) -> type[BaseModel] | None:
    """The model class `annotation` denotes (picking a union member by its tag: a Literal field
    `name`, `kind` or `type`)."""
    for cand in union_members(annotation):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            fields = cand.model_fields
            tag = next((k for k in ("name", "kind", "type") if k in fields
                        and typing.get_origin(fields[k].annotation) is typing.Literal), None)
            if tag and isinstance(raw, dict):
                allowed = typing.get_args(fields[tag].annotation)
                if raw.get(tag) not in allowed:
                    continue
            return cand
    return None


def _dict_values(annotation: Any) -> Any:
    """The value type of a `dict[str, X]` annotation (inside Annotated or a union), else None."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _dict_values(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return next((v for a in typing.get_args(annotation) if (v := _dict_values(a)) is not None), None)
    return typing.get_args(annotation)[1] if origin is dict else None


def fields_of(annotation: Any, raw: Any) -> dict[str, Any] | None:
    """The fields of the model `annotation` denotes (picking a union member by its tag)."""
    model = _model_of(annotation, raw)
    return model.model_fields if model is not None else None


def union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return union_members(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in union_members(a)]
    if origin in (tuple, list):
        return [m for a in typing.get_args(annotation) if a is not Ellipsis for m in union_members(a)]
    return [annotation]


def allowed_keys(path: tuple, raw: dict, root: type[BaseModel]) -> list[str] | None:
    """The keys a user may write at `path`. A model lists its own input keys in `input_keys`
    when they differ from its fields (e.g. `seeds: {count: 3}`)."""
    model: type[BaseModel] | None = root
    annotation: Any = None            # a field's annotation, when it is a dict of models
    node: Any = raw
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, (list, tuple)) and part < len(node) else None
            continue
        node_before, node = node, (node.get(part) if isinstance(node, dict) else None)
        if annotation is not None:    # a key of a dict (a searched parameter's path): its value's model
            model, annotation = _model_of(annotation, node), None
            continue
        if model is None or part not in model.model_fields:
            return None
        field = model.model_fields[part].annotation
        annotation = _dict_values(field)
        model = None if annotation is not None else _model_of(field, node)
        del node_before
    if model is None:
        return None
    keys = getattr(model, "input_keys", None)
    return list(keys) if keys else [k for k in model.model_fields if k != "key"]


def first_error(exc: ValidationError, raw: dict, fail, root: type[BaseModel]) -> SpecError:
    """One message for a validation failure. An unknown key comes first whenever there is one
    (a typo is the likely cause of the other errors), with the required field it probably meant."""
    errors = exc.errors()
    extra = next((e for e in errors if e["type"] == "extra_forbidden"), None)
    if extra is not None:
        loc = strip_tags(tuple(extra["loc"]), raw, root)
        name = str(loc[-1])
        allowed = allowed_keys(loc[:-1], raw, root) or []
        where = dotted_path(loc[:-1]) or "the top level"
        missing = [strip_tags(tuple(e["loc"]), raw, root) for e in errors if e["type"] == "missing"]
        missing = [m for m in missing if m[:-1] == loc[:-1]]
        also = ""
        if missing:
            names = ", ".join(f"'{dotted_path(m)}'" for m in missing)
            also = f"; required {'field' if len(missing) == 1 else 'fields'} {names} missing"
        return fail(loc, f"unknown key '{name}' in {where}{suggest(name, allowed)}{also}; allowed keys: "
                         f"{', '.join(allowed)}")
    err = errors[0]
    loc = strip_tags(tuple(err["loc"]), raw, root)
    if err["type"] == "missing" and len(loc) == 1:
        return fail(loc, f"the '{loc[0]}' section is required")
    return fail(loc, pydantic_message(err))


def key_lines(text_or_node: str | yaml.Node | None) -> dict[tuple, int]:
    """1-based line of every mapping key and sequence item, by path (from YAML text or a node
    composed from it; give a node only when its expanded size is bounded)."""
    if isinstance(text_or_node, str):
        try:
            root = yaml.compose(text_or_node, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return {}
    else:
        root = text_or_node
    out: dict[tuple, int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, k.value)
                out.setdefault(p, k.start_mark.line + 1)
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = (*path, i)
                out[p] = v.start_mark.line + 1
                walk(v, p)

    if root is not None:
        walk(root, ())
    return out


def line_for(lines: dict[tuple, int], path: tuple) -> int | None:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _path_parts(dotted: str) -> tuple:
    """'trial.command[0]' -> ('trial', 'command', 0)."""
    out: list = []
    for part in dotted.split("."):
        name, *indices = part.replace("]", "").split("[")
        if name:
            out.append(name)
        out += [int(i) for i in indices if i.isdigit()]
    return tuple(out)


def with_line(exc: SpecError) -> SpecError:
    """`exc` with the YAML line of its field, read from its spec file, for an error raised after
    the spec loaded (a command that is not there, the first trial's metric): loading keeps no
    lines. Unchanged when the line is known, or the source is not a readable file."""
    from pathlib import Path

    if exc.line is not None or not exc.source or not exc.path:
        return exc
    try:
        path = Path(exc.source)
        if not path.is_file() or path.stat().st_size > 1_000_000:
            return exc
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return exc
    line = line_for(key_lines(text), _path_parts(exc.path))
    return exc if line is None else SpecError(exc.message, source=exc.source, path=exc.path, line=line)
