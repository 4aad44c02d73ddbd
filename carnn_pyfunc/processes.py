"""Child processes of ours: their environment, and HTTP servers on 127.0.0.1 (``mlflow models
serve``, ``carnn serve``) that are started, waited for (first good ``/ping``) and always stopped.

Used by the registry's fresh-process check, the tests and the benchmark.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent  # mlflow and uvicorn of the running environment


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the child: this environment's bin first on PATH (uvicorn)."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def child_env(tracking_uri: str) -> dict[str, str]:
    """This environment for a child process of ours, pointed at ``tracking_uri``."""
    env = server_env()
    for inherited in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        env.pop(inherited, None)  # set by set_experiment()/start_run() here; not the child's
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


@dataclass(frozen=True)
class Started:
    process: subprocess.Popen
    startup_s: float  # from start to the first good /ping


@contextlib.contextmanager
def http_server(
    command: list[str],
    port: int,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Iterator[Started]:
    """Run ``command`` (a server listening on 127.0.0.1:``port``) until the block ends; yields
    the process and the seconds from start to its first good /ping. Stopped with SIGTERM
    (SIGKILL after 20 s)."""
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, env=server_env(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        while not _pings(port):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"server not up in {timeout_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.05)
        yield Started(proc, time.perf_counter() - start)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def model_server(
    model_uri: str,
    log_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Iterator[tuple[int, float]]:
    """``mlflow models serve`` of ``model_uri``; yields (port, seconds to the first good /ping)."""
    port = free_port()
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with http_server(command, port, log_path, env=env, timeout_s=timeout_s) as started:
        yield port, started.startup_s


def _pings(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def carnn_server(
    model_uri: str,
    log_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Iterator[tuple[int, float]]:
    """``carnn serve`` of ``model_uri`` (extra flags in ``args``); yields (port, seconds to the
    first good /ping)."""
    port = free_port()
    command = [str(BIN / "carnn"), "serve", "--model-uri", model_uri, "--port", str(port), *args]
    with http_server(command, port, log_path, env=env, timeout_s=timeout_s) as started:
        yield port, started.startup_s
