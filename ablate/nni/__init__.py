"""NNI experiments in ablate: convert a config (v2 or v1) into a spec, or run it directly.

    ablate import-nni config.yml -o spec.yaml     # write the spec, print every mapping
    ablate run config.yml                         # convert on the fly, print the same, run

The trial script runs unmodified: its `import nni` finds the shim in ablate/nni/shim, which
ablate puts on the PYTHONPATH of that trial's process only (`trial: {api: nni}`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ablate.errors import AblateError, SpecError
from ablate.config.spec_yaml import MAX_SPEC_BYTES
from ablate.nni.convert import Conversion, convert_config, looks_like_nni, parse_duration

SHIM_DIR = Path(__file__).resolve().parent / "shim"
"""The folder holding the `nni` package a trial with `api: nni` imports (never ablate's own path)."""


def read_nni(path: str | Path) -> Conversion | None:
    """The conversion of `path` when it is an NNI config, else None (an ablate spec, or no file)."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in (".yml", ".yaml") or not p.is_file() or p.stat().st_size > MAX_SPEC_BYTES:
        return None   # load_spec says what is wrong
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None   # load_spec reports it, with the line
    return convert_config(p) if looks_like_nni(raw) else None


def load_spec_or_nni(path: str | Path, *, check_files: bool = True):
    """(Spec, notes): an ablate spec as `load_spec` loads it (no notes), or an NNI config converted
    (notes: every mapping made and everything not carried over, to print)."""
    from ablate.design.spec import load_spec, spec_from_dict

    conversion = read_nni(path)
    if conversion is None:
        return load_spec(path, check_files=check_files), []
    spec = spec_from_dict(conversion.spec, source=str(path), check_files=check_files)
    return spec, conversion.notes


def check_converted(conversion: Conversion) -> None:
    """Validate a converted spec."""
    from ablate.design.spec import spec_from_dict

    raw = dict(conversion.spec)
    try:
        spec_from_dict(raw, source=f"<converted from {conversion.source}>", check_files=False)
    except SpecError as exc:   # a bug of the converter, not of the user's file: say so
        raise AblateError(f"the converted spec does not validate (please report this): {exc}") from None


def spec_yaml(conversion: Conversion, out: str | Path) -> str:
    """The spec as YAML text with a header naming the NNI config, the command and the notes."""
    header = [f"# Converted by `ablate import-nni {conversion.source}` from that NNI experiment.",
              f"# Run it: ablate run {out}    (trial.cwd is relative to where ablate runs)",
              "#", "# What was mapped, approximated or left out:"]
    header += [f"#   {line}" for line in conversion.notes]
    body = yaml.safe_dump(conversion.spec, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n\n" + body


__all__ = ["Conversion", "SHIM_DIR", "convert_config", "load_spec_or_nni", "looks_like_nni", "parse_duration",
           "read_nni", "spec_yaml", "check_converted"]
