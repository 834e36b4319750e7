"""Group robots: their configuration, the staff who link their account to be @mentioned, and the fan-out
of a case event to the robots that want it.

The case engine writes one ``staff_event`` outbox message per event staff should hear of (a case
dispatched to a department or assigned to a person, an escalation, a reporter's 催办, a low rating), in
the transaction of the change. Delivering it (`wecity.notify.channels`) calls `fan_out`, which queues one
``robot`` message per robot whose departments and events match, in one transaction: each with the
idempotency key
``robot:<robot id>:<event message id>``, so a fan-out run twice (a runner that died before recording it)
queues nothing twice. A burst for one robot is spread to the robot's documented limit (WeCom and DingTalk:
20 messages a minute per robot) by giving each message a later first attempt, never by dropping one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import get_category
from wecity.core.errors import NotFound, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import enqueue
from wecity.identity.choices import Role
from wecity.identity.models import departments, users
from wecity.identity.service import record_audit
from wecity.notify.choices import RobotEvent, RobotKind
from wecity.notify.models import robots, staff_robot_links
from wecity.notify.robot_messages import HEADLINES, CaseNotice, Mentions, body_for

# WeCom: "每个机器人发送的消息不能超过20条/分钟"; DingTalk: 每个机器人每分钟最多发送20条.
ROBOT_MESSAGES_PER_MINUTE = 20
SPACING = timedelta(seconds=60 / ROBOT_MESSAGES_PER_MINUTE)
# The query parameter that carries each service's key: masked wherever a robot is shown.
_KEY_PARAMS = {RobotKind.WECOM: "key", RobotKind.DINGTALK: "access_token"}
_MOBILE = re.compile(r"\+?[0-9]{6,15}")
_WECOM_USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
LOCALES = ("zh_CN", "en")


def _invalid(message: str, message_zh: str, code: str = "notify.invalid_robot") -> ValidationFailed:
    return ValidationFailed(message, message_zh=message_zh, code=code)


def _check_url(kind: RobotKind, url: str, policy: OutboundPolicy) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise _invalid(f"robot URL {url[:100]!r} must be http(s)://host/... (at most 500 characters)",
                       f"机器人地址 {url[:100]!r} 必须是 http(s)://主机/...（不超过 500 字符）", "notify.invalid_url")
    key = _KEY_PARAMS.get(kind)
    if key and not dict(parse_qsl(parts.query)).get(key):
        raise _invalid(f"a {kind} robot's URL carries its {key}=... (copy it whole from the group's robot settings)",
                       f"{kind} 机器人的地址应带有 {key}=...（请从群机器人设置中完整复制）", "notify.invalid_url")
    # The one outbound policy: an address it refuses outright is refused now, not at the first message.
    if policy.refuses_outright(url):
        raise _invalid(f"robot URL {url[:100]!r} names an address outbound requests may not reach "
                       "(WECITY_OUTBOUND_ALLOW)", f"机器人地址 {url[:100]!r} 指向不允许访问的地址（WECITY_OUTBOUND_ALLOW）",
                       "notify.url_not_allowed")


def set_robot(conn: Connection, *, name: str, kind: str, url: str, now: datetime, policy: OutboundPolicy,
              secret: str | None = None, department_ids: Iterable[int] = (), events: Iterable[str] = (),
              locale: str = "zh_CN", active: bool = True) -> dict[str, Any]:
    """Add the named robot, or replace its settings; returns it (a generic webhook's generated secret
    included, shown this once)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise _invalid("a robot needs a name of at most 100 characters", "机器人名称不能为空，且不超过 100 字符")
    try:
        robot_kind = RobotKind(kind)
    except ValueError:
        raise _invalid(f"unknown robot kind {kind!r}; use {', '.join(RobotKind)}",
                       f"未知机器人类型 {kind}；可用：{'、'.join(RobotKind)}") from None
    _check_url(robot_kind, url, policy)
    wanted = sorted(set(events))
    unknown = [e for e in wanted if e not in RobotEvent.__members__.values()]
    if not wanted or unknown:
        raise _invalid(f"events must be some of {', '.join(RobotEvent)}",
                       f"事件须为以下之一或多个：{'、'.join(RobotEvent)}")
    department_list = sorted(set(department_ids))
    if department_list:
        known = {r[0] for r in conn.execute(sa.select(departments.c.id).where(departments.c.id.in_(department_list)))}
        if missing := [d for d in department_list if d not in known]:
            raise NotFound(f"no department {missing[0]}", message_zh=f"没有部门 {missing[0]}", code="department.not_found")
    if locale not in LOCALES:
        raise _invalid(f"locale must be one of {', '.join(LOCALES)}", f"语言须为 {'、'.join(LOCALES)} 之一")
    if robot_kind == RobotKind.WECOM:
        secret = None  # a WeCom group robot has no signing secret: its key is in the URL
    elif robot_kind == RobotKind.WEBHOOK:
        secret = secret or secrets.token_urlsafe(32)
    if secret is not None and not 0 < len(secret) <= 200:
        raise _invalid("a secret has at most 200 characters", "密钥不超过 200 字符")
    values = dict(kind=str(robot_kind), url=url, secret=secret or None, department_ids=department_list,
                  events=wanted, locale=locale, active=active, updated_at=now)
    existing = conn.execute(sa.select(robots.c.id).where(robots.c.name == name)).scalar()
    if existing is None:
        robot_id = int(conn.execute(robots.insert().values(name=name, created_at=now, **values)
                                    .returning(robots.c.id)).scalar_one())
    else:
        robot_id = int(existing)
        conn.execute(robots.update().where(robots.c.id == robot_id).values(**values))
    return get_robot(conn, robot_id)


