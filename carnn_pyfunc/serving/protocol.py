"""MLflow's scoring protocol, parsed strictly and within bounds: request bodies -> records.

The same inputs as ``mlflow models serve``: JSON with exactly one of ``dataframe_records``,
``dataframe_split``, ``instances`` or ``inputs`` (plus optional ``params``), CSV (``text/csv``)
or Parquet (``application/vnd.apache.parquet``), UTF-8 only.

- JSON is decoded by msgspec: any number a client can write is a number or a 400 naming where
  it is (``1e400``, an integer of 5,000 digits), nesting too deep is a 400, and every JSON format
  becomes records (a list of dicts) whose values keep their JSON types: the contract then refuses
  a boolean or a string where a number belongs. Within one object a repeated key keeps its last
  value (as JavaScript's ``JSON.parse``); a repeated column of ``dataframe_split`` is a 400.
- CSV and Parquet become DataFrames (CSV cells are text, parsed as numbers by the contract); a
  repeated column is a 400, and the row limit is checked before the table is decoded (Parquet
  from its footer, CSV by its line count).

Every failure is an :class:`ApiError` that echoes nothing but a short, truncated value.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import pandas as pd

from carnn_pyfunc.contract import INPUT_FIELDS
from carnn_pyfunc.contract.columns import check_columns
from carnn_pyfunc.serving.errors import ApiError, bad_request

JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)
FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
_BOM = b"\xef\xbb\xbf"  # spreadsheets often write UTF-8 with one; /invocations and /score.csv
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Parsed:
    records: list[dict] | pd.DataFrame
    params: dict[str, Any] | None
    ignored: list[str]  # columns that are no field (sent back in X-Carnn-Ignored-Fields)


def parse(body: bytes, content_type: str | None, max_rows: int) -> Parsed:
    """The records and params of an /invocations request, or an ApiError (413 over
    ``max_rows`` rows) or InvalidRecordError (a misspelt field name)."""
    mime = media_type(content_type)
    if mime == JSON:
        records, params = _parse_json(body, max_rows)
        keys = set().union(*records) if all(isinstance(r, dict) for r in records) else ()
        return Parsed(records, params, check_columns(keys, ordered=False))
    if mime == CSV:
        cells = read_csv(body, max_rows)
        return Parsed(as_records(cells), None, check_columns(cells.columns.tolist()))
    if mime == PARQUET:
        frame, ignored = _read_parquet(body, max_rows)
        return Parsed(frame, None, ignored)
    raise ApiError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"content type {mime or 'missing'!r} is not supported; expected one of "
        f"{', '.join(CONTENT_TYPES)}",
    )


def media_type(content_type: str | None) -> str:
    """The media type, lower case; a 415 for a parameter other than a UTF-8 charset."""
    if content_type is not None and ";" not in content_type:  # no parameters: as a rule
        return content_type.strip().lower()
    mime, _, rest = (content_type or "").partition(";")
    for parameter in filter(None, (p.strip() for p in rest.split(";"))):
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "unknown content type parameter")
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "only the UTF-8 charset is supported")
    return mime.strip().lower()


def too_many_rows(rows: int | None, max_rows: int) -> ApiError:
    has = f"has {rows} rows" if rows is not None else f"has more than {max_rows} rows"
    return ApiError(
        413,
        "TOO_MANY_ROWS",
        f"the request {has}; the limit is {max_rows} rows a request "
        "(send more in several requests, or score files with carnn score)",
    )


def text_of(body: bytes) -> str:
    """The body as text (a UTF-8 byte order mark dropped), or a 400."""
    try:
        return body.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request(f"the body is not valid UTF-8 (byte {err.start})") from None


def csv_header(text: str) -> list[str]:
    """The CSV's column names; a 400 naming a column given twice (pandas would rename it)."""
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:
        raise bad_request("the body is not a readable CSV table (its header)") from None
    twice = [name for name, count in Counter(header).items() if count > 1]
    if twice:
        raise _duplicate(twice[0])
    return header


def read_csv(body: bytes, max_rows: int) -> pd.DataFrame:
    """A CSV body's cells as written (text): header checked, at most ``max_rows`` rows (else
    413). /invocations and /score.csv read CSV this one way."""
    text = text_of(body)
    csv_header(text)
    lines = text.count("\n") + (not text.endswith("\n"))  # >= rows + 1 (quoted newlines add)
    limit = max_rows + 1 if lines > max_rows + 1 else None
    frame = _read_table(
        pd.read_csv, io.StringIO(text), "CSV", nrows=limit, dtype=str, keep_default_na=False
    )
    if len(frame) > max_rows:
        raise too_many_rows(None, max_rows)
    return frame


def as_records(cells: pd.DataFrame) -> pd.DataFrame:
    """CSV cells as the model reads them: an empty cell is a missing value, any other is text
    (the contract parses a number field's text as a number)."""
    return cells.astype(object).where(cells != "", None)


