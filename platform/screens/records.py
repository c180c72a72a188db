"""The record's 360° view: the form layout in read mode, the workflow's transitions, the
approval panel, the records that reference this one, a timeline of everything that
happened to it, and the automation rules that fired on it (the "why" of a change).

Every read goes through the engine as the user, so the page shows what they may see;
every write (a transition, a note, a delete) is a POST carrying the CSRF token, and a
refusal comes back on the page with the engine's reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from blockscrm.engine import Entity, User
from blockscrm.engine.access import grant_for
from blockscrm.engine.errors import BlocksError, NotFound, ValidationError
from blockscrm.engine.rules.python import Env

from ..extension import current_workspace
from ..i18n import format_datetime, gettext, label, ngettext
from . import bp
from .helpers import (
    current_catalog,
    default_columns,
    display,
    field_label,
    layout,
    navigation,
    option_label,
    parse_id,
    parse_input,
    record_title,
    reference_titles,
    select_options,
    state_label,
    the_user,
    visible_fields,
)

#: Records shown per related list.
RELATED = 10
#: How much of an action's result the "why" panel shows.
RESULT_CHARS = 300
#: Input types of the transition dialog, by field type (anything else is text).
INPUT_TYPES = {"integer": "number", "decimal": "number", "currency": "number",
               "percent": "number", "date": "date", "boolean": "checkbox",
               "email": "email", "url": "url", "long_text": "textarea",
               "rich_text": "textarea"}


# --- routes ----------------------------------------------------------------------------------


@bp.get("/<entity>/<record_id>")
def record_view(entity: str, record_id: str) -> str:
    return _page(entity, record_id)


@bp.post("/<entity>/<record_id>/transition/<name>")
def take_transition(entity: str, record_id: str, name: str) -> Response | tuple[str, int]:
    """Take a transition with the fields its dialog asked for; a refusal comes back with
    the engine's reason (and the dialog, open, keeping what the user typed)."""
    user = the_user()
    ws = current_workspace()
    ent = current_catalog().entity(entity)
    step = ent.workflow.transitions.get(name) if ent.workflow is not None else None
    asked = [n for n in request.form.getlist("ask") if step is not None and n in step.require]
    values = {n: parse_input(ent, n, request.form) for n in asked}
    step_label = label(step.label, name) if step is not None else name
    try:
        ws.records.transition(entity, record_id, name, values=values or None,
                              version=_version(), user=user)
    except NotFound:
        raise
    except ValidationError as exc:
        flash(gettext("%(transition)s was refused: %(reason)s", transition=step_label,
                      reason=_reason(ent, exc)), "error")
        if asked:
            failed = {"name": name, "values": request.form.to_dict(), "errors": exc.errors}
            return _page(entity, record_id, failed=failed), 422
    except BlocksError as exc:
        flash(gettext("%(transition)s was refused: %(reason)s", transition=step_label,
                      reason=_reason(ent, exc)), "error")
    else:
        flash(gettext("%(transition)s: done.", transition=step_label))
    return redirect(url_for("screens.record_view", entity=entity, record_id=record_id))


@bp.post("/<entity>/<record_id>/notes")
def add_note(entity: str, record_id: str) -> Response | tuple[str, int]:
    """A note on the record's timeline; an empty one comes back with the reason."""
    body = request.form.get("body") or ""
    try:
        current_workspace().notes.add(entity, record_id, body, user=the_user())
    except ValidationError as exc:
        note = {"body": body, "error": "; ".join(exc.errors.get("body", [str(exc)]))}
        return _page(entity, record_id, note=note), 422
    flash(gettext("Note added."))
    return redirect(url_for("screens.record_view", entity=entity, record_id=record_id,
                            _anchor="timeline"))


@bp.post("/<entity>/<record_id>/delete")
def delete_record(entity: str, record_id: str) -> Response:
    """Delete, then back to the entity's list; a refusal (a restricting reference, a
    pending approval, a stale version) stays on the record with the reason."""
    ws = current_workspace()
    ent = current_catalog().entity(entity)
    try:
        ws.records.delete(entity, record_id, version=_version(), user=the_user())
    except NotFound:
        raise
    except BlocksError as exc:
        flash(gettext("Not deleted: %(reason)s", reason=_reason(ent, exc)), "error")
        return redirect(url_for("screens.record_view", entity=entity, record_id=record_id))
    flash(gettext("Deleted."))
    return redirect(url_for("screens.list_view", entity=entity))


