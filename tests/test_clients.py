"""The clients of `carnn serve`: the Python client (importable and `carnn predict`) and the R
example, against a real server on 127.0.0.1: good records, a bad one, a token, a server that is
down. The client's retry rule (connection failures only) against tiny local sockets."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
import requests

from carnn_pyfunc.client import (
    AuthenticationError,
    CarnnClient,
    CarnnError,
    FieldError,
    ServiceTimeout,
    ServiceUnavailable,
)
from carnn_pyfunc.contract import FIELDS
from carnn_pyfunc.processes import free_port
from tests.helpers import ROOT, SEED_RECORD, VENV_BIN, carnn_server, subprocess_env

TOKEN = "a-client-test-token-of-some-length"
SMALL_CAR = {"cylinders": 4, "displacement": 97, "acceleration": 14.5, "weight": 2130, "year": 80}
RSCRIPT = shutil.which("Rscript") or "/usr/bin/Rscript"


@pytest.fixture(scope="module")
def guarded(trained, tracking_uri, tmp_path_factory) -> Iterator[str]:
    """A second `carnn serve`, with a token."""
    _, result = trained
    env = {**subprocess_env(tracking_uri), "CARNN_API_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("clients-guarded") / "serve.log"
    with carnn_server(result.model_uri, log, env) as url:
        yield url


@pytest.fixture
def down() -> str:
    """A URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def served_mpg(url: str, records: list[dict]) -> list[float]:
    response = requests.post(f"{url}/invocations", json={"dataframe_records": records}, timeout=60)
    assert response.status_code == 200, response.text
    return [p["mpg"] for p in response.json()["predictions"]]


def carnn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [f"{VENV_BIN}/carnn", *args], capture_output=True, text=True, timeout=120, env=env
    )


def rscript(url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RSCRIPT, str(ROOT / "examples" / "predict.R"), url],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


# --- the importable client ------------------------------------------------------------------


@pytest.mark.slow
def test_client_predicts_what_the_service_answers(carnn_served):
    records = [SEED_RECORD, SMALL_CAR, {**SMALL_CAR, "horsepower": float("nan"), "name": None}]
    mpg = CarnnClient(carnn_served, timeout=30).predict(records)
    assert mpg == pytest.approx(served_mpg(carnn_served, [SEED_RECORD, SMALL_CAR, SMALL_CAR]))
    assert all(8 < m < 60 for m in mpg)
    assert mpg[1] > mpg[0]  # a small 1980 four-cylinder beats a 1975 V8


@pytest.mark.slow
def test_client_field_error_carries_field_row_and_expectation(carnn_served):
    with pytest.raises(FieldError) as caught:
        CarnnClient(carnn_served).predict([SEED_RECORD, {**SMALL_CAR, "weight": -1}])
    err = caught.value
    assert (err.field, err.row, err.value) == ("weight", 1, "-1")
    assert err.expected == "pounds, from 200 to 20000"
    assert err.status == 400
    assert err.message.startswith("weight: row 1 has -1")
    with pytest.raises(FieldError) as caught:
        CarnnClient(carnn_served).predict([{k: v for k, v in SMALL_CAR.items() if k != "year"}])
    assert caught.value.field == "year"


def test_client_refuses_infinity_naming_field_and_row():
    with pytest.raises(FieldError) as caught:
        CarnnClient("http://127.0.0.1:9").predict([SMALL_CAR, {**SMALL_CAR, "weight": 1e400}])
    assert (caught.value.field, caught.value.row) == ("weight", 1)


@pytest.mark.slow
def test_client_sends_the_token_and_names_a_missing_one(guarded):
    assert len(CarnnClient(guarded, token=TOKEN).predict([SMALL_CAR])) == 1
    for token in (None, "wrong-token-wrong-token"):
        with pytest.raises(AuthenticationError, match="Authorization: Bearer"):
            CarnnClient(guarded, token=token).predict([SMALL_CAR])


def test_client_says_the_service_is_down_after_its_retries(down):
    with pytest.raises(ServiceUnavailable) as caught:
        CarnnClient(down, retries=2, backoff_s=0.01).predict([SMALL_CAR])
    assert str(caught.value) == f"cannot reach {down}: connection refused (tried 3 times)"


