"""Reading a spec's YAML safely: bounded size, no repeated keys, and the line of every key.

PyYAML's `safe_load` keeps the last of two equal keys without a word, and a few lines of
anchors and aliases can stand for billions of values ("billion laughs"): PyYAML shares the
aliased objects, but everything that walks the result afterwards (validation, hashing, JSON)
expands them. So the document is composed into nodes first (linear in the text), checked, and
only then constructed into Python objects.
"""

from __future__ import annotations

from typing import Any

import yaml

from ablate.errors import SpecError
from ablate.config.spec_errors import key_lines

MAX_SPEC_BYTES = 1_000_000     # a real spec is a few kB; the largest shipped one is under 4 kB
MAX_EXPANDED_NODES = 100_000   # values after expanding aliases; a real spec has a few hundred


def read_yaml(text: str, *, source: str) -> tuple[Any, dict[tuple, int]]:
    """The parsed document and the 1-based line of every key path. Raises SpecError for bad
    YAML, an oversized file, a repeated key, or aliases that expand beyond the limit."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"the spec file is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} (a spec is a "
                        f"few kB of YAML; is this the right file?)", source=source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_expansion(node, source)
        _check_repeated_keys(node, source)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"YAML syntax error: {problem}", source=source,
                        line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return data, key_lines(node)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_EXPANDED_NODES values (or refer
    to themselves). Sizes are memoised per node, so the check is linear in the text."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError("the YAML refers to itself through an anchor and alias (a recursive "
                            "structure); a spec must be a finite tree of values", source=source,
                            line=node.start_mark.line + 1)
        active.add(key)
        total = 1
        for child in _children(node):
            total += expanded(child)
            if total > MAX_EXPANDED_NODES:
                break
        active.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise SpecError(f"the YAML expands to more than {MAX_EXPANDED_NODES:,} values through its "
                            f"anchors and aliases ('&name' ... '*name'); a spec has a few hundred. "
                            f"Refusing to read it", source=source, line=node.start_mark.line + 1)
        return total

    expanded(root)


def _check_repeated_keys(root: yaml.Node, source: str) -> None:
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                    continue
                if (key.tag, key.value) in first:
                    line0, line1 = first[key.tag, key.value].start_mark.line + 1, key.start_mark.line + 1
                    raise SpecError(f"key '{key.value}' appears twice in one mapping (lines {line0} and "
                                    f"{line1}); YAML would silently keep only the last. Remove or "
                                    f"rename one of them", source=source, line=line1)
                first[key.tag, key.value] = key
        stack.extend(_children(node))
