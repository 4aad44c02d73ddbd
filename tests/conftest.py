"""Shared fixtures: a real SQLite tracking store, one trained, registered model, a real server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = str(Path(sys.executable).parent)  # mlflow, uvicorn: the environment running the tests

# The seed API's example payload, as one dataframe_records row.
SEED_RECORD = {
    "cylinders": 8,
    "displacement": 307,
    "acceleration": 12,
    "weight": 3504,
    "horsepower": 130,
    "year": 75,
    "origin": 1,
    "name": "chevy ltd",
}


def as_frame(rows: list[dict]) -> pd.DataFrame:
    """Records as MLflow's schema wants them in-process: numbers as float64.

    (Over HTTP, MLflow casts JSON numbers to the signature's types; in-process it refuses to
    convert int64 to double, so Python callers pass floats.)
    """
    frame = pd.DataFrame(rows)
    numeric = [c for c in frame.columns if c != "name"]
    return frame.astype(dict.fromkeys(numeric, "float64"))


# Small but real: enough epochs for a network that has learned something.
FAST_CONFIG = {"epochs": 60, "patience": 0, "seed": 7}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(tracking_uri: str) -> dict[str, str]:
    env = dict(os.environ)
    for inherited in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        env.pop(inherited, None)  # set by set_experiment() in this process; not the child's
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@contextlib.contextmanager
def running_server(
    args: list[str], env: dict[str, str], log_path: Path, port: int, timeout: float = 180
) -> Iterator[str]:
    """Start a server process (own process group), wait for /ping, yield its URL, always stop it."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"server not up in {timeout}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> Iterator[str]:
    """A fresh SQLite tracking store for the whole session (artifacts beside it)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    cwd = os.getcwd()
    os.chdir(root)  # the default artifact root (./mlruns) lands in the temporary folder
    yield uri
    os.chdir(cwd)
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def trained(tracking_uri):
    """One real training run, logged and registered as a version of `carnn-test`."""
    from carnn_pyfunc.training import run_training

    config = TrainConfig(**FAST_CONFIG, registered_model_name="carnn-test")
    return config, run_training(config)


@pytest.fixture(scope="session")
def loaded_model(trained):
    _, result = trained
    return mlflow.pyfunc.load_model(result.model_uri)


@pytest.fixture(scope="session")
def auto_mpg():
    return data.load_auto_mpg()


@pytest.fixture(scope="session")
def served(trained, tracking_uri, tmp_path_factory) -> Iterator[str]:
    """A real `mlflow models serve` process on a free 127.0.0.1 port, serving the version."""
    _, result = trained
    port = free_port()
    args = [
        str(Path(VENV_BIN) / "mlflow"), "models", "serve", "-m", result.model_uri,
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running_server(args, subprocess_env(tracking_uri), log, port) as url:
        yield url
