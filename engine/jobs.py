"""Job queues: where an asynchronous rule's run goes once its save has committed.

Two with one interface, ``enqueue(run_id)``:

- :class:`RQJobs` (``REDIS_URL`` set): an RQ job per run on Redis, run by ``blocks
  worker`` processes, retried with exponential backoff (RQ's ``Retry``); the run row in
  the database says what happened, so a job delivered twice acts once.
- :class:`InlineJobs` (no ``REDIS_URL``: the demo, the tests): the run executes at once,
  in the process that committed the save, after the commit; a failure is recorded on
  the run and retried by the next :meth:`AutomationService.tick`.

A worker process opens the workspace named by the job's database URL once, and keeps it:
that cache is the worker's, not the engine's (see :func:`run_job`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .workspace import Workspace

log = logging.getLogger("blockscrm.jobs")
QUEUE = "blocks"


class InlineJobs:
    """Runs each job at once, in this process."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def enqueue(self, run_id: int) -> None:
        try:
            self.ws.automations.execute(run_id)
        except Exception:  # recorded on the run; the next tick tries it again
            log.exception("run %s failed", run_id)


class RQJobs:
    """An RQ job per run, on the Redis at ``url``."""

    def __init__(self, workspace: Workspace, url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.ws = workspace
        self.queue = Queue(QUEUE, connection=Redis.from_url(url))

    def enqueue(self, run_id: int) -> None:
        from rq import Retry

        from .automations import BACKOFF, MAX_ATTEMPTS

        self.queue.enqueue(run_job, self.ws.url, run_id,
                           retry=Retry(max=MAX_ATTEMPTS - 1, interval=list(BACKOFF)),
                           result_ttl=3600, failure_ttl=7 * 24 * 3600,
                           description=f"blocks run {run_id}")


_workspaces: dict[str, Workspace] = {}
_lock = threading.Lock()


def run_job(url: str, run_id: int) -> str:
    """An RQ job's entry point: execute the run on the workspace at ``url``.

    A worker keeps one workspace per database, opened on its first job (opening one
    compiles the metadata: once per process, not once per job).
    """
    from .workspace import Workspace

    with _lock:
        workspace = _workspaces.get(url)
        if workspace is None:
            workspace = _workspaces[url] = Workspace(url)
    status = workspace.automations.execute(run_id)
    if status == "claimed":
        log.info("run %s was already taken", run_id)
    return status


def make_jobs(workspace: Workspace, redis_url: str | None) -> Any:
    """RQ on ``redis_url`` when there is one, else inline."""
    return RQJobs(workspace, redis_url) if redis_url else InlineJobs(workspace)