@contextlib.contextmanager
def fake_service(answers: list[bytes | None]) -> Iterator[tuple[str, list[int]]]:
    """A socket server on 127.0.0.1 that gives each connection the next answer (None: closes
    it without answering); yields its URL and the count of connections it took."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    taken, stop = [0], threading.Event()

    def serve() -> None:
        pending = list(answers)
        while pending and not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                taken[0] += 1
                conn.recv(65536)
                answer = pending.pop(0)
                if answer is not None:
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", taken
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def http_answer(status: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    return head.encode() + payload


def test_client_retries_a_dropped_connection_but_never_an_answer():
    ok = http_answer("200 OK", {"predictions": [{"mpg": 31.5}]})
    with fake_service([None, None, ok]) as (url, taken):
        assert CarnnClient(url, retries=2, backoff_s=0.01).predict([SMALL_CAR]) == [31.5]
    assert taken[0] == 3
    busy = http_answer("503 Service Unavailable", {"error_code": "BUSY", "message": "busy"})
    with fake_service([busy, ok]) as (url, taken):
        with pytest.raises(CarnnError, match="HTTP 503: busy") as caught:
            CarnnClient(url, retries=2, backoff_s=0.01).predict([SMALL_CAR])
        assert caught.value.status == 503
        assert taken[0] == 1


def test_client_timeout_is_its_own_error_and_not_retried():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ServiceTimeout, match=r"did not answer within 0\.3 s"):
            CarnnClient(url, timeout=0.3, retries=2).predict([SMALL_CAR])
    finally:
        listener.close()


# --- carnn predict --------------------------------------------------------------------------


@pytest.mark.slow
def test_carnn_predict_from_flags_prints_a_table(carnn_served, tracking_uri):
    flags = [f"--{k}={v}" for k, v in SEED_RECORD.items()]
    done = carnn("predict", "--url", carnn_served, *flags, env=subprocess_env(tracking_uri))
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == [*(f.name for f in FIELDS), "mpg", "l_per_100km"]
    expected = served_mpg(carnn_served, [SEED_RECORD])[0]
    assert float(row.split()[-2]) == pytest.approx(expected, abs=0.005)
    assert "chevy ltd" in row


@pytest.mark.slow
def test_carnn_predict_reads_csv_and_json_files_and_writes_csv(
    carnn_served, tracking_uri, tmp_path
):
    cars = tmp_path / "cars.csv"
    cars.write_text(
        "name,cylinders,displacement,horsepower,weight,acceleration,year,origin\n"
        "chevy ltd,8,307,130,3504,12,75,usa\n"
        "vw rabbit,4,97,,2130,14.5,80,\n"
    )
    env = subprocess_env(tracking_uri)
    done = carnn("predict", "--url", carnn_served, "-f", str(cars), "-o", "csv", env=env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["name"] for r in rows] == ["chevy ltd", "vw rabbit"]
    expected = served_mpg(carnn_served, [SEED_RECORD, {**SMALL_CAR, "name": "vw rabbit"}])
    assert [float(r["mpg"]) for r in rows] == pytest.approx(expected, abs=0.005)
    as_json = tmp_path / "cars.json"
    as_json.write_text(json.dumps({"dataframe_records": [SEED_RECORD, SMALL_CAR]}))
    done = carnn("predict", "--url", carnn_served, "-f", str(as_json), "-o", "csv", env=env)
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 2


@pytest.mark.slow
def test_carnn_predict_bad_record_token_and_down_server_exit_1(guarded, down, tracking_uri):
    env = subprocess_env(tracking_uri)
    env.pop("CARNN_API_TOKEN", None)
    car = [f"--{k}={v}" for k, v in SMALL_CAR.items()]
    done = carnn("predict", "--url", guarded, *car, env=env)
    assert done.returncode == 1
    assert "Error: this endpoint needs Authorization: Bearer <token>" in done.stderr
    good = carnn("predict", "--url", guarded, "--token", TOKEN, *car, env=env)
    assert good.returncode == 0, good.stderr
    with_token = {**env, "CARNN_API_TOKEN": TOKEN}
    bad = carnn("predict", "--url", guarded, *car, "--weight", "-1", env=with_token)
    assert bad.returncode == 1
    assert "Error: weight: row 0 has -1" in bad.stderr
    assert "expected pounds, from 200 to 20000" in bad.stderr
    assert "Traceback" not in bad.stderr
    gone = carnn("predict", "--url", down, "--retries", "1", *car, env=env)
    assert gone.returncode == 1
    assert f"Error: cannot reach {down}: connection refused (tried 2 times)" in gone.stderr
    assert "Traceback" not in gone.stderr


# --- the R example ----------------------------------------------------------------------------


@pytest.mark.slow
def test_r_example_prints_mpg_and_a_field_error(carnn_served):
    done = rscript(carnn_served, subprocess_env("sqlite:///unused.db"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"MPG from {carnn_served}:"
    mpg = [float(line.split("MPG")[0].split()[-1]) for line in lines[1:4]]
    assert all(8 < m < 60 for m in mpg)
    assert "chevrolet chevelle malibu" in lines[1]
    assert (
        "refused (HTTP 400): field weight, row 0, has -3504; expected pounds, from 200 to 20000"
        in done.stdout
    )


@pytest.mark.slow
def test_r_example_with_a_token_and_against_a_down_server(guarded, down):
    env = subprocess_env("sqlite:///unused.db")
    env.pop("CARNN_API_TOKEN", None)
    assert rscript(guarded, {**env, "CARNN_API_TOKEN": TOKEN}).returncode == 0
    refused = rscript(guarded, env)
    assert refused.returncode == 1
    assert "error (HTTP 401): this endpoint needs Authorization: Bearer <token>" in refused.stderr
    gone = rscript(down, env)
    assert gone.returncode == 1
    assert f"cannot reach {down}" in gone.stderr
