"""Blueprints: reading, planning, applying (twice), exporting, upgrading over a
workspace's own changes, conflicts, sample data and requirements."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from blockscrm.engine import Conflict, Workspace
from blockscrm.engine.blueprints import BlueprintError, Library, load

DEAL = {"kind": "entity", "name": "deal", "label": {"en": "Deal"}, "required": ["title"],
        "properties": {"title": {"type": "string", "maxLength": 200},
                       "amount": {"x-field": "currency", "minimum": 0},
                       "region": {"x-field": "select", "enum": ["north", "south"]},
                       "account": {"x-field": "reference", "x-ref": "account"}}}
ACCOUNT = {"kind": "entity", "name": "account", "label": {"en": "Account"},
           "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 100}}}
FLOW = {"kind": "workflow", "name": "deal_flow", "label": {"en": "Deal flow"}, "entity": "deal",
        "initial": "open", "states": [{"name": "open", "label": {"en": "Open"}, "category": "open"},
                                      {"name": "won", "label": {"en": "Won"}, "category": "won"}],
        "transitions": [{"name": "win", "label": {"en": "Win"}, "from": ["open"], "to": "won"}]}
BIG_DEAL = {"kind": "automation", "name": "big_deal", "label": {"en": "Big deal"},
            "entity": "deal", "trigger": {"on": "created"}, "condition": "amount > 1000",
            "actions": [{"type": "set_fields", "values": {"region": "north"}}], "mode": "sync"}


def write_blueprint(folder: Path, documents: list[dict[str, Any]], *, name: str = "sales",
                    version: str = "1.0.0", requires: list[Any] | None = None,
                    data: dict[str, Any] | None = None,
                    extra: dict[str, str] | None = None) -> Path:
    """A blueprint folder from definitions (and data files, and raw extra files)."""
    from blockscrm.engine.blueprints.files import FOLDERS

    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"name": name, "version": version,
                                "label": {"en": name.title()}}
    if requires:
        manifest["requires"] = requires
    (folder / "blueprint.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    for document in documents:
        path = folder / FOLDERS[document["kind"]] / f"{document['name']}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    for file_name, content in (data or {}).items():
        (folder / "data").mkdir(exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        (folder / "data" / file_name).write_text(text)
    for relative, text in (extra or {}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def exported(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the format --------------------------------------------------------------------------


def test_an_error_names_the_file_the_line_and_the_rule(tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT])
    (folder / "entities" / "deal.yaml").write_text(
        "kind: entity\nname: deal\nlabel: {en: Deal}\nproperties:\n"
        "  title: {type: string}\n  amount:\n    x-field: currency\n    minimum: lots\n")
    with pytest.raises(BlueprintError) as caught:
        load(folder)
    [problem] = caught.value.problems
    assert problem.startswith("entities/deal.yaml:8: /properties/amount/minimum: ")
    assert "type" in problem  # the rule broken


def test_yaml_problems_are_located_too(tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT])
    (folder / "entities" / "account.yaml").write_text(
        "kind: entity\nname: account\nlabel: {en: A}\nlabel: {en: B}\nproperties: {}\n")
    (folder / "entities" / "deal.yaml").write_text("kind: entity\nname: [deal\n")
    with pytest.raises(BlueprintError) as caught:
        load(folder)
    text = "\n".join(caught.value.problems)
    assert "entities/account.yaml:4: /: the key 'label' is given twice" in text
    assert "entities/deal.yaml:3:" in text  # the unclosed flow sequence


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    rule = {**BIG_DEAL, "label": {"en": "no"}}
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, rule])
    (folder / "automations" / "big_deal.yaml").write_text(
        (folder / "automations" / "big_deal.yaml").read_text().replace("'no'", "no")
        .replace("mode: sync", "mode: sync\nenabled: true"))
    blueprint = load(folder)
    document = blueprint.documents[("automation", "big_deal")]
    assert document["trigger"] == {"on": "created"}  # `on:` stayed a key
    assert document["label"] == {"en": "no"} and document["enabled"] is True


def test_a_file_must_match_its_folder_and_name(tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT])
    (folder / "entities" / "client.yaml").write_text(yaml.safe_dump(ACCOUNT))
    (folder / "views").mkdir()
    (folder / "views" / "deal.yaml").write_text(yaml.safe_dump(DEAL))
    (folder / "widgets").mkdir()
    with pytest.raises(BlueprintError) as caught:
        load(folder)
    text = "\n".join(caught.value.problems)
    assert "entities/client.yaml:" in text and "must be 'client'" in text
    assert "views/deal.yaml:" in text and "must be 'view' in views/" in text
    assert "widgets/: not a blueprint folder" in text


def test_translations_fill_labels_and_a_wrong_path_is_reported(tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, FLOW], extra={
        "translations/zh.yaml": "entity/deal/label: 交易\n"
                                "workflow/deal_flow/states/1/label: 赢单\n"})
    blueprint = load(folder)
    assert blueprint.documents[("entity", "deal")]["label"] == {"en": "Deal", "zh": "交易"}
    assert blueprint.documents[("workflow", "deal_flow")]["states"][1]["label"]["zh"] == "赢单"
    (folder / "translations" / "zh.yaml").write_text("entity/deal/label: 交易\n"
                                                     "entity/deal/properties/nope/x-label: 无\n")
    with pytest.raises(BlueprintError, match=r"translations/zh.yaml:2: entity/deal/properties"):
        load(folder)


# --- requirements ------------------------------------------------------------------------


def test_requirements_install_first_and_gaps_are_clear(tmp_path: Path) -> None:
    write_blueprint(tmp_path / "lib" / "base", [ACCOUNT], name="base", version="1.2.0")
    write_blueprint(tmp_path / "lib" / "deals", [DEAL], name="deals",
                    requires=[{"name": "base", "version": ">=1.0"}])
    write_blueprint(tmp_path / "lib" / "greedy", [DEAL], name="greedy",
                    requires=[{"name": "base", "version": ">=2"}])
    write_blueprint(tmp_path / "lib" / "lonely", [DEAL], name="lonely", requires=["absent"])
    write_blueprint(tmp_path / "lib" / "ping", [ACCOUNT], name="ping", requires=["pong"])
    write_blueprint(tmp_path / "lib" / "pong", [ACCOUNT], name="pong", requires=["ping"])
    ws = Workspace(f"sqlite:///{tmp_path / 'ws.db'}", secret="x")
    ws.blueprints.library = Library([tmp_path / "lib"])
    try:
        with pytest.raises(BlueprintError, match=r"requires absent, which is neither"):
            ws.blueprints.plan("lonely")
        with pytest.raises(BlueprintError, match=r"requires base>=2, but base 1.2.0 is"):
            ws.blueprints.plan("greedy")
        with pytest.raises(BlueprintError, match=r"a cycle: ping -> pong -> ping"):
            ws.blueprints.plan("ping")
        plan = ws.blueprints.plan("deals")
        assert plan.blueprints == [("base", None, "1.2.0"), ("deals", None, "1.0.0")]
        assert str(plan).startswith("Install base 1.2.0\nInstall deals 1.0.0")
        ws.blueprints.apply("deals")
        assert {n: i["version"] for n, i in ws.blueprints.installed().items()} == {
            "base": "1.2.0", "deals": "1.0.0"}
        assert set(ws.catalog().entities) == {"account", "deal"}
    finally:
        ws.close()


# --- plan, apply, export -----------------------------------------------------------------


def test_plan_then_apply_twice_changes_nothing_the_second_time(workspace: Workspace,
                                                              tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, FLOW, BIG_DEAL])
    plan = workspace.blueprints.plan(folder)
    text = str(plan)
    assert "+ entity deal  (sales)" in text and "CREATE TABLE" in text.upper()
    assert "automation big_deal: deal on created" in text  # a rule that will act
    assert workspace.catalog().entities == {}  # planning wrote nothing
    workspace.blueprints.apply(folder)
    published = workspace.catalog().version
    assert set(workspace.catalog().entities) == {"account", "deal"}
    again = workspace.blueprints.plan(folder)
    assert str(again) == "No changes." and again.empty
    assert workspace.blueprints.apply(folder).empty
    assert workspace.catalog().version == published


def test_apply_refuses_while_drafts_are_pending(workspace: Workspace, tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT])
    workspace.metadata.create({**ACCOUNT, "name": "lead"})
    with pytest.raises(Conflict, match="unpublished drafts are pending"):
        workspace.blueprints.apply(folder)
    assert workspace.catalog().entities == {}


def test_an_export_applied_to_an_empty_workspace_reproduces_it(workspace: Workspace,
                                                              tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, FLOW, BIG_DEAL], extra={
        "translations/zh.yaml": "entity/deal/label: 交易\n"})
    workspace.blueprints.apply(folder)
    workspace.metadata.replace("entity", "account", {
        **ACCOUNT, "properties": {**ACCOUNT["properties"], "city": {"type": "string"}}})
    workspace.metadata.publish()
    first = tmp_path / "first"
    workspace.blueprints.export(first, name="acme")
    assert (first / "entities" / "deal.yaml").read_text().count("交易") == 1
    twin = Workspace(f"sqlite:///{tmp_path / 'twin.db'}", secret="x")
    try:
        twin.blueprints.apply(first)
        second = tmp_path / "second"
        twin.blueprints.export(second, name="acme")
        assert exported(first) == exported(second)
        assert "version:" not in (second / "entities" / "deal.yaml").read_text()
        assert twin.catalog().entities["account"].fields.keys() == {"name", "city"}
    finally:
        twin.close()
    with pytest.raises(Conflict, match="is not empty"):
        workspace.blueprints.export(first)
    assert len(workspace.blueprints.export(first, name="acme", force=True)) == 5


def test_upgrade_keeps_the_workspace_changes(workspace: Workspace, tmp_path: Path) -> None:
    workspace.blueprints.apply(write_blueprint(tmp_path / "v1", [ACCOUNT, DEAL, BIG_DEAL]))
    # The workspace's own layer: a field added to the blueprint's entity, a rule switched off.
    deal = workspace.metadata.get("entity", "deal")
    deal["properties"]["notes"] = {"x-field": "long_text"}
    workspace.metadata.replace("entity", "deal", deal)
    workspace.metadata.replace("automation", "big_deal", {**BIG_DEAL, "enabled": False})
    workspace.metadata.publish()
    # Version 2 of the blueprint: a new field, a longer title, a new label.
    v2_deal = copy.deepcopy(DEAL)
    v2_deal["label"] = {"en": "Opportunity"}
    v2_deal["properties"]["title"]["maxLength"] = 300
    v2_deal["properties"]["close_date"] = {"type": "string", "format": "date"}
    v2 = write_blueprint(tmp_path / "v2", [ACCOUNT, v2_deal, BIG_DEAL], version="1.1.0")
    plan = workspace.blueprints.plan(v2)
    assert "Upgrade sales 1.0.0 -> 1.1.0" in str(plan)
    [change] = [c for c in plan.definitions if c.name == "deal"]
    assert {d["path"] for d in change.diff} == {"/label/en", "/properties/title/maxLength",
                                                "/properties/close_date"}
    assert [d["path"] for d in change.kept] == ["/properties/notes"]
    assert not [c for c in plan.definitions if c.name == "big_deal"]
    workspace.blueprints.apply(v2)
    deal = workspace.metadata.get("entity", "deal")
    assert list(deal["properties"]) == ["title", "amount", "region", "account", "close_date",
                                        "notes"]
    assert deal["label"] == {"en": "Opportunity"}
    assert workspace.metadata.get("automation", "big_deal")["enabled"] is False
    assert workspace.blueprints.installed()["sales"]["version"] == "1.1.0"
    layer = tmp_path / "mine"
    workspace.blueprints.export(layer, layer="workspace")
    assert sorted(exported(layer)) == ["automations/big_deal.yaml", "blueprint.yaml",
                                       "entities/deal.yaml"]
    assert yaml.safe_load((layer / "blueprint.yaml").read_text())["requires"] == [
        {"name": "sales", "version": ">=1.1.0"}]
    base = tmp_path / "base"
    workspace.blueprints.export(base, layer="sales")
    assert "notes" not in (base / "entities" / "deal.yaml").read_text()
    with pytest.raises(BlueprintError, match="is older"):
        workspace.blueprints.plan(write_blueprint(tmp_path / "v0", [ACCOUNT], version="0.9"))


def test_a_true_conflict_is_reported_not_resolved(workspace: Workspace, tmp_path: Path) -> None:
    workspace.blueprints.apply(write_blueprint(tmp_path / "v1", [ACCOUNT, DEAL]))
    workspace.metadata.create({**BIG_DEAL, "name": "north_deals",
                               "condition": 'region == "north"'})
    deal = workspace.metadata.get("entity", "deal")
    deal["properties"]["title"]["maxLength"] = 120
    workspace.metadata.replace("entity", "deal", deal)
    workspace.metadata.publish()
    v2_deal = copy.deepcopy(DEAL)
    del v2_deal["properties"]["region"]  # the field the workspace's rule uses
    v2_deal["properties"]["title"]["maxLength"] = 250  # and one both changed
    v2 = write_blueprint(tmp_path / "v2", [ACCOUNT, v2_deal], version="2.0.0")
    plan = workspace.blueprints.plan(v2)
    text = "\n".join(plan.conflicts)
    assert "entity deal: /properties/title/maxLength: the workspace has 120, the blueprint " \
           "changes 200 to 250" in text
    assert "north_deals" in text and "the workspace's own" in text and "region" in text
    assert "Conflicts (nothing is applied until they are resolved)" in str(plan)
    before = workspace.catalog().version
    with pytest.raises(Conflict, match="conflicts with this workspace"):
        workspace.blueprints.apply(v2, confirm=True)
    assert workspace.catalog().version == before
    assert workspace.blueprints.installed()["sales"]["version"] == "1.0.0"


# --- sample data -------------------------------------------------------------------------


def test_sample_data_loads_once_with_references_owners_and_states(
        workspace: Workspace, tmp_path: Path) -> None:
    workspace.accounts.create_user("ann", password="password1")
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, FLOW], data={
        "01-account.csv": "_key,name\nacme,Acme\nglobex,Globex\n",
        "02-deals.yaml": {"entity": "deal", "records": [
            {"_key": "d1", "_owner": "ann", "title": "Renewal", "amount": 1200,
             "account": "acme", "_transitions": ["win"]},
            {"title": "Pilot", "account": "globex", "region": "south"}]}})
    plan = workspace.blueprints.plan(folder, with_data=True)
    assert plan.data == {"sales": {"account": 2, "deal": 2}}
    assert "deal: 2 record(s)" in str(plan)
    workspace.blueprints.apply(folder, with_data=True)
    deals = {d["title"]: d for d in workspace.query("deal").stream()}
    accounts = {a["name"]: a["id"] for a in workspace.query("account").stream()}
    assert deals["Renewal"]["account"] == accounts["Acme"]
    assert deals["Renewal"]["state"] == "won"
    assert deals["Renewal"]["owner_id"] == workspace.accounts.user("ann").id
    assert deals["Pilot"]["account"] == accounts["Globex"]
    assert workspace.blueprints.plan(folder, with_data=True).empty
    workspace.blueprints.apply(folder, with_data=True)
    assert workspace.query("deal").count().value == 2


def test_bad_sample_data_names_its_line_and_loads_nothing(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL], data={
        "01-account.yaml": {"entity": "account", "records": [{"_key": "a", "name": "A"}]},
        "02-deal.yaml": "entity: deal\nrecords:\n  - {title: One, account: a}\n"
                        "  - {title: Two, account: nobody}\n"})
    with pytest.raises(BlueprintError, match=r"data/02-deal.yaml:4: .*'nobody'"):
        workspace.blueprints.apply(folder, with_data=True)
    assert workspace.query("account").count().value == 0  # the definitions stay, no records
    assert set(workspace.catalog().entities) == {"account", "deal"}


def test_a_blueprint_whose_definitions_do_not_fit_together_is_refused_by_line(
        workspace: Workspace, tmp_path: Path) -> None:
    broken = {**BIG_DEAL, "condition": "amount > 1000 and colour == 1"}
    folder = write_blueprint(tmp_path / "bp", [ACCOUNT, DEAL, broken])
    with pytest.raises(BlueprintError) as caught:
        workspace.blueprints.plan(folder)
    [problem] = caught.value.problems
    assert problem.startswith("automations/big_deal.yaml:")
    assert "/condition" in problem and "colour" in problem
