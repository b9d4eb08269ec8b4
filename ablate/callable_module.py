"""`ablate.plan(spec)` and `ablate.run(spec)` are public API functions, and `ablate.plan` and
`ablate.run` are also modules of the package: once a module is imported, Python binds its name
on the package, where the API function's name would be. `make_callable` lets such a module be
called as the API function of the same name (`ablate.api.plan`, `ablate.api.run`), so both
`ablate.run("quickstart")` and `ablate.run.engine` work whatever was imported first."""

from __future__ import annotations

import importlib
import sys
import types


class CallableModule(types.ModuleType):
    """A module whose call is `ablate.api.<its last name>`."""

    def __call__(self, *args, **kwargs):
        api = importlib.import_module("ablate.api")
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Make the module `module_name` (ablate.plan, ablate.run) callable as the API function of its name."""
    sys.modules[module_name].__class__ = CallableModule
