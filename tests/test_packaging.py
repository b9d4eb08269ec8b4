"""The wheel ships every subpackage: pyproject's explicit package list against the source tree
(a package missing from the list imports fine from an editable install and breaks a plain one)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_in_pyproject_packages():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ablate").rglob("__init__.py")}
    found = {name for name in found if ".shim" not in name}   # the nni shim ships as package data
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed - found - {"ablate.search_spaces"} == set(), "listed but not in the source tree"
