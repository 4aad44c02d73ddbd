"""Promotion and rollback refuse a version this code cannot serve (its model format), with the
reason recorded on the version, in a real SQLite Model Registry whose versions are the golden
models (tests/golden); nothing is trained."""

from __future__ import annotations

import uuid

import mlflow
import pytest

from carnn_pyfunc.formats import servable
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.registry.stages import PRODUCTION, STAGING, PromotionRefused
from tests.test_golden import golden


@pytest.fixture(scope="module")
def client(tracking_uri):
    return mlflow.MlflowClient()


def registry(client, *numbers: int) -> str:
    """A fresh registered model whose versions 1, 2, ... are the goldens of these formats."""
    name = f"formats-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for number in numbers:
        client.create_model_version(name, str(golden(number)[0]))
    return name


def test_promotion_refuses_a_version_of_a_format_this_code_does_not_serve(client):
    name = registry(client, 1)
    ok, why = servable(f"models:/{name}/1")
    assert not ok
    assert "model format 1: contract format 1 was written by carnn" in why
    promoter = Promoter(name)
    for to in ("auto", STAGING):
        with pytest.raises(PromotionRefused) as err:
            promoter.promote("1", to)
        assert str(err.value) == why
    assert promoter.aliases() == {}
    assert promoter.stage_of("1") == "candidate"
    refusals = promoter.refusals("1")
    assert [r["to"] for r in refusals] == [STAGING, STAGING]
    assert refusals[0]["why"] == f"this carnn cannot serve it: {why}"
    assert refusals[0]["stage"] == "candidate"


def test_a_servable_old_format_goes_on_to_the_gates(client):
    name = registry(client, 4)
    assert servable(f"models:/{name}/1")[0]
    with pytest.raises(PromotionRefused, match="has no training run"):  # the next gate's word
        Promoter(name).promote("1")
    assert Promoter(name).refusals("1") == []


def test_rollback_refuses_to_put_back_a_version_this_code_cannot_serve(client):
    name = registry(client, 1, 6)
    client.set_registered_model_alias(name, "previous-production", "1")
    client.set_registered_model_alias(name, PRODUCTION, "2")
    promoter = Promoter(name)
    with pytest.raises(PromotionRefused, match=r"^models:/.*/1: model format 1: contract format 1"):
        promoter.rollback(reason="the new one misbehaves")
    assert promoter.aliases() == {"previous-production": "1", PRODUCTION: "2"}
    (refusal,) = promoter.refusals("1")
    assert refusal["to"] == PRODUCTION
    assert refusal["stage"] == "previous-production"
    assert promoter.history("1") == promoter.history("2") == []


def test_rollback_to_a_servable_old_format_swaps(client):
    name = registry(client, 4, 6)
    client.set_registered_model_alias(name, "previous-production", "1")
    client.set_registered_model_alias(name, PRODUCTION, "2")
    outcome = Promoter(name).rollback(reason="back to the format 4 version")
    assert outcome.version == "1"
    assert Promoter(name).aliases() == {PRODUCTION: "1", "previous-production": "2"}
