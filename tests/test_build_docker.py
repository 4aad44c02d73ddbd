"""`mlflow models build-docker` for the production model, built for real through podman's
Docker-compatible socket (``podman system service`` + DOCKER_HOST, the docker client), then run
and asked from the host through the published port.

MLflow's Dockerfile (``--env-manager local``) starts from ``python:<the model's Python>-slim``,
apt-installs nginx and pip-installs mlflow, the model's requirements and gunicorn. Here no
registry and no index are used: the base is a local stand-in made by ``python -m tests.containers
provision`` with nginx installed, no package sources and a wheelhouse inside (test-only; README
gives the commands for a machine with a registry).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid

import pytest
import requests

from tests import containers
from tests.helpers import SEED_RECORD, as_frame, subprocess_env

pytestmark = pytest.mark.slow


def test_mlflow_build_docker_through_the_podman_socket_serves_the_model(
    trained, tracking_uri, loaded_model, tmp_path
):
    _, result = trained
    assert shutil.which("docker"), "no docker client (.ci/run installs docker.io)"
    base = containers.mlflow_base_tag()
    containers.require_base(base)
    name = f"carnn-mlflow-test-{uuid.uuid4().hex[:8]}"
    with containers.docker_socket(tmp_path) as docker_host:
        env = {
            **subprocess_env(tracking_uri),
            **containers.env(),
            "DOCKER_HOST": docker_host,
            "DOCKER_BUILDKIT": "0",  # podman's API serves the classic builder, not BuildKit
        }
        build = subprocess.run(
            [sys.executable, "-m", "mlflow", "models", "build-docker", "-m", result.model_uri,
             "-n", name, "--env-manager", "local"],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        try:
            assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]
            listed = subprocess.run(
                ["docker", "image", "ls", "--format", "{{.Repository}}"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert name in listed.stdout  # the docker client sees it through the socket
            (image,) = json.loads(containers.podman("image", "inspect", name).stdout)
            with containers.running(name, deadline_s=180) as container:
                ping = requests.get(f"{container.url}/ping", timeout=10)
                answer = requests.post(
                    f"{container.url}/invocations",
                    json={"dataframe_records": [SEED_RECORD]},
                    timeout=60,
                )
                user = container.exec("id", "-u").stdout.strip()
        finally:
            containers.remove_image(name)
    assert ping.status_code == 200
    assert answer.status_code == 200, answer.text
    expected = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert answer.json()["predictions"][0]["mpg"] == pytest.approx(expected, rel=1e-6)
    assert user == "0"  # MLflow's image runs as root (ours runs as 10001)
    # (the stand-in base carries its wheelhouse: a few hundred MB more than from a registry)
    print(f"\nmlflow build-docker image: {image['Size'] / 1e6:.0f} MB")
