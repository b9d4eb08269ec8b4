"""MkDocs hook: the Python API page while `ablate/api.py` is not merged yet.

`extra.api_placeholder` in mkdocs.yml says which state the docs are in. While it is true, the
`::: ablate.api` block of docs/api.md becomes a note, and the build fails (a warning under
--strict) once `ablate.api` exists, so the flag is flipped when api.py lands. While it is false,
the block renders with mkdocstrings and a missing `ablate.api` fails the build.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("mkdocs.plugins.ablate_api")
DIRECTIVE = "::: ablate.api"
PLACEHOLDER = ('!!! note "Not merged yet"\n'
               "    `ablate/api.py` is being written on another branch; this section renders its\n"
               "    docstrings (`::: ablate.api`) once it is merged.\n")


def api_exists() -> bool:
    return importlib.util.find_spec("ablate.api") is not None


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if DIRECTIVE not in markdown:
        return markdown
    placeholder = bool(config.extra.get("api_placeholder", False))
    if placeholder and api_exists():
        log.warning("ablate/api.py exists now: set extra.api_placeholder: false in mkdocs.yml "
                    "so that docs/api.md renders it")
    if not placeholder and not api_exists():
        log.warning("docs/api.md documents ablate.api, which does not exist "
                    "(extra.api_placeholder: false in mkdocs.yml)")
    if placeholder:
        return markdown.replace(DIRECTIVE, PLACEHOLDER)
    return markdown
