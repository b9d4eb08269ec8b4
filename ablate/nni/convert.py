"""An NNI experiment config (v2 or v1 YAML, told apart by their keys) -> an ablate spec dict.

The spec runs the experiment's own trial command as a command trial with `api: nni` (its
`import nni` resolves to ablate's shim, see ablate/nni/shim) and searches NNI's space with
Optuna (`search:`). Every mapping made and everything not carried over comes back as notes
to print. Formats: NNI docs/source/reference/experiment_config.rst (v2) and
docs/en_US/Tutorial/ExperimentConfig.md of NNI 1.x (v1).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.errors import SpecError
from ablate.nni.space import convert_space
from ablate.nni.tuners import check_tuner_spec, pruner_for, sampler_for
from ablate.config.spec_errors import dotted_path, key_lines, line_for
from ablate.config.spec_yaml import read_yaml

V2_KEYS = {"searchSpace", "searchSpaceFile", "trialCommand", "trialCodeDirectory", "trialGpuNumber",
           "maxTrialNumber", "maxExperimentDuration", "maxTrialDuration", "trainingService"}
V1_KEYS = {"authorName", "searchSpacePath", "maxTrialNum", "maxExecDuration", "trainingServicePlatform",
           "multiPhase", "multiThread"}
VALIDATION_TOP_K = 3
# NNI runs each configuration once; then (ablate.design.stages) the finalists run on 3 seeds that
# choose the winner, and the winner, runner-up and any hand-picked values on 3 others it is reported on
VALIDATION_SEEDS = 1 + 3 + 3
DEFAULT_TRIALS = 100    # NNI without maxTrialNumber runs until stopped; a search needs a budget
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# keys that only steer NNI's own machinery (web UI, logs, manager): nothing to carry
V2_ALL = V2_KEYS | {"experimentName", "experimentType", "trialConcurrency", "nniManagerIp", "useAnnotation", "debug",
                   "logLevel", "experimentWorkingDirectory", "tunerGpuIndices", "tuner", "assessor", "advisor",
                   "sharedStorage"}
V1_ALL = V1_KEYS | {"experimentName", "trialConcurrency", "versionCheck", "debug", "nniManagerIp", "logDir", "logLevel",
                   "logCollection", "tuner", "assessor", "advisor", "trial", "machineList", "useAnnotation"}
_SERVICE_FIELDS = ("trialCommand", "trialCodeDirectory", "trialGpuNumber")
_NNI_ONLY = {"experimentName", "authorName", "logDir", "logLevel", "experimentWorkingDirectory", "nniManagerIp",
             "debug", "tunerGpuIndices", "tunerGpuNum", "useAnnotation", "multiPhase", "multiThread",
             "logCollection", "versionCheck", "experimentType", "sharedStorage"}


@dataclass
class Conversion:
    """A converted experiment: the spec (plain data, ready for YAML) and the lines to print."""

    spec: dict
    notes: list[str] = field(default_factory=list)
    source: str = ""


def looks_like_nni(raw: Any) -> bool:
    """True for an NNI experiment config (either format), False for an ablate spec."""
    if not isinstance(raw, dict):
        return False
    if V2_KEYS & raw.keys() or V1_KEYS & raw.keys():
        return True
    trial = raw.get("trial")
    return isinstance(trial, dict) and "codeDir" in trial and "design" not in raw


def parse_duration(value: Any) -> float:
    """NNI's duration ("10s", "30m", "1h", "2d", or seconds as a number) -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _DURATION.match(value.lower()) if isinstance(value, str) else None
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"a duration is a positive number and a unit s, m, h or d (e.g. '30m', '1h'), got {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _count(value: Any, what: str, path: tuple, fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(path, f"{what} must be a whole number >= 1, got {value!r}")
    return value


