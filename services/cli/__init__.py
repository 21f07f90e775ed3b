"""The `dosis` command: run the services, mint development tokens, try the API by hand.

The group loads the settings (services/settings.py) once and hands them to every command as
the click context's object; the commands live in client_commands (what a supplier's or a
loket's developer uses) and operator_commands (what runs and looks after the services).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import click

from services.cli import client_commands, operator_commands
from services.settings import load_settings


@click.group()
@click.option("--log-level", default=None, show_default="DOSIS_LOG_LEVEL, else INFO")
@click.pass_context
def main(ctx: click.Context, log_level: str | None) -> None:
    """DOSIS: dossier statuses from agencies to the e-loket."""
    settings = load_settings()
    if log_level:
        settings = replace(settings, log_level=log_level)
    ctx.obj = settings
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


for command in (*client_commands.COMMANDS, *operator_commands.COMMANDS):
    main.add_command(command)
