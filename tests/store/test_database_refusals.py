"""A study whose database cannot be used is refused in one line, exit 2, before Ray starts, and
the password never shows."""

import pytest

from tests.fixtures.ports import free_port


@pytest.fixture
def database_study(tmp_path, tiny_study, postgres_server):
    def write(url: str):
        return tiny_study(tmp_path, name="pg", optuna={"storage": url})

    return write


def test_a_wrong_password_is_one_line_before_ray_starts(
    database_study, postgres_server, refused_by_main, capsys, monkeypatch
):
    url = postgres_server.new_database("refusals")
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    error = refused_by_main(["run", str(database_study(url))], capsys)
    assert error.startswith("smcl-tune: optuna.storage: cannot connect to postgresql://smcl@127.0.0.1:")
    assert "password authentication failed" in error and "PGPASSWORD" in error


def test_an_unreachable_server_is_one_line_before_ray_starts(database_study, postgres_server, refused_by_main, capsys):
    closed = free_port()  # a port nothing listens on
    error = refused_by_main(["run", str(database_study(postgres_server.url("refusals", port=closed)))], capsys)
    where = f"postgresql://smcl@127.0.0.1:{closed}/refusals"
    assert error.startswith(f"smcl-tune: optuna.storage: cannot connect to {where} (")
    assert "refused" in error


def test_a_password_in_the_url_is_refused_without_showing_it(database_study, refused_by_main, capsys):
    error = refused_by_main(["run", str(database_study("postgresql://smcl:hunter2-secret@127.0.0.1:5432/x"))], capsys)
    assert "optuna.storage: the URI carries credentials" in error and "PGPASSWORD" in error
    assert "hunter2-secret" not in error


def test_moving_the_optuna_storage_is_not_a_changed_study(tmp_path, tiny_study):
    from smcl_tune.studyfile.study import load_study

    default = load_study(tiny_study(tmp_path, name="pg"))
    moved = load_study(tiny_study(tmp_path, name="pg", optuna={"storage": "postgresql://smcl@db:5432/studies"}))
    assert default.fingerprint() == moved.fingerprint()


def test_a_tracking_database_that_does_not_answer_is_one_line_for_run_status_and_ui(
    tmp_path, tiny_study, refused_by_main, capsys
):
    from smcl_tune.cli import main

    closed = free_port()  # a port nothing listens on
    url = f"postgresql://smcl@127.0.0.1:{closed}/mlflow"
    error = refused_by_main(["run", str(tiny_study(tmp_path, name="pg", tracking={"uri": url}))], capsys)
    assert error.startswith(f"smcl-tune: tracking.uri: cannot connect to {url} (") and "refused" in error
    for command in (["status", "pg"], ["ui"]):
        assert main([*command, "--tracking-uri", url]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"smcl-tune: --tracking-uri: cannot connect to {url} (") and "Traceback" not in error
        assert len(error.strip().splitlines()) == 1
