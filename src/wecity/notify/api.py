"""HTTP adapter: a staff user's in-app notifications and how the group robots @mention them; for
administrators, outgoing messages and their dead letters (retried on request), and the group robots."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from wecity.core import outbound, outbox
from wecity.core.clock import isoformat
from wecity.core.errors import PermissionDenied
from wecity.core.http import Ctx, client_address, id_param
from wecity.core.redact import redact_text
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.service import StaffUser, department_id_by_code, record_audit
from wecity.notify import robots
from wecity.notify.choices import RobotEvent, RobotKind
from wecity.notify.service import list_notifications

router = APIRouter(prefix="/api/v1/admin/outbox", tags=["notify"])
inbox = APIRouter(prefix="/api/v1/me", tags=["notify"])
robots_api = APIRouter(prefix="/api/v1/admin/robots", tags=["notify"])


def register(app: FastAPI) -> None:
    app.include_router(inbox)
    app.include_router(router)
    app.include_router(robots_api)


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


async def require_admin(user: CurrentStaff) -> StaffUser:
    # A dependency, so that a refusal comes before the body is looked at.
    _require_admin(user)
    return user


Admin = Annotated[StaffUser, Depends(require_admin)]


def masked_target(target: str) -> str:
    """Whom a message goes to, as an administrator sees it: a citizen's e-mail address, phone number and
    tracking code (the in-app inbox `citizen:<code>`, which opens their report) masked; departments,
    staff and gateways as they are."""
    kind, _, code = target.partition(":")
    if kind == "citizen" and code:
        return f"citizen:{code[:3]}***"
    return redact_text(target)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    # An error may quote the recipient ("recipient refused: {'a@example.cn': …}"): masked as the log is.
    return {"id": row["id"], "channel": row["channel"], "target": masked_target(row["target"]),
            "status": row["status"], "attempts": row["attempts"],
            "last_error": redact_text(row["last_error"]) if row["last_error"] else row["last_error"],
            "created_at": isoformat(row["created_at"]), "next_attempt_at": isoformat(row["next_attempt_at"]),
            "delivered_at": isoformat(row["delivered_at"])}


@router.get("", summary="Outgoing messages by status (dead letters by default), with counts; citizens' "
                        "addresses masked (audited)")
async def list_messages(request: Request, ctx: Ctx, user: CurrentStaff,
                        status: Literal["dead", "pending", "delivered"] = "dead",
                        channel: str | None = None, limit: int = 100) -> dict[str, Any]:
    _require_admin(user)
    limit = max(1, min(limit, 1000))
    now = ctx.clock.now()

    def read(conn: Any) -> list[dict[str, Any]]:
        # Masked, the list still says who was written to and when: a look at it is on the record, as every
        # look at citizens' contacts is.
        rows = outbox.list_messages(conn, status=status, channel=channel, limit=limit)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="personal_data.view", target="outbox",
                     source_address=client_address(request),
                     detail={"status": status, "channel": channel, "messages": len(rows), "masked": True})
        return rows

    rows = await ctx.db.write(read)
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


# -- how the group robots mention me -----------------------------------------------------------------

class RobotLinkIn(BaseModel):
    mobile: str | None = Field(default=None, max_length=20, examples=["13912345678"],
                               description="for @mentions: WeCom mentioned_mobile_list, DingTalk at.atMobiles")
    wecom_userid: str | None = Field(default=None, max_length=64, description="for WeCom mentioned_list")


def _link(row: dict[str, Any] | None) -> dict[str, Any]:
    return {"mobile": row["mobile"] if row else None, "wecom_userid": row["wecom_userid"] if row else None}


@inbox.get("/robot-link", summary="How the group robots @mention me (my own data)")
async def my_robot_link(ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    return _link(await ctx.db.read(lambda c: robots.get_link(c, user.id)))


@inbox.put("/robot-link", summary="Set how the group robots @mention me; both empty: never (audited)")
async def set_my_robot_link(body: RobotLinkIn, request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    now = ctx.clock.now()
    return _link(await ctx.db.write(lambda c: robots.set_link(
        c, user_id=user.id, mobile=body.mobile, wecom_userid=body.wecom_userid, now=now,
        source_address=client_address(request))))


# -- group robots (administrators) -------------------------------------------------------------------

class RobotIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["城管局值班群"])
    kind: RobotKind
    url: str = Field(min_length=1, max_length=500,
                     examples=["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."])
    secret: str | None = Field(default=None, max_length=200,
                               description="DingTalk 加签 secret (SEC...); a generic webhook's HMAC key (default: generated)")
    departments: list[str] = Field(default_factory=list, max_length=100,
                                   description="department codes; none: every department")
    events: list[RobotEvent] = Field(min_length=1, max_length=len(RobotEvent))
    locale: str = Field(default="zh_CN", pattern="^(zh_CN|en)$")
    active: bool = True


RobotId = Annotated[int, id_param("robot id")]


@robots_api.get("", summary="The group robots, their keys masked")
async def list_robots(ctx: Ctx, user: Admin) -> list[dict[str, Any]]:
    return [robots.public_robot(r) for r in await ctx.db.read(robots.list_robots)]


@robots_api.post("", status_code=201, summary="Add a group robot (WeCom, DingTalk) or webhook, or replace the one "
                 "of that name")
async def set_robot(body: RobotIn, request: Request, ctx: Ctx, user: Admin) -> dict[str, Any]:
    now = ctx.clock.now()
    policy = outbound.OutboundPolicy.from_settings(ctx.settings)

    def write(conn: Any) -> dict[str, Any]:
        department_ids = [department_id_by_code(conn, code) for code in body.departments]
        robot = robots.set_robot(conn, name=body.name, kind=body.kind, url=body.url, secret=body.secret,
                                 department_ids=department_ids, events=body.events, locale=body.locale,
                                 active=body.active, now=now, policy=policy)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="robot.set", target=f"robot:{robot['id']}",
                     source_address=client_address(request),
                     detail={"name": robot["name"], "kind": robot["kind"], "departments": body.departments,
                             "events": robot["events"], "active": robot["active"]})
        return robot

    robot = await ctx.db.write(write)
    shown = robots.public_robot(robot)
    if body.kind == RobotKind.WEBHOOK and not body.secret:
        shown["secret"] = robot["secret"]  # generated: shown this once, for the receiver to check signatures
    return shown


@robots_api.delete("/{robot_id}", summary="Remove a group robot; its queued messages become dead letters")
async def remove_robot(robot_id: RobotId, request: Request, ctx: Ctx, user: Admin) -> dict[str, Any]:
    now = ctx.clock.now()

    def write(conn: Any) -> dict[str, Any]:
        robot = robots.remove_robot(conn, robot_id)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="robot.remove", target=f"robot:{robot_id}",
                     source_address=client_address(request), detail={"name": robot["name"]})
        return robot

    return {"id": robot_id, "removed": (await ctx.db.write(write))["name"]}
