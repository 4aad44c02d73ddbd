"""The prediction log and the labels: every answered row is in the log (SIGTERM under load
included), in the schema, partitioned as documented; the request id travels in the header; the
log never fails a request (a full queue drops and counts); POST /feedback validates and stores."""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import threading
import time

import pandas as pd
import pyarrow.dataset as ds
import pytest
import requests

from carnn_pyfunc.monitoring.prediction_log import Entry, ModelId, PredictionLog, rows_of
from carnn_pyfunc.monitoring.schema import PREDICTION_SCHEMA
from carnn_pyfunc.processes import BIN, free_port, http_server
from tests.helpers import SEED_RECORD, carnn_server, subprocess_env


def entry(i: int, rows: int = 1, **answer) -> Entry:
    records = [{**SEED_RECORD, "weight": 2000 + i}] * rows
    answer = {"mpg": [20.0 + i] * rows, **answer}
    return Entry(f"r{i}", 1_796_000_000.0 + i, records, answer, 1.5, "primary")


def read(root) -> pd.DataFrame:
    return (
        ds.dataset(f"{root}/predictions", format="parquet", partitioning="hive")
        .to_table()
        .to_pandas()
    )


def test_rows_follow_the_schema_for_one_and_many_rows():
    columns = rows_of([entry(0), entry(1, rows=3, error=[None, "weight: bad", None])],
                      ModelId("carnn", "3", "abc"))  # fmt: skip
    assert set(columns) == {*PREDICTION_SCHEMA.names, "model_version"}  # partition: a folder
    assert all(len(v) == 4 for v in columns.values())
    assert columns["row"] == [0, 0, 1, 2]
    assert columns["weight"] == [2000.0, 2001.0, 2001.0, 2001.0]
    assert columns["error"] == [None, None, "weight: bad", None]


def test_the_log_writes_hive_partitions_and_counts_rows(tmp_path):
    written = []
    log = PredictionLog(str(tmp_path), ModelId("carnn", "7", "run"), flush_s=0.05,
                        on_written=written.append)  # fmt: skip
    for i in range(50):
        log.record(entry(i))
    log.close()
    frame = read(tmp_path)
    assert len(frame) == sum(written) == 50
    assert set(frame["model_version"].astype(str)) == {"7"}
    assert frame["date"].astype(str).unique().tolist() == ["2026-11-30"]
    assert not list(tmp_path.rglob("*.partial"))


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    dropped, written = [], []
    log = PredictionLog(str(tmp_path), ModelId("carnn", "1", "run"), max_rows=10, flush_s=60,
                        on_dropped=dropped.append, on_written=written.append)  # fmt: skip
    started = time.perf_counter()
    for i in range(25):
        log.record(entry(i))
    assert time.perf_counter() - started < 1.0  # never a wait (a bound, not a timing claim)
    log.close()
    # the writer wakes at a quarter full and may empty the queue between two records: every row
    # is written or counted as dropped, and a queue that holds ten rows dropped some of 25
    assert sum(dropped) + sum(written) == 25
    assert sum(dropped) >= 1
    assert len(read(tmp_path)) == sum(written) >= 10


def test_a_sample_keeps_whole_requests(tmp_path):
    log = PredictionLog(str(tmp_path), ModelId("carnn", "1", "run"), sample=0.5, flush_s=0.05)
    for i in range(400):
        log.record(entry(i, rows=2))
    log.close()
    frame = read(tmp_path)
    assert 240 < len(frame) < 560  # about half of 800 rows
    assert (frame.groupby("request_id").size() == 2).all()


@pytest.mark.slow
def test_served_rows_and_labels_land_in_the_log(trained, tracking_uri, tmp_path):
    _, result = trained
    root = tmp_path / "log"
    with carnn_server(result.model_uri, tmp_path / "serve.log", subprocess_env(tracking_uri),
                      "--prediction-log", str(root)) as url:  # fmt: skip
        body = {"dataframe_records": [SEED_RECORD, {**SEED_RECORD, "weight": -1}],
                "params": {"errors": "column", "interval": 0.9}}  # fmt: skip
        answer = requests.post(f"{url}/invocations", json=body, timeout=30,
                               headers={"X-Request-Id": "client-id-1"})  # fmt: skip
        assert answer.headers["X-Request-Id"] == "client-id-1"
        fresh = requests.post(f"{url}/invocations", json={"dataframe_records": [SEED_RECORD]},
                              timeout=30)  # fmt: skip
        generated = fresh.headers["X-Request-Id"]
        assert len(generated) >= 16
        feedback = requests.post(f"{url}/feedback", timeout=30, json={"labels": [
            {"request_id": "client-id-1", "row": 0, "mpg": 15.0},
            {"request_id": generated, "row": 0, "mpg": 16.0}]})  # fmt: skip
        assert feedback.json() == {"accepted": 2}
        for bad, field in (({"request_id": "x", "row": -1, "mpg": 20}, "row"),
                           ({"request_id": "x", "row": 0, "mpg": 1e9}, "mpg"),
                           ({"request_id": "x", "row": True, "mpg": 20}, "row"),
                           ({"request_id": "", "row": 0, "mpg": 20}, "request_id")):  # fmt: skip
            refused = requests.post(f"{url}/feedback", json={"labels": [bad]}, timeout=30)
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["field"] == field
    frame = read(root)
    assert len(frame) == 3
    first = frame[frame["request_id"] == "client-id-1"].sort_values("row")
    assert first["weight"].tolist() == [3504.0, -1.0]
    assert math.isnan(first["mpg"].iloc[1])
    assert first["error"].iloc[1].startswith("weight:")
    assert first["mpg_low"].iloc[0] < first["mpg"].iloc[0] < first["mpg_high"].iloc[0]
    assert set(frame["model_version"].astype(str)) == {result.registered_version}
    labels = pd.read_parquet(root / "labels")
    assert sorted(labels["mpg"]) == [15.0, 16.0]


