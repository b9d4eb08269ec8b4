"""Writing a report's files into their folder, and nothing else.

- The folder and the files are checked before anything is written: a folder that is a file, or a
  symbolic link among the folder (as given, below the working directory) and the files ablate
  would write, is refused (ReportError: exit 2). A repository ships `reports/` in git, so a
  clone could plant `reports/x/lift.md -> ../../victim.txt`; ablate never writes through it.
- Each file is written to a temporary name in the folder, then renamed over its own name
  (`os.replace`): a link planted after the check is replaced, never followed, and a reader never
  sees half a file.
- `.ablate-report.json` lists what the last write wrote, with each file's SHA-256. A later write
  removes the files it no longer writes (e.g. `effects.csv` after a design stopped being
  factorial) only while their content is still what ablate wrote: a user's own file, or one
  they edited, stays, whatever the manifest says.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ablate.errors import ReportError

MANIFEST = ".ablate-report.json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _links_in(out: Path) -> list[Path]:
    """The symbolic links among `out` and, for a relative path, its folders below the working
    directory (an absolute path's own folders are the user's system: /tmp is a link on macOS)."""
    if out.is_absolute():
        return [out] if out.is_symlink() else []
    found, here = [], Path()
    for part in out.parts:
        here = here / part
        if here.is_symlink():
            found.append(here)
    return found


class ReportFolder:
    """One write of report files into `out` (`what` names the option in messages: --out, -o);
    with `create` False, only the checks (before a run, so a bad folder fails before the work)."""

    def __init__(self, out: str | Path, names, *, what: str = "--out", create: bool = True) -> None:
        self.out = Path(out)
        self.written: dict[str, str] = {}
        existing = next((a for a in (self.out, *self.out.parents) if a.exists()), None)
        if existing is not None and not existing.is_dir():
            where = "" if existing == self.out else f" ({existing} is)"
            raise ReportError(f"{what} {out} is a file, not a folder{where}; give a folder for the report files "
                              f"(it is created when missing)")
        links = _links_in(self.out) + [self.out / n for n in (*names, MANIFEST) if (self.out / n).is_symlink()]
        if links:
            shown = ", ".join(f"{p} -> {os.readlink(p)}" for p in links)
            raise ReportError(f"{what} {out}: {shown} is a symbolic link; ablate writes report files only as "
                              f"plain files in a plain folder, never through a link (it could point anywhere). "
                              f"Remove the link, or give another {what}; nothing was written")
        if not create:
            return            # checked only (before a run), created when written
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"cannot create the report folder {what} {out}: {exc.strerror}") from None

    def path(self, name: str) -> Path:
        return self.out / name

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.out / name
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_UMASK)        # mkstemp makes 0600; a report is as any file
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.written[name] = _digest(data)
        return target

    def adopt(self, name: str) -> Path:
        """Record a file another library wrote at `path(name)` (pandas, plotly) in the manifest."""
        target = self.out / name
        self.written[name] = _digest(target.read_bytes())
        return target

    def finish(self) -> list[Path]:
        """Remove what an earlier write listed and this one did not rewrite (while unchanged), then
        record this write. Returns the removed paths."""
        manifest = self.out / MANIFEST
        try:
            earlier = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError, AttributeError):
            earlier = {}      # no manifest (the first write) or an unreadable one: remove nothing
        if not isinstance(earlier, dict):
            earlier = {}      # a manifest of an older ablate: names without content hashes
        removed = []
        for name, digest in earlier.items():
            # names only, no paths: a tampered manifest cannot reach outside the folder
            if not isinstance(name, str) or name != Path(name).name or name in self.written or name == MANIFEST:
                continue
            stale = self.out / name
            if stale.is_symlink() or not stale.is_file():
                continue
            if _digest(stale.read_bytes()) != digest:
                continue      # not what ablate wrote (edited, or never ablate's): the user's file
            stale.unlink()
            removed.append(stale)
        self.write_text(MANIFEST, json.dumps({"written_by": "ablate", "files": dict(sorted(self.written.items()))},
                                             indent=1))
        return removed


def _read_umask() -> int:
    mask = os.umask(0o022)    # the only way to read it is to set it: once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()
