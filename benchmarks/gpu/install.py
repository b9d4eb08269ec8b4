"""The GPU check's install step: puts the wheelhouse's wheels that this machine lacks into a
private folder (pip --target, no index, no dependencies), then checks that every requirement of
what it installed is met.

    python3 benchmarks/gpu/install.py WHEELHOUSE TARGET [--plan-only]

A wheel is installed when its distribution is absent here, or present at a version that some
installed wheel's requirement refuses (typing-extensions: pydantic 2.14 needs >= 4.16, and the
GPU machine's version is not known in advance); otherwise the machine's own copy is kept.
Prints `installed:`, `kept:` and, if any requirement stays unmet, `unmet:` lines (exit 1).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version


def wheel_requirements(path: Path) -> list[Requirement]:
    """The wheel's Requires-Dist entries that apply here (markers evaluated, extras left out)."""
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def plan_install(wheels: dict[str, tuple[Version, list[Requirement]]], here: dict[str, Version]
                 ) -> tuple[list[str], list[str]]:
    """(names to install, unmet requirement descriptions). `wheels`: name -> (version, its
    requirements); `here`: the versions installed on this machine. Installs what is absent,
    then, until nothing changes, whatever a to-be-installed wheel needs a newer copy of."""
    chosen = {n for n in wheels if n not in here}
    grew = True
    while grew:
        grew = False
        for n in sorted(chosen):
            for r in wheels[n][1]:
                dep = canonicalize_name(r.name)
                if (dep in here and dep in wheels and dep not in chosen
                        and not r.specifier.contains(here[dep], prereleases=True)
                        and r.specifier.contains(wheels[dep][0], prereleases=True)):
                    chosen.add(dep)
                    grew = True
    have = {**here, **{n: wheels[n][0] for n in chosen}}
    unmet = []
    for n in sorted(chosen):
        for r in wheels[n][1]:
            dep = canonicalize_name(r.name)
            if dep not in have:
                unmet.append(f"{n} needs {r}, which is neither on this machine nor in the wheelhouse")
            elif not r.specifier.contains(have[dep], prereleases=True):
                unmet.append(f"{n} needs {r}; this machine has {here.get(dep, 'none')}, the wheelhouse "
                             f"{wheels[dep][0] if dep in wheels else 'none'}")
    return sorted(chosen), unmet


def installed_here() -> dict[str, Version]:
    here: dict[str, Version] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        try:
            version = Version(dist.version)
        except (InvalidVersion, TypeError):
            continue              # a broken or odd install: as if absent
        if name:
            here.setdefault(canonicalize_name(name), version)
    return here


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheelhouse", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--plan-only", action="store_true", help="say what would be installed; install nothing")
    args = ap.parse_args(argv)
    files = sorted(args.wheelhouse.glob("*.whl")) if args.wheelhouse.is_dir() else []
    if not files:
        print(f"installed: nothing (no wheels in {args.wheelhouse}; benchmarks/gpu/wheels.sh makes them)")
        return 0
    wheels, paths = {}, {}
    for path in files:
        name, version, _, _ = parse_wheel_filename(path.name)
        if name in wheels:
            print(f"unmet: two wheels of {name} in {args.wheelhouse} ({paths[name].name}, {path.name}): keep one")
            return 1
        wheels[name], paths[name] = (version, wheel_requirements(path)), path
    here = installed_here()
    chosen, unmet = plan_install(wheels, here)
    kept = [f"{n} {here[n]}" for n in sorted(wheels) if n not in chosen]
    if chosen and not args.plan_only:
        args.target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                               "--no-cache-dir", "--upgrade", "--disable-pip-version-check", "--target",
                               str(args.target), *(str(paths[n]) for n in chosen)])
        if done.returncode != 0:
            print(f"unmet: pip could not install {', '.join(chosen)} (exit {done.returncode})")
            return 1
    verb = "would install" if args.plan_only else "installed"
    print(f"{verb}: {', '.join(f'{n} {wheels[n][0]}' for n in chosen) or 'nothing'}"
          + (f" into {args.target}" if chosen else ""))
    print(f"kept: {', '.join(kept) or 'nothing'} (this machine's own)")
    for line in unmet:
        print(f"unmet: {line}")
    return 1 if unmet else 0


if __name__ == "__main__":
    raise SystemExit(main())
