"""The OpenAPI 3.1 document of the API, generated from the published metadata.

Each published entity gets its own paths and three schemas built from its JSON Schema:
``<entity>.record`` (what reads answer: the fields plus the system keys),
``<entity>.create`` and ``<entity>.patch`` (what writes take). The document is built
once per published catalog version and kept on the app, so it changes with a publish
and costs nothing between publishes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from blockscrm.engine import Catalog, Entity
from blockscrm.engine.definitions import KINDS, SLUG
from blockscrm.engine.query import DEFAULT_LIMIT, MAX_LIMIT

from ..extension import current_workspace

openapi_bp = Blueprint("openapi", __name__)

PREFIX = "/api/v1"
CACHE_KEY = "blocks.openapi"
Schema = dict[str, Any]

PROBLEM = "application/problem+json"
ERRORS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
          409: "Conflict", 422: "Unprocessable", 423: "Locked", 429: "TooManyAttempts"}
ERROR_TEXT = {
    400: "A malformed query parameter, body or header (the parameter is named in errors).",
    401: "No valid credentials.",
    403: "The caller may not do this.",
    404: "No such entity, record, kind or definition.",
    409: "A stale If-Match, a name that exists, or a publish refused (with its plan).",
    422: "Invalid values or definition; errors lists every one, by field or JSON Pointer.",
    423: "The record waits on an approval and cannot change until it is decided.",
    429: "Too many failed logins for this username: wait Retry-After seconds.",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """A schema that also takes null, the empty value (a schema taking anything does)."""
    return {"anyOf": [schema, {"type": "null"}]} if schema else {}


def _json(schema: Schema, description: str, **extra: Any) -> Schema:
    return {"description": description,
            "content": {"application/json": {"schema": schema}}, **extra}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/{ERRORS[s]}"} for s in (401, *statuses)}


# --- per entity -----------------------------------------------------------------------

def _system_keys() -> dict[str, Schema]:
    who = {**_nullable({"type": "string"}), "readOnly": True}
    when = {"type": "string", "format": "date-time", "readOnly": True}
    return {"version": {"type": "integer", "minimum": 1, "readOnly": True},
            "owner_id": _nullable({"type": "string"}), "created_at": when,
            "created_by": who, "updated_at": when, "updated_by": who}


def _state_key(entity: Entity) -> dict[str, Schema]:
    """A record's workflow state, where a workflow applies; it moves by transition only."""
    if entity.workflow is None:
        return {}
    return {"state": {"enum": sorted(entity.workflow.states), "readOnly": True,
                      "description": f"The state in workflow {entity.workflow.name}."}}


def _field_schema(entity: Entity, name: str, *, writing: bool) -> Schema:
    f = entity.fields[name]
    value = dict(f.value_schema)
    if writing and f.required:  # "" and [] are empty, as null is: a required field refuses them
        if value.get("type") == "string":
            value.setdefault("minLength", 1)
        elif value.get("type") == "array":
            value.setdefault("minItems", 1)
    schema = value if (writing and f.required) else _nullable(value)
    title = f.label.get("en")
    if title:
        schema = {"title": title, **schema}
    if f.type.computed:
        schema = {**schema, "readOnly": True, "description": "computed by a formula"}
    return schema


def entity_schemas(entity: Entity) -> dict[str, Schema]:
    """The record schema of ``entity`` and the schemas its writes take."""
    stored = [f.name for f in entity.stored_fields]
    record = {"type": "object", "title": entity.label.get("en", entity.name),
              "description": "A record: its fields (null when empty) and system keys. "
                             "A list's fields parameter keeps only id, version and those.",
              "properties": {"id": {"type": "string", "readOnly": True},
                             **{n: _field_schema(entity, n, writing=False)
                                for n in entity.fields},
                             **_system_keys(), **_state_key(entity)},
              "required": ["id", "version"], "additionalProperties": False}
    writable = {n: _field_schema(entity, n, writing=True) for n in stored}
    owner = _nullable({"type": "string", "minLength": 1, "maxLength": 64})
    defaults = set(entity.schema_defaults) | set(entity.default_trees)
    create = {"type": "object", "properties": {**writable, "owner_id": owner},
              "required": [n for n in stored
                           if entity.fields[n].required and n not in defaults],
              "additionalProperties": False}
    patch = {"type": "object",
             "description": "The fields to change; null clears a field.",
             "properties": {**{n: _nullable(entity.fields[n].value_schema) for n in stored},
                            "owner_id": owner},
             "additionalProperties": False}
    return {f"{entity.name}.record": record, f"{entity.name}.create": create,
            f"{entity.name}.patch": patch}


