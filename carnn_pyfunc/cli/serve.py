"""`carnn serve`: the scoring service (MLflow's protocol, clean errors, OpenAPI, metrics, auth)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from carnn_pyfunc.serving.settings import DEFAULT_MODEL_URI, TOKEN_VARIABLE


@click.command()
@click.option(
    "--model-uri",
    default=DEFAULT_MODEL_URI,
    show_default=True,
    help="models:/name@alias, models:/name/N, runs:/... or a model directory",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address to listen on (0.0.0.0 for every interface, e.g. in a container)",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5001, show_default=True, envvar="CARNN_PORT"
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="worker processes (one model each)",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help=f"file holding the bearer token (else ${TOKEN_VARIABLE}; unset: no auth)",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="an origin browsers may call from (repeat for several)",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0.001),
    default=5.0,
    show_default=True,
    help="largest request body; larger ones get 413",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.001),
    default=30.0,
    show_default=True,
    help="seconds a prediction may take before a 504",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(
    model_uri: str,
    host: str,
    port: int,
    workers: int,
    token_file: str | None,
    cors_origins: tuple[str, ...],
    max_body_mb: float,
    timeout_s: float,
    access_log: bool,
) -> None:
    """Serve a model over HTTP: POST /invocations as `mlflow models serve`, and more."""
    from carnn_pyfunc.serving.runner import run
    from carnn_pyfunc.serving.settings import Settings

    token = Path(token_file).read_text().strip() if token_file else os.environ.get(TOKEN_VARIABLE)
    try:
        settings = Settings(
            model_uri=model_uri,
            token=token or None,
            cors_origins=cors_origins,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            timeout_s=timeout_s,
        )
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    run(settings, host=host, port=port, workers=workers, access_log=access_log)
