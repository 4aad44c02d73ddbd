"""`carnn labelled`: a window's labelled served cars as Parquet; the live-evidence options of
`carnn promote` and `carnn train --promote` (the same window, read the same way)."""

from __future__ import annotations

import click

# what a log that cannot be read raises: pyarrow's errors are OSError (I/O), ValueError
# (ArrowInvalid: not Parquet) or TypeError (ArrowTypeError: a column of another type)
_READ_ERRORS = (OSError, ValueError, TypeError)


def _bound(ctx, param, value: str | None):
    """A window bound from an option (empty: none); a bad one is a usage error naming it."""
    if not value:
        return None
    from carnn_pyfunc.monitoring.labelled import parse_time

    try:
        return parse_time(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


_since = click.option(
    "--since", "since", callback=_bound, default=None,
    help="window start: an ISO date or time (UTC), or an age such as 7d  [default: the start]",
)  # fmt: skip
_until = click.option(
    "--until", "until", callback=_bound, default=None,
    help="window end (excluded), as --since  [default: now]",
)  # fmt: skip


def live_options(command):
    """--live-log and the window options, for the commands that promote."""
    for option in reversed(
        [
            click.option(
                "--live-log",
                default="",
                help="prediction log root (folder or URI): when given, the gate into "
                "production also compares the candidate with production on the window's "
                "labelled served cars",
            ),
            click.option("--live-since", "live_since", callback=_bound, default=None,
                         help="start of that window: ISO date or time (UTC), or an age (7d)"),
            click.option("--live-until", "live_until", callback=_bound, default=None,
                         help="end of that window (excluded)  [default: now]"),
            click.option("--live-min-rows", type=click.IntRange(min=1), default=30,
                         show_default=True,
                         help="fewest labelled served cars the live gate judges by; fewer: "
                         "it is skipped with a note"),
            click.option("--live-tolerance", type=click.FloatRange(min=0), default=0.0,
                         show_default=True,
                         help="MPG the candidate's live MAE may exceed production's by"),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def live_window(live_log: str, live_since, live_until, live_min_rows: int, live_tolerance: float):
    """The labelled window the options name, read now (None without --live-log)."""
    if not live_log:
        return None
    from carnn_pyfunc.monitoring.labelled import labelled_rows
    from carnn_pyfunc.registry.live import LiveWindow

    try:
        rows = labelled_rows(live_log, live_since, live_until)
    except _READ_ERRORS as err:
        raise click.ClickException(f"--live-log {live_log}: {err}") from None
    window = live_log + (f" since {live_since:%Y-%m-%d %H:%M}" if live_since else "")
    window += f" until {live_until:%Y-%m-%d %H:%M}" if live_until else ""
    click.echo(f"live window:   {len(rows)} labelled served cars in {window}")
    return LiveWindow(rows, window=window, min_rows=live_min_rows, tolerance=live_tolerance)


@click.command()
@click.option("--log", "root", required=True, help="prediction log root: a folder or a URI")
@click.option("--out", required=True, help="Parquet file to write (a path or a URI)")
@_since
@_until
def labelled(root: str, out: str, since, until) -> None:
    """Write a window's labelled served cars (the fields and the true mpg) as Parquet, for
    `train.py --extra-data`."""
    from carnn_pyfunc.monitoring.labelled import labelled_rows, write_labelled

    try:
        written = write_labelled(labelled_rows(root, since, until), out)
    except _READ_ERRORS as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {written} labelled served cars to {out}")
    if not written:
        click.echo("no logged row in the window has a label yet", err=True)
