"""Shared fixtures: a real SQLite tracking store, one trained, registered model, a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.server import BIN, child_env, model_server

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = str(BIN)  # mlflow, uvicorn: the environment running the tests

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


subprocess_env = child_env  # this environment for a child process, pointed at a store


def registry_of(client, *sources) -> str:
    """A fresh registered model whose versions 1, 2, ... are the given versions' models."""
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for source in sources:
        client.create_model_version(name, source.source, run_id=source.run_id)
    return name


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
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with model_server(result.model_uri, log, env=subprocess_env(tracking_uri)) as (port, _):
        yield f"http://127.0.0.1:{port}"
