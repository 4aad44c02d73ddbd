"""`carnn monitor`: one window of the prediction log judged against its model's training
profile; one MLflow run per window; exit 0 when all is well, 3 with the reasons on an alert."""

from __future__ import annotations

import os
import sys
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import click

ENGINES = ("pandas", "spark")
ALERT_EXIT = 3
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Alert(click.ClickException):
    """The window is an alert: exit code 3, one line per reason."""

    exit_code = ALERT_EXIT

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons

    def show(self, file=None) -> None:
        n = len(self.reasons)
        click.echo(f"ALERT ({n} reason{'s' if n > 1 else ''}):", err=True)
        for reason in self.reasons:
            click.echo(f"  - {reason}", err=True)


def duration(text: str) -> timedelta:
    """``30m``, ``6h``, ``7d``, ``2w`` as a timedelta."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
        raise click.BadParameter(f"{text!r}: expected a duration such as 30m, 6h, 7d or 2w")
    return timedelta(**{_UNITS[unit]: float(number)})


def moment(text: str | None) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected an ISO date or time, e.g. 2026-12-02T06:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def threshold_options(command):
    """One option per alert threshold (:class:`Thresholds`: the one source of the defaults)."""
    from carnn_pyfunc.monitoring.alerts import CORRECTIONS, Thresholds  # no scipy, no pandas

    for f in reversed(fields(Thresholds)):
        kind = {"int": int, "float": float, "str": click.Choice(CORRECTIONS)}[f.type]
        command = click.option(
            f"--{f.name.replace('_', '-')}",
            f.name,
            type=kind,
            default=f.default,
            show_default=True,
            help=f.metadata["help"],
        )(command)
    return command


@click.command()
@click.option(
    "--prediction-log",
    "root",
    required=True,
    envvar="CARNN_PREDICTION_LOG",
    show_envvar=True,
    help="the log's root: a folder or a filesystem URI (s3://...)",
)
@click.option(
    "--since",
    help="window start (ISO, UTC unless a zone is given)  [default: --until minus --last]",
)
@click.option("--until", help="window end, not included  [default: now]")
@click.option(
    "--last",
    default="24h",
    show_default=True,
    help="window length when --since is not given: 30m, 6h, 7d, 2w",
)
@click.option("--model-name", help="the registered model  [default: the log's]")
@click.option("--model-version", help="the version  [default: the one with most rows]")
@click.option(
    "--model-uri",
    help="take the reference profile from this model  [default: models:/NAME/VERSION of the log]",
)
@click.option("--profile", "profile_path", help="a profile.json file instead of a model's")
@threshold_options
@click.option("--seed", type=int, default=0, show_default=True, help="bootstrap seed")
@click.option(
    "--bootstrap",
    type=click.IntRange(min=100),
    default=1000,
    show_default=True,
    help="bootstrap resamples for the confidence intervals",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="pandas",
    show_default=True,
    help="pandas: read the window here; spark: a Spark job filters, joins and "
    "samples it (a log too big for one machine)",
)
@click.option("--spark-master", help="Spark master for --engine spark  [default: local[*]]")
@click.option(
    "--sample-rows",
    type=click.IntRange(min=1000),
    default=200_000,
    show_default=True,
    help="--engine spark: at most this many rows brought back "
    "for the tests (a uniform sample; counts stay exact)",
)
@click.option("--report", "report_path", help="also write the HTML report here")
@click.option(
    "--log-run/--no-log-run",
    default=True,
    show_default=True,
    help="log the window as a run of the MLflow experiment carnn-monitoring",
)
@click.option("--progress/--no-progress", default=True, help="a progress bar on a terminal")
def monitor(
    root,
    since,
    until,
    last,
    model_name,
    model_version,
    model_uri,
    profile_path,
    seed,
    bootstrap,
    engine,
    spark_master,
    sample_rows,
    report_path,
    log_run,
    progress,
    **thresholds,
) -> None:
    """Judge a window of the prediction log: drift of each input field against the model's
    training profile (KS or chi-square with a correction across fields, Wasserstein, PSI,
    Jensen-Shannon, share outside the training range) and, on labelled rows, live MAE, RMSE
    and interval coverage with bootstrap intervals against the model's test figures.

    Logs one run to the MLflow experiment `carnn-monitoring` (metrics per field, tags
    model_name, model_version, window_start, window_end, the HTML report), prints a table,
    exits 0 when all is well and 3 with the reasons on an alert.
    """
    from carnn_pyfunc.monitoring import monitor as mon
    from carnn_pyfunc.monitoring.alerts import Thresholds
    from carnn_pyfunc.monitoring.drift import window_values
    from carnn_pyfunc.monitoring.reading import LogNotFound, Window

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        limits = Thresholds(**thresholds)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    end = moment(until) or datetime.now(UTC)
    window = Window(moment(since) or end - duration(last), end, model_name, model_version)
    if window.since >= window.until:
        raise click.BadParameter("--since must be before --until")
    bar = progress and sys.stderr.isatty()
    try:
        frame = _read(root, window, engine, spark_master, sample_rows, bar)
    except LogNotFound as err:
        raise click.ClickException(str(err)) from None
    if frame.empty:
        raise click.ClickException(f"no logged predictions under {root} for {window.describe()}")
    frame, version = mon.choose_version(frame, model_version)
    names = frame["model_name"].dropna()
    name = model_name or (str(names.mode().iloc[0]) if len(names) else None)
    try:
        if profile_path:
            profile = mon.read_profile_file(profile_path)
        else:
            if not model_uri and not name:
                raise mon.ProfileMissing("the log names no model: pass --model-uri or --profile")
            profile = mon.profile_of(model_uri or f"models:/{name}/{version}")
    except mon.ProfileMissing as err:
        raise click.ClickException(str(err)) from None
    window = Window(window.since, window.until, name, version)
    outcome = mon.judge(
        frame, profile, window, limits, version=version, seed=seed, n_boot=bootstrap
    )
    values = window_values(frame[frame["error"].isna() & frame["mpg"].notna()], profile)
    click.echo(summary(outcome))
    if report_path:
        from carnn_pyfunc.monitoring.report import render

        with open(report_path, "w") as handle:
            handle.write(render(outcome, values, profile))
        click.echo(f"report: {report_path}")
    if log_run:
        run_id = mon.log_run(outcome, profile, values, limits)
        click.echo(f"mlflow run: {run_id} (experiment {mon.EXPERIMENT})")
    if outcome.alert:
        raise Alert(outcome.reasons)
    click.echo("all is well")


def _read(root, window, engine, spark_master, sample_rows, progress):
    if engine == "pandas":
        from carnn_pyfunc.monitoring.reading import read_window

        return read_window(root, window, progress)
    from carnn_pyfunc.monitoring.spark_reading import read_window_spark

    return read_window_spark(root, window, spark_master, sample_rows)


def summary(outcome) -> str:
    """The short table: one line per field, then live accuracy against the test figures."""
    lines = [
        f"{outcome.describe()}: {outcome.rows} rows, {outcome.failed} failed",
        f"{'field':<13}{'kind':<9}{'rows':>6}{'p (corr.)':>11}{'shift sd':>10}{'JS':>7}"
        f"{'PSI':>7}{'outside':>9}  drift",
    ]
    for name, row in outcome.table.iterrows():
        lines.append(
            f"{name:<13}{row['kind']:<9}{int(row['rows']):>6}{row['p_adjusted']:>11.2g}"
            f"{_num(row['shift'], '.2f'):>10}{_num(row['js'], '.2f'):>7}"
            f"{_num(row['psi'], '.2f'):>7}{_num(row['outside'], '.1%'):>9}"
            f"  {'DRIFT' if row['drifting'] else ''}"
        )
    live, test = outcome.live, outcome.versus
    if live["labels"]:
        lines.append(
            f"labels {int(live['labels'])}: MAE {live['mae']:.2f} "
            f"[{live['mae_low']:.2f}, {live['mae_high']:.2f}] = {test['mae_ratio']:.2f}x test; "
            f"RMSE {live['rmse']:.2f}; coverage {_num(live['coverage'], '.1%')} "
            f"[{_num(live['coverage_low'], '.1%')}, {_num(live['coverage_high'], '.1%')}]"
        )
    else:
        lines.append("labels: none in the window")
    return "\n".join(lines)


def _num(value: float, fmt: str) -> str:
    return "" if value != value else format(value, fmt)
