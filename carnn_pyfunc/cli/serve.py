"""`carnn serve`: the scoring service (MLflow's protocol, clean errors, OpenAPI, metrics, auth).

Its options are the service's one list of settings: each also reads ``CARNN_`` + the option's
name (``--workers`` <- ``CARNN_WORKERS``; the flag wins), shown in ``carnn serve --help``. This
module imports no model stack: with ``--workers N`` the supervisor stays small.
"""

from __future__ import annotations

import click

from carnn_pyfunc.serving.settings import DEFAULT_MODEL_URI, ENV_PREFIX, Settings


def option(*decls: str, **attrs):
    """A click option whose default and variable (CARNN_<NAME>) show in --help."""
    attrs.setdefault("show_default", True)
    return click.option(*decls, show_envvar=True, **attrs)


@click.command(context_settings={"auto_envvar_prefix": ENV_PREFIX})
@option(
    "--model-uri",
    default=DEFAULT_MODEL_URI,
    help="models:/name@alias, models:/name/N, runs:/... or a model directory",
)
@option(
    "--host",
    default="127.0.0.1",
    help="address to listen on (0.0.0.0 for every interface, e.g. in a container)",
)
@option("--port", type=click.IntRange(0, 65535), default=5001)
@option("--workers", type=click.IntRange(1, 64), default=1, help="worker processes (a model each)")
@option(
    "--api-token",
    default=None,
    show_default=False,
    help="bearer token for /invocations, /score.csv, /model and /metrics (prefer the variable "
    "or --token-file: a command line is visible to every user of the machine); unset: no auth",
)
@option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="file holding the bearer token (surrounding whitespace is ignored)",
)
@option(
    "--require-auth/--no-require-auth",
    default=False,
    help="refuse to start without a token (fail closed where the deployment promises auth)",
)
@option(
    "--cors-origin",
    multiple=True,
    help="an origin browsers may call from (repeat; in the variable, separate by spaces)",
)
@option(
    "--max-body-mb",
    type=click.FloatRange(min=0.001),
    default=5.0,
    help="largest request body; larger ones get 413",
)
@option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=Settings.max_rows,
    help="most rows in one request; more get 413",
)
@option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=Settings.max_in_flight,
    help="requests a worker works on at once; more get 503 with Retry-After",
)
@option(
    "--timeout",
    type=click.FloatRange(min=0.001),
    default=Settings.timeout_s,
    help="seconds a prediction may take before a 504",
)
@option(
    "--prediction-log",
    default=None,
    help="log every scored row under this root: a folder or a filesystem URI (s3://, gs://, "
    "hdfs://); also where POST /feedback stores true MPG figures",
)
@option(
    "--prediction-log-sample",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    help="the share of requests logged",
)
@option(
    "--shadow",
    default=None,
    help="a second model (e.g. models:/carnn@staging) that scores every request's rows in the "
    "background, logged as role shadow; it never answers",
)
@option(
    "--canary",
    default=None,
    help="a second model (e.g. models:/carnn@canary) that answers --canary-percent of the "
    "requests (by a hash of the request id); the other version shadows each request",
)
@option(
    "--canary-percent",
    type=click.FloatRange(0, 100),
    default=None,
    help="the canary's share of requests; unset: the registered model's tag "
    "carnn.canary_percent, polled (what carnn rollout moves)",
)
@option(
    "--poll-s",
    type=click.FloatRange(min=0),
    default=5.0,
    help="seconds between registry polls (aliases moved, the canary's weight); 0: never",
)
@option("--access-log/--no-access-log", default=False)
def serve(
    model_uri: str,
    host: str,
    port: int,
    workers: int,
    api_token: str | None,
    token_file: str | None,
    require_auth: bool,
    cors_origin: tuple[str, ...],
    max_body_mb: float,
    max_rows: int,
    max_in_flight: int,
    timeout: float,
    prediction_log: str | None,
    prediction_log_sample: float,
    shadow: str | None,
    canary: str | None,
    canary_percent: float | None,
    poll_s: float,
    access_log: bool,
) -> None:
    """Serve a model over HTTP: POST /invocations as `mlflow models serve`, and more."""
    from carnn_pyfunc.serving.runner import run
    from carnn_pyfunc.serving.settings import MissingSecret, resolve_token

    try:
        token = resolve_token(api_token, token_file, required=require_auth)
        settings = Settings(
            model_uri=model_uri,
            token=token,
            cors_origins=cors_origin,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            max_rows=max_rows,
            max_in_flight=max_in_flight,
            timeout_s=timeout,
            prediction_log=prediction_log,
            prediction_log_sample=prediction_log_sample,
            shadow_uri=shadow,
            canary_uri=canary,
            canary_percent=canary_percent,
            poll_s=poll_s,
        )
    except MissingSecret as err:
        raise click.UsageError(str(err)) from None
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    run(settings, host=host, port=port, workers=workers, access_log=access_log)


def variables() -> dict[str, str]:
    """Every variable `carnn serve` reads: name -> the option it sets."""
    names = {}
    for param in serve.params:
        if isinstance(param, click.Option):
            names[f"{ENV_PREFIX}_{param.name.upper()}"] = param.opts[-1]
    return names
