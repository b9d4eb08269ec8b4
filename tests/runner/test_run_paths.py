"""A trial's relative paths are made absolute on the driver before it leaves for a Ray worker
(whose working folder is Tune's trial folder): one function, `ablate.runner.paths.absolute_trial`."""

from __future__ import annotations

import os
from pathlib import Path

from ablate.data import CifarConfig
from ablate.design.plan import plan
from ablate.config.run import CommandTrial
from ablate.runner.paths import absolute_command, absolute_trial
from ablate.config.sections import TrickSetting
from ablate.tricks.distill import DistillParams
from tests.conftest import tiny_spec


def a_trial_with_every_kind_of_path():
    import dataclasses

    trial = plan(tiny_spec()).trials[0]
    teacher = DistillParams(path="teachers/t.safetensors",
                            model={"name": "cifar_resnet", "depth": 8, "weights": "init/w.pt"})
    return dataclasses.replace(
        trial, data=CifarConfig(name="cifar10", root="data/cifar"),
        model=trial.model.model_copy(update={"weights": "~/w/model.safetensors"}),
        tricks=(TrickSetting(key="kd", use="distill", code="KD", params=teacher),),
        command=CommandTrial(command=["python", "train.py"], cwd="examples"))


def test_every_relative_path_is_resolved_against_the_drivers_folder_and_the_id_is_kept(tmp_path):
    trial = a_trial_with_every_kind_of_path()
    out = absolute_trial(trial, tmp_path)
    assert out.id == trial.id and out.label == trial.label and out.seed == trial.seed
    assert out.data.root == str(tmp_path / "data" / "cifar")
    assert out.model.weights == str(Path.home() / "w" / "model.safetensors")
    kd = out.tricks[0].params
    assert kd.path == str(tmp_path / "teachers" / "t.safetensors")
    assert kd.model.weights == str(tmp_path / "init" / "w.pt")
    assert kd.temperature == trial.tricks[0].params.temperature
    assert out.command.cwd == str(tmp_path / "examples") and out.command.command == ("python", "train.py")
    assert trial.data.root == "data/cifar", "the trial itself (and what the store keeps) is unchanged"


def test_absolute_paths_and_the_weights_cache_stay_as_they_are(tmp_path):
    import dataclasses

    trial = a_trial_with_every_kind_of_path()
    trial = dataclasses.replace(trial, data=CifarConfig(name="cifar10", root="/srv/cifar"),
                                model=trial.model.model_copy(update={"weights": "cache"}))
    out = absolute_trial(trial, tmp_path)
    assert out.data.root == "/srv/cifar" and out.model.weights == "cache"
    assert absolute_trial(out, tmp_path / "elsewhere").tricks[0].params.path == str(tmp_path / "teachers" / "t.safetensors")


def test_a_command_without_cwd_runs_in_the_drivers_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = absolute_command(CommandTrial(command=["python", "t.py"]))
    assert cmd.cwd == str(tmp_path) and os.path.isabs(cmd.cwd)
    assert absolute_command(None) is None
