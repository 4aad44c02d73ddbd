"""`carnn feedback labels.csv`: true MPG figures for served rows, in bulk, beside the log."""

from __future__ import annotations

import csv
from pathlib import Path

import click


@click.command()
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--prediction-log",
    required=True,
    envvar="CARNN_PREDICTION_LOG",
    show_envvar=True,
    help="the prediction log's root (as given to carnn serve)",
)
def feedback(labels: Path, prediction_log: str) -> None:
    """Store true MPG figures (a CSV with request_id, row, mpg columns) for logged rows.

    A malformed label stops the file with one line naming the label and its field; nothing of
    the file is stored then. Labels whose row the log lacks are reported by `carnn monitor`.
    """
    from carnn_pyfunc.monitoring.labels import InvalidLabel, check_label, write_labels

    checked = []
    with labels.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        missing = {"request_id", "row", "mpg"} - set(reader.fieldnames or ())
        if missing:
            raise click.ClickException(f"{sorted(missing)[0]}: missing column in {labels}")
        try:
            for i, line in enumerate(reader):
                row = int(line["row"]) if line["row"].strip().isdigit() else line["row"]
                try:
                    mpg = float(line["mpg"])
                except ValueError:
                    mpg = line["mpg"]
                checked.append(check_label(i, line["request_id"], row, mpg))
        except InvalidLabel as err:
            raise click.ClickException(str(err)) from None
    written = write_labels(prediction_log, checked)
    click.echo(f"stored {written} labels under {prediction_log}")
