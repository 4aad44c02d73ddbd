"""`carnn ...` commands. Entry points configure logging and the tracking URI, once, here."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import MISSING, asdict, fields

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

    result = run_training(_train_config(**options))
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
