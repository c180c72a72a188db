"""Scenario tests of a blueprint: given records, when events happen, expect outcomes.

Each scenario runs in its own throwaway SQLite workspace, copied from one where the
blueprint (and what it requires) was applied once, with jobs run inline and a clock the
scenario moves forward (``wait``), so "a lead untouched for 48 hours" takes no time.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..accounts import User
from ..errors import BlocksError
from ..jobs import InlineJobs
from ..store import ApprovalRequest, Notification, OutboxMessage, Run, utcnow
from ..workspace import Workspace
from .files import Blueprint, YamlFile
from .service import Library

_STEP_KINDS = ("create", "update", "transition", "delete", "submit", "approve", "reject",
               "recall", "wait")


@dataclass
class ScenarioResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.file}: {self.name}"
        return "\n".join([head, *(f"      {f}" for f in self.failures)])


class ScenarioFailed(Exception):
    """One expectation (or step) that did not hold."""


def run_scenarios(blueprint: Blueprint, library: Library | None = None,
                  select: str | None = None) -> Iterator[ScenarioResult]:
    """Run every scenario of ``blueprint`` (those whose name contains ``select``), each in
    a fresh copy of a scratch workspace where the blueprint is applied."""
    with tempfile.TemporaryDirectory(prefix="blocks-scenarios-") as folder:
        template = Path(folder) / "template.db"
        ws = _scratch(template)
        try:
            if library is not None:  # where the blueprints it requires are found
                ws.blueprints.library = library
            ws.blueprints.apply(blueprint, confirm=True)
        finally:
            ws.close()
        for file in blueprint.scenarios:
            shared_users = file.data.get("users", {})
            for index, scenario in enumerate(file.data["scenarios"]):
                if select and select not in scenario["name"]:
                    continue
                copy = Path(folder) / "scenario.db"
                shutil.copyfile(template, copy)
                started = time.perf_counter()
                result = ScenarioResult(f"{file.relative}:{file.line(['scenarios', index])}",
                                        scenario["name"])
                ws = _scratch(copy)
                try:
                    _Run(ws, file, index, {**shared_users, **scenario.get("users", {})}).run(
                        scenario)
                except ScenarioFailed as exc:
                    result.failures.append(str(exc))
                finally:
                    ws.close()
                    copy.unlink()
                result.seconds = time.perf_counter() - started
                yield result


def _scratch(path: Path) -> Workspace:
    ws = Workspace(f"sqlite:///{path}", secret=secrets.token_hex(16))
    ws.jobs = InlineJobs(ws)  # a scenario never reaches for Redis
    return ws


class _Run:
    """One scenario on its workspace: the users, the keyed records, the clock."""

    def __init__(self, ws: Workspace, file: YamlFile, index: int,
                 users: Mapping[str, Mapping[str, Any]]) -> None:
        self.ws, self.file, self.index = ws, file, index
        self.keys: dict[str, tuple[str, str]] = {}
        self.clock = utcnow()
        self.users: dict[str, User] = {}
        pending = dict(users)
        while pending:  # managers before the people they manage
            ready = [n for n, u in pending.items()
                     if u.get("manager") is None or u["manager"] in self.users]
            if not ready:
                self.fail(["users"], f"managers form a cycle or are missing: {sorted(pending)}")
            for name in ready:
                spec = pending.pop(name)
                try:
                    known = set(ws.accounts.teams())
                    for team in set(spec.get("teams", ())) - known:
                        ws.accounts.create_team(team)
                    self.users[name] = ws.accounts.create_user(
                        name, roles=spec.get("roles", ()), teams=spec.get("teams", ()),
                        manager=spec.get("manager"), email=spec.get("email"))
                except BlocksError as exc:
                    self.fail(["users", name], exc.message)

    def fail(self, parts: list[str | int], message: str) -> None:
        line = self.file.line(["scenarios", self.index, *parts])
        raise ScenarioFailed(f"line {line}: {message}")

    def user(self, name: str | None, where: list[str | int]) -> User | None:
        if name is None:
            return None
        if name not in self.users:
            self.fail(where, f"no user {name!r} in this scenario's users")
        return self.users[name]

    def record(self, key: str, where: list[str | int]) -> tuple[str, str]:
        if key not in self.keys:
            self.fail(where, f"no record has the key {key!r}")
        return self.keys[key]

    def values(self, entity: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Values with keyed records named in reference fields replaced by their ids."""
        fields = self.ws.catalog().entity(entity).fields
        return {name: self.keys[value][1] if name in fields and fields[name].ref
                and isinstance(value, str) and value in self.keys else value
                for name, value in values.items()}

    # --- running --------------------------------------------------------------------------

    def run(self, scenario: Mapping[str, Any]) -> None:
        for i, given in enumerate(scenario.get("given", [])):
            where: list[str | int] = ["given", i]
            try:
                self._given(given, where)
            except BlocksError as exc:
                self.fail(where, f"could not create it: {exc.message}")
        for i, step in enumerate(scenario.get("when", [])):
            self._step(step, ["when", i])
        self._expect(scenario["expect"])

    def _given(self, given: Mapping[str, Any], where: list[str | int]) -> None:
        entity = given["entity"]
        values = {k: v for k, v in given.items() if k not in ("entity", "as")
                  and not k.startswith("_")}
        values = self.values(entity, values)
        if "_owner" in given:
            owner = self.user(given["_owner"], [*where, "_owner"])
            values["owner_id"] = owner.id if owner else None
        user = self.user(given.get("as"), [*where, "as"])
        record = self.ws.records.create(entity, values, user=user)
        for transition in given.get("_transitions", []):
            record = self.ws.records.transition(entity, record["id"], transition, user=user)
        if "_key" in given:
            self.keys[given["_key"]] = (entity, record["id"])

    def _step(self, step: Mapping[str, Any], where: list[str | int]) -> None:
        kind = next(k for k in _STEP_KINDS if k in step)
        user = self.user(step.get("as"), [*where, "as"])
        refused = step.get("refused")
        try:
            self._do(kind, step, user, where)
        except BlocksError as exc:
            if refused is None:
                self.fail(where, f"{kind} was refused: {exc.message}")
            if refused not in exc.message:
                self.fail(where, f"{kind} was refused with {exc.message!r}, not {refused!r}")
            return
        if refused is not None:
            self.fail(where, f"{kind} was expected to be refused ({refused!r}) but it passed")

    def _do(self, kind: str, step: Mapping[str, Any], user: User | None,
            where: list[str | int]) -> None:
        ws = self.ws
        if kind == "wait":
            self.clock += dt.timedelta(**step["wait"])
            ws.automations.tick(now=self.clock)
        elif kind == "create":
            record = ws.records.create(step["create"],
                                       self.values(step["create"], step.get("values", {})),
                                       user=user)
            if "key" in step:
                self.keys[step["key"]] = (step["create"], record["id"])
        elif kind == "update":
            entity, record_id = self.record(step["update"], [*where, "update"])
            ws.records.update(entity, record_id, self.values(entity, step.get("values", {})),
                              user=user)
        elif kind == "transition":
            entity, record_id = self.record(step["record"], [*where, "record"])
            ws.records.transition(entity, record_id, step["transition"],
                                  values=self.values(entity, step.get("values", {})),
                                  user=user)
        elif kind == "delete":
            entity, record_id = self.record(step["delete"], [*where, "delete"])
            ws.records.delete(entity, record_id, user=user)
        elif kind == "submit":
            entity, record_id = self.record(step["record"], [*where, "record"])
            ws.approvals.submit(entity, record_id, approval=step["submit"], user=user,
                                comment=step.get("comment"))
        else:  # approve, reject, recall: the record's pending request
            entity, record_id = self.record(step[kind], [*where, kind])
            pending = [r for r in ws.approvals.for_record(entity, record_id)
                       if r["status"] == "pending"]
            if not pending:
                self.fail(where, f"{step[kind]} has no pending approval to {kind}")
            if user is None and kind != "recall":
                self.fail(where, f"say who does it: {kind} needs `as`")
            decide = getattr(ws.approvals, kind)
            decide(pending[-1]["id"], user=user, comment=step.get("comment"))

    # --- expectations ---------------------------------------------------------------------

    def _expect(self, expect: Mapping[str, Any]) -> None:
        problems: list[str] = []
        for i, item in enumerate(expect.get("records", [])):
            problems += self._records(item, ["expect", "records", i])
        with self.ws.reading() as conn:
            for name, table in (("notifications", Notification), ("emails", OutboxMessage),
                                ("jobs", Run)):
                if expect.get(name) == []:  # none at all
                    problems += self._rows(conn, name, table, {"count": 0}, ["expect", name])
                for i, item in enumerate(expect.get(name, [])):
                    problems += self._rows(conn, name, table, item, ["expect", name, i])
            if expect.get("approvals") == []:
                requests = conn.scalar(sa.select(sa.func.count()).select_from(ApprovalRequest))
                if requests:
                    problems.append(self._at(["expect", "approvals"],
                                             f"{requests} approval(s), expected none"))
        for i, item in enumerate(expect.get("approvals", [])):
            problems += self._approvals(item, ["expect", "approvals", i])
        if problems:
            raise ScenarioFailed("\n      ".join(problems))

    def _at(self, where: list[str | int], message: str) -> str:
        return f"line {self.file.line(['scenarios', self.index, *where])}: {message}"

    def _records(self, item: Mapping[str, Any], where: list[str | int]) -> list[str]:
        if "record" in item:
            entity, record_id = self.record(item["record"], [*where, "record"])
            try:
                found = [self.ws.records.get(entity, record_id)]
            except BlocksError as exc:
                return [self._at(where, f"{item['record']}: {exc.message}")]
            what = item["record"]
        else:
            entity = item["entity"]
            try:
                query = self.ws.query(entity)
                if item.get("where"):
                    query = query.filter(item["where"])
                found = list(query.stream())
            except BlocksError as exc:
                return [self._at([*where, "where"], exc.message)]
            what = f"{entity} where {item.get('where') or 'any'}"
            count = item.get("count")
            if count is None and not found:
                return [self._at(where, f"no {what}")]
            if count is not None and len(found) != count:
                return [self._at([*where, "count"], f"{len(found)} {what}, expected {count}")]
        problems = []
        for record in found:
            if "state" in item and record.get("state") != item["state"]:
                problems.append(self._at([*where, "state"], f"{what} is in state "
                                         f"{record.get('state')!r}, expected {item['state']!r}"))
            if "owner" in item:
                expected = self.users[item["owner"]].id if item["owner"] in self.users \
                    else item["owner"]
                if record.get("owner_id") != expected:
                    owner = next((n for n, u in self.users.items()
                                  if u.id == record.get("owner_id")), record.get("owner_id"))
                    problems.append(self._at([*where, "owner"], f"{what} is owned by "
                                             f"{owner!r}, expected {item['owner']!r}"))
            for name, expected in self.values(entity, item.get("fields", {})).items():
                if not _same(record.get(name), expected):
                    problems.append(self._at([*where, "fields", name],
                                             f"{what}: {name} is {record.get(name)!r}, "
                                             f"expected {expected!r}"))
        return problems

    def _rows(self, conn: sa.Connection, name: str, table: Any, item: Mapping[str, Any],
              where: list[str | int]) -> list[str]:
        rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
        wanted = dict(item)
        count = wanted.pop("count", None)
        if name == "notifications" and "user" in wanted:
            user = self.user(wanted.pop("user"), [*where, "user"])
            rows = [r for r in rows if user and r["user_id"] == user.id]
        if name == "emails" and "to" in wanted:
            address = wanted.pop("to")
            rows = [r for r in rows if address in (r["to"] or [])]
        if "record" in wanted:
            rows = [r for r in rows if r.get("record_id") == self.record(
                wanted.pop("record"), [*where, "record"])[1]]
        for column, value in wanted.items():
            if rows and column not in rows[0]:
                return [self._at([*where, column], f"{name} have no {column!r}")]
            rows = [r for r in rows if _matches(r.get(column), value)]
        if count is None and not rows:
            return [self._at(where, f"no {name[:-1] if name != 'emails' else 'email'} "
                                    f"matches {dict(item)}")]
        if count is not None and len(rows) != count:
            return [self._at(where, f"{len(rows)} {name} match {dict(item)}, expected {count}")]
        return []

    def _approvals(self, item: Mapping[str, Any], where: list[str | int]) -> list[str]:
        if "record" not in item:
            return [self._at(where, "say which record's approvals: record")]
        entity, record_id = self.record(item.get("record", ""), [*where, "record"])
        requests = self.ws.approvals.for_record(entity, record_id)
        count = item.get("count")
        if count is not None and len(requests) != count:
            return [self._at(where, f"{len(requests)} approval(s), expected {count}")]
        if not requests:
            return [self._at(where, f"{item['record']} has no approval")] \
                if count is None else []
        latest = requests[-1]
        return [self._at([*where, k], f"the approval's {k} is {latest.get(k)!r}, expected "
                                      f"{v!r}")
                for k, v in item.items() if k not in ("record", "count")
                and not _matches(latest.get(k), v)]


def _matches(actual: Any, expected: Any) -> bool:
    """Text expectations match a part of the text; anything else must be equal."""
    if isinstance(expected, str) and isinstance(actual, str):
        return expected in actual
    return _same(actual, expected)


def _same(actual: Any, expected: Any) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(actual, numbers) and isinstance(expected, numbers) \
            and not isinstance(actual, bool) and not isinstance(expected, bool):
        return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, str) and not isinstance(actual, str) and actual is not None:
        return str(actual) == expected
    return bool(actual == expected)
