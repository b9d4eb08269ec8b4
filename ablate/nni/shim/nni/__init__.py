"""ablate's stand-in for NNI's trial API, so NNI trial scripts run unmodified as ablate trials.

ablate puts this folder's parent on the PYTHONPATH of a command trial with `api: nni` and of
nothing else: `import nni` in that trial finds this module; ablate's own process never imports
it, and a real NNI installed elsewhere is untouched. The parameters come from the trial's
ABLATE_TRIAL file; results go back through ablate's client protocol (JSON lines on stdout):

    report_intermediate_result(x)  ->  {"epoch": n, "default": x}   (n = 1, 2, ... per call; the pruner's step)
    report_final_result(x)         ->  {"default": x}                (final metrics)

A dict result must hold "default" (NNI's rule); its other numeric entries are kept as extra
metrics. When ablate has pruned the trial (as NNI's assessor would), the next intermediate
report ends the script (SystemExit(0)), as NNI ends a trial its assessor stops.

ablate's client (ablate/client.py, standard library only) is loaded by file path, so the trial's
interpreter needs neither ablate nor its dependencies installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

__version__ = "ablate-shim"


def _load_client():
    path = Path(__file__).resolve().parents[3] / "client.py"
    spec = importlib.util.spec_from_file_location("_ablate_nni_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_client = _load_client()
_params: dict | None = None
_reports = 0


def get_next_parameter() -> dict:
    """This trial's parameters, by their NNI names ({} when the script runs outside ablate, as NNI's
    standalone mode gives). With a Hyperband pruner TRIAL_BUDGET is the full budget R."""
    global _params
    values = _client.params().get("values", {})
    params = {(k[len("params."):] if k.startswith("params.") else k): v for k, v in values.items()}
    budget = os.environ.get("ABLATE_NNI_TRIAL_BUDGET")
    if budget and "TRIAL_BUDGET" not in params:
        number = float(budget)
        params["TRIAL_BUDGET"] = int(number) if number.is_integer() else number
    _params = params
    return dict(params)


def get_next_parameters() -> dict:
    """NNI's alias of get_next_parameter."""
    return get_next_parameter()


def get_current_parameter(tag: str | None = None) -> Any:
    """The parameters get_next_parameter returned (None before it was called, as in NNI), or one of them."""
    if _params is None:
        return None
    return dict(_params) if tag is None else _params[tag]


def _number(value: Any) -> float | None:
    if isinstance(value, (bool, str, bytes)):
        return None
    try:   # numpy and torch scalars too
        return float(value)
    except (TypeError, ValueError):
        return None


def _metrics(metric: Any, what: str) -> dict[str, float]:
    if isinstance(metric, dict):
        if "default" not in metric:
            raise ValueError(f"nni.{what}: a dict result must have a 'default' key (NNI's rule), got {metric!r}")
        out = {}
        for key, value in metric.items():
            number = _number(value)
            if number is None:
                if key == "default":
                    raise TypeError(f"nni.{what}: 'default' must be a number, got {value!r}")
                print(f"ablate: nni shim: {what}: '{key}' = {value!r} is not a number; not recorded",
                      file=sys.stderr)
                continue
            out["nni_epoch" if key == "epoch" else str(key)] = number   # 'epoch' would make it an epoch report
        return out
    number = _number(metric)
    if number is None:
        raise TypeError(f"nni.{what}: the result must be a number or a dict with 'default', got {metric!r}")
    return {"default": number}


def _stop_if_pruned() -> None:
    if _client.should_stop():
        raise SystemExit(0)


def report_intermediate_result(metric: Any) -> None:
    """One intermediate result (an epoch report: the pruner's step is the call count, from 1)."""
    global _reports
    _stop_if_pruned()
    _reports += 1
    _client.report(epoch=_reports, **_metrics(metric, "report_intermediate_result"))


def report_final_result(metric: Any) -> None:
    """The trial's final result."""
    _client.report(**_metrics(metric, "report_final_result"))


def get_trial_id() -> str:
    return _client.params().get("trial_id", "STANDALONE")


def get_experiment_id() -> str:
    return _client.params().get("experiment", "STANDALONE")


def get_sequence_id() -> int:
    """NNI's running number of the trial. ablate gives the search's trial number when it has one,
    else a stable number from the trial id (0 outside ablate, as NNI's standalone mode)."""
    p = _client.params()
    for key in ("number", "sequence_id"):
        if isinstance(p.get(key), int):
            return p[key]
    return int(p["trial_id"][:7], 16) if "trial_id" in p else 0


__all__ = ["get_next_parameter", "get_next_parameters", "get_current_parameter", "report_intermediate_result",
           "report_final_result",
           "get_trial_id", "get_experiment_id", "get_sequence_id"]
