"""The rfm plugin: recency-frequency-monetary scoring of customers from their orders.

A workspace names its customer and order entities, the order's customer, amount and date
fields, which orders count (a rule-language filter, e.g. ``stage == "won"``), the window
(the last 365 days by default) and when to recompute (a cron expression, nightly by
default); see :mod:`.settings`. Each run scores every customer 1-5 on recency, frequency
and monetary value by quintiles and stores the three scores, their code (``"545"``) and
a segment on the customer (:mod:`.scoring` has the segment table, :mod:`.run` the run).

It runs at the times its settings name (its schedule's cron is the workspace's own),
from ``blocks worker``'s ticks, and on demand with ``blocks rfm run`` or
``POST /api/v1/plugins/rfm/run`` (admins). Settings that do not fit the workspace's
entities are refused when the plugin is enabled or its settings change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blockscrm.engine import PluginInfo, Schedule, Workspace, hookimpl

from .run import recompute
from .settings import NAME, SCHEMA, Settings


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "1.0.0", ">=0.1,<1", settings=SCHEMA,
                      label={"en": "RFM segments"},
                      description="Scores customers on the recency, frequency and monetary "
                                  "value of their orders, and files each in a segment "
                                  "(champions, at risk, lost…).")


@hookimpl
def blocks_check_settings(ws: Workspace, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return Settings.read(settings).problems(ws)


@hookimpl
def blocks_schedules(ws: Workspace) -> list[Schedule]:
    return [Schedule("recompute", Settings.of(ws).schedule, recompute)]


@hookimpl
def blocks_cli_commands() -> list[Any]:
    from .cli import rfm

    return [rfm]


@hookimpl
def blocks_api_routes() -> Any:
    from .api import routes

    return routes
