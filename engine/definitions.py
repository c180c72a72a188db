"""Definition kinds and their meta-schemas: no definition is stored that fails its kind's.

Meta-schemas are JSON Schema 2020-12 documents shipped in ``metaschemas/``; errors are
keyed by the JSON Pointer of the offending value, as DESIGN.md's contract says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

from .errors import DefinitionError, NotFound

KINDS = ("entity", "form", "view", "workflow", "automation", "approval", "dashboard", "role")
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts) or "/"


@cache
def schema_file(name: str) -> dict[str, Any]:
    """One of the JSON Schemas shipped in ``metaschemas/`` (a kind's, or a blueprint's
    files')."""
    text = resources.files(__package__).joinpath("metaschemas", f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def meta_schema(kind: str) -> dict[str, Any]:
    """The meta-schema of a definition kind, as shipped with the engine."""
    if kind not in KINDS:
        raise NotFound(f"no definition kind named {kind!r}")
    return schema_file(kind)


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(meta_schema(kind), format_checker=FormatChecker())


def _describe(error: SchemaError) -> str:
    """A short message naming the rule broken, for a person reading a designer form."""
    rule = error.validator
    if rule == "additionalProperties":
        return "is not a known keyword here; " + error.message
    if rule == "required":
        return error.message
    return f"{rule}: {error.message}"


def iter_meta_errors(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(json_pointer, message)`` for each way ``document`` breaks its meta-schema."""
    kind = document.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        yield "/kind", f"must be one of {', '.join(KINDS)}"
        return
    for error in _validator(kind).iter_errors(document):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
            for key in error.instance:
                if key not in allowed and not any(p.search(key) for p in patterns):
                    yield pointer(*path, key), "is not a known keyword here"
            continue
        yield pointer(*path), _describe(error)


def check_envelope(document: Any) -> None:
    """Raise :class:`DefinitionError` unless ``document`` passes its kind's meta-schema."""
    if not isinstance(document, Mapping):
        raise DefinitionError({"/": ["a definition is a JSON object"]})
    errors = list(iter_meta_errors(document))
    if errors:
        raise DefinitionError(errors)
