"""A study whose `storage` is an object store that does not answer, refuses this machine's
credentials or names a missing bucket is refused in one line, exit 2, before anything starts; so
is one whose saved Ray state it will not give this machine. A torn state is refused as damaged."""

import contextlib
import json
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


@contextlib.contextmanager
def _moto_checking_credentials(tmp_path_factory, unchecked: int):
    """An S3 API server of its own that lets its first `unchecked` requests through, then checks
    every request's credentials against the IAM users it knows; its endpoint, host:port."""
    port = free_port()
    environment = {**os.environ, **S3_ENVIRONMENT, "INITIAL_NO_AUTH_ACTION_COUNT": str(unchecked)}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = started_server(
        command, f"http://127.0.0.1:{port}/moto-api/", tmp_path_factory.mktemp("moto") / "moto.log", environment
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stopped_server(process)


@pytest.fixture
def denying_s3_server(tmp_path_factory):
    """An S3 API server of its own that checks credentials: after its bucket is made (the one
    request it lets through), it knows no access key."""
    import boto3

    with _moto_checking_credentials(tmp_path_factory, unchecked=1) as endpoint:
        boto3.client("s3", endpoint_url=f"http://{endpoint}", **boto_credentials()).create_bucket(Bucket="smcl")
        yield S3Server(endpoint)


DENIED_STATE = "denied/tiny/experiment_state-2026-12-07_00-00-00.json"


@pytest.fixture
def s3_server_keeping_a_state_from_this_machine(tmp_path_factory, monkeypatch, in_the_s3_environment):
    """An S3 API server of its own holding a study's Ray state, whose access key in this test's
    environment may list, write and delete in the bucket but not read the state's experiment file
    (an IAM policy; the setup's 7 requests go through unchecked, and no other key is known)."""
    import boto3

    with _moto_checking_credentials(tmp_path_factory, unchecked=7) as endpoint:
        address = {"endpoint_url": f"http://{endpoint}", **boto_credentials()}
        s3, iam = boto3.client("s3", **address), boto3.client("iam", **address)
        s3.create_bucket(Bucket=BUCKET)
        saved = {"denied/tiny/tuner.pkl": pickle.dumps({"a": "tuner"}), DENIED_STATE: b'{"trial_data": []}'}
        for key, body in saved.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        iam.create_user(UserName="driver")
        statements = [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/{DENIED_STATE}"},
        ]
        document = json.dumps({"Version": "2012-10-17", "Statement": statements})
        policy = iam.create_policy(PolicyName="no-state", PolicyDocument=document)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="driver", PolicyArn=policy)
        key = iam.create_access_key(UserName="driver")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        yield S3Server(endpoint), saved


@pytest.mark.slow  # an S3 API server of its own
def test_a_saved_state_the_object_store_will_not_give_this_machine_is_one_line_with_nothing_changed(
    tmp_path, tiny_study, s3_server_keeping_a_state_from_this_machine, refused_by_main, capsys
):
    # Ray's restore would fail on it, or start the study over; its other files read, its folder lists
    server, saved = s3_server_keeping_a_state_from_this_machine
    error = refused_by_main(["run", str(tiny_study(tmp_path, storage=server.storage("denied")))], capsys)
    assert error.startswith(
        f"smcl-tune: s3://smcl/{DENIED_STATE}: Ray's saved state of study 'tiny' cannot be read from "
    ), error
    assert "ACCESS_DENIED" in error
    assert "give this machine's credentials read access to it, or run again with --restart" in error
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://{server.endpoint}")  # this machine's key, from the environment
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="denied/")["Contents"]
    assert sorted(entry["Key"] for entry in listed if not entry["Key"].endswith("/")) == sorted(saved)
    tuner = "denied/tiny/tuner.pkl"
    assert client.get_object(Bucket=BUCKET, Key=tuner)["Body"].read() == saved[tuner]


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
