"""The `sla` plugin. (Being built.)"""

from __future__ import annotations

from blockscrm.engine import PluginInfo, hookimpl


@hookimpl
def blocks_plugin_info() -> PluginInfo:
    return PluginInfo("sla", "0.1.0", ">=0.1,<1")
