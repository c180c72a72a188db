"""The automation builder: what its page (``designer/automation.html``, ``static/automation.js``)
needs beyond the editor's shell.

A rule reads like a sentence, and its parts name things the browser cannot list through
the metadata routes alone: each entity's fields with their types (which may be set, which
hold a user, which a date), the actions the engine knows with the JSON Schema of their
settings (plugins add some, so the forms follow the registry), and the people and teams a
rule may name. The approval builder runs the same actions, so it reuses
:func:`builder_context`.
"""

from __future__ import annotations

from typing import Any

from blockscrm.engine.entities import Entity
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext, label
from blockscrm.platform.screens.helpers import option_label, select_options, title_field

from .editors import editor_context


def _action_labels() -> dict[str, str]:
    return {"set_fields": gettext("Set fields"),
            "create_record": gettext("Create a related record"),
            "assign_owner": gettext("Assign an owner"), "notify": gettext("Notify a user"),
            "send_email": gettext("Send an email"), "webhook": gettext("Call a webhook")}


def _texts() -> dict[str, str]:
    """What the action forms (``static/actions.js``) say."""
    return {
        "admin": gettext("Administrator"), "drag": gettext("Drag to reorder"),
        "up": gettext("Move up"), "down": gettext("Move down"), "remove": gettext("Remove"),
        "days": gettext("days"), "hours": gettext("hours"), "minutes": gettext("minutes"),
        "action_type": gettext("Action"), "add_action": gettext("Add this action"),
        "no_actions": gettext("No actions yet."), "set_to": gettext("Set"),
        "field": gettext("Field"), "value": gettext("Value"), "formula": gettext("Formula"),
        "add_value": gettext("Add a field"), "no_values": gettext("No fields yet."),
        "entity_first": gettext("Choose the entity first."), "yes": gettext("Yes"),
        "no": gettext("No"), "empty": gettext("(empty)"),
        "comma_separated": gettext("Separated by commas"),
        "create_entity": gettext("Create a"), "choose": gettext("Choose…"),
        "link": gettext("Linked back through"), "no_link": gettext("No link"),
        "into": gettext("Kept on this record in"), "not_kept": gettext("Not kept"),
        "with_values": gettext("With"), "strategy": gettext("How"),
        "round_robin": gettext("Round robin"), "least_open": gettext("Fewest open records"),
        "by_rule": gettext("By rules"), "in_team": gettext("Team"),
        "any_team": gettext("Any team"), "with_role": gettext("Role"),
        "any_role": gettext("Any role"), "when_holds": gettext("When"),
        "give_to": gettext("Give it to"), "first_rule": gettext("The first rule that holds"),
        "add_rule": gettext("Add a rule"), "otherwise": gettext("Otherwise"),
        "nobody": gettext("Nobody"), "recipient": gettext("To"),
        "the_owner": gettext("The record's owner"), "a_user": gettext("A user"),
        "a_user_field": gettext("The user in a field"), "a_manager": gettext("A manager"),
        "of_owner": gettext("The owner's manager"), "title": gettext("Title"),
        "template_hint": gettext("{{ record.title }} puts in a field"),
        "body": gettext("Message"), "to": gettext("To (one address a line)"),
        "subject": gettext("Subject"),
        "url": gettext("Address"), "secret": gettext("Signing secret"),
        "timeout_seconds": gettext("Timeout (seconds)"),
    }


def _fields(entity: Entity) -> list[dict[str, Any]]:
    """An entity's fields as the builders offer them: name, label, type, a reference's
    target, whether a formula computes it, and a select's options."""
    fields = []
    for name, found in entity.fields.items():
        options = [[o, option_label(entity, name, o)[0]] for o in select_options(entity, name)]
        fields.append({"name": name, "label": label(found.label, name),
                       "type": found.type.name, "ref": found.ref,
                       "computed": found.type.computed, "options": options})
    return fields


def builder_context() -> dict[str, Any]:
    """What the rule builders (automations, approvals) offer, as the drafts have it."""
    ws = current_workspace()
    catalog = ws.metadata.draft_catalog()
    labels = _action_labels()
    return {"context": {
        "entities": {name: {"label": label(entity.label, name), "title": title_field(entity),
                            "fields": _fields(entity)}
                     for name, entity in sorted(catalog.entities.items())},
        "actions": [{"name": name, "label": labels.get(name) or label(action.label, name),
                     "schema": action.schema}
                    for name, action in ws.actions.items()],
        "users": [{"username": u.username, "name": u.display_name or u.username}
                  for u in ws.accounts.users() if u.active],
        "teams": ws.accounts.teams(),
        "texts": _texts(),
    }}


@editor_context("automation")
def _automation(name: str | None) -> dict[str, Any]:
    return builder_context()
