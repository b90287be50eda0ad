"""A study submitted with Ray's own `ray job submit` to a `ray start --head` with token auth, as
docker/README.md tells a user to: it succeeds and its results stay in the absolute storage it
names; a relative storage is refused with one line."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from smcl_tune.store.database import optuna_storage
from tests.fixtures.cluster_stores import S3_ENVIRONMENT
from tests.fixtures.ports import free_ports
from tests.fixtures.ray_heads import wait_for_port

BIN = Path(sys.executable).parent  # the venv's `ray` and `smcl-tune`
# Ray's servers that take a fixed port by default: each gets a free one, so this head meets no other.
PORTS = (
    "port",
    "dashboard-port",
    "ray-client-server-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)


def _ray(*arguments, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ray"), *arguments], env=env, capture_output=True, text=True, timeout=timeout, cwd=env["HOME"]
    )


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory, postgres_server):
    """A `ray start --head` on 127.0.0.1 with token auth, its own ports and temp folder, and the
    client environment that reaches it (the same HOME, so the same ~/.ray/auth_token), shared by the
    file's tests (its start costs seconds and CPU): the cluster's credentials (S3, PGPASSWORD) are in
    the head's environment, as a node would have them."""
    home = tmp_path_factory.mktemp("home")
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(S3_ENVIRONMENT, PGPASSWORD=postgres_server.study_password)
    env.update(HOME=str(home), RAY_AUTH_MODE="token", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    generated = _ray("get-auth-token", "--generate", env=env, timeout=60)
    assert generated.returncode == 0 and (home / ".ray" / "auth_token").is_file(), generated.stderr
    ports = dict(zip(PORTS, free_ports(len(PORTS))))
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    log = home.parent / f"{home.name}-head.log"
    with log.open("w") as output:
        head = subprocess.Popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                "--dashboard-host=127.0.0.1",
                *(f"--{name}={port}" for name, port in ports.items()),
                "--num-cpus=2",
                f"--temp-dir={temp}",
                "--disable-usage-stats",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown stops this head and nothing else
            env=env,
            cwd=home,
        )
    try:
        wait_for_port(ports["dashboard-port"], head, log)
        yield f"http://127.0.0.1:{ports['dashboard-port']}", env
    finally:
        # Not `ray stop`: it stops every Ray on the machine, not only this one. Not SIGTERM either:
        # `ray start --block` takes about 30 s to stop on it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def _write_job_study(job_dir: Path, two_one_epoch_trials, storage: str) -> None:
    """The job's working folder, holding tiny.yaml: two one-epoch trials of 5 tiny classes, side by side."""
    job_dir.mkdir()
    study = two_one_epoch_trials(storage)
    (job_dir / "tiny.yaml").write_text(yaml.safe_dump(study))


def _job_status(address: str, env: dict, job: str) -> str:
    """What `ray job status` prints (Ray colours it even into a pipe: the colours are taken out)."""
    done = _ray("job", "status", job, "--address", address, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)


AGENT_NOT_READY = "No available agent to submit job, please try again later"


def _submit(address: str, env: dict, job_dir: Path) -> tuple[subprocess.CompletedProcess, str]:
    deadline = time.time() + 120
    while True:  # a head whose dashboard answers may not have its job agent yet: Ray says try again
        done = _ray("job", "submit", "--address", address, "--working-dir", str(job_dir), "--", "smcl-tune", "run",
                    "tiny.yaml", env=env)  # fmt: skip
        if AGENT_NOT_READY not in done.stdout + done.stderr or time.time() > deadline:
            break
        time.sleep(2)
    submitted = re.search(r"Job '(raysubmit_\w+)' submitted successfully", done.stdout + done.stderr)
    assert submitted, done.stdout[-3000:] + done.stderr[-3000:]
    return done, submitted.group(1)