def entity_paths(entity: Entity) -> dict[str, Schema]:
    """The record routes of one entity."""
    name, base = entity.name, f"{PREFIX}/records/{entity.name}"
    record = _ref(f"{name}.record")
    etag = {"ETag": {"$ref": "#/components/headers/ETag"}}
    read = _json(record, f"The {name} record.", headers=etag)
    tags = [name]
    page = {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": record},
                           "next_cursor": {"type": ["string", "null"]},
                           "count": {"type": "integer", "minimum": 0}}}
    one = [{"$ref": "#/components/parameters/RecordId"}]
    conditional = [*one, {"$ref": "#/components/parameters/IfMatch"}]
    paths: dict[str, Schema] = {
        base: {
            "get": {"operationId": f"{name}.list", "tags": tags,
                    "summary": f"A page of {name} records",
                    "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in
                                   ("filter", "sort", "limit", "cursor", "fields", "count",
                                    "q")],
                    "responses": {"200": _json(page, "One page and the next cursor."),
                                  **_errors(400, 403, 404)}},
            "post": {"operationId": f"{name}.create", "tags": tags,
                     "summary": f"Create a {name} record",
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": _ref(f"{name}.create")}}},
                     "responses": {"201": {**read, "headers": {
                         **etag, "Location": {"$ref": "#/components/headers/Location"}}},
                         **_errors(400, 403, 404, 409, 422)}},
        },
        f"{base}/{{id}}": {
            "get": {"operationId": f"{name}.get", "tags": tags, "parameters": one,
                    "summary": f"Read a {name} record",
                    "responses": {"200": read, **_errors(403, 404)}},
            "patch": {"operationId": f"{name}.update", "tags": tags,
                      "summary": f"Change fields of a {name} record",
                      "parameters": conditional,
                      "requestBody": {"required": True, "content": {
                          "application/json": {"schema": _ref(f"{name}.patch")}}},
                      "responses": {"200": read, **_errors(400, 403, 404, 409, 422, 423)}},
            "delete": {"operationId": f"{name}.delete", "tags": tags,
                       "summary": f"Delete a {name} record", "parameters": conditional,
                       "responses": {"204": {"description": "Deleted."},
                                     **_errors(400, 403, 404, 409, 423)}},
        },
        f"{base}/{{id}}/history": {
            "get": {"operationId": f"{name}.history", "tags": tags, "parameters": one,
                    "summary": f"The audit trail of a {name} record",
                    "responses": {"200": _json(
                        {"type": "object", "required": ["items"],
                         "properties": {"items": {"type": "array",
                                                  "items": _ref("HistoryEntry")},
                                        "runs": {"type": "array", "items": _ref("Run")}}},
                        "Every change, oldest first; the rules that fired, newest first."),
                        **_errors(403, 404)}},
        },
    }
    paths[f"{base}/{{id}}/shares"] = _share_paths(name, tags, one)
    if entity.workflow is not None:
        paths.update(_transition_paths(entity, base, tags, read))
    if entity.approvals:
        paths[f"{base}/{{id}}/approvals"] = {"post": {
            "operationId": f"{name}.submit", "tags": tags, "parameters": one,
            "summary": f"Submit a {name} record for approval",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"approval": {"enum": [a.name for a in entity.approvals]},
                               "comment": {"type": "string", "maxLength": 5000}}}}}},
            "responses": {"201": _json(_ref("ApprovalRequest"), "The request, pending.",
                                       headers={"Location": {
                                           "$ref": "#/components/headers/Location"}}),
                          **_errors(400, 403, 404, 409, 422)}}}
    return paths


