"""What the editors' pages are told of the workspace beyond what the metadata routes list,
as the drafts have it: the entities a definition can be about, each entity's fields as the
view and dashboard editors offer them (columns, sort keys, kanban groups, sums), and what
the rule builders offer (automations, approvals, and a workflow's transitions, which run
the same actions). Each kind's module hands its page what it needs of these through
:func:`~blockscrm.designer.editors.editor_context`; the engine checks every choice again
when the definition is saved and published.
"""

from __future__ import annotations

from typing import Any

from blockscrm.engine.entities import Entity
from blockscrm.engine.presentation import SHOWN_SYSTEM_FIELDS
from blockscrm.engine.rules.types import NUMBER, rule_type_of
from blockscrm.platform.extension import current_workspace
from blockscrm.platform.i18n import gettext, label, pgettext
from blockscrm.platform.screens.helpers import (
    field_label,
    option_label,
    select_options,
    title_field,
)


def entity_choices() -> list[dict[str, Any]]:
    """Every entity a definition can be about, drafts included: ``{"name", "label"}``."""
    return [{"name": d["name"], "label": d.get("label", {})}
            for d in current_workspace().metadata.list("entity")]


#: The field type a system field has, as the editors tell kinds of fields apart.
SYSTEM_TYPES = {"state": "state", "owner_id": "user", "created_by": "user",
                "updated_by": "user", "created_at": "datetime", "updated_at": "datetime"}


def entity_fields() -> dict[str, list[dict[str, Any]]]:
    """Every entity's fields (drafts included) as the editors offer them, by entity:
    ``{"name", "label", "type", "number"}`` each, its own fields first, then the system
    fields a list may show (``state`` only where a workflow applies)."""
    ws = current_workspace()
    with_workflow = {d["entity"] for d in ws.metadata.list("workflow")}
    found: dict[str, list[dict[str, Any]]] = {}
    for name, entity in ws.metadata.draft_catalog().entities.items():
        fields = [{"name": n, "label": label(f.label, n), "type": f.type.name,
                   "number": rule_type_of(f.type) is NUMBER}
                  for n, f in entity.fields.items()]
        fields += [{"name": n, "label": field_label(entity, n), "type": SYSTEM_TYPES[n],
                    "number": False}
                   for n in SHOWN_SYSTEM_FIELDS if n != "state" or name in with_workflow]
        found[name] = fields
    return found


def field_list_texts() -> dict[str, str]:
    """What the lists of fields the editors share say (``BlocksFieldLists`` in
    ``static/fieldlists.js``)."""
    return {"fields": gettext("Fields"), "chosen": gettext("Shown, in order"),
            "add": gettext("Add"), "add_field": gettext("Add a field"),
            "choose": gettext("Choose…"), "none": gettext("None yet."),
            "up": gettext("Move up"), "down": gettext("Move down"),
            "remove": gettext("Remove"), "drag": gettext("Drag to reorder"),
            "key": gettext("Sort by"), "direction": gettext("Direction"),
            "ascending": gettext("Ascending"), "descending": gettext("Descending"),
            "add_key": gettext("Add a sort key")}


def _action_labels() -> dict[str, str]:
    return {"set_fields": gettext("Set fields"),
            "create_record": gettext("Create a related record"),
            "assign_owner": gettext("Assign an owner"), "notify": gettext("Notify a user"),
            "send_email": gettext("Send an email"), "webhook": gettext("Call a webhook")}


def _action_texts() -> dict[str, str]:
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
        "any_role": gettext("Any role"), "when_holds": pgettext("assignment rule", "When"),
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


def _rule_fields(entity: Entity) -> list[dict[str, Any]]:
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
    """What the rule builders (automations, approvals, a workflow's transitions) offer, as
    the drafts have it: each entity's fields, the actions the engine knows with the JSON
    Schema of their settings (plugins add some), and the people and teams a rule may name."""
    ws = current_workspace()
    catalog = ws.metadata.draft_catalog()
    labels = _action_labels()
    return {"context": {
        "entities": {name: {"label": label(entity.label, name), "title": title_field(entity),
                            "fields": _rule_fields(entity)}
                     for name, entity in sorted(catalog.entities.items())},
        "actions": [{"name": name, "label": labels.get(name) or label(action.label, name),
                     "schema": action.schema}
                    for name, action in ws.actions.items()],
        "users": [{"username": u.username, "name": u.display_name or u.username}
                  for u in ws.accounts.users() if u.active],
        "teams": ws.accounts.teams(),
        "texts": _action_texts(),
    }}
