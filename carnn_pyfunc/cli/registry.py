"""`carnn promote | rollback | stages | export`: the Model Registry commands."""

from __future__ import annotations

import os

import click

from carnn_pyfunc.cli.common import Refused, report, switch
from carnn_pyfunc.cli.labelled import live_options, live_window

_model_name = click.option(
    "--name", "name", default="carnn", show_default=True, help="registered model"
)


_legacy = switch(
    "--legacy-stages", "also set the deprecated registry stage, for tools that still read stages"
)


@click.command()
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
@live_options
@switch("--force", "into production even if it does not beat production (needs --reason)")
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
    **live,
) -> None:
    """Move a model version towards production: candidate -> staging -> production."""
    from carnn_pyfunc.registry.gates import Gates
    from carnn_pyfunc.registry.promoter import Promoter, PromotionRefused

    gates = Gates(
        max_mae=max_mae,
        min_eval_rows=min_eval_rows,
        **({"data_path": data_path} if data_path else {}),
    )
    promoter = Promoter(name, gates=gates, live=live_window(**live), legacy_stages=legacy_stages)
    try:
        outcome = promoter.promote(spec, to, force=force, reason=reason)
    except PromotionRefused as err:
        raise Refused(str(err)) from None
    report(outcome)
    if outcome.refused:
        raise Refused(outcome.refused)


@click.command()
@click.option("--reason", default="", help="why; recorded on both versions")
@_legacy
@_model_name
def rollback(reason: str, legacy_stages: bool, name: str) -> None:
    """Swap production and previous-production."""
    from carnn_pyfunc.registry.promoter import Promoter, PromotionRefused

    try:
        outcome = Promoter(name, legacy_stages=legacy_stages).rollback(reason=reason)
    except PromotionRefused as err:
        raise Refused(str(err)) from None
    report(outcome)


@click.command()
@_model_name
def stages(name: str) -> None:
    """List the versions with their stage, test MAE and latest transition."""
    from carnn_pyfunc.registry.promoter import Promoter

    promoter = Promoter(name)
    click.echo(f"{'version':>7}  {'stage':<19}  {'test_mae':>8}  last transition")
    for row in promoter.table():
        click.echo(
            f"{row['version']:>7}  {row['stage']:<19}  {row['test_mae']:>8}  "
            f"{row['last_transition']}"
        )
    for problem in promoter.inconsistencies():
        click.echo(f"inconsistent: {problem}", err=True)


@click.command("export")
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
    from carnn_pyfunc.registry.export import ExportError, export

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        info = export(model_uri, output)
    except ExportError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"exported {info['model_uri']} (version {info['version']}) to {output}")
    click.echo("build:  docker build -t carnn .")
    click.echo("run:    docker run --rm -p 8080:8080 carnn")
