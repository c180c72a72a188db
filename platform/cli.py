"""The ``blocks`` command: set up a workspace, serve it, run its job worker, add users.

Each command reads the configuration the web app reads (environment, then the instance
config file), through :func:`~blockscrm.platform.app.create_app`, so the command line
and the server always agree on which database they mean.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from blockscrm.engine import BlocksError, Workspace
from blockscrm.engine.blueprints import BlueprintPlan, Library
from blockscrm.engine.jobs import QUEUE, InlineJobs

from .app import create_app
from .extension import current_workspace


@contextmanager
def open_workspace() -> Iterator[Workspace]:
    """The configured workspace (as the web app reads the configuration), closed when the
    command is done with it; a plugin's own commands open theirs with it too."""
    app = create_app()
    with app.app_context():
        workspace = current_workspace()
    try:
        yield workspace
    finally:
        workspace.close()


@click.group()
@click.version_option(package_name="blocks-crm")
def main() -> None:
    """Blocks CRM: a low-code CRM platform."""


@main.command()
def init() -> None:
    """Create the workspace in DATABASE_URL (a SQLite file by default)."""
    with open_workspace() as ws:
        click.echo(f"Workspace ready: {ws.engine.url.render_as_string(hide_password=True)}")


#: The demo's accounts besides admin: ``(username, role, manager)``, all in team sales.
DEMO_USERS = (("mia", "sales_manager", None), ("ann", "sales_rep", "mia"),
              ("bob", "sales_rep", "mia"), ("dora", "director", None))


@main.command()
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--database", default="blocks-demo.db", show_default=True,
              type=click.Path(dir_okay=False), help="The demo's SQLite file (kept between runs).")
