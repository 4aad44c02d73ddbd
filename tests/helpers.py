"""Test helpers (not fixtures): paths, example records, registry set-up."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from carnn_pyfunc.processes import BIN, child_env
from carnn_pyfunc.processes import carnn_server as serve_carnn
from carnn_pyfunc.registry.gates import Gates

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


# Small but real: a network that has learned something, trained in a few seconds.
FAST_CONFIG = {"epochs": 60, "ensemble_size": 1, "patience": 0, "seed": 7}


subprocess_env = child_env  # this environment for a child process, pointed at a store


def registry_of(client, *sources) -> str:
    """A fresh registered model whose versions 1, 2, ... are the given versions' models."""
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for source in sources:
        client.create_model_version(name, source.source, run_id=source.run_id)
    return name


@contextlib.contextmanager
def carnn_server(model_uri: str, log_path: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """A real `carnn serve` process on a free 127.0.0.1 port; yields its base URL."""
    with serve_carnn(model_uri, log_path, *args, env=env) as (port, _):
        yield f"http://127.0.0.1:{port}"


LENIENT = Gates(max_mae=50.0)  # gates that let the deliberately poor model into staging
