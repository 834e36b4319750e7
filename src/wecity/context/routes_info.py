"""The broker as a context source (clause 5.15): GET /info/sourceIdentity, its identity (5.2.40).

The alias a peer keeps in its registrations (contextSourceAlias) names one tenant of this broker, so that
federation between two tenants of the same broker is not mistaken for a loop (6.3.18). Identity and
aliases are derived from the broker's secret key: stable across restarts, the same for every process
of one deployment, and saying nothing about the key."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context.entity import now_text
from wecity.context.openapi import operation
from wecity.context.protocol import JSON_LD, respond, tenant_of
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/info", tags=["ngsi-ld"])
STARTED = "ngsild_started_at"


def _derived_urn(secret: str, what: str) -> str:
    digest = hmac.new(secret.encode(), what.encode(), hashlib.sha256).digest()
    return f"urn:ngsi-ld:ContextSource:{uuid.UUID(bytes=digest[:16], version=4)}"


def uptime(since: datetime, now: datetime) -> str:
    """An ISO 8601 duration, e.g. P2DT3H4M5.25S (PT0S at the start)."""
    total = max((now - since).total_seconds(), 0.0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{int(days)}D" if days else "") + "T"
    text += (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    text += f"{round(seconds, 3):g}S"
    return text


@router.get("/sourceIdentity", summary="Retrieve the identity of this context source",
            openapi_extra=operation("tenant", answers=JSON_LD))
async def source_identity(request: Request, ctx: Ctx) -> Response:
    secret = ctx.settings.secret_key
    now = ctx.clock.now()
    body = {
        "id": _derived_urn(secret, "ngsi-ld context source"),
        "type": "ContextSourceIdentity",
        "contextSourceAlias": _derived_urn(secret, "ngsi-ld tenant:" + tenant_of(request)),
        "contextSourceUptime": uptime(ctx.services.get(STARTED, now), now),
        "contextSourceTimeAt": now_text(now),
    }
    return respond(request, body, None)