def _version() -> int | None:
    """The version the form was read at: None when the form sent none; one that is no
    version ("²", past 64 bits) becomes 0, which no record is at, so the write is refused
    as stale rather than made without the check."""
    raw = (request.form.get("version") or "").strip()
    if not raw:
        return None
    return parse_id(raw) or 0


def _reason(ent: Entity, exc: BlocksError) -> str:
    """What the engine said, with a validation's fields named by their labels."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field_label(ent, k)}: {', '.join(v)}" if k else ", ".join(v)
                         for k, v in exc.errors.items())
    return exc.message


# --- the page --------------------------------------------------------------------------------


def _page(entity: str, record_id: str, *, failed: Mapping[str, Any] | None = None,
          note: Mapping[str, Any] | None = None) -> str:
    """The whole view; ``failed`` reopens a transition's dialog, ``note`` keeps a note
    the engine refused."""
    user = the_user()
    ws = current_workspace()
    catalog = current_catalog()
    ent = catalog.entity(entity)
    record = ws.records.get(entity, record_id, user=user)
    grant = grant_for(user, ent, catalog)
    people = People()
    tabs = _tabs(ent, user, record)
    names = [n for tab in tabs for s in tab["sections"] for n in s["fields"]]
    runs = _runs(ws, ent, record_id, user)
    may_update = grant.update is not None
    return render_template(
        "app/record.html", nav=navigation(user), entity=ent,
        entity_label=label(ent.label, ent.name), record=record,
        title=record_title(ent, record), tabs=tabs,
        labels={n: field_label(ent, n) for n in names},
        titles=reference_titles(ent, [record], names, user),
        state=state_label(ent, record.get("state")) if ent.workflow is not None else None,
        facts=_facts(ent, record, people),
        may_edit=may_update, may_delete=grant.delete is not None,
        transitions=_transitions(ws, ent, record, user) if may_update else [],
        failed=failed or {}, note=note or {},
        approval=_approval(ws, ent, record, user, people, may_update),
        related=_related(ws, ent, record_id, user),
        panels=_plugin_panels(ws, ent, record, user),
        runs=runs, timeline=_timeline(ws, ent, record_id, user, people, runs))


def _tabs(ent: Entity, user: User, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The form layout, without the fields its conditions hide for this record."""
    form = current_catalog().form_for(ent.name)
    flags = form.flags(record, Env(user=user.rule_values())) if form is not None else {}
    hidden = {n for n, f in flags.items() if not f.get("visible", True)}
    tabs = []
    for tab in layout(ent, user):
        sections = [{**s, "fields": [n for n in s["fields"] if n not in hidden]}
                    for s in tab["sections"]]
        sections = [s for s in sections if s["fields"]]
        if sections:
            tabs.append({**tab, "sections": sections})
    return tabs


def _facts(ent: Entity, record: Mapping[str, Any], people: People) -> list[tuple[str, str]]:
    """Who owns the record, who made and last changed it, when."""
    facts = [(gettext("Owner"), people(record.get("owner_id"))) if record.get("owner_id")
             else None,
             (gettext("Created"), gettext("%(when)s by %(who)s",
                                          when=format_datetime(record.get("created_at")),
                                          who=people(record.get("created_by")))),
             (gettext("Updated"), gettext("%(when)s by %(who)s",
                                          when=format_datetime(record.get("updated_at")),
                                          who=people(record.get("updated_by"))))]
    return [f for f in facts if f is not None]


# --- transitions ------------------------------------------------------------------------------


def _transitions(ws: Any, ent: Entity, record: Mapping[str, Any], user: User
                 ) -> list[dict[str, Any]]:
    """The transitions the user may take from here, each with the inputs its dialog asks
    for (the fields it requires that are empty) and whether its guard holds now."""
    if ent.workflow is None:
        return []
    answer = []
    for item in ws.records.transitions(ent.name, record["id"], user=user):
        answer.append({**item, "label": label(item["label"], item["name"]),
                       "to_label": state_label(ent, item["to"]),
                       "inputs": [_input(ent, n) for n in item["missing"]]})
    return answer


