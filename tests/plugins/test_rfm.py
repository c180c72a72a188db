"""The rfm plugin: customers scored from a few hundred generated orders, at exactly the
times its settings' cron names (the tick's time injected), on demand from the command line
and the API, written only where something changed; settings that do not fit the workspace
refused when enabled, with the setting named, and a run refused when the entities changed
since."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from blockscrm.engine import DefinitionError, Workspace
from blockscrm.engine.plugins import add_plugin, create_plugin_manager
from blockscrm.platform.app import create_app
from blockscrm.platform.cli import main
from blockscrm.plugins import rfm
from blockscrm.plugins.rfm.run import recompute
from blockscrm.plugins.rfm.scoring import SEGMENTS, Profile, quintiles, score

CUSTOMER = {"kind": "entity", "name": "customer", "label": {"en": "Customer"},
            "properties": {
                "name": {"type": "string"},
                "rfm_recency": {"type": "integer"}, "rfm_frequency": {"type": "integer"},
                "rfm_monetary": {"type": "integer"}, "rfm_code": {"type": "string"},
                "rfm_segment": {"type": "string", "enum": list(SEGMENTS)}}}
ORDER = {"kind": "entity", "name": "order", "label": {"en": "Order"},
         "properties": {
             "customer": {"x-field": "reference", "x-ref": "customer"},
             "amount": {"x-field": "currency"},
             "placed_on": {"type": "string", "format": "date"},
             "stage": {"type": "string", "enum": ["open", "won", "lost"]}}}
SETTINGS = {"customer_entity": "customer", "order_entity": "order",
            "order_customer_field": "customer", "order_amount_field": "amount",
            "order_date_field": "placed_on", "order_filter": 'stage == "won"',
            "schedule": "0 3 * * *"}
#: The nightly run's time: a tick at 03:00 (UTC) on this day runs it.
NIGHT = dt.datetime(2026, 1, 5, 3, 0)
TODAY = NIGHT.date()


def orders(customer: str, count: int, days_ago: int, amount: float,
           stage: str = "won") -> list[dict[str, Any]]:
    """``count`` orders of ``amount``, the latest ``days_ago`` days before today, one a
    day before it."""
    return [{"customer": customer, "amount": amount, "stage": stage,
             "placed_on": (TODAY - dt.timedelta(days=days_ago + i)).isoformat()}
            for i in range(count)]


@pytest.fixture
def shop(workspace: Workspace) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """Customers with known profiles among 80 generated ones (1-8 won orders each, last
    bought 1-330 days ago): the workspace and the known customers' ids by name."""
    workspace.metadata.create(CUSTOMER)
    workspace.metadata.create(ORDER)
    workspace.metadata.publish()
    names = ["champion", "one_off", "cant_lose", "newcomer", "gone", "prospect",
             "undecided"] + [f"c{n:02}" for n in range(80)]
    ids = {name: workspace.records.create("customer", {"name": name})["id"] for name in names}
    rng = random.Random(10)
    rows = [row for n in range(80)
            for row in orders(ids[f"c{n:02}"], rng.randint(1, 8), rng.randint(1, 330),
                              rng.randint(10, 400))]
    rows += orders(ids["champion"], 30, 0, 800)  # bought today, most often, the most
    rows += orders(ids["champion"], 1, 3, 5000, stage="lost")  # not counted
    rows += orders(ids["one_off"], 1, 350, 20)  # once, longest ago
    rows += orders(ids["cant_lose"], 20, 340, 1000)  # often and much, but long ago
    rows += orders(ids["newcomer"], 1, 0, 15)  # once, today
    rows += orders(ids["gone"], 5, 400, 900)  # before the window
    rows += orders(ids["undecided"], 3, 2, 300, stage="open")  # none won
    assert 400 < len(rows) < 600
    assert not workspace.records.bulk_insert("order", rows).errors
    yield workspace, ids


def scores(ws: Workspace, customer_id: str) -> tuple[Any, ...]:
    record = ws.records.get("customer", customer_id)
    return (record["rfm_recency"], record["rfm_frequency"], record["rfm_monetary"],
            record["rfm_code"], record["rfm_segment"])


def test_quintiles_score_ties_alike_whatever_their_order() -> None:
    assert quintiles({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}) == {
        "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert quintiles({"e": 5, "a": 1, "x": 1, "y": 1, "b": 9}) == {
        "e": 4, "a": 1, "x": 1, "y": 1, "b": 5}
    assert quintiles({"only": 7}) == {"only": 1}
    best = score({"recent": Profile(recency=1, frequency=9, monetary=900),
                  "old": Profile(recency=300, frequency=1, monetary=10)})
    assert (best["recent"].code, best["recent"].segment) == ("333", "needs_attention")
    assert (best["old"].code, best["old"].segment) == ("111", "lost")


