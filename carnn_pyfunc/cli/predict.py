"""`carnn predict`: the command-line client of `carnn serve` (MPG for records from a CSV or JSON
file, or from one flag per field of the field table), printed as a table or CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from carnn_pyfunc.contract.fields import BY_NAME, FIELDS, ORIGIN_LABELS
from carnn_pyfunc.serving.settings import TOKEN_VARIABLE

DEFAULT_URL = "http://127.0.0.1:5001"
LITRES_PER_100KM_TIMES_MPG = 235.214583
_ORIGIN_CODES = {label.lower(): code for code, label in ORIGIN_LABELS.items()}


def _field_options(command):
    for field in reversed(FIELDS):
        unit = f" [{field.unit}]" if field.unit else ""
        named = " (or usa, europe, japan)" if field.name == "origin" else ""
        command = click.option(
            f"--{field.name}", field.name, default=None, metavar="VALUE",
            help=f"{field.label}{unit}: {field.help}{named}".replace("`", "'"),
        )(command)  # fmt: skip
    return command


@click.command()
@click.option(
    "--file", "-f", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="records: a CSV file with a header row of field names, or a .json file (a list of "
    "records, one record, or MLflow's {\"dataframe_records\": [...]})",
)  # fmt: skip
@_field_options
@click.option("--url", default=DEFAULT_URL, show_default=True, envvar="CARNN_URL",
              help="the service's base URL (or $CARNN_URL)")  # fmt: skip
@click.option("--token", default=None, envvar=TOKEN_VARIABLE,
              help=f"bearer token, if the service has one (or ${TOKEN_VARIABLE})")  # fmt: skip
@click.option("--output", "-o", type=click.Choice(["table", "csv"]), default="table",
              show_default=True)  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="seconds to wait for an answer")  # fmt: skip
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
              help="further attempts when the service cannot be reached")  # fmt: skip
def predict(
    path: Path | None,
    url: str,
    token: str | None,
    output: str,
    timeout: float,
    retries: int,
    **flags: str | None,
) -> None:
    """Ask a running `carnn serve` for the MPG of cars.

    \b
    carnn predict --cylinders 4 --displacement 97 --weight 2130 --acceleration 14.5 --year 80
    carnn predict -f cars.csv -o csv --url http://127.0.0.1:5001
    """
    from carnn_pyfunc.client import CarnnClient, CarnnError

    given = {name: value for name, value in flags.items() if value is not None}
    if path is not None and given:
        raise click.UsageError("give records with --file or with field flags, not both")
    if path is None and not given:
        raise click.UsageError("no records: give --file PATH or field flags (see --help)")
    records = read_records(path) if path is not None else [_typed(given)]
    try:
        client = CarnnClient(url, token, timeout, retries=retries)
        mpg = client.predict(records)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--url") from None
    except CarnnError as err:
        raise click.ClickException(err.message) from None
    click.echo(render(records, mpg, output), nl=False)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a .json file, or of a CSV file (cells typed by the field table)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{path}: not UTF-8 text (byte {err.start})") from None
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{path}: not valid JSON ({err})") from None
        if isinstance(document, dict) and "dataframe_records" in document:
            document = document["dataframe_records"]
        records = [document] if isinstance(document, dict) else document
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise click.ClickException(f"{path}: expected a record or a list of records")
    else:
        records = [_typed(row) for row in csv.DictReader(io.StringIO(text))]
    if not records:
        raise click.ClickException(f"{path}: no records")
    return records


def _typed(row: dict[str, str | None]) -> dict[str, Any]:
    """Text cells as the JSON values the API takes: numbers for the numeric fields (an origin may
    be named: usa, europe, japan), empty cells left out. Text that is no number is sent as it
    is, so that the service's error names its field and row."""
    record: dict[str, Any] = {}
    for name, text in row.items():
        if name is None or text is None or not text.strip():
            continue  # a cell beyond the header's columns, or an empty one
        text = text.strip()
        field = BY_NAME.get(name)
        if field is None or not field.numeric:
            record[name] = text
        elif name == "origin" and text.lower() in _ORIGIN_CODES:
            record[name] = _ORIGIN_CODES[text.lower()]
        else:
            record[name] = _number(text)
    return record


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def render(records: list[dict[str, Any]], mpg: list[float], output: str) -> str:
    """The records' fields (in the field table's order, then any others), mpg and l/100km."""
    known = [f.name for f in FIELDS if any(f.name in r for r in records)]
    others = sorted({k for r in records for k in r} - set(known))
    columns = [*known, *others]
    rows = [
        [_cell(r.get(c)) for c in columns] + [f"{m:.2f}", f"{LITRES_PER_100KM_TIMES_MPG / m:.2f}"]
        for r, m in zip(records, mpg, strict=True)
    ]
    header = [*columns, "mpg", "l_per_100km"]
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header, *rows])
        return buffer.getvalue()
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]
    right = [all(_numeric(row[j]) for row in rows) for j in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if r else cell.ljust(w)
            for cell, w, r in zip(line, widths, right, strict=True)
        ).rstrip()
        for line in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _numeric(cell: str) -> bool:
    """A number, or empty (a column of numbers is right-aligned)."""
    return not cell or not isinstance(_number(cell), str)
