"""`carnn rollout`: a candidate version through canary steps to production, or back."""

from __future__ import annotations

import click

from carnn_pyfunc.rollout.checks import Thresholds

_DEFAULTS = Thresholds()


@click.command()
@click.option("--model-name", default="carnn", show_default=True, help="the registered model")
@click.option("--candidate-alias", default="canary", show_default=True,
              help="the candidate's alias (carnn serve --canary models:/NAME@ALIAS)")  # fmt: skip
@click.option("--prediction-log", required=True, envvar="CARNN_PREDICTION_LOG", show_envvar=True,
              help="the replicas' log root (carnn serve --prediction-log)")  # fmt: skip
@click.option("--steps", default="5,25,50,100", show_default=True,
              help="the canary's share of requests at each step, in %")  # fmt: skip
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="seconds each step runs before it is judged")  # fmt: skip
@click.option("--min-requests", type=int, default=_DEFAULTS.min_requests, show_default=True)
@click.option("--max-5xx-rate", type=float, default=_DEFAULTS.max_5xx_rate, show_default=True)
@click.option("--max-p99-ms", type=float, default=_DEFAULTS.max_p99_ms, show_default=True)
@click.option("--disagree-mpg", type=float, default=_DEFAULTS.disagree_mpg, show_default=True,
              help="two answers further apart than this disagree")  # fmt: skip
@click.option("--max-disagree-share", type=float, default=_DEFAULTS.max_disagree_share,
              show_default=True)  # fmt: skip
@click.option("--min-labels", type=int, default=_DEFAULTS.min_labels, show_default=True,
              help="fewest labelled rows for the live-MAE check (fewer: not judged)")  # fmt: skip
@click.option("--max-mae-ratio", type=float, default=_DEFAULTS.max_mae_ratio, show_default=True,
              help="the canary's live MAE may be at most production's times this")  # fmt: skip
@click.option("--abort", is_flag=True, help="only set the canary's share to 0, and stop")
def rollout(model_name: str, candidate_alias: str, prediction_log: str, steps: str,
            interval: float, abort: bool, **thresholds: float) -> None:  # fmt: skip
    """Move traffic to the candidate step by step; promote it when every step passes, roll it
    back (share 0, reason on the version) when one fails. Exit 0 promoted, 3 rolled back."""
    from carnn_pyfunc.registry.gates import Gates
    from carnn_pyfunc.registry.promoter import Promoter
    from carnn_pyfunc.rollout.checks import parse_steps
    from carnn_pyfunc.rollout.driver import Rollout, RolloutRefused

    try:
        percents = parse_steps(steps)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--steps") from None
    promoter = Promoter(model_name, gates=Gates())

    def promote(version: str, reason: str):
        return promoter.promote(version, "auto", reason=reason)  # staging, then production

    run = Rollout(model_name, prediction_log, percents, interval, Thresholds(**thresholds),
                  candidate_alias=candidate_alias, echo=click.echo, promote=promote)  # fmt: skip
    if abort:
        run.set_weight(0)
        click.echo(f"{model_name}: the canary's share is 0")
        return
    try:
        result = run.run()
    except RolloutRefused as err:
        raise click.ClickException(str(err)) from None
    if not result.promoted:
        raise click.exceptions.Exit(3)
