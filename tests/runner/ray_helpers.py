"""An in-process Ray for one test module (tests/runner/test_ray.py, tests/runner/test_ray_retries.py)."""

from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def local_ray_for(module_name: str, *, object_store_mb: int = 200):
    """Ray started in this process with 2 CPUs and a small object store, shut down afterwards.
    Workers cannot import a test module by name, so `module_name`'s functions travel by value."""
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[module_name])
    ray.init(num_cpus=2, object_store_memory=object_store_mb * 2**20, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
