"""Run the service on uvicorn: one worker in this process, or N worker processes.

With several workers, uvicorn's supervisor hands each worker a listening socket it built with
protocol number 0, so asyncio never sets TCP_NODELAY on accepted connections and a keep-alive
client waits ~40 ms for a delayed ACK on every request (uvicorn issue #3149). We build the
listening socket with IPPROTO_TCP ourselves and give it to the same supervisor.
"""

from __future__ import annotations

import os
import socket
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from carnn_pyfunc.serving.metrics import MULTIPROCESS_DIR
from carnn_pyfunc.serving.settings import Settings

APP_FACTORY = "carnn_pyfunc.serving.app:app_from_env"


def run(settings: Settings, *, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests are answered before the process exits."""
    os.environ.update(settings.to_env())  # the workers (spawned processes) read it
    if workers > 1:
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="carnn-metrics-")
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        timeout_graceful_shutdown=settings.timeout_s + 5,
        log_level="info",
    )
    if workers == 1:
        uvicorn.Server(config).run()  # loads the model, then listens
        return
    listener = config.bind_socket()
    listener = socket.socket(
        listener.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=listener.detach()
    )
    Multiprocess(config, sockets=[listener]).run()
