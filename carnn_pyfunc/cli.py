"""`carnn ...` commands. Entry points configure logging and the tracking URI, once, here."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import MISSING, asdict, fields

import click
from mlflow.exceptions import MlflowException

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
@click.option(
    "--promote/--no-promote",
    default=False,
    show_default=True,
    help="then promote the new version as far as the default gates allow",
)
@click.pass_context
def train(ctx: click.Context, promote: bool, **options) -> None:
    """Train the network, log the run to MLflow and register a model version."""
    from carnn_pyfunc.training import run_training

    config = _train_config(**options)
    result = run_training(config)
    uri = ctx.obj["tracking_uri"]
    click.echo("")
    click.echo(f"run id:        {result.run_id}  (experiment {result.experiment_id})")
    for name in ("test_mae", "test_rmse", "test_r2"):
        click.echo(f"{name + ':':<14} {result.metrics[name]:.3f}")
    click.echo(f"model URI:     {result.model_uri}")
    serve_uri = result.model_uri
    if promote and result.registered_version is not None:
        # Training is the job: a version the rules keep out of production is not a failure here.
        from carnn_pyfunc.registry import PRODUCTION, Promoter, PromotionRefused

        promoter = Promoter(config.registered_model_name)
        try:
            outcome = promoter.promote(result.registered_version)
            _report(outcome, prefix="moved:         ")
            if outcome.refused:
                click.echo(f"not promoted:  {outcome.refused}")
        except PromotionRefused as err:
            click.echo(f"not promoted:  {err}")
        if PRODUCTION in promoter.aliases():
            serve_uri = f"models:/{config.registered_model_name}@{PRODUCTION}"
    click.echo(
        f"serve it:      MLFLOW_TRACKING_URI={uri} "
        f"mlflow models serve -m {serve_uri} --env-manager local -h 127.0.0.1 -p 5001"
    )
    click.echo(
        f"see the run:   mlflow ui --backend-store-uri {uri}  "
        f"then http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs"
    )


def _train_config(**options) -> TrainConfig:
    try:
        return TrainConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


_seed = click.option("--seed", type=click.IntRange(min=0), default=42, show_default=True,
                     help="seed of the folds (and of the networks' initialisation)")  # fmt: skip
_experiment = click.option("--experiment-name", default="carnn", show_default=True,
                           help="MLflow experiment of the run")  # fmt: skip


@cli.command()
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@_seed
@_experiment
def evaluate(folds: int, repeats: int, seed: int, experiment_name: str) -> None:
    """Repeated k-fold CV of the network and of baselines on identical folds (one parent run)."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_RUN_ID

    from carnn_pyfunc.evaluation import run_evaluation

    config = _train_config(seed=seed, experiment_name=experiment_name)
    if not MLFLOW_RUN_ID.get():
        mlflow.set_experiment(experiment_name)
    summaries = run_evaluation(config, folds=folds, repeats=repeats, seed=seed)
    click.echo(f"\n{'model':<24} {'cv_mae':>14} {'cv_rmse':>14} {'cv_r2':>14}")
    for name, m in sorted(summaries.items(), key=lambda item: item[1]["cv_mae"]):
        cells = " ".join(f"{m[f'cv_{k}']:>7.3f} ± {m[f'cv_{k}_std']:.3f}" for k in
                         ("mae", "rmse", "r2"))  # fmt: skip
        click.echo(f"{name:<24} {cells}")


