"""Tracker export: an experiment's trials as MLflow runs (`export_mlflow`) or TensorBoard run
folders (`export_tensorboard`), read from the store through its frames and the report.

Plain functions, for the command line (`ablate export ...`) and notebooks alike. MLflow and
TensorBoard are extras (`pip install 'ablate[mlflow]'`, `'ablate[tensorboard]'`), imported only
when an export runs; this namespace loads its modules on first use.
"""

from __future__ import annotations

from ablate.export.trials import ExperimentData, ExportError, TrialRecord, collect

_LAZY = {"export_mlflow": "ablate.export.to_mlflow", "MlflowExport": "ablate.export.to_mlflow",
         "export_tensorboard": "ablate.export.to_tensorboard", "TensorBoardExport": "ablate.export.to_tensorboard"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ablate.export' has no attribute '{name}'")


__all__ = ["ExperimentData", "ExportError", "TrialRecord", "collect", "export_mlflow", "MlflowExport",
           "export_tensorboard", "TensorBoardExport"]
