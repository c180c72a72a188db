"""``blocks blueprint …`` and the scenario runner, as an implementer uses them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_blueprints import ACCOUNT, DEAL, FLOW, exported, write_blueprint

from blockscrm.engine import Workspace
from blockscrm.engine.blueprints import Library, load
from blockscrm.engine.blueprints.scenarios import run_scenarios
from blockscrm.platform.cli import main

SCENARIOS = """\
users:
  ann: {roles: [admin]}
scenarios:
  - name: Winning a deal
    given:
      - {entity: account, _key: acme, name: Acme}
    when:
      - {create: deal, key: d1, as: ann, values: {title: Big, account: acme, amount: 10}}
      - {transition: win, record: d1, as: ann}
    expect:
      records:
        - {record: d1, state: won, owner: ann, fields: {amount: 10, account: acme}}
        - {entity: deal, where: 'title == "Big"', count: 1}
  - name: A wrong expectation is reported with its line
    when:
      - {create: deal, key: d2, values: {title: Small}}
      - {transition: win, record: d2, refused: "no such thing"}
    expect:
      records:
        - {record: d2, state: lost}
"""


@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", workspace.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner()


def test_list_plan_apply_and_export_from_the_command_line(
        run: CliRunner, workspace: Workspace, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_blueprint(tmp_path / "lib" / "sales", [ACCOUNT, DEAL, FLOW])
    monkeypatch.setenv("BLOCKS_BLUEPRINT_PATH", str(tmp_path / "lib"))
    listed = run.invoke(main, ["blueprint", "list"])
    assert listed.exit_code == 0, listed.output
    assert any(line.split()[:3] == ["sales", "-", "1.0.0"] for line in listed.output.splitlines())
    assert any(line.startswith("core-sales ") for line in listed.output.splitlines())
    plan = run.invoke(main, ["blueprint", "plan", "sales"])
    assert plan.exit_code == 0 and "+ entity deal  (sales)" in plan.output
    as_json = json.loads(run.invoke(main, ["blueprint", "plan", "sales", "--json"]).output)
    assert {(d["kind"], d["name"], d["action"]) for d in as_json["definitions"]} == {
        ("entity", "account", "create"), ("entity", "deal", "create"),
        ("workflow", "deal_flow", "create")}
    assert any("CREATE TABLE" in " ".join(s.get("ddl", [])).upper()
               for s in as_json["schema"]["steps"])
    applied = run.invoke(main, ["blueprint", "apply", "sales"])
    assert applied.exit_code == 0 and applied.output.rstrip().endswith("Applied.")
    assert run.invoke(main, ["blueprint", "plan", "sales"]).output == "No changes.\n"
    assert run.invoke(main, ["blueprint", "apply", "sales"]).output == "No changes.\n"
    listed = run.invoke(main, ["blueprint", "list"])
    assert any(line.split()[:3] == ["sales", "1.0.0", "1.0.0"]
               for line in listed.output.splitlines())
    done = run.invoke(main, ["blueprint", "export", str(tmp_path / "out"), "--name", "acme"])
    assert done.exit_code == 0 and "Wrote 4 files" in done.output
    assert load(tmp_path / "out").documents == load(tmp_path / "lib" / "sales").documents
    again = run.invoke(main, ["blueprint", "export", str(tmp_path / "out")])
    assert again.exit_code == 1 and "is not empty" in again.output


def test_a_conflict_stops_apply_and_shows_the_plan(run: CliRunner, workspace: Workspace,
                                                   tmp_path: Path) -> None:
    v1 = write_blueprint(tmp_path / "v1", [ACCOUNT, DEAL])
    assert run.invoke(main, ["blueprint", "apply", str(v1)]).exit_code == 0
    deal = workspace.metadata.get("entity", "deal")
    deal["label"] = {"en": "Our deal"}
    workspace.metadata.replace("entity", "deal", deal)
    workspace.metadata.publish()
    v2_deal = copy.deepcopy(DEAL)
    v2_deal["label"] = {"en": "Their deal"}
    v2 = write_blueprint(tmp_path / "v2", [ACCOUNT, v2_deal], version="1.1")
    refused = run.invoke(main, ["blueprint", "apply", str(v2)])
    assert refused.exit_code == 1
    assert "! entity deal: /label/en: the workspace has 'Our deal'" in refused.output
    assert workspace.metadata.get("entity", "deal")["label"] == {"en": "Our deal"}


def test_dropping_a_field_needs_yes(run: CliRunner, workspace: Workspace,
                                    tmp_path: Path) -> None:
    v1 = write_blueprint(tmp_path / "v1", [ACCOUNT, DEAL])
    assert run.invoke(main, ["blueprint", "apply", str(v1)]).exit_code == 0
    workspace.records.create("deal", {"title": "Old", "region": "north"})
    v2_deal = copy.deepcopy(DEAL)
    del v2_deal["properties"]["region"]
    v2 = write_blueprint(tmp_path / "v2", [ACCOUNT, v2_deal], version="1.1")
    refused = run.invoke(main, ["blueprint", "apply", str(v2)])
    assert refused.exit_code == 1 and "it needs confirming (--yes confirms)" in refused.output
    assert "region" in refused.output and "1" in refused.output
    assert "region" in workspace.catalog().entities["deal"].fields
    done = run.invoke(main, ["blueprint", "apply", str(v2), "--yes"])
    assert done.exit_code == 0, done.output
    assert "region" not in workspace.catalog().entities["deal"].fields


def test_scenarios_report_each_result_with_its_line(run: CliRunner, tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "sales", [ACCOUNT, DEAL, FLOW],
                             extra={"tests/deals.yaml": SCENARIOS})
    results = list(run_scenarios(load(folder)))
    assert [r.passed for r in results] == [True, False]
    assert results[1].file == "tests/deals.yaml:14"
    assert results[1].failures == [
        "line 17: transition was expected to be refused ('no such thing') but it passed"]
    done = run.invoke(main, ["blueprint", "test", str(folder)])
    assert done.exit_code == 1
    assert "PASS  tests/deals.yaml:4: Winning a deal" in done.output
    assert "FAIL  tests/deals.yaml:14: A wrong expectation" in done.output
    assert "1 passed, 1 failed" in done.output
    only = run.invoke(main, ["blueprint", "test", str(folder), "-k", "Winning"])
    assert only.exit_code == 0 and "1 passed, 0 failed" in only.output


def test_a_bad_scenario_file_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = write_blueprint(tmp_path / "sales", [ACCOUNT], extra={
        "tests/bad.yaml": "scenarios:\n  - name: x\n    when:\n      - {fly: away}\n"
                          "    expect: {records: [{record: a}]}\n"})
    with pytest.raises(Exception, match=r"tests/bad.yaml:4: /scenarios/0/when/0"):
        load(folder)


@pytest.mark.parametrize("name", sorted(Library().available()))
def test_every_shipped_blueprint_passes_its_scenarios(name: str) -> None:
    blueprint = Library().get(name)
    results = list(run_scenarios(blueprint))
    assert results, f"{name} has no scenarios"
    failed = [str(r) for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_core_sales_exports_what_it_installs(tmp_path: Path) -> None:
    ws = Workspace(f"sqlite:///{tmp_path / 'ws.db'}", secret="x")
    try:
        ws.blueprints.apply("core-sales")
        ws.blueprints.export(tmp_path / "layer", layer="core-sales")
        ws.blueprints.export(tmp_path / "whole", name="core-sales", version=yaml.safe_load(
            (tmp_path / "layer" / "blueprint.yaml").read_text())["version"])
        shipped = load(Library().get("core-sales").path)
        assert load(tmp_path / "whole").documents == shipped.documents
        assert exported(tmp_path / "layer").keys() == exported(tmp_path / "whole").keys()
    finally:
        ws.close()


def _label_maps(value: object, path: str = "") -> list[tuple[str, dict[str, str]]]:
    """Every map of language to text in a definition (labels, titles, messages)."""
    found: list[tuple[str, dict[str, str]]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("label", "x-label", "title", "message") and isinstance(item, dict):
                found.append((f"{path}/{key}", item))
            else:
                found += _label_maps(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _label_maps(item, f"{path}/{i}")
    return found


@pytest.mark.parametrize("name", sorted(Library().available()))
def test_every_label_of_a_shipped_blueprint_has_english_and_chinese(name: str) -> None:
    blueprint = Library().get(name)
    missing = [f"{kind}/{doc_name}{path}"
               for (kind, doc_name), document in blueprint.documents.items()
               for path, label in _label_maps(document) if not {"en", "zh"} <= set(label)]
    assert not missing, missing
    assert sum(len(_label_maps(d)) for d in blueprint.documents.values()) > 100
