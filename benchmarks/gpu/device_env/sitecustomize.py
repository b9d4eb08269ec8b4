"""check.sh --cpu-dry-run only: makes the packages that the GPU machine lacks, and that the check
does not carry as wheels, fail to import here as they would there (names in ABLATE_CHECK_ABSENT,
comma-separated), so the dry run catches a step that would need one. Python imports this module
at start-up because check.sh puts its folder first on PYTHONPATH for the dry run."""

import os
import sys
from importlib.abc import MetaPathFinder

ABSENT = frozenset(filter(None, os.environ.get("ABLATE_CHECK_ABSENT", "").split(",")))


class AbsentOnTheGpuMachine(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named '{name}' (the GPU machine has none; "
                                      f"check.sh --cpu-dry-run hides it here too)", name=name)
        return None


if ABSENT:
    sys.meta_path.insert(0, AbsentOnTheGpuMachine())
