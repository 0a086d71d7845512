"""Serving the app with uvicorn on a socket we bind ourselves.

Binding first lets a taken port fail with a message naming the port and the
fix, instead of a traceback, and there is no window between check and use.
"""

from __future__ import annotations

import errno
import signal
import socket

import uvicorn
from starlette.applications import Starlette


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


def make_server(app: Starlette, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app`` (uvloop and httptools when installed), no access log."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve on a bound socket until SIGINT or SIGTERM; a signal is a clean stop, exit status 0.

    uvicorn handles both signals gracefully, then re-raises the one it caught
    under the handler that was there before; a no-op handler makes that
    re-raise harmless, so the process ends normally after its shutdown.
    """
    host, port = sock.getsockname()[:2]
    server = make_server(app, host, port)
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    """Swallow the signal uvicorn re-raises after its graceful shutdown."""
