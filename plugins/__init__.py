"""The first-party plugins: features built on the engine's public hooks only, exactly as a
third-party plugin would be, which keeps the core small. Each is found through the
``blockscrm.plugins`` entry points (``setup.cfg``) and does nothing in a workspace until
it is enabled there (``blocks plugin enable NAME --settings '{…}'``)."""
