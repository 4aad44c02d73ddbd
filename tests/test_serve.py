"""`carnn serve` for real over HTTP on 127.0.0.1: MLflow's protocol, errors, auth, metrics."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import requests

from carnn_pyfunc import data
from tests.helpers import SEED_RECORD, carnn_server, subprocess_env

pytestmark = pytest.mark.slow

TOKEN = "a-test-token-of-some-length"


@pytest.fixture(scope="module")
def records(auto_mpg):
    rows = auto_mpg.drop(columns=[data.TARGET]).sample(300, replace=True, random_state=2)
    return rows.reset_index(drop=True)


@pytest.fixture(scope="module")
def guarded(trained, tracking_uri, tmp_path_factory):
    """A second server with a token and a CORS allow-list."""
    _, result = trained
    env = {**subprocess_env(tracking_uri), "CARNN_API_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("guarded") / "serve.log"
    with carnn_server(result.model_uri, log, env, "--cors-origin", "http://app.example") as url:
        yield url


def mpg_of(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([row["mpg"] for row in response.json()["predictions"]])


def post(url, **kwargs):
    return requests.post(f"{url}/invocations", timeout=60, **kwargs)


def bodies(frame: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """The same records in every input format the protocol has."""
    as_json = lambda d: json.dumps(d, default=str).encode()  # noqa: E731
    plain = json.loads(frame.to_json(orient="records"))
    split = json.loads(frame.to_json(orient="split", index=False))
    columns = {k: list(v.values()) for k, v in json.loads(frame.to_json(orient="columns")).items()}
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    return {
        "dataframe_records": (as_json({"dataframe_records": plain}), "application/json"),
        "dataframe_split": (as_json({"dataframe_split": split}), "application/json"),
        "instances": (as_json({"instances": plain}), "application/json"),
        "inputs columns": (as_json({"inputs": columns}), "application/json"),
        "with params": (
            as_json({"dataframe_records": plain, "params": {"unused": 1}}),
            "application/json; charset=utf-8",
        ),
        "csv": (frame.to_csv(index=False).encode(), "text/csv"),
        "parquet": (parquet.getvalue(), "application/vnd.apache.parquet"),
    }


@pytest.mark.parametrize("n_rows", [1, 300])
def test_every_input_format_answers_the_in_process_pyfunc(
    carnn_served, loaded_model, records, n_rows
):
    frame = records.head(n_rows)
    expected = loaded_model.predict(frame)["mpg"].to_numpy()
    for name, (body, content_type) in bodies(frame).items():
        served = mpg_of(post(carnn_served, data=body, headers={"Content-Type": content_type}))
        np.testing.assert_allclose(served, expected, rtol=1e-6, err_msg=name)  # float32 network


def test_same_answers_and_status_classes_as_mlflow_models_serve(carnn_served, served, records):
    cases = [
        ({"dataframe_records": [SEED_RECORD]}, "application/json"),
        ({"dataframe_records": [{**SEED_RECORD, "weight": -1}]}, "application/json"),
        ({"dataframe_records": [{**SEED_RECORD, "weight": "heavy"}]}, "application/json"),
        ({"dataframe_records": [{**SEED_RECORD, "extra": 1}]}, "application/json"),
        ({"dataframe_split": {"columns": ["weight"], "data": [[1]]}}, "application/json"),
        ({"dataframe_records": []}, "application/json"),
        ({"records": [SEED_RECORD]}, "application/json"),
        ({"dataframe_records": [SEED_RECORD], "instances": [SEED_RECORD]}, "application/json"),
        ({"dataframe_records": [SEED_RECORD]}, "application/xml"),
        ({"dataframe_records": [SEED_RECORD]}, "application/json; charset=latin-1"),
    ]
    for payload, content_type in cases:
        body = json.dumps(payload)
        ours = post(carnn_served, data=body, headers={"Content-Type": content_type})
        theirs = post(served, data=body, headers={"Content-Type": content_type})
        assert ours.status_code // 100 == theirs.status_code // 100, (payload, content_type)
        if ours.status_code == 200:
            np.testing.assert_allclose(mpg_of(ours), mpg_of(theirs), rtol=1e-6)
    csv = records.head(20).to_csv(index=False)
    np.testing.assert_allclose(
        mpg_of(post(carnn_served, data=csv, headers={"Content-Type": "text/csv"})),
        mpg_of(post(served, data=csv, headers={"Content-Type": "text/csv"})),
        rtol=1e-6,
    )


def test_an_error_names_field_and_row_and_echoes_nothing(carnn_served):
    secret = "secret-customer-id-778"
    rows = [
        SEED_RECORD,
        {**SEED_RECORD, "name": secret},
        {**SEED_RECORD, "weight": -3504, "name": secret},
    ]
    response = post(carnn_served, json={"dataframe_records": rows})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("weight: row 2 has -3504")
    assert body["errors"] == [
        {"row": 2, "field": "weight", "expected": "pounds, from 200 to 20000",
         "value": "-3504"}
    ]  # fmt: skip
    assert secret not in response.text


def test_model_describes_the_served_version(carnn_served, trained):
    _, result = trained
    info = requests.get(f"{carnn_served}/model", timeout=10).json()
    assert info["name"] == "carnn-test"
    assert info["version"] == result.registered_version
    assert info["run_id"] == result.run_id
    assert {f["name"] for f in info["fields"]} == {*data.FEATURE_FIELDS}
    assert requests.get(f"{carnn_served}/version", timeout=10).text.startswith("3.")
    for probe in ("/ping", "/health"):
        assert requests.get(f"{carnn_served}{probe}", timeout=10).status_code == 200


def test_metrics_count_what_was_sent(carnn_served):
    def sample(text: str, name: str, labels: str = "") -> float:
        pattern = (
            rf"^{re.escape(name + labels)} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
        )
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def scrape() -> str:
        return requests.get(f"{carnn_served}/metrics", timeout=10).text

    before = scrape()
    for _ in range(3):
        post(carnn_served, json={"dataframe_records": [SEED_RECORD, SEED_RECORD]})
    post(carnn_served, json={"dataframe_records": [{**SEED_RECORD, "origin": 7}]})
    after = scrape()
    rows = "carnn_rows_predicted_total"
    assert sample(after, rows) - sample(before, rows) == 6
    origin = '{field="origin"}'
    assert (
        sample(after, "carnn_invalid_inputs_total", origin)
        - sample(before, "carnn_invalid_inputs_total", origin)
        == 1
    )
    ok = '{method="POST",route="/invocations",status="200"}'
    assert (
        sample(after, "carnn_requests_total", ok) - sample(before, "carnn_requests_total", ok) == 3
    )
    assert 'carnn_model_info{alias="",name="carnn-test"' in after
    assert "carnn_request_duration_seconds_bucket" in after
    assert "carnn_requests_in_flight" in after


def test_limits_answer_413_415_and_400_never_500(carnn_served):
    big = b'{"dataframe_records": [' + b"1," * (3 * 1024 * 1024) + b"1]}"
    assert (
        post(carnn_served, data=big, headers={"Content-Type": "application/json"}).status_code
        == 413
    )
    deep = "[" * 100_000 + "]" * 100_000
    response = post(carnn_served, data=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["message"]
    assert post(carnn_served, data=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert (
        post(carnn_served, data=b"\xff\xfe", headers={"Content-Type": "text/csv"}).status_code
        == 400
    )


def test_auth_guards_data_routes_and_leaves_probes_open(guarded):
    payload = {"dataframe_records": [SEED_RECORD]}
    for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        response = post(guarded, json=payload, headers=wrong)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "predictions" not in response.text
        for route in ("/model", "/metrics"):
            assert requests.get(f"{guarded}{route}", headers=wrong, timeout=10).status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert mpg_of(post(guarded, json=payload, headers=good)).shape == (1,)
    assert requests.get(f"{guarded}/metrics", headers=good, timeout=10).status_code == 200
    for probe in ("/ping", "/health"):
        assert requests.get(f"{guarded}{probe}", timeout=10).status_code == 200
    doc = requests.get(f"{guarded}/openapi.json", timeout=10).json()
    assert doc["paths"]["/invocations"]["post"]["security"] == [{"bearer": []}]


def test_cors_allows_only_the_listed_origins(guarded):
    def preflight(origin: str) -> requests.Response:
        return requests.options(
            f"{guarded}/invocations",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"},
            timeout=10,
        )  # fmt: skip

    assert preflight("http://app.example").headers["access-control-allow-origin"] == (
        "http://app.example"
    )
    assert "access-control-allow-origin" not in preflight("http://evil.example").headers


def test_openapi_has_request_schemas_from_the_field_table(carnn_served):
    doc = requests.get(f"{carnn_served}/openapi.json", timeout=10).json()
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == ["cylinders", "displacement", "weight", "acceleration", "year"]
    assert record["properties"]["weight"]["minimum"] == 200
    assert record["properties"]["cylinders"]["type"] == "integer"
    content = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv", "application/vnd.apache.parquet"}
    docs = requests.get(f"{carnn_served}/docs", timeout=10)
    assert docs.status_code == 200
    assert "/invocations" in docs.text
