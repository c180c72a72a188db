"""Incoming webhooks: a signed call from another system fires the ``webhook`` trigger on
one record, so the rules listening to that hook run.

::

    POST /api/v1/plugins/webhooks/incoming/<hook>
    X-Blocks-Timestamp: 1767225600          (Unix seconds, when the call was signed)
    X-Blocks-Delivery: 7f3c…                (an id the sender never sends twice)
    X-Blocks-Signature: sha256=<hex HMAC-SHA256, with the hook's secret, of
                        "<timestamp>.<delivery>." followed by the raw body>
    {"entity": "ticket", "id": "…", "data": {…}}

The view is public (the blueprint's ``public``): the signature is its authentication. A
call that is unsigned, badly signed or stamped outside the tolerance is refused with 401,
a delivery id seen before with 409, each as problem details saying why; an accepted one
answers 202 with the runs it started.

The trigger's payload is ``{"hook": …, "delivery": …, "data": …}`` (``data`` as the
call sent it, or absent); the rules' templates read it as ``payload``, e.g. a notify
action's ``"title": "Invoice {{ payload.data.invoice }} paid"``, and the run log keeps it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, request

from blockscrm.engine import AuthenticationFailed, NotFound, ValidationError, Workspace
from blockscrm.platform.extension import current_workspace

from . import NAME, TRIGGER_NAME
from .deliveries import ensure_table, take
from .signing import incoming_signed, matches

#: How far a call's timestamp may be from the server's clock, unless the settings say.
DEFAULT_TOLERANCE = 300
#: The largest body taken (a webhook names one record).
MAX_BODY = 1 << 20
DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def incoming(hook: str) -> tuple[dict[str, Any], int]:
    """Check the call, then take its delivery and fire the trigger in one transaction: a
    call that fails (no such record, a rule refusing) leaves its delivery id unused, so
    the sender may send it again."""
    ws = current_workspace()
    settings = ws.plugins.settings(NAME)
    secret = settings.get("incoming", {}).get(hook, {}).get("secret")
    if secret is None:
        raise NotFound(f"no incoming webhook named {hook!r} in the settings of the "
                       f"{NAME} plugin")
    request.max_content_length = MAX_BODY
    body = request.get_data(cache=True)
    timestamp, delivery = _signed_headers(secret, body)
    tolerance = dt.timedelta(seconds=settings.get("tolerance", DEFAULT_TOLERANCE))
    sent_at = _fresh(timestamp, tolerance)
    entity, record_id, data = _record(body)

    ensure_table(ws)
    latest = _latest_run(ws, entity, record_id)
    with ws.transaction() as conn:
        take(conn, hook, delivery, sent_at, _utcnow(), tolerance)
        ws.automations.trigger(TRIGGER_NAME, entity, record_id,
                               {"hook": hook, "delivery": delivery, "data": data})
    runs = [{k: run[k] for k in ("id", "automation", "mode", "status", "error")}
            for run in ws.automations.runs(entity, record_id)
            if run["id"] > latest and run["trigger"] == TRIGGER_NAME]
    return {"hook": hook, "delivery": delivery, "entity": entity, "id": record_id,
            "runs": runs}, 202


#: The plugin's routes: one blueprint for every app of the process (the platform mounts
#: it inside a blueprint of its own, which checks that the plugin is enabled).
routes = Blueprint("webhooks", __name__)
routes.add_url_rule("/incoming/<hook>", view_func=incoming, methods=["POST"])
routes.public = {"incoming"}  # type: ignore[attr-defined]


#: How a caller authenticates here, as the 401's WWW-Authenticate says: by signing.
SCHEME = 'Blocks-Signature realm="incoming webhooks"'


def _refused(message: str) -> AuthenticationFailed:
    """A call that is not signed as it must be (401, naming the signature scheme)."""
    return AuthenticationFailed(message, scheme=SCHEME)


def _signed_headers(secret: str, body: bytes) -> tuple[str, str]:
    """The call's timestamp and delivery id, once its signature proves the hook's secret
    signed them with the body.

    :raises AuthenticationFailed: a header is missing or malformed, or the signature does
        not match.
    """
    headers = {name: request.headers.get(f"X-Blocks-{name}", "")
               for name in ("Timestamp", "Delivery", "Signature")}
    missing = [f"X-Blocks-{name}" for name, value in headers.items() if not value]
    if missing:
        raise _refused(f"the call is not signed: {', '.join(missing)} missing")
    if not headers["Timestamp"].isdigit() or len(headers["Timestamp"]) > 12:
        raise _refused("X-Blocks-Timestamp must be the Unix time in seconds")
    if not DELIVERY_ID.fullmatch(headers["Delivery"]):
        raise _refused("X-Blocks-Delivery must be 1 to 128 letters, digits, "
                                   "'.', '_', ':' or '-'")
    signed = incoming_signed(headers["Timestamp"], headers["Delivery"], body)
    if not matches(secret, signed, headers["Signature"]):
        raise _refused("the signature does not match: X-Blocks-Signature must "
                                   "be sha256= and the HMAC-SHA256, with the hook's secret, "
                                   "of '<timestamp>.<delivery>.' and the body")
    return headers["Timestamp"], headers["Delivery"]


def _fresh(timestamp: str, tolerance: dt.timedelta) -> dt.datetime:
    """When the call was signed (naive UTC), if that is within ``tolerance`` of now.

    :raises AuthenticationFailed: too far from now.
    """
    off = int(timestamp) - time.time()
    if abs(off) > tolerance.total_seconds():
        when = f"{-off:.0f} s old" if off < 0 else f"{off:.0f} s in the future"
        raise _refused(f"the call's timestamp is {when}; at most "
                                   f"{tolerance.total_seconds():.0f} s is accepted")
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).replace(tzinfo=None)


def _record(body: bytes) -> tuple[str, str, Mapping[str, Any]]:
    """The entity, record id and data the body names.

    :raises ValidationError: the body is not such a JSON object.
    """
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ValidationError({"body": [f"not JSON: {exc}"]}) from None
    if not isinstance(document, dict):
        raise ValidationError({"body": ['must be {"entity": …, "id": …, "data": {…}}']})
    errors = {key: ["must be a non-empty string"] for key in ("entity", "id")
              if not isinstance(document.get(key), str) or not document[key]}
    if not isinstance(document.get("data", {}), dict):
        errors["data"] = ["must be an object"]
    if errors:
        raise ValidationError(errors)
    return document["entity"], document["id"], document.get("data", {})


def _latest_run(ws: Workspace, entity: str, record_id: str) -> int:
    """The id of the record's latest run so far (0 without one), to tell the runs this
    call starts."""
    latest = ws.automations.runs(entity, record_id, limit=1)
    return int(latest[0]["id"]) if latest else 0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