def _share_paths(name: str, tags: list[str], one: list[Schema]) -> Schema:
    """Sharing one record with a user or a team, and taking it back."""
    text = {"type": "string", "minLength": 1}
    share = {"type": "object", "additionalProperties": False,
             "properties": {"user": text, "team": text,
                            "access": {"enum": ["read", "edit"], "default": "read"}}}
    who = [{"name": k, "in": "query", "required": False, "schema": text}
           for k in ("user", "team")]
    return {
        "post": {"operationId": f"{name}.share", "tags": tags, "parameters": one,
                 "summary": f"Share a {name} record with a user or a team",
                 "requestBody": {"required": True,
                                 "content": {"application/json": {"schema": share}}},
                 "responses": {"201": _json(share, "The share."),
                               **_errors(400, 403, 404, 422)}},
        "delete": {"operationId": f"{name}.unshare", "tags": tags,
                   "parameters": [*one, *who],
                   "summary": f"Stop sharing a {name} record with a user or a team",
                   "responses": {"204": {"description": "No longer shared."},
                                 **_errors(403, 404, 422)}},
    }


def _transition_paths(entity: Entity, base: str, tags: list[str], read: Schema
                      ) -> dict[str, Schema]:
    name, workflow = entity.name, entity.workflow
    one = [{"$ref": "#/components/parameters/RecordId"}]
    which = {"name": "transition", "in": "path", "required": True,
             "schema": {"enum": sorted(workflow.transitions)}}
    available = {"type": "object", "required": ["name", "to"],
                 "properties": {"name": {"type": "string"}, "to": {"type": "string"},
                                "label": {"type": "object"},
                                "require": {"type": "array", "items": {"type": "string"}},
                                "missing": {"type": "array", "items": {"type": "string"}},
                                "guard": {"type": ["string", "null"]},
                                "guard_holds": {"type": "boolean"}}}
    body = {"type": "object", "additionalProperties": False,
            "properties": {"values": _ref(f"{name}.patch")}}
    return {
        f"{base}/{{id}}/transitions": {
            "get": {"operationId": f"{name}.transitions", "tags": tags, "parameters": one,
                    "summary": f"The transitions the caller may take on a {name} record",
                    "responses": {"200": _json(
                        {"type": "object", "required": ["items"],
                         "properties": {"items": {"type": "array", "items": available}}},
                        "Each transition from the record's state."), **_errors(403, 404)}},
        },
        f"{base}/{{id}}/transitions/{{transition}}": {
            "post": {"operationId": f"{name}.transition", "tags": tags,
                     "summary": f"Take a workflow transition on a {name} record",
                     "parameters": [*one, which, {"$ref": "#/components/parameters/IfMatch"}],
                     "requestBody": {"required": False,
                                     "content": {"application/json": {"schema": body}}},
                     "responses": {"200": read, **_errors(400, 403, 404, 409, 422, 423)}},
        },
    }


# --- metadata -------------------------------------------------------------------------

