"""The request boundary of a real `carnn serve`, each defect a review found reproduced over HTTP:
strict types (a boolean or a string is no number), misspelt and repeated columns, numbers of any
size, strict JSON out, bounded rows per request, and a limit on requests in flight."""

from __future__ import annotations

import io
import json
import socket
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from carnn_pyfunc.contract import INPUT_FIELDS
from tests.helpers import SEED_RECORD, carnn_server, subprocess_env

pytestmark = pytest.mark.slow

JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"


def post(url: str, body, content_type: str = JSON, **kwargs) -> requests.Response:
    data = json.dumps(body).encode() if not isinstance(body, bytes | str) else body
    return requests.post(f"{url}/invocations", data=data, timeout=60,
                         headers={"Content-Type": content_type}, **kwargs)  # fmt: skip


def strict_json(response: requests.Response):
    """The body parsed the way JavaScript's JSON.parse would: NaN and Infinity refused."""

    def refuse(token: str):
        raise AssertionError(f"non-strict JSON token {token} in the body")

    return json.loads(response.text, parse_constant=refuse)


def records(**changes) -> dict:
    return {"dataframe_records": [{**SEED_RECORD, **changes}]}


def assert_names(response: requests.Response, field: str, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    body = strict_json(response)
    assert body["errors"][0]["field"] == field, body
    assert field in body["message"]
    return body


@pytest.mark.parametrize(
    ("field", "value"),
    [("year", True), ("origin", True), ("cylinders", False), ("weight", "3504"),
     ("cylinders", "8"), ("weight", " 3504 "), ("weight", "3_504"), ("cylinders", "\uff18"),
     ("horsepower", "130")],
)  # fmt: skip
def test_a_boolean_or_a_string_in_a_number_field_is_a_400_naming_it(carnn_served, field, value):
    assert_names(post(carnn_served, records(**{field: value})), field)


@pytest.mark.parametrize("format_", ["dataframe_split", "instances", "inputs"])
def test_every_json_format_is_as_strict(carnn_served, format_):
    car = {**SEED_RECORD, "year": True}
    body = (
        {"dataframe_split": {"columns": list(car), "data": [list(car.values())]}}
        if format_ == "dataframe_split"
        else {format_: {k: [v] for k, v in car.items()}}
    )
    assert_names(post(carnn_served, body), "year")


@pytest.mark.parametrize("name", ["Horsepower", "horse_power", "HORSEPOWER", "horsepowr"])
def test_a_misspelt_field_is_a_400_saying_which_was_meant(carnn_served, name):
    car = {k: v for k, v in SEED_RECORD.items() if k != "horsepower"} | {name: 230}
    body = assert_names(post(carnn_served, {"dataframe_records": [car]}), name)
    assert body["message"] == f"{name}: unknown field; did you mean horsepower?"


def test_other_columns_are_allowed_and_listed_in_a_header(carnn_served):
    response = post(carnn_served, records(id=17, mpg=18.0))
    assert response.status_code == 200, response.text
    assert response.headers["X-Carnn-Ignored-Fields"] == "id, mpg"
    assert "X-Carnn-Ignored-Fields" not in post(carnn_served, records()).headers


@pytest.mark.parametrize(
    "number", ["1" + "0" * 400, "1e400", "-1e400", "9" * 5000, "1" + "0" * 30, "5e-324"]
)
def test_any_number_a_client_can_write_is_answered_or_a_400_naming_the_field(carnn_served, number):
    body = json.dumps(records()).replace('"weight": 3504', f'"weight": {number}')
    assert_names(post(carnn_served, body), "weight")


def test_repeated_columns_are_a_400_naming_the_column(carnn_served):
    split = {"columns": [*SEED_RECORD, "weight"], "data": [[*SEED_RECORD.values(), -1]]}
    assert_names(post(carnn_served, {"dataframe_split": split}), "weight")
    header = ",".join([*SEED_RECORD, "weight"])
    row = ",".join(str(v) for v in [*SEED_RECORD.values(), 2000])
    assert_names(post(carnn_served, f"{header}\n{row}\n", CSV), "weight")
    table = pa.table([pa.array([v]) for v in [*SEED_RECORD.values(), 2000.0]],
                     names=[*SEED_RECORD, "weight"])  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink)
    assert_names(post(carnn_served, sink.getvalue(), PARQUET), "weight")


