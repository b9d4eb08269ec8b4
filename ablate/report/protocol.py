"""The report protocol: a design's report (`ablate.report.build.Report`), a search's
(`ablate.report.search.SearchReport`) and a comparison (`ablate.report.compare.Comparison`) each
say which files a format makes; `write_files` is the one loop that writes them (numbers in all
three: `ablate.report.numbers.fmt_num`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ablate.errors import ReportError

FileMaker = tuple[str, Callable[[], str]]   # a file's name, and what makes its text


class Renderable(Protocol):
    """What a report is: a name, its markdown, and its files per format."""

    FILES: dict[str, tuple[str, ...]]       # format -> every file it may write (checked before writing)

    @property
    def name(self) -> str: ...

    def markdown(self) -> str: ...

    def format_error(self, bad: list[str]) -> str:
        """The message for formats this kind of report does not write."""

    def files(self, fmt: str) -> list[FileMaker]:
        """The files of one format, in the order they are written."""


def write_files(report: Renderable, out_dir: str | Path, formats: Sequence[str]) -> list[Path]:
    """Write the report's files of `formats` into `out_dir` (plain files, never through a link)
    and clear the files of earlier report writes there that this one does not rewrite
    (`ablate.report.files`); returns the written paths. Nothing is written for a format the
    report does not know."""
    from ablate.report.files import ReportFolder

    formats = tuple(formats)
    bad = [f for f in formats if f not in report.FILES]
    if bad:
        raise ReportError(report.format_error(bad))
    if not formats:
        raise ReportError(f"no report format given; allowed: {', '.join(report.FILES)}")
    folder = ReportFolder(out_dir, [n for f in formats for n in report.FILES[f]])
    paths = []
    for fmt in dict.fromkeys(formats):
        for name, make in report.files(fmt):
            paths.append(folder.write_text(name, make()))
    folder.finish()
    return paths
