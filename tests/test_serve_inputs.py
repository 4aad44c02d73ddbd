"""Bad input against a real `carnn serve`: every answer is a 200 with finite MPG or a 4xx that
names a field; never a 5xx, a stack trace or the input echoed back. Hand-written cases,
Hypothesis-generated records, and Schemathesis on the service's own OpenAPI document."""

from __future__ import annotations

import json
import math
import re
import subprocess

import hypothesis
import pytest
import requests
from hypothesis import strategies as st

from carnn_pyfunc.processes import BIN
from tests.helpers import SEED_RECORD

pytestmark = pytest.mark.slow

MARKER = "echo-marker-5150"  # sent in every bad request; must never come back
REQUIRED = ("cylinders", "displacement", "weight", "acceleration", "year")


def without(field: str) -> dict:
    return {k: v for k, v in SEED_RECORD.items() if k != field}


def bad(**changes) -> dict:
    return {**SEED_RECORD, "name": MARKER, **changes}


JSON = "application/json"
# (body, content type, the field the error must name, or None for a request-level error)
CASES: dict[str, tuple[object, str, str | None]] = {
    **{f"{f} missing": ({"dataframe_records": [without(f)]}, JSON, f) for f in REQUIRED},
    **{f"{f} null": ({"dataframe_records": [bad(**{f: None})]}, JSON, f) for f in REQUIRED},
    **{f"{f} text": ({"dataframe_records": [bad(), {**SEED_RECORD, f: "lots"}]}, JSON, f)
       for f in REQUIRED},
    **{f"{f} list": ({"dataframe_records": [bad(**{f: [1, 2]})]}, JSON, f) for f in REQUIRED},
    **{f"{f} negative": ({"dataframe_records": [bad(**{f: -5})]}, JSON, f) for f in REQUIRED},
    "weight zero": ({"dataframe_records": [bad(weight=0)]}, JSON, "weight"),
    "weight huge": ({"dataframe_records": [bad(weight=1e9)]}, JSON, "weight"),
    "cylinders fractional": ({"dataframe_records": [bad(cylinders=4.5)]}, JSON, "cylinders"),
    "year fractional": ({"dataframe_records": [bad(year=76.5)]}, JSON, "year"),
    "year 150": ({"dataframe_records": [bad(year=150)]}, JSON, "year"),
    "year 2150": ({"dataframe_records": [bad(year=2150)]}, JSON, "year"),
    "origin 0": ({"dataframe_records": [bad(origin=0)]}, JSON, "origin"),
    "origin 4": ({"dataframe_records": [bad(origin=4)]}, JSON, "origin"),
    "origin text": ({"dataframe_records": [bad(origin="japan")]}, JSON, "origin"),
    "horsepower zero": ({"dataframe_records": [bad(horsepower=0)]}, JSON, "horsepower"),
    "horsepower object": ({"dataframe_records": [bad(horsepower={"a": 1})]}, JSON, "horsepower"),
    "name number": ({"dataframe_records": [bad(name=123)]}, JSON, "name"),
    "name list": ({"dataframe_records": [bad(), {**SEED_RECORD, "name": ["ford"]}]}, JSON, "name"),
    "name object": ({"dataframe_records": [{**SEED_RECORD, "name": {"maker": "x"}}]}, JSON, "name"),
    "row not an object": ({"dataframe_records": [bad(), 5]}, JSON, "input"),
    "bad row late in a batch": (
        {"dataframe_records": [SEED_RECORD] * 50 + [bad(displacement=0)]}, JSON, "displacement"
    ),
    "split ragged rows": (
        {"dataframe_split": {"columns": ["weight", "year"], "data": [[1], [MARKER, 2, 3]]}},
        JSON,
        "input",
    ),
    "split columns not text": (
        {"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}, JSON, "input"
    ),
    "split no data": ({"dataframe_split": {"columns": ["weight"], "data": []}}, JSON, "input"),
    "split not an object": ({"dataframe_split": [MARKER]}, JSON, "input"),
    "inputs ragged columns": ({"inputs": {"weight": [1, 2], "year": [MARKER]}}, JSON, "input"),
    "instances a number": ({"instances": 5}, JSON, "input"),
    "empty records": ({"dataframe_records": []}, JSON, "input"),
    "no format key": ({"records": [SEED_RECORD]}, JSON, "input"),
    "two format keys": (
        {"dataframe_records": [SEED_RECORD], "inputs": [SEED_RECORD]}, JSON, "input"
    ),
    "params not an object": (
        {"dataframe_records": [SEED_RECORD], "params": [MARKER]}, JSON, "params"
    ),
    "a JSON list": ([SEED_RECORD, MARKER], JSON, None),
    "a JSON string": (MARKER, JSON, None),
    "malformed JSON": (f'{{"dataframe_records": [{MARKER}', JSON, None),
    "NaN weight": ('{"dataframe_records": [{"cylinders": 8, "displacement": 307, "weight": NaN,'
                   '"acceleration": 12, "year": 75, "name": "' + MARKER + '"}]}', JSON, "weight"),
    "Infinity weight": ('{"dataframe_records": [{"cylinders": 8, "displacement": 307, "weight": '
                        'Infinity, "acceleration": 12, "year": 75}]}', JSON, "weight"),
    "not UTF-8": (b'{"dataframe_records": [{"name": "\xff\xfe"}]}', JSON, None),
    "CSV not a table": (f'"{MARKER}\n1,2,3\n'.encode(), "text/csv", None),
    "CSV missing column": (f"weight,year,name\n3500,75,{MARKER}\n", "text/csv", "cylinders"),
    "CSV text in a number": (
        f"cylinders,displacement,weight,acceleration,year,name\n8,307,heavy,12,75,{MARKER}\n",
        "text/csv",
        "weight",
    ),
    "CSV header only": ("cylinders,displacement,weight,acceleration,year\n", "text/csv", "input"),
    "Parquet garbage": (MARKER.encode() * 10, "application/vnd.apache.parquet", None),
    "unknown content type": (MARKER, "application/xml", None),
    "no content type": (MARKER, "", None),
    "latin-1 charset": (
        {"dataframe_records": [SEED_RECORD]}, "application/json; charset=latin-1", None
    ),
    "unknown parameter": ({"dataframe_records": [SEED_RECORD]}, "application/json; q=1", None),
}  # fmt: skip


def check_answer(response: requests.Response, field: str | None = None) -> None:
    """200 with finite MPG, or a 4xx in the error shape that names ``field`` (if given)."""
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert "stack_trace" not in response.text
    assert MARKER not in response.text
    body = response.json()
    if response.status_code == 200:
        assert all(math.isfinite(p["mpg"]) for p in body["predictions"])
        return
    assert 400 <= response.status_code < 500
    assert set(body) == {"error_code", "message", "errors"}
    if field is not None:
        assert field == "input" or field in body["message"]
        assert any(e["field"] == field for e in body["errors"]), body


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_request_gets_a_4xx_naming_the_field(carnn_served, case):
    body, content_type, field = CASES[case]
    if isinstance(body, dict | list):
        body = json.dumps(body)
    response = requests.post(
        f"{carnn_served}/invocations", data=body, headers={"Content-Type": content_type}, timeout=60
    )
    assert 400 <= response.status_code < 500, response.text
    check_answer(response, field)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
records = st.dictionaries(
    st.sampled_from([*SEED_RECORD, "extra"]), values, max_size=len(SEED_RECORD) + 1
).map(lambda changes: {**SEED_RECORD, **changes})


@hypothesis.settings(max_examples=80, deadline=None, derandomize=True)
@hypothesis.given(batch=st.lists(records, min_size=1, max_size=5))
def test_generated_records_get_finite_mpg_or_a_named_field(carnn_served, batch):
    response = requests.post(
        f"{carnn_served}/invocations", json={"dataframe_records": batch}, timeout=60
    )
    check_answer(response)
    if response.status_code == 200:
        assert len(response.json()["predictions"]) == len(batch)
    else:
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields & {*SEED_RECORD, "input"}, response.text


def test_the_openapi_document_holds_for_what_schemathesis_sends(carnn_served, tmp_path):
    """Schemathesis generates requests from /openapi.json (valid and invalid ones) and checks:
    no 5xx, documented status codes and content types, answers that match their schemas."""
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,"
    checks += "response_schema_conformance"
    completed = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{carnn_served}/openapi.json", "--checks", checks,
         "--max-examples", "40", "--seed", "1", "--workers", "1", "--no-color",
         "--request-timeout", "60"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert "No issues found" in completed.stdout
    generated = re.search(r"(\d+) generated", completed.stdout)
    assert generated, completed.stdout[-2000:]
    assert int(generated.group(1)) >= 100
