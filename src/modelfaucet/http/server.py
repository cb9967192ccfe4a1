"""Serving the app with uvicorn on a socket bound beforehand, and stopping it gracefully.

``modelfaucet serve`` binds the listening socket itself (:func:`listen`) before it writes the
demo data or says "listening": a port already taken is refused first, with nothing done.

Stopping: on SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in
flight finish (up to :data:`SHUTDOWN_GRACE_SECONDS`), then runs the app's lifespan shutdown,
which drains the usage posting engine (:meth:`PostingEngine.close`): every usage event a
caller was answered for is in the database before the process ends. uvicorn then re-raises
the signal to end the process "as the signal would have"; the handlers installed here turn
that into a normal return, so a drained stop exits 0. With several workers, uvicorn's
supervisor stops each worker the same way and returns.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType

import uvicorn

from ..config import Settings
from .app import create_app

# Longer than any request takes; shorter than an orchestrator's kill timeout should be set to.
SHUTDOWN_GRACE_SECONDS = 25
ASGI_IMPORT_PATH = "modelfaucet.http.asgi:app"  # each worker process builds its own app


class ListenError(Exception):
    """The address cannot be listened on (taken, not local, not permitted)."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (uvicorn listens on it); ListenError if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # worker processes serve the same socket
    return sock


def run(settings: Settings, sock: socket.socket, *, workers: int) -> bool:
    """Serve until stopped; False if the app failed to start (its lifespan refused)."""
    config = uvicorn.Config(
        ASGI_IMPORT_PATH if workers > 1 else create_app(settings),
        workers=workers,
        log_config=None,  # uvicorn's records go to our handler, in our format
        log_level="warning",
        access_log=False,  # the edge middleware logs one line per request
        # X-Forwarded-For/-Proto only from the configured proxies; uvicorn would otherwise
        # believe them from 127.0.0.1 by default, letting any local caller pick its address.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=list(settings.forwarded_allow_ips) or None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    if workers > 1:
        _supervise(config, sock)
        return True
    server = uvicorn.Server(config)
    _stop_on_signals(server)
    server.run(sockets=[sock])
    return server.started


def _supervise(config: uvicorn.Config, sock: socket.socket) -> None:
    """Several worker processes on one socket; SIGTERM stops each gracefully."""
    from uvicorn.supervisors import Multiprocess

    try:
        supervisor = Multiprocess(config, sockets=[sock])
    except TypeError:  # older uvicorn releases also want the target
        supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])  # type: ignore[call-arg]
    supervisor.run()


def _stop_on_signals(server: uvicorn.Server) -> None:
    """Handlers for the moments uvicorn's own are not installed: before it serves, a signal
    asks the server to stop; after its drain, the signal it re-raises ends nothing more, so
    the process returns normally (exit 0) instead of dying by that signal."""

    def stop(_signal: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stop)
