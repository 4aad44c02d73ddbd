"""`carnn ...` commands. Entry points configure logging and the tracking URI, once, here.

- ``train``: train, evaluate, sweep; ``registry``: promote, rollback, stages, export;
  ``serve``: the scoring service; ``predict``: its command-line client; ``score``: batch
  scoring of files; ``labelled``: a window's labelled served cars as Parquet, and the
  live-evidence options of promotion; ``feedback``: true MPG figures for logged rows, from a
  CSV; ``rollout``: canary steps to production, or back; ``monitor``: a window of
  the prediction log judged against the model's profile (drift, live accuracy), one MLflow run,
  exit 3 on an alert; ``common``: what the commands share.

May import every carnn package, lazily inside the commands: a command's module is imported only
when that command runs (``carnn serve``'s supervisor loads no model stack, ``carnn --help`` no
MLflow).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# command -> "module:function" (imported when the command runs or its help is asked for)
COMMANDS = {
    "train": "train:train",
    "evaluate": "train:evaluate",
    "sweep": "train:sweep",
    "promote": "registry:promote",
    "rollback": "registry:rollback",
    "stages": "registry:stages",
    "export": "registry:export_model",
    "serve": "serve:serve",
    "predict": "predict:predict",
    "score": "score:score",
    "monitor": "monitor:monitor",
    "labelled": "labelled:labelled",
    "feedback": "feedback:feedback",
    "rollout": "rollout:rollout",
}


class LazyGroup(click.Group):
    """A group whose commands' modules are imported only when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)  # one added with add_command
        module, _, name = COMMANDS[cmd_name].partition(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _setup(verbose: bool) -> str:
    """Logging and the tracking URI (``MLFLOW_TRACKING_URI`` wins over the default), without
    importing MLflow: it reads the variable when it is first used."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    os.environ["MLFLOW_TRACKING_URI"] = uri
    if "mlflow" in sys.modules:  # already imported (tests, train.py): set it there too
        sys.modules["mlflow"].set_tracking_uri(uri)
    return uri


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", is_flag=True, help="debug logging")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """carnn: car fuel economy (MPG) with Keras, tracked and served by MLflow."""
    ctx.obj = {"tracking_uri": _setup(verbose)}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for train.py and tests)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    try:
        code = cli.main(args=argv, prog_name="carnn", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except Exception as err:
        if not _is_mlflow_error(err):
            raise
        # the tracking store refused: its message, not a traceback
        click.echo(f"error: {_one_line(err)}", err=True)
        return 1
    # a command's click.exceptions.Exit(N) comes back as N (not standalone); anything else is 0
    return code if isinstance(code, int) else 0


def _is_mlflow_error(err: Exception) -> bool:
    exceptions = sys.modules.get("mlflow.exceptions")  # loaded if MLflow ran at all
    return exceptions is not None and isinstance(err, exceptions.MlflowException)


def _one_line(err) -> str:
    """The store's message on one line; a tracking server's 403 says permission was denied."""
    message = " ".join(str(err.message).split())
    if err.error_code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        return f"permission denied for user {user!r} by the tracking server: {message}"
    return message


if __name__ == "__main__":
    sys.exit(main())