def meta_paths() -> dict[str, Schema]:
    """The metadata routes, the same whatever is published."""
    kind = [{"$ref": "#/components/parameters/Kind"}]
    named = [*kind, {"name": "name", "in": "path", "required": True,
                     "schema": {"type": "string"}}]
    definition = _ref("Definition")
    body = {"required": True, "content": {"application/json": {"schema": definition}}}
    tags = ["metadata"]
    version = {"name": "version", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0, "maximum": 999999999}}
    revision = {"ETag": {"description": "The definition's revision, quoted: send it back "
                                        "in If-Match.", "schema": {"type": "string"}}}
    if_match = {"name": "If-Match", "in": "header", "required": False,
                "schema": {"type": "string"},
                "description": "The revision the change starts from; a stale one is a 409."}

    def items(item: Schema) -> Schema:
        return {"type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": item}}}

    return {
        f"{PREFIX}/meta/schemas/{{kind}}": {"get": {
            "operationId": "meta.schema", "tags": tags, "parameters": kind,
            "summary": "The meta-schema of a definition kind",
            "responses": {"200": _json({"type": "object"}, "A JSON Schema 2020-12."),
                          **_errors(404)}}},
        f"{PREFIX}/meta/{{kind}}": {
            "get": {"operationId": "meta.list", "tags": tags, "parameters": kind,
                    "summary": "Every definition of a kind (drafts over published)",
                    "responses": {"200": _json(
                        {"type": "object", "required": ["items"],
                         "properties": {"items": {"type": "array", "items": definition}}},
                        "The definitions, by name."), **_errors(403, 404)}},
            "post": {"operationId": "meta.create", "tags": tags, "parameters": kind,
                     "summary": "Save a new definition as a draft", "requestBody": body,
                     "responses": {"201": _json(definition, "The draft saved.", headers={
                         "Location": {"$ref": "#/components/headers/Location"}, **revision}),
                         **_errors(400, 403, 404, 409, 422)}},
        },
        f"{PREFIX}/meta/{{kind}}/{{name}}": {
            "get": {"operationId": "meta.get", "tags": tags, "parameters": named,
                    "summary": "A definition: its draft, else the published one",
                    "responses": {"200": _json(definition, "The definition.",
                                               headers=revision),
                                  **_errors(403, 404)}},
            "put": {"operationId": "meta.replace", "tags": tags,
                    "parameters": [*named, if_match],
                    "summary": "Save a definition's draft", "requestBody": body,
                    "responses": {"200": _json(definition, "The draft saved.",
                                               headers=revision),
                                  **_errors(400, 403, 404, 409, 422)}},
            "delete": {"operationId": "meta.delete", "tags": tags,
                       "parameters": [*named, if_match],
                       "summary": "Discard a draft, or draft a published one's deletion",
                       "responses": {"204": {"description": "Done."},
                                     **_errors(400, 403, 404, 409)}},
        },
        f"{PREFIX}/meta/{{kind}}/{{name}}/versions": {"get": {
            "operationId": "meta.versions", "tags": tags, "parameters": named,
            "summary": "Every published version of a definition, with who and when",
            "responses": {"200": _json(items({
                "type": "object", "required": ["version", "publish_id", "published_at"],
                "properties": {"version": {"type": "integer"},
                               "publish_id": {"type": "integer"},
                               "published_at": {"type": "string", "format": "date-time"},
                               "published_by": {"type": ["string", "null"]},
                               "deleted": {"type": "boolean"}}}), "The versions."),
                **_errors(403, 404)}}},
        f"{PREFIX}/meta/{{kind}}/{{name}}/versions/{{version}}": {"get": {
            "operationId": "meta.version", "tags": tags, "parameters": [*named, version],
            "summary": "One published version's document (null: that version deleted it)",
            "responses": {"200": _json({"oneOf": [definition, {"type": "null"}]},
                                       "The document."), **_errors(403, 404)}}},
        f"{PREFIX}/meta/{{kind}}/{{name}}/versions/{{version}}/restore": {"post": {
            "operationId": "meta.restore", "tags": tags, "parameters": [*named, version],
            "summary": "Make an earlier version the draft",
            "responses": {"200": _json({"oneOf": [definition, {"type": "null"}]},
                                       "The draft now.", headers=revision),
                          **_errors(403, 404)}}},
        f"{PREFIX}/meta/{{kind}}/{{name}}/diff": {"get": {
            "operationId": "meta.diff", "tags": tags,
            "parameters": [*named, *({"name": key, "in": "query", "required": True,
                                      "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"}}
                                     for key in ("from", "to"))],
            "summary": "What changed between two published versions",
            "responses": {"200": _json({
                "type": "object", "required": ["changes"],
                "properties": {"changes": {"type": "array", "items": {
                    "type": "object", "required": ["op", "path"],
                    "properties": {"op": {"enum": ["add", "remove", "replace"]},
                                   "path": {"type": "string"}, "before": {},
                                   "after": {}}}}}}, "The changes."),
                **_errors(400, 403, 404)}}},
        f"{PREFIX}/meta/publishes": {"get": {
            "operationId": "meta.publishes", "tags": tags,
            "summary": "The newest publishes: when, by whom, what each changed",
            "responses": {"200": _json(items({
                "type": "object", "required": ["id", "published_at", "definitions"],
                "properties": {"id": {"type": "integer"},
                               "published_at": {"type": "string", "format": "date-time"},
                               "published_by": {"type": ["string", "null"]},
                               "definitions": {"type": "array", "items": {
                                   "type": "object"}}}}), "The publishes."),
                **_errors(403)}}},
        f"{PREFIX}/meta/plan": {"get": {
            "operationId": "meta.plan", "tags": tags,
            "summary": "What publishing every draft would do",
            "responses": {"200": _json(_ref("Plan"), "The plan."), **_errors(403, 422)}}},
        f"{PREFIX}/meta/publish": {"post": {
            "operationId": "meta.publish", "tags": tags, "summary": "Publish every draft",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"confirm": {"type": "boolean"},
                               "decisions": {"type": "object", "additionalProperties": {
                                   "type": "object"}}}}}}},
            "responses": {"200": _json(_ref("Plan"), "The plan applied."),
                          **_errors(400, 403, 409, 422)}}},
        f"{PREFIX}/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["api"], "security": [],
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
    }


