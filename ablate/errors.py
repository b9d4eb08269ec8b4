"""Exceptions. One root (`AblateError`); the CLI turns any of them into exit code 2 (bad
input), except `MetricNotReported` (3: a trial ran and failed).

Messages follow one rule: say what was wrong, where, what is allowed and what was given.
"""

from __future__ import annotations


class AblateError(Exception):
    """Root of every error a user can cause (bad spec, missing data, unknown experiment...)."""


class SpecError(AblateError):
    """A spec file that cannot be loaded: missing, bad YAML, or a field that fails validation.

    ``source`` is the file (or ``<string>``), ``path`` the dotted field path inside it
    (``recipe.epochs``, ``tricks.mixup.alpha``), ``line`` the 1-based YAML line when known.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.path = path
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.source:
            where.append(self.source if self.line is None else f"{self.source}:{self.line}")
        if self.path:
            where.append(f"field '{self.path}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class MetricNotReported(SpecError):
    """A trial ran to its end without reporting the spec's metric (a command printing another
    name, or a value that is not a number). The trial is recorded failed (kind `no_metric`) and
    the run stops after the first, since every other trial would do the same; the CLI exits 3
    (a trial failed), not 2: the work was done and is kept, `--retry-failed` runs it again."""


class DesignError(AblateError):
    """A design that cannot be built (too many factors, impossible resolution, no tricks...)."""


class DataError(AblateError):
    """A data set that cannot be loaded (files absent, empty ImageFolder, bad split sizes)."""


class StoreError(AblateError):
    """A store that cannot be opened or is not an ablate database."""


class ReportError(AblateError):
    """A report that cannot be built (unknown experiment, no complete trials, no baseline)."""


class CompileError(AblateError):
    """`recipe: {compile: true}` and torch.compile could not compile the trial's model."""


class TrialDiverged(AblateError):
    """Raised inside a trial when the training loss becomes NaN or infinite."""


class TrialPruned(AblateError):
    """Raised by a report callback to stop a trial early (Optuna pruner, Ray scheduler)."""


__all__ = [
    "AblateError", "SpecError", "MetricNotReported", "DesignError", "DataError", "StoreError", "ReportError",
    "CompileError", "TrialDiverged", "TrialPruned",
]
