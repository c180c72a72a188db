"""Plugins: found, checked, switched on per workspace, and called so that a failing one is
named and cannot half-write a record.

The plugin manager holds the built-ins and every installed plugin that the group
``blockscrm.plugins`` names and whose supported engine versions include this one; an
incompatible or broken plugin is refused at start-up with its reason (``refused``), not
registered. Each workspace then enables the plugins it uses and keeps their settings
(:class:`PluginService`); a change is published like a definition, so every process sees
it with the next metadata version.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from . import builtins, hookspecs
from .actions import Action
from .definitions import pointer
from .errors import BlocksError, Conflict, DefinitionError, NotFound, PluginFailed
from .fieldtypes import FieldType
from .rules import RuleFunction
from .store import PluginRow, Publish, utcnow

if TYPE_CHECKING:
    from .accounts import User
    from .entities import Entity
    from .workspace import Catalog, Workspace

log = logging.getLogger(__name__)
GROUP = "blockscrm.plugins"
#: The name the engine's own hook implementations are registered under: always on.
BUILTINS = "blockscrm.builtins"


def engine_version() -> Version:
    """The running engine's version, which plugins declare they support."""
    return Version(importlib_metadata.version("blocks-crm"))


@dataclass(frozen=True)
class PluginInfo:
    """What a plugin says of itself (:func:`~.hookspecs.blocks_plugin_info`)."""

    name: str
    version: str
    #: The engine versions it works with, as a version specifier (``">=0.1,<1"``).
    engine: str
    #: The JSON Schema of the settings a workspace keeps for it.
    settings: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    label: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Schedule:
    """Work a plugin does on a schedule: ``run(ws, now)`` at each time ``cron`` names
    (``now``, naive UTC, is the tick's time: a test can inject it)."""

    name: str
    cron: str
    run: Callable[[Workspace, dt.datetime], Any]


@dataclass(frozen=True)
class Panel:
    """A panel of the record's 360° view: ``render(ws, entity, record, user)`` → HTML."""

    name: str
    label: Mapping[str, str]
    render: Callable[[Workspace, Entity, Mapping[str, Any], User], str]


@dataclass(frozen=True)
class CardType:
    """A dashboard card type: ``render(ws, card, user)`` → HTML, computed as the viewer."""

    name: str
    label: Mapping[str, str]
    render: Callable[[Workspace, Mapping[str, Any], User], str]


@dataclass(frozen=True)
class PluginState:
    """One plugin as a workspace has it: enabled or not, and its settings."""

    enabled: bool
    settings: Mapping[str, Any]


# --- finding and checking plugins -------------------------------------------------------------


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, also knowing what each registered plugin said of itself
    (``infos``) and why each refused one was refused (``refused``)."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.infos: dict[str, PluginInfo] = {}
        self.refused: dict[str, str] = {}


def create_plugin_manager(*, load_entry_points: bool = True) -> PluginManager:
    """A plugin manager with the engine's hooks, its built-ins and the installed plugins.

    ``check_pending()`` makes a misspelled hook implementation fail loudly.
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(builtins, name=BUILTINS)
    if load_entry_points:
        for entry in importlib_metadata.entry_points(group=GROUP):
            try:
                plugin = entry.load()
            except Exception as exc:  # any import error: refuse, do not crash
                refuse(pm, entry.name, f"it does not load: {type(exc).__name__}: {exc}")
                continue
            add_plugin(pm, plugin, entry.name)
    pm.check_pending()
    return pm


def add_plugin(pm: PluginManager, plugin: Any, fallback_name: str = "") -> str | None:
    """Register ``plugin`` (a module or object with hook implementations) when it says who it
    is and supports this engine; answer its name, or None when it is refused."""
    info_hook = getattr(plugin, "blocks_plugin_info", None)
    name = fallback_name or getattr(plugin, "__name__", repr(plugin))
    if info_hook is None:
        refuse(pm, name, "it does not say who it is (no blocks_plugin_info hook)")
        return None
    try:
        info = info_hook()
    except Exception as exc:  # a plugin's own bug: refuse it
        refuse(pm, name, f"blocks_plugin_info failed: {type(exc).__name__}: {exc}")
        return None
    try:
        supported = SpecifierSet(info.engine)
    except InvalidSpecifier as exc:
        refuse(pm, info.name, f"its supported engine versions are not a version "
                              f"specifier: {exc}")
        return None
    running = engine_version()
    if not supported.contains(running, prereleases=True):
        refuse(pm, info.name, f"version {info.version} supports the engine "
                              f"{info.engine}; this is {running}")
        return None
    if pm.get_plugin(info.name) is not None or info.name == BUILTINS:
        refuse(pm, info.name, "another plugin has that name")
        return None
    pm.register(plugin, name=info.name)
    pm.infos[info.name] = info
    return info.name


def refuse(pm: PluginManager, name: str, reason: str) -> None:
    """Keep the plugin out, and say why where an operator looks: the log and
    ``blocks plugin list``."""
    log.error("plugin %s refused: %s", name, reason)
    pm.refused[name] = reason


# --- registries -----------------------------------------------------------------------------


Named = TypeVar("Named", FieldType, RuleFunction, Action, "CardType")


def _by_name(answers: list[list[Named]], what: str) -> dict[str, Named]:
    """One registry from every plugin's answer to a hook; a name given twice is an error."""
    registry: dict[str, Named] = {}
    for items in answers:
        for item in items:
            if item.name in registry:
                raise DefinitionError({"/": [f"{what} {item.name!r} is registered twice"]})
            registry[item.name] = item
    return registry


