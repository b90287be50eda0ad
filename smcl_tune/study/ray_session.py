"""The Ray a study runs on: a cluster's at an address, or a new local one of the run's own, its
token kept private."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import ray

from smcl_tune.errors import ConfigError, first_line
from smcl_tune.signal_handlers import handler_kept
from smcl_tune.study.worker_logging import worker_log_level

log = logging.getLogger(__name__)

TOKEN_SETUP_LOGGER = "ray._private.authentication.authentication_token_setup"  # its "token auth is enabled" warning
# Ray starts one idle Python worker per CPU with the node and the first driver, for tasks without a
# runtime environment; Ray Tune gives every trial actor one (its env_vars), so a trial never takes an
# idle worker: each would only spend its start-up (about 0.5 CPU-s, and memory) for nothing. The
# fused groups' directory and hand-out actors (study/fused_groups.py) could take one; they start
# their worker when made instead (under a second, once per study or group).
NO_IDLE_WORKERS = {"enable_worker_prestart": False, "prestart_worker_first_driver": False}
# A local Ray's GCS never comes back (it keeps no state to restart from), yet the driver waits 60 s
# (Ray's default) for it before ending: after a SIGTERM to the whole process group (`timeout 60
# smcl-tune run`, a service manager's stop), which kills the local Ray too, the run took a minute to
# exit. Waiting a few seconds still rides out a slow GCS: the wait counts from a broken connection.
LOCAL_GCS_GONE_S = 5
GCS_GONE_SETTING = "gcs_rpc_server_reconnect_timeout_s"


def _local_ray_config() -> dict:
    """The local Ray's system config; a user's own RAY_gcs_rpc_server_reconnect_timeout_s is kept."""
    if f"RAY_{GCS_GONE_SETTING}" in os.environ:
        return dict(NO_IDLE_WORKERS)
    return {**NO_IDLE_WORKERS, GCS_GONE_SETTING: LOCAL_GCS_GONE_S}


AWS_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")
CONNECT_TIMEOUT_S = 5.0  # a host that drops packets rather than refusing them


def cluster_address(address: str | None) -> str | None:
    return address or os.environ.get("RAY_ADDRESS")


def check_cluster_answers(address: str, field: str) -> None:
    """A Ray cluster listens at `address` (ConfigError, before anything starts): given one that
    nothing answers, ray.init retries for minutes (here still after 2, in CI past 300 s), printing a
    warning every few seconds. A process already connected to Ray keeps it (init_ray): only the
    address's form is checked."""
    if address == "auto" and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]  # what ray.init takes for "auto"
    scheme = address.rpartition("://")[0]
    if scheme in ("http", "https"):
        raise ConfigError(
            f"{field} {address}: that is a dashboard's address (for `ray job submit`); "
            "a study joins the cluster at its GCS address, HOST:PORT (e.g. 10.0.0.5:6379)"
        )
    if scheme == "ray":
        # Under Ray Client, Ray Tune runs the Tuner's fit on the cluster: the study's searcher, stores,
        # MLflow writes and safeguards would run there, on paths named on this machine.
        raise ConfigError(
            f"{field} {address}: that is a Ray Client address, which a study cannot run through; "
            "give the cluster's GCS address, HOST:PORT (e.g. 10.0.0.5:6379), from a machine of the "
            "cluster, or submit the study with `ray job submit`"
        )
    if scheme:
        return  # another client Ray offers through a module: ray.init says what it makes of it
    if address not in ("auto", "local"):
        _host_and_port(address, address, field)  # before Ray, which logs a traceback for ":6379"
    if ray.is_initialized():
        return
    try:
        # What ray.init connects to: "auto" is the last `ray start` on this machine (its file in
        # Ray's temp folder), and a loopback host becomes this machine's address.
        target = ray._private.services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError, OSError) as error:
        raise ConfigError(f"{field} {address}: {first_line(error)}") from None
    if target is None:  # "local": a Ray of this run's own
        return
    host, port = _host_and_port(target, address, field)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        seen = "" if target == address else f" (reached as {target})"
        raise ConfigError(
            f"{field} {address}: no Ray cluster answers there{seen}: {error.strerror or error}; "
            "start one (ray start --head) or give the address `ray start` printed"
        ) from None


