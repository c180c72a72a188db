"""The rfm plugin: recency-frequency-monetary scoring of customers from their orders.

A workspace names its customer and order entities, the order's customer, amount and date
fields, which orders count (a rule-language filter, e.g. ``stage == "won"``), the window
(the last 365 days by default) and when to recompute (a cron expression, nightly by
default); see :mod:`.settings`. Each run scores every customer 1-5 on recency, frequency
and monetary value by quintiles and stores the three scores, their code (``"545"``) and
a segment on the customer (:mod:`.scoring` has the segment table, :mod:`.run` the run).

It runs at the times its settings name, from ``blocks worker``'s ticks, and on demand with
``blocks rfm run`` or ``POST /api/v1/plugins/rfm/run`` (admins).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from blockscrm.engine import PluginInfo, Schedule, Workspace, hookimpl

from .run import recompute
from .settings import NAME, SCHEMA, Settings

#: How often the engine asks whether the workspace's own schedule is due: the hook names
#: one cron for every workspace, while each workspace sets its own.
POLL = "* * * * *"


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "1.0.0", ">=0.1,<1", settings=SCHEMA,
                      label={"en": "RFM segments"},
                      description="Scores customers on the recency, frequency and monetary "
                                  "value of their orders, and files each in a segment "
                                  "(champions, at risk, lost…).")


@hookimpl
def blocks_schedules() -> list[Schedule]:
    return [Schedule("recompute", POLL, recompute_when_due)]


def recompute_when_due(ws: Workspace, now: dt.datetime) -> None:
    """Recompute when the workspace's schedule names a time in the minute up to ``now``
    (the engine runs this once a minute)."""
    if Settings.of(ws).due(now, within=dt.timedelta(minutes=1)):
        recompute(ws, now)


@hookimpl
def blocks_cli_commands() -> list[Any]:
    from .cli import rfm

    return [rfm]


@hookimpl
def blocks_api_routes() -> Any:
    from .api import routes

    return routes()