@click.option("--blueprint", "blueprint_name", default="core-sales", show_default=True)
@click.option("--no-serve", is_flag=True, help="Set the demo up, then stop.")
def demo(port: int, database: str, blueprint_name: str, no_serve: bool) -> None:
    """A SQLite workspace with the core sales blueprint and its sample data, served on
    127.0.0.1 with jobs run inline. The admin's password is BLOCKS_ADMIN_PASSWORD when
    set, else generated and printed; the other demo accounts share it."""
    password = os.environ.get("BLOCKS_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    url = f"sqlite:///{Path(database).resolve()}"
    app = create_app({"DATABASE_URL": url, "REDIS_URL": None})
    ws: Workspace = app.extensions["blocks"]
    ws.jobs = InlineJobs(ws)  # the demo needs no Redis, whatever the environment says
    try:
        started = time.perf_counter()
        click.echo(f"Workspace {database}: applying {blueprint_name}…")
        plan = ws.blueprints.apply(blueprint_name, confirm=True, actor="demo")
        click.echo(f"  {len(plan.definitions)} definitions changed")
        _demo_accounts(ws, password)
        click.echo("Loading sample data (automations run as each record arrives)…")
        plan = ws.blueprints.apply(blueprint_name, with_data=True, confirm=True, actor="demo")
        loaded = sum(sum(counts.values()) for counts in plan.data.values())
        click.echo(f"  {loaded} sample records loaded "
                   f"(ready in {time.perf_counter() - started:.1f} s)")
    except BlocksError as exc:
        ws.close()
        raise _blueprint_errors(exc) from None
    click.echo(f"\nBlocks CRM demo: http://127.0.0.1:{port}/app/")
    click.echo(f"Accounts: admin (everything), {', '.join(f'{u} ({r})' for u, r, _ in DEMO_USERS)}")
    click.echo(f"Password for each: {password}\n")
    if no_serve:
        ws.close()
        return
    threading.Thread(target=_fire_timers, args=(ws, 15.0), daemon=True).start()
    app.run(host="127.0.0.1", port=port, use_reloader=False)


def _demo_accounts(ws: Workspace, password: str) -> None:
    """admin and the demo users, with ``password`` (set again on every run, so the
    password printed is the one that works)."""
    if "sales" not in ws.accounts.teams():
        ws.accounts.create_team("sales", label={"en": "Sales", "zh": "销售"})
    existing = {u.username for u in ws.accounts.users()}
    for username, role, manager in (("admin", "admin", None), *DEMO_USERS):
        if username in existing:
            ws.accounts.set_password(username, password)
        else:
            ws.accounts.create_user(username, password=password, roles=[role],
                                    teams=[] if role == "admin" else ["sales"], manager=manager,
                                    email=f"{username}@demo.blocks.test",
                                    display_name=username.capitalize())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Reload on code changes; show tracebacks.")
def serve(host: str, port: int, debug: bool) -> None:
    """Serve the screens and the API with Werkzeug (production: gunicorn on
    blockscrm.platform.wsgi:app). Without REDIS_URL it also fires the timers."""
    app = create_app()
    if not app.config.get("REDIS_URL"):
        threading.Thread(target=_fire_timers, args=(app.extensions["blocks"], 15.0),
                         daemon=True).start()
    app.run(host=host, port=port, debug=debug)


@main.command()
@click.option("--queue", "queues", multiple=True, default=[QUEUE], show_default=True)
@click.option("--burst", is_flag=True, help="Stop once the queues are empty (no timers).")
@click.option("--tick", default=15.0, show_default=True,
              help="Seconds between two looks for due timers and stalled runs.")
def worker(queues: tuple[str, ...], burst: bool, tick: float) -> None:
    """Run the automations' jobs from Redis (REDIS_URL) with RQ, and fire due timers.

    Jobs run in this process (RQ's SimpleWorker): the workspace's compiled metadata is
    kept between jobs instead of being rebuilt in a fork for each. Without REDIS_URL jobs
    run inline in the web process and no worker is needed.
    """
    app = create_app()
    ws = app.extensions["blocks"]
    try:
        url = app.config.get("REDIS_URL")
        if not url:
            raise click.ClickException("REDIS_URL is not set: jobs run inline, no worker "
                                       "needed")
        from redis import Redis
        from rq import Queue, SimpleWorker

        if not burst:
            threading.Thread(target=_fire_timers, args=(ws, tick), daemon=True).start()
        connection = Redis.from_url(url)
        SimpleWorker([Queue(q, connection=connection) for q in queues],
                     connection=connection).work(burst=burst)
    finally:
        ws.close()


def _fire_timers(ws: Workspace, every: float) -> None:
    """Fire due timers and hand stalled runs out again, for as long as the worker lives
    (every worker may: a timer fires once)."""
    while True:
        try:
            ws.automations.tick()
        except Exception:  # logged; the next tick tries again
            logging.getLogger("blockscrm.jobs").exception("tick failed")
        time.sleep(every)


@main.group()
def jobs() -> None:
    """See and re-run the automations' runs."""


@jobs.command("list")
@click.argument("entity")
@click.option("--status", type=click.Choice(["queued", "running", "done", "failed",
                                             "skipped", "cut"]))
@click.option("--limit", default=20, show_default=True)
def list_jobs(entity: str, status: str | None, limit: int) -> None:
    """The newest runs of ENTITY's rules: id, status, rule, record, error."""
    with open_workspace() as ws:
        for run in ws.automations.runs(entity, status=status, limit=limit):
            click.echo(f"{run['id']:>8}  {run['status']:<8} {run['automation']:<24} "
                       f"{run['record_id'] or '-':<26} {run['error'] or ''}")


@jobs.command("rerun")
@click.argument("run_id", type=int)
def rerun_job(run_id: int) -> None:
    """Queue the failed run RUN_ID again."""
    try:
        with open_workspace() as ws:
            ws.automations.rerun(run_id)
            click.echo(f"Run {run_id}: {ws.automations.run(run_id)['status']}")
    except BlocksError as exc:
        raise click.ClickException(exc.message) from None


@main.command("dry-run")
@click.argument("automation")
@click.option("--limit", default=20, show_default=True)
def dry_run(automation: str, limit: int) -> None:
    """What AUTOMATION would do to the records its condition selects now (writes nothing)."""
    try:
        with open_workspace() as ws:
            preview = ws.automations.dry_run(automation, limit=limit)
    except BlocksError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{preview['automation']} ({preview['why']}): {preview['matches']} records")
    for item in preview["items"]:
        actions = "; ".join(json.dumps(a, sort_keys=True, default=str) for a in item["actions"])
        click.echo(f"  {item['record']['id']}: {actions}")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 8 characters; asked for when not given.")
@click.option("--role", "roles", multiple=True,
              help="admin, or a published role definition; repeat for several.")
@click.option("--team", "teams", multiple=True, help="A team to join; repeat for several.")
@click.option("--email")
@click.option("--display-name")
@click.option("--language", default="en", show_default=True)
@click.option("--manager", help="The username of the user's manager.")
def create_user(username: str, password: str, roles: tuple[str, ...], teams: tuple[str, ...],
                email: str | None, display_name: str | None, language: str,
                manager: str | None) -> None:
    """Add a user who can log in with PASSWORD."""
    try:
        with open_workspace() as ws:
            created = ws.accounts.create_user(
                username, password=password, roles=roles, teams=teams, email=email,
                display_name=display_name, language=language, manager=manager)
    except BlocksError as exc:
        details = getattr(exc, "errors", None)
        message = "; ".join(f"{k}: {', '.join(v)}" for k, v in details.items()) \
            if details else exc.message
        raise click.ClickException(message) from None
    roles_text = ", ".join(sorted(created.roles)) or "no role"
    click.echo(f"Created user {created.username} ({roles_text}).")


@main.group()
def blueprint() -> None:
    """Plan, apply, export and test blueprints (folders of YAML definitions)."""


def _blueprint_errors(exc: BlocksError) -> click.ClickException:
    plan = getattr(exc, "plan", None)
    if isinstance(plan, BlueprintPlan):
        hint = " (--yes confirms)" if "confirming" in exc.message else ""
        return click.ClickException(f"{exc.message}{hint}\n\n{plan}")
    return click.ClickException(exc.message)


@blueprint.command("list")
def list_blueprints() -> None:
    """The blueprints installed here and those available, with their versions."""
    with open_workspace() as ws:
        installed = ws.blueprints.installed()
        available = ws.blueprints.library.available()
    rows = [(name, installed.get(name, {}).get("version", "-"),
             available[name].version if name in available else "-",
             (available.get(name) and available[name].label.get("en"))
             or installed[name]["manifest"]["label"].get("en", ""))
            for name in sorted(set(installed) | set(available))]
    if not rows:
        click.echo("No blueprints installed or available.")
        return
    click.echo(f"{'NAME':<24} {'INSTALLED':<10} {'AVAILABLE':<10} LABEL")
    for name, have, offered, label in rows:
        click.echo(f"{name:<24} {have:<10} {offered:<10} {label}")


@blueprint.command("plan")
@click.argument("name_or_path")
@click.option("--with-data", is_flag=True, help="Plan loading the sample records too.")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON, for tools.")
def plan_blueprint(name_or_path: str, with_data: bool, as_json: bool) -> None:
    """Everything applying NAME_OR_PATH would change here (changes nothing)."""
    try:
        with open_workspace() as ws:
            plan = ws.blueprints.plan(name_or_path, with_data=with_data)
            click.echo(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False, default=str)
                       if as_json else str(plan))
    except BlocksError as exc:
        raise _blueprint_errors(exc) from None


