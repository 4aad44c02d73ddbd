"""`carnn serve` processes started for these tests: several workers, a prediction timeout, and a
shutdown under load that drops no accepted request."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from carnn_pyfunc import data
from carnn_pyfunc.processes import BIN, free_port, http_server
from tests.helpers import SEED_RECORD, carnn_server, subprocess_env

pytestmark = pytest.mark.slow


def test_two_workers_answer_and_their_metrics_add_up(trained, tracking_uri, tmp_path):
    _, result = trained
    env = subprocess_env(tracking_uri)
    with carnn_server(result.model_uri, tmp_path / "serve.log", env, "--workers", "2") as url:
        for _ in range(40):  # fresh connections: the kernel spreads them over both workers
            response = requests.post(
                f"{url}/invocations", json={"dataframe_records": [SEED_RECORD] * 3}, timeout=30
            )
            assert response.status_code == 200
        metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert "carnn_rows_predicted_total 120.0" in metrics  # summed over the workers' files


def test_a_slow_prediction_gets_504(trained, tracking_uri, tmp_path, auto_mpg):
    _, result = trained
    env = subprocess_env(tracking_uri)
    rows = auto_mpg.drop(columns=[data.TARGET]).sample(100_000, replace=True, random_state=0)
    body = rows.to_csv(index=False)
    with carnn_server(result.model_uri, tmp_path / "serve.log", env, "--timeout", "0.001",
                      "--max-body-mb", "50") as url:  # fmt: skip
        response = requests.post(
            f"{url}/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=120
        )
        assert response.status_code == 504
        assert response.json()["error_code"] == "TIMEOUT"
        small = requests.post(
            f"{url}/invocations", json={"dataframe_records": [SEED_RECORD]}, timeout=30
        )
        assert small.status_code == 200  # small requests answer inline, well within any timeout


def test_shutdown_under_load_answers_every_accepted_request(trained, tracking_uri, tmp_path):
    """SIGTERM while 4 clients post: every request the server read (its access log) is answered
    with a 200 the client receives; after it, connections are refused. Connections still in the
    kernel's queue when the listener closes are reset before any byte of them is read: those
    requests never reached the service (a load balancer retries them)."""
    _, result = trained
    port = free_port()
    command = [str(BIN / "carnn"), "serve", "--model-uri", result.model_uri, "--port", str(port),
               "--access-log"]  # fmt: skip
    outcomes: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        for _ in range(2000):  # bounded; ends well before this when the server goes away
            if stop.is_set():
                return
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.connect()
            except ConnectionRefusedError:
                outcome = "refused"
            else:
                try:
                    body = json.dumps({"dataframe_records": [SEED_RECORD]})
                    connection.request(
                        "POST", "/invocations", body, {"Content-Type": "application/json"}
                    )
                    outcome = str(connection.getresponse().status)
                except (ConnectionError, http.client.HTTPException) as err:
                    outcome = f"dropped: {type(err).__name__}"
            finally:
                connection.close()
            with lock:
                outcomes.append(outcome)
            if outcome == "refused":
                return

    env = subprocess_env(tracking_uri)
    with http_server(command, port, tmp_path / "serve.log", env=env) as started:
        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        os.kill(started.process.pid, signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        stop.set()
    answered = [o for o in outcomes if o.isdigit()]
    assert len(answered) > 20, outcomes[:20]
    assert set(answered) == {"200"}
    log = (tmp_path / "serve.log").read_text()
    read_by_the_server = log.count('"POST /invocations HTTP/1.1" 200')
    assert read_by_the_server == len(answered), (read_by_the_server, len(answered))
    assert "refused" in outcomes  # the clients saw the server go away


def test_the_serving_process_never_loads_tensorflow(trained, tracking_uri, tmp_path):
    """The flatbuffer compiled at training time runs on LiteRT: no TensorFlow, Keras or
    scikit-learn library is mapped into the served process, before or after predictions."""
    _, result = trained
    port = free_port()
    command = [str(BIN / "carnn"), "serve", "--model-uri", result.model_uri, "--port", str(port)]
    env = subprocess_env(tracking_uri)
    with http_server(command, port, tmp_path / "serve.log", env=env) as started:
        for rows in (1, 2000):  # the one-thread interpreter and the parallel one
            response = requests.post(
                f"http://127.0.0.1:{port}/invocations",
                json={"dataframe_records": [SEED_RECORD] * rows},
                timeout=60,
            )
            assert response.status_code == 200
        maps = Path(f"/proc/{started.process.pid}/maps").read_text()
    assert "ai_edge_litert" in maps  # the interpreter that runs the network
    for heavy in ("tensorflow", "keras"):  # (MLflow maps scipy where it is installed)
        assert f"/{heavy}/" not in maps, heavy
