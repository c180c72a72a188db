"""Automation actions: what a rule does when it fires.

Every action, built-in or from a plugin, is an :class:`Action` registered through the
``blocks_actions`` hook: its name (what a rule's ``"type"`` says), a JSON Schema for its
own keys (checked when the rule is published), and the function that runs it with an
:class:`ActionContext`. An action that writes records goes through the record service,
so what it writes is validated, audited and may fire other rules in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .errors import ActionFailed
from .fieldtypes import json_value
from .rules import Env, RuleError, RuleSyntaxError, parse_rule
from .rules.types import BOOLEAN
from .store import Notification, OutboxMessage, Setting, UserRole, UserRow, member_table

if TYPE_CHECKING:
    from .accounts import User
    from .entities import Entity
    from .workspace import Catalog, Workspace

#: A value in an action: a literal, or ``{"formula": "amount * 0.1"}`` read on the record.
VALUE = {"anyOf": [{"type": ["string", "number", "boolean", "array", "null"]},
                   {"type": "object", "required": ["formula"], "additionalProperties": False,
                    "properties": {"formula": {"type": "string", "minLength": 1}}},
                   {"type": "object", "not": {"required": ["formula"]}}]}
_TEMPLATES = SandboxedEnvironment(autoescape=False)


@dataclass
class ActionContext:
    """What an action sees: the record as saved, the one before, who acted, which rule."""

    ws: Workspace
    entity: Entity
    record: dict[str, Any]
    previous: dict[str, Any] | None
    user: User | None
    automation: str
    run_id: int | None = None
    dry_run: bool = False
    trigger: str = ""
    transition: str | None = None
    #: Whether the rule acts as the user whose write fired it (``run_as: user``), under
    #: their permissions, rather than as the system.
    as_user: bool = False
    #: What a plugin's trigger carried (an incoming webhook's data), for templates.
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """Who the audit trail says wrote what the action writes."""
        return f"automation:{self.automation}"

    @property
    def writer(self) -> dict[str, Any]:
        """How the action's writes name who makes them: the user (whose grants then
        apply), or the rule acting as the system."""
        if self.as_user and self.user is not None:
            return {"user": self.user}
        return {"actor": self.actor}

    def value(self, spec: Any) -> Any:
        """A literal as it is; ``{"formula": …}`` computed on the record."""
        if isinstance(spec, Mapping) and set(spec) == {"formula"}:
            evaluate = self.entity.rules.compile_python(parse_rule(spec["formula"]))
            return json_value(evaluate(self.record, Env(user={"id": self.actor},
                                                        previous=self.previous)))
        return spec

    def render(self, template: str) -> str:
        """A Jinja2 template rendered in a sandbox with ``record``, ``previous``, ``entity``
        and ``payload`` (what a plugin's trigger carried)."""
        try:
            return _TEMPLATES.from_string(template).render(
                record=self.record, previous=self.previous or {}, entity=self.entity.name,
                automation=self.automation, payload=self.payload)
        except TemplateError as exc:  # a syntax error, or what the sandbox refuses
            raise ActionFailed(f"template {template!r}: {exc}") from None


@dataclass(frozen=True)
class Action:
    """One kind of action."""

    name: str
    schema: Mapping[str, Any]
    run: Callable[[ActionContext, Mapping[str, Any]], Any]
    #: Checks beyond the schema, against the published catalog: ``(pointer, message)``.
    check: Callable[[Mapping[str, Any], Entity, Catalog], Iterable[tuple[str, str]]] | None = None
    #: What a dry run says the action would do, without doing it.
    describe: Callable[[ActionContext, Mapping[str, Any]], Any] | None = None
    label: Mapping[str, str] = field(default_factory=dict)


def _object(properties: Mapping[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {"type": {"type": "string"}, **properties},
            "required": ["type", *required], "additionalProperties": False}


def formula_errors(values: Mapping[str, Any], entity: Entity, at: str
                   ) -> Iterable[tuple[str, str]]:
    """Values given as formulas that do not parse or type-check on ``entity``."""
    for name, spec in values.items():
        if isinstance(spec, Mapping) and set(spec) == {"formula"}:
            try:
                entity.rules.checker().check(parse_rule(spec["formula"]))
            except RuleSyntaxError as exc:
                yield f"{at}/{name}/formula", str(exc)
            except RuleError as exc:
                yield f"{at}/{name}/formula", f"{exc.path or '/'}: {exc.message}"


# --- set_fields ----------------------------------------------------------------------------


def _set_fields(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    values = {name: ctx.value(spec) for name, spec in params["values"].items()}
    ctx.ws.records.update(ctx.entity.name, ctx.record["id"], values, **ctx.writer)
    return {"set": values}


def _set_fields_check(params: Mapping[str, Any], entity: Entity, catalog: Catalog
                      ) -> Iterable[tuple[str, str]]:
    for name in params["values"]:
        f = entity.fields.get(name)
        if f is None or f.type.computed:
            yield f"/values/{name}", f"{entity.name} has no field {name!r} to set"
    yield from formula_errors(params["values"], entity, "/values")


# --- create_record -------------------------------------------------------------------------


def _create_record(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    values = {name: ctx.value(spec) for name, spec in params.get("values", {}).items()}
    if params.get("link"):
        values[params["link"]] = ctx.record["id"]
    if not (ctx.as_user and ctx.user) and ctx.record.get("owner_id"):
        # Made by the system on the record's behalf: it belongs to the record's owner, as
        # a converted lead's account does, not to the rule.
        values["owner_id"] = ctx.record["owner_id"]
    created = ctx.ws.records.create(params["entity"], values, **ctx.writer)
    if params.get("into"):  # kept on the record, so the rule's next actions can use it
        ctx.record = ctx.ws.records.update(ctx.entity.name, ctx.record["id"],
                                           {params["into"]: created["id"]}, **ctx.writer)
    return {"created": params["entity"], "id": created["id"]}


def _create_record_check(params: Mapping[str, Any], entity: Entity, catalog: Catalog
                         ) -> Iterable[tuple[str, str]]:
    target = catalog.entities.get(params["entity"])
    if target is None:
        yield "/entity", f"no entity named {params['entity']!r}"
        return
    for name in params.get("values", {}):
        if name not in target.fields or target.fields[name].type.computed:
            yield f"/values/{name}", f"{target.name} has no field {name!r} to set"
    link = params.get("link")
    if link and (link not in target.fields or target.fields[link].ref != entity.name):
        yield "/link", f"{target.name}.{link} is no reference to {entity.name}"
    into = params.get("into")
    if into and (into not in entity.fields or entity.fields[into].ref != target.name):
        yield "/into", f"{entity.name}.{into} is no reference to {target.name}"


# --- assign_owner --------------------------------------------------------------------------


def _candidates(ctx: ActionContext, params: Mapping[str, Any]) -> list[str]:
    """The active users of the team or role, by id, in a stable order."""
    with ctx.ws.reading() as conn:
        query = sa.select(UserRow.id).where(UserRow.active.is_(True)).order_by(UserRow.id)
        if "team" in params:
            query = query.join(member_table, member_table.c.user_id == UserRow.id).where(
                member_table.c.team == params["team"])
        if "role" in params:  # with a team: the team's members who hold the role
            query = query.join(UserRole, UserRole.user_id == UserRow.id).where(
                UserRole.role == params["role"])
        return list(conn.scalars(query))


def _by_rule(ctx: ActionContext, params: Mapping[str, Any]) -> str | None:
    """The user of the first rule whose condition holds on the record, else ``otherwise``."""
    env = Env(user={"id": ctx.actor}, previous=ctx.previous)
    for entry in params["rules"]:
        if ctx.entity.rules.compile_python(parse_rule(entry["when"]))(ctx.record, env) is True:
            username = entry["user"]
            break
    else:
        username = params.get("otherwise")
    if username is None:
        return None
    with ctx.ws.reading() as conn:
        return ctx.ws.accounts.user_id(conn, username)


def _assign_owner(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    if params.get("strategy") == "rule":
        chosen = _by_rule(ctx, params)
        if chosen is not None:
            ctx.ws.records.update(ctx.entity.name, ctx.record["id"], {"owner_id": chosen},
                                  **ctx.writer)
        return {"owner_id": chosen, "strategy": "rule"}
    people = _candidates(ctx, params)
    if not people:
        raise ActionFailed("no active user in " + " with ".join(
            repr(params[k]) for k in ("team", "role") if k in params))
    strategy = params.get("strategy", "round_robin")
    table = ctx.entity.table
    with ctx.ws.transaction() as conn:
        if strategy == "least_open":
            open_filter = [table.c.state.in_([s.name for s in ctx.entity.workflow.states.values()
                                              if s.category == "open"])] \
                if ctx.entity.workflow is not None else []
            counts = dict(conn.execute(sa.select(table.c.owner_id, sa.func.count())
                                       .where(table.c.owner_id.in_(people), *open_filter)
                                       .group_by(table.c.owner_id)).all())
            chosen = min(people, key=lambda p: (counts.get(p, 0), people.index(p)))
        else:  # round robin: the rule keeps whose turn it is, shared by every process
            key = f"round_robin:{ctx.automation}"
            last = conn.scalar(sa.select(Setting.value).where(Setting.key == key))
            turn = (people.index(last) + 1) % len(people) if last in people else 0
            chosen = people[turn]
            if last is None:
                conn.execute(sa.insert(Setting).values(key=key, value=chosen))
            else:
                conn.execute(sa.update(Setting).where(Setting.key == key).values(value=chosen))
    ctx.ws.records.update(ctx.entity.name, ctx.record["id"], {"owner_id": chosen},
                          **ctx.writer)
    return {"owner_id": chosen, "strategy": strategy}


def _assign_owner_check(params: Mapping[str, Any], entity: Entity, catalog: Catalog
                        ) -> Iterable[tuple[str, str]]:
    for i, entry in enumerate(params.get("rules", [])):
        try:
            entity.rules.checker().check(parse_rule(entry["when"]), BOOLEAN)
        except RuleSyntaxError as exc:
            yield f"/rules/{i}/when", str(exc)
        except RuleError as exc:
            yield f"/rules/{i}/when", f"{exc.path or '/'}: {exc.message}"


# --- notify --------------------------------------------------------------------------------


def _recipient(ctx: ActionContext, who: Any) -> str | None:
    if who == "owner":
        return ctx.record.get("owner_id")
    if isinstance(who, Mapping) and "field" in who:
        return ctx.record.get(who["field"])
    if isinstance(who, Mapping) and "manager_of" in who:
        of = who["manager_of"]
        user_id = ctx.record.get("owner_id" if of == "owner" else of)
        if user_id is None:
            return None
        with ctx.ws.reading() as conn:
            return conn.scalar(sa.select(UserRow.manager_id).where(UserRow.id == user_id))
    if isinstance(who, str):
        with ctx.ws.reading() as conn:
            return ctx.ws.accounts.user_id(conn, who)
    return None


def _notify(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    user_id = _recipient(ctx, params.get("user", "owner"))
    if user_id is None:
        return {"notified": None}
    with ctx.ws.transaction() as conn:
        conn.execute(sa.insert(Notification).values(
            user_id=user_id, title=ctx.render(params["title"])[:500],
            body=ctx.render(params.get("body", "")), entity=ctx.entity.name,
            record_id=ctx.record["id"], read=False))
    return {"notified": user_id}


# --- send_email ----------------------------------------------------------------------------


def _send_email(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    """Keep the email in the outbox, and have it delivered by the first enabled plugin
    that delivers email (the ``email`` plugin sends it over SMTP)."""
    to = [ctx.render(address) for address in params["to"]]
    to = [address for address in to if address]
    subject, body = ctx.render(params["subject"]), ctx.render(params["body"])
    status = "kept"
    if to:
        message = EmailMessage()
        message["To"], message["Subject"] = ", ".join(to), subject
        message.set_content(body)
        delivered = ctx.ws.plugins.call("blocks_deliver_email", ws=ctx.ws, message=message)
        status = delivered[0] if delivered else "kept"
    with ctx.ws.transaction() as conn:
        conn.execute(sa.insert(OutboxMessage).values(to=to, subject=subject[:998], body=body,
                                                     status=status, entity=ctx.entity.name,
                                                     record_id=ctx.record["id"]))
    return {"email": status, "to": to}


def builtin_actions() -> list[Action]:
    text = {"type": "string", "minLength": 1}
    who = {"anyOf": [{"const": "owner"}, text,
                     {"type": "object", "required": ["field"], "additionalProperties": False,
                      "properties": {"field": text}},
                     {"type": "object", "required": ["manager_of"], "additionalProperties": False,
                      "properties": {"manager_of": text}}]}
    return [
        Action("set_fields", _object({"values": {"type": "object", "minProperties": 1,
                                                 "additionalProperties": VALUE}}, ["values"]),
               _set_fields, _set_fields_check, label={"en": "Set fields"}),
        Action("create_record", _object({"entity": text, "link": text, "into": text,
                                         "values": {"type": "object",
                                                    "additionalProperties": VALUE}},
                                        ["entity"]),
               _create_record, _create_record_check, label={"en": "Create a related record"}),
        Action("assign_owner", {
            **_object({"strategy": {"enum": ["round_robin", "least_open", "rule"]},
                       "team": text, "role": text, "otherwise": text,
                       "rules": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "required": ["when", "user"],
                           "additionalProperties": False,
                           "properties": {"when": {"type": ["string", "object", "boolean"]},
                                          "user": text}}}}, []),
            "if": {"required": ["strategy"], "properties": {"strategy": {"const": "rule"}}},
            "then": {"required": ["rules"]},
            "else": {"anyOf": [{"required": ["team"]}, {"required": ["role"]}]}},
            _assign_owner, _assign_owner_check, label={"en": "Assign an owner"}),
        Action("notify", _object({"user": who, "title": text, "body": {"type": "string"}},
                                 ["title"]), _notify, label={"en": "Notify a user"}),
        Action("send_email", _object({"to": {"type": "array", "minItems": 1, "items": text},
                                      "subject": text, "body": {"type": "string"}},
                                     ["to", "subject", "body"]),
               _send_email, label={"en": "Send an email"}),
    ]


def check_action(params: Mapping[str, Any], registry: Mapping[str, Action], entity: Entity,
                 catalog: Catalog) -> list[tuple[str, str]]:
    """Every problem of one action of a rule, keyed by JSON Pointer inside the action."""
    from jsonschema import Draft202012Validator

    action = registry.get(params.get("type", ""))
    if action is None:
        return [("/type", f"unknown action {params.get('type')!r}; use one of "
                          f"{', '.join(sorted(registry))}")]
    errors = [("".join(f"/{p}" for p in e.absolute_path), e.message)
              for e in Draft202012Validator(action.schema).iter_errors(params)]
    if not errors and action.check is not None:
        errors += list(action.check(params, entity, catalog))
    return errors