# --- components -----------------------------------------------------------------------

def _query_parameter(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def components() -> Schema:
    """Schemas, parameters, headers and error responses every document shares."""
    text = {"type": "string"}
    messages = {"type": "object", "additionalProperties": {"type": "array", "items": text}}
    return {
        "schemas": {
            "Problem": {"type": "object", "required": ["type", "title", "status"],
                        "properties": {"type": text, "title": text,
                                       "status": {"type": "integer"}, "detail": text,
                                       "errors": messages, "plan": _ref("Plan")}},
            "Definition": {"type": "object", "required": ["name", "label"],
                           "properties": {"kind": {"enum": list(KINDS)},
                                          "name": {"type": "string",
                                                   "pattern": SLUG.pattern},
                                          "label": {"type": "object",
                                                    "additionalProperties": text},
                                          "description": text}},
            "Plan": {"type": "object", "required": ["steps", "definitions"],
                     "properties": {"steps": {"type": "array", "items": {
                                        "type": "object", "required": ["action", "summary"]}},
                                    "definitions": {"type": "array",
                                                    "items": {"type": "object"}},
                                    "destructive": {"type": "boolean"},
                                    "ready": {"type": "boolean"}}},
            "ApprovalRequest": {
                "type": "object",
                "required": ["id", "approval", "entity", "record_id", "status"],
                "properties": {"id": {"type": "integer"}, "approval": text, "entity": text,
                               "record_id": text,
                               "status": {"enum": ["pending", "approved", "rejected",
                                                   "recalled"]},
                               "step": {"type": ["string", "null"]},
                               "submitted_by": {"type": ["string", "null"]},
                               "submitted_at": {"type": ["string", "null"]},
                               "decided_at": {"type": ["string", "null"]},
                               "due_at": {"type": ["string", "null"]},
                               "approvers": {"type": "array", "items": text},
                               "decisions": {"type": "array", "items": {"type": "object"}},
                               "summary": {"type": "object"}}},
            "Run": {"type": "object", "required": ["id", "automation", "status"],
                    "properties": {"id": {"type": "integer"}, "automation": text,
                                   "entity": text, "record_id": {"type": ["string", "null"]},
                                   "trigger": text, "mode": text, "status": text,
                                   "why": {"type": ["string", "null"]},
                                   "attempts": {"type": "integer"},
                                   "steps": {"type": "array"},
                                   "error": {"type": ["string", "null"]},
                                   "created_at": {"type": ["string", "null"]},
                                   "started_at": {"type": ["string", "null"]},
                                   "finished_at": {"type": ["string", "null"]},
                                   "duration_ms": {"type": ["number", "null"]}}},
            "HistoryEntry": {"type": "object",
                             "required": ["action", "at", "version", "changes"],
                             "properties": {"action": {"enum": ["create", "update", "delete",
                                                                "transition", "approval"]},
                                            "decision": text,
                                            "transition": text,
                                            "at": {"type": "string", "format": "date-time"},
                                            "actor": {"type": ["string", "null"]},
                                            "version": {"type": "integer"},
                                            "changes": {"type": "object"}}},
        },
        "parameters": {
            "filter": _query_parameter("filter", text, "A rule: its JSON tree (first "
                                       "character {) or its text, amount > 1000"),
            "sort": _query_parameter("sort", text, "Fields, - for descending: -amount,title"),
            "limit": _query_parameter("limit", {"type": "integer", "minimum": 1,
                                                "maximum": MAX_LIMIT,
                                                "default": DEFAULT_LIMIT}, "Page size"),
            "cursor": _query_parameter("cursor", text, "next_cursor of the previous page"),
            "fields": _query_parameter("fields", text, "Fields to answer: title,amount"),
            "count": _query_parameter("count", {"type": "boolean"},
                                      "Also count every matching record"),
            "q": _query_parameter("q", text, "Words every record found holds"),
            "RecordId": {"name": "id", "in": "path", "required": True, "schema": text},
            "Kind": {"name": "kind", "in": "path", "required": True,
                     "schema": {"enum": list(KINDS)}},
            "IfMatch": {"name": "If-Match", "in": "header", "required": False,
                        "schema": {"type": "string", "pattern": r'^(\*|"[0-9]+")$'},
                        "description": 'The ETag read, "3": a stale one is refused (409)'},
        },
        "headers": {
            "ETag": {"description": "The record's version, quoted.", "schema": text},
            "Location": {"description": "The address of what was created.", "schema": text},
        },
        "responses": {name: {"description": ERROR_TEXT[status],
                             "content": {PROBLEM: {"schema": _ref("Problem")}}}
                      for status, name in ERRORS.items()},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }


def auth_paths() -> dict[str, Schema]:
    """Asking for a token (no credentials needed: it carries them), revoking the one in
    use, and who the caller is."""
    tags = ["auth"]
    text = {"type": "string"}
    user = {"type": "object", "required": ["id", "username", "roles", "teams"],
            "properties": {"id": text, "username": text, "display_name": _nullable(text),
                           "email": _nullable(text), "language": text,
                           "roles": {"type": "array", "items": text},
                           "teams": {"type": "array", "items": text}}}
    credentials = {"type": "object", "required": ["username", "password"],
                   "properties": {"username": text, "password": text,
                                  "name": {**text, "description": "What the token is for"}}}
    token = {"type": "object", "required": ["token", "user"],
             "properties": {"token": text, "user": user}}
    return {
        f"{PREFIX}/auth/tokens": {
            "post": {"operationId": "auth.issue_token", "tags": tags, "security": [],
                     "summary": "Trade a username and password for an API token",
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": credentials}}},
                     "responses": {"201": _json(token, "The token, shown this once."),
                                   **_errors(429)}},
        },
        f"{PREFIX}/auth/tokens/current": {
            "delete": {"operationId": "auth.revoke_token", "tags": tags,
                       "summary": "Revoke the token this request is made with",
                       "responses": {"204": {"description": "Revoked."}, **_errors()}},
        },
        f"{PREFIX}/notifications": {
            "get": {"operationId": "notifications.list", "tags": tags,
                    "summary": "The caller's newest notifications and the unread count",
                    "parameters": [{"name": "unread", "in": "query", "required": False,
                                    "schema": {"type": "boolean"}}],
                    "responses": {"200": _json(
                        {"type": "object", "required": ["items", "unread"],
                         "properties": {"items": {"type": "array",
                                                  "items": {"type": "object"}},
                                        "unread": {"type": "integer"}}},
                        "Notifications, newest first."), **_errors()}},
        },
        f"{PREFIX}/notifications/read": {
            "post": {"operationId": "notifications.read", "tags": tags,
                     "summary": "Mark notifications read (the ids given, else all)",
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": {"type": "object", "properties": {
                             "ids": {"type": "array", "items": {"type": "integer"}}}}}}},
                     "responses": {"200": _json(
                         {"type": "object", "required": ["marked"],
                          "properties": {"marked": {"type": "integer"}}}, "How many."),
                         **_errors(422)}},
        },
        f"{PREFIX}/auth/me": {
            "get": {"operationId": "auth.me", "tags": tags, "summary": "The caller",
                    "responses": {"200": _json(user, "The authenticated user."),
                                  **_errors()}},
        },
    }


