"""deploy/kubernetes/: the manifests validate against Kubernetes' own schemas (offline, with
kubernetes-validate) and say what a production deployment needs."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from tests.helpers import ROOT

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


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
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/ping"
    resources = container["resources"]
    assert resources["requests"]["memory"].endswith("Mi")
    assert resources["limits"]["memory"].endswith("Mi")
    assert int(resources["limits"]["memory"][:-2]) > int(resources["requests"]["memory"][:-2])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {ports['http']}" in dockerfile
    assert "/tmp" in json.dumps(container["volumeMounts"])


def test_the_autoscaler_and_the_service_point_at_the_deployment():
    deployment = load("deployment.yaml")
    hpa, service = load("hpa.yaml"), load("service.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
