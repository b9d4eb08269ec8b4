"""runners/: every file parses, has what its tool requires, and every `ablate ...` command in it
is one ablate's own CLI accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from ablate.cli import build_parser

RUNNERS = Path(__file__).resolve().parents[2] / "runners"
FILES = ["ray-cluster.yaml", "kuberay-cluster.yaml", "slurm-ray.sbatch", "local-cluster.sh", "README.md"]
# `ablate <command> ...` up to the end of the line, a quote or a shell separator
COMMAND = re.compile(r"(?<![\w/.-])ablate ((?:run|plan|report|status|tricks)\b[^'`\n;&|)]*)")


def ablate_commands(text: str) -> list[list[str]]:
    return [shlex.split(m.group(1).strip()) for m in COMMAND.finditer(text)]


def test_every_runner_file_is_there_and_documented():
    readme = (RUNNERS / "README.md").read_text()
    for name in FILES[:-1]:
        assert (RUNNERS / name).is_file(), name
        assert name in readme, f"runners/README.md does not document {name}"


@pytest.mark.parametrize("name", FILES)
def test_every_ablate_command_parses_with_the_cli(name):
    commands = ablate_commands((RUNNERS / name).read_text())
    assert commands, f"{name} shows no ablate command"
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: `ablate {shlex.join(argv)}` is not a valid ablate command")
    assert any(a[0] == "run" and "--runner" in a and a[a.index("--runner") + 1] == "ray" for a in commands) \
        or name == "README.md" and any(a[0] == "run" for a in commands)


def test_the_command_pattern_catches_a_bad_command():
    argv = ablate_commands("srun ... ablate run quickstart --runer ray\n")[0]
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


@pytest.mark.parametrize("name", ["slurm-ray.sbatch", "local-cluster.sh"])
def test_shell_scripts_pass_bash_n(name):
    done = subprocess.run(["bash", "-n", str(RUNNERS / name)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_slurm_script_starts_a_head_and_workers_with_srun():
    text = (RUNNERS / "slurm-ray.sbatch").read_text()
    assert "#SBATCH --nodes" in text and "#SBATCH --gpus" in text
    assert re.search(r"srun .*\n?.*ray start --head", text) and re.search(r"srun .*\n?.*ray start --address", text)


def test_cluster_launcher_config_has_gpu_workers():
    config = yaml.safe_load((RUNNERS / "ray-cluster.yaml").read_text())
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in config, key
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert any(t["resources"].get("GPU", 0) >= 1 for t in types.values())
    assert any("ablate" in c for c in config["setup_commands"])
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("ray start --address" in c for c in config["worker_start_ray_commands"])


def test_kuberay_manifest_is_a_raycluster_with_a_gpu_worker_group():
    m = yaml.safe_load((RUNNERS / "kuberay-cluster.yaml").read_text())
    assert m["apiVersion"] == "ray.io/v1" and m["kind"] == "RayCluster" and m["metadata"]["name"]
    head = m["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"].startswith("rayproject/ray")
    groups = m["spec"]["workerGroupSpecs"]
    gpus = [c["resources"]["limits"].get("nvidia.com/gpu", 0) for g in groups
            for c in g["template"]["spec"]["containers"]]
    assert any(int(n) >= 1 for n in gpus)
