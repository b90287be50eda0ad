"""`ray up`, `ray submit` and `ray down` with docker/cluster-installed.yaml (machines with the
package installed, no Docker), against an sshd on 127.0.0.1: a one-host cluster runs a tiny study
submitted through docker/submit_study.py, and its store stays on the shared folder."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.fixtures.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VENV = Path(sys.prefix)
NAMESPACES = ["unshare", "--pid", "--net", "--mount", "--fork", "--mount-proc"]


def _skip_unless_possible() -> None:
    """The test needs root (its own namespaces, a second uid-0 login), sshd and rsync (.ci/run installs both)."""
    if os.geteuid() != 0:
        skip_unless_ci("needs root: the cluster runs in its own PID, network and mount namespaces")
    missing = [tool for tool in ("/usr/sbin/sshd", shutil.which("rsync")) if not tool or not Path(tool).exists()]
    if missing:
        skip_unless_ci("needs openssh-server and rsync (.ci/run installs them)")
    probe = subprocess.run([*NAMESPACES, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        skip_unless_ci(f"cannot make namespaces here: {probe.stderr.strip()}")


def _one_host_config(folder: Path) -> dict:
    """docker/cluster-installed.yaml with this machine as its only host: the venv is this test's,
    the shared folder and the head's copy of studies/ lie in `folder`."""
    text = (ROOT / "docker" / "cluster-installed.yaml").read_text()
    for placeholder, here in [
        ("/opt/smcl-tune/.venv", str(VENV)),
        ("/mnt/shared", str(folder / "shared")),
        ("/home/smcl/work/studies", str(folder / "head-studies")),
        ("/tmp/mlflow.log", str(folder / "mlflow.log")),
    ]:
        assert placeholder in text, placeholder
        text = text.replace(placeholder, here)
    config = yaml.safe_load(text)
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["max_workers"] = 0
    config["auth"] = {"ssh_user": "smcltest", "ssh_private_key": str(folder / "client_key")}
    return config


def _write_study(folder: Path, two_one_epoch_trials, storage: Path) -> None:
    study = two_one_epoch_trials(str(storage))
    (folder / "studies").mkdir()
    (folder / "studies" / "tiny.yaml").write_text(yaml.safe_dump(study))


def _smcl_tune(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", *arguments], capture_output=True, text=True, timeout=120
    )


def _log(folder: Path, step: str) -> str:
    path = folder / f"{step}.log"
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", path.read_text()) if path.exists() else f"({step} did not run)"


def _run_cluster(folder: Path, env: dict) -> None:
    """one_host_cluster.sh in namespaces of its own: ray up, ray submit, ray down."""
    subprocess.run(
        [
            *NAMESPACES,
            "bash",
            str(ROOT / "tests" / "docker" / "one_host_cluster.sh"),
            str(folder),
            str(ROOT / "docker" / "submit_study.py"),
            str(folder / "head-studies" / "tiny.yaml"),
        ],
        env=env,
        cwd=folder,
        timeout=600,
        check=True,
    )


def _forget_cached_config(folder: Path) -> None:
    """The launcher caches each config it bootstraps in the temp folder; drop this test's."""
    for cached in Path(tempfile.gettempdir()).glob("ray-config-*"):
        if str(folder) in cached.read_text(errors="replace"):
            cached.unlink()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_up_submit_and_down_run_a_study_on_a_one_host_cluster_over_ssh(tmp_path, two_one_epoch_trials):
    _skip_unless_possible()
    storage = tmp_path / "shared" / "smcl-runs"
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(_one_host_config(tmp_path)))
    _write_study(tmp_path, two_one_epoch_trials, storage)
    (tmp_path / "client-home").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(HOME=str(tmp_path / "client-home"), RAY_AUTH_MODE="token", PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    try:
        _run_cluster(tmp_path, env)
    finally:
        _forget_cached_config(tmp_path)
    up, submit, down = (_log(tmp_path, step) for step in ("up", "submit", "down"))
    submitted = [line for line in submit.splitlines() if "Running `python" in line or "joining the Ray" in line]
    print(up[-1500:], *submitted, submit[-1500:], down[-1500:], sep="\n")  # shown with pytest -rP
    rcs = {step: (tmp_path / f"{step}.rc").read_text().strip() for step in ("up", "submit", "down")}
    assert rcs == {"up": "0", "submit": "0", "down": "0"}, (rcs, up[-3000:], submit[-3000:], down[-3000:])
    assert "ray start --head" in up and "New status: up-to-date" in up
    assert "joining the Ray cluster at auto" in submit and "study tiny ran for" in submit
    # Ray stopped on the head: within `ray stop`'s grace period, or (a loaded machine: its GCS slower
    # than 16 s to exit, seen once in a fresh clone's .ci/run) forcefully after it
    stopped = "Stopped all" in down or ("Stopped only" in down and "will be forcefully terminated" in down)
    assert stopped and "No nodes remaining" in down
    venv_on_path = f"export PATH={VENV}/bin:$PATH"
    assert (tmp_path / "head-home" / ".bashrc").read_text().splitlines().count(venv_on_path) == 1

    status = _smcl_tune("status", "tiny", "--storage", str(storage))
    assert status.returncode == 0 and "study tiny: finished, 2 of 2 trials ended" in status.stdout, status.stderr
    board = _smcl_tune("leaderboard", "tiny", "--storage", str(storage))
    ranked = {tuple(line.split()[1:3]) for line in board.stdout.splitlines() if re.match(r"\s+\d+\s+trial-", line)}
    assert ranked == {("trial-000", "completed"), ("trial-001", "completed")}, board.stdout + board.stderr
    print(status.stdout, board.stdout, sep="\n")