@blueprint.command("apply")
@click.argument("name_or_path")
@click.option("--with-data", is_flag=True, help="Load the blueprint's sample records too.")
@click.option("--yes", "confirm", is_flag=True,
              help="Confirm destructive steps (dropping fields or entities).")
def apply_blueprint(name_or_path: str, with_data: bool, confirm: bool) -> None:
    """Apply NAME_OR_PATH, and the blueprints it requires, in one publish."""
    try:
        with open_workspace() as ws:
            plan = ws.blueprints.apply(name_or_path, with_data=with_data, confirm=confirm)
    except BlocksError as exc:
        raise _blueprint_errors(exc) from None
    click.echo(str(plan))
    if not plan.empty:
        click.echo("\nApplied.")


@blueprint.command("export")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--layer", help="Only one layer: an installed blueprint's name, or "
                              "'workspace' for what this workspace changed on top.")
@click.option("--name", help="The exported blueprint's name (default: the folder's).")
@click.option("--version", "version", help="Its version (default 1.0.0).")
@click.option("--force", is_flag=True, help="Replace the definitions of an earlier export.")
def export_blueprint(folder: str, layer: str | None, name: str | None, version: str | None,
                     force: bool) -> None:
    """Write this workspace's configuration to FOLDER as a blueprint."""
    try:
        with open_workspace() as ws:
            written = ws.blueprints.export(folder, layer=layer, name=name, version=version,
                                           force=force)
    except BlocksError as exc:
        raise _blueprint_errors(exc) from None
    click.echo(f"Wrote {len(written)} files to {folder}.")