def approval_paths() -> dict[str, Schema]:
    """The inbox, one request, decisions and delegation."""
    tags = ["approvals"]
    one = {"name": "request_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1}}
    comment = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"comment": {"type": "string", "maxLength": 5000}}}}}}
    return {
        f"{PREFIX}/approvals": {"get": {
            "operationId": "approvals.inbox", "tags": tags,
            "summary": "The approvals waiting on the caller, across entities",
            "parameters": [{"name": "mine", "in": "query", "required": True,
                            "schema": {"enum": ["pending"]}}],
            "responses": {"200": _json({"type": "object", "required": ["items"],
                                        "properties": {"items": {
                                            "type": "array",
                                            "items": _ref("ApprovalRequest")}}},
                                       "Pending requests, oldest first."),
                          **_errors(400)}}},
        f"{PREFIX}/approvals/{{request_id}}": {"get": {
            "operationId": "approvals.get", "tags": tags, "parameters": [one],
            "summary": "One approval request",
            "responses": {"200": _json(_ref("ApprovalRequest"), "The request."),
                          **_errors(404)}}},
        f"{PREFIX}/approvals/{{request_id}}/{{decision}}": {"post": {
            "operationId": "approvals.decide", "tags": tags,
            "parameters": [one, {"name": "decision", "in": "path", "required": True,
                                 "schema": {"enum": ["approve", "reject", "recall"]}}],
            "summary": "Approve or reject the current step, or recall the request",
            "requestBody": comment,
            "responses": {"200": _json(_ref("ApprovalRequest"), "The request after it."),
                          **_errors(400, 403, 404, 409, 422)}}},
        f"{PREFIX}/approvals/delegations": {"post": {
            "operationId": "approvals.delegate", "tags": tags,
            "summary": "Let another user decide the caller's approvals for a period",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["to", "starts", "ends"],
                "properties": {"to": {"type": "string"},
                               "starts": {"type": "string", "format": "date-time"},
                               "ends": {"type": "string", "format": "date-time"}}}}}},
            "responses": {"201": _json({"type": "object"}, "Delegated."),
                          **_errors(400, 404, 422)}}},
    }


