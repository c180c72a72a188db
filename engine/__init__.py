"""The Blocks CRM engine: metadata, records, queries and rules, with no HTTP in it.

Open a :class:`Workspace` on a database URL; everything else hangs off it.
"""

from .access import Grant
from .accounts import User
from .entities import Entity, Field
from .errors import (
    ActionFailed,
    AuthenticationFailed,
    BlocksError,
    Conflict,
    DefinitionError,
    Locked,
    NotFound,
    PermissionDenied,
    PluginFailed,
    QueryError,
    TooManyAttempts,
    ValidationError,
)
from .fieldtypes import FieldType
from .hookspecs import hookimpl
from .plan import Plan, Step
from .plugins import CardType, Panel, PluginInfo, Schedule
from .query import Count, Page, Query
from .records import BulkResult
from .workspace import Catalog, Workspace

__all__ = [
    "ActionFailed",
    "AuthenticationFailed",
    "BlocksError",
    "BulkResult",
    "CardType",
    "Catalog",
    "Conflict",
    "Count",
    "DefinitionError",
    "Entity",
    "Field",
    "FieldType",
    "Grant",
    "Locked",
    "NotFound",
    "Page",
    "Panel",
    "PermissionDenied",
    "Plan",
    "PluginFailed",
    "PluginInfo",
    "Query",
    "QueryError",
    "Schedule",
    "Step",
    "TooManyAttempts",
    "User",
    "ValidationError",
    "Workspace",
    "hookimpl",
]
