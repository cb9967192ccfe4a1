"""Serving the app with uvicorn on a socket bound beforehand, and stopping it gracefully.

``modelfaucet serve`` binds the listening socket itself (:func:`listen`) before it writes the
demo data or says "listening": a port already taken is refused first, with nothing done.

Stopping: on SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets the requests in
flight finish (up to :data:`SHUTDOWN_GRACE_SECONDS`), then runs the app's lifespan shutdown,
which drains the usage posting engine (:meth:`PostingEngine.close`): every usage event a
caller was answered for is in the database before the process ends. uvicorn then re-raises
the signal to end the process "as the signal would have"; the handlers installed here turn
that into a normal return, so a drained stop exits 0.

Several workers (``--workers N`` / ``MODELFAUCET_WORKERS``): each worker process gets its
*own* listening socket on the same address, opened with ``SO_REUSEPORT``
(:func:`listen_all`), so the kernel spreads new connections evenly over the workers. On one
shared socket the first worker to wake accepts a whole burst of connections — with 32
keep-alive clients one worker could end up serving all of them while the other idled.
The sockets belong to the supervising parent (:func:`run`): a worker that dies is started
again on its slot's socket and the connections queued there wait for it. SIGTERM or SIGINT
to the parent stops every worker gracefully (each drains its requests and usage queue) and
the parent returns when all have exited. Where ``SO_REUSEPORT`` does not exist the workers
share one socket, as before.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from ..config import Settings
from .app import create_app

# Longer than any request takes; shorter than an orchestrator's kill timeout should be set to.
SHUTDOWN_GRACE_SECONDS = 25
ASGI_IMPORT_PATH = "modelfaucet.http.asgi:app"  # each worker process builds its own app
LISTEN_BACKLOG = 2048
# A worker that keeps dying is restarted at most this often (seconds).
RESTART_PAUSE_SECONDS = 1.0

log = logging.getLogger("modelfaucet")


def freeze_startup_heap() -> None:
    """Take every object alive now out of the garbage collector's full collections
    (:func:`gc.freeze`), once a serving process has built its app.

    A process holds several hundred thousand objects from its imports and its app (the
    Stripe library alone brings thousands of classes), none of them ever garbage, and each
    full collection walked all of them: 80–90 ms with every request of the process stopped,
    a few times a minute under load (B2, one API process: p99 110 ms against a p50 of 17 ms).
    After the freeze a full collection takes about 2 ms. Objects made later are collected
    as before; a frozen object is still freed by its reference count, only a cycle among
    startup objects would stay. Serving processes only: a test process builds many apps,
    and freezing each would keep their cycles alive."""
    gc.collect()
    gc.freeze()


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


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listen_all(host: str, port: int, workers: int) -> list[socket.socket]:
    """One socket for one worker; ``workers`` sockets sharing ``host:port`` by SO_REUSEPORT.

    The address is first bound once without SO_REUSEPORT, so a port held by anything else —
    another ModelFaucet started with several workers included — is refused (ListenError)
    rather than joined. Sockets are listening when returned.
    """
    probe = listen(host, port)
    if workers <= 1 or not reuse_port_supported():
        return [probe]
    address, family = probe.getsockname(), probe.family  # the actual port, should ``port`` be 0
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sock = socket.socket(family=family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def run(
    settings: Settings,
    sockets: socket.socket | list[socket.socket],
    *,
    workers: int,
    app: str = ASGI_IMPORT_PATH,
    factory: bool = False,
) -> bool:
    """Serve until stopped; False if the app failed to start (its lifespan refused).

    ``sockets``: from :func:`listen_all` (one per worker) or one socket all workers share.
    ``app``: the import path each worker process builds its app from.
    """
    sockets = sockets if isinstance(sockets, list) else [sockets]
    served: str | FastAPI = app
    if workers == 1:
        served = create_app(settings)
        freeze_startup_heap()
    config = uvicorn.Config(
        served,
        factory=factory and workers > 1,
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
        slots = sockets if len(sockets) == workers else [sockets] * workers
        return _Supervisor(config, [s if isinstance(s, list) else [s] for s in slots]).run()
    server = uvicorn.Server(config)
    _stop_on_signals(server)
    server.run(sockets=sockets)
    return server.started


class _Supervisor:
    """Worker processes, one per slot, each serving its slot's sockets; restarted if one dies.

    SIGTERM/SIGINT: every worker gets SIGTERM (uvicorn's graceful stop: no new connections,
    requests in flight finished, lifespan shutdown drains the usage queue), then is joined.
    """

    def __init__(self, config: uvicorn.Config, slots: list[list[socket.socket]]) -> None:
        self.config = config
        self.slots = slots
        self.stopping = threading.Event()

    def _start(self, sockets: list[socket.socket]) -> BaseProcess:
        from uvicorn._subprocess import get_subprocess

        process = get_subprocess(self.config, target=uvicorn.Server(self.config).run, sockets=sockets)
        process.start()
        return process

    def run(self) -> bool:
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, lambda _signal, _frame: self.stopping.set())
        processes = [self._start(sockets) for sockets in self.slots]
        log.info("serving with %d worker processes: %s", len(processes), [p.pid for p in processes])
        started = True
        while not self.stopping.wait(RESTART_PAUSE_SECONDS):
            for slot, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker process %s could not start; stopping the others", process.pid)
                    started = False
                    self.stopping.set()
                    break
                log.warning("worker process %s exited (%s); starting another", process.pid, process.exitcode)
                processes[slot] = self._start(self.slots[slot])
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join()
        return started


def _stop_on_signals(server: uvicorn.Server) -> None:
    """Handlers for the moments uvicorn's own are not installed: before it serves, a signal
    asks the server to stop; after its drain, the signal it re-raises ends nothing more, so
    the process returns normally (exit 0) instead of dying by that signal."""

    def stop(_signal: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stop)