@dataclass
class Registries:
    """What the enabled plugins (built-ins first) add: field types, rule functions,
    actions and triggers, each by name, and which plugin added each (``owners``, keyed by
    ``(kind, name)``), so that a failure can name it."""

    field_types: dict[str, FieldType]
    rule_functions: dict[str, RuleFunction]
    actions: dict[str, Action]
    triggers: dict[str, Any]
    card_types: dict[str, CardType]
    owners: dict[tuple[str, str], str]

    @classmethod
    def collect(cls, pm: pluggy.PluginManager, enabled: frozenset[str]) -> Registries:
        owners: dict[tuple[str, str], str] = {}

        def answers(hook: str, kind: str) -> list[Any]:
            pairs = call_each(pm, hook, enabled)
            owners.update({(kind, item.name): plugin for plugin, items in pairs
                           for item in items})
            return [items for _, items in pairs]

        return cls(_by_name(answers("blocks_field_types", "field type"), "field type"),
                   _by_name(answers("blocks_rule_functions", "rule function"),
                            "rule function"),
                   _by_name(answers("blocks_actions", "action"), "action"),
                   _by_name(answers("blocks_triggers", "trigger"), "trigger"),
                   _by_name(answers("blocks_dashboard_cards", "card type"), "card type"),
                   owners)


# --- calling hooks ----------------------------------------------------------------------------


def implementations(pm: pluggy.PluginManager, hook: str, enabled: frozenset[str]
                    ) -> Iterator[tuple[str, Callable[..., Any], list[str]]]:
    """Each implementation of ``hook`` whose plugin is enabled (the built-ins always), in
    pluggy's calling order: ``(plugin name, function, its argument names)``."""
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        if impl.plugin_name == BUILTINS or impl.plugin_name in enabled:
            yield impl.plugin_name, impl.function, list(impl.argnames)


def call_hook(pm: pluggy.PluginManager, hook: str, enabled: frozenset[str],
              **kwargs: Any) -> list[Any]:
    """Call ``hook`` on the enabled plugins, one implementation at a time, so that a
    failure names its plugin (pluggy's own call would raise the bare exception); each gets
    the arguments it asks for. Answers the results that are not None.

    A :class:`BlocksError` a plugin raises on purpose (a ``ValidationError`` refusing a
    write) goes through as it is; anything else becomes :class:`PluginFailed`.
    """
    return [result for _, result in call_each(pm, hook, enabled, **kwargs)]


def call_each(pm: pluggy.PluginManager, hook: str, enabled: frozenset[str],
              **kwargs: Any) -> list[tuple[str, Any]]:
    """:func:`call_hook`, answering each result with the name of its plugin."""
    results = []
    for plugin, function, argnames in implementations(pm, hook, enabled):
        try:
            result = function(**{k: kwargs[k] for k in argnames})
        except BlocksError:
            raise
        except Exception as exc:  # contained: named, logged, rolled back
            log.exception("plugin %s failed in %s", plugin, hook)
            raise PluginFailed(plugin, hook, exc) from exc
        if result is not None:
            results.append((plugin, result))
    return results


# --- a workspace's plugins --------------------------------------------------------------------