def _read_parquet(body: bytes, max_rows: int) -> tuple[pd.DataFrame, list[str]]:
    """The field columns only (other columns are never decoded), with the car name read as a
    dictionary: a few hundred bytes of Parquet can hold a long name repeated in every row."""
    import pyarrow
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(io.BytesIO(body))
        rows, names = source.metadata.num_rows, source.schema_arrow.names
    except (pyarrow.ArrowException, OSError, ValueError, TypeError):
        raise bad_request("the body is not a readable Parquet table") from None
    if rows > max_rows:  # the footer says it: nothing decoded
        raise too_many_rows(rows, max_rows)
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise _duplicate(twice[0])
    ignored = check_columns(names)
    wanted = [name for name in names if name in INPUT_FIELDS]

    def read(_):
        table = pq.read_table(
            io.BytesIO(body), columns=wanted, read_dictionary=["name"] if "name" in wanted else None
        )
        frame = table.to_pandas()
        if "name" in frame.columns and isinstance(frame["name"].dtype, pd.CategoricalDtype):
            names = frame["name"].astype(object)  # the same few str objects, shared
            frame["name"] = names.where(names.notna(), None)
        return frame

    return _read_table(read, None, "Parquet"), ignored


def _read_table(reader, source, kind: str, **options) -> pd.DataFrame:
    import pyarrow  # pandas reads Parquet with it; its errors are its own classes

    unreadable = (ValueError, TypeError, OSError, UnicodeError, OverflowError)
    try:
        frame = reader(source, **options)
    except (*unreadable, pyarrow.ArrowException) as err:  # pandas' ParserError: a ValueError
        reason = type(err).__name__
        raise bad_request(f"the body is not a readable {kind} table ({reason})") from None
    if len(frame) == 0:
        raise bad_request(f"the {kind} table has no rows: expected at least one car", "input")
    return frame


def _duplicate(name: str) -> ApiError:
    label = str(name)[:40]
    return ApiError(
        400,
        "BAD_REQUEST",
        f"{label}: the column appears more than once; expected each field once",
        [{"row": None, "field": label, "expected": "each field once", "value": None}],
    )


def _parse_json(body: bytes, max_rows: int) -> tuple[list, dict | None]:
    body = body.removeprefix(_BOM)
    try:
        document = _decode(body)
    except msgspec.ValidationError:  # a number beyond float range: Python's parser finds where
        document = _python_json(body, None)
    except msgspec.DecodeError as err:
        document = _python_json(body, err)
    except UnicodeDecodeError as err:
        raise bad_request(f"the body is not valid UTF-8 (byte {err.start})") from None
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
    return _records(keys[0], document[keys[0]], max_rows), params


def _python_json(body: bytes, err: msgspec.DecodeError | None) -> Any:
    """The slow way, for the two kinds of body msgspec refuses that still say what a client
    meant: numbers beyond float range (``1e400``, an integer of 5,000 digits) become infinite, so
    the contract's error names their field and row; and ``NaN``/``Infinity``, which Python's
    ``json.dumps`` writes for missing floats (NaN is then a missing value). Anything else msgspec
    refused is the 400 its error describes."""
    invalid = bad_request(f"the body is not valid JSON: {err}")
    if err is not None and b"NaN" not in body and b"Infinity" not in body:
        raise invalid from None
    try:
        return json.loads(text_of(body), parse_int=_integer)
    except RecursionError:
        raise bad_request("the JSON body is nested too deeply") from None
    except ValueError:
        raise invalid from None


def _integer(digits: str) -> int | float:
    """A JSON integer; one too long for Python to parse is infinite (out of every range)."""
    if len(digits) < 4000:
        return int(digits)
    return -math.inf if digits.startswith("-") else math.inf


def _records(key: str, value: Any, max_rows: int) -> list[dict]:
    if key == "dataframe_split":
        return _split(value, max_rows)
    if isinstance(value, list):  # records: each item an object of fields
        if not value:
            raise bad_request(f"{key}: no records: expected at least one car", "input")
        if len(value) > max_rows:
            raise too_many_rows(len(value), max_rows)
        return value
    if isinstance(value, dict) and key in ("instances", "inputs"):  # columns: name -> values
        return _columns(key, value, max_rows)
    raise bad_request(f"{key}: expected a list of records", "input")


def _split(value: Any, max_rows: int) -> list[dict]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise bad_request("dataframe_split: expected an object with columns and data", "input")
    columns, rows = value["columns"], value.get("data")
    if not all(isinstance(c, str) for c in columns):
        raise bad_request("dataframe_split: columns must be field names (text)", "input")
    twice = [name for name, count in Counter(columns).items() if count > 1]
    if twice:
        raise _duplicate(twice[0])
    if not isinstance(rows, list) or not rows:
        raise bad_request("dataframe_split: data: expected a non-empty list of rows", "input")
    if len(rows) > max_rows:
        raise too_many_rows(len(rows), max_rows)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ApiError(
                400,
                "BAD_REQUEST",
                f"dataframe_split: row {i} does not have one value per column",
                [{"row": i, "field": "input", "expected": f"{len(columns)} values", "value": None}],
            )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _columns(key: str, value: dict, max_rows: int) -> list[dict]:
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if not value or len(lengths) != 1 or -1 in lengths or 0 in lengths:
        raise bad_request(f"{key}: expected equally long, non-empty lists of values", "input")
    (length,) = lengths
    if length > max_rows:
        raise too_many_rows(length, max_rows)
    names = list(value)
    return [dict(zip(names, row, strict=True)) for row in zip(*value.values(), strict=True)]