def get_robot(conn: Connection, robot_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(robots).where(robots.c.id == robot_id)).first()
    if row is None:
        raise NotFound(f"no robot {robot_id}", message_zh=f"机器人 {robot_id} 不存在", code="notify.robot_not_found")
    return dict(row._mapping)


def list_robots(conn: Connection, *, active_only: bool = False) -> list[dict[str, Any]]:
    query = sa.select(robots).order_by(robots.c.name)
    if active_only:
        query = query.where(robots.c.active.is_(True))
    return [dict(r._mapping) for r in conn.execute(query)]


def remove_robot(conn: Connection, robot_id: int) -> dict[str, Any]:
    robot = get_robot(conn, robot_id)
    conn.execute(robots.delete().where(robots.c.id == robot_id))
    return robot


def masked_url(kind: str, url: str) -> str:
    """The robot's URL with its key shown only by its first four characters: enough to tell two apart."""
    key = _KEY_PARAMS.get(RobotKind(kind)) if kind in RobotKind.__members__.values() else None
    parts = urlsplit(url)
    query = [(k, (v[:4] + "…") if k == key or k in ("key", "access_token", "token") else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    # Written out, not URL-encoded: it is for reading, and "…" is not a key's character.
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(f"{k}={v}" for k, v in query), ""))


def public_robot(robot: dict[str, Any]) -> dict[str, Any]:
    """A robot as administrators see it: the URL's key masked, the secret never shown."""
    return {"id": robot["id"], "name": robot["name"], "kind": robot["kind"],
            "url": masked_url(robot["kind"], robot["url"]), "has_secret": bool(robot["secret"]),
            "department_ids": list(robot["department_ids"]), "events": list(robot["events"]),
            "locale": robot["locale"], "active": robot["active"]}


# -- staff members' links ------------------------------------------------------------------------------

def get_link(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(staff_robot_links).where(staff_robot_links.c.user_id == user_id)).first()
    return None if row is None else dict(row._mapping)


def set_link(conn: Connection, *, user_id: int, mobile: str | None, wecom_userid: str | None, now: datetime,
             source_address: str | None = None) -> dict[str, Any] | None:
    """Set (or, with both empty, remove) how the robots @mention this staff member; audited."""
    mobile = re.sub(r"[\s-]", "", mobile or "") or None
    wecom_userid = (wecom_userid or "").strip() or None
    if mobile is not None and not _MOBILE.fullmatch(mobile):
        raise ValidationFailed("a mobile number is 6 to 15 digits, with an optional leading +",
                               message_zh="手机号应为 6 到 15 位数字，可带 + 号", code="notify.invalid_mobile")
    if wecom_userid is not None and not _WECOM_USERID.fullmatch(wecom_userid):
        raise ValidationFailed("a WeCom userid is at most 64 letters, digits and _ . @ -",
                               message_zh="企业微信账号（userid）不超过 64 位字母、数字及 _ . @ -",
                               code="notify.invalid_userid")
    conn.execute(staff_robot_links.delete().where(staff_robot_links.c.user_id == user_id))
    if mobile or wecom_userid:
        conn.execute(staff_robot_links.insert().values(user_id=user_id, mobile=mobile, wecom_userid=wecom_userid,
                                                       updated_at=now))
    record_audit(conn, at=now, actor=f"user:{user_id}", action="staff_link.set", target=f"user:{user_id}",
                 source_address=source_address,
                 detail={"mobile": mobile is not None, "wecom_userid": wecom_userid is not None})
    return get_link(conn, user_id)


# -- fan-out -------------------------------------------------------------------------------------------