def test_the_nightly_tick_scores_and_segments_every_customer(
        shop: tuple[Workspace, dict[str, str]]) -> None:
    ws, ids = shop
    ws.plugins.enable("rfm", SETTINGS)
    ws.automations.tick(NIGHT - dt.timedelta(minutes=5))  # before 03:00: nothing yet
    assert scores(ws, ids["champion"]) == (None,) * 5
    ws.automations.tick(NIGHT + dt.timedelta(seconds=20))

    assert scores(ws, ids["champion"]) == (5, 5, 5, "555", "champions")
    assert scores(ws, ids["one_off"]) == (1, 1, 1, "111", "lost")
    assert scores(ws, ids["cant_lose"])[:2] == (1, 5)
    assert scores(ws, ids["cant_lose"])[4] == "cant_lose_them"
    assert scores(ws, ids["newcomer"])[:2] == (5, 1)
    assert scores(ws, ids["newcomer"])[4] == "new_customers"
    for nothing_won_lately in ("gone", "prospect", "undecided"):
        assert scores(ws, ids[nothing_won_lately]) == (None, None, None, None, "lost")
    history = ws.records.history("customer", ids["champion"])
    assert history[-1]["actor"] == "plugin:rfm"
    assert history[-1]["changes"]["rfm_segment"] == {"before": None, "after": "champions"}

    segments = [ws.records.get("customer", i)["rfm_segment"] for i in ids.values()]
    assert set(segments) <= set(SEGMENTS) and len(set(segments)) >= 6


def test_only_the_scheduled_time_runs_it_and_a_second_run_changes_nothing(
        shop: tuple[Workspace, dict[str, str]]) -> None:
    ws, ids = shop
    ws.plugins.enable("rfm", SETTINGS)
    ws.automations.tick(NIGHT - dt.timedelta(minutes=1))
    ws.automations.tick(NIGHT)
    versions = {i: ws.records.get("customer", i)["version"] for i in ids.values()}
    assert versions[ids["champion"]] == 2

    ws.records.update("customer", ids["champion"], {"rfm_segment": "lost"})
    ws.automations.tick(NIGHT + dt.timedelta(hours=9))  # noon: not the schedule's time
    assert scores(ws, ids["champion"])[4] == "lost"
    ws.automations.tick(NIGHT + dt.timedelta(days=1))  # the next night puts it right
    assert scores(ws, ids["champion"])[4] == "champions"

    again = recompute(ws, NIGHT + dt.timedelta(days=1))
    assert again.updated == 0
    assert sum(again.segments.values()) == len(ids)
    unchanged = {i: ws.records.get("customer", i)["version"] for i in ids.values()}
    assert unchanged == {**versions, ids["champion"]: versions[ids["champion"]] + 2}


def test_the_schedule_is_the_workspaces_cron_exactly(
        shop: tuple[Workspace, dict[str, str]]) -> None:
    """Mondays at 04:15: the engine runs the schedule at that minute only (2026-01-05 is a
    Monday); any other tick, the minute before or after, the next day, runs nothing."""
    ws, ids = shop
    ws.plugins.enable("rfm", {**SETTINGS, "schedule": "15 4 * * 1"})
    assert [s.cron for s in rfm.blocks_schedules(ws)] == ["15 4 * * 1"]
    monday = dt.datetime(2026, 1, 5, 4, 15)

    def ran(at: dt.datetime) -> bool:
        ws.records.update("customer", ids["champion"], {"rfm_segment": None})
        ws.automations.tick(at)
        return scores(ws, ids["champion"])[4] == "champions"

    assert not ran(monday - dt.timedelta(hours=2))  # the first tick: nothing is due yet
    assert not ran(NIGHT)  # the other settings' time
    assert not ran(monday - dt.timedelta(minutes=1))
    assert ran(monday)
    assert not ran(monday + dt.timedelta(minutes=1))
    assert not ran(monday + dt.timedelta(days=1))
    assert not ran(monday + dt.timedelta(days=7, minutes=-1))
    assert ran(monday + dt.timedelta(days=7, seconds=30))


def test_a_disabled_plugin_writes_nothing(shop: tuple[Workspace, dict[str, str]]) -> None:
    ws, ids = shop
    ws.plugins.enable("rfm", SETTINGS)
    ws.plugins.disable("rfm")
    ws.automations.tick(NIGHT - dt.timedelta(minutes=1))
    ws.automations.tick(NIGHT)
    assert all(scores(ws, i) == (None,) * 5 for i in ids.values())


