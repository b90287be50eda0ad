"""A storage URI that carries credentials is refused before anything starts, without showing them:
a study's storage reaches its MLflow tags, its logs and Ray's pickled searcher state."""

import subprocess
import sys

import pytest
import yaml

from smcl_tune.studyfile.uri_credentials import credentials_in, without_credentials

SECRET = "wJalrXUtnFEMI-K7MDENG"


@pytest.mark.parametrize(
    ("uri", "variables"),
    [
        ("smcl-runs", []),
        ("/data/a:b@c/runs", []),  # a folder, whatever its characters
        ("s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http", []),
        ("gs://bucket/runs", []),
        ("s3://bucket/runs?endpoint_override=http%3A%2F%2Fminio.lan%3A9000%2Fa%40b", []),
        # a user part in the endpoint S3 talks to: the endpoint's own keys, AWS's variables give them
        (
            f"s3://bucket/runs?endpoint_override=http://alice:{SECRET}@minio:9000",
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        ),
        (
            f"s3://b/r?region=x&endpoint_override=alice%3A{SECRET}%40minio%3A9000",
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        ),
        (f"s3://AKIAEXAMPLE:{SECRET}@bucket/runs", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        (f"s3://bucket/runs?secret_key={SECRET}&access_key=AKIA", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        ("s3://bucket/runs?session_token=abc&region=eu-west-1", ["AWS_SESSION_TOKEN"]),
        (f"s3://bucket/runs?secret%5Fkey={SECRET}", ["AWS_SECRET_ACCESS_KEY"]),  # an option's name encoded
        (
            f"s3://b/r?endpoint%5Foverride=http://alice:{SECRET}@minio:9000",
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        ),
        ("s3://bucket/key@v1", []),
        ("http://127.0.0.1:5000/a@b", []),  # a port, then an '@' in the path
        ("http://[::1]:5000/a@b", []),
        ("http://127.0.0.1:/a@b", []),  # an empty port (the scheme's own), then an '@' in the path
        (f"https://alice:{SECRET}@mlflow.example.org", ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]),
        (f"http://alice:{SECRET}/x@127.0.0.1:5000", ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]),
        (f"gs://alice:{SECRET}/x@bucket/runs", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        # a database's password may hold '/' and '@' (SQLAlchemy reads it up to the last '@'), or be a query option
        (f"postgresql://alice:{SECRET}/x@db:5432/studies", ["PGPASSWORD", "a ~/.pgpass file"]),
        (f"postgresql://alice:{SECRET}@x@db:5432/studies", ["PGPASSWORD", "a ~/.pgpass file"]),
        (f"postgresql://alice@db:5432/studies?password={SECRET}", ["PGPASSWORD", "a ~/.pgpass file"]),
        ("sqlite:////tmp/a@b/optuna.db", []),
        (f"http://127.0.0.1:5000/?token={SECRET}", ["MLFLOW_TRACKING_TOKEN"]),
        (f"https://mlflow.example.org/?access_token={SECRET}", ["MLFLOW_TRACKING_TOKEN"]),
    ],
)
def test_the_credentials_a_uri_carries_name_the_variables_that_replace_them(uri, variables):
    assert credentials_in(uri) == variables
    shown = without_credentials(uri) + without_credentials(uri, keep_user=True)
    assert SECRET not in shown and (shown == uri + uri) == (variables == [])


def test_a_database_url_in_a_message_keeps_its_user_and_hides_its_password():
    assert without_credentials(f"postgresql://alice:{SECRET}/x@db/s", keep_user=True) == "postgresql://alice:***@db/s"
    assert without_credentials("postgresql://alice@db/s?sslmode=require&password=pw", keep_user=True) == (
        "postgresql://alice@db/s?sslmode=require&password=***"
    )
    assert without_credentials(f"http://127.0.0.1:1/?token={SECRET}") == "http://127.0.0.1:1/?token=***"


def test_validate_refuses_a_tracking_uri_with_credentials_naming_mlflows_variables(tmp_path, tiny_study):
    path = tiny_study(tmp_path, tracking={"uri": f"https://alice:{SECRET}@mlflow.example.org"})
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tracking.uri: the URI carries credentials, which would reach the study's tags, logs and Ray's saved " in (
        done.stderr
    )
    assert "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment instead" in done.stderr
    assert SECRET not in done.stderr + done.stdout


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
