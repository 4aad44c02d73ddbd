"""The pandas engine: one process scores a file chunk by chunk, in order, in bounded memory.

Each chunk's field columns go to the model's own ``predict`` with ``errors="column"``; the chunk
itself, with the answer's ``mpg`` and ``error`` appended, goes to the writer. The model is called
unwrapped (``PyFuncModel.unwrap_python_model``), past MLflow's in-process schema enforcement,
which would refuse a whole chunk for one text cell in a number column (CSV) or for integer
columns (Parquet): the model reads numbers from either and names the field of a bad cell.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carnn_pyfunc.batch.columns import field_columns
from carnn_pyfunc.batch.files import open_sink, open_source
from carnn_pyfunc.batch.outcome import (
    ERROR_COLUMN,
    ERRORS_PARAM,
    OUTPUT_COLUMN,
    BatchError,
    Summary,
    check_model,
)
from carnn_pyfunc.contract.fields import BY_NAME

CHUNK_ROWS = 100_000  # rows per model call: large enough for the network's threads to pay off


def load_model(model_uri: str):
    """The model's PythonModel, loaded by MLflow's pyfunc loader (``load_context`` done), after
    checking that it answers row by row."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except MlflowException:
        raise  # the registry's or the store's own message (the CLI shows it on one line)
    except Exception as err:  # the model's own loading code failed: say which model, and how
        raise BatchError(
            f"{model_uri}: the model failed to load ({type(err).__name__}: {err})"
        ) from err
    check_model(model.metadata, model_uri)
    return model.unwrap_python_model()


def score_file(
    python_model,
    source_path: Path,
    target_path: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
    log=None,
) -> Summary:
    """Score ``source_path`` into ``target_path`` (formats from the extensions): the same rows,
    in order, with ``mpg`` and ``error`` appended. A file that cannot be scored at all (format, a
    missing required column) raises BatchInputError before anything is written. ``log``: a
    prediction log (carnn_pyfunc.monitoring) that gets every chunk's rows, request id
    ``score-<job>-<chunk>``."""
    start = time.perf_counter()
    source = open_source(source_path, chunk_rows)
    fields = field_columns(source.schema.names, source_path.name)
    schema = source.schema.append(pa.field(OUTPUT_COLUMN, pa.float64())).append(
        pa.field(ERROR_COLUMN, pa.string())
    )
    rows = invalid = 0
    with (
        open_sink(target_path, schema) as write,
        _progress(source, progress) as bar,
        ThreadPoolExecutor(2, thread_name_prefix="carnn-io") as io,
    ):
        # Reading the next chunk and writing the last one overlap with scoring this one (Arrow
        # releases the GIL); one chunk read ahead and one being written keep memory bounded.
        written = io.submit(int)
        for batch in _read_ahead(source.batches, io):
            scored_at = time.time()
            mpg, error = score_batch(python_model, batch, fields, first_row=rows)
            if log is not None:
                log.record_batch(batch.select(fields), mpg, error, scored_at)
            scored = batch.append_column(schema.field(-2), mpg)
            scored = scored.append_column(schema.field(-1), error)
            written.result()  # in order, and never more than one chunk waiting
            written = io.submit(write, scored)
            rows += batch.num_rows
            invalid += batch.num_rows - error.null_count
            bar.update(batch.num_rows)
        written.result()
    return Summary(rows=rows, invalid=invalid, seconds=time.perf_counter() - start)


def _read_ahead(batches: Iterator[pa.RecordBatch], io: ThreadPoolExecutor):
    """The non-empty batches, the next one read in ``io`` while the caller works on this one."""
    following = io.submit(next, batches, None)
    while (batch := following.result()) is not None:
        following = io.submit(next, batches, None)
        if batch.num_rows:
            yield batch


def score_batch(
    python_model, batch: pa.RecordBatch, fields: list[str], first_row: int = 0
) -> tuple[pa.Array, pa.Array]:
    """One chunk through the model: (``mpg``, null where invalid; ``error``, null where valid)."""
    from mlflow.exceptions import MlflowException

    # the model's columns (``answer``: predict's, without its DataFrame) where it has them
    answer = getattr(python_model, "answer", None) or partial(python_model.predict, None)
    try:
        columns = answer(model_input(batch, fields), ERRORS_PARAM)
    except MlflowException as err:  # per-row mode raises only for what no row can fix
        where = f"rows {first_row:,} to {first_row + batch.num_rows - 1:,} of the input"
        raise BatchError(f"{err.message} (a row number within the chunk of {where})") from None
    mpg = np.asarray(columns[OUTPUT_COLUMN], dtype=np.float64)
    mpg = pa.array(mpg, type=pa.float64(), from_pandas=True)
    errors = columns[ERROR_COLUMN]
    errors = errors.tolist() if hasattr(errors, "tolist") else errors
    error = pa.array(errors, type=pa.string(), from_pandas=True)
    return mpg, error


def model_input(batch: pa.RecordBatch, fields: list[str]):
    """The field columns as a DataFrame. A text column of a number field (CSV) is converted to
    float64 when every cell is a plain number, the fast path; otherwise it goes as text, and the
    model names each cell that is not a number."""
    columns = []
    for name in fields:
        column = batch.column(name)
        if pa.types.is_dictionary(column.type):  # pandas' categories, written to Parquet
            column = column.dictionary_decode()
        if BY_NAME[name].numeric and (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        ):
            with contextlib.suppress(pa.ArrowInvalid):
                column = pc.cast(column, pa.float64())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=fields).to_pandas()


@contextlib.contextmanager
def _progress(source, enabled: bool):
    """A progress bar on stderr (rows, of the total when the format knows it), on a terminal."""
    from tqdm import tqdm

    with tqdm(
        total=source.rows,
        desc=source.path.name,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        leave=False,
        disable=None if enabled else True,
    ) as bar:
        yield bar
