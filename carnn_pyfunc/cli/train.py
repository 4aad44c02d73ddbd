"""`carnn train | evaluate | sweep`: the training commands."""

from __future__ import annotations

from dataclasses import asdict

import click

from carnn_pyfunc.cli.common import config_options, report, train_config
from carnn_pyfunc.cli.labelled import live_options, live_window
from carnn_pyfunc.config import TrainConfig


@click.command()
@config_options(TrainConfig)
@click.option(
    "--promote/--no-promote",
    default=False,
    show_default=True,
    help="then promote the new version as far as the default gates allow",
)
@live_options
@click.pass_context
def train(ctx: click.Context, promote: bool, **options) -> None:
    """Train the network, log the run to MLflow and register a model version."""
    from carnn_pyfunc.training.extra import ExtraDataError
    from carnn_pyfunc.training.run import run_training

    live = {k: options.pop(k) for k in list(options) if k.startswith("live_")}
    if live["live_log"] and not promote:
        raise click.UsageError("--live-log is the live evidence of --promote: add --promote")
    config = train_config(**options)
    try:
        result = run_training(config)
    except ExtraDataError as err:
        raise click.ClickException(str(err)) from None
    uri = ctx.obj["tracking_uri"]
    click.echo("")
    if result.extra:
        added, read = result.extra["extra_rows_added"], result.extra["extra_rows_read"]
        click.echo(
            f"extra data:    {added} of {read} labelled served cars added to training "
            f"({result.extra['extra_rows_invalid']} invalid dropped, "
            f"{result.extra['extra_rows_duplicate']} duplicates dropped)"
        )
    click.echo(f"run id:        {result.run_id}  (experiment {result.experiment_id})")
    for name in ("test_mae", "test_rmse", "test_r2"):
        click.echo(f"{name + ':':<14} {result.metrics[name]:.3f}")
    coverage, width = (result.metrics[f"test_interval_{k}"] for k in ("coverage", "width"))
    click.echo(
        f"90% interval:  covers {coverage:.1%} of the test cars, {width:.2f} MPG wide on average"
    )
    click.echo(f"model URI:     {result.model_uri}")
    serve_uri = result.model_uri
    if promote and result.registered_version is not None:
        # Training is the job: a version the rules keep out of production is not a failure here.
        from carnn_pyfunc.registry.gates import Gates
        from carnn_pyfunc.registry.promoter import PRODUCTION, Promoter, PromotionRefused

        # the gates recompute held-out cars from the file this run trained on
        promoter = Promoter(
            config.registered_model_name,
            gates=Gates(data_path=config.data_path),
            live=live_window(**live),
        )
        try:
            outcome = promoter.promote(result.registered_version)
            report(outcome, prefix="moved:         ")
            if outcome.refused:
                click.echo(f"not promoted:  {outcome.refused}")
        except PromotionRefused as err:
            click.echo(f"not promoted:  {err}")
        if PRODUCTION in promoter.aliases():
            serve_uri = f"models:/{config.registered_model_name}@{PRODUCTION}"
    click.echo(f"serve it:      MLFLOW_TRACKING_URI={uri} carnn serve --model-uri {serve_uri}")
    runs = f"#/experiments/{result.experiment_id}/runs"
    if uri.startswith(("http://", "https://")):  # a tracking server shows the runs itself
        click.echo(f"see the run:   {uri.rstrip('/')}/{runs}")
    else:
        click.echo(
            f"see the run:   mlflow ui --backend-store-uri {uri}  then http://127.0.0.1:5000/{runs}"
        )


_seed = click.option("--seed", type=click.IntRange(min=0), default=42, show_default=True,
                     help="seed of the folds (and of the networks' initialisation)")  # fmt: skip
_experiment = click.option("--experiment-name", default="carnn", show_default=True,
                           help="MLflow experiment of the run")  # fmt: skip


@click.command()
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--baseline-trials",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Optuna trials for each tuned baseline inside each training fold",
)
@_seed
@_experiment
def evaluate(
    folds: int, repeats: int, baseline_trials: int, seed: int, experiment_name: str
) -> None:
    """Repeated k-fold CV of the network and of baselines on identical folds (one parent run)."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_RUN_ID

    from carnn_pyfunc.training.evaluation import run_evaluation

    config = train_config(seed=seed, experiment_name=experiment_name)
    if not MLFLOW_RUN_ID.get():
        mlflow.set_experiment(experiment_name)
    summaries = run_evaluation(
        config, folds=folds, repeats=repeats, seed=seed, baseline_trials=baseline_trials
    )
    click.echo(f"\n{'model':<24} {'cv_mae':>14} {'cv_rmse':>14} {'cv_r2':>14}")
    for name, m in sorted(summaries.items(), key=lambda item: item[1]["cv_mae"]):
        cells = " ".join(f"{m[f'cv_{k}']:>7.3f} ± {m[f'cv_{k}_std']:.3f}" for k in
                         ("mae", "rmse", "r2"))  # fmt: skip
        click.echo(f"{name:<24} {cells}")


@click.command()
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

    from carnn_pyfunc.training.sweep import run_sweep

    base = train_config(seed=seed, registered_model_name=registered_model_name,
                         experiment_name=experiment_name)  # fmt: skip
    if not MLFLOW_RUN_ID.get():
        mlflow.set_experiment(experiment_name)
    best, cv_mae, result = run_sweep(base, trials=trials, timeout_s=timeout_s, folds=folds,
                                     seed=seed)  # fmt: skip
    click.echo(f"\nbest cv_mae:   {cv_mae:.3f}")
    for name, value in sorted(asdict(best).items()):
        click.echo(f"  {name}: {value}")
    click.echo(f"model URI:     {result.model_uri}  (test_mae {result.metrics['test_mae']:.3f})")