def _load_space_file(path: Path, config_fail, field_path: tuple) -> tuple[Any, Any]:
    """(space, fail for errors inside that file) from a JSON or YAML search-space file."""
    if not path.is_file():
        raise config_fail(field_path, f"the search space file '{path}' does not exist (relative paths are read from "
                                      f"the config file's folder)")
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise config_fail(field_path, f"cannot read the search space file '{path}': {exc}") from None
    if path.suffix.lower() == ".json":
        try:   # json, not YAML: PyYAML would read 1e-3 as text
            space = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"bad JSON: {exc.msg}", source=source, line=exc.lineno) from None
        lines = key_lines(text)
    else:
        space, lines = read_yaml(text, source=source)

    def fail(p: tuple, message: str) -> SpecError:
        return SpecError(message, source=source, path=dotted_path(p) or None, line=line_for(lines, p))

    return space, fail


def _check_keys(raw: dict, fmt: str, fail) -> None:
    """NNI refuses keys its schema lacks; so does ablate, with the nearest known key (a typo such as
    'maxTrialNumbr' must not silently drop the budget)."""
    known = V2_ALL if fmt == "v2" else V1_ALL
    for k in raw:
        if k in known or (fmt == "v1" and str(k).endswith("Config")):   # v1: one *Config section per platform
            continue
        near = difflib.get_close_matches(str(k), sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise fail((k,), f"unknown key '{k}' in an NNI {fmt} config{hint}; NNI refuses it too. Known keys: "
                         f"{', '.join(sorted(known))}")
    if raw.get("experimentType", "hpo") != "hpo":
        raise fail(("experimentType",), f"only hyper-parameter experiments (experimentType: hpo) convert; got "
                                        f"{raw['experimentType']!r} (neural architecture search is NNI-specific)")


def _field(key: str, raw: dict, service: dict, take) -> tuple[Any, tuple]:
    """A training-service field of a v2 config: at the top level, else inside trainingService."""
    if key in raw or key not in service:
        return take(key), (key,)
    return service[key], ("trainingService", key)


def _spec_name(raw: dict, config: Path) -> str:
    name = raw.get("experimentName") or config.stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_.-") or "nni"
    return name if name[0].isalnum() else f"nni_{name}"


def _platform_refusal(platform: Any, key: str) -> str:
    """Why a remote NNI training service is refused, and how to run the trials on many machines."""
    return (f"the NNI training service {platform!r} is not supported: ablate starts NNI trials itself, as command "
            f"trials, here or on a Ray cluster. Set {key} to local (or leave it out) and run the config with "
            f"`ablate run CONFIG --runner ray --address HOST:PORT` (a Ray head started with `ray start --head` on "
            f"your machines; trialGpuNumber becomes resources.gpu, the GPUs Ray gives each trial); allowed: local")


def _gpus(value: Any, path: tuple, fail, notes: list[str]) -> dict | None:
    """trialGpuNumber (v2) / trial.gpuNum (v1) -> resources.gpu: the GPUs Ray gives each trial."""
    name = dotted_path(path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value > 1 and value != int(value)):
        raise fail(path, f"{name} must be a number of GPUs: a fraction between 0 and 1 (trials share a GPU) or a "
                         f"whole number, got {value!r}")
    if value == 0:
        notes.append(f"{name} 0 -> no GPU asked for (resources.gpu 0, the default)")
        return None
    notes.append(f"{name} {value:g} -> resources.gpu {value:g}: the GPUs Ray gives each trial under --runner ray; "
                 f"the local runner runs trials in this machine's environment, where each sees every GPU")
    return {"gpu": value}


def convert_config(path: str | Path, *, relative_to: str | Path | None = None) -> Conversion:
    """Convert the NNI config at `path`. `trial.cwd` is the trial code folder (resolved from the
    config's folder, as NNI does) written relative to `relative_to` (default: the current folder,
    where `ablate run` resolves it) when it lies below it, else absolute."""
    config = Path(path)
    source = str(config)
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the NNI config: {exc}", source=source) from None
    raw, lines = read_yaml(text, source=source)
    return convert_dict(raw, lines=lines, source=source, folder=config.resolve().parent,
                        relative_to=Path(relative_to or os.getcwd()))


@dataclass
class _Reading:
    """One NNI config being read: its keys, format, the keys used so far and the notes."""

    raw: dict
    fmt: str
    fail: Callable[[tuple, str], SpecError]
    notes: list[str]
    used: set[str] = field(default_factory=set)

    def take(self, key: str) -> Any:
        self.used.add(key)
        return self.raw.get(key)


def convert_dict(raw: Any, *, lines: dict | None = None, source: str = "<nni>", folder: Path | None = None,
                 relative_to: Path | None = None) -> Conversion:
    lines = lines or {}
    folder = folder or Path.cwd()

    def fail(p: tuple, message: str) -> SpecError:
        return SpecError(message, source=source, path=dotted_path(p) or None, line=line_for(lines, p))

    if not looks_like_nni(raw):
        raise SpecError("not an NNI experiment config (no trialCommand, searchSpace, searchSpaceFile, "
                        "searchSpacePath, authorName or trial.codeDir)", source=source)
    v2, v1 = V2_KEYS & raw.keys(), V1_KEYS & raw.keys()
    if v2 and v1:
        raise fail((sorted(v1)[0],), f"the config mixes NNI v2 keys ({', '.join(sorted(v2))}) with v1 keys "
                                     f"({', '.join(sorted(v1))}); write it in one format")
    fmt = "v1" if v1 or isinstance(raw.get("trial"), dict) else "v2"
    _check_keys(raw, fmt, fail)
    r = _Reading(raw, fmt, fail, [f"NNI config {source} read as NNI {fmt} format"])
    service = _training_service(r)
    trial_spec, resources = _trial_command(r, service, folder, relative_to)
    params = _search_space(r, folder)
    sampler, pruner, direction = _tuner(r, params)
    search = _budget(r, params, sampler, pruner)
    notes = r.notes
    if raw.get("experimentName"):
        notes.append(f"experimentName {raw['experimentName']!r} -> name {_spec_name(raw, Path(source))!r}")
    for k in raw:   # unknown keys were refused above: what is left is known and has no use here
        if k not in r.used and k != "experimentName":
            why = " (NNI's own machinery)" if k in _NNI_ONLY else ""
            notes.append(f"not carried over: {k} = {raw[k]!r}{why}")
    if pruner is not None and pruner.get("name") == "hyperband" and "max_resource" in pruner:
        trial_spec["env"] = {"ABLATE_NNI_TRIAL_BUDGET": str(pruner["max_resource"])}

    name = _spec_name(raw, Path(source))
    spec = {
        "name": name,
        "description": f"Imported from the NNI experiment {source}",
        "data": {"name": "digits"},
        "trial": trial_spec,
        **({"resources": resources} if resources else {}),
        "retries": {"count": 0},
        "design": {"kind": "explicit", "arms": [{"label": "nni", "tricks": []}]},
        "seeds": VALIDATION_SEEDS,
        "metric": {"name": "default", "mode": direction},
        "search": search,
    }
    notes.append("retries 0 (NNI does not retry a failed trial); data: digits is a placeholder (the script loads "
                 "its own data)")
    return Conversion(spec, notes, source)


def _training_service(r: _Reading) -> Any:
    """Where trials run: only NNI's local training service has an equivalent. Returns v2's
    trainingService (its mapping may hold the trial command's fields)."""
    raw, fail, notes = r.raw, r.fail, r.notes
    service = None
    if r.fmt == "v2":
        service = r.take("trainingService") or {"platform": "local"}
        services = service if isinstance(service, list) else [service]
        for i, s in enumerate(services):
            platform = s.get("platform") if isinstance(s, dict) else s
            p = ("trainingService", *((i,) if isinstance(service, list) else ()), "platform")
            if platform != "local":
                raise fail(p, _platform_refusal(platform, "trainingService.platform"))
            for k, v in (s.items() if isinstance(s, dict) else ()):
                if k not in ("platform", *_SERVICE_FIELDS):
                    notes.append(f"not carried over: trainingService.{k} = {v!r} (local trials run in this "
                                 f"machine's environment)")
    else:
        platform = r.take("trainingServicePlatform") or "local"
        if platform != "local":
            raise fail(("trainingServicePlatform",), _platform_refusal(platform, "trainingServicePlatform"))
    if raw.get("useAnnotation"):
        raise fail(("useAnnotation",), "NNI annotations (useAnnotation: true) need NNI's code rewriting; call the "
                                       "nni API (nni.get_next_parameter, nni.report_final_result) in the script")
    notes.append(f"training service {platform} -> ablate's local runner; `ablate run ... --runner ray [--address "
                 f"HOST:PORT]` runs the same trials on a Ray cluster")
    return service


def _trial_command(r: _Reading, service: Any, folder: Path, relative_to: Path | None) -> tuple[dict, dict | None]:
    """The trial section (a shell command with api nni) and the resources of its GPUs."""
    raw, fail, notes = r.raw, r.fail, r.notes
    if r.fmt == "v2":
        # NNI lets these three sit in the (one) training service's mapping instead of the top level
        inner = service if isinstance(service, dict) else {}
        command, cmd_path = _field("trialCommand", raw, inner, r.take)
        code_dir, dir_path = _field("trialCodeDirectory", raw, inner, r.take)
        gpus, gpu_path = _field("trialGpuNumber", raw, inner, r.take)
        code_dir = code_dir or "."
    else:
        trial = r.take("trial") or {}
        if not isinstance(trial, dict):
            raise fail(("trial",), f"'trial' must be a mapping {{command, codeDir, gpuNum}}, got {trial!r}")
        command, code_dir, gpus = trial.get("command"), trial.get("codeDir") or ".", trial.get("gpuNum")
        cmd_path, dir_path, gpu_path = ("trial", "command"), ("trial", "codeDir"), ("trial", "gpuNum")
        for k in trial.keys() - {"command", "codeDir", "gpuNum"}:
            notes.append(f"not carried over: trial.{k} = {trial[k]!r}")
    if not isinstance(command, str) or not command.strip():
        raise fail(cmd_path, f"the trial command is missing: give {dotted_path(cmd_path)}, the shell command NNI runs "
                             f"for each trial (e.g. 'python3 trial.py'); got {command!r}")
    code = (folder / str(code_dir)).resolve()
    if not code.is_dir():
        raise fail(dir_path, f"the trial code folder '{code_dir}' does not exist (resolved from the config's folder "
                             f"to {code})")
    base = (relative_to or Path.cwd()).resolve()
    cwd = str(code.relative_to(base)) if code.is_relative_to(base) else str(code)
    trial_spec: dict = {"command": command.strip(), "cwd": cwd, "shell": True, "api": "nni"}
    notes.append(f"trial command '{command.strip()}' -> a command trial (shell) run in {cwd}, api nni: its "
                 f"'import nni' resolves to ablate's shim on that trial's path only")
    resources = _gpus(gpus, gpu_path, fail, notes)
    if "maxTrialDuration" in raw:
        try:
            trial_spec["timeout_s"] = parse_duration(r.take("maxTrialDuration"))
        except ValueError as exc:
            raise fail(("maxTrialDuration",), str(exc)) from None
        notes.append(f"maxTrialDuration -> trial.timeout_s {trial_spec['timeout_s']:g}")
    return trial_spec, resources


def _search_space(r: _Reading, folder: Path) -> dict:
    """search.params, from the inline space or its JSON file."""
    raw, fail = r.raw, r.fail
    space_key = next((k for k in ("searchSpace", "searchSpaceFile", "searchSpacePath") if k in raw), None)
    if space_key is None:
        raise fail(("searchSpaceFile" if r.fmt == "v2" else "searchSpacePath",),
                   "no search space: give searchSpaceFile (a JSON file) or searchSpace (inline)"
                   if r.fmt == "v2" else "no search space: give searchSpacePath (a JSON file)")
    if space_key == "searchSpace":
        params, space_notes = convert_space(r.take("searchSpace"), ("searchSpace",), fail)
    else:
        file = (folder / str(r.take(space_key))).resolve()
        space, space_fail = _load_space_file(file, fail, (space_key,))
        params, space_notes = convert_space(space, (), space_fail)
        r.notes.append(f"{space_key} {raw[space_key]} -> search.params")
    r.notes.extend(space_notes)
    return params


def _tuner(r: _Reading, params: dict) -> tuple[Any, dict | None, str]:
    """(sampler, pruner, metric direction) from the tuner or advisor and the assessor."""
    raw, fail, notes, fmt = r.raw, r.fail, r.notes, r.fmt
    key = "builtinTunerName" if fmt == "v1" else "name"
    tuner_key = "advisor" if "advisor" in raw else "tuner"
    if "advisor" in raw and "tuner" in raw:
        raise fail(("advisor",), "give either an advisor or a tuner, not both (as NNI requires)")
    class_args: dict = {}
    if tuner_key in raw:
        keys = (("builtinAdvisorName",) if tuner_key == "advisor" else (key,)) if fmt == "v1" else ("name",)
        name, class_args = check_tuner_spec(r.take(tuner_key), tuner_key, (tuner_key,), fail, keys)
        sampler, pruner, tnotes = sampler_for(name, class_args, params, (tuner_key, keys[0]), fail)
    else:
        sampler, pruner, tnotes = "tpe", None, ["no tuner given: sampler tpe (NNI requires a tuner; TPE is the "
                                                 "usual choice)"]
    notes += tnotes
    if "assessor" in raw:
        if pruner is not None:
            raise fail(("assessor",), "an advisor (Hyperband, BOHB) already stops trials early; remove the assessor")
        akey = "builtinAssessorName" if fmt == "v1" else "name"
        aname, aargs = check_tuner_spec(r.take("assessor"), "assessor", ("assessor",), fail, (akey,))
        pruner, anotes = pruner_for(aname, aargs, ("assessor", akey), fail)
        notes += anotes
    mode = class_args.get("optimize_mode", "maximize")
    if mode not in ("maximize", "minimize"):
        raise fail((tuner_key, "classArgs", "optimize_mode"), f"optimize_mode must be maximize or minimize, "
                                                             f"got {mode!r}")
    direction = "max" if mode == "maximize" else "min"
    notes.append(f"optimize_mode {mode}" + ("" if "optimize_mode" in class_args else " (NNI's default)")
                 + f" -> metric {{name: default, mode: {direction}}} (NNI's metric is named 'default')")
    return sampler, pruner, direction


def _budget(r: _Reading, params: dict, sampler: Any, pruner: dict | None) -> dict:
    """The search section: the budget, the concurrency and the validation round."""
    raw, fail, notes, fmt = r.raw, r.fail, r.notes, r.fmt
    search: dict = {"params": params, "sampler": sampler, "pruner": pruner or "none"}
    n_key = "maxTrialNum" if fmt == "v1" else "maxTrialNumber"
    t_key = "maxExecDuration" if fmt == "v1" else "maxExperimentDuration"
    if n_key in raw:
        search["n_trials"] = _count(r.take(n_key), n_key, (n_key,), fail)
        notes.append(f"{n_key} {search['n_trials']} -> search.n_trials")
    if t_key in raw:
        try:
            search["timeout_s"] = parse_duration(r.take(t_key))
        except ValueError as exc:
            raise fail((t_key,), str(exc)) from None
        notes.append(f"{t_key} {raw[t_key]} -> search.timeout_s {search['timeout_s']:g}")
    if "n_trials" not in search and "timeout_s" not in search:
        search["n_trials"] = DEFAULT_TRIALS
        notes.append(f"no {n_key} or {t_key} (NNI would run until stopped): search.n_trials {DEFAULT_TRIALS}")
    if "trialConcurrency" in raw:
        search["jobs"] = _count(r.take("trialConcurrency"), "trialConcurrency", ("trialConcurrency",), fail)
        notes.append(f"trialConcurrency {search['jobs']} -> search.jobs (--jobs overrides)")
    search["validate"] = {"top_k": VALIDATION_TOP_K}
    notes.append(f"seeds: NNI runs each configuration once, so does the search (seed 0); then the top "
                 f"{VALIDATION_TOP_K} run on seeds 1-3, which choose the winner, and the winner and runner-up on seeds "
                 f"4-6, which the report is measured on (search.validate), so the winner is not a lucky run. An NNI "
                 f"script does not see the seed (ablate.client.params()['seed'] has it): its re-runs vary as much "
                 f"as the script does by itself")
    return search
