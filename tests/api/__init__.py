"""REST API tests (a package, so this folder's conftest does not take the name of
``tests/conftest.py``, which other tests import from)."""
