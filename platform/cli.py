"""The ``blocks`` command: set up a workspace, serve it, run its job worker, add users.

Each command reads the configuration the web app reads (environment, then the instance
config file), through :func:`~blockscrm.platform.app.create_app`, so the command line
and the server always agree on which database they mean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from blockscrm.engine import BlocksError, Workspace

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
    blockscrm.platform.wsgi:app)."""
    create_app().run(host=host, port=port, debug=debug)


@main.command()
@click.option("--queue", "queues", multiple=True, default=["default"], show_default=True)
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run jobs from Redis (REDIS_URL) with RQ; without REDIS_URL jobs run inline in the
    web process and no worker is needed."""
    app = create_app()
    try:
        url = app.config.get("REDIS_URL")
        if not url:
            raise click.ClickException("REDIS_URL is not set: jobs run inline, no worker "
                                       "needed")
        from redis import Redis
        from rq import Queue, Worker

        connection = Redis.from_url(url)
        with app.app_context():
            Worker([Queue(q, connection=connection) for q in queues],
                   connection=connection).work(burst=burst)
    finally:
        app.extensions["blocks"].close()


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