@cli.command()
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=1800,
              show_default=True, help="time budget in seconds")  # fmt: skip
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@_seed
@click.option("--registered-model-name", default="carnn", show_default=True)
@_experiment
def sweep(trials: int, timeout_s: float, folds: int, seed: int, registered_model_name: str,
          experiment_name: str) -> None:  # fmt: skip
    """Optuna search scored by CV MAE; trains and registers the best as a candidate version."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_RUN_ID

    from carnn_pyfunc.sweep import run_sweep

    base = _train_config(seed=seed, registered_model_name=registered_model_name,
                         experiment_name=experiment_name)  # fmt: skip
    if not MLFLOW_RUN_ID.get():
        mlflow.set_experiment(experiment_name)
    best, cv_mae, result = run_sweep(base, trials=trials, timeout_s=timeout_s, folds=folds,
                                     seed=seed)  # fmt: skip
    click.echo(f"\nbest cv_mae:   {cv_mae:.3f}")
    for name, value in sorted(asdict(best).items()):
        click.echo(f"  {name}: {value}")
    click.echo(f"model URI:     {result.model_uri}  (test_mae {result.metrics['test_mae']:.3f})")


_model_name = click.option(
    "--name", "name", default="carnn", show_default=True, help="registered model"
)


def _switch(flag: str, help_text: str):
    """A flag that also takes an explicit value (``--force`` or ``--force false``: MLproject)."""
    return click.option(
        flag, type=click.BOOL, is_flag=False, flag_value=True, default=False, help=help_text
    )


_legacy = _switch(
    "--legacy-stages", "also set the deprecated registry stage, for tools that still read stages"
)


class Refused(click.ClickException):
    """A promotion the rules refused: exit code 1 with the reason."""

    def show(self, file=None) -> None:
        click.echo(f"refused: {self.message}", err=True)


@cli.command()
@click.option(
    "--version",
    "spec",
    default="latest",
    show_default=True,
    help="version number, 'latest', or an alias such as '@staging'",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(["staging", "production", "auto"]),
    default="auto",
    show_default=True,
    help="target stage; auto: staging, then production if it beats production",
)
@click.option(
    "--max-mae",
    type=click.FloatRange(min=0, min_open=True),
    default=2.5,
    show_default=True,
    help="gate: highest test MAE (MPG) on the held-out cars",
)
@click.option(
    "--min-eval-rows",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="fewest cars held out by both versions for a production comparison",
)
@click.option(
    "--data-path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="the data file the versions were trained on  [default: the project's copy]",
)
@_switch("--force", "into production even if it does not beat production (needs --reason)")
@click.option("--reason", default="", help="why; recorded on the version")
@_legacy
@_model_name
def promote(
    spec: str,
    to: str,
    max_mae: float,
    min_eval_rows: int,
    data_path: str | None,
    force: bool,
    reason: str,
    legacy_stages: bool,
    name: str,
) -> None:
    """Move a model version towards production: candidate -> staging -> production."""
    from carnn_pyfunc.registry import Gates, Promoter, PromotionRefused

    gates = Gates(
        max_mae=max_mae,
        min_eval_rows=min_eval_rows,
        **({"data_path": data_path} if data_path else {}),
    )
    promoter = Promoter(name, gates=gates, legacy_stages=legacy_stages)
    try:
        outcome = promoter.promote(spec, to, force=force, reason=reason)
    except PromotionRefused as err:
        raise Refused(str(err)) from None
    _report(outcome)
    if outcome.refused:
        raise Refused(outcome.refused)


@cli.command()
@click.option("--reason", default="", help="why; recorded on both versions")
@_legacy
@_model_name
def rollback(reason: str, legacy_stages: bool, name: str) -> None:
    """Swap production and previous-production."""
    from carnn_pyfunc.registry import Promoter, PromotionRefused

    try:
        outcome = Promoter(name, legacy_stages=legacy_stages).rollback(reason=reason)
    except PromotionRefused as err:
        raise Refused(str(err)) from None
    _report(outcome)


@cli.command()
@_model_name
def stages(name: str) -> None:
    """List the versions with their stage, test MAE and latest transition."""
    from carnn_pyfunc.registry import Promoter

    promoter = Promoter(name)
    click.echo(f"{'version':>7}  {'stage':<19}  {'test_mae':>8}  last transition")
    for row in promoter.table():
        click.echo(
            f"{row['version']:>7}  {row['stage']:<19}  {row['test_mae']:>8}  "
            f"{row['last_transition']}"
        )
    for problem in promoter.inconsistencies():
        click.echo(f"inconsistent: {problem}", err=True)


@cli.command("export")
@click.option("--model-uri", default="models:/carnn@production", show_default=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default="build/model",
    show_default=True,
    help="directory to write (the Dockerfile copies build/model)",
)
def export_model(model_uri: str, output: str) -> None:
    """Write a registered model's directory into the Docker build context."""
    from carnn_pyfunc.export import ExportError, export

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        info = export(model_uri, output)
    except ExportError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"exported {info['model_uri']} (version {info['version']}) to {output}")
    click.echo("build:  docker build -t carnn .")
    click.echo("run:    docker run --rm -p 8080:8080 carnn")


def _report(outcome, prefix: str = "") -> None:
    for transition in outcome.transitions:
        click.echo(f"{prefix}{transition.describe()}")


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
        click.echo(f"error: {err.message}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
