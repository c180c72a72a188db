"""``blocks rfm run``: recompute the scores now, and say how many customers each segment
holds."""

from __future__ import annotations

import datetime as dt

import click

from blockscrm.engine import BlocksError

from .run import recompute


@click.group("rfm")
def rfm() -> None:
    """RFM scores and segments of the customers (the rfm plugin)."""


@rfm.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Score as of this UTC time instead of now (the window ends there).")
def run(as_of: dt.datetime | None) -> None:
    """Recompute every customer's scores and segment now."""
    from blockscrm.platform.cli import open_workspace  # the command line's own, loaded

    now = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with open_workspace() as ws:  # the configuration every other command reads
        try:
            outcome = recompute(ws, now)
        except BlocksError as exc:
            raise click.ClickException(str(exc)) from None
    for segment, customers in outcome.segments.items():
        click.echo(f"{segment:<20} {customers:>7}")
    click.echo(f"Updated {outcome.updated} customers.")
