"""What a batch run reports, and the errors that refuse a whole file."""

from __future__ import annotations

from dataclasses import dataclass

OUTPUT_COLUMN = "mpg"  # the model's answer, float64, null for an invalid row
ERROR_COLUMN = "error"  # null for a good row, else one line naming the field
ERRORS_PARAM = {"errors": "column"}  # the model's per-row mode: no row fails the others


class BatchError(Exception):
    """A batch that could not be scored (nothing is left at OUTPUT); the message says why."""


class BatchInputError(BatchError, ValueError):
    """A file no row of which can be scored (unknown format, no header, a missing required
    column, a column of the wrong type): the message names the file or the column."""


def check_model(metadata, model_uri: str) -> None:
    """The model must answer row by row: its signature's params take ``errors`` and its outputs
    include ``mpg`` and ``error`` (a model logged before that fails a batch on one bad row)."""
    params = metadata.get_params_schema()
    outputs = metadata.get_output_schema()
    names = set(outputs.input_names()) if outputs is not None else set()
    if (
        params is None
        or "errors" not in [p.name for p in params.params]
        or not ({OUTPUT_COLUMN, ERROR_COLUMN} <= names)
    ):
        raise BatchInputError(
            f"{model_uri}: this model cannot score row by row (its signature has no 'errors' "
            f"param, or no {OUTPUT_COLUMN} and {ERROR_COLUMN} outputs): score with a version "
            "logged by this carnn"
        )


@dataclass(frozen=True)
class Summary:
    """One scored file: rows in (= rows out), rows the model refused, wall seconds."""

    rows: int
    invalid: int
    seconds: float
    startup_seconds: float = 0.0  # Spark: the session's start, not counted in ``seconds``

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.rows:,} rows, {self.invalid:,} invalid (see the error column), "
            f"in {self.seconds:.2f} s: {self.rows_per_s:,.0f} rows/s"
        )

    def metrics(self) -> dict[str, float]:
        """For an MLflow run (``mlflow run . -e score``)."""
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid,
            "seconds": self.seconds,
            "rows_per_s": self.rows_per_s,
            "startup_seconds": self.startup_seconds,
        }
