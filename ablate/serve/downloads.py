"""Downloads: the report files `ablate report` writes, of what the store holds now.

The report writers themselves (`write_report`, `write_search_report`, `write_compare`) write into
a temporary folder; the file (or a zip of the files, when a format writes several) is returned
as bytes and the folder removed. Nothing is written next to the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import io
import tempfile
import zipfile
from pathlib import Path

from ablate.errors import ReportError

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

DOWNLOAD_FORMATS = ("md", "csv", "html", "latex", "json")
MEDIA = {".md": "text/markdown; charset=utf-8", ".csv": "text/csv; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".tex": "application/x-tex; charset=utf-8",
         ".json": "application/json", ".zip": "application/zip"}


def _check(fmt: str) -> None:
    if fmt not in DOWNLOAD_FORMATS:
        raise ReportError(f"unknown download format '{fmt}'; allowed: {', '.join(DOWNLOAD_FORMATS)}")


def _pack(paths: list[Path], stem: str) -> tuple[str, bytes]:
    if len(paths) == 1:
        return paths[0].name, paths[0].read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in paths:
            z.writestr(path.name, path.read_bytes())
    return f"{stem}.zip", buf.getvalue()


def report_download(store: Store, name: str, fmt: str) -> tuple[str, bytes]:
    """(file name, bytes) of experiment `name`'s report in `fmt`."""
    from ablate.report import build_report, write_report
    from ablate.report.frames import load_experiment

    _check(fmt)
    p = load_experiment(store, name)
    with tempfile.TemporaryDirectory(prefix="ablate-serve-") as tmp:
        if p.spec.search is not None:
            from ablate.report.search import write_search_report
            from ablate.serve.search_view import search_report

            report, notes = search_report(store, p)
            if report is None:
                raise ReportError(f"no search report of '{name}' yet: " + "; ".join(notes))
            paths = write_search_report(report, Path(tmp), (fmt,))
        else:
            paths = write_report(build_report(store, name), Path(tmp), (fmt,))
        return _pack(paths, f"{name}-{fmt}")


def compare_download(store: Store, names: list[str], fmt: str) -> tuple[str, bytes]:
    from ablate.report import build_report
    from ablate.report.compare import write_compare

    _check(fmt)
    reports = [build_report(store, n) for n in names]
    with tempfile.TemporaryDirectory(prefix="ablate-serve-") as tmp:
        paths = write_compare(reports, Path(tmp), (fmt,))
        return _pack(paths, "_vs_".join(names) + f"-{fmt}")
