"""MkDocs hook: the spec reference's field tables, generated from the pydantic models at build.

A page holding the line `<!-- spec-fields -->` gets one table per section of a spec (every field
of every model reachable from `Spec`: its type, default and allowed values); `<!-- trick-table -->`
gets the registered tricks with their parameters, from the trick registry. Generated, so the
reference cannot drift from the code; tests/test_docs.py checks that every field is listed.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:       # the checkout's ablate, not whatever else is installed
    sys.path.insert(0, str(ROOT))

SPEC_MARKER = "<!-- spec-fields -->"
# How a spec writes a section whose model's fields are not its keys one for one
WRITTEN_AS = {
    "TrickSetting": "A spec writes `tricks: {KEY: {PARAM: value, ..., use: TRICK, code: CODE}}`: `key` is the "
                    "mapping's key, `use` the registered trick (default: the key), `code` the table code "
                    "(default: the trick's), and the parameters sit inline beside them (the tricks "
                    "table below lists each trick's).",
}
TRICK_MARKER = "<!-- trick-table -->"


def _spec_class() -> type:
    from ablate.design.spec import Spec

    return Spec


def _is_model(t: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag(model: type) -> str | None:
    """A union member's tag (`name: digits`, `kind: one_at_a_time`), if it has one."""
    for key in ("name", "kind", "type"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is Literal:
            return f"{key}: {' | '.join(str(v) for v in typing.get_args(field.annotation))}"
    return None


def _anchor(path: str, model: type) -> str:
    tag = _tag(model)
    text = f"{path}-{tag or model.__name__}"
    return "spec-" + "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _type_text(annotation: Any, path: str, queue: list) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _type_text(args[0], path, queue)
    if origin in (Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        text = " \\| ".join(_type_text(a, path, queue) for a in parts)
        return text + (" \\| null" if len(parts) < len(args) else "")
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type_text(inner[0], path + '[]', queue)}" if inner else "list"
    if origin is dict:
        return f"mapping of {_type_text(args[1], path + '.<key>', queue)}" if args else "mapping"
    if _is_model(annotation):
        queue.append((path, annotation))
        return f"[{annotation.__name__}](#{_anchor(path, annotation)})"
    return f"`{getattr(annotation, '__name__', str(annotation))}`"


def _limits(field: Any) -> str:
    words = []
    for m in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"),
                           ("min_length", "length ≥"), ("max_length", "length ≤"), ("pattern", "matches")):
            value = getattr(m, attr, None)
            if value is not None:
                words.append(f"{sign} `{value}`")
    return ", ".join(words)


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if _is_model(type(value)):
        return "(its defaults)"
    return f"`{value!r}`" if value is not None else "`null`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def model_tables(root: type | None = None) -> tuple[str, list[tuple[str, type]]]:
    """The markdown tables and the (path, model) of every model they document."""
    root = root or _spec_class()
    queue: list[tuple[str, type]] = [("spec", root)]
    seen: set[tuple[str, type]] = set()
    done: list[tuple[str, type]] = []
    out: list[str] = []
    while queue:
        path, model = queue.pop(0)
        if (path, model) in seen:
            continue
        seen.add((path, model))
        done.append((path, model))
        tag = _tag(model)
        title = f"`{path}`" + (f" ({tag})" if tag and path != "spec" else "")
        out.append(f"### {title} {{ #{_anchor(path, model)} }}\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith(model.__name__ + "("):
            out.append(_cell(doc) + "\n")
        if model.__name__ in WRITTEN_AS:
            out.append(WRITTEN_AS[model.__name__] + "\n")
        keys = getattr(model, "input_keys", None)
        if keys:
            out.append(f"A spec writes: {', '.join(f'`{k}`' for k in keys)}.\n")
        out.append("| field | type | default | allowed | notes |")
        out.append("|:--|:--|:--|:--|:--|")
        for name, field in model.model_fields.items():
            sub = name if path == "spec" else f"{path}.{name}"
            kind = _type_text(field.annotation, sub, queue)
            out.append(f"| `{name}` | {kind} | {_default(field)} | {_cell(_limits(field))} "
                       f"| {_cell(field.description or '')} |")
        out.append("")
    return "\n".join(out), done


def trick_table() -> str:
    from ablate.tricks import all_tricks

    out = ["| trick | code | kind | parameters (type, default, range) | paper |", "|:--|:--|:--|:--|:--|"]
    for trick in all_tricks().values():
        params = []
        for row in trick.describe_params():
            bits = [str(row.get("type", "")), f"default {row.get('default')!r}"]
            if row.get("range"):
                bits.append(str(row["range"]))
            text = f"`{row['name']}` ({', '.join(b for b in bits if b)})"
            params.append(text + (f": {row['help']}" if row.get("help") else ""))
        out.append(f"| `{trick.name}` | {trick.code} | {trick.kind} | {_cell('; '.join(params)) or '—'} "
                   f"| {_cell(trick.paper)} |")
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if SPEC_MARKER in markdown:
        markdown = markdown.replace(SPEC_MARKER, model_tables()[0])
    if TRICK_MARKER in markdown:
        markdown = markdown.replace(TRICK_MARKER, trick_table())
    return markdown