@blueprint.command("test")
@click.argument("name_or_path")
@click.option("-k", "select", help="Only the scenarios whose name contains this text.")
def test_blueprint(name_or_path: str, select: str | None) -> None:
    """Run NAME_OR_PATH's scenarios, each in a throwaway workspace."""
    from blockscrm.engine.blueprints.scenarios import run_scenarios

    library = Library()
    try:
        chosen = library.get(name_or_path)
        results = []
        for result in run_scenarios(chosen, library, select=select):
            click.echo(str(result))
            results.append(result)
    except BlocksError as exc:
        raise _blueprint_errors(exc) from None
    failed = sum(not r.passed for r in results)
    click.echo(f"\n{len(results) - failed} passed, {failed} failed "
               f"({sum(r.seconds for r in results):.1f} s).")
    if failed or not results:
        sys.exit(1)


@main.group()
def plugin() -> None:
    """The installed plugins, and which this workspace uses."""


@plugin.command("list")
def list_plugins() -> None:
    """Every installed plugin: its version, whether this workspace enabled it, and why one
    was refused."""
    with open_workspace() as ws:
        found = ws.plugins.installed()
    if not found:
        click.echo("No plugins are installed.")
    for p in found:
        if p["refused"]:
            click.echo(f"{p['name']:<16} refused: {p['refused']}")
        else:
            state = "enabled" if p["enabled"] else "disabled"
            click.echo(f"{p['name']:<16} {p['version']:<10} {state:<9} engine {p['engine']}")


@plugin.command("enable")
@click.argument("name")
@click.option("--settings", "settings_json", help="Its settings, as a JSON object.")
def enable_plugin(name: str, settings_json: str | None) -> None:
    """Enable NAME in this workspace (with --settings, checked against its schema)."""
    settings = None
    if settings_json is not None:
        try:
            settings = json.loads(settings_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--settings") from None
    with open_workspace() as ws:
        try:
            ws.plugins.enable(name, settings)
        except BlocksError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Enabled {name}.")


@plugin.command("disable")
@click.argument("name")
def disable_plugin(name: str) -> None:
    """Disable NAME in this workspace: its hooks are no longer called here."""
    with open_workspace() as ws:
        try:
            ws.plugins.disable(name)
        except BlocksError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Disabled {name}.")


def _add_plugin_commands() -> None:
    """The command-line commands every installed plugin adds (``blocks_cli_commands``)."""
    from blockscrm.engine.plugins import create_plugin_manager, implementations

    pm = create_plugin_manager()
    for _, hook, _ in implementations(pm, "blocks_cli_commands", frozenset(pm.infos)):
        for command in hook() or ():
            main.add_command(command)


_add_plugin_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
