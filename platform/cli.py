"""The ``blocks`` command: set up a workspace, serve it, run its job worker, add users.

Each command reads the configuration the web app reads (environment, then the instance
config file), through :func:`~blockscrm.platform.app.create_app`, so the command line
and the server always agree on which database they mean.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from blockscrm.engine import BlocksError, Workspace
from blockscrm.engine.jobs import QUEUE

from .app import create_app
from .extension import current_workspace


@contextmanager
def _workspace() -> Iterator[Workspace]:
    """The configured workspace, closed when the command is done with it."""
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
    with _workspace() as ws:
        click.echo(f"Workspace ready: {ws.engine.url.render_as_string(hide_password=True)}")


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
    with _workspace() as ws:
        for run in ws.automations.runs(entity, status=status, limit=limit):
            click.echo(f"{run['id']:>8}  {run['status']:<8} {run['automation']:<24} "
                       f"{run['record_id'] or '-':<26} {run['error'] or ''}")


@jobs.command("rerun")
@click.argument("run_id", type=int)
def rerun_job(run_id: int) -> None:
    """Queue the failed run RUN_ID again."""
    try:
        with _workspace() as ws:
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
        with _workspace() as ws:
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
        with _workspace() as ws:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
