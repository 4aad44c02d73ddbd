"""`carnn ...` commands. Entry points configure logging and the tracking URI, once, here.

- ``train``: train, evaluate, sweep; ``registry``: promote, rollback, stages, export;
  ``serve``: the scoring service; ``predict``: its command-line client; ``score``: batch
  scoring of files; ``common``: what the commands share.

May import every carnn package, lazily inside the commands (``carnn --help`` loads no TensorFlow).
"""

from __future__ import annotations

import logging
import os
import sys

import click
from mlflow.exceptions import MlflowException

from carnn_pyfunc.cli import predict, registry, score, serve, train

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="debug logging")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """carnn: car fuel economy (MPG) with Keras, tracked and served by MLflow."""
    ctx.obj = {"tracking_uri": _setup(verbose)}


for _command in (
    train.train,
    train.evaluate,
    train.sweep,
    registry.promote,
    registry.rollback,
    registry.stages,
    registry.export_model,
    serve.serve,
    predict.predict,
    score.score,
):
    cli.add_command(_command)


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
    except MlflowException as err:  # the tracking store refused: its message, not a traceback
        click.echo(f"error: {_one_line(err)}", err=True)
        return 1
    return 0


def _one_line(err: MlflowException) -> str:
    """The store's message on one line; a tracking server's 403 says permission was denied."""
    message = " ".join(str(err.message).split())
    if err.error_code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        return f"permission denied for user {user!r} by the tracking server: {message}"
    return message


if __name__ == "__main__":
    sys.exit(main())