@pytest.mark.slow
def test_sigterm_under_load_leaves_every_answered_row_in_the_log(trained, tracking_uri, tmp_path):
    _, result = trained
    port, root = free_port(), tmp_path / "log"
    command = [str(BIN / "carnn"), "serve", "--model-uri", result.model_uri, "--port", str(port),
               "--prediction-log", str(root)]  # fmt: skip
    answered: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(3000):  # bounded; ends when the server goes away
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            request_id = f"c{n}-{i}"
            try:
                connection.request("POST", "/invocations",
                                   json.dumps({"dataframe_records": [SEED_RECORD]}),
                                   {"Content-Type": "application/json",
                                    "X-Request-Id": request_id})  # fmt: skip
                status = connection.getresponse().status
            except (ConnectionError, http.client.HTTPException, OSError):
                return
            finally:
                connection.close()
            if status == 200:
                with lock:
                    answered.append(request_id)

    with http_server(command, port, tmp_path / "serve.log", env=subprocess_env(tracking_uri)) as s:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        os.kill(s.process.pid, signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        assert s.process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises it
    assert len(answered) > 50
    logged = set(read(root)["request_id"])
    assert set(answered) <= logged, len(set(answered) - logged)


@pytest.mark.slow
def test_carnn_feedback_stores_a_csv_of_labels(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,row,mpg\nabc,0,21.5\nabc,1,30\n")
    log = str(tmp_path / "log")
    command = [str(BIN / "carnn"), "feedback", str(labels), "--prediction-log", log]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 labels" in done.stdout
    assert sorted(pd.read_parquet(tmp_path / "log" / "labels")["mpg"]) == [21.5, 30.0]
    labels.write_text("request_id,row,mpg\nabc,zero,21.5\n")
    bad = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "row: label 0" in bad.stderr


@pytest.mark.slow
def test_carnn_score_logs_every_row_of_the_file(trained, tracking_uri, tmp_path):
    from carnn_pyfunc.cli import main

    _, result = trained
    cars = pd.DataFrame([SEED_RECORD, {**SEED_RECORD, "weight": -1}, SEED_RECORD])
    cars.to_csv(tmp_path / "cars.csv", index=False)
    root = tmp_path / "log"
    code = main(["score", str(tmp_path / "cars.csv"), str(tmp_path / "out.csv"), "--model-uri",
                 result.model_uri, "--prediction-log", str(root), "--chunk-rows", "2",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    frame = read(root).sort_values(["request_id", "row"])
    assert len(frame) == 3
    assert frame["request_id"].str.startswith("score-").all()  # one id a chunk of the file
    assert frame["row"].tolist() == [0, 1, 2]
    assert frame["error"].notna().sum() == 1
    assert set(frame["model_version"].astype(str)) == {result.registered_version}


def test_a_large_request_is_logged_whole_a_chunk_at_a_time(tmp_path):
    """A large request is made compact in chunks (memory: see serving/observe.py); its rows are
    all there, numbered as in the request, each with its own inputs and answer."""
    from carnn_pyfunc.serving.metrics import ServiceMetrics
    from carnn_pyfunc.serving.observe import Observer

    n = 20_001  # more than two chunks, the last one short
    records = [{**SEED_RECORD, "weight": 1000.0 + i} for i in range(n)]
    answer = {"mpg": [float(i % 50) for i in range(n)], "error": [None] * n}
    big = Entry("big", 1_796_000_000.0, records, answer, 9.0, "primary")
    handed_back = threading.Event()
    log = PredictionLog(str(tmp_path), ModelId("carnn", "4", "run"), flush_s=0.05)
    observer = Observer(ServiceMetrics(), {}, log)
    observer.prepare_soon(big, done=handed_back.set)
    assert handed_back.wait(30)  # the next large request may start
    observer.close()
    frame = read(tmp_path).sort_values("row")
    assert frame["row"].tolist() == list(range(n))
    assert frame["weight"].tolist() == [1000.0 + i for i in range(n)]
    assert frame["mpg"].tolist() == answer["mpg"]
