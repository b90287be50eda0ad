"""A study whose `storage` is an object store that does not answer, refuses this machine's
credentials or names a missing bucket is refused in one line, exit 2, before anything starts."""

import os
import pickle
import sys

import pytest

from tests.fixtures.cluster_stores import (
    BUCKET,
    S3_ENVIRONMENT,
    S3Server,
    boto_credentials,
    started_server,
    stopped_server,
)
from tests.fixtures.ports import free_port


@pytest.fixture
def denying_s3_server(tmp_path_factory):
    """An S3 API server of its own that checks credentials: after its bucket is made (the one
    request it lets through), it knows no access key."""
    port = free_port()
    environment = {**os.environ, **S3_ENVIRONMENT, "INITIAL_NO_AUTH_ACTION_COUNT": "1"}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = started_server(
        command, f"http://127.0.0.1:{port}/moto-api/", tmp_path_factory.mktemp("moto") / "moto.log", environment
    )
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **boto_credentials()).create_bucket(Bucket="smcl")
        yield S3Server(f"127.0.0.1:{port}")
    finally:
        stopped_server(process)


def test_an_unreachable_object_store_is_one_line_and_exit_2_with_nothing_written(tmp_path, tiny_study, run_cli):
    closed = free_port()
    storage = f"s3://smcl/runs?endpoint_override=127.0.0.1:{closed}&scheme=http"
    path = tiny_study(tmp_path, storage=storage)
    ran = run_cli("run", str(path), cwd=tmp_path, env={**os.environ, **S3_ENVIRONMENT})
    assert ran.returncode == 2, ran.stderr[-3000:]
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert f"storage: the object store s3://smcl/runs/tiny?endpoint_override=127.0.0.1:{closed}" in ran.stderr
    assert "Could not connect to server" in ran.stderr and "AWS_ACCESS_KEY_ID" in ran.stderr
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["tiny.yaml"]  # no MLflow run, no lock


@pytest.fixture
def in_the_s3_environment(tmp_path, monkeypatch):
    """The test runs in its own folder, with the S3 servers' credentials in the environment."""
    monkeypatch.chdir(tmp_path)
    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow  # an S3 API server of its own
def test_an_object_store_that_denies_this_machines_credentials_is_one_line_before_ray_starts(
    tmp_path, tiny_study, denying_s3_server, refused_by_main, capsys, in_the_s3_environment
):
    path = tiny_study(tmp_path, storage=denying_s3_server.storage("runs"))
    error = refused_by_main(["run", str(path)], capsys)
    assert error.startswith("smcl-tune: storage: the object store s3://smcl/runs/tiny?endpoint_override=")
    assert "ACCESS_DENIED" in error
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["tiny.yaml"]


@pytest.mark.slow  # the session's S3 API server
def test_a_missing_bucket_is_one_line_and_a_usable_store_keeps_no_probe(
    tmp_path, tiny_study, s3_server, refused_by_main, capsys, in_the_s3_environment
):
    from smcl_tune.store.object_store import PROBE_PREFIX, check_object_store

    missing = s3_server.storage("runs").replace("s3://smcl/", "s3://no-such-bucket/")
    error = refused_by_main(["run", str(tiny_study(tmp_path, storage=missing))], capsys)
    assert "the object store s3://no-such-bucket/runs/tiny?" in error and "no-such-bucket" in error.split("(", 1)[1]

    check_object_store(s3_server.storage("probed/study"))  # a store that answers: passes
    assert not any(PROBE_PREFIX in key for key in s3_server.keys("probed/"))


@pytest.mark.slow  # the session's S3 API server
def test_a_torn_experiment_state_in_an_object_store_is_one_line_with_nothing_changed(
    tmp_path, tiny_study, s3_server, capsys, in_the_s3_environment, ray_starts
):
    # A copy Ray took while it rewrote its state (smcl_tune/study/whole_state_saves.py): Ray would
    # log an error, start the experiment afresh and run the study's trials again (a helper's trial).
    import boto3

    from smcl_tune.cli import main

    client = boto3.client("s3", endpoint_url=f"http://{s3_server.endpoint}", **boto_credentials())
    saved = {
        "torn/tiny/tuner.pkl": pickle.dumps({"a": "tuner"}),
        "torn/tiny/experiment_state-2026-12-07_00-00-00.json": b'{"trial_data": [["{\\"trial_id',
    }
    for key, body in saved.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert main(["run", str(tiny_study(tmp_path, storage=s3_server.storage("torn")))]) == 1  # a damaged store
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and ray_starts == [], error
    assert error.startswith(
        "smcl-tune: s3://smcl/torn/tiny/experiment_state-2026-12-07_00-00-00.json: "
        "Ray's saved state of study 'tiny' is unreadable (not JSON"
    ), error
    assert "restore s3://smcl/torn/tiny from a backup, or run again with --restart" in error
    # (the object store's own check leaves its folder's markers, "torn/" and "torn/tiny/", as it did before)
    assert sorted(key for key in s3_server.keys("torn/") if not key.endswith("/")) == sorted(saved)
    assert all(client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body for key, body in saved.items())