def test_failed_rows_and_intervals_are_strict_json(carnn_served):
    batch = {"dataframe_records": [SEED_RECORD, {**SEED_RECORD, "weight": -1}],
             "params": {"errors": "column", "interval": 0.9}}  # fmt: skip
    response = post(carnn_served, batch)
    assert response.status_code == 200
    good, failed = strict_json(response)["predictions"]
    assert good["mpg_low"] < good["mpg"] < good["mpg_high"]
    assert failed["mpg"] is None
    assert failed["error"].startswith("weight:")


def test_an_interval_the_calibration_cannot_support_is_a_400_naming_the_largest(carnn_served):
    response = post(carnn_served, {**records(), "params": {"interval": 0.999}})
    body = assert_names(response, "interval")
    assert body["message"].startswith("interval: 0.999 is more than the calibration of")
    largest = float(body["message"].rsplit(" ", 1)[1])
    assert 0.9 < largest < 0.999
    ok = post(carnn_served, {**records(), "params": {"interval": largest}})
    assert ok.status_code == 200
    assert strict_json(ok)["predictions"][0]["mpg_high"] is not None
    for level in (True, "0.9", [0.9]):
        assert post(carnn_served, {**records(), "params": {"interval": level}}).status_code == 400


def test_a_tiny_parquet_body_of_millions_of_rows_is_a_413_from_its_footer(carnn_served):
    n = 5_000_000
    table = pa.table({k: pa.repeat(v, n) for k, v in SEED_RECORD.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    assert len(sink.getvalue()) < 1_000_000
    response = post(carnn_served, sink.getvalue(), PARQUET)
    assert response.status_code == 413, response.text
    assert "100000 rows" in strict_json(response)["message"]


def test_a_parquet_name_repeated_by_its_dictionary_is_read_without_copies(carnn_served):
    n = 100_000
    car = {**SEED_RECORD, "name": "chevy " + "x" * 2000}  # 200 MB if each row got its copy
    table = pa.table({k: pa.repeat(v, n) for k, v in car.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, use_dictionary=True, compression="zstd")
    response = post(carnn_served, sink.getvalue(), PARQUET)
    assert response.status_code == 200, response.text[:300]
    assert len(strict_json(response)["predictions"]) == n


def test_csv_and_json_over_the_row_limit_are_413(carnn_served):
    header = ",".join(SEED_RECORD)
    row = ",".join(str(v) for v in SEED_RECORD.values())
    many = header + "\n" + "\n".join([row] * 100_001) + "\n"
    assert post(carnn_served, many, CSV).status_code == 413
    assert post(carnn_served, {"dataframe_records": [{}] * 100_001}).status_code == 413
    split = {"columns": list(SEED_RECORD), "data": [list(SEED_RECORD.values())] * 100_001}
    assert post(carnn_served, {"dataframe_split": split}).status_code == 413


def test_csv_is_read_one_way_by_invocations_and_score_csv(carnn_served):
    header = ",".join(SEED_RECORD)
    row = ",".join(str(v) for v in SEED_RECORD.values())
    text = "\ufeff" + header + "\n" + row + "\n"  # a spreadsheet's byte order mark
    invoked = post(carnn_served, text.encode(), CSV)
    assert invoked.status_code == 200, invoked.text
    scored = requests.post(f"{carnn_served}/score.csv", data=text.encode(), timeout=30,
                           headers={"Content-Type": CSV})  # fmt: skip
    assert scored.status_code == 200, scored.text
    answer = pd.read_csv(io.StringIO(scored.text))
    assert list(answer.columns) == [*SEED_RECORD, "mpg", "error"]
    assert answer["mpg"][0] == pytest.approx(strict_json(invoked)["predictions"][0]["mpg"], 1e-2)


@pytest.fixture(scope="module")
def one_slot(trained, tracking_uri, tmp_path_factory):
    _, result = trained
    log = tmp_path_factory.mktemp("one-slot") / "serve.log"
    with carnn_server(result.model_uri, log, subprocess_env(tracking_uri),
                      "--max-in-flight", "1") as url:  # fmt: skip
        yield url


def test_beyond_the_in_flight_limit_a_503_with_retry_after_at_once(one_slot):
    port = int(one_slot.rsplit(":", 1)[1])
    body = json.dumps(records()).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])  # fmt: skip
        deadline = time.monotonic() + 10
        while True:  # the slow client holds the one slot while its body trickles in
            started = time.monotonic()
            busy = post(one_slot, records())
            if busy.status_code == 503 or time.monotonic() > deadline:
                break
        assert busy.status_code == 503, busy.text
        assert time.monotonic() - started < 5  # at once, not after a queue
        assert busy.headers["Retry-After"] == "1"
        assert strict_json(busy)["error_code"] == "OVERLOADED"
        assert requests.get(f"{one_slot}/ping", timeout=5).status_code == 200  # probes answered
        assert requests.get(f"{one_slot}/metrics", timeout=5).status_code == 200
        slow.sendall(body[10:])
        assert b"200 OK" in slow.recv(65536)
    assert post(one_slot, records()).status_code == 200  # the slot is free again


def test_error_bodies_name_only_known_fields_in_metrics(carnn_served):
    post(carnn_served, {"dataframe_records": [{**SEED_RECORD, "Weight": 1}]})
    metrics = requests.get(f"{carnn_served}/metrics", timeout=10).text
    lines = [line for line in metrics.splitlines() if line.startswith("carnn_invalid_inputs_total")]
    labels = {line.split('field="')[1].split('"')[0] for line in lines}
    assert labels <= {*INPUT_FIELDS, "input"}


def test_score_csv_takes_its_bytes_of_the_large_body_budget(carnn_served):
    """Two bodies of the largest size on their way fill the worker's large-body budget: a large
    CSV for /score.csv then gets a 503 at once, as /invocations would (not a third body held)."""
    port = int(carnn_served.rsplit(":", 1)[1])
    header = ",".join(SEED_RECORD)
    row = ",".join(str(v) for v in SEED_RECORD.values())
    large = header + "\n" + "\n".join([row] * 2000) + "\n"  # > 32 KB: a large body
    slow = []
    try:
        for _ in range(2):
            client = socket.create_connection(("127.0.0.1", port), timeout=30)
            slow.append(client)
            client.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: %d\r\n\r\n{" % (5 * 1024 * 1024)
            )
        deadline = time.monotonic() + 10
        while True:  # once both slow bodies are being read
            busy = requests.post(f"{carnn_served}/score.csv", data=large, timeout=30,
                                 headers={"Content-Type": CSV})  # fmt: skip
            if busy.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert busy.status_code == 503, busy.text[:300]
        assert busy.headers["Retry-After"] == "1"
        assert "bytes of large request bodies" in strict_json(busy)["message"]
    finally:
        for client in slow:
            client.close()
    deadline = time.monotonic() + 10
    while True:  # the budget is back once the worker has seen both clients go
        scored = requests.post(f"{carnn_served}/score.csv", data=large, timeout=30,
                               headers={"Content-Type": CSV})  # fmt: skip
        if scored.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert scored.status_code == 200, scored.text[:300]
    assert scored.headers["X-Carnn-Rows"] == "2000"


def test_small_chunked_bodies_are_not_weighed_as_the_largest(carnn_served):
    """A body sent without Content-Length takes large-body bytes only once it outgrows a small
    body: three slow chunked requests of a few cars are all answered (weighed as the largest,
    the third would have had a 503: the budget is two largest bodies)."""
    port = int(carnn_served.rsplit(":", 1)[1])
    body = json.dumps(records()).encode()
    half = len(body) // 2
    clients = []
    try:
        for _ in range(3):
            slow = socket.create_connection(("127.0.0.1", port), timeout=30)
            clients.append(slow)
            slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"%x\r\n%s\r\n" % (half, body[:half]))  # fmt: skip
        time.sleep(0.5)  # each is read as far as it was sent
        for slow in clients:
            rest = body[half:]
            slow.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        answers = [slow.recv(65536) for slow in clients]
    finally:
        for slow in clients:
            slow.close()
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers), answers


def test_a_small_parquet_body_of_many_rows_is_scored_in_full(carnn_served):
    n = 50_000  # a few kilobytes of Parquet: scored off the event loop, like any large body
    table = pa.table({k: pa.repeat(v, n) for k, v in SEED_RECORD.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    assert len(sink.getvalue()) < 32 * 1024
    response = post(carnn_served, sink.getvalue(), PARQUET)
    assert response.status_code == 200, response.text[:300]
    predictions = strict_json(response)["predictions"]
    assert len(predictions) == n
    assert len({p["mpg"] for p in predictions}) == 1
    assert requests.get(f"{carnn_served}/ping", timeout=5).status_code == 200
