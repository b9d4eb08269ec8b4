"""Runners: take trials and a store, skip what the store holds as done, record everything."""

from ablate.run.common import Progress, SilentProgress, environment, execute
from ablate.run.local import RunSummary, pending, run_local

__all__ = ["Progress", "SilentProgress", "environment", "execute", "RunSummary", "pending", "run_local"]
