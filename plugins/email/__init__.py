"""The ``email`` plugin: the automations' emails sent over SMTP.

The engine's ``send_email`` action keeps every email in the workspace's outbox and asks
the enabled plugins to deliver it (``blocks_deliver_email``); with this plugin enabled the
email goes out through the SMTP server of its settings::

    blocks plugin enable email --settings '{"host": "smtp.example.com", "port": 587,
        "from": "CRM <crm@example.com>", "username": "crm", "password": "…"}'
    blocks email test-connection --to me@example.com

A delivery that fails raises ``ActionFailed`` naming the server, so a rule run with the
save rolls the save back and a job is retried.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from blockscrm.engine import ActionFailed, PluginInfo, Workspace, hookimpl

from .smtp import address, describe, session

NAME = "email"
#: No CR or LF (a header cannot be smuggled in), and an address in it.
_ONE_LINE_ADDRESS = "^[^\r\n]*@[^\r\n]*$"
SETTINGS = {
    "type": "object", "required": ["host", "from"], "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "minLength": 1, "maxLength": 253,
                 "pattern": "^[A-Za-z0-9.:-]+$"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587},
        "from": {"type": "string", "minLength": 3, "maxLength": 320,
                 "pattern": _ONE_LINE_ADDRESS},
        "starttls": {"type": "boolean", "default": True},
        "username": {"type": "string", "minLength": 1, "maxLength": 256},
        "password": {"type": "string", "maxLength": 1024},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10},
    },
    "dependentRequired": {"password": ["username"]},
}


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "0.1.0", ">=0.1,<1", settings=SETTINGS,
                      label={"en": "Email (SMTP)", "zh": "电子邮件 (SMTP)"},
                      description="Sends the automations' emails through an SMTP server.")


@hookimpl
def blocks_deliver_email(ws: Workspace, message: EmailMessage) -> str:
    """Send ``message`` from the settings' ``from`` address; answer ``"sent"``.

    :raises ActionFailed: the server could not be reached or refused the message.
    """
    settings = ws.plugins.settings(NAME)
    del message["From"]
    message["From"] = settings["from"]
    try:
        with session(settings) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise ActionFailed(f"the email plugin could not send through "
                           f"{address(settings)}: {describe(exc)}") from None
    return "sent"


@hookimpl
def blocks_cli_commands() -> list[Any]:
    from .cli import email

    return [email]