def automation_paths() -> dict[str, Schema]:
    """The run log, re-running a failed run, and dry runs (admins only)."""
    tags = ["automations"]
    run = _ref("Run")
    run_id = {"name": "run_id", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1}}
    listing = {"type": "object", "required": ["items"],
               "properties": {"items": {"type": "array", "items": run}}}
    return {
        f"{PREFIX}/runs": {"get": {
            "operationId": "runs.list", "tags": tags,
            "summary": "Runs of an entity's rules, newest first",
            "parameters": [{"name": "entity", "in": "query", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "status", "in": "query", "required": False,
                            "schema": {"enum": ["queued", "running", "done", "failed",
                                                "skipped", "cut"]}},
                           {"$ref": "#/components/parameters/limit"}],
            "responses": {"200": _json(listing, "The runs."), **_errors(400, 403)}}},
        f"{PREFIX}/runs/{{run_id}}": {"get": {
            "operationId": "runs.get", "tags": tags, "parameters": [run_id],
            "summary": "One run", "responses": {"200": _json(run, "The run."),
                                                **_errors(403, 404)}}},
        f"{PREFIX}/runs/{{run_id}}/rerun": {"post": {
            "operationId": "runs.rerun", "tags": tags, "parameters": [run_id],
            "summary": "Queue a failed run again",
            "responses": {"200": _json(run, "The run, queued again."), **_errors(403, 404)}}},
        f"{PREFIX}/automations/{{name}}/dry-run": {"get": {
            "operationId": "automations.dry_run", "tags": tags,
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           {"$ref": "#/components/parameters/limit"}],
            "summary": "What a rule would do to the records its condition selects now",
            "responses": {"200": _json({"type": "object",
                                        "required": ["automation", "matches", "items"]},
                                       "The records and the actions, nothing written."),
                          **_errors(400, 403, 404)}}},
    }


def build_document(catalog: Catalog) -> Schema:
    """The whole document for one published catalog."""
    paths = {**auth_paths(), **meta_paths(), **automation_paths(), **approval_paths()}
    schemas: dict[str, Schema] = {}
    for name in sorted(catalog.entities):
        entity = catalog.entities[name]
        paths.update(entity_paths(entity))
        schemas.update(entity_schemas(entity))
    parts = components()
    parts["schemas"].update(schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Blocks CRM", "version": f"1.{catalog.version}",
                 "description": "REST API v1, generated from the published metadata "
                                f"(version {catalog.version}). Errors are {PROBLEM}."},
        "security": [{"bearer": []}],
        "tags": [{"name": "auth"}, {"name": "metadata"}, {"name": "automations"},
                 {"name": "approvals"},
                 *({"name": n, "description": str(catalog.entities[n].label.get("en", n))}
                   for n in sorted(catalog.entities))],
        "paths": paths,
        "components": parts,
    }


@openapi_bp.get("/openapi.json")
def get_openapi() -> Response:
    """The document for the metadata published now, built once per catalog version."""
    catalog = current_workspace().catalog()
    cached: tuple[int, Schema] | None = current_app.extensions.get(CACHE_KEY)
    if cached is None or cached[0] != catalog.version:
        cached = (catalog.version, build_document(catalog))
        current_app.extensions[CACHE_KEY] = cached
    return jsonify(cached[1])
