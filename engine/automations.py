"""Automations: trigger → condition → actions, in the saving transaction or as jobs.

The record service tells :meth:`AutomationService.fire` of every write, inside its
transaction. Each enabled rule of the entity whose trigger matches and whose condition
holds runs: a ``sync`` rule's actions at once, in that transaction (a failure rolls the
whole save back, naming the rule and the action); an ``async`` rule is queued as a run
whose job is handed to the job queue only after the save commits. Time-based triggers
wait as timers in the database and are fired by :meth:`tick`.

Every run is logged (``blocks_runs``): the rule, the trigger, why it fired, each action
with its result and duration, the error. Rules that trigger each other are cut at
:data:`MAX_DEPTH`, and a rule never re-enters itself on the same record; a cut is a run
of its own, so it shows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from croniter import croniter
from jsonschema import Draft202012Validator

from .actions import Action, ActionContext, check_action
from .definitions import check_envelope, pointer
from .errors import ActionFailed, BlocksError, DefinitionError, NotFound, QueryError
from .rules import Evaluator, RuleError, RuleSyntaxError, parse_rule
from .rules.python import Env
from .rules.types import BOOLEAN, DATE, DATETIME, rule_type_of
from .store import run_table, timer_table, utcnow

if TYPE_CHECKING:
    from .accounts import User
    from .entities import Entity
    from .workspace import Catalog, Workspace

#: How many rules may trigger one another before the chain is cut.
MAX_DEPTH = 5
#: Attempts of a job before its run is kept as failed, and the waits between them (s).
MAX_ATTEMPTS = 4
BACKOFF = (2, 8, 30)
#: A run left ``running`` this long (its worker died) is handed to a worker again.
LEASE = dt.timedelta(minutes=5)
#: The two statements every job runs besides its work, built once.
_CLAIM = (sa.update(run_table)
          .where(run_table.c.id == sa.bindparam("run"), run_table.c.status == "queued")
          .values(status="running", started_at=sa.bindparam("now"),
                  attempts=run_table.c.attempts + 1)
          .returning(*run_table.c))
_FINISH = (sa.update(run_table).where(run_table.c.id == sa.bindparam("run"))
           .values(status=sa.bindparam("status"), steps=sa.bindparam("steps"), error=None,
                   finished_at=sa.bindparam("now"), duration_ms=sa.bindparam("ms")))
_CHAIN: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("blocks_automation_chain",
                                                             default=())


#: How the timers of the plugins' schedules are named (``plugin:<plugin>:<schedule>``).
PLUGIN_TIMER = "plugin:"
#: The triggers the engine fires itself; plugins add others (``blocks_triggers``).
BUILTIN_TRIGGERS = ("created", "updated", "deleted", "transition", "approval", "schedule",
                    "relative")


@dataclass(frozen=True)
class TriggerType:
    """A trigger a plugin adds: rules name it in ``trigger.on``; ``schema`` checks the
    trigger's other keys; ``matches(options, payload)``, when given, says whether one
    firing concerns a rule with those options (by default every firing does)."""

    name: str
    schema: Mapping[str, Any]
    label: Mapping[str, str] = field(default_factory=dict)
    matches: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Trigger:
    on: str
    fields: frozenset[str] | None = None
    transition: str | None = None
    cron: str | None = None
    field: str | None = None
    offset: dt.timedelta = dt.timedelta()
    approval: str | None = None
    decision: str | None = None
    #: A plugin trigger's own keys, and its type.
    # (dataclasses.field by its full name: ``field`` is a trigger's own attribute here)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False,
                                                   hash=False)
    plugin_type: TriggerType | None = dataclasses.field(default=None, compare=False,
                                                        hash=False)

    def matches(self, event: Event) -> bool:
        if self.on != event.kind:
            return False
        if self.plugin_type is not None:
            check = self.plugin_type.matches
            return check is None or bool(check(self.options, event.payload))
        if self.on == "updated" and self.fields is not None:
            return bool(self.fields & event.changed)
        if self.on == "transition" and self.transition is not None:
            return self.transition == event.transition
        if self.on == "approval":
            return self.approval in (None, event.approval) and \
                self.decision in (None, event.decision)
        return True


@dataclass(frozen=True)
class Automation:
    name: str
    entity: str
    trigger: Trigger
    condition: Evaluator | None
    condition_text: str | None
    condition_tree: Any
    actions: tuple[Mapping[str, Any], ...]
    mode: str = "async"
    enabled: bool = True
    run_as: str = "system"

    @property
    def why(self) -> str:
        """Why a run fired, as its log says it."""
        trigger = self.trigger.on + (f" {sorted(self.trigger.fields)}" if self.trigger.fields
                                     else "") + (f" {self.trigger.transition}"
                                                 if self.trigger.transition else "")
        return f"on {trigger}" + (f", when {self.condition_text}" if self.condition_text
                                  else "")


@dataclass(frozen=True)
class Event:
    """One write to one record, as triggers see it."""

    kind: str  # created, updated, deleted, transition, approval
    entity: Entity
    record: dict[str, Any]
    previous: dict[str, Any] | None = None
    user: User | None = None
    transition: str | None = None
    changed: frozenset[str] = field(default_factory=frozenset)
    approval: str | None = None
    decision: str | None = None
    #: What a plugin's trigger carries (an incoming webhook's body).
    payload: Mapping[str, Any] = field(default_factory=dict)


def compile_automation(document: Mapping[str, Any], entity: Entity, catalog: Catalog,
                       registry: Mapping[str, Action],
                       triggers: Mapping[str, TriggerType] | None = None
                       ) -> tuple[Automation | None, list[tuple[str, str]]]:
    """The rule of a (meta-schema valid) definition, and its problems by JSON Pointer;
    ``triggers`` are the plugins' (a rule on one that is not there is refused)."""
    errors: list[tuple[str, str]] = []
    spec = document["trigger"]
    offset = dt.timedelta(**spec.get("offset", {}))
    options = {k: v for k, v in spec.items() if k != "on"}
    plugin_type = None
    if spec["on"] not in BUILTIN_TRIGGERS:
        plugin_type = (triggers or {}).get(spec["on"])
        if plugin_type is None:
            known = ", ".join([*BUILTIN_TRIGGERS, *sorted(triggers or {})])
            errors.append(("/trigger/on", f"no trigger named {spec['on']!r} (an enabled "
                                          f"plugin may add it); use one of {known}"))
        else:
            errors += [(pointer("trigger", *e.absolute_path), e.message) for e in
                       Draft202012Validator(plugin_type.schema).iter_errors(options)]
    trigger = Trigger(spec["on"], frozenset(spec["fields"]) if "fields" in spec else None,
                      spec.get("transition"), spec.get("cron"), spec.get("field"), offset,
                      spec.get("approval"), spec.get("decision"), options, plugin_type)
    for i, name in enumerate(sorted(trigger.fields or ())):
        if name not in entity.fields and name != "state":
            errors.append((f"/trigger/fields/{i}", f"{entity.name} has no field {name!r}"))
    if trigger.on == "transition":
        workflow = entity.workflow
        if workflow is None:
            errors.append(("/trigger/on", f"{entity.name} follows no workflow"))
        elif trigger.transition and trigger.transition not in workflow.transitions:
            errors.append(("/trigger/transition", f"no transition {trigger.transition!r}"))
    if trigger.on == "relative":
        f = entity.fields.get(trigger.field or "")
        kind = rule_type_of(f.type) if f else None
        if kind not in (DATE, DATETIME) and trigger.field not in ("created_at", "updated_at"):
            errors.append(("/trigger/field", f"{trigger.field!r} is no date field of "
                                             f"{entity.name}"))
    if trigger.on == "schedule" and not croniter.is_valid(trigger.cron or ""):
        errors.append(("/trigger/cron", f"{trigger.cron!r} is not a cron expression"))
    condition, text, tree = None, None, None
    if "condition" in document:
        try:
            tree = parse_rule(document["condition"])
            entity.rules.checker(saving=trigger.on in ("updated", "transition")).check(
                tree, BOOLEAN)
            condition = entity.rules.compile_python(tree)
            text = document["condition"] if isinstance(document["condition"], str) else None
        except RuleSyntaxError as exc:
            errors.append(("/condition", str(exc)))
        except RuleError as exc:
            errors.append(("/condition", f"{exc.path or '/'}: {exc.message}"))
    for i, params in enumerate(document["actions"]):
        errors += [(f"/actions/{i}{where}", message)
                   for where, message in check_action(params, registry, entity, catalog)]
    if errors:
        return None, errors
    return Automation(document["name"], entity.name, trigger, condition, text, tree,
                      tuple(document["actions"]), document.get("mode", "async"),
                      document.get("enabled", True), document.get("run_as", "system")), []


