"""Fixtures: a real SQLite tracking store, trained and registered models, a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import mlflow
import pytest

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.processes import model_server
from tests.helpers import FAST_CONFIG, carnn_server, subprocess_env


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
    from carnn_pyfunc.training.run import run_training

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


@pytest.fixture(scope="session")
def carnn_served(trained, tracking_uri, tmp_path_factory) -> Iterator[str]:
    """A real `carnn serve` process on a free 127.0.0.1 port, serving the version."""
    _, result = trained
    log = tmp_path_factory.mktemp("carnn-serve") / "serve.log"
    with carnn_server(result.model_uri, log, subprocess_env(tracking_uri)) as url:
        yield url


@pytest.fixture(scope="session")
def carnn_image(trained, tracking_uri, tmp_path_factory):
    """The project's Dockerfile built once with podman (offline) around the session's model."""
    from tests.containers import project_image

    _, result = trained
    with project_image(result.model_uri, tmp_path_factory.mktemp("image")) as image:
        yield image


# The registry tests' versions (tests/test_registry.py, tests/test_live_evidence.py): a fixture
# of module scope is made anew for each module, so neither sees the other's aliases.
@pytest.fixture(scope="module")
def client(tracking_uri):
    return mlflow.MlflowClient()


@pytest.fixture(scope="module")
def good(trained, client):
    """The session's trained version (60 epochs, seed 7)."""
    _, result = trained
    return client.get_model_version("carnn-test", result.registered_version)


@pytest.fixture(scope="module")
def poor(client):
    """A real but barely trained version with the same seed, so the same held-out cars."""
    from carnn_pyfunc.training.run import run_training

    result = run_training(
        TrainConfig(epochs=3, patience=0, seed=7, ensemble_size=1, registered_model_name="poor")
    )
    return client.get_model_version("poor", result.registered_version)
