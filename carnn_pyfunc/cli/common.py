"""What the commands share: option builders, the refusal exception, reporting."""

from __future__ import annotations

from dataclasses import MISSING, fields

import click

from carnn_pyfunc.config import FIELD_TYPES, TrainConfig


def config_options(config_cls):
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


def train_config(**options) -> TrainConfig:
    """The frozen config from options; a bad value is a usage error naming it."""
    try:
        return TrainConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def switch(flag: str, help_text: str):
    """A flag that also takes an explicit value (``--force`` or ``--force false``: MLproject)."""
    return click.option(
        flag, type=click.BOOL, is_flag=False, flag_value=True, default=False, help=help_text
    )


class Refused(click.ClickException):
    """A promotion the rules refused: exit code 1 with the reason."""

    def show(self, file=None) -> None:
        click.echo(f"refused: {self.message}", err=True)


def report(outcome, prefix: str = "") -> None:
    for transition in outcome.transitions:
        click.echo(f"{prefix}{transition.describe()}")
    for note in outcome.notes:
        click.echo(f"note: {note}")