class PluginService:
    """The plugins of one workspace: which are enabled, their settings, and their hooks."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    @property
    def pm(self) -> PluginManager:
        return self.ws.pm

    def installed(self) -> list[dict[str, Any]]:
        """Every plugin found: registered ones with their state here, refused ones with
        why, by name."""
        states = self.states()
        found = [{"name": name, "version": info.version, "engine": info.engine,
                  "label": dict(info.label), "description": info.description,
                  "enabled": states.get(name, PluginState(False, {})).enabled,
                  "refused": None}
                 for name, info in self.pm.infos.items()]
        found += [{"name": name, "version": None, "engine": None, "label": {},
                   "description": "", "enabled": False, "refused": reason}
                  for name, reason in self.pm.refused.items()]
        return sorted(found, key=lambda p: p["name"])

    def states(self, conn: sa.Connection | None = None) -> Mapping[str, PluginState]:
        """Each plugin's state in this workspace, as of the published metadata."""
        return self.ws.catalog(conn).plugins

    def enabled(self, conn: sa.Connection | None = None) -> frozenset[str]:
        return frozenset(n for n, s in self.states(conn).items() if s.enabled)

    def settings(self, name: str, conn: sa.Connection | None = None) -> Mapping[str, Any]:
        """An enabled plugin's settings here.

        :raises NotFound: the plugin is not enabled in this workspace.
        """
        state = self.states(conn).get(name)
        if state is None or not state.enabled:
            raise NotFound(f"the plugin {name!r} is not enabled in this workspace")
        return state.settings

    def enable(self, name: str, settings: Mapping[str, Any] | None = None, *,
               actor: str | None = None) -> None:
        """Enable a plugin here, with its settings (checked against its schema; None keeps
        the ones it had)."""
        self._change(name, True, settings, actor)

    def disable(self, name: str, *, actor: str | None = None) -> None:
        """Disable a plugin here: its hooks are no longer called for this workspace."""
        self._change(name, False, None, actor)

    def _change(self, name: str, enabled: bool, settings: Mapping[str, Any] | None,
                actor: str | None) -> None:
        info = self.pm.infos.get(name)
        if info is None:
            reason = self.pm.refused.get(name)
            raise NotFound(f"the plugin {name!r} was refused: {reason}" if reason
                           else f"no plugin named {name!r} is installed")
        with self.ws.transaction() as conn:
            row = conn.execute(sa.select(PluginRow).where(PluginRow.name == name)
                               ).mappings().first()
            kept = settings if settings is not None else (row["settings"] if row else {})
            if enabled:
                check_settings(info, kept)
                self._check_with_workspace(name, kept)
            else:
                self._check_nothing_needs(name, conn)
            values = {"enabled": enabled, "settings": dict(kept), "changed_at": utcnow(),
                      "changed_by": actor}
            if row is None:
                conn.execute(sa.insert(PluginRow).values(name=name, **values))
            else:
                conn.execute(sa.update(PluginRow).where(PluginRow.name == name).values(**values))
            # A publish of its own, so that every process reads the change with the next
            # metadata version, and the history shows it.
            conn.execute(sa.insert(Publish).values(
                published_at=utcnow(), published_by=actor,
                plan={"definitions": [], "plugins": [
                    {"name": name, "action": "enable" if enabled else "disable"}]}))

    def owner(self, kind: str, name: str) -> str:
        """The plugin that added a field type, rule function, action or trigger."""
        return self.ws.registries.owners.get((kind, name), "?")

    def implemented(self, hook: str) -> bool:
        """Whether any installed plugin implements ``hook`` (the built-ins aside): when
        none does, a write asks nothing more."""
        return any(impl.plugin_name != BUILTINS
                   for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def _check_with_workspace(self, name: str, settings: Mapping[str, Any]) -> None:
        """Ask the plugin whether its settings fit this workspace (its entities, fields)."""
        for plugin, function, argnames in implementations(
                self.pm, "blocks_check_settings", frozenset({name})):
            if plugin != name:
                continue
            args = {"ws": self.ws, "settings": settings}
            try:
                problems = function(**{k: args[k] for k in argnames})
            except BlocksError:
                raise
            except Exception as exc:
                raise PluginFailed(name, "blocks_check_settings", exc) from exc
            if problems:
                raise DefinitionError(problems, f"The settings of the plugin {name} do not fit "
                                                "this workspace: " + "; ".join(
                                                    f"{k}: {m}" for k, m in problems))

    def _check_nothing_needs(self, name: str, conn: sa.Connection) -> None:
        """Refuse to disable a plugin the published definitions stand on (a field of its
        type, a rule on its action or trigger, a card of its type): without it they would
        not compile, and the workspace could not read its own metadata.

        :raises Conflict: naming what uses it.
        """
        catalog = self.ws.catalog(conn)
        left = Registries.collect(self.pm, self.enabled(conn) - {name})
        try:
            self.ws.compile(dict(catalog.documents), registries=left)
        except DefinitionError as exc:
            uses = "; ".join(f"{k}: {', '.join(m)}" for k, m in exc.errors.items())
            raise Conflict(f"the plugin {name!r} cannot be disabled while the published "
                           f"definitions use what it adds ({uses}); change them first") from None

    def active(self, hook: str, catalog: Catalog) -> bool:
        """Whether a plugin enabled in ``catalog`` implements ``hook``."""
        if not self.implemented(hook):
            return False
        return any(plugin != BUILTINS for plugin, _, _ in implementations(
            self.pm, hook, frozenset(n for n, s in catalog.plugins.items() if s.enabled)))

    def call(self, hook: str, /, *, catalog: Catalog | None = None, **kwargs: Any
             ) -> list[Any]:
        """Call ``hook`` on the plugins enabled here (see :func:`call_hook`), as of
        ``catalog`` when given (a write checked before its transaction), else as read in
        the ``conn`` among the arguments, else now."""
        if not self.implemented(hook):
            return []
        states = catalog.plugins if catalog is not None else self.states(kwargs.get("conn"))
        enabled = frozenset(n for n, s in states.items() if s.enabled)
        return call_hook(self.pm, hook, enabled, **kwargs)

    def after_commit(self, entity: Entity, action: str, record: Mapping[str, Any],
                     previous: Mapping[str, Any] | None, conn: sa.Connection) -> None:
        """Tell the enabled plugins of a write once it commits; a failure there is logged
        with the plugin's name (the write stands)."""
        if not self.implemented("blocks_after_commit"):
            return
        enabled = self.enabled(conn)

        def tell() -> None:
            try:
                call_hook(self.pm, "blocks_after_commit", enabled, ws=self.ws, entity=entity,
                          action=action, record=record, previous=previous)
            except BlocksError as exc:
                log.error("after the commit of %s %s: %s", entity.name, record.get("id"), exc)

        self.ws.after_commit(tell)

    def run_schedules(self, now: dt.datetime) -> int:
        """Run each enabled plugin's schedules that are due (once per due time, whichever
        process gets there first); answer how many ran."""
        from croniter import croniter

        from .automations import PLUGIN_TIMER
        from .store import timer_table

        ran = 0
        enabled = self.enabled()
        for plugin, function, argnames in implementations(self.pm, "blocks_schedules",
                                                          enabled):
            if plugin == BUILTINS:
                continue
            for schedule in function(**({"ws": self.ws} if "ws" in argnames else {})) or ():
                key = f"{PLUGIN_TIMER}{plugin}:{schedule.name}"
                with self.ws.transaction() as conn:
                    timer = conn.execute(sa.select(timer_table).where(
                        timer_table.c.automation == key)).mappings().first()
                    upcoming = croniter(schedule.cron, now).get_next(dt.datetime)
                    if timer is None:
                        conn.execute(sa.insert(timer_table).values(
                            automation=key, record_id="", due_at=upcoming, fired=False))
                        continue
                    if not croniter.match(schedule.cron, timer["due_at"]):
                        # its cron changed (a workspace's setting): plan by the new one
                        conn.execute(sa.update(timer_table).where(
                            timer_table.c.id == timer["id"]).values(due_at=upcoming))
                        continue
                    if timer["due_at"] > now:
                        continue
                    taken = conn.execute(sa.update(timer_table).where(
                        timer_table.c.id == timer["id"], timer_table.c.due_at == timer["due_at"])
                        .values(due_at=upcoming))
                    if taken.rowcount != 1:
                        continue  # another process took this one
                try:
                    schedule.run(self.ws, now)
                except BlocksError as exc:
                    log.error("plugin %s, schedule %s: %s", plugin, schedule.name, exc)
                except Exception:  # contained: the next schedule still runs
                    log.exception("plugin %s failed in its schedule %s", plugin, schedule.name)
                ran += 1
        return ran


def check_settings(info: PluginInfo, settings: Mapping[str, Any]) -> None:
    """Refuse settings that break the plugin's schema, each problem by JSON Pointer.

    :raises DefinitionError:
    """
    errors = [(pointer(*e.absolute_path) or "/", e.message)
              for e in Draft202012Validator(info.settings).iter_errors(settings)]
    if errors:
        raise DefinitionError(errors, f"The settings of the plugin {info.name} are invalid: "
                                      + "; ".join(f"{k}: {m}" for k, m in errors))


def load_states(conn: sa.Connection) -> dict[str, PluginState]:
    """Every plugin's state in the workspace, as stored."""
    return {row.name: PluginState(row.enabled, row.settings or {})
            for row in conn.execute(sa.select(PluginRow.name, PluginRow.enabled,
                                              PluginRow.settings))}
