"""MLflow's scoring protocol, parsed without its faults: request bodies -> records and params.

The same inputs as ``mlflow models serve``: JSON with exactly one of ``dataframe_records``,
``dataframe_split``, ``instances`` or ``inputs`` (plus optional ``params``), CSV
(``text/csv``) or Parquet (``application/vnd.apache.parquet``), UTF-8 only. JSON records are
handed to the model as parsed (a list of dicts: no DataFrame built on the hot path); columnar
inputs become a DataFrame. Every failure is an :class:`ApiError` that echoes nothing.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from carnn_pyfunc.serving.errors import ApiError, bad_request

JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")


@dataclass(frozen=True)
class Parsed:
    records: list[dict] | pd.DataFrame
    params: dict[str, Any] | None


def parse(body: bytes, content_type: str | None) -> Parsed:
    """The records and params of an /invocations request, or an ApiError."""
    mime, _, rest = (content_type or "").partition(";")
    mime = mime.strip().lower()
    for parameter in filter(None, (p.strip() for p in rest.split(";"))):
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", f"unknown content type parameter {key!r}")
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "only the UTF-8 charset is supported")
    if mime == JSON:
        return _parse_json(body)
    if mime == CSV:
        return Parsed(_read_table(pd.read_csv, io.StringIO(_text(body)), "CSV"), None)
    if mime == PARQUET:
        return Parsed(_read_table(pd.read_parquet, io.BytesIO(body), "Parquet"), None)
    raise ApiError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"content type {mime or 'missing'!r} is not supported; expected one of "
        f"{', '.join(CONTENT_TYPES)}",
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request(f"the body is not valid UTF-8 (byte {err.start})") from None


def _read_table(reader, source, kind: str) -> pd.DataFrame:
    import pyarrow  # pandas reads Parquet with it; its errors are its own classes

    unreadable = (ValueError, TypeError, OSError, UnicodeError, pyarrow.ArrowException)
    try:
        frame = reader(source)
    except unreadable as err:  # pandas' ParserError is a ValueError
        reason = type(err).__name__
        raise bad_request(f"the body is not a readable {kind} table ({reason})") from None
    if len(frame) == 0:
        raise bad_request(f"the {kind} table has no rows: expected at least one car", "input")
    return frame


def _parse_json(body: bytes) -> Parsed:
    try:
        document = json.loads(_text(body))
    except json.JSONDecodeError as err:
        raise bad_request(f"the body is not valid JSON: {err.msg} at character {err.pos}") from None
    except RecursionError:
        raise bad_request("the JSON body is nested too deeply") from None
    if not isinstance(document, dict):
        raise bad_request(f"expected a JSON object with one of {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in document]
    if len(keys) != 1:
        raise bad_request(f"expected exactly one of {', '.join(FORMATS)}; got {len(keys)}", "input")
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise bad_request("params: expected an object of parameter names and values", "params")
    return Parsed(_records(keys[0], document[keys[0]]), params)


def _records(key: str, value: Any) -> list[dict] | pd.DataFrame:
    if key == "dataframe_split":
        return _split(value)
    if isinstance(value, list):  # records: each item an object of fields
        if not value:
            raise bad_request(f"{key}: no records: expected at least one car", "input")
        return value
    if isinstance(value, dict) and key in ("instances", "inputs"):  # columns: name -> values
        return _columns(key, value)
    raise bad_request(f"{key}: expected a list of records", "input")


def _split(value: Any) -> pd.DataFrame:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise bad_request("dataframe_split: expected an object with columns and data", "input")
    columns, rows = value["columns"], value.get("data")
    if not all(isinstance(c, str) for c in columns):
        raise bad_request("dataframe_split: columns must be field names (text)", "input")
    if not isinstance(rows, list) or not rows:
        raise bad_request("dataframe_split: data: expected a non-empty list of rows", "input")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"dataframe_split: row {i} does not have one value per column",
                [{"row": i, "field": "input", "expected": f"{len(columns)} values", "value": None}],
            )
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _columns(key: str, value: dict) -> pd.DataFrame:
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if not value or len(lengths) != 1 or -1 in lengths or 0 in lengths:
        raise bad_request(f"{key}: expected equally long, non-empty lists of values", "input")
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in value.items()})
