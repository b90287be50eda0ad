"""The address a server command (`ui`, `dashboard`) is to listen on, checked before it starts: a
port in use ended `ui` with the server's error among its log lines and exit 0, and `dashboard`
with a traceback."""

from __future__ import annotations

import errno
import socket

from smcl_tune.errors import ConfigError


def check_address_free(host: str, port: int) -> None:
    """ConfigError naming --port (or --host) unless a server can listen at host:port now."""
    try:
        socket.create_server((host, port)).close()  # SO_REUSEADDR, as the servers set it
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--port {port}: {host}:{port} is in use (another server listens there); choose another with --port"
            ) from None
        raise ConfigError(f"--host {host}: cannot listen there ({error.strerror or error})") from None
