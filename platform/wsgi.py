"""The WSGI application for production servers: ``gunicorn blockscrm.platform.wsgi:app``.

Configured from the environment and the instance config file (see ``create_app``).
"""

from .app import create_app

app = create_app()
