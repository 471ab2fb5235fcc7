"""``seatgate demo``: the end-to-end story against seven local CRM sandboxes."""

from __future__ import annotations

import click

from . import Context, pass_ctx


@click.command("demo")
@pass_ctx
def demo(ctx: Context) -> None:
    """Install and sync all seven products against their sandboxes, then show the rules at work
    (in a throwaway database; --json: one document with each connector's counts)."""
    from ..demo import main

    main(as_json=ctx.json)


def register(main: click.Group) -> None:
    main.add_command(demo)
