"""A storage URI that carries credentials is refused before anything starts, without showing them:
a study's storage reaches its MLflow tags, its logs and Ray's pickled searcher state."""

import subprocess
import sys

import pytest
import yaml

from smcl_tune.studyfile.uri_credentials import credentials_in

SECRET = "wJalrXUtnFEMI-K7MDENG"


@pytest.mark.parametrize(
    ("uri", "variables"),
    [
        ("smcl-runs", []),
        ("/data/a:b@c/runs", []),  # a folder, whatever its characters
        ("s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http", []),
        ("gs://bucket/runs", []),
        (f"s3://AKIAEXAMPLE:{SECRET}@bucket/runs", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        (f"s3://bucket/runs?secret_key={SECRET}&access_key=AKIA", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        ("s3://bucket/runs?session_token=abc&region=eu-west-1", ["AWS_SESSION_TOKEN"]),
    ],
)
def test_the_credentials_a_uri_carries_name_the_variables_that_replace_them(uri, variables):
    assert credentials_in(uri) == variables


def test_validate_refuses_a_storage_with_credentials_and_never_prints_them(tmp_path, tiny_study):
    path = tiny_study(tmp_path, storage=f"s3://AKIAEXAMPLE:{SECRET}@bucket/runs?region=eu-west-1")
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "storage: the URI carries credentials" in done.stderr
    assert "AWS_SECRET_ACCESS_KEY" in done.stderr and "Traceback" not in done.stderr
    assert SECRET not in done.stderr + done.stdout and "AKIAEXAMPLE" not in done.stderr + done.stdout
    assert yaml.safe_load(path.read_text())["storage"].startswith("s3://")  # the file is left as it was