def _input(ent: Entity, name: str) -> dict[str, Any]:
    """One input of a transition's dialog, by the field's simple type."""
    found = ent.fields.get(name)
    kind = found.type.name if found is not None else "text"
    field = {"name": name, "label": field_label(ent, name),
             "type": INPUT_TYPES.get(kind, "text"), "options": []}
    if kind == "select" and found is not None:
        field.update(type="select",
                     options=[(v, option_label(ent, name, v)[0])
                              for v in select_options(ent, name)])
    if kind in ("decimal", "currency", "percent"):
        field["step"] = "any"
    return field


# --- the approval panel -----------------------------------------------------------------------


def _approval(ws: Any, ent: Entity, record: Mapping[str, Any], user: User, people: People,
              may_update: bool) -> dict[str, Any]:
    """The latest approval request of the record (its step, who is waiting, the votes)
    and what the user may do: submit, approve or reject, recall."""
    # for_record takes no user: safe, as the record was read as the user first (a record
    # they may not read is NotFound before this), and each request shown below is read
    # again through ws.approvals.get(..., user=user)
    requests = ws.approvals.for_record(ent.name, record["id"])
    pending = any(r["status"] == "pending" for r in requests)
    processes = [{"name": a.name, "label": label(a.label, a.name)} for a in ent.approvals]
    panel: dict[str, Any] = {"processes": processes, "request": None,
                             "earlier": max(len(requests) - 1, 0),
                             "may_submit": bool(processes) and may_update and not pending}
    if not requests:
        return panel
    latest = ws.approvals.get(requests[-1]["id"], user=user)
    definition = next((a for a in ent.approvals if a.name == latest["approval"]), None)
    steps = list(definition.steps) if definition is not None else []
    names = {i: label(s.label, s.name) for i, s in enumerate(steps)}
    index = next((i for i, s in enumerate(steps) if s.name == latest["step"]), None)
    is_pending = latest["status"] == "pending"
    decided = {d["user_id"] for d in latest["decisions"] if d["step"] == index}
    waiting = [u for u in latest["approvers"] if u not in decided] if is_pending else []
    panel["request"] = {
        "id": latest["id"], "status": latest["status"],
        "label": label(definition.label, latest["approval"]) if definition
        else latest["approval"],
        "step": names.get(index, latest["step"]) if index is not None else None,
        "waiting": [people(u) for u in waiting],
        "submitted_by": people(latest["submitted_by"]), "submitted_at": latest["submitted_at"],
        "decided_at": latest["decided_at"], "due_at": latest["due_at"],
        "votes": [{"who": people(d["user_id"]), "decision": d["decision"],
                   "step": names.get(d["step"], str(d["step"])), "comment": d["comment"],
                   "at": d["at"]} for d in reversed(latest["decisions"])],
        "may_decide": is_pending and user.id in waiting,
        "may_recall": is_pending and (user.is_admin or user.id == latest["submitted_by"])}
    return panel


# --- related lists ---------------------------------------------------------------------------


def _related(ws: Any, ent: Entity, record_id: str, user: User) -> list[dict[str, Any]]:
    """For each reference field pointing at this entity, the first records that point at
    this record, as the user may read them (an entity they may not read is left out)."""
    catalog = current_catalog()
    answer = []
    sources = catalog.references_to(ent.name)
    twice = {e.name for e, _ in sources if sum(1 for o, _ in sources if o.name == e.name) > 1}
    for other, f in sources:
        grant = grant_for(user, other, catalog)
        if grant.read is None or f.name in grant.hidden:
            continue
        try:
            query = ws.query(other.name, user=user).filter(
                {"==": [{"var": f.name}, record_id]})
            count = query.count()
            view = catalog.view_for(other.name)
            names = visible_fields(other, user, view.columns) if view else \
                default_columns(other, user)
            names = [n for n in names if n != f.name] or ["id"]
            page = query.sort(*(view.sort if view and view.sort else ("-created_at",))) \
                .limit(RELATED).page()
        except BlocksError:
            continue
        title = label(other.label, other.name)
        answer.append({
            "entity": other, "field": f.name,
            "title": f"{title} ({field_label(other, f.name)})" if other.name in twice else title,
            "count": count.value, "exact": count.exact, "records": page.items,
            "columns": [{"name": n, "label": field_label(other, n)} for n in names],
            "titles": reference_titles(other, page.items, names, user),
            "add": _add_url(other, f.name, record_id) if grant.create else None})
    return answer