@pytest.mark.ray
@pytest.mark.slow
def test_a_study_submitted_with_ray_job_submit_keeps_its_results_in_its_absolute_storage(
    tmp_path, ray_head, two_one_epoch_trials, run_cli
):
    address, env = ray_head
    without_token = {**env, "HOME": str(tmp_path)}  # no ~/.ray/auth_token there
    refused = _ray("job", "list", "--address", address, env=without_token, timeout=120)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "couldn't find an authentication token" in said, said[-2000:]
    # a client with a token that is not the head's: refused by the head itself (Ray prints a token
    # warning on every call, so the word "token" alone would pass whatever failed)
    wrong = _ray("job", "list", "--address", address, env={**without_token, "RAY_AUTH_TOKEN": "0" * 32}, timeout=120)
    said = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0 and "Forbidden: Invalid authentication token" in said, said[-2000:]

    storage = tmp_path / "shared" / "smcl-runs"
    kept = tmp_path / "job"
    _write_job_study(kept, two_one_epoch_trials, str(storage))
    done, job = _submit(address, env, kept)
    assert done.returncode == 0 and f"Job '{job}' succeeded" in done.stdout + done.stderr, done.stdout[-3000:]
    assert f"Job '{job}' succeeded" in _job_status(address, env, job)
    assert "joining the Ray cluster at " in done.stdout + done.stderr  # the head's Ray, not one of its own

    status = run_cli("status", "tiny", "--storage", str(storage), cwd=tmp_path)
    assert status.returncode == 0 and "study tiny: finished, 2 of 2 trials ended" in status.stdout, status.stderr
    board = run_cli("leaderboard", "tiny", "--storage", str(storage), cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    ranked = {tuple(line.split()[1:3]) for line in board.stdout.splitlines() if re.match(r"\s+\d+\s+trial-", line)}
    assert ranked == {("trial-000", "completed"), ("trial-001", "completed")}, board.stdout
    print(done.stdout, done.stderr, status.stdout, board.stdout, sep="\n")  # shown with pytest -rP

    lost = tmp_path / "relative-job"
    _write_job_study(lost, two_one_epoch_trials, "smcl-runs")
    done, job = _submit(address, env, lost)
    assert done.returncode != 0
    assert f"Job '{job}' failed" in _job_status(address, env, job)
    logs = _ray("job", "logs", job, "--address", address, env=env, timeout=120).stdout
    lines = [line for line in logs.splitlines() if line.startswith("smcl-tune: ")]
    assert lines == [
        f"smcl-tune: tiny.yaml: storage: 'smcl-runs' is relative, and this study runs as Ray job {job}, whose working "
        "folder Ray deletes after the job; set it to an absolute path on a folder every node shares "
        "(e.g. /mnt/shared/smcl-runs)"
    ], logs
    assert "Traceback" not in logs
    print(done.stdout, done.stderr, sep="\n")


@pytest.mark.ray
@pytest.mark.slow
def test_a_study_whose_every_store_is_remote_is_accepted_as_a_job(
    tmp_path, ray_head, postgres_server, s3_server, team_tracking_server, two_one_epoch_trials,
    run_cli, monkeypatch,
):  # fmt: skip
    address, env = ray_head
    monkeypatch.setenv("PGPASSWORD", postgres_server.study_password)
    database = postgres_server.new_database("job_study")
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    study = two_one_epoch_trials(s3_server.storage("job-runs"))
    study.update(optuna={"storage": database}, tracking={"uri": team_tracking_server.uri})
    (job_dir / "tiny.yaml").write_text(yaml.safe_dump(study))
    done, job = _submit(address, env, job_dir)
    assert done.returncode == 0 and f"Job '{job}' succeeded" in done.stdout + done.stderr, done.stdout[-3000:]
    trials = optuna.load_study(study_name="tiny", storage=optuna_storage(database)).trials
    assert len(trials) == 2 and all(trial.state.is_finished() for trial in trials)
    assert s3_server.keys("job-runs/tiny/")
    status = run_cli("status", "tiny", "--tracking-uri", team_tracking_server.uri, cwd=tmp_path)
    assert status.returncode == 0 and "study tiny: finished, 2 of 2 trials ended" in status.stdout, status.stderr
