"""deploy/kubernetes/: the manifests validate against Kubernetes' own schemas (offline, with
kubernetes-validate) and say what a production deployment needs; in the slow tier the Deployment
runs under ``podman kube play`` from the image the session built, reached from the host.

What the play changes, and why: one replica (each replica publishes the container port on the
host: a second one finds it taken), the image's test tag, a free 127.0.0.1 host port, and names
of their own for the pod and the Secret (nothing of a user's is touched). The Service and the
HorizontalPodAutoscaler are cluster objects podman does not play (README says more).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import requests
import yaml

from tests import containers
from tests.helpers import ROOT, SEED_RECORD, as_frame

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))
TOKEN = "kube-play-test-token-0123456789"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "deploy" / "kubernetes" / name).read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_validates_strictly_against_the_kubernetes_schema(path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, "1.37.0", strict=True)


def test_the_validation_catches_a_broken_manifest():
    broken = load("deployment.yaml")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


def test_the_deployment_is_non_root_read_only_probed_and_sized():
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for probe in ("readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/ping"
    # podman runs only the liveness probe, and an httpGet one as curl (not in the image): the
    # liveness probe is the image's own HEALTHCHECK command.
    assert ["CMD", *container["livenessProbe"]["exec"]["command"]] == [
        "CMD",
        *containers.dockerfile_healthcheck(),
    ]
    resources = container["resources"]
    assert resources["requests"]["memory"].endswith("Mi")
    assert resources["limits"]["memory"].endswith("Mi")
    assert int(resources["limits"]["memory"][:-2]) > int(resources["requests"]["memory"][:-2])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {ports['http']}" in dockerfile
    assert "/tmp" in json.dumps(container["volumeMounts"])


def test_the_deployment_requires_auth_and_the_secret():
    (container,) = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    env = {var["name"]: var for var in container["env"]}
    assert env["CARNN_REQUIRE_AUTH"]["value"] == "true"
    ref = env["CARNN_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "carnn-api-token", "key": "token"}  # not optional: no Secret, no pod


class Ping(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/ping" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1)])
def test_the_probe_command_passes_only_on_a_good_ping(status, code):
    handler = type("Answering", (Ping,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = run_probe(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
    assert probe.returncode == code, probe.stderr


def test_the_probe_command_fails_when_nothing_listens():
    port = containers.free_port()
    probe = run_probe(port)
    assert probe.returncode == 1
    assert f"port {port}" in probe.stderr


def run_probe(port: int) -> subprocess.CompletedProcess:
    command = containers.dockerfile_healthcheck()
    assert command[0] == "python"
    env = {**os.environ, "CARNN_PORT": str(port)}
    command = [sys.executable, *command[1:]]  # this environment's python
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def test_the_autoscaler_and_the_service_point_at_the_deployment():
    deployment = load("deployment.yaml")
    hpa, service = load("hpa.yaml"), load("service.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


# ------------------------------------------------------------------------- podman kube play
def playable(tmp_path: Path, image: str) -> tuple[Path, str, str, int]:
    """deploy/kubernetes/deployment.yaml as the play runs it (see the module's docstring);
    returns the manifest, the Secret's name, the container's name and the host port."""
    suffix = uuid.uuid4().hex[:8]
    name, secret, port = f"carnn-test-{suffix}", f"carnn-api-token-{suffix}", containers.free_port()
    deployment = load("deployment.yaml")
    deployment["metadata"]["name"] = name
    deployment["spec"]["replicas"] = 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["image"] = image
    (published,) = container["ports"]
    published.update(hostPort=port, hostIP="127.0.0.1")
    for var in container["env"]:
        if "valueFrom" in var:
            var["valueFrom"]["secretKeyRef"]["name"] = secret
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    return manifest, secret, f"{name}-pod-0-{container['name']}", port


@pytest.mark.slow
def test_podman_kube_play_runs_the_deployment_with_its_probe_env_and_token(
    carnn_image, loaded_model, tmp_path
):
    manifest, secret, name, port = playable(tmp_path, carnn_image.name)
    containers.create_kube_secret(secret, {"token": f"{TOKEN}\n"})  # as Secrets often end
    try:
        with containers.kube_play(manifest, name, port) as played:
            assert played.proc.returncode == 0, played.proc.stderr
            pod = played.container
            containers.wait_ready(pod)
            url = pod.url
            record = {"dataframe_records": [SEED_RECORD]}
            no_token = requests.post(f"{url}/invocations", json=record, timeout=30)
            answer = requests.post(
                f"{url}/invocations",
                json=record,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            health = pod.healthcheck()
            inspect = pod.inspect()
            tmp_write = pod.exec("touch", "/tmp/written")
            root_write = pod.exec("touch", "/opt/carnn/written")
            status = pod.exec("cat", "/proc/1/status").stdout
    finally:
        containers.remove_secret(secret)
    assert no_token.status_code == 401
    assert answer.status_code == 200, answer.text
    expected = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert answer.json()["predictions"][0]["mpg"] == pytest.approx(expected, rel=1e-6)
    assert health == "healthy"
    # podman: ["CMD-SHELL", <the probe's words>, "||", "exit", "1"], run by /bin/sh
    assert inspect["Config"]["Healthcheck"]["Test"][1:4] == containers.dockerfile_healthcheck()
    env = dict(var.split("=", 1) for var in inspect["Config"]["Env"])
    assert env["CARNN_REQUIRE_AUTH"] == "true"
    assert env["CARNN_WORKERS"] == "1"
    assert env["CARNN_HOST"] == "0.0.0.0"  # from the image
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert inspect["HostConfig"]["Memory"] == 320 * 1024 * 1024
    assert tmp_write.returncode == 0  # the emptyDir
    assert "Read-only file system" in root_write.stderr
    fields = dict(line.split(":", 1) for line in status.splitlines())
    assert fields["Uid"].split() == ["10001"] * 4
    assert fields["CapEff"].strip() == "0000000000000000"  # capabilities: drop ALL


@pytest.mark.slow
def test_podman_kube_play_without_the_secret_starts_nothing(carnn_image, tmp_path):
    manifest, secret, name, port = playable(tmp_path, carnn_image.name)
    with containers.kube_play(manifest, name, port) as played:
        assert played.proc.returncode != 0
        assert secret in played.proc.stderr
        assert not containers.pings(port)
