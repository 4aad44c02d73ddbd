"""Rollout with a real served pair (slow tier): `carnn serve` with production and a canary read
from the registry, labelled traffic, and `carnn rollout` moving the weight.

A healthy canary is promoted step by step; one that answers 5xx on some inputs, one that is
slow and one that is 3 MPG worse on labelled traffic are each rolled back with the reason; two
workers read the same weight; a rollout killed midway leaves production where it was."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import pytest
import requests

from carnn_pyfunc import data
from carnn_pyfunc.processes import BIN, free_port, http_server
from carnn_pyfunc.registry.gates import Gates
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.rollout.checks import WEIGHT_TAG, Thresholds
from carnn_pyfunc.rollout.driver import OUTCOME_TAG, Rollout, RolloutRefused
from tests.helpers import SEED_RECORD, as_frame, registry_of, subprocess_env

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
RULES = Thresholds(min_requests=5, min_labels=20, max_p99_ms=250.0)
GATES = Gates(max_mae=50)  # the session's quickly trained model must pass the absolute gate


@pytest.fixture(scope="module")
def cars(auto_mpg):
    _, test = data.split(auto_mpg, test_size=0.2, seed=7)
    rows = test.to_dict("records")
    return [{k: v for k, v in row.items() if v == v} for row in rows]  # NaN: a missing value


@contextlib.contextmanager
def served_pair(name, tracking_uri, tmp_path, *extra):
    port, root = free_port(), tmp_path / "log"
    command = [str(BIN / "carnn"), "serve", "--model-uri", f"models:/{name}@production",
               "--canary", f"models:/{name}@canary", "--port", str(port), "--prediction-log",
               str(root), "--poll-s", "0.3", *extra]  # fmt: skip
    with http_server(command, port, tmp_path / "serve.log", env=subprocess_env(tracking_uri)):
        yield f"http://127.0.0.1:{port}", str(root)


@contextlib.contextmanager
def labelled_traffic(url: str, cars: list[dict]):
    """Clients posting held-out cars and, for each answer, its true MPG at /feedback."""
    stop = threading.Event()
    seen: list[str] = []

    def client(n: int) -> None:
        with requests.Session() as session:
            for i in range(100_000):
                if stop.is_set():
                    return
                car = dict(cars[(i * 7 + n) % len(cars)])
                truth = car.pop("mpg")
                rid = f"t{n}-{i}"
                try:
                    answer = session.post(f"{url}/invocations", json={"dataframe_records": [car]},
                                          headers={"X-Request-Id": rid}, timeout=30)  # fmt: skip
                    seen.append(answer.headers.get("X-Carnn-Model-Version", ""))
                    session.post(
                        f"{url}/feedback",
                        timeout=30,
                        json={"labels": [{"request_id": rid, "row": 0, "mpg": truth}]},
                    )
                except requests.RequestException:
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def pair(client, trained, candidate_source=None, production_source=None) -> str:
    """A registered model: version 1 in production (the session's model, or
    ``production_source``); version 2 the candidate (the session's model, or
    ``candidate_source``) at @canary."""
    _, result = trained
    base = client.get_model_version("carnn-test", result.registered_version)
    name = registry_of(client, production_source or base)
    if production_source is None:
        Promoter(name, gates=GATES).promote("1", "auto")
    else:  # not a carnn model: the registry's gates would refuse it, so it is put there
        client.set_registered_model_alias(name, "production", "1")
    source = candidate_source or base
    client.create_model_version(name, source.source, run_id=source.run_id)
    client.set_registered_model_alias(name, "canary", "2")
    client.set_registered_model_tag(name, WEIGHT_TAG, "0")
    return name


def candidate(trained, mode: str):
    _, result = trained
    inner = mlflow.artifacts.download_artifacts(result.model_uri)
    trained_run = mlflow.get_run(result.run_id)
    with mlflow.start_run(run_name=f"canary-{mode}") as run:
        # the held-out split of the wrapped model: the registry's gates recompute it from these
        mlflow.log_params({k: trained_run.data.params[k] for k in ("seed", "test_size")})
        mlflow.set_tag(data.SHA256_TAG, trained_run.data.tags[data.SHA256_TAG])
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(HERE / "rollout_models.py"),
            artifacts={"inner": inner}, model_config={"mode": mode},
            input_example=as_frame([SEED_RECORD]),  # the registry's fresh-process check
        )  # fmt: skip

    class Source:  # what pair() reads of a model version
        source, run_id = info.model_uri, run.info.run_id

    return Source


def roll(name, root, promote=None, rules=RULES, carnn_candidate=True) -> tuple:
    lines = []
    run = Rollout(name, root, [50, 100], interval_s=4.0, thresholds=rules, echo=lines.append,
                  promote=promote)  # fmt: skip
    if not carnn_candidate:  # the misbehaving wrappers are no carnn format: served all the same
        run.servable = lambda uri: (True, "")
    return run.run(), lines


def test_a_healthy_canary_is_promoted_step_by_step(trained, tracking_uri, tmp_path, cars):
    """Production answers 3 MPG high; the candidate (the session's model) is better on the
    held-out cars (the registry's gate) and on labelled traffic (the rollout's)."""
    client = mlflow.MlflowClient()
    name = pair(client, trained, production_source=candidate(trained, "worse"))
    promoter = Promoter(name, gates=GATES)
    rules = Thresholds(**{**RULES.__dict__, "disagree_mpg": 5.0})  # they differ by 3 by design

    def promote(version: str, why: str):
        return promoter.promote(version, "auto", reason=why)

    with served_pair(name, tracking_uri, tmp_path) as (url, root), labelled_traffic(url, cars):
        result, lines = roll(name, root, promote=promote, rules=rules)
    assert result.promoted, lines
    assert [p for p, _ in result.steps] == [50, 100]
    assert client.get_model_version_by_alias(name, "production").version == 2
    assert client.get_registered_model(name).tags[WEIGHT_TAG] == "0"
    assert client.get_model_version(name, "2").tags[OUTCOME_TAG].startswith("promoted")
    history = promoter.history("2")  # the registry's own record of the move, with the reason
    assert history, client.get_model_version(name, "2").tags


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("fail", "5xx rate"), ("slow", "p99 latency"), ("worse", "live MAE")],
)
def test_a_bad_canary_is_rolled_back_with_the_reason(trained, tracking_uri, tmp_path, cars,
                                                      mode, reason):  # fmt: skip
    client = mlflow.MlflowClient()
    name = pair(client, trained, candidate(trained, mode))
    with served_pair(name, tracking_uri, tmp_path) as (url, root), labelled_traffic(url, cars):
        result, lines = roll(
            name, root, promote=lambda v, r: pytest.fail("promoted"), carnn_candidate=False
        )
    assert not result.promoted
    assert reason in result.reason, lines
    assert client.get_model_version_by_alias(name, "production").version == 1
    assert client.get_model_version_by_alias(name, "canary").version == 2  # left where it was
    assert client.get_registered_model(name).tags[WEIGHT_TAG] == "0"
    tag = client.get_model_version(name, "2").tags[OUTCOME_TAG]
    assert tag.startswith("rolled back: step 50%")
    assert reason in tag


def test_two_workers_follow_one_weight(trained, tracking_uri, tmp_path, cars):
    client = mlflow.MlflowClient()
    name = pair(client, trained, candidate(trained, "worse"))
    with served_pair(name, tracking_uri, tmp_path, "--workers", "2") as (url, _):
        for weight, version in (("100", "2"), ("0", "1")):
            client.set_registered_model_tag(name, WEIGHT_TAG, weight)
            time.sleep(1.5)  # a few polls
            answered = set()
            for i in range(60):
                car = {k: v for k, v in cars[i % len(cars)].items() if k != "mpg"}
                answer = requests.post(f"{url}/invocations", json={"dataframe_records": [car]},
                                       headers={"Connection": "close"}, timeout=30)  # fmt: skip
                answered.add(answer.headers["X-Carnn-Model-Version"])
            metrics = requests.get(f"{url}/metrics", timeout=30).text
            assert answered == {version}, (weight, answered)
            assert f"carnn_canary_percent {float(weight)}" in metrics


def test_a_rollout_killed_midway_leaves_production_where_it_was(trained, tracking_uri, tmp_path,
                                                                 cars):  # fmt: skip
    client = mlflow.MlflowClient()
    name = pair(client, trained)
    env = subprocess_env(tracking_uri)
    with served_pair(name, tracking_uri, tmp_path) as (url, root), labelled_traffic(url, cars):
        command = [str(BIN / "carnn"), "rollout", "--model-name", name, "--prediction-log", root,
                   "--steps", "25,100", "--interval", "60"]  # fmt: skip
        proc = subprocess.Popen(command, env=env, start_new_session=True, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 60
        while client.get_registered_model(name).tags.get(WEIGHT_TAG) != "25":
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert client.get_model_version_by_alias(name, "production").version == 1
    assert client.get_registered_model(name).tags[WEIGHT_TAG] == "25"  # where it was left
    aborted = subprocess.run([*command[:6], "--abort"], env=env, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert aborted.returncode == 0, aborted.stderr
    assert client.get_registered_model(name).tags[WEIGHT_TAG] == "0"


def test_a_candidate_this_release_cannot_serve_moves_no_traffic(trained, tracking_uri, tmp_path):
    client = mlflow.MlflowClient()
    name = pair(client, trained, candidate(trained, "worse"))  # no carnn format
    run = Rollout(name, str(tmp_path / "log"), [100], interval_s=0.1, echo=lambda line: None)
    with pytest.raises(RolloutRefused, match="version 2: "):
        run.run()
    assert client.get_registered_model(name).tags[WEIGHT_TAG] == "0"
