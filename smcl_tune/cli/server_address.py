"""The address a server command (`ui`, `dashboard`) is to listen on, checked before it starts: a
port in use ended `ui` with the server's error among its log lines and exit 0, and `dashboard`
with a traceback."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from smcl_tune.errors import ConfigError


def check_address_free(host: str, port: int) -> None:
    """ConfigError naming --port (or --host) unless a server can listen at host:port now; a host
    other machines can reach is said so (warn_unless_loopback)."""
    if not 1 <= port <= 65535:  # 0 would let the system choose a port the printed address could not name
        raise ConfigError(f"--port {port}: a port is a number from 1 to 65535")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]  # IPv6 for "::"
        socket.create_server((host, port), family=family).close()  # SO_REUSEADDR, as the servers set it
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--port {port}: {host}:{port} is in use (another server listens there); choose another with --port"
            ) from None
        if error.errno == errno.EACCES:
            raise ConfigError(f"--port {port}: this user may not listen on it (ports below 1024 need root)") from None
        raise ConfigError(f"--host {host}: cannot listen there ({error.strerror or error})") from None
    warn_unless_loopback(host)


def warn_unless_loopback(host: str) -> None:
    """Says so on stderr when --host lets other machines reach a server that asks no password."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError:
        return  # a host that does not resolve: check_address_free refuses it
    if all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        return
    print(
        f"smcl-tune: warning: --host {host}: other machines can reach this server, and it asks for no "
        "password; keep it on 127.0.0.1 and reach it through an SSH tunnel (ssh -L) unless a firewall guards it",
        file=sys.stderr,
        flush=True,
    )


def server_url(host: str, port: int) -> str:
    """http://host:port, an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