def connection_reason(cause: BaseException) -> str:
    """Why Ray could not connect, in a line: its message's first line, or, where the message holds a
    traceback (Ray's "Last connection error: Traceback ..."), the exception it ends with, such as
    "ray.exceptions.AuthenticationError: ... InvalidAuthToken ..." for a wrong token."""
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    if any(line.endswith("Traceback (most recent call last):") for line in lines):
        return lines[-1]
    return first_line(cause)


def _host_and_port(target: str, address: str, field: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host.strip("[]") or not port.isdigit():
        raise ConfigError(f"{field} {address}: not HOST:PORT (a Ray cluster's address, e.g. 10.0.0.5:6379)")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"{field} {address}: port {port}: a port is a number from 1 to 65535")
    return host.strip("[]"), int(port)


def init_ray(address: str | None, log_level: str = "INFO", field: str = "--address") -> bool:
    """Joins the cluster at `address` (given as `field`), or starts a local Ray of this process's
    own; False when this process was connected to a Ray already (which it keeps)."""
    if ray.is_initialized():
        return False
    if address:
        log.info("joining the Ray cluster at %s", address)
        _hand_cloud_keys_to_trials(True)  # a cluster's workers have the driver's keys only through Ray
        try:
            with _keeping_sigterm():
                ray.init(address=address, log_to_driver=True, logging_level=log_level)
        except ConnectionError as error:  # Ray's one message for any failure; its reason is the cause
            reason = f" ({connection_reason(error.__cause__)})" if error.__cause__ is not None else ""
            raise ConfigError(
                f"{field} {address}: {first_line(error)}{reason}; check the address (`ray start --head` prints "
                "it) and, for a cluster with token auth, RAY_AUTH_MODE=token and its token"
            ) from None
        return True
    # Ray's servers listen on every interface (it offers no setting to keep them on the loopback), so
    # the local Ray requires its token (RAY_AUTH_MODE unset: Ray's default), and its token file is
    # made this user's alone. That is smcl-tune's choice for the Ray it starts: Ray's warning that it
    # chose token mode is not shown (a cluster's, when joining one, is).
    token_mode = os.environ.get("RAY_AUTH_MODE", "token").lower() == "token"
    if not token_mode:
        log.warning(
            "RAY_AUTH_MODE=%s: the local Ray accepts any client that can reach this machine's ports",
            os.environ["RAY_AUTH_MODE"],
        )
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    # Ray writes a new token with the default umask (world-readable until make_private below): in a
    # folder of its owner's only, no one else can read it meanwhile
    if token_mode:
        with contextlib.suppress(OSError):  # a home folder that cannot be written: Ray says so itself
            token.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # address="local": a new Ray of this run's own. Without it, ray.init() joins the last Ray that
    # `ray start` (or a test's cluster) left on this machine, whose CPUs may all be taken.
    with _quiet(TOKEN_SETUP_LOGGER), worker_log_level(log_level), _keeping_sigterm():
        ray.init(
            address="local",
            include_dashboard=False,
            log_to_driver=True,
            logging_level=log_level,
            _system_config=_local_ray_config(),
        )
    make_private(token)
    _hand_cloud_keys_to_trials(False)
    return True


def _hand_cloud_keys_to_trials(through_ray: bool) -> None:
    """Whether Ray Tune gives each trial actor the driver's AWS keys as its runtime environment,
    which Ray's runtime-env agent logs in plain text (a log every user of the machine can read). A
    local Ray's workers inherit the driver's environment, keys included: they need no copy. Set
    for each Ray this process starts or joins: the setting is Ray Tune's, one for the process."""
    from ray.tune.execution import class_cache

    if through_ray:
        class_cache.ENV_VARS_TO_PROPAGATE.update(AWS_KEY_VARIABLES)
    else:
        class_cache.ENV_VARS_TO_PROPAGATE.difference_update(AWS_KEY_VARIABLES)


def leave_ray() -> None:
    """Disconnects from the cluster, or stops the local Ray this process started."""
    with _keeping_sigterm():
        ray.shutdown()


def _keeping_sigterm() -> AbstractContextManager[None]:
    """The SIGTERM handler smcl-tune set (SIGTERM as Ctrl-C, cli/interruption.py) kept through Ray's
    calls, which put their own in (`sys.exit(15)`: no resume line, no clean-up) or leave none."""
    return handler_kept(signal.SIGTERM)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The logger `name` says nothing below an error while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def make_private(path: Path) -> None:
    """Readable and writable by its owner only (Ray writes its token with the default umask)."""
    if path.is_file() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
        log.info("%s: made readable by its owner only", path)