def wants(robot: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether the robot hears of this staff event: its kind, and the case's department (none listed: any)."""
    return (robot["active"] and event.get("event") in robot["events"]
            and (not robot["department_ids"] or event.get("department_id") in robot["department_ids"]))


def _mentioned(conn: Connection, event: dict[str, Any]) -> list[Any]:
    """The staff a message @mentions: the person a case is assigned to; for an escalation or a citizen's
    催办 of a case no one holds yet, the department's supervisors. Only those who linked a mobile or userid."""
    kind, assignee, department_id = event.get("event"), event.get("assignee_id"), event.get("department_id")
    if kind == RobotEvent.DISPATCHED:
        return []
    query = (sa.select(users.c.id, users.c.locale, users.c.roles, staff_robot_links.c.mobile,
                       staff_robot_links.c.wecom_userid)
             .select_from(users.join(staff_robot_links, staff_robot_links.c.user_id == users.c.id))
             .where(users.c.is_active.is_(True)))
    if assignee is not None:
        return list(conn.execute(query.where(users.c.id == assignee)))
    if kind in (RobotEvent.ESCALATED, RobotEvent.URGED) and department_id is not None:
        rows = conn.execute(query.where(users.c.department_id == department_id).order_by(users.c.id))
        return [r for r in rows if Role.SUPERVISOR in r.roles.split()]
    return []


def _notice(conn: Connection, event: dict[str, Any], *, locale: str, public_url: str | None) -> CaseNotice:
    case_id = int(event["case_id"])
    try:
        category = get_category(conn, str(event.get("category"))).name(locale)
    except NotFound:
        category = str(event.get("category"))
    department = conn.execute(sa.select(departments.c.name_zh, departments.c.name_en)
                              .where(departments.c.id == event.get("department_id"))).first()
    department_name = "—" if department is None else (department.name_zh if locale.startswith("zh")
                                                      else department.name_en)
    assignee = None
    if event.get("assignee_id") is not None:
        assignee = conn.execute(sa.select(users.c.display_name).where(users.c.id == event["assignee_id"])).scalar()
    detail = str(event.get("detail") or event.get("event"))
    if detail not in HEADLINES:
        detail = str(event.get("event"))
    return CaseNotice(event=str(event["event"]), detail=detail, case_id=case_id, category=category,
                      department=department_name, link=f"{public_url or ''}/staff/cases/{case_id}", locale=locale,
                      stars=event.get("stars"), assignee=assignee)


def fan_out(conn: Connection, *, message_id: int, event: dict[str, Any], robot_ids: Sequence[int], now: datetime,
            public_url: str | None) -> list[int]:
    """Queue one robot message per robot (of `robot_ids`) that still wants this event; returns their outbox
    ids. Run again for the same event message, it queues nothing new and spends no rate-limit slot."""
    if not robot_ids:
        return []
    query = sa.select(robots).where(robots.c.id.in_(list(robot_ids))).order_by(robots.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # two runners fanning out to one robot take its slots in turn
    wanted = [dict(r._mapping) for r in conn.execute(query)]
    wanted = [r for r in wanted if wants(r, event)]
    if not wanted:
        return []
    keys = {r["id"]: f"robot:{r['id']}:{message_id}" for r in wanted}
    done = {row[0] for row in conn.execute(sa.select(outbox_messages.c.dedupe_key)
                                           .where(outbox_messages.c.dedupe_key.in_(list(keys.values()))))}
    people = _mentioned(conn, event)
    mentions = Mentions(mobiles=[p.mobile for p in people if p.mobile],
                        userids=[p.wecom_userid for p in people if p.wecom_userid])
    queued = []
    for robot in wanted:
        key = keys[robot["id"]]
        if key in done:
            continue
        # A message for one person speaks their language; a message for the group, the robot's.
        locale = people[0].locale if len(people) == 1 else robot["locale"]
        # A WeCom group robot also mentions by userid; DingTalk only by mobile.
        robot_mentions = mentions if robot["kind"] != RobotKind.DINGTALK else Mentions(mobiles=mentions.mobiles)
        body = body_for(robot["kind"], _notice(conn, event, locale=locale, public_url=public_url), robot_mentions,
                        at=str(event.get("at") or now.isoformat()))
        slot = max(now, robot["next_slot_at"] or now)
        conn.execute(robots.update().where(robots.c.id == robot["id"]).values(next_slot_at=slot + SPACING))
        queued.append(enqueue(conn, channel="robot", target=f"robot:{robot['id']}",
                              payload={"body": body, "case_id": event["case_id"], "event": event["event"]},
                              now=now, dedupe_key=key, not_before=slot))
        for person in people:
            if person.mobile and robot_mentions.mobiles:
                # A staff member's mobile leaves the platform for the group: on the record.
                record_audit(conn, at=now, actor="system", action="staff_link.mention", target=f"user:{person.id}",
                             detail={"robot": robot["name"], "case": event["case_id"], "event": event["event"]})
    return queued
