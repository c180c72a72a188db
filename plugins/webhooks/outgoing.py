"""The ``webhook`` action: a rule POSTs its record as JSON to a URL, signed.

The body is ``{"automation", "entity", "trigger", "record", "previous", "run"}``; the
``X-Blocks-Signature`` header is ``sha256=<HMAC-SHA256 of the body>`` with the action's
``secret``, or without one a key derived from the workspace's. A transport error or an
answer of 300 or more fails the action (a job is then retried).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import httpx

from blockscrm.engine import ActionFailed
from blockscrm.engine.actions import Action, ActionContext

from .signing import signature

SCHEMA = {"type": "object", "required": ["type", "url"], "additionalProperties": False,
          "properties": {"type": {"type": "string"},
                         "url": {"type": "string", "pattern": "^https?://"},
                         "secret": {"type": "string", "minLength": 1},
                         "timeout": {"type": "number", "exclusiveMinimum": 0,
                                     "maximum": 60}}}


def workspace_key(ctx: ActionContext) -> str:
    """The signing key of an action without a secret of its own: derived from the
    workspace's key, never that key itself (it also signs the screens' sessions)."""
    return hmac.new(ctx.ws.secret, b"blocks-webhooks", hashlib.sha256).hexdigest()


def call(ctx: ActionContext, params: Mapping[str, Any]) -> Any:
    payload = {"automation": ctx.automation, "entity": ctx.entity.name,
               "trigger": ctx.trigger, "record": ctx.record, "previous": ctx.previous,
               "run": ctx.run_id}
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "blocks-crm",
               "X-Blocks-Run": str(ctx.run_id or ""),
               "X-Blocks-Signature": signature(params.get("secret") or workspace_key(ctx),
                                               body)}
    try:
        response = httpx.post(params["url"], content=body, headers=headers,
                              timeout=float(params.get("timeout", 10)))
    except httpx.HTTPError as exc:
        raise ActionFailed(f"webhook {params['url']}: {exc}") from None
    if response.status_code >= 300:
        raise ActionFailed(f"webhook {params['url']} answered {response.status_code}")
    return {"status": response.status_code}


ACTION = Action("webhook", SCHEMA, call, label={"en": "Call a webhook", "zh": "调用 Webhook"})
