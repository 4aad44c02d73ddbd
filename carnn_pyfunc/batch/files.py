"""Files in and out: the format from the extension, chunked readers, and a writer that leaves a
complete file or none (it writes a hidden sibling and renames it into place at the end).

CSV is read as text, every column (a number column inferred per block could change type
mid-file); the model reads numbers from text itself and names the field of a cell that is not one.
Parquet keeps its types. Either way the rows come in chunks of about ``chunk_rows``, so memory
stays bounded whatever the file's size.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from carnn_pyfunc.batch.outcome import BatchError, BatchInputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CSV_BLOCK_BYTES = 4 << 20  # bytes per CSV block read (re-chunked to chunk_rows)


def file_format(path: Path) -> str:
    """``csv`` or ``parquet``, from the file name's extension."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise BatchInputError(
            f"{path.name}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(FORMATS)}"
        )
    return found


@dataclass
class Source:
    """An input file opened for reading: its columns, its row count if the format says it
    (Parquet), and its rows as record batches of about ``chunk_rows`` rows."""

    path: Path
    schema: pa.Schema
    rows: int | None
    batches: Iterator[pa.RecordBatch]


def open_source(path: Path, chunk_rows: int) -> Source:
    """Open ``path`` for chunked reading; BatchInputError if it is missing or unreadable."""
    kind = file_format(path)
    if not path.is_file():
        raise BatchInputError(f"{path}: no such file")
    if kind == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise BatchInputError(f"{path.name}: not a readable Parquet file ({err})") from None
        rows = parquet.metadata.num_rows
        return Source(path, parquet.schema_arrow, rows, _read(parquet.iter_batches(chunk_rows)))
    names = _csv_header(path)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
        ),
    )
    return Source(path, reader.schema, None, _read(_rechunk(reader, chunk_rows)))


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as stream:
        try:
            return next(csv.reader(stream))
        except StopIteration:
            raise BatchInputError(
                f"{path.name}: the file is empty; expected a header line naming the columns"
            ) from None
        except (UnicodeDecodeError, csv.Error) as err:
            raise BatchInputError(f"{path.name}: unreadable header line ({err})") from None


def _rechunk(reader, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """CSV blocks regrouped into batches of at least ``chunk_rows`` rows (the last may be less)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        if held >= chunk_rows:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches; a file broken mid-way (a CSV line with too many fields, a corrupt page) is
    BatchInputError with the reader's own words, which name the line."""
    try:
        yield from batches
    except (pa.ArrowInvalid, OSError) as err:
        raise BatchInputError(f"unreadable input: {err}") from None


@contextlib.contextmanager
def open_sink(path: Path, schema: pa.Schema) -> Iterator[Callable[[pa.RecordBatch], None]]:
    """A function writing record batches of ``schema`` to ``path`` (its format from the
    extension). The rows go to a hidden sibling first, renamed to ``path`` when the block ends
    without an error (replacing an older file there); on an error it is deleted."""
    kind = file_format(path)
    if not path.parent.is_dir():
        raise BatchError(f"{path}: the folder {path.parent} does not exist")
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    refused = f"{path.name}: these columns cannot be written as {kind}"
    try:
        writer = (
            pq.ParquetWriter(partial, schema, compression="snappy")
            if kind == "parquet"
            else pacsv.CSVWriter(partial, schema)
        )
    except pa.ArrowException as err:  # e.g. a nested Parquet column into a CSV file
        partial.unlink(missing_ok=True)
        raise BatchError(f"{refused} ({err})") from None

    def write(batch: pa.RecordBatch) -> None:
        try:
            writer.write_batch(batch)
        except pa.ArrowException as err:
            raise BatchError(f"{refused} ({err})") from None

    try:
        yield write
        writer.close()
        os.replace(partial, path)
    finally:
        writer.close()  # a second close is a no-op
        partial.unlink(missing_ok=True)
