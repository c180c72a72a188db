"""``blocks email test-connection``: try the workspace's SMTP settings and say what worked.

Loaded only by the ``blocks`` command line (through ``blocks_cli_commands``), so the
engine's other processes do not import the web platform with this plugin.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import click

from blockscrm.engine import BlocksError

from .smtp import address, describe, session


@click.group("email")
def email() -> None:
    """The email plugin: SMTP delivery of the automations' emails."""


@email.command("test-connection")
@click.option("--to", "to", metavar="ADDRESS", help="Also send a test message there.")
def test_connection(to: str | None) -> None:
    """Connect to the SMTP server of this workspace's email settings (STARTTLS and login
    as they say), and with --to send a test message."""
    from blockscrm.platform.cli import open_workspace  # the command line's own, loaded

    with open_workspace() as ws:  # the configuration every other `blocks` command reads
        try:
            settings = ws.plugins.settings("email")
        except BlocksError as exc:
            raise click.ClickException(f"{exc.message} (blocks plugin enable email "
                                       "--settings '{\"host\": …, \"from\": …}')") from None
    try:
        with session(settings, lambda step: click.echo(f"ok: {step}")) as smtp:
            if to:
                message = EmailMessage()
                message["From"], message["To"] = settings["from"], to
                message["Subject"] = "Blocks CRM: test message"
                message.set_content("This message tests the SMTP settings of the email "
                                    "plugin.\n")
                smtp.send_message(message)
                click.echo(f"ok: sent a test message to {to}")
    except (OSError, smtplib.SMTPException) as exc:
        raise click.ClickException(f"failed with {address(settings)}: {describe(exc)}"
                                   ) from None
    click.echo(f"The SMTP settings work ({address(settings)}).")
