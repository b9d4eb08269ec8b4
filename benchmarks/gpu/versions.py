"""The GPU check's record of the machine: Python, torch, CUDA, cuDNN, the GPU, the versions of
the packages ablate uses, and that ablate's in-process, fused and report paths import (with
pydantic and SQLAlchemy from the wheelhouse). One `key: value` line each, read by summarize.py."""

from __future__ import annotations

import importlib.metadata as md
import sys

import torch

PACKAGES = ("torchvision", "triton", "numpy", "scipy", "pandas", "pydantic", "pydantic-core", "SQLAlchemy",
            "typing-extensions", "PyYAML", "scikit-learn", "safetensors", "timm", "statsmodels", "pytest", "packaging")


def main() -> int:
    print(f"python: {sys.version.split()[0]} ({sys.executable})")
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    print(f"torch: {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f"gpu: {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}, "
              f"{p.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported()}, "
              f"{torch.cuda.device_count()} device(s)")
    else:
        print("gpu: none visible to torch")
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            versions.append(f"{name} absent")
    print("versions: " + ", ".join(versions))
    import pydantic
    import sqlalchemy

    import ablate
    import ablate.cli
    import ablate.report.build
    import ablate.runner.experiment
    import ablate.runner.fused  # noqa: F401

    print(f"ablate imports: ok (ablate from {ablate.__file__}; pydantic {pydantic.VERSION} from "
          f"{pydantic.__file__}; SQLAlchemy {sqlalchemy.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
