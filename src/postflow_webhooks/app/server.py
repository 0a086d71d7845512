"""Serving the app with uvicorn on a socket we bind ourselves, within connection limits.

Binding first lets a taken port fail with a message naming the port and the
fix, instead of a traceback, and there is no window between check and use.
The connection limits (``adapters/http/connections.py``) come from the
settings; at start the open-files limit is raised as far as the system
allows, and the connection cap lowered if it would not leave enough files
for the database, the logs and the outgoing connections.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket

import attrs
import uvicorn
from starlette.applications import Starlette

from postflow_webhooks.adapters.http.connections import ConnectionLimits, protocol_for
from postflow_webhooks.app.settings import Settings

log = logging.getLogger("postflow_webhooks")

# Open files kept for everything but incoming connections: the database and its
# journal, the lock, logs, cloudflared's pipes, connections to Discord and Frame.io.
RESERVED_FILES = 100


class PortInUseError(Exception):
    """The receiver's port cannot be bound; the message says how to choose another.

    The PostFlow facade words its own fix (``webhook_port=``) from ``host``,
    ``port`` and ``reason``.
    """

    def __init__(self, host: str, port: int, reason: str, *, taken: bool) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        self.taken = taken
        if taken:
            message = (
                f"port {port} on {host} is not available ({reason}). Another program "
                f"(perhaps another receiver) is using it. Choose another port with --port "
                f"{port + 1} or POSTFLOW_PORT={port + 1}, or find the other program with: "
                f"lsof -i :{port} (or netstat -an | grep {port})"
            )
        else:
            message = f"cannot listen on {host}:{port}: {reason}"
        super().__init__(message)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or ``PortInUseError`` naming the fix."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        taken = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        raise PortInUseError(host, port, exc.strerror or str(exc), taken=taken) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The connection limits the settings ask for."""
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=settings.max_connections,
    )


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-files soft limit towards ``wanted`` (up to the hard limit).

    Returns the soft limit now in force (``wanted`` where the platform has none).
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # macOS caps it below the hard limit; keep what we have
        return soft
    return target


def fit_open_files(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits`` with the connection cap lowered to what the open-files limit can hold."""
    wanted = limits.max_connections + RESERVED_FILES
    available = raise_open_files_limit(wanted)
    if available >= wanted:
        return limits
    fitted = max(available - RESERVED_FILES, 1)
    log.warning(
        "the open-files limit is %d (the system allows no more), so at most %d connections "
        "are served instead of max_connections=%d; raise it (ulimit -n, LimitNOFILE=) to "
        "serve more",
        available,
        fitted,
        limits.max_connections,
    )
    return attrs.evolve(limits, max_connections=fitted)


def make_server(
    app: Starlette, host: str, port: int, limits: ConnectionLimits | None = None
) -> uvicorn.Server:
    """A uvicorn server for ``app`` within ``limits`` (httptools, uvloop when installed)."""
    limits = fit_open_files(limits or ConnectionLimits())
    count_refusal = getattr(app.state, "count_refusal", None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(limits, count_refusal),
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket, limits: ConnectionLimits | None = None) -> None:
    """Serve on a bound socket until SIGINT or SIGTERM; a signal is a clean stop, exit status 0.

    uvicorn handles both signals gracefully, then re-raises the one it caught
    under the handler that was there before; a no-op handler makes that
    re-raise harmless, so the process ends normally after its shutdown.
    """
    host, port = sock.getsockname()[:2]
    server = make_server(app, host, port, limits)
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    """Swallow the signal uvicorn re-raises after its graceful shutdown."""
