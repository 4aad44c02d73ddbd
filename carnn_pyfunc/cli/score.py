"""`carnn score`: batch scoring of files (placeholder until the batch package lands)."""

from __future__ import annotations

import click


@click.command()
def score() -> None:
    """Score a file of cars (not built yet)."""
    raise click.ClickException("carnn score is not built yet")
