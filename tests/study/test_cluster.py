"""Studies on a Ray cluster (study/cluster.py), on one machine: joining a `ray start --head`, losing a
worker node; the refusals before Ray starts (local storage across hosts, resources no local slot
can hold), the guard against a host that joined later, and the local Ray's token."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

from smcl_tune.store.paths import default_tracking_uri
from smcl_tune.study.cluster import LocalStorageGuard
from smcl_tune.study.runner import run_study
from smcl_tune.studyfile.study import load_study
from tests.fixtures.ports import free_port
from tests.fixtures.ray_heads import wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
def test_submit_script_runs_a_study_on_a_ray_head_started_here(tmp_path, tiny_study, trial_runs):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"  # a loopback-only test cluster; real clusters keep Ray's token auth
    log = tmp_path / "head.log"
    with log.open("w") as output:
        head = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ray.scripts.scripts",
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--include-dashboard=false",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    try:
        wait_for_port(port, head, log)
        study = tiny_study(tmp_path, name="on-head", num_trials=2)
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "docker" / "submit_study.py"),
                    "run",
                    str(study),
                    "--address",
                    f"127.0.0.1:{port}",
                ],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired as late:
            stderr = (late.stderr or b"")[-3000:].decode(errors="replace")
            pytest.fail(f"the submitted study ran past 300 s: {stderr}\nthe head's log: {log.read_text()[-2000:]}")
        assert done.returncode == 0, done.stderr[-3000:]
        assert "study on-head ran for" in done.stdout
        assert f"joining the Ray cluster at 127.0.0.1:{port}" in done.stderr
    finally:
        # the head this test started, and nothing else; not SIGTERM: `ray start --block` takes about 30 s on it
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path / "smcl-runs"))
    assert len(trial_runs(client, "on-head")) == 2


@pytest.mark.ray
@pytest.mark.slow
def test_losing_a_worker_node_loses_no_trial(tmp_path, tiny_study, trial_runs):
    if ray.is_initialized():  # the session's shared Ray: this test's driver joins a cluster of its own
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    # the small CNN: the tiny one's epochs end before a node is removed
    study_file = tiny_study(
        tmp_path, name="node-loss", architecture="small_cnn", num_trials=2, max_concurrent=2, scheduler={"type": "fifo"}
    )
    study_file.write_text(study_file.read_text().replace("epochs: 3", "epochs: 6"))
    study = load_study(study_file)
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path / "smcl-runs"))
    outcome, errors, timeline = {}, [], []

    def run() -> None:
        try:
            outcome["result"] = run_study(study)
        except BaseException as error:
            errors.append(error)

    driver = threading.Thread(target=run, daemon=True)
    started = time.time()
    driver.start()
    try:
        victim = None
        while victim is None and time.time() - started < 900:  # slow when the machine is busy
            for run in trial_runs(client, "node-loss"):
                epochs = len(client.get_metric_history(run.info.run_id, "loss"))
                node = run.data.tags.get("smcl.nodes", "").split(",")[-1]
                if run.info.status == "RUNNING" and epochs >= 2 and node:
                    victim = (run.info.run_name, node, epochs)
                    break
            time.sleep(0.3)
        assert victim is not None, "no trial reached its third epoch"
        node = next(w for w in workers if w.node_id == victim[1])
        cluster.remove_node(node)
        timeline.append(
            f"{time.time() - started:6.1f}s removed node {victim[1][:8]} running {victim[0]} after {victim[2]} epochs"
        )
        driver.join(timeout=600)
        assert not driver.is_alive() and not errors, errors
    finally:
        ray.shutdown()
        cluster.shutdown()

    runs = {run.info.run_name: run for run in trial_runs(client, "node-loss")}
    assert sorted(runs) == ["trial-000", "trial-001"]
    nodes_used = set()
    for name, run in sorted(runs.items()):
        nodes = run.data.tags["smcl.nodes"].split(",")
        nodes_used.update(nodes)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        timeline.append(f"{name}: nodes {' -> '.join(n[:8] for n in nodes)}, epochs logged {sorted(steps)}")
        assert run.info.status == "FINISHED" and sorted(set(steps)) == list(range(6))
        assert steps.count(0) == 1, (name, steps)  # nobody started over: the moved trial resumed
    moved = runs[victim[0]].data.tags["smcl.nodes"].split(",")
    assert len(moved) == 2 and moved[0] == victim[1] and moved[1] != victim[1]
    assert len(nodes_used) >= 2
    optuna_study = optuna.load_study(
        study_name="node-loss", storage=f"sqlite:///{tmp_path / 'smcl-runs' / 'node-loss' / 'optuna.db'}"
    )
    assert [t.state for t in optuna_study.get_trials()] == [optuna.trial.TrialState.COMPLETE] * 2
    print("\n".join(["node-loss timeline:", *timeline]))


def test_local_storage_is_refused_when_the_cluster_spans_several_hosts(tmp_path, tiny_study):
    from smcl_tune.errors import ConfigError
    from smcl_tune.store.paths import StudyPaths
    from smcl_tune.study.cluster import check_cluster_storage
    from smcl_tune.studyfile.study import load_study

    study = load_study(tiny_study(tmp_path, name="cluster"))
    paths = StudyPaths.of(study)
    check_cluster_storage(study, paths, ["10.0.0.1"])  # one host: its own disk is fine
    with pytest.raises(ConfigError, match=r"storage: .* is a local folder .* spans 2 hosts \(10.0.0.1, 10.0.0.2\)"):
        check_cluster_storage(study, paths, ["10.0.0.1", "10.0.0.2"])
    on_s3 = load_study(tiny_study(tmp_path, name="cluster", storage="s3://bucket/smcl-runs"))
    check_cluster_storage(on_s3, StudyPaths.of(on_s3), ["10.0.0.1", "10.0.0.2"])


@pytest.mark.ray
@pytest.mark.slow
def test_without_an_address_a_run_starts_its_own_ray_and_never_joins_a_leftover_one(tmp_path, tiny_study, run_cli):
    leftover = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # a Ray no trial could run on
    try:
        study = tiny_study(tmp_path, name="own-ray", num_trials=1)
        secret = f"not-a-real-key-{uuid.uuid4().hex}"
        environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        environment["AWS_SECRET_ACCESS_KEY"] = secret
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "smcl_tune.cli", "run", str(study)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        leftover.shutdown()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "trial-000: finished after 3 epochs" in done.stdout
    # Ray Tune would hand the trial the driver's AWS keys through Ray, whose agent logs them in plain text
    sessions = [
        path for path in Path(tempfile.gettempdir(), "ray").glob("session_2*") if path.stat().st_ctime > started
    ]
    logs = [path for session in sessions for path in (session / "logs").glob("*") if path.is_file()]
    assert logs and not [path for path in logs if secret in path.read_text(errors="replace")]


@pytest.mark.parametrize("fuse, asker", [(1, "a trial"), (4, "a group of fused trials")])
def test_resources_no_local_slot_can_hold_are_refused_before_ray_starts(
    tmp_path, tiny_study, capsys, refused_by_main, fuse, asker
):
    study = tiny_study(tmp_path, name="greedy", resources={"cpus": 512, "fuse": fuse})
    error = refused_by_main(["run", str(study)], capsys)
    assert f"resources.cpus: {asker} asks for 512 CPUs and this machine has {os.cpu_count()}" in error
    assert not (tmp_path / "smcl-runs").exists()


def _not_connected_to_ray() -> None:
    """As a `smcl-tune run` process starts (a process connected to Ray already keeps it, whatever
    the address): the session's shared Ray, if this worker started it, is left (the next test that
    asks for it starts it again)."""
    if ray.is_initialized():
        ray.shutdown()


@pytest.mark.parametrize("given", ["--address", "RAY_ADDRESS"])
def test_an_address_no_ray_cluster_answers_at_is_refused_before_ray_is_joined(
    tmp_path, tiny_study, capsys, refused_by_main, monkeypatch, given
):
    _not_connected_to_ray()
    study = tiny_study(tmp_path, name="nowhere")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there: ray.init would retry for minutes
    if given == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    error = refused_by_main(["run", str(study), *(["--address", address] if given == "--address" else [])], capsys)
    assert error.startswith(f"smcl-tune: {given} {address}: no Ray cluster answers there"), error
    assert "ray start --head" in error
    assert not (tmp_path / "smcl-runs").exists()


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("http://127.0.0.1:8265", "that is a dashboard's address"),
        ("ray://127.0.0.1:10001", "that is a Ray Client address, which a study cannot run through"),
        (":6379", "not HOST:PORT"),
        ("head", "not HOST:PORT"),
    ],
)
def test_an_address_that_is_not_a_clusters_is_refused_before_ray_is_joined(
    tmp_path, tiny_study, capsys, refused_by_main, address, said
):
    _not_connected_to_ray()
    study = tiny_study(tmp_path, name="not-an-address")
    error = refused_by_main(["run", str(study), "--address", address], capsys)
    assert error.startswith(f"smcl-tune: --address {address}: {said}"), error
    assert not (tmp_path / "smcl-runs").exists()


def test_a_trial_on_a_host_the_cluster_did_not_have_at_the_start_stops_the_study():
    guard = LocalStorageGuard(["10.0.0.1"])
    assert guard("t1", {"node_ip": "10.0.0.1"}) is False and not guard.stop_all()
    assert guard("t2", {"node_ip": "10.0.0.7"}) is True  # an autoscaled node
    assert guard.stop_all() and guard.foreign == "10.0.0.7"


@pytest.mark.ray
@pytest.mark.slow
def test_a_local_ray_refuses_clients_without_its_token_and_keeps_the_token_private(tmp_path):
    home, stranger = tmp_path / "home", tmp_path / "stranger"
    home.mkdir()
    stranger.mkdir()
    script = (
        "import os, stat, subprocess, sys, ray\n"
        "from smcl_tune.study.ray_session import init_ray\n"
        "init_ray(None)\n"
        "token = os.path.expanduser('~/.ray/auth_token')\n"
        "print('mode', oct(stat.S_IMODE(os.stat(token).st_mode)))\n"
        "print('folder', oct(stat.S_IMODE(os.stat(os.path.dirname(token)).st_mode)))\n"
        "address = ray.get_runtime_context().gcs_address\n"
        # one connection attempt, not Ray's ~20 s of retries: a refused token is refused at the first
        f"env = {{**os.environ, 'HOME': {str(stranger)!r}, 'RAY_AUTH_MODE': 'disabled',\n"
        "       'RAY_gcs_server_port_wait_time_s': '1'}\n"
        "probe = subprocess.run([sys.executable, '-c', f'import ray; ray.init(address={address!r})'], env=env,\n"
        "                       capture_output=True, text=True, timeout=120)\n"
        "print('stranger', probe.returncode, 'InvalidAuthToken' in probe.stderr)\n"
        "ray.shutdown()\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "mode 0o600" in lines  # Ray wrote it world-readable; only its owner can read it now
    assert "folder 0o700" in lines  # and no one else could meanwhile: its folder is its owner's only
    assert "stranger 1 True" in lines  # a client without the token is refused
