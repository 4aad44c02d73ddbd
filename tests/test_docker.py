"""The Dockerfile, tested without a Docker engine (none on these machines).

Its install and start steps are performed for real outside Docker: a fresh virtualenv stands for
the image's Python, a temporary directory for its file system; the exported production model is
copied where the Dockerfile copies it, the Dockerfile's own RUN pip step installs into the
virtualenv, and its CMD serves over HTTP. Also: `mlflow models generate-dockerfile` produces a
build context for the production model.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests
import yaml

from carnn_pyfunc import cli
from carnn_pyfunc.processes import free_port
from carnn_pyfunc.registry.export import EXPORT_INFO
from carnn_pyfunc.registry.gates import Gates
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.versions import model_requirements
from tests.helpers import ROOT, SEED_RECORD, as_frame, registry_of, subprocess_env

pytestmark = pytest.mark.slow

DOCKERFILE = ROOT / "Dockerfile"
# The model's pinned wheels, downloaded by `make dev` (the tests never use the network).
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    steps, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, rest = pending.strip().partition(" ")
        steps.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return steps


def env_pairs(arguments: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(arguments))


@pytest.fixture(scope="module")
def production(trained, tracking_uri) -> str:
    """A registered model whose production alias points at the session's trained model."""
    _, result = trained
    client = mlflow.MlflowClient()
    name = registry_of(client, client.get_model_version("carnn-test", result.registered_version))
    Promoter(name, gates=Gates(max_mae=50)).promote("1", "auto")
    return name


def test_dockerfile_declares_a_non_root_image_serving_on_8080_with_a_healthcheck():
    steps = instructions()
    keywords = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    env = {k: v for kw, args in steps if kw == "ENV" for k, v in env_pairs(args).items()}
    assert env["CARNN_HOST"] == "0.0.0.0"
    assert env["CARNN_PORT"] == "8080"
    assert env["CARNN_WORKERS"].isdigit()  # the worker count, overridable at run time
    assert ("EXPOSE", "8080") in steps
    user = [args for kw, args in steps if kw == "USER"]
    assert len(user) == 1
    assert user[0].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    healthcheck = next(args for kw, args in steps if kw == "HEALTHCHECK")
    # GET /ping on CARNN_PORT (tests/test_kubernetes.py checks the probe itself)
    probe = ["python", "-m", "carnn_pyfunc.healthcheck"]
    assert json.loads(healthcheck.split(" CMD ", 1)[1]) == probe
    cmd = json.loads(next(args for kw, args in steps if kw == "CMD"))
    assert cmd[:2] == ["carnn", "serve"]


def test_dockerfile_steps_outside_docker_serve_the_production_model(
    production, tracking_uri, tmp_path, loaded_model
):
    # `carnn export` writes the build context's model directory.
    context = tmp_path / "context"
    assert cli.main(["export", "--model-uri", f"models:/{production}@production",
                     "--output", str(context / "build" / "model")]) == 0  # fmt: skip
    info = json.loads((context / "build" / "model" / EXPORT_INFO).read_text())
    assert (info["name"], info["version"]) == (production, "1")
    for admitted in ("pyproject.toml", "README.md"):  # what .dockerignore lets in besides
        shutil.copy2(ROOT / admitted, context / admitted)
    shutil.copytree(ROOT / "carnn_pyfunc", context / "carnn_pyfunc",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip

    image = tmp_path / "image"  # the image's file system root
    venv = image / "venv"  # the image's Python: a fresh virtualenv, nothing installed yet
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    path = f"{venv / 'bin'}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin"
    assert any(WHEELHOUSE.glob("ai_edge_litert-*.whl")), f"no wheelhouse at {WHEELHOUSE}: make dev"
    env = {
        "PATH": path,
        "HOME": str(tmp_path),
        # Offline, like a build behind a package mirror: pip reads only the wheelhouse.
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }
    workdir, performed, skipped = image, [], []
    healthcheck = cmd = None

    def in_image(argument: str) -> str:
        return str(image) + argument if argument.startswith("/") else argument

    for keyword, arguments in instructions():
        if keyword == "ENV":
            env.update(env_pairs(arguments))
        elif keyword == "WORKDIR":
            workdir = Path(in_image(arguments))
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":  # sources ... dest (a dest ending in / is a directory)
            *sources, target = arguments.split()
            for name in sources:
                source, dest = context / name, workdir / target
                if target.endswith("/") and not source.is_dir():
                    dest = dest / source.name
                if source.is_dir():
                    shutil.copytree(source, dest, dirs_exist_ok=True)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, dest)
        elif keyword == "RUN" and arguments.startswith("pip install"):
            subprocess.run(arguments, shell=True, cwd=workdir, env=env, check=True)
            performed.append(arguments)
        elif keyword == "RUN" and arguments.startswith("groupadd"):
            skipped.append(arguments)  # creating the image's user needs root: image-only
        elif keyword == "RUN":
            pytest.fail(f"a RUN step this test does not know how to perform: {arguments}")
        elif keyword == "HEALTHCHECK":
            healthcheck = json.loads(arguments.split(" CMD ", 1)[1])
        elif keyword == "CMD":
            cmd = [in_image(a) for a in json.loads(arguments)]
    assert [step.split(" && ")[0] for step in performed] == [
        "pip install --no-compile --requirement model/requirements.txt",  # then what serving
        "pip install --no-compile ./src",  # never loads is removed, in the same step
    ]
    assert len(skipped) == 1
    installed = subprocess.run([str(venv / "bin" / "pip"), "freeze"], env=env, check=True,
                               capture_output=True, text=True).stdout  # fmt: skip
    assert "carnn @ file" in installed  # the package, for `carnn serve`, without its extras
    for training_only in ("optuna", "tensorflow", "keras", "scikit-learn"):
        assert f"\n{training_only}==" not in installed  # the train extra stays out of the image

    # `docker run -e CARNN_HOST=... -e CARNN_PORT=...`: tests listen on 127.0.0.1 only.
    port = free_port()
    env.update({"CARNN_HOST": "127.0.0.1", "CARNN_PORT": str(port)})
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while subprocess.run(healthcheck, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the HEALTHCHECK never passed"
            time.sleep(1)
        response = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": [SEED_RECORD]},
            timeout=60,
        )
        bad = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": [{**SEED_RECORD, "weight": -1}]},
            timeout=60,
        )
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()
    assert response.status_code == 200, response.text
    expected = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert response.json()["predictions"][0]["mpg"] == pytest.approx(expected, rel=1e-6)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "weight"
    assert "stack_trace" not in bad.json()


def test_mlflow_generates_a_build_context_for_the_production_model(production, tracking_uri,
                                                                   tmp_path):  # fmt: skip
    out = tmp_path / "generated"
    subprocess.run(
        [sys.executable, "-m", "mlflow", "models", "generate-dockerfile",
         "-m", f"models:/{production}@production", "-d", str(out), "--env-manager", "local"],
        env=subprocess_env(tracking_uri), check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.startswith("# Build an image that can serve mlflow models.")
    assert "COPY model_dir /opt/ml/model" in dockerfile
    mlmodel = yaml.safe_load((out / "model_dir" / "MLmodel").read_text())
    version = mlflow.MlflowClient().get_model_version_by_alias(production, "production")
    assert mlmodel["run_id"] == version.run_id
    assert f"models:/{mlmodel['model_id']}" == version.source
    requirements = (out / "model_dir" / "requirements.txt").read_text().split()
    assert set(model_requirements()) <= set(requirements)  # LiteRT, no TensorFlow
    assert not [r for r in requirements if r.startswith(("tensorflow", "keras"))]
