"""Run `mlflow models serve` as a child process on 127.0.0.1: start, wait for /ping, always stop.

Used by the tests and the benchmark (and by anyone scripting a local endpoint).
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


@contextlib.contextmanager
def model_server(
    model_uri: str,
    log_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    timeout_s: float = 180,
) -> Iterator[tuple[int, float]]:
    """Serve ``model_uri``; yields (port, seconds from start to the first good /ping)."""
    port = free_port()
    cmd = [
        str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers),
    ]  # fmt: skip
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=server_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while not _pings(port):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"server not up in {timeout_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.05)
        yield port, time.perf_counter() - start
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _pings(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]
