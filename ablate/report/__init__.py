"""Reports: tidy frames from the store (`frames`), then renderings (`render`, `html`, `compare`).

This package's own namespace stays light (no pandas, scipy or plotly at import) so the command
line starts fast; `build_report`, `write_report` and `Report` load `ablate.report.build` on first use.
"""

from __future__ import annotations

FORMATS = ("md", "csv", "json", "html", "latex")
# optional lift-table columns: name -> (header, frame column, scale, digits)
EXTRA_COLUMNS = {
    "params": ("Params (M)", "params", 1e-6, 3),
    "gflops": ("GFLOPs/image", "gflops", 1.0, 4),
    "memory": ("Peak GPU mem (MiB)", "peak_mem_mb", 1.0, 0),
    "time": ("Time/trial (s)", "time_s", 1.0, 1),
    "top5": ("Test top-5 (%)", "test_top5", 1.0, 2),
}
DEFAULT_COLUMNS = ("params", "time")

_LAZY = {"Report", "build_report", "write_report"}


def __getattr__(name: str):
    if name in _LAZY:
        from ablate.report import build

        return getattr(build, name)
    if name == "load_experiment":
        from ablate.report.frames import load_experiment

        return load_experiment
    raise AttributeError(f"module 'ablate.report' has no attribute '{name}'")


__all__ = ["FORMATS", "EXTRA_COLUMNS", "DEFAULT_COLUMNS", "Report", "build_report", "write_report",
           "load_experiment"]
