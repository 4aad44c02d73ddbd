"""A fuzzer that speaks all of JSON, against a real `carnn serve`, in every request format.

Hypothesis draws records whose values are any JSON value (unbounded integers, every float
including subnormals, -0.0 and the largest, booleans, unicode text and digits, nulls, nested
lists and objects), field names that are right, near misses or anything, repeated keys and
columns, and sends them as dataframe_records, dataframe_split, instances, inputs, CSV, Parquet
and to /score.csv. Every answer must be a 200 or a 4xx, in strict JSON (or CSV), with a finite
MPG or null per row: never a 5xx. At least 5,000 requests in all.
"""

from __future__ import annotations

import csv
import io
import json
import math

import hypothesis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import strategies as st

from tests.helpers import SEED_RECORD

pytestmark = pytest.mark.slow

FIELDS = list(SEED_RECORD)
EXAMPLES = 750  # per format; 7 formats: 5,250 requests

DIGITS = "0123456789\uff10\uff11\uff12\uff13\u0663\u0a69_ .e-+"  # other scripts' digits too
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: 1e400 written out, thousands of digits
    st.integers(300, 5000).map(lambda digits: 10**digits - 1),  # far beyond float range
    st.integers(300, 5000).map(lambda digits: 1 - 10**digits),
    st.floats(allow_nan=False, allow_infinity=False),  # subnormals, -0.0, 1.79e308
    st.floats(min_value=0, max_value=1e-300),
    st.text(max_size=12),
    st.text(alphabet=DIGITS, max_size=8),
    st.sampled_from(["8", " 8 ", "1_000", "NaN", "inf", "", "null", "true"]),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                         max_size=3), max_leaves=6
)  # fmt: skip
plausible = {
    "cylinders": st.sampled_from([3, 4, 6, 8]),
    "displacement": st.floats(10, 1000),
    "horsepower": st.one_of(st.none(), st.floats(5, 2000)),
    "weight": st.floats(200, 20000),
    "acceleration": st.floats(1, 100),
    "year": st.integers(70, 82) | st.integers(1970, 2030),
    "origin": st.sampled_from([None, 1, 2, 3]),
    "name": st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["chevy ltd", "vw rabbit"])),
}
names = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(["Horsepower", "horse_power", "Year", "weights", "id", "mpg", "label"]),
    st.text(max_size=10),
)


@st.composite
def car(draw) -> list[tuple[str, object]]:
    """One record as (key, value) pairs: mostly plausible, some values and keys anything;
    a key may repeat (JSON objects may hold one twice)."""
    pairs = [(f, draw(plausible[f])) for f in FIELDS if draw(st.integers(0, 9)) > 0]
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((draw(names), draw(json_values)))
    if pairs and draw(st.booleans()):
        i = draw(st.integers(0, len(pairs) - 1))
        pairs[i] = (pairs[i][0], draw(json_values))
    return pairs


batches = st.lists(car(), min_size=1, max_size=4)
modes = st.sampled_from(["raise", "column"]) | json_values
levels = st.floats(0, 1) | json_values
params = st.none() | st.fixed_dictionaries({}, optional={"errors": modes, "interval": levels})


def json_text(value) -> str:
    """JSON as a client may write it: integers of any length, repeated keys kept."""
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{json_text(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value) if abs(value) < 10**4000 else "9" * 4500
    return json.dumps(value)


class Pairs(list):
    """An object written key by key (repeats included)."""


def body_of(format_: str, batch, extra) -> tuple[bytes, str]:
    columns = list(dict.fromkeys(k for pairs in batch for k, _ in pairs))
    rows = [dict(pairs) for pairs in batch]
    if format_ == "records":
        document = Pairs([("dataframe_records", [Pairs(p) for p in batch])])
    elif format_ == "split":
        data = [[row.get(c) for c in columns] for row in rows]
        if columns and len(batch) > 1:
            columns = [*columns, columns[0]] if len(batch) == 3 else columns  # a repeated column
            data = [[*r, r[0]] if len(batch) == 3 else r for r in data]
        document = {"dataframe_split": {"columns": columns, "data": data}}
    elif format_ in ("instances", "inputs"):
        document = {format_: {c: [row.get(c) for row in rows] for c in columns}}
    else:
        raise ValueError(format_)
    if extra is not None:
        document = Pairs([*(document if isinstance(document, Pairs) else document.items()),
                          ("params", extra)])  # fmt: skip
    return json_text(document).encode(), "application/json"


def csv_of(batch) -> bytes:
    columns = list(dict.fromkeys(k for pairs in batch for k, _ in pairs))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for pairs in batch:
        row = dict(pairs)
        writer.writerow(["" if row.get(c) is None else json_text(row[c])[:50] for c in columns])
    return out.getvalue().encode()


def parquet_of(batch) -> bytes:
    columns = list(dict.fromkeys(k for pairs in batch for k, _ in pairs))
    rows = [dict(pairs) for pairs in batch]
    arrays = []
    for c in columns:
        values = [r.get(c) for r in rows]
        try:
            array = pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            array = None
        kind = array.type if array is not None else None
        if kind is None or not (pa.types.is_primitive(kind) or pa.types.is_string(kind)):
            # nested or mixed values: written as their text
            array = pa.array([None if v is None else json_text(v)[:50] for v in values])
        arrays.append(array)
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays, names=columns), sink)
    return sink.getvalue()


def check(response: requests.Response, n_rows: int) -> None:
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    assert "stack_trace" not in response.text
    if response.headers["content-type"].startswith("text/csv"):
        assert response.status_code == 200
        return

    def refuse(token: str):
        raise AssertionError(f"non-strict JSON token {token}")

    body = json.loads(response.text, parse_constant=refuse)
    if response.status_code == 200:
        predictions = body["predictions"]
        assert len(predictions) == n_rows  # never a dropped row
        for p in predictions:
            assert p["mpg"] is None or math.isfinite(p["mpg"])
            assert p["mpg"] is not None or p.get("error")
    else:
        assert set(body) == {"error_code", "message", "errors"}, body


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


FORMATS = ["records", "split", "instances", "inputs", "csv", "parquet", "score.csv"]


@pytest.mark.parametrize("format_", FORMATS)
def test_every_generated_request_is_answered_without_a_5xx_in_strict_json(
    carnn_served, session, format_
):
    sent = []

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
    @hypothesis.given(batch=batches, extra=params)
    def run(batch, extra):
        path = "/score.csv" if format_ == "score.csv" else "/invocations"
        if format_ in ("csv", "score.csv"):
            body, content_type = csv_of(batch), "text/csv"
        elif format_ == "parquet":
            body, content_type = parquet_of(batch), "application/vnd.apache.parquet"
        else:
            body, content_type = body_of(format_, batch, extra)
        response = session.post(f"{carnn_served}{path}", data=body, timeout=60,
                                headers={"Content-Type": content_type})  # fmt: skip
        sent.append(response.status_code)
        check(response, len(batch))

    run()
    assert len(sent) >= EXAMPLES * 0.95  # hypothesis ran (nearly) every example
    assert any(s == 200 for s in sent)
    assert any(400 <= s < 500 for s in sent)
