"""Tests of the first-party plugins, one module each (a package, like ``tests/api``)."""
