"""`carnn predict`: the command-line client of `carnn serve` (placeholder until it lands)."""

from __future__ import annotations

import click


@click.command()
def predict() -> None:
    """Ask a running `carnn serve` for MPG (not built yet)."""
    raise click.ClickException("carnn predict is not built yet")