def _add_url(other: Entity, field: str, record_id: str) -> str:
    """The new-record form of ``other`` with ``field`` filled with this record."""
    if field == "entity":  # the route's own argument: the field goes in the query
        return url_for("screens.new_record", entity=other.name) + "?" + urlencode(
            {field: record_id})
    return url_for("screens.new_record", entity=other.name, **{field: record_id})


def _plugin_panels(ws: Any, ent: Entity, record: Mapping[str, Any], user: User
                   ) -> list[dict[str, Any]]:
    """The panels the enabled plugins add to this record's view, each drawn as the user;
    a panel that fails says so in its place instead of failing the page."""
    panels = []
    for answer in ws.plugins.call("blocks_record_panels", ws=ws, entity=ent):
        for panel in answer:
            try:
                body = Markup(panel.render(ws, ent, record, user))  # the plugin escapes
            except Exception:  # one plugin's panel does not take the page down
                logging.getLogger(__name__).exception("panel %s failed", panel.name)
                body = None
            panels.append({"name": panel.name, "title": label(panel.label, panel.name),
                           "body": body})
    return panels


# --- automation runs and the timeline ----------------------------------------------------------


def _runs(ws: Any, ent: Entity, record_id: str, user: User) -> list[dict[str, Any]]:
    """The rules that fired on the record, newest first, each action with what it did (only
    its name to a non-admin, as the API's history answers: a result may show a value the
    reader may not see; so may an error's text, so a non-admin learns only that it
    failed)."""
    actions = ws.actions
    runs = []
    # runs() takes no user: safe, as the record was read as the user first (_page), and
    # what a run did or why it failed is shown to admins only
    for run in ws.automations.runs(ent.name, record_id):
        steps = []
        for step in run["steps"]:
            action = actions.get(step.get("action"))
            shown = {"label": label(action.label, action.name) if action else step.get("action")}
            if user.is_admin:
                shown["result"] = _result(ent, step.get("result"))
            steps.append(shown)
        runs.append({**run, "label": _rule_label(run["automation"]), "steps": steps,
                     "error": run["error"] if user.is_admin else None,
                     "failed": bool(run["error"]) or run["status"] == "failed"})
    return runs


def _result(ent: Entity, result: Any) -> Markup:
    """What an action did, briefly: the fields it set with their values, else its answer."""
    if isinstance(result, Mapping) and isinstance(result.get("set"), Mapping):
        return Markup(", ").join(
            Markup("%s → %s") % (field_label(ent, k), display(ent, k, {k: v}) or "∅")
            for k, v in result["set"].items())
    if result is None:
        return Markup("")
    text = json.dumps(result, default=str, ensure_ascii=False, sort_keys=True)
    return escape(text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + "…")


def _rule_label(name: str) -> str:
    document = current_catalog().documents.get(("automation", name)) or {}
    return label(document.get("label"), name)


