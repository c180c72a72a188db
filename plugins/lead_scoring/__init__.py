"""The lead-scoring plugin: a score on each record of one entity (a lead), from points for
the rule-language conditions that hold on it and for the activities that refer to it,
with a history of every change and the reasons for it.

A workspace names the entity, its integer score field, the rules
(``[{"when": 'source == "referral"', "points": 20, "label": "Referral"}]``), the
activities that earn points and an optional cap (:mod:`.settings`); settings that do not
fit its entities are refused when the plugin is enabled or its settings change. The score is
computed inside each write, so it is validated and stored with it (:mod:`.saving`); its
changes are kept in a table of the plugin's own (:mod:`.history`), shown in a panel of
the record's view (:mod:`.panel`) and served by
``GET /api/v1/plugins/lead-scoring/history/<entity>/<id>`` (:mod:`.api`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from blockscrm.engine import Entity, Panel, PluginInfo, User, Workspace, hookimpl

from .saving import check_and_keep, score_to_set
from .settings import NAME, SCHEMA, problems


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo(NAME, "1.0.0", ">=0.1,<1", settings=SCHEMA,
                      label={"en": "Lead scoring"},
                      description="Scores records (leads) with points for the conditions "
                                  "that hold on them and for their activities, and keeps "
                                  "the history of each score.")


@hookimpl
def blocks_check_settings(ws: Workspace, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return problems(ws.catalog(), settings)


@hookimpl
def blocks_before_validate(ws: Workspace, entity: Entity, values: Mapping[str, Any],
                           previous: Mapping[str, Any] | None, record_id: str | None,
                           user: User | None) -> Mapping[str, Any] | None:
    return score_to_set(ws, entity, values, previous, record_id, user)


@hookimpl
def blocks_before_save(ws: Workspace, conn: sa.Connection, entity: Entity, action: str,
                       record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
    check_and_keep(ws, conn, entity, action, record, previous)


@hookimpl
def blocks_record_panels(ws: Workspace, entity: Entity) -> list[Panel]:
    from .panel import panels_for

    return panels_for(ws, entity)


@hookimpl
def blocks_api_routes() -> Any:
    from .api import routes

    return routes
