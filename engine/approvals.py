"""Approval processes: a record submitted, decided step by step, locked until then.

An approval definition names its entity, the entry condition a record must meet to be
submitted, and ordered steps. Each step has approvers (users, a role, a team, a user
field of the record, the owner's manager), a mode (any one, all, or at least N), an
optional condition (the step is skipped when it does not hold), a timeout after which
it escalates, and actions. While a request is pending the record is locked: updates,
transitions and deletes are refused (:class:`~blockscrm.engine.errors.Locked`) but for
the fields the definition leaves ``editable``.

Who may decide a step is fixed when the step starts (``blocks_approval_assignees``);
each decision is one row keyed by request, step and approver, and the request row is
locked while a decision is counted, so concurrent approvals count once each and a step
finishes exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .access import grant_for
from .actions import Action, check_action
from .automations import running_rule
from .errors import Conflict, Locked, NotFound, PermissionDenied, ValidationError
from .rules import Evaluator, RuleError, RuleSyntaxError, parse_rule
from .rules.python import Env
from .rules.types import BOOLEAN
from .store import (
    ApprovalAssignee,
    ApprovalRequest,
    ApprovalVote,
    Delegation,
    Notification,
    UserRole,
    UserRow,
    audit_table,
    member_table,
    utcnow,
)

if TYPE_CHECKING:
    from .accounts import User
    from .entities import Entity
    from .workspace import Catalog, Workspace

requests = ApprovalRequest.__table__
assignees = ApprovalAssignee.__table__
votes = ApprovalVote.__table__
FINAL = ("approved", "rejected", "recalled")
#: The request whose own actions are running: they may write the record it locks.
_ACTING: ContextVar[int | None] = ContextVar("blocks_approval_acting", default=None)


@dataclass(frozen=True)
class Step:
    name: str
    label: Mapping[str, str]
    approvers: tuple[Mapping[str, Any], ...]
    mode: str | int = "any"
    condition: Evaluator | None = None
    allow_self: bool = False
    timeout: dt.timedelta | None = None
    escalate_to: Mapping[str, Any] | None = None
    actions: tuple[Mapping[str, Any], ...] = ()

    def needed(self, assigned: int) -> int:
        """How many approvals finish the step."""
        if self.mode == "all":
            return max(assigned, 1)
        if isinstance(self.mode, int):
            return min(self.mode, max(assigned, 1))
        return 1


@dataclass(frozen=True)
class Approval:
    name: str
    entity: str
    label: Mapping[str, str]
    steps: tuple[Step, ...]
    entry: Evaluator | None = None
    entry_text: str | None = None
    on: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    transition: str | None = None
    editable: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()


def compile_approval(document: Mapping[str, Any], entity: Entity, catalog: Catalog,
                     registry: Mapping[str, Action]
                     ) -> tuple[Approval | None, list[tuple[str, str]]]:
    """The process of a (meta-schema valid) definition, and its problems by JSON Pointer."""
    errors: list[tuple[str, str]] = []

    def condition(source: Any, at: str) -> Evaluator | None:
        try:
            tree = parse_rule(source)
            entity.rules.checker().check(tree, BOOLEAN)
            return entity.rules.compile_python(tree)
        except RuleSyntaxError as exc:
            errors.append((at, str(exc)))
        except RuleError as exc:
            errors.append((at, f"{exc.path or '/'}: {exc.message}"))
        return None

    def actions(items: Iterable[Mapping[str, Any]], at: str) -> tuple[Mapping[str, Any], ...]:
        items = tuple(items)
        for j, params in enumerate(items):
            errors.extend((f"{at}/{j}{where}", message)
                          for where, message in check_action(params, registry, entity, catalog))
        return items

    roles = {name for kind, name in catalog.documents if kind == "role"} | {"admin"}
    steps = []
    for i, spec in enumerate(document["steps"]):
        at = f"/steps/{i}"
        for j, who in enumerate([*spec["approvers"], *([spec["escalate_to"]]
                                                        if "escalate_to" in spec else [])]):
            where = f"{at}/approvers/{j}" if j < len(spec["approvers"]) else f"{at}/escalate_to"
            if "role" in who and who["role"] not in roles:
                errors.append((f"{where}/role", f"no role {who['role']!r}"))
            if "field" in who:
                f = entity.fields.get(who["field"])
                if f is None or f.type.name != "user":
                    errors.append((f"{where}/field", f"{who['field']!r} is no user field of "
                                                     f"{entity.name}"))
        mode = spec.get("mode", "any")
        steps.append(Step(
            spec["name"], spec.get("label", {"en": spec["name"]}), tuple(spec["approvers"]),
            mode["at_least"] if isinstance(mode, Mapping) else mode,
            condition(spec["condition"], f"{at}/condition") if "condition" in spec else None,
            spec.get("allow_self", False),
            dt.timedelta(**spec["timeout"]) if "timeout" in spec else None,
            spec.get("escalate_to"), actions(spec.get("actions", []), f"{at}/actions")))
    names = [s.name for s in steps]
    errors += [(f"/steps/{i}/name", f"two steps are named {n!r}")
               for i, n in enumerate(names) if n in names[:i]]
    entry = condition(document["entry"], "/entry") if "entry" in document else None
    on = {k: actions(v, f"/on/{k}") for k, v in document.get("on", {}).items()}
    transition = document.get("transition")
    if transition and (entity.workflow is None or transition not in entity.workflow.transitions):
        errors.append(("/transition", f"{entity.name} has no workflow transition "
                                      f"{transition!r}"))
    editable = frozenset(document.get("editable", ()))
    errors += [("/editable", f"{entity.name} has no field {n!r}") for n in sorted(editable)
               if n not in entity.fields]
    rules = frozenset(document.get("rules", ()))
    known = {n for kind, n in catalog.documents if kind == "automation"}
    errors += [(f"/rules/{i}", f"no automation named {n!r}")
               for i, n in enumerate(document.get("rules", [])) if n not in known]
    if errors:
        return None, errors
    text = document["entry"] if isinstance(document.get("entry"), str) else None
    return Approval(document["name"], entity.name, document["label"], tuple(steps), entry,
                    text, on, transition, editable, rules), []


class ApprovalService:
    """Submit, decide, recall, list and escalate approvals (``ws.approvals``)."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    # --- the lock the record service asks about --------------------------------------------

    def check_unlocked(self, conn: sa.Connection, ent: Entity, record_id: str,
                       changed: Iterable[str] | None = None) -> None:
        """:raises Locked: when an approval of the record is pending and the write changes
        more than its definition leaves editable (``changed`` None: any write)."""
        if not ent.approvals:
            return
        pending = conn.execute(sa.select(requests.c.id, requests.c.approval).where(
            requests.c.entity == ent.name, requests.c.record_id == record_id,
            requests.c.status == "pending")).first()
        if pending is None:
            return
        if pending.id == _ACTING.get() and (running_rule() or "").startswith(
                f"{pending.approval}."):
            return  # the approval's own actions (not rules they trigger) may write it
        definition = next((a for a in ent.approvals if a.name == pending.approval), None)
        if definition is not None and running_rule() in definition.rules:
            return  # a rule the definition lets write while it waits
        editable = definition.editable if definition else frozenset()
        if changed is not None and set(changed) <= editable:
            return
        raise Locked(f"this {ent.name} waits on approval {pending.approval!r} "
                     f"(request {pending.id}); it cannot change until it is decided or "
                     "recalled")

    # --- lifecycle ------------------------------------------------------------------------

    def submit(self, entity: str, record_id: str, *, approval: str | None = None,
               user: User | None = None, comment: str | None = None) -> dict[str, Any]:
        """Submit a record: to ``approval``, else to the first process whose entry holds.

        :raises ValidationError: no process's entry condition holds for the record;
        :raises Conflict: an approval of it is pending already.
        """
        with self.ws.transaction() as conn:
            catalog = self.ws.catalog(conn)
            ent = catalog.entity(entity)
            grant = grant_for(user, ent, catalog)
            grant.require("update")  # submitting locks it: it takes the right to change it
            row = self.ws.records._load(conn, ent, record_id, for_update=True)
            self.ws.access.check_row(conn, user, grant, "update", ent, row)
            record = self.ws.records.get(entity, record_id, user=user)
            choices = [a for a in ent.approvals if approval in (None, a.name)]
            if approval is not None and not choices:
                raise NotFound(f"{entity} has no approval process {approval!r}")
            env = Env(user=user.rule_values() if user else {})
            chosen = next((a for a in choices
                           if a.entry is None or a.entry(record, env) is True), None)
            if chosen is None:
                why = (f"its entry condition ({choices[0].entry_text}) does not hold"
                       if len(choices) == 1 and choices[0].entry_text else
                       "no approval process's entry condition holds")
                raise ValidationError([("", f"this {entity} cannot be submitted: {why}")])
            if conn.scalar(sa.select(requests.c.id).where(
                    requests.c.entity == entity, requests.c.record_id == record_id,
                    requests.c.status == "pending")) is not None:
                raise Conflict(f"an approval of this {entity} is pending already")
            if chosen.transition and not ent.workflow.transitions[chosen.transition].leaves(
                    row.get("state")):
                raise ValidationError([("", f"this {entity} is in state {row.get('state')!r}, "
                                            f"which {chosen.transition!r} does not leave: "
                                            "its approval could never finish")])
            try:
                with conn.begin_nested():
                    request_id = int(conn.execute(sa.insert(requests).values(
                        approval=chosen.name, entity=entity, record_id=record_id,
                        status="pending", step=-1, submitted_by=user.id if user else None,
                        submitted_at=utcnow()).returning(requests.c.id)).scalar_one())
            except sa.exc.IntegrityError:
                raise Conflict(f"an approval of this {entity} is pending already") from None
            self._history(conn, ent, record, "submitted", chosen, None, user, comment)
            self._run(chosen, "submit", chosen.on.get("submit", ()), ent, record, user,
                      request_id)
            self._advance(conn, ent, chosen, request_id, record, 0, user)
            return self._request(conn, request_id)

    def approve(self, request_id: int, *, user: User, comment: str | None = None
                ) -> dict[str, Any]:
        return self._decide(request_id, user, "approved", comment)

    def reject(self, request_id: int, *, user: User, comment: str | None = None
               ) -> dict[str, Any]:
        """Reject: the request ends and the record goes back, unlocked, to its submitter."""
        return self._decide(request_id, user, "rejected", comment)

    def recall(self, request_id: int, *, user: User | None, comment: str | None = None
               ) -> dict[str, Any]:
        """The submitter (or an admin) takes a pending request back."""
        with self.ws.transaction() as conn:
            row, ent, definition = self._pending(conn, request_id)
            if user is not None and not user.is_admin and user.id != row["submitted_by"]:
                raise PermissionDenied("only the submitter may recall it")
            self._finish(conn, ent, definition, row, "recalled", user, comment)
            return self._request(conn, request_id)

    def _decide(self, request_id: int, user: User, decision: str, comment: str | None
                ) -> dict[str, Any]:
        with self.ws.transaction() as conn:
            row, ent, definition = self._pending(conn, request_id)
            if not 0 <= row["step"] < len(definition.steps):
                raise Conflict(f"approval process {definition.name!r} changed since request "
                               f"{request_id} started: recall it and submit again")
            step = definition.steps[row["step"]]
            voter = self._voter(conn, row, user)
            if voter is None:
                raise PermissionDenied(f"you are not an approver of step {step.name!r}")
            if user.id == row["submitted_by"] and not step.allow_self:
                raise PermissionDenied("you may not decide your own submission")
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(votes).values(
                        request_id=request_id, step=row["step"], user_id=voter,
                        decision=decision, comment=comment, at=utcnow(),
                        on_behalf_of=voter if voter != user.id else None))
            except sa.exc.IntegrityError:
                raise Conflict(f"step {step.name!r} already has this approver's decision"
                               ) from None
            record = self.ws.records.get(ent.name, row["record_id"])
            if decision == "rejected":
                self._finish(conn, ent, definition, row, "rejected", user, comment)
                return self._request(conn, request_id)
            self._history(conn, ent, record, "step_approved", definition, step, user, comment)
            self._decided(conn, ent, definition, record, "step_approved", user)
            approvals = conn.scalar(sa.select(sa.func.count()).select_from(votes).where(
                votes.c.request_id == request_id, votes.c.step == row["step"],
                votes.c.decision == "approved")) or 0
            if approvals >= row["needed"]:
                self._run(definition, step.name, step.actions, ent, record, user,
                          request_id)
                self._advance(conn, ent, definition, request_id, record, row["step"] + 1,
                              user)
            return self._request(conn, request_id)

    def _pending(self, conn: sa.Connection, request_id: int
                 ) -> tuple[Mapping[str, Any], Entity, Approval]:
        """The request, locked while it is decided (concurrent decisions queue here)."""
        _stored_id(request_id)
        query = sa.select(requests).where(requests.c.id == request_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no approval request {request_id}")
        if row["status"] != "pending":
            raise Conflict(f"approval request {request_id} is {row['status']} already")
        ent = self.ws.catalog(conn).entity(row["entity"])
        definition = next((a for a in ent.approvals if a.name == row["approval"]), None)
        if definition is None:
            raise NotFound(f"approval process {row['approval']!r} is no longer published")
        return row, ent, definition

    def _voter(self, conn: sa.Connection, row: Mapping[str, Any], user: User) -> str | None:
        """The approver the user decides as: themselves, or one who delegated to them now."""
        mine = set(conn.scalars(sa.select(assignees.c.user_id).where(
            assignees.c.request_id == row["id"], assignees.c.step == row["step"])))
        if user.id in mine:
            return user.id
        now = utcnow()
        for delegator in conn.scalars(sa.select(Delegation.user_id).where(
                Delegation.delegate_id == user.id, Delegation.starts_at <= now,
                Delegation.ends_at > now).order_by(Delegation.user_id)):
            if delegator in mine:
                return str(delegator)
        return None

    def _advance(self, conn: sa.Connection, ent: Entity, definition: Approval,
                 request_id: int, record: Mapping[str, Any], index: int,
                 user: User | None) -> None:
        """Start the first step from ``index`` whose condition holds (recording the ones
        skipped), or finish the request approved when none is left. The step moves only
        from where it was, so two decisions cannot both move it."""
        env = Env(user=user.rule_values() if user else {})
        while index < len(definition.steps):
            step = definition.steps[index]
            if step.condition is None or step.condition(record, env) is True:
                break
            self._history(conn, ent, record, "skipped", definition, step, user, None)
            index += 1
        now = utcnow()
        if index >= len(definition.steps):
            row = conn.execute(sa.select(requests).where(requests.c.id == request_id)
                               ).mappings().one()
            self._finish(conn, ent, definition, row, "approved", user, None)
            return
        step = definition.steps[index]
        moved = conn.execute(sa.update(requests).where(
            requests.c.id == request_id, requests.c.step < index).values(
            step=index, step_started_at=now,
            step_due_at=now + step.timeout if step.timeout else None))
        if moved.rowcount != 1:
            return
        submitter = conn.scalar(sa.select(requests.c.submitted_by)
                                .where(requests.c.id == request_id))
        people = self._resolve(conn, step.approvers, record, None)
        if not step.allow_self:
            people.discard(submitter)
        if not people:
            raise ValidationError([("", f"step {step.name!r} has no approver who may "
                                        "decide it")])
        conn.execute(sa.insert(assignees), [{"request_id": request_id, "step": index,
                                             "user_id": p} for p in sorted(people)])
        conn.execute(sa.update(requests).where(requests.c.id == request_id)
                     .values(needed=step.needed(len(people))))

    def _finish(self, conn: sa.Connection, ent: Entity, definition: Approval,
                row: Mapping[str, Any], status: str, user: User | None,
                comment: str | None) -> None:
        done = conn.execute(sa.update(requests).where(
            requests.c.id == row["id"], requests.c.status == "pending").values(
            status=status, decided_at=utcnow(), step_due_at=None))
        if done.rowcount != 1:
            raise Conflict(f"approval request {row['id']} was decided meanwhile")
        record = self.ws.records.get(ent.name, row["record_id"])
        self._history(conn, ent, record, status, definition, None, user, comment)
        self._run(definition, status, definition.on.get(status, ()), ent, record, user)
        if status == "approved" and definition.transition:
            try:
                with conn.begin_nested():
                    self.ws.records.transition(ent.name, row["record_id"],
                                               definition.transition,
                                               actor=f"approval:{definition.name}")
            except (Conflict, ValidationError) as exc:  # approved all the same; said so
                self._history(conn, ent, record, "transition_failed", definition, None, user,
                              exc.message)
        self._decided(conn, ent, definition, record, status, user)

    def _decided(self, conn: sa.Connection, ent: Entity, definition: Approval,
                 record: Mapping[str, Any], decision: str, user: User | None) -> None:
        """Tell the rules: the ``approval`` trigger fires on every decision."""
        from .automations import Event

        self.ws.automations.fire(conn, Event("approval", ent, dict(record), None, user,
                                             approval=definition.name, decision=decision))

    # --- who ------------------------------------------------------------------------------

    def _resolve(self, conn: sa.Connection, who: Iterable[Mapping[str, Any]],
                 record: Mapping[str, Any], approver: str | None) -> set[str]:
        """The active users some approver specs name (``manager`` of ``approver`` when
        escalating, else of the record's owner)."""
        found: set[str] = set()
        active = UserRow.active.is_(True)
        for spec in who:
            if "user" in spec:
                found |= set(conn.scalars(sa.select(UserRow.id).where(sa.or_(
                    UserRow.username == spec["user"], UserRow.id == spec["user"]), active)))
            elif "role" in spec:
                found |= set(conn.scalars(sa.select(UserRow.id).join(
                    UserRole, UserRole.user_id == UserRow.id).where(
                    UserRole.role == spec["role"], active)))
            elif "team" in spec:
                found |= set(conn.scalars(sa.select(UserRow.id).join(
                    member_table, member_table.c.user_id == UserRow.id).where(
                    member_table.c.team == spec["team"], active)))
            elif "field" in spec and record.get(spec["field"]):
                found |= set(conn.scalars(sa.select(UserRow.id).where(
                    UserRow.id == record[spec["field"]], active)))
            elif spec.get("manager"):
                whose = approver or record.get("owner_id")
                found |= set(conn.scalars(sa.select(UserRow.manager_id).where(
                    UserRow.id == whose, UserRow.manager_id.isnot(None))))
        return {str(u) for u in found}

    def delegate(self, user: User, to: str, starts: dt.datetime, ends: dt.datetime) -> None:
        """Let ``to`` (a username) decide ``user``'s approvals from ``starts`` to ``ends``."""
        if ends <= starts:
            raise ValidationError([("ends", "must be after starts")])
        with self.ws.transaction() as conn:
            delegate_id = self.ws.accounts.user_id(conn, to)
            conn.execute(sa.insert(Delegation).values(user_id=user.id, delegate_id=delegate_id,
                                                      starts_at=starts, ends_at=ends))

    # --- reading --------------------------------------------------------------------------

    def inbox(self, user: User) -> list[dict[str, Any]]:
        """The pending requests whose current step the user may decide (themselves or for
        someone who delegated to them now) and has not decided yet, across entities, each
        with its record's summary."""
        now = utcnow()
        with self.ws.reading() as conn:
            delegators = set(conn.scalars(sa.select(Delegation.user_id).where(
                Delegation.delegate_id == user.id, Delegation.starts_at <= now,
                Delegation.ends_at > now)))
            rows = conn.execute(sa.select(requests).distinct().join(assignees, sa.and_(
                assignees.c.request_id == requests.c.id, assignees.c.step == requests.c.step))
                .where(requests.c.status == "pending",
                       assignees.c.user_id.in_({user.id} | delegators))
                .order_by(requests.c.id)).mappings().all()
            answer = []
            for row in rows:
                decided = conn.scalar(sa.select(sa.func.count()).select_from(votes).where(
                    votes.c.request_id == row["id"], votes.c.step == row["step"],
                    votes.c.user_id.in_({user.id} | delegators)))
                if decided:
                    continue
                item = _public(row, self.ws.catalog(conn))
                ent = self.ws.catalog(conn).entity(row["entity"])
                definition = next((a for a in ent.approvals if a.name == row["approval"]),
                                  None)
                step = next((s for s in (definition.steps if definition else ())
                             if s.name == item["step"]), None)
                item["step_label"] = step.label if step is not None else None
                try:  # what the approver may see of it, as they would read it
                    record = self.ws.records.get(row["entity"], row["record_id"], user=user)
                    item["summary"] = _summary(ent, record)
                except (NotFound, PermissionDenied):
                    item["summary"] = {"label": ent.label}
                answer.append(item)
            return answer

    def pending_count(self, user: User) -> int:
        """How many requests wait for the user's decision: :meth:`inbox`'s length, in one
        query (the screens show it on every page)."""
        now = utcnow()
        deciders = sa.union(
            sa.select(sa.literal(user.id)),
            sa.select(Delegation.user_id).where(Delegation.delegate_id == user.id,
                                                Delegation.starts_at <= now,
                                                Delegation.ends_at > now))
        decided = sa.select(votes.c.request_id).where(
            votes.c.request_id == requests.c.id, votes.c.step == requests.c.step,
            votes.c.user_id.in_(deciders))
        waiting = sa.select(assignees.c.request_id).where(
            assignees.c.request_id == requests.c.id, assignees.c.step == requests.c.step,
            assignees.c.user_id.in_(deciders))
        with self.ws.reading() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(requests).where(
                requests.c.status == "pending", waiting.exists(), ~decided.exists())) or 0)

    def get(self, request_id: int, *, user: User | None = None) -> dict[str, Any]:
        """A request, to the system, an admin, its submitter, its approvers (and their
        delegates), or whoever may read its record; to anyone else it does not exist.

        :raises NotFound:"""
        with self.ws.reading() as conn:
            item = self._request(conn, request_id)
            if user is None or user.is_admin or user.id == item["submitted_by"]:
                return item
            if self._voter(conn, {"id": request_id, "step": _step_index(conn, request_id)},
                           user) is not None:
                return item
            try:
                self.ws.records.get(item["entity"], item["record_id"], user=user)
            except (NotFound, PermissionDenied):
                raise NotFound(f"no approval request {request_id}") from None
            return item

    def for_record(self, entity: str, record_id: str) -> list[dict[str, Any]]:
        with self.ws.reading() as conn:
            ids = conn.scalars(sa.select(requests.c.id).where(
                requests.c.entity == entity, requests.c.record_id == record_id)
                .order_by(requests.c.id)).all()
            return [self._request(conn, i) for i in ids]

    def _request(self, conn: sa.Connection, request_id: int) -> dict[str, Any]:
        _stored_id(request_id)
        row = conn.execute(sa.select(requests).where(requests.c.id == request_id)
                           ).mappings().first()
        if row is None:
            raise NotFound(f"no approval request {request_id}")
        item = _public(row, self.ws.catalog(conn))
        item["approvers"] = sorted(conn.scalars(sa.select(assignees.c.user_id).where(
            assignees.c.request_id == request_id, assignees.c.step == row["step"])))
        item["decisions"] = [
            {"step": v["step"], "user_id": v["user_id"], "decision": v["decision"],
             "comment": v["comment"], "on_behalf_of": v["on_behalf_of"],
             "at": v["at"].isoformat() + "Z"}
            for v in conn.execute(sa.select(votes).where(votes.c.request_id == request_id)
                                  .order_by(votes.c.at)).mappings()]
        return item

    # --- escalation -----------------------------------------------------------------------

    def escalate(self, now: dt.datetime | None = None) -> int:
        """Escalate every step past its timeout (once each): add the escalation's
        approvers and notify them. Answers how many steps escalated."""
        now = now or utcnow()
        count = 0
        with self.ws.transaction() as conn:
            due = conn.execute(sa.select(requests).where(
                requests.c.status == "pending", requests.c.step_due_at.isnot(None),
                requests.c.step_due_at <= now)).mappings().all()
            catalog = self.ws.catalog(conn)
            for row in due:
                taken = conn.execute(sa.update(requests).where(
                    requests.c.id == row["id"], requests.c.step_due_at == row["step_due_at"])
                    .values(step_due_at=None))
                ent = catalog.entities.get(row["entity"])
                definition = next((a for a in (ent.approvals if ent else ())
                                   if a.name == row["approval"]), None)
                if taken.rowcount != 1 or definition is None or ent is None \
                        or not 0 <= row["step"] < len(definition.steps):
                    continue
                step = definition.steps[row["step"]]
                if step.escalate_to is None:
                    continue
                record = self.ws.records.get(ent.name, row["record_id"])
                current = set(conn.scalars(sa.select(assignees.c.user_id).where(
                    assignees.c.request_id == row["id"], assignees.c.step == row["step"])))
                added: set[str] = set()
                for approver in sorted(current) or [None]:
                    added |= self._resolve(conn, [step.escalate_to], record, approver)
                added -= current
                if added:
                    conn.execute(sa.insert(assignees), [
                        {"request_id": row["id"], "step": row["step"], "user_id": p}
                        for p in sorted(added)])
                    conn.execute(sa.insert(Notification), [
                        {"user_id": p, "title": f"Escalated: {definition.label.get('en', '')} "
                                                f"of {ent.name} waits on you",
                         "entity": ent.name, "record_id": row["record_id"], "read": False,
                         "created_at": now} for p in sorted(added)])
                self._history(conn, ent, record, "escalated", definition, step, None, None)
                count += 1
        return count

    # --- helpers --------------------------------------------------------------------------

    def _history(self, conn: sa.Connection, ent: Entity, record: Mapping[str, Any],
                 decision: str, definition: Approval, step: Step | None, user: User | None,
                 comment: str | None) -> None:
        from .records import _audit_row

        conn.execute(sa.insert(audit_table), [_audit_row(
            ent.name, record["id"], "approval", record.get("version") or 0,
            user.id if user else None,
            {"approval": definition.name, "step": step.name if step else None,
             "comment": comment}, detail=decision)])

    def _run(self, definition: Approval, what: str, actions: Iterable[Mapping[str, Any]],
             ent: Entity, record: Mapping[str, Any], user: User | None,
             request_id: int | None = None) -> None:
        actions = tuple(actions)
        if not actions:
            return
        token = _ACTING.set(request_id)
        try:
            self.ws.automations.run_actions(f"{definition.name}.{what}", ent, dict(record),
                                            actions, user)
        finally:
            _ACTING.reset(token)