def _timeline(ws: Any, ent: Entity, record_id: str, user: User, people: People,
              runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything that happened to the record, newest first: the audit trail (changes,
    transitions, approvals), automation runs, notes and emails."""
    history = ws.records.history(ent.name, record_id, user=user)
    sides = [{k: c.get(side) for k, c in e["changes"].items() if k in ent.fields}
             for e in history if e["action"] != "approval" for side in ("before", "after")]
    titles = reference_titles(ent, sides, list(ent.fields), user)
    items = [_audit_item(ent, e, people, titles) for e in history]
    items += [{"kind": "run", "at": r["created_at"], "id": r["id"],
               "who": gettext("Rule %(rule)s", rule=r["label"]),
               "what": gettext("Ran on %(trigger)s: %(status)s", trigger=r["trigger"],
                               status=r["status"])} for r in runs]
    items += [{"kind": "note", "at": n["at"], "who": people(n["author_id"]),
               "what": gettext("Note"), "body": n["body"]}
              for n in ws.notes.for_record(ent.name, record_id, user=user)]
    items += [_email_item(m, user, people)
              for m in ws.notes.emails_for_record(ent.name, record_id, user=user)]
    items.sort(key=lambda i: _moment(i["at"]), reverse=True)
    return items


def _email_item(mail: Mapping[str, Any], user: User, people: People) -> dict[str, Any]:
    """An email a rule sent about the record: in full to an admin; to anyone else only
    how many it went to and how it went, as its subject, addresses and body may show
    values the reader may not see (the template filled them from the whole record)."""
    item = {"kind": "email", "at": mail["at"], "who": people(None), "body": None}
    if user.is_admin:
        item["what"] = gettext("Email “%(subject)s” to %(to)s (%(status)s)",
                               subject=mail["subject"], to=", ".join(mail["to"]),
                               status=mail["status"])
        item["body"] = mail["body"]
    else:
        item["what"] = ngettext("Email to %(num)d recipient (%(status)s)",
                                "Email to %(num)d recipients (%(status)s)",
                                len(mail["to"]), status=mail["status"])
    return item


def _audit_item(ent: Entity, entry: Mapping[str, Any], people: People,
                titles: Mapping[str, str]) -> dict[str, Any]:
    """One entry of the audit trail as the timeline says it."""
    action = entry["action"]
    item: dict[str, Any] = {"kind": action, "at": entry["at"], "who": people(entry["actor"]),
                            "changes": []}
    if action == "approval":
        detail = entry["changes"]
        definition = next((a for a in ent.approvals if a.name == detail.get("approval")), None)
        steps = definition.steps if definition is not None else ()
        step_label = next((label(s.label, s.name) for s in steps if s.name == detail.get("step")),
                          detail.get("step") or "")
        item["what"] = _approval_event(
            entry.get("decision") or "", step=step_label,
            approval=label(definition.label, definition.name) if definition
            else detail.get("approval") or "")
        item["body"] = detail.get("comment")
        return item
    if action == "transition":
        step = ent.workflow.transitions.get(entry.get("transition")) if ent.workflow else None
        item["what"] = gettext("Transition: %(name)s", name=label(step.label, step.name)
                               if step else entry.get("transition") or "")
    else:
        item["what"] = {"create": gettext("Created"), "update": gettext("Updated"),
                        "delete": gettext("Deleted")}.get(action, action)
    places = {"state": -1, **{name: i for i, name in enumerate(ent.fields)}}

    def order(change: tuple[str, Any]) -> tuple[int, str]:
        return places.get(change[0], len(places)), change[0]

    item["changes"] = [{"label": field_label(ent, k),
                        "before": _shown(ent, k, c.get("before"), titles, people),
                        "after": _shown(ent, k, c.get("after"), titles, people)}
                       for k, c in sorted(entry["changes"].items(), key=order)]
    return item


def _approval_event(decision: str, *, approval: str, step: str) -> str:
    """What an approval's entry in the audit trail says, by its decision."""
    names = {"approval": approval, "step": step}
    texts = {
        "submitted": gettext("Submitted for approval: %(approval)s", **names),
        "step_approved": gettext("Approved step %(step)s of %(approval)s", **names),
        "approved": gettext("Approval %(approval)s approved", **names),
        "rejected": gettext("Approval %(approval)s rejected", **names),
        "recalled": gettext("Approval %(approval)s recalled", **names),
        "skipped": gettext("Step %(step)s of %(approval)s skipped", **names),
        "escalated": gettext("Step %(step)s of %(approval)s escalated", **names),
        "transition_failed": gettext("Approval %(approval)s approved; its transition failed",
                                     **names)}
    return texts.get(decision, approval)


def _shown(ent: Entity, name: str, value: Any, titles: Mapping[str, str], people: People
           ) -> Markup:
    """A value of a change, formatted like the record's (an owner by their name)."""
    if value is None or value == "":
        return Markup("")
    if name in ("owner_id", "created_by", "updated_by"):
        return escape(people(value))
    return display(ent, name, {name: value}, titles)


def _moment(value: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min
    return moment.replace(tzinfo=None)


class People:
    """Who did something, by name: a user's display name (else username), a rule, an
    approval, or the system; each looked up once per page."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, actor: str | None) -> str:
        if not actor:
            return gettext("System")
        if actor not in self.names:
            self.names[actor] = self._name(actor)
        return self.names[actor]

    def _name(self, actor: str) -> str:
        kind, _, name = actor.partition(":")
        if kind == "automation" and name:
            return gettext("Rule %(rule)s", rule=_rule_label(name))
        if kind == "approval" and name:
            document = current_catalog().documents.get(("approval", name)) or {}
            return gettext("Approval %(approval)s", approval=label(document.get("label"), name))
        try:
            found = current_workspace().accounts.user(actor)
        except BlocksError:
            return actor
        return found.display_name or found.username