def running_rule() -> str | None:
    """The rule whose actions are running in this context, if any."""
    chain = _CHAIN.get()
    return chain[-1][0] if chain else None


def transition_rules(document: Mapping[str, Any], entity: Entity, catalog: Catalog,
                     registry: Mapping[str, Action]
                     ) -> tuple[list[Automation], list[tuple[str, str]]]:
    """A workflow's transition actions as rules run with the transition (sync, so a
    failing action refuses the move), named ``<workflow>.<transition>``."""
    rules, errors = [], []
    for i, step in enumerate(document["transitions"]):
        actions = step.get("actions", [])
        for j, params in enumerate(actions):
            errors += [(f"/transitions/{i}/actions/{j}{where}", message)
                       for where, message in check_action(params, registry, entity, catalog)]
        if actions:
            rules.append(Automation(f"{document['name']}.{step['name']}", entity.name,
                                    Trigger("transition", transition=step["name"]), None, None,
                                    None, tuple(actions), "sync"))
    return ([] if errors else rules), errors


class AutomationService:
    """Fires, runs, explains and dry-runs the rules of one workspace (``ws.automations``)."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    # --- firing ---------------------------------------------------------------------------

    def fire(self, conn: sa.Connection, event: Event) -> bool:
        """Run or queue every rule ``event`` triggers (called inside the write); whether
        a rule ran its actions with it."""
        ran = False
        record_id = event.record.get("id")
        chain = _CHAIN.get()
        for rule in event.entity.automations:
            if not rule.enabled or not rule.trigger.matches(event):
                continue
            if not self._holds(conn, rule, event):
                continue
            link = (rule.name, record_id or "")
            if link in chain or len(chain) >= MAX_DEPTH:
                reason = ("it would re-enter itself on this record" if link in chain
                          else f"the chain of rules reached {MAX_DEPTH}")
                self._log(conn, rule, event, "cut", chain, error=f"cut: {reason}")
                continue
            if rule.mode == "sync":
                self._run_now(conn, rule, event, chain)
                ran = True
            else:
                run_id = self._log(conn, rule, event, "queued", chain)
                self.ws.after_commit(lambda r=run_id: self._hand_over(r))
        return ran

    def trigger(self, name: str, entity: str, record_id: str,
                payload: Mapping[str, Any] | None = None) -> bool:
        """Fire a plugin's trigger ``name`` on one record: the rules of ``entity`` that
        listen to it run as for a write's event (sync ones now, async ones queued), with
        ``payload`` for their trigger to match on; whether one ran now.

        :raises NotFound: no such entity or record.
        """
        with self.ws.transaction() as conn:
            ent = self.ws.catalog(conn).entity(entity)
            row = self.ws.records._load(conn, ent, record_id)
            record = self.ws.records._computed(conn, ent, row)
            return self.fire(conn, Event(name, ent, record, payload=dict(payload or {})))

    def run_actions(self, name: str, entity: Entity, record: dict[str, Any],
                    actions: tuple[Mapping[str, Any], ...], user: User | None) -> None:
        """Run actions now, in the open transaction, as a rule named ``name`` would (an
        approval's submit and decision actions); logged like any run."""
        rule = Automation(name, entity.name, Trigger("approval"), None, None, None, actions,
                          "sync")
        event = Event("approval", entity, record, None, user)
        with self.ws.transaction() as conn:
            self._run_now(conn, rule, event, _CHAIN.get())

    def _hand_over(self, run_id: int) -> None:
        """Give a committed run to the job queue. The save has committed: a queue that
        cannot take it now (Redis down) must not fail it; the run waits, queued, for the
        next tick."""
        try:
            self.ws.jobs.enqueue(run_id)
        except Exception:  # logged; tick() hands it out again
            logging.getLogger("blockscrm.jobs").exception("run %s waits for the next tick",
                                                          run_id)

    def _holds(self, conn: sa.Connection, rule: Automation, event: Event) -> bool:
        if rule.condition is None:
            return True
        env = Env(user=event.user.rule_values() if event.user else {}, previous=event.previous,
                  related=self.ws.records._related_loader(conn))
        return rule.condition(event.record, env) is True

    def _run_now(self, conn: sa.Connection, rule: Automation, event: Event,
                 chain: tuple[tuple[str, str], ...]) -> None:
        started = time.perf_counter()
        steps = self._act(rule, event, chain, None)
        self._log(conn, rule, event, "done", chain, steps=steps,
                  duration=time.perf_counter() - started)

    def _act(self, rule: Automation, event: Event, chain: tuple[tuple[str, str], ...],
             run_id: int | None) -> list[dict[str, Any]]:
        """Each action in turn, under the chain that led here; a failure names the rule
        and the action and stops the rest."""
        ctx = ActionContext(self.ws, event.entity, event.record, event.previous, event.user,
                            rule.name, run_id, trigger=event.kind, transition=event.transition,
                            as_user=rule.run_as == "user", payload=event.payload)
        token = _CHAIN.set((*chain, (rule.name, event.record.get("id") or "")))
        steps: list[dict[str, Any]] = []
        try:
            for i, params in enumerate(rule.actions):
                started = time.perf_counter()
                action = self.ws.actions[params["type"]]
                try:
                    result = action.run(ctx, params)
                except BlocksError as exc:
                    raise ActionFailed(f"rule {rule.name!r}, action {i + 1} ({action.name}): "
                                       f"{exc.message}") from exc
                except Exception as exc:  # a plugin action's own bug: the save rolls back
                    plugin = self.ws.plugins.owner("action", action.name)
                    logging.getLogger(__name__).exception("action %s failed", action.name)
                    raise ActionFailed(f"rule {rule.name!r}, action {i + 1} ({action.name}, "
                                       f"of the plugin {plugin!r}): {type(exc).__name__}: "
                                       f"{exc}") from exc
                steps.append({"action": action.name, "result": result,
                              "ms": round((time.perf_counter() - started) * 1000, 3)})
        finally:
            _CHAIN.reset(token)
        return steps

    def _log(self, conn: sa.Connection, rule: Automation, event: Event, status: str,
             chain: tuple[tuple[str, str], ...], *, steps: list[dict[str, Any]] | None = None,
             error: str | None = None, duration: float | None = None) -> int:
        now = utcnow()
        values = {"automation": rule.name, "entity": event.entity.name,
                  "record_id": event.record.get("id"), "trigger": event.kind,
                  "mode": rule.mode, "status": status, "why": rule.why,
                  "event": {"changed": sorted(event.changed), "transition": event.transition,
                            "previous": event.previous, "kind": event.kind,
                            "payload": dict(event.payload)},
                  "chain": [list(c) for c in chain], "actor": event.user.id if event.user
                  else None, "attempts": 0, "steps": steps, "error": error, "created_at": now}
        if status in ("done", "cut"):
            values.update(started_at=now, finished_at=now,
                          duration_ms=None if duration is None else duration * 1000)
        return int(conn.execute(sa.insert(run_table).values(**values)
                                .returning(run_table.c.id)).scalar_one())

    # --- jobs -----------------------------------------------------------------------------

    def execute(self, run_id: int) -> str:
        """Run a queued run's actions (a job's work): claim it, act in one transaction with
        marking it done, and answer its status. A run already claimed or finished is left
        alone, so a job delivered twice acts once.

        :raises BlocksError: when an action fails (the job queue retries it).
        """
        with self.ws.transaction() as conn:
            if conn.dialect.name == "postgresql":
                # A claim lost to a server crash leaves the run queued for its job's retry;
                # not waiting for the disk halves what a job costs beside its work.
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            run = conn.execute(_CLAIM, {"run": run_id, "now": utcnow()}).mappings().first()
        if run is None:
            return "claimed"
        started = time.perf_counter()
        try:
            with self.ws.transaction() as conn:
                status, steps = self._execute(conn, run)
                conn.execute(_FINISH, {"run": run_id, "status": status, "steps": steps,
                                       "now": utcnow(),
                                       "ms": (time.perf_counter() - started) * 1000})
            return status
        except Exception as exc:
            self._failed(run_id, exc)
            raise

    def _execute(self, conn: sa.Connection, run: Mapping[str, Any]
                 ) -> tuple[str, list[dict[str, Any]]]:
        catalog = self.ws.catalog(conn)
        entity = catalog.entities.get(run["entity"])
        rule = next((a for a in (entity.automations if entity else ())
                     if a.name == run["automation"]), None)
        if entity is None or rule is None or not rule.enabled:
            return "skipped", [{"why": "the rule is no longer published or enabled"}]
        event_data = run["event"] or {}
        record = None
        if run["record_id"]:
            try:
                record = self.ws.records.get(entity.name, run["record_id"])
            except NotFound:
                if run["trigger"] != "deleted":
                    return "skipped", [{"why": "the record is gone"}]
        record = record or {"id": run["record_id"], **(event_data.get("previous") or {})}
        user = None
        if run["actor"]:
            try:
                user = self.ws.accounts.user(run["actor"])
            except NotFound:
                user = None
        event = Event(event_data.get("kind", run["trigger"]), entity, record,
                      event_data.get("previous"), user, event_data.get("transition"),
                      frozenset(event_data.get("changed", ())),
                      payload=event_data.get("payload") or {})
        if run["trigger"] in ("relative", "schedule") and not self._holds(conn, rule, event):
            return "skipped", [{"why": "its condition no longer holds"}]
        chain = tuple(tuple(c) for c in run["chain"] or ())
        return "done", self._act(rule, event, chain, run["id"])  # type: ignore[arg-type]

    def _failed(self, run_id: int, exc: Exception) -> None:
        """Record a failed attempt: queued again for the job queue's retry, or failed for
        good after :data:`MAX_ATTEMPTS`."""
        message = exc.message if isinstance(exc, BlocksError) else f"{type(exc).__name__}: {exc}"
        with self.ws.transaction() as conn:
            attempts = conn.scalar(sa.select(run_table.c.attempts)
                                   .where(run_table.c.id == run_id)) or 0
            conn.execute(sa.update(run_table).where(run_table.c.id == run_id).values(
                status="failed" if attempts >= MAX_ATTEMPTS else "queued", error=message,
                finished_at=utcnow()))

    def rerun(self, run_id: int) -> None:
        """Queue a failed run again (from the CLI or the API), with fresh attempts."""
        with self.ws.transaction() as conn:
            done = conn.execute(sa.update(run_table).where(
                run_table.c.id == run_id, run_table.c.status == "failed").values(
                status="queued", attempts=0, error=None))
            if done.rowcount != 1:
                raise NotFound(f"no failed run {run_id}")
        self.ws.jobs.enqueue(run_id)

    # --- timers ---------------------------------------------------------------------------

    def schedule(self, conn: sa.Connection, event: Event) -> None:
        """Set (or move, or drop) the record's relative timers after a write."""
        for rule in event.entity.automations:
            if rule.trigger.on != "relative" or not rule.enabled:
                continue
            moved = rule.trigger.field in event.changed or rule.trigger.field == "updated_at"
            if event.kind in ("updated", "transition") and not moved:
                continue  # its date did not move: the timer stands (or has fired)
            record_id = event.record["id"]
            conn.execute(sa.delete(timer_table).where(timer_table.c.automation == rule.name,
                                                      timer_table.c.record_id == record_id))
            base = event.record.get(rule.trigger.field or "")
            if event.kind == "deleted" or base is None:
                continue
            due = _moment(base) + rule.trigger.offset
            conn.execute(sa.insert(timer_table).values(automation=rule.name,
                                                       record_id=record_id, due_at=due,
                                                       fired=False))

    def tick(self, now: dt.datetime | None = None) -> int:
        """Fire every timer that is due, give stale runs to a worker again, escalate
        approval steps past their timeout, run the plugins' schedules that are due, and
        answer how many runs it queued. Any process
        may call it any time: a timer fires once, a step escalates once."""
        now = now or utcnow()
        queued: list[int] = []
        with self.ws.transaction() as conn:
            catalog = self.ws.catalog(conn)
            self._plant_schedules(conn, catalog, now)
            due = conn.execute(sa.select(timer_table).where(
                timer_table.c.fired.is_(False), timer_table.c.due_at <= now,
                ~timer_table.c.automation.startswith(PLUGIN_TIMER))  # run_schedules' own
                .order_by(timer_table.c.due_at).limit(1000)).mappings().all()
            rules = {a.name: (e, a) for e in catalog.entities.values() for a in e.automations}
            for timer in due:
                taken = conn.execute(sa.update(timer_table).where(
                    timer_table.c.id == timer["id"], timer_table.c.fired.is_(False))
                    .values(fired=True))
                if taken.rowcount != 1:
                    continue
                if timer["automation"] not in rules:  # its rule is gone: so is the timer
                    conn.execute(sa.delete(timer_table).where(timer_table.c.id == timer["id"]))
                    continue
                entity, rule = rules[timer["automation"]]
                record = {"id": timer["record_id"] or None}
                event = Event(rule.trigger.on, entity, record)
                queued.append(self._log(conn, rule, event, "queued", ()))
                if rule.trigger.on == "schedule":
                    upcoming = croniter(rule.trigger.cron, now).get_next(dt.datetime)
                    conn.execute(sa.update(timer_table).where(timer_table.c.id == timer["id"])
                                 .values(due_at=upcoming, fired=False))
            stale = conn.execute(sa.update(run_table).where(
                run_table.c.status == "running", run_table.c.started_at < now - LEASE)
                .values(status="queued").returning(run_table.c.id)).scalars().all()
            queued += stale
            queued += [r["id"] for r in conn.execute(sa.select(
                run_table.c.id, run_table.c.attempts, run_table.c.finished_at).where(
                run_table.c.status == "queued", run_table.c.error.isnot(None))).mappings()
                if r["finished_at"] is None or r["finished_at"] + _backoff(r["attempts"]) <= now]
            # Runs no queue took (it was down when their save committed), or lost with it.
            queued += [r for r in conn.scalars(sa.select(run_table.c.id).where(
                run_table.c.status == "queued", run_table.c.error.is_(None),
                run_table.c.created_at < now - LEASE)) if r not in queued]
        for run_id in queued:
            self._hand_over(run_id)
        self.ws.approvals.escalate(now)  # approval steps past their timeout, once each
        self.ws.plugins.run_schedules(now)  # the enabled plugins' work that is due
        return len(queued)

    def _plant_schedules(self, conn: sa.Connection, catalog: Catalog, now: dt.datetime
                         ) -> None:
        """Give every scheduled rule its next firing, once."""
        planted = set(conn.scalars(sa.select(timer_table.c.automation).where(
            timer_table.c.record_id == "", timer_table.c.fired.is_(False))))
        for entity in catalog.entities.values():
            for rule in entity.automations:
                if rule.trigger.on == "schedule" and rule.name not in planted:
                    conn.execute(sa.delete(timer_table).where(  # a spent one of its name
                        timer_table.c.automation == rule.name, timer_table.c.record_id == ""))
                    due = croniter(rule.trigger.cron, now).get_next(dt.datetime)
                    conn.execute(sa.insert(timer_table).values(automation=rule.name,
                                                               record_id="", due_at=due,
                                                               fired=False))

    # --- explaining -----------------------------------------------------------------------

    def runs(self, entity: str, record_id: str | None = None, *, status: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        """The runs of a record (or of every record), newest first: which rules fired on
        it, why, and what each action did."""
        query = sa.select(run_table).where(run_table.c.entity == entity)
        if record_id is not None:
            query = query.where(run_table.c.record_id == record_id)
        if status is not None:
            query = query.where(run_table.c.status == status)
        with self.ws.reading() as conn:
            rows = conn.execute(query.order_by(run_table.c.id.desc()).limit(limit)).mappings()
            return [_run(r) for r in rows]

    def run(self, run_id: int) -> dict[str, Any]:
        with self.ws.reading() as conn:
            row = conn.execute(sa.select(run_table).where(run_table.c.id == run_id)
                               ).mappings().first()
        if row is None:
            raise NotFound(f"no run {run_id}")
        return _run(row)

    def dry_run(self, rule: str | Mapping[str, Any], *, limit: int = 100) -> dict[str, Any]:
        """The records a rule's condition selects now and the actions it would take on
        each, writing nothing. ``rule`` names a published automation, or is a definition
        not published yet (the designer's draft), read against the published entities.

        :raises DefinitionError: a definition that does not compile, by JSON Pointer.
        """
        catalog = self.ws.catalog()
        if isinstance(rule, str):
            found = next(((e, a) for e in catalog.entities.values() for a in e.automations
                          if a.name == rule), None)
            if found is None:
                raise NotFound(f"no published automation named {rule!r}")
            entity, rule = found
            draft = False
        else:
            entity, rule = _draft_rule(rule, catalog, self.ws.actions, self.ws.triggers)
            draft = True
        query = self.ws.query(entity.name).limit(limit)
        if rule.condition_tree is not None:
            try:
                query = query.filter(rule.condition_tree)
            except QueryError as exc:  # changed()/previous() read a write, not a table
                why = (f"it reads the write that fires it, so no table holds what it "
                       f"selects: {exc}")
                # a definition's problem by pointer into it; a published rule's, by name
                raise (DefinitionError({"/condition": [why]}) if draft
                       else QueryError({"condition": [why]})) from None
        matches = query.count(exact=True).value
        items = []
        for record in query.page().items:
            ctx = ActionContext(self.ws, entity, record, None, None, rule.name, dry_run=True,
                                trigger=rule.trigger.on)
            items.append({"record": record, "actions": [_would(ctx, a) for a in rule.actions]})
        return {"automation": rule.name, "why": rule.why, "matches": matches, "items": items}


def _draft_rule(document: Any, catalog: Catalog, registry: Mapping[str, Action],
                triggers: Mapping[str, TriggerType]) -> tuple[Entity, Automation]:
    """An automation definition compiled against the published catalog, for a dry run.

    :raises DefinitionError: by JSON Pointer, as saving it would report.
    """
    check_envelope(document)
    if document["kind"] != "automation":
        raise DefinitionError({"/kind": ["a dry run takes an automation"]})
    entity = catalog.entities.get(document["entity"])
    if entity is None:
        raise DefinitionError({"/entity": [f"no published entity named {document['entity']!r}"
                                           ": publish it first, then try its rules on its "
                                           "records"]})
    rule, problems = compile_automation(document, entity, catalog, registry, triggers)
    if rule is None:
        raise DefinitionError(problems)
    return entity, rule


#: The keys of the built-in actions whose text is a template, rendered on the record.
TEMPLATED = ("title", "subject", "body", "to")


def _would(ctx: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """What one action would do on the record, with its formulas computed and its
    templates rendered (what would be sent, not how it is written)."""
    shown = {k: v for k, v in params.items() if k != "values"}
    if "values" in params:
        shown["values"] = {n: ctx.value(v) for n, v in params["values"].items()}
    for key in TEMPLATED:
        value = shown.get(key)
        try:
            if isinstance(value, str):
                shown[key] = ctx.render(value)
            elif isinstance(value, list):
                shown[key] = [ctx.render(v) if isinstance(v, str) else v for v in value]
        except ActionFailed:
            pass  # a template that does not render shows as written; publishing says why
    return shown


def _run(row: Mapping[str, Any]) -> dict[str, Any]:
    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat() + "Z"

    return {"id": row["id"], "automation": row["automation"], "entity": row["entity"],
            "record_id": row["record_id"], "trigger": row["trigger"], "mode": row["mode"],
            "status": row["status"], "why": row["why"], "attempts": row["attempts"],
            "steps": row["steps"] or [], "error": row["error"],
            "created_at": when(row["created_at"]), "started_at": when(row["started_at"]),
            "finished_at": when(row["finished_at"]), "duration_ms": row["duration_ms"]}


def _backoff(attempts: int) -> dt.timedelta:
    """How long a run that failed ``attempts`` times waits before the next try."""
    return dt.timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])


def _moment(value: Any) -> dt.datetime:
    """A date or datetime value (as a record holds it) as a naive UTC datetime."""
    text = str(value)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(k for k in set(before) | set(after) if before.get(k) != after.get(k))


