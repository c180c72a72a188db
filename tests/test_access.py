"""Access control through the engine's API: roles, record scopes, hidden and read-only
fields, sharing, export; and accounts: passwords, throttling, tokens.

The matrix: four users in two teams read, count, group, search, export, create, update
and delete deals; each operation answers exactly what their grant allows, and no hidden
record or field shows through any of them.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from blockscrm.engine import (
    ActionFailed,
    AuthenticationFailed,
    DefinitionError,
    NotFound,
    PermissionDenied,
    QueryError,
    TooManyAttempts,
    User,
    ValidationError,
    Workspace,
)

REP = {"kind": "role", "name": "rep", "label": {"en": "Sales rep"},
       "permissions": {"deal": {"create": True, "read": "own", "update": "own",
                                "fields": {"notes": "hidden", "probability": "read_only"}},
                       "account": {"read": True}}}
MANAGER = {"kind": "role", "name": "manager", "label": {"en": "Sales manager"},
           "permissions": {"deal": {"create": True, "read": "team", "update": "team",
                                    "delete": "team", "export": True},
                           "*": {"read": True}}}
VIEWER = {"kind": "role", "name": "viewer", "label": {"en": "Viewer"},
          "permissions": {"*": {"read": "all", "fields": {"amount": "hidden"}}}}


@pytest.fixture
def office(sales: Workspace) -> dict[str, Any]:
    """Ann and Bob (reps) and Carl (their manager) in team east, Dora (rep) in west, Vic
    (viewer), Root (admin); each rep owns two deals."""
    for role in (REP, MANAGER, VIEWER):
        sales.metadata.create(role)
    sales.metadata.publish()
    accounts = sales.accounts
    accounts.create_team("east")
    accounts.create_team("west")
    people: dict[str, Any] = {"ws": sales}
    for name, role, team in [("ann", "rep", "east"), ("bob", "rep", "east"),
                             ("carl", "manager", "east"), ("dora", "rep", "west"),
                             ("vic", "viewer", None), ("root", "admin", None)]:
        people[name] = accounts.create_user(name, roles=[role], teams=[team] if team else [])
    for name, amounts in [("ann", (100, 200)), ("bob", (300,)), ("dora", (400, 500))]:
        for amount in amounts:
            sales.records.create("deal", {"title": f"{name} {amount}", "amount": amount,
                                          "notes": f"secret of {name}", "stage": "won",
                                          "owner_id": people[name].id})
    return people


def titles(ws: Workspace, user: User, text: str | None = None) -> list[str]:
    query = ws.query("deal", user=user).sort("title")
    if text:
        query = query.search(text)
    return [r["title"] for r in query.page().items]


@pytest.mark.parametrize(("who", "expected"), [
    ("ann", ["ann 100", "ann 200"]),
    ("bob", ["bob 300"]),
    ("carl", ["ann 100", "ann 200", "bob 300"]),
    ("dora", ["dora 400", "dora 500"]),
    ("vic", ["ann 100", "ann 200", "bob 300", "dora 400", "dora 500"]),
    ("root", ["ann 100", "ann 200", "bob 300", "dora 400", "dora 500"]),
])
def test_lists_counts_and_group_bys_hold_only_what_the_user_may_read(
        office: dict[str, Any], who: str, expected: list[str]) -> None:
    ws, user = office["ws"], office[who]
    assert titles(ws, user) == expected
    query = ws.query("deal", user=user)
    assert query.count(exact=True).value == len(expected)
    assert query.aggregate("stage", {"n": "count"}) == [{"stage": "won", "n": len(expected)}]
    assert [r["title"] for r in query.sort("title").stream(chunk=1)] == expected
    if who != "vic":  # amount is hidden from the viewer
        total = sum(int(t.split()[1]) for t in expected)
        assert query.aggregate((), {"total": "sum:amount"}) == [{"total": total}]


def test_a_record_out_of_scope_is_not_found(office: dict[str, Any]) -> None:
    ws = office["ws"]
    bobs = ws.query("deal").filter('title == "bob 300"').page().items[0]
    with pytest.raises(NotFound):
        ws.records.get("deal", bobs["id"], user=office["ann"])
    with pytest.raises(NotFound):
        ws.records.update("deal", bobs["id"], {"title": "mine now"}, user=office["ann"])
    with pytest.raises(NotFound):
        ws.records.history("deal", bobs["id"], user=office["dora"])
    assert ws.records.get("deal", bobs["id"], user=office["carl"])["title"] == "bob 300"
    assert ws.records.get("deal", bobs["id"])["title"] == "bob 300"  # the system


def test_hidden_fields_never_show(office: dict[str, Any]) -> None:
    ws, ann = office["ws"], office["ann"]
    record = ws.query("deal", user=ann).page().items[0]
    assert "notes" not in record and record["amount"] in (100, 200)
    assert "notes" not in ws.records.get("deal", record["id"], user=ann)
    assert all("notes" not in h["changes"]
               for h in ws.records.history("deal", record["id"], user=ann))
    assert "notes" in ws.records.get("deal", record["id"], user=office["carl"])
    query = ws.query("deal", user=ann)
    for build in (lambda: query.filter('notes == "secret of ann"'),
                  lambda: query.filter({"!=": [{"var": "notes"}, None]}),
                  lambda: query.sort("notes"),
                  lambda: query.fields("title", "notes"),
                  lambda: query.aggregate("notes"),
                  lambda: query.aggregate((), {"n": "max:notes"})):
        with pytest.raises(QueryError, match="hidden from you"):
            build()
    assert titles(ws, ann, "secret") == []  # search does not look into a hidden field
    assert titles(ws, office["carl"], "secret")
    assert "amount" not in ws.query("deal", user=office["vic"]).page().items[0]


def test_read_only_fields_and_owners(office: dict[str, Any]) -> None:
    ws, ann = office["ws"], office["ann"]
    with pytest.raises(PermissionDenied, match="probability"):
        ws.records.create("deal", {"title": "x", "probability": 50}, user=ann)
    mine = ws.query("deal", user=ann).page().items[0]
    with pytest.raises(PermissionDenied, match="probability"):
        ws.records.update("deal", mine["id"], {"probability": 10}, user=ann)
    with pytest.raises(PermissionDenied, match="notes"):
        ws.records.update("deal", mine["id"], {"notes": "peek"}, user=ann)
    with pytest.raises(PermissionDenied, match="to others"):
        ws.records.update("deal", mine["id"], {"owner_id": office["bob"].id}, user=ann)
    with pytest.raises(PermissionDenied, match="to others"):
        ws.records.create("deal", {"title": "gift", "owner_id": office["bob"].id}, user=ann)
    done = ws.records.update("deal", mine["id"], {"title": "renamed"}, user=ann)
    assert done["title"] == "renamed" and done["updated_by"] == ann.id
    moved = ws.records.update("deal", mine["id"], {"owner_id": office["bob"].id},
                              user=office["carl"])
    assert moved["owner_id"] == office["bob"].id
    assert "renamed" not in titles(ws, ann) and "renamed" in titles(ws, office["bob"])
    assert ws.records.get("deal", mine["id"])["probability"] is None


def test_update_and_delete_follow_their_own_scopes(office: dict[str, Any]) -> None:
    ws, ann, carl = office["ws"], office["ann"], office["carl"]
    mine = ws.query("deal", user=ann).page().items[0]
    with pytest.raises(PermissionDenied, match="may not delete"):
        ws.records.delete("deal", mine["id"], user=ann)
    with pytest.raises(PermissionDenied, match="may not update"):
        ws.records.update("deal", mine["id"], {"title": "no"}, user=office["vic"])
    doras = ws.query("deal", user=office["dora"]).page().items[0]
    with pytest.raises(NotFound):
        ws.records.delete("deal", doras["id"], user=carl)
    ws.records.delete("deal", mine["id"], user=carl)
    assert len(titles(ws, ann)) == 1


def test_sharing_one_record(office: dict[str, Any]) -> None:
    ws, ann, bob, dora = office["ws"], office["ann"], office["bob"], office["dora"]
    bobs = ws.query("deal", user=bob).page().items[0]
    with pytest.raises(NotFound):
        ws.access.share("deal", bobs["id"], with_user="ann", by=dora)
    ws.access.share("deal", bobs["id"], with_user="ann", by=bob)
    assert titles(ws, ann) == ["ann 100", "ann 200", "bob 300"]
    assert ws.query("deal", user=ann).count().value == 3
    with pytest.raises(PermissionDenied):
        ws.records.update("deal", bobs["id"], {"title": "edited"}, user=ann)
    ws.access.share("deal", bobs["id"], with_user="ann", access="edit", by=bob)
    assert ws.records.update("deal", bobs["id"], {"title": "edited"}, user=ann)["title"] \
        == "edited"
    ws.access.share("deal", bobs["id"], with_team="west", by=bob)
    assert "edited" in titles(ws, dora)
    ws.access.unshare("deal", bobs["id"], with_team="west", by=bob)
    assert "edited" not in titles(ws, dora)
    with pytest.raises(ValidationError):
        ws.access.share("deal", bobs["id"], with_user="ann", access="own", by=bob)


def test_export_is_granted_apart_from_reading(office: dict[str, Any]) -> None:
    ws = office["ws"]
    with pytest.raises(PermissionDenied, match="export"):
        ws.query("deal", user=office["ann"]).export()
    exported = [r["title"] for r in ws.query("deal", user=office["carl"]).sort("title").export()]
    assert exported == ["ann 100", "ann 200", "bob 300"]


def test_no_grant_no_access(office: dict[str, Any]) -> None:
    ws = office["ws"]
    nobody = ws.accounts.create_user("nobody")
    with pytest.raises(PermissionDenied):
        ws.query("deal", user=nobody)
    with pytest.raises(PermissionDenied):
        ws.records.create("deal", {"title": "x"}, user=nobody)
    with pytest.raises(PermissionDenied):
        ws.records.bulk_insert("deal", [{"title": "x"}], user=office["vic"])
    result = ws.records.bulk_insert("deal", [{"title": "ok"}, {"title": "no", "probability": 5}],
                                    user=office["ann"])
    assert result.inserted == 1 and "probability" in result.errors[1][""][0]


def test_a_reference_path_reads_only_what_the_user_may_read(office: dict[str, Any]) -> None:
    ws = office["ws"]
    query = ws.query("deal", user=office["ann"])
    assert query.filter('account.city == "Paris"').count().value == 0
    lonely = {**REP, "name": "lonely", "permissions": {"deal": {"read": "all"}}}
    ws.metadata.create(lonely)
    ws.metadata.publish()
    reader = ws.accounts.create_user("reader", roles=["lonely"])
    with pytest.raises(QueryError, match="hidden from you"):
        ws.query("deal", user=reader).filter('account.city == "Paris"')


def test_a_role_naming_what_is_not_published_is_refused(sales: Workspace) -> None:
    sales.metadata.create({"kind": "role", "name": "odd", "label": {"en": "Odd"},
                           "permissions": {"ghost": {"read": True},
                                           "deal": {"fields": {"nope": "hidden"}}}})
    with pytest.raises(DefinitionError) as caught:
        sales.metadata.publish()
    assert set(caught.value.errors) == {"/role/odd/permissions/ghost",
                                        "/role/odd/permissions/deal/fields/nope"}
    with pytest.raises(DefinitionError):
        sales.metadata.create({"kind": "role", "name": "bad", "label": {"en": "Bad"},
                               "permissions": {"deal": {"read": "some"}}})


# --- accounts -------------------------------------------------------------------------------


def test_passwords_are_hashed_and_checked(workspace: Workspace) -> None:
    user = workspace.accounts.create_user("ann", password="correct horse", roles=["admin"],
                                          email="ann@example.com")
    assert workspace.accounts.authenticate("ann", "correct horse") == user
    for username, password in [("ann", "wrong horse"), ("nobody", "correct horse")]:
        with pytest.raises(AuthenticationFailed, match="wrong username or password"):
            workspace.accounts.authenticate(username, password)
    with workspace.reading() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM blocks_users").scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(ValidationError) as caught:
        workspace.accounts.create_user("Bad Name!", password="short", roles=["nope"])
    assert set(caught.value.errors) == {"username", "password", "roles"}


def test_repeated_failures_slow_logins_down(workspace: Workspace) -> None:
    workspace.accounts.create_user("ann", password="correct horse")
    for _ in range(5):  # five are free; the fifth locks for a second, the sixth for two…
        with pytest.raises(AuthenticationFailed):
            workspace.accounts.authenticate("ann", "guess")
    with pytest.raises(TooManyAttempts) as caught:
        workspace.accounts.authenticate("ann", "correct horse")
    assert caught.value.retry_after == 1
    other = Workspace(workspace.url, secret="test-secret")  # another web process
    try:
        with pytest.raises(TooManyAttempts):
            other.accounts.authenticate("ann", "correct horse")
    finally:
        other.close()


def test_tokens_are_kept_hashed_and_stop_when_revoked(workspace: Workspace) -> None:
    ann = workspace.accounts.create_user("ann", password="correct horse", roles=["admin"])
    token = workspace.accounts.issue_token(ann, "laptop")
    assert workspace.accounts.user_for_token(token) == ann
    with workspace.reading() as conn:
        assert token not in str(conn.exec_driver_sql("SELECT * FROM blocks_tokens").all())
    assert workspace.accounts.user_for_token(token + "x") is None
    workspace.accounts.revoke_token(token)
    assert workspace.accounts.user_for_token(token) is None
    second = workspace.accounts.issue_token(ann)
    workspace.accounts.set_active("ann", False)
    assert workspace.accounts.user_for_token(second) is None
    with pytest.raises(AuthenticationFailed):
        workspace.accounts.authenticate("ann", "correct horse")


def test_user_rules_see_roles_and_teams(office: dict[str, Any]) -> None:
    ws, carl = office["ws"], office["carl"]
    query = ws.query("deal", user=carl)
    assert query.filter('"east" in user.teams and "manager" in user.roles').count().value == 3
    assert query.filter("owner_id == user.id").count().value == 0


@pytest.mark.parametrize(("run_as", "allowed"), [("system", True), ("user", False)])
def test_a_rule_acting_for_the_user_has_the_users_grants(office: dict[str, Any], run_as: str,
                                                         allowed: bool) -> None:
    """A rule acts as the system unless it says ``run_as: user``; then a read-only field
    stays read-only for what it writes, and the user's save fails with it."""
    ws, ann = office["ws"], office["ann"]
    ws.metadata.create({"kind": "automation", "name": "guess", "label": {"en": "Guess"},
                        "entity": "deal", "trigger": {"on": "created"}, "mode": "sync",
                        "run_as": run_as,
                        "actions": [{"type": "set_fields", "values": {"probability": 10}}]})
    ws.metadata.publish()
    if allowed:
        created = ws.records.create("deal", {"title": "x"}, user=ann)
        assert ws.records.get("deal", created["id"])["probability"] == 10
    else:
        with pytest.raises(ActionFailed, match="may not change probability"):
            ws.records.create("deal", {"title": "x"}, user=ann)
        assert "x" not in titles(ws, ann)


@pytest.mark.parametrize("workspace", ["postgresql"], indirect=True)
def test_regression_parallel_failures_each_count(workspace: Workspace) -> None:
    """Failures were read, incremented and written back: in parallel some were lost."""
    workspace.accounts.create_user("ann", password="correct horse")
    start = threading.Barrier(4)

    def fail() -> None:
        start.wait()
        with pytest.raises(AuthenticationFailed):
            workspace.accounts.authenticate("ann", "guess")

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with workspace.reading() as conn:
        assert conn.exec_driver_sql("SELECT failures FROM blocks_login_throttle").scalar() == 4