@pytest.mark.parametrize(("change", "pointer", "says"), [
    ({"order_amount_field": "stage"}, "/order_amount_field", "'stage' is not a number field"),
    ({"order_date_field": "closed_on"}, "/order_date_field", "order has no field 'closed_on'"),
    ({"order_customer_field": "amount"}, "/order_customer_field", "not a reference"),
    ({"recency_field": "score"}, "/recency_field",
     "customer has no field 'score'"),
    ({"order_filter": "stage =="}, "/order_filter", ""),
    ({"order_filter": "colour == 1"}, "/order_filter", "colour"),
    ({"customer_entity": "client"}, "/customer_entity", "no entity 'client'"),
    ({"schedule": "61 * * * *"}, "/schedule", "not a cron expression"),
])
def test_settings_that_do_not_fit_the_entities_are_refused_when_enabled(
        shop: tuple[Workspace, dict[str, str]], change: dict[str, str], pointer: str,
        says: str) -> None:
    ws, _ = shop
    with pytest.raises(DefinitionError) as refused:
        ws.plugins.enable("rfm", {**SETTINGS, **change})
    assert says in " ".join(refused.value.errors[pointer])
    assert "rfm" in str(refused.value)
    assert "rfm" not in ws.plugins.enabled()

    ws.plugins.enable("rfm", SETTINGS)
    with pytest.raises(DefinitionError) as changed:  # a change of settings, the same
        ws.plugins.enable("rfm", {**SETTINGS, **change})
    assert pointer in changed.value.errors
    assert ws.plugins.settings("rfm") == SETTINGS


def test_a_run_refuses_entities_changed_after_enabling(
        shop: tuple[Workspace, dict[str, str]]) -> None:
    ws, ids = shop
    ws.plugins.enable("rfm", SETTINGS)
    customer = dict(ws.metadata.get("entity", "customer"))
    customer["properties"] = {k: v for k, v in customer["properties"].items()
                              if k != "rfm_code"}
    ws.metadata.replace("entity", "customer", customer)
    ws.metadata.publish(confirm=True)
    with pytest.raises(DefinitionError) as refused:
        recompute(ws, NIGHT)
    assert "customer has no field 'rfm_code'" in refused.value.errors["/code_field"][0]
    ws.automations.tick(NIGHT - dt.timedelta(minutes=1))
    ws.automations.tick(NIGHT)  # logged, not raised: the worker goes on
    assert ws.records.get("customer", ids["champion"])["rfm_segment"] is None


def test_the_settings_schema_is_checked_when_enabled(workspace: Workspace) -> None:
    with pytest.raises(DefinitionError) as refused:
        workspace.plugins.enable("rfm", {"customer_entity": "customer", "window_days": 0})
    assert {"/", "/window_days"} <= set(refused.value.errors)


def test_blocks_rfm_run_prints_the_customers_per_segment(
        shop: tuple[Workspace, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    ws, ids = shop
    monkeypatch.setenv("DATABASE_URL", ws.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    cli = CliRunner()
    refused = cli.invoke(main, ["rfm", "run"])
    assert refused.exit_code == 1 and "not enabled" in refused.output

    ws.plugins.enable("rfm", SETTINGS)
    done = cli.invoke(main, ["rfm", "run", "--as-of", TODAY.isoformat()])
    assert done.exit_code == 0, done.output
    lines = dict(line.rsplit(None, 1) for line in done.output.splitlines()[:-1])
    assert list(lines) == list(SEGMENTS)
    assert sum(int(n) for n in lines.values()) == len(ids)
    assert int(lines["champions"]) >= 1 and int(lines["lost"]) >= 4
    assert done.output.splitlines()[-1] == f"Updated {len(ids)} customers."
    assert scores(ws, ids["champion"])[4] == "champions"


def test_the_api_runs_it_for_admins(shop: tuple[Workspace, dict[str, str]]) -> None:
    ws, ids = shop
    pm = create_plugin_manager(load_entry_points=False)  # rfm alone
    add_plugin(pm, rfm)
    app = create_app({"DATABASE_URL": ws.url, "SECRET_KEY": "test-secret", "TESTING": True,
                      "PLUGIN_MANAGER": pm})
    try:
        accounts = app.extensions["blocks"].accounts
        admin = accounts.issue_token(accounts.create_user("root", roles=["admin"]))
        clerk = accounts.issue_token(accounts.create_user("clerk"))
        client = app.test_client()

        def post(token: str) -> Any:
            return client.post("/api/v1/plugins/rfm/run",
                               headers={"Authorization": f"Bearer {token}"})

        assert post(admin).status_code == 404  # not enabled here
        ws.plugins.enable("rfm", SETTINGS)
        assert post(clerk).status_code == 403
        answer = post(admin)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert sum(answer.get_json()["segments"].values()) == len(ids)
        assert answer.get_json()["updated"] == len(ids)
    finally:
        app.extensions["blocks"].close()
