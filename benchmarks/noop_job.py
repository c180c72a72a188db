"""The automation benchmark's baseline job: a bare RQ job that does nothing.

It lives in a module of its own so that a worker process can import it by name (the
benchmark puts this folder on the workers' ``PYTHONPATH``).
"""


def noop() -> None:
    """Nothing: what RQ itself costs per job is all the baseline measures."""
