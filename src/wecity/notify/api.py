"""HTTP adapter: a staff user's in-app notifications; for administrators, outgoing messages and their dead
letters, retried on request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Request

from wecity.core import outbox
from wecity.core.clock import isoformat
from wecity.core.errors import PermissionDenied
from wecity.core.http import Ctx, client_address, id_param
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.service import StaffUser, record_audit
from wecity.notify.service import list_notifications

router = APIRouter(prefix="/api/v1/admin/outbox", tags=["notify"])
inbox = APIRouter(prefix="/api/v1/me", tags=["notify"])


def register(app: FastAPI) -> None:
    app.include_router(inbox)
    app.include_router(router)


def recipient_keys(user: StaffUser) -> list[str]:
    """The in-app inboxes a staff user reads: their own, their department's, and their roles' in it."""
    keys = [f"user:{user.id}"]
    if user.department_id is not None:
        keys.append(f"department:{user.department_id}")
        keys += [f"department:{user.department_id}:{role}" for role in sorted(user.roles)]
    return keys


@inbox.get("/notifications", summary="In-app notifications for me, my department and my roles")
async def my_notifications(ctx: Ctx, user: CurrentStaff, unread_only: bool = False) -> list[dict[str, Any]]:
    return await ctx.db.read(lambda c: list_notifications(c, recipient_keys(user), unread_only=unread_only))


def _require_admin(user: StaffUser) -> None:
    if not user.has(Role.ADMIN):
        raise PermissionDenied("administrators only", message_zh="仅限管理员", code="auth.admin_only")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "channel": row["channel"], "target": row["target"], "status": row["status"],
            "attempts": row["attempts"], "last_error": row["last_error"], "created_at": isoformat(row["created_at"]),
            "next_attempt_at": isoformat(row["next_attempt_at"]), "delivered_at": isoformat(row["delivered_at"])}


@router.get("", summary="Outgoing messages by status (dead letters by default), with counts")
async def list_messages(ctx: Ctx, user: CurrentStaff, status: Literal["dead", "pending", "delivered"] = "dead",
                        channel: str | None = None, limit: int = 100) -> dict[str, Any]:
    _require_admin(user)
    limit = max(1, min(limit, 1000))
    rows = await ctx.db.read(lambda c: outbox.list_messages(c, status=status, channel=channel, limit=limit))
    return {"counts": await ctx.db.read(outbox.counts), "messages": [_public(r) for r in rows]}


@router.post("/{message_id}/retry", summary="Send a dead letter again, with a fresh set of attempts")
async def retry(message_id: Annotated[int, id_param("message id")], request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    _require_admin(user)
    now = ctx.clock.now()

    def run(conn: Any) -> None:
        outbox.retry_dead(conn, message_id, now=now)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="outbox.retry", target=f"outbox:{message_id}",
                     source_address=client_address(request))

    await ctx.db.write(run)
    return {"id": message_id, "status": "pending"}