def _step_index(conn: sa.Connection, request_id: int) -> int:
    return int(conn.scalar(sa.select(requests.c.step).where(requests.c.id == request_id)) or 0)


def _public(row: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    ent = catalog.entities.get(row["entity"])
    definition = next((a for a in (ent.approvals if ent else ())
                       if a.name == row["approval"]), None)
    step = (definition.steps[row["step"]] if definition and 0 <= row["step"] <
            len(definition.steps) else None)

    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat() + "Z"

    return {"id": row["id"], "approval": row["approval"], "entity": row["entity"],
            "record_id": row["record_id"], "status": row["status"],
            "step": step.name if step and row["status"] == "pending" else None,
            "submitted_by": row["submitted_by"], "submitted_at": when(row["submitted_at"]),
            "decided_at": when(row["decided_at"]), "due_at": when(row["step_due_at"])}


def _summary(ent: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    """What says which record it is: its id, its title field (``x-title-field``, else the
    first text field) and its first three filled fields. ``record`` was read as the
    approver, so a field hidden from them is absent from it, and so from this."""
    named = ent.document.get("x-title-field")
    title = str(named) if named else next(
        (f.name for f in ent.fields.values() if f.type.name == "text"), None)
    shown = [f.name for f in ent.fields.values() if record.get(f.name) is not None][:3]
    if title and record.get(title) is not None and title not in shown:
        shown.insert(0, title)
    return {"label": ent.label, "id": record.get("id"),
            **{name: record[name] for name in shown}}


def _stored_id(request_id: Any) -> None:
    """:raises NotFound: for an id no request can have (past 64 bits the database would
    fail on it rather than find nothing)."""
    if not isinstance(request_id, int) or not 0 < request_id < 2**63:
        raise NotFound(f"no approval request {request_id}")
