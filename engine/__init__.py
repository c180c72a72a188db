"""The Blocks CRM engine: metadata, records, queries and rules, with no HTTP in it.

Open a :class:`Workspace` on a database URL; everything else hangs off it.
"""

from .entities import Entity, Field
from .errors import (
    BlocksError,
    Conflict,
    DefinitionError,
    NotFound,
    PermissionDenied,
    QueryError,
    ValidationError,
)
from .fieldtypes import FieldType
from .hookspecs import hookimpl
from .plan import Plan, Step
from .query import Count, Page, Query
from .records import BulkResult
from .workspace import Catalog, Workspace

__all__ = [
    "BlocksError",
    "BulkResult",
    "Catalog",
    "Conflict",
    "Count",
    "DefinitionError",
    "Entity",
    "Field",
    "FieldType",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Plan",
    "Query",
    "QueryError",
    "Step",
    "ValidationError",
    "Workspace",
    "hookimpl",
]
