"""`carnn ...` commands. Entry points configure logging and the tracking URI, once, here."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import MISSING, fields

import click

from carnn_pyfunc.config import FIELD_TYPES, TrainConfig

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def _setup(verbose: bool) -> str:
    """Logging and the tracking URI (``MLFLOW_TRACKING_URI`` wins over the default)."""
    import mlflow

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


def _config_options(config_cls):
    """One --kebab-case option per config field: the dataclass is the one source of truth."""

    def decorate(command):
        for f in reversed(fields(config_cls)):
            default = f.default if f.default is not MISSING else None
            command = click.option(
                f"--{f.name.replace('_', '-')}",
                f.name,
                type=FIELD_TYPES[f.type],
                default=default,
                show_default=True,
                help=f.metadata["help"],
            )(command)
        return command

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="debug logging")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """carnn: car fuel economy (MPG) with Keras, tracked and served by MLflow."""
    ctx.obj = {"tracking_uri": _setup(verbose)}


@cli.command()
@_config_options(TrainConfig)
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train the network, log the run to MLflow and register a model version."""
    from carnn_pyfunc.training import run_training

    try:
        config = TrainConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    result = run_training(config)
    uri = ctx.obj["tracking_uri"]
    click.echo("")
    click.echo(f"run id:        {result.run_id}  (experiment {result.experiment_id})")
    for name in ("test_mae", "test_rmse", "test_r2"):
        click.echo(f"{name + ':':<14} {result.metrics[name]:.3f}")
    click.echo(f"model URI:     {result.model_uri}")
    click.echo(
        f"serve it:      MLFLOW_TRACKING_URI={uri} "
        f"mlflow models serve -m {result.model_uri} --env-manager local -h 127.0.0.1 -p 5001"
    )
    click.echo(
        f"see the run:   mlflow ui --backend-store-uri {uri}  "
        f"then http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for train.py and tests)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    try:
        cli.main(args=argv, prog_name="carnn", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as err:
        err.show()
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
