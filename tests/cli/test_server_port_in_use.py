"""`smcl-tune ui` and `dashboard` on a port another server holds: one line naming --port and exit 2,
before either prints that it serves (ui printed its banner and exited 0 past the server's error,
dashboard a traceback)."""

import socket
import subprocess
import sys

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.cli.server_address import check_address_free, server_url, warn_unless_loopback
from smcl_tune.errors import ConfigError
from smcl_tune.store.paths import default_tracking_uri, optuna_database
from tests.fixtures.ports import free_port


@pytest.fixture
def held_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def _smcl_tune(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", *arguments], capture_output=True, text=True, timeout=120
    )


def test_ui_on_a_port_in_use_is_refused_naming_it(tmp_path, held_port):
    MlflowClient(default_tracking_uri(tmp_path)).search_experiments()  # a store, as a study leaves one
    done = _smcl_tune("ui", "--storage", str(tmp_path), "--port", str(held_port))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"smcl-tune: --port {held_port}: 127.0.0.1:{held_port} is in use (another server listens there); "
        "choose another with --port"
    )


def test_dashboard_on_a_port_in_use_is_refused_naming_it(tmp_path, held_port):
    database = optuna_database(tmp_path, "tiny")
    database.parent.mkdir()
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}")
    done = _smcl_tune("dashboard", "tiny", "--storage", str(tmp_path), "--port", str(held_port))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith(f"smcl-tune: --port {held_port}: 127.0.0.1:{held_port} is in use")
    assert "Traceback" not in done.stderr


def test_a_port_out_of_range_is_refused_naming_it(tmp_path):
    MlflowClient(default_tracking_uri(tmp_path)).search_experiments()
    database = optuna_database(tmp_path, "tiny")
    database.parent.mkdir()
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}")
    for command in (["ui"], ["dashboard", "tiny"]):  # was a traceback
        done = _smcl_tune(*command, "--storage", str(tmp_path), "--port", "99999")
        assert done.returncode == 2 and done.stdout == "", command
        assert done.stderr.strip() == "smcl-tune: --port 99999: a port is a number from 1 to 65535", command
    for port in (0, -1):  # a server at a URL of port 0; -1 blamed --host
        with pytest.raises(ConfigError, match=rf"^--port {port}: a port is a number from 1 to 65535$"):
            check_address_free("127.0.0.1", port)


def test_an_ipv6_host_is_checked_on_ipv6_and_linked_in_brackets():
    with socket.create_server(("::", 0), family=socket.AF_INET6) as held:
        port = held.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^--port {port}: :::{port} is in use"):
            check_address_free("::", port)
    check_address_free("::", port)  # free again: an IPv6 host is not refused as an IPv4 address
    assert server_url("::1", 5000) == "http://[::1]:5000" and server_url("127.0.0.1", 5000) == "http://127.0.0.1:5000"


def test_a_dashboard_other_machines_can_reach_says_so_and_a_loopback_one_does_not(tmp_path, capsys):
    database = optuna_database(tmp_path, "tiny")
    database.parent.mkdir()
    optuna.create_study(study_name="tiny", storage=f"sqlite:///{database}")
    port = free_port()  # free on every interface, where the server binds it
    command = ["dashboard", "tiny", "--storage", str(tmp_path), "--host", "0.0.0.0", "--port", str(port)]
    serving = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = serving.stdout.readline()
        assert first_line.startswith(f"Optuna dashboard on http://0.0.0.0:{port} "), (
            first_line or f"exit {serving.wait(timeout=60)}: {serving.stderr.read()}"
        )
    finally:
        serving.terminate()
        serving.wait(timeout=60)
    warning = serving.stderr.read().splitlines()[0]
    assert warning == (
        "smcl-tune: warning: --host 0.0.0.0: other machines can reach this server, and it asks for no password; "
        "keep it on 127.0.0.1 and reach it through an SSH tunnel (ssh -L) unless a firewall guards it"
    )
    for loopback in ("127.0.0.1", "localhost", "::1"):
        warn_unless_loopback(loopback)
    assert capsys.readouterr().err == ""
