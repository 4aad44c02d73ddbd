"""`mlflow run .` for real (slow), and the entry points' bad-input handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from carnn_pyfunc.cli import main
from tests.helpers import ROOT, SEED_RECORD, VENV_BIN, as_frame, subprocess_env


def mlflow_run(cwd: Path, uri: str, arguments: str) -> subprocess.CompletedProcess:
    """`mlflow run` of this project in the current environment, against the store ``uri``."""
    return subprocess.run(
        [
            str(Path(VENV_BIN) / "mlflow"),
            *f"run {ROOT} --env-manager local --experiment-name carnn".split(),
            *arguments.split(),
        ],
        cwd=cwd,
        env=subprocess_env(uri),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_mlflow_run_trains_and_registers_a_working_version(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    completed = mlflow_run(
        tmp_path, uri, "-P epochs=20 -P seed=5 -P registered_model_name=carnn-mlproject"
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "models:/carnn-mlproject/1" in completed.stdout

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("carnn-mlproject", "1")
    run = client.get_run(version.run_id)
    assert run.data.params["epochs"] == "20"
    assert run.data.params["seed"] == "5"
    assert run.data.tags["mlflow.project.entryPoint"] == "main"

    script = (
        "import sys, json, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/carnn-mlproject/1')\n"
        "frame = pd.DataFrame(json.loads(sys.argv[1])).astype({"
        "c: float for c in ['cylinders','displacement','horsepower','weight','acceleration',"
        "'year','origin']})\n"
        "print(model.predict(frame)['mpg'].iloc[0])\n"
    )
    seed_json = as_frame([SEED_RECORD]).to_json(orient="records")
    out = subprocess.run(
        [sys.executable, "-c", script, seed_json],
        env=subprocess_env(uri),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert 5 < float(out.stdout.strip().splitlines()[-1]) < 40

    # The promote entry point: a 20-epoch model passes lenient gates into production.
    promoted = mlflow_run(
        tmp_path, uri, "-e promote -P name=carnn-mlproject -P max_mae=50 -P legacy_stages=true"
    )
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert "version 1: staging -> production" in promoted.stdout
    version = client.get_model_version("carnn-mlproject", "1")
    assert version.aliases == ["production"]
    assert version.current_stage == "Production"


@pytest.mark.slow
def test_mlflow_run_with_uv_builds_the_environment_from_python_env_yaml(tmp_path):
    """`mlflow run . --env-manager uv`, as README gives it: uv (a dev pin) creates a fresh
    virtualenv from python_env.yaml's pins (from the package index) and trains in it."""
    uri = f"sqlite:///{tmp_path / 'uv.db'}"
    env = subprocess_env(uri)  # .venv/bin first on PATH: the pinned uv
    completed = subprocess.run(
        [
            str(Path(VENV_BIN) / "mlflow"),
            *f"run {ROOT} --env-manager uv --experiment-name carnn".split(),
            *"-P epochs=5 -P ensemble_size=1 -P registered_model_name=carnn-uv".split(),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,  # a fresh machine downloads TensorFlow once; ~/.mlflow/envs keeps it
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "models:/carnn-uv/1" in completed.stdout
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("carnn-uv", "1").run_id)
    assert run.data.params["epochs"] == "5"
    assert run.data.tags["mlflow.project.env"] in {"uv", "virtualenv"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "epochs"),
        (["--test-size", "1.5"], "test_size"),
        (["--learning-rate", "fast"], "learning-rate"),
        (["--data-path", "/nonexistent/auto-mpg.data"], "data_path"),
    ],
)
def test_train_rejects_bad_parameters_naming_them(capsys, args, message):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_train_py_help_lists_every_parameter():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for flag in ("--epochs", "--batch-size", "--learning-rate", "--hidden-units", "--seed",
                 "--test-size", "--registered-model-name"):  # fmt: skip
        assert flag in completed.stdout
