"""Synthetic prediction logs and labels, written with pyarrow in the log's schema and layout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carnn_pyfunc.contract.fields import FIELDS
from carnn_pyfunc.monitoring.schema import LABEL_SCHEMA, LABELS, PREDICTION_SCHEMA, PREDICTIONS

DAY = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def write_predictions(
    root: Path,
    cars: pd.DataFrame,
    *,
    when: datetime = DAY,
    version: str = "1",
    request_id: str | None = None,
    role: str = "primary",
    errors: dict[int, str] | None = None,
) -> str:
    """One logged request answering ``cars`` (raw fields) at ``when``; its request id."""
    request_id = request_id or uuid.uuid4().hex
    n, errors = len(cars), errors or {}
    columns = {
        "request_id": [request_id] * n,
        "row": list(range(n)),
        "time": [when] * n,
        "model_name": ["carnn"] * n,
        "run_id": ["r" * 32] * n,
        "role": [role] * n,
        **{
            f.name: (
                cars[f.name].astype("float64").tolist() if f.numeric else cars[f.name].tolist()
            )
            for f in FIELDS
        },
        "mpg": [None if i in errors else 20.0 for i in range(n)],
        "mpg_low": [None] * n,
        "mpg_high": [None] * n,
        "error": [errors.get(i) for i in range(n)],
        "latency_ms": [3.0] * n,
        "status": [200] * n,
    }
    for name in PREDICTION_SCHEMA.names:  # columns the schema has gained since: null
        columns.setdefault(name, [None] * n)
    for name in [f.name for f in FIELDS if f.numeric]:  # NaN (missing) is null in the log
        columns[name] = [None if v != v else v for v in columns[name]]
    folder = root / PREDICTIONS / f"date={when:%Y-%m-%d}" / f"model_version={version}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA)
    pq.write_table(table, folder / f"part-{uuid.uuid4().hex}.parquet")
    return request_id


def write_labels(root: Path, request_id: str, mpg, *, when: datetime = DAY, rows=None) -> None:
    """True figures for rows of a logged request (all its rows, in order, unless ``rows``)."""
    mpg = np.asarray(mpg, dtype=np.float64)
    rows = list(range(len(mpg))) if rows is None else list(rows)
    folder = root / LABELS / f"date={when:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pydict(
        {
            "request_id": [request_id] * len(rows),
            "row": rows,
            "mpg": mpg.tolist(),
            "time": [when] * len(rows),
        },
        schema=LABEL_SCHEMA,
    )
    pq.write_table(table, folder / f"part-{uuid.uuid4().hex}.parquet")
