"""A real `mlflow models serve` process over HTTP on 127.0.0.1 (slow: starts the server once)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests

from carnn_pyfunc import data
from tests.helpers import SEED_RECORD, as_frame

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def records(auto_mpg):
    """1,000 raw records (rows repeated from the data set, with its missing horsepower)."""
    rows = auto_mpg.drop(columns=[data.TARGET]).sample(1000, replace=True, random_state=1)
    return rows.reset_index(drop=True)


def predictions(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([row["mpg"] for row in response.json()["predictions"]])


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(f"{url}/invocations", timeout=60, **kwargs)


def test_seed_api_payload_works_as_dataframe_records(served, loaded_model):
    mpg = predictions(post(served, json={"dataframe_records": [SEED_RECORD]}))
    assert mpg.shape == (1,)
    expected = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].to_numpy()
    np.testing.assert_allclose(mpg, expected, rtol=1e-6)


@pytest.mark.parametrize("n_rows", [1, 1000])
@pytest.mark.parametrize("payload", ["dataframe_records", "dataframe_split", "csv"])
def test_served_predictions_equal_in_process(served, loaded_model, records, payload, n_rows):
    frame = records.head(n_rows)
    if payload == "csv":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        response = post(served, data=buffer.getvalue(), headers={"Content-Type": "text/csv"})
    else:
        orient = "records" if payload == "dataframe_records" else "split"
        body = frame.to_json(orient=orient, index=False)
        response = post(served, data=f'{{"{payload}": {body}}}', headers=JSON)
    served_mpg = predictions(response)
    expected = loaded_model.predict(frame)["mpg"].to_numpy()
    np.testing.assert_allclose(served_mpg, expected, rtol=1e-6)  # float32 network


def test_optional_fields_may_be_missing_or_null(served):
    required_only = {k: SEED_RECORD[k] for k in data.FEATURE_FIELDS if k in {
        "cylinders", "displacement", "weight", "acceleration", "year"}}  # fmt: skip
    nulls = {**SEED_RECORD, "horsepower": None, "origin": None, "name": None}
    mpg = predictions(post(served, json={"dataframe_records": [required_only, nulls]}))
    assert np.isfinite(mpg).all()
    assert mpg[0] == pytest.approx(mpg[1])


BAD_PAYLOADS = {
    "wrong type": ({"dataframe_records": [{**SEED_RECORD, "weight": "heavy"}]}, "weight"),
    "missing required column": (
        {"dataframe_records": [{k: v for k, v in SEED_RECORD.items() if k != "weight"}]},
        "weight",
    ),
    "null required value": ({"dataframe_records": [{**SEED_RECORD, "weight": None}]}, "weight"),
    "negative weight": ({"dataframe_records": [{**SEED_RECORD, "weight": -3504}]}, "weight"),
    "origin 5": ({"dataframe_records": [{**SEED_RECORD, "origin": 5}]}, "origin"),
    "zero cylinders": ({"dataframe_records": [{**SEED_RECORD, "cylinders": 0}]}, "cylinders"),
    "name not text": ({"dataframe_records": [{**SEED_RECORD, "name": ["chevy", "ltd"]}]}, "name"),
    "empty list": ({"dataframe_records": []}, "missing inputs"),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_bad_payloads_get_400_naming_the_problem_without_stack_trace(served, case):
    payload, named = BAD_PAYLOADS[case]
    response = post(served, json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert named in body["message"]
    assert body["error_code"] in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}
    assert "stack_trace" not in body
    assert "Traceback" not in response.text


def test_bad_row_in_a_batch_is_named(served):
    rows = [SEED_RECORD, SEED_RECORD, {**SEED_RECORD, "displacement": 0}]
    response = post(served, json={"dataframe_records": rows})
    assert response.status_code == 400
    assert "displacement: row 2 has 0" in response.json()["message"]


def test_malformed_json_is_a_400(served):
    response = post(served, data="{not json", headers=JSON)
    assert response.status_code == 400
    assert "stack_trace" not in response.json()
