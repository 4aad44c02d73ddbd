"""Stages as aliases in a real SQLite Model Registry: order, gates, force, rollback, undo, locks."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import warnings

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from carnn_pyfunc import cli, data
from carnn_pyfunc.processes import model_server
from carnn_pyfunc.registry.gates import Gates
from carnn_pyfunc.registry.lock import LOCK_SUFFIX
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.registry.stages import PRODUCTION, PromotionRefused
from tests.helpers import LENIENT, ROOT, registry_of, subprocess_env

pytestmark = pytest.mark.slow


def test_a_version_moves_candidate_then_staging_then_production(client, good):
    name = registry_of(client, good)
    promoter = Promoter(name, gates=LENIENT)
    assert promoter.stage_of("1") == "candidate"

    with pytest.raises(PromotionRefused, match="promote it to staging first"):
        promoter.promote("1", "production")
    assert promoter.aliases() == {}

    staged = promoter.promote("1", "staging", reason="weekly retrain")
    assert [(t.source, t.target) for t in staged.transitions] == [("candidate", "staging")]
    assert promoter.aliases() == {"staging": "1"}

    produced = promoter.promote("1", "production")
    assert [(t.source, t.target) for t in produced.transitions] == [("staging", "production")]
    assert promoter.aliases() == {"production": "1"}
    assert promoter.inconsistencies() == []

    history = promoter.history("1")
    assert [(h["from"], h["to"]) for h in history] == [
        ("candidate", "staging"),
        ("staging", "production"),
    ]
    assert {"from", "to", "when", "why", "metrics"} <= set(history[0])
    assert history[0]["why"].endswith("; weekly retrain")  # a given reason is recorded too
    assert history[0]["metrics"]["test_mae"] <= LENIENT.max_mae
    assert history[0]["metrics"]["n_rows"] == 80  # seed 7's held-out cars
    tags = client.get_model_version(name, "1").tags
    assert tags["stage"] == "production"
    assert client.get_model_version_by_alias(name, "production").source == good.source


def test_gates_refuse_staging_and_leave_everything_as_it_was(client, poor):
    name = registry_of(client, poor)
    promoter = Promoter(name, gates=Gates(max_mae=2.5))
    above = r"test MAE \d+\.\d+ MPG on its 80 held-out cars is above the gate max_mae 2.5"
    with pytest.raises(PromotionRefused, match=above):
        promoter.promote("1", "auto")
    assert promoter.aliases() == {}
    assert promoter.history("1") == []
    assert promoter.stage_of("1") == "candidate"


def test_a_worse_model_is_refused_for_production(client, good, poor, capsys):
    name = registry_of(client, good, poor)
    promoter = Promoter(name, gates=LENIENT)
    first = promoter.promote("1", "auto")
    assert [(t.target, t.why) for t in first.transitions][-1] == (
        "production",
        "the first version to pass the gates",
    )

    second = promoter.promote("2", "auto")
    assert second.refused is not None
    assert "does not beat production" in second.refused
    assert promoter.aliases() == {"production": "1", "staging": "2"}

    # The CLI says why and exits non-zero; nothing moves.
    code = cli.main(["promote", "--name", name, "--version", "2", "--to", "production",
                     "--max-mae", "50"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "refused: version 2 stays in staging: does not beat production" in err
    assert "on the same 80 held-out cars" in err
    assert promoter.aliases() == {"production": "1", "staging": "2"}
    assert promoter.inconsistencies() == []


def test_a_better_model_replaces_production_which_becomes_previous(client, good, poor):
    name = registry_of(client, poor, good)
    promoter = Promoter(name, gates=LENIENT)
    promoter.promote("1", "auto")
    outcome = promoter.promote("2", "auto")
    assert outcome.refused is None
    assert promoter.aliases() == {"production": "2", "previous-production": "1"}
    compared = promoter.history("2")[-1]["metrics"]
    assert compared["candidate_mae"] < compared["production_mae"]
    assert compared["production_version"] == 1
    assert compared["n_rows"] == 80


def test_forced_promotion_needs_and_records_a_reason_and_rollback_swaps_back(client, good, poor):
    name = registry_of(client, good, poor)
    promoter = Promoter(name, gates=LENIENT)
    promoter.promote("1", "auto")
    promoter.promote("2", "staging")

    with pytest.raises(PromotionRefused, match="--force needs --reason"):
        promoter.promote("2", "production", force=True)
    code = cli.main(["promote", "--name", name, "--version", "2", "--to", "production",
                     "--force", "--reason", "hotfix for the 2026 catalogue"])  # fmt: skip
    assert code == 0
    assert promoter.aliases() == {"production": "2", "previous-production": "1"}
    record = promoter.history("2")[-1]
    assert record["to"] == "production"
    assert record["why"].startswith("forced (does not beat production")
    assert record["why"].endswith("hotfix for the 2026 catalogue")
    assert record["metrics"]["candidate_mae"] > record["metrics"]["production_mae"]

    rolled = promoter.rollback(reason="the hotfix misbehaves")
    assert {(t.version, t.target) for t in rolled.transitions} == {
        ("1", "production"),
        ("2", "previous-production"),
    }
    assert promoter.aliases() == {"production": "1", "previous-production": "2"}
    assert promoter.history("1")[-1]["why"] == "rollback: the hotfix misbehaves"
    assert promoter.inconsistencies() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "--name", "no-such-model"], "no-such-model"),
        (["promote", "--name", "poor", "--version", "99"], "99"),
        (["promote", "--name", "poor", "--version", "three"], "'three'"),
        (["promote", "--name", "poor", "--force"], "--force needs --reason"),
        (["stages", "--name", "no-such-model"], "no-such-model"),
        (["export", "--model-uri", "carnn"], "expected models:/<name>@<alias>"),
        (["export", "--model-uri", "models:/poor@nope"], "alias nope not found"),
        (["export", "--model-uri", "models:/poor/1", "--output", "."], "not an exported model"),
    ],
)
def test_bad_registry_arguments_are_named_without_a_traceback(poor, capsys, args, message):
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_rollback_without_a_previous_version_is_refused(client, good):
    name = registry_of(client, good)
    assert cli.main(["rollback", "--name", name]) == 1
    Promoter(name, gates=LENIENT).promote("1", "auto")
    with pytest.raises(PromotionRefused, match="previous-production is unset"):
        Promoter(name).rollback()
    assert Promoter(name).aliases() == {"production": "1"}


def test_a_failed_write_halfway_restores_the_aliases_and_tags(client, good, poor):
    name = registry_of(client, good, poor)
    promoter = Promoter(name, gates=LENIENT)
    promoter.promote("1", "auto")
    promoter.promote("2", "staging")
    before = {v: client.get_model_version(name, v).tags for v in ("1", "2")}

    # The aliases move first; the registry then rejects the transition record (a tag value
    # over its 100,000-character limit), so the moves already made must be undone.
    with pytest.raises(MlflowException, match="100000"):
        promoter.promote("2", "production", force=True, reason="x" * 100_001)
    assert promoter.aliases() == {"production": "1", "staging": "2"}
    assert {v: client.get_model_version(name, v).tags for v in ("1", "2")} == before
    assert promoter.inconsistencies() == []
    with pytest.raises(MlflowException, match=r"RESOURCE_DOES_NOT_EXIST|not found"):
        client.get_registered_model(name + LOCK_SUFFIX)  # the lock was released


def test_legacy_stages_follow_the_aliases_without_warnings(client, good, poor):
    name = registry_of(client, poor, good)
    promoter = Promoter(name, gates=LENIENT, legacy_stages=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        promoter.promote("1", "auto")
        promoter.promote("2", "auto")
        assert client.get_model_version(name, "2").current_stage == "Production"
        assert client.get_model_version(name, "1").current_stage == "Archived"
        promoter.rollback()
    assert client.get_model_version(name, "1").current_stage == "Production"
    assert client.get_model_version(name, "2").current_stage == "Archived"


def test_concurrent_promotions_end_in_a_consistent_state(client, good, poor, tracking_uri):
    name = registry_of(client, good, poor, good)
    env = subprocess_env(tracking_uri)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "carnn_pyfunc.cli",
                "promote",
                "--name",
                name,
                "--version",
                version,
                "--max-mae",
                "50",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for version in ("1", "2", "3")
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert all(proc.returncode in (0, 1) for proc in procs), outputs

    promoter = Promoter(name)
    aliases = promoter.aliases()
    assert promoter.inconsistencies() == []
    assert aliases[PRODUCTION] in {"1", "3"}  # the good model, whichever got there first
    # Each production entry of the history is explained: the version is production now, or
    # it was moved out again by a later transition.
    for version in ("1", "2", "3"):
        moves = [(h["from"], h["to"]) for h in promoter.history(version)]
        assert moves, outputs  # every version at least reached staging (lenient gates)
        if ("staging", "production") in moves:
            last_into = max(i for i, m in enumerate(moves) if m[1] == "production")
            assert aliases.get(PRODUCTION) == version or len(moves) > last_into + 1
    with pytest.raises(MlflowException):
        client.get_registered_model(name + LOCK_SUFFIX)


def test_two_training_runs_then_production_serves_the_better(tmp_path, tracking_uri, auto_mpg):
    """What two `make train` runs do: train --promote twice, then serve @production."""
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    common = ["--patience", "0", "--ensemble-size", "1", "--seed", "7",
              "--registered-model-name", name]  # fmt: skip
    assert cli.main(["train", "--promote", "--epochs", "70", *common]) == 0
    assert cli.main(["train", "--promote", "--epochs", "150", *common]) == 0
    promoter = Promoter(name)
    assert promoter.aliases() == {"production": "2", "previous-production": "1"}

    rows = auto_mpg.drop(columns=[data.TARGET]).head(20)
    expected = mlflow.pyfunc.load_model(f"models:/{name}/2").predict(rows)["mpg"].to_numpy()
    replaced = mlflow.pyfunc.load_model(f"models:/{name}/1").predict(rows)["mpg"].to_numpy()
    assert not np.allclose(expected, replaced)
    uri = f"models:/{name}@production"
    with model_server(uri, tmp_path / "serve.log", env=subprocess_env(tracking_uri)) as (port, _):
        import requests

        body = json.loads(rows.to_json(orient="split", index=False))
        response = requests.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_split": body}, timeout=60
        )
    assert response.status_code == 200, response.text
    served = np.array([row["mpg"] for row in response.json()["predictions"]])
    np.testing.assert_allclose(served, expected, rtol=1e-6)


def test_train_promote_gates_on_the_data_file_it_trained_on(tmp_path, capsys):
    other = tmp_path / "auto-mpg-subset.data"
    lines = data.DEFAULT_DATA_PATH.read_text().splitlines(keepends=True)
    other.write_text("".join(lines[:-20]))  # another file: another digest, other held-out cars
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    code = cli.main(["train", "--promote", "--epochs", "60", "--ensemble-size", "1",
                     "--data-path", str(other), "--registered-model-name", name])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "sha256" not in out, out  # no data mismatch: the gates read the file trained on ...
    moved = "version 1: candidate -> staging" in out  # ... and scored its 76 held-out cars
    assert moved or "on its 76 held-out cars is above the gate" in out, out
