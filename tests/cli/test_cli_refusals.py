"""Bad arguments and study-file values are refused in one line naming the option or field, exit 2,
before anything starts or is served."""

import pytest

from smcl_tune.cli import main
from tests.fixtures.ports import free_port

FORMS = (
    "the tracking URIs smcl-tune uses start with sqlite:///, postgresql://, mysql://, mssql://, http://, https:// "
    "or databricks"
)


@pytest.mark.parametrize("uri", ["nope://x", "file:///tmp/x"])
def test_a_study_files_tracking_uri_of_a_scheme_smcl_tune_cannot_use_is_refused_by_validate(
    tmp_path, tiny_study, capsys, uri
):
    study = tiny_study(tmp_path, tracking={"uri": uri})
    assert main(["validate", str(study)]) == 2
    assert capsys.readouterr().err == f"smcl-tune: {study}: tracking.uri: {FORMS}, got '{uri}'\n"


@pytest.mark.parametrize("command", [["status"], ["leaderboard", "tiny"], ["ui"]], ids=["status", "leaderboard", "ui"])
@pytest.mark.parametrize("uri", ["nope://x", "file:///tmp/x"])
def test_a_tracking_uri_option_of_a_scheme_smcl_tune_cannot_use_is_refused_before_serving(capsys, command, uri):
    assert main([*command, "--tracking-uri", uri]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"smcl-tune: --tracking-uri: {uri}: {FORMS}\n"
    assert captured.out == ""  # `ui` says nothing of serving


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["run", "q.yaml", "--address"], "--address"),
        (["status", "--tracking-uri"], "--tracking-uri"),
        (["status", "--storage"], "--storage"),
        (["leaderboard", "tiny", "--storage"], "--storage"),
        (["ui", "--tracking-uri"], "--tracking-uri"),
        (["dashboard", "tiny", "--optuna-storage"], "--optuna-storage"),
    ],
)
@pytest.mark.parametrize("value", ["", "  "], ids=["empty", "blank"])
def test_an_empty_option_is_refused_not_taken_for_its_default(capsys, command, option, value):
    assert main([*command, value]) == 2  # an unset variable: `--address "$HEAD"`
    captured = capsys.readouterr()
    assert captured.err == f"smcl-tune: {option}: empty; give a value, or leave the option out for its default\n"
    assert captured.out == ""


@pytest.mark.parametrize("field", ["uri", "experiment"])
def test_an_empty_tracking_field_is_refused_not_taken_for_its_default(tmp_path, tiny_study, capsys, field):
    study = tiny_study(tmp_path, tracking={field: ""})
    assert main(["validate", str(study)]) == 2
    assert capsys.readouterr().err == (
        f"smcl-tune: {study}: tracking.{field}: empty; leave it out (or write null) for the default, got ''\n"
    )


@pytest.mark.parametrize("port", ["99999", "0"])
@pytest.mark.parametrize("given", ["--address", "RAY_ADDRESS"])
def test_an_address_whose_port_is_out_of_range_is_refused_as_invalid_not_as_a_cluster_that_does_not_answer(
    tmp_path, tiny_study, capsys, refused_by_main, monkeypatch, given, port
):
    study = tiny_study(tmp_path)
    address = f"127.0.0.1:{port}"
    if given == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    error = refused_by_main(["run", str(study), *(["--address", address] if given == "--address" else [])], capsys)
    assert error == f"smcl-tune: {given} {address}: port {port}: a port is a number from 1 to 65535"
    assert not (tmp_path / "smcl-runs").exists()


def test_a_dashboard_over_a_damaged_optuna_file_is_refused_before_it_says_it_serves(tmp_path, capsys):
    database = tmp_path / "runs" / "lt" / "optuna.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database, " * 256)
    assert main(["dashboard", "lt", "--storage", str(tmp_path / "runs"), "--port", str(free_port())]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no "Optuna dashboard on http://..." first
    assert captured.err == (
        f"smcl-tune: {database}: study 'lt''s Optuna storage is damaged (file is not a database); nothing was "
        "changed: restore it from a backup, or run the study again with --restart to start it over\n"
    )
    assert database.read_bytes() == b"not a database, " * 256


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("validate", "study: empty; give the path of a study YAML file"),
        ("run", "study: empty; give the path of a study YAML file"),
        ("prepare", "study: empty; give the path of a study YAML file"),
        ("trial", "config: empty; give the path of a trial config YAML file"),
    ],
)
def test_an_empty_file_argument_is_named_not_read_as_the_current_folder(capsys, command, said):
    assert main([command, ""]) == 2  # it said `.: cannot read (Is a directory)`
    captured = capsys.readouterr()
    assert captured.err == f"smcl-tune: {said}\n"
    assert captured.out == ""


def test_several_mistakes_are_a_line_each_and_each_names_the_file(tmp_path, tiny_study, capsys):
    """Only the first line named the file (and smcl-tune): the next read as a stray `bar: unknown field`."""
    study = tiny_study(tmp_path)
    study.write_text(study.read_text() + "foo: 1\nbar: 2\n")
    trial = tmp_path / "trial.yaml"
    trial.write_text("training: {epochs: 1, lr: -1}\nmodel: {depth: 3}\n")
    assert main(["validate", str(study)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"smcl-tune: {study}: foo: unknown field",
        f"smcl-tune: {study}: bar: unknown field",
    ]
    assert main(["trial", str(trial)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"smcl-tune: {trial}: ") for line in lines), lines
