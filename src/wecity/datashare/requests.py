"""Requests and grants (共享申请与授权): how one department comes to read another's data.

A department asks for a published dataset with a purpose, the fields it needs (and which personal ones
it must see in clear), a row filter (for example one district) and a period. The providing department
decides on a clock of working days from submission, as the government data-sharing rules set it: an
unconditional resource within 2, a conditional one within 5. It may grant what was asked or less (fewer
fields, fewer rows, a shorter period), never more; a refusal, and any grant of a conditional resource,
gives reasons. A resource classed "not shared" cannot be asked for, and open data needs no grant. A
request still unanswered after its due day is escalated to the coordinating department (`tasks.py`).

A grant is what the data API enforces (`access.py`): its fields, masking, rows, expiry, revocation and
rate limit. Every step is an event on the request and an entry in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from jsonschema import Draft202012Validator
from sqlalchemy.engine import Connection

from wecity.core.db import inserted_id
from wecity.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from wecity.core.limits import parse_rule
from wecity.core.outbox import enqueue_many
from wecity.datashare import queries, sources
from wecity.datashare.catalogue import PERSONAL
from wecity.datashare.models import data_grants, data_request_events, data_requests
from wecity.geo.service import city_calendar, city_today
from wecity.govservice.clock import add_working_days, local_day
from wecity.identity.audit import record_audit
from wecity.identity.models import departments
from wecity.identity.service import StaffUser

# Working days the provider has to answer, by share class (政务数据共享: 2 for 无条件, 5 for 有条件).
ANSWER_DAYS = {"unconditional": 2, "conditional": 5}
MAX_DAYS = 366
DEFAULT_RATE_LIMIT = "60/minute"
OPEN = "submitted"
STATES = (OPEN, "granted", "refused", "withdrawn")

_VALUES = {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 200}}
_NAMES = {"type": "array", "maxItems": 200, "uniqueItems": True, "items": {"type": "string", "minLength": 1, "maxLength": 100}}
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["dataset", "purpose", "fields", "days"],
    "properties": {
        "dataset": {"type": "string", "minLength": 1, "maxLength": 100},
        "purpose": {"type": "string", "minLength": 4, "maxLength": 2000},
        "basis": {"type": "string", "maxLength": 2000},
        "fields": {**_NAMES, "minItems": 1},
        "clear_fields": _NAMES,
        "row_filter": {"type": "object", "maxProperties": 20, "additionalProperties": _VALUES},
        "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
    },
}
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["decision"],
    "properties": {
        "decision": {"enum": ["grant", "refuse"]},
        "reasons": {"type": "string", "maxLength": 4000},
        "basis": {"type": "string", "maxLength": 2000},
        "fields": {**_NAMES, "minItems": 1},
        "clear_fields": _NAMES,
        "row_filter": {"type": "object", "maxProperties": 20, "additionalProperties": _VALUES},
        "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
        "rate_limit": {"type": "string", "maxLength": 40},
        "disclose_after_days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
        "disclosure_basis": {"type": "string", "maxLength": 2000},
    },
}
_REQUEST = Draft202012Validator(REQUEST_SCHEMA)
_DECISION = Draft202012Validator(DECISION_SCHEMA)


def _invalid(message: str, message_zh: str, code: str = "datashare.request_invalid") -> ValidationFailed:
    return ValidationFailed(message, message_zh=message_zh, code=code)


# What people call the parts of a request, in messages.
_PARTS = {"fields": ("the fields", "字段"), "clear_fields": ("the fields in clear", "明文字段"),
          "days": ("the number of days", "使用期限（天）"), "purpose": ("the purpose", "用途"),
          "basis": ("the basis", "依据"), "reasons": ("the reasons", "理由"), "row_filter": ("the row filter", "记录范围"),
          "dataset": ("the dataset", "数据集"), "rate_limit": ("the rate limit", "调用频率上限"),
          "decision": ("the decision", "决定"), "disclose_after_days": ("the days the notice waits", "延迟告知天数"),
          "disclosure_basis": ("the basis for delaying the notice", "延迟告知的法律依据")}
# The decisions, as the message naming them says them.
_DECISIONS = {"grant": ("grant", "同意"), "refuse": ("refuse", "拒绝")}


def _explained(error: Any) -> tuple[str, str]:
    """A schema error in words a department officer reads, in both languages."""
    part = str(error.path[0]) if error.path else ""
    en, zh = _PARTS.get(part, (part or "the request", part or "申请"))
    kind, bound = error.validator, error.validator_value
    if kind == "minItems":
        return f"Choose at least one of {en}.", f"请至少选择一项{zh}。"
    if kind == "minLength":
        return f"Fill in {en} (at least {bound} characters).", f"请填写{zh}（至少 {bound} 个字）。"
    if kind in ("maxLength", "maxItems", "maxProperties"):
        return f"{en.capitalize()} is too long (at most {bound}).", f"{zh}过长（最多 {bound}）。"
    if kind == "minimum":
        return f"{en.capitalize()} is at least {bound}.", f"{zh}不得小于 {bound}。"
    if kind == "maximum":
        return f"{en.capitalize()} is at most {bound}.", f"{zh}不得大于 {bound}。"
    if kind == "enum" and part == "decision":
        return (f"The decision is {' or '.join(en for en, _ in _DECISIONS.values())}.",
                f"决定须为{'或'.join(f'{zh}（{key}）' for key, (_, zh) in _DECISIONS.items())}。")
    if kind == "required":
        given = error.instance if isinstance(error.instance, dict) else {}
        missing = [str(k) for k in (bound if isinstance(bound, list) else [bound]) if k not in given]
        named = [_PARTS.get(k, (k, k)) for k in missing]
        return (f"Fill in {', '.join(en for en, _ in named)}.", f"请填写：{'、'.join(zh for _, zh in named)}。")
    return f"{en.capitalize()}: {error.message}.", f"{zh}格式不正确（{error.message}）。"


def _check(validator: Draft202012Validator, body: Any) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    if errors:
        en, zh = _explained(errors[0])
        raise _invalid(en, zh)


def department_of(conn: Connection, user: StaffUser) -> str | None:
    if user.department_id is None:
        return None
    return conn.execute(sa.select(departments.c.code).where(departments.c.id == user.department_id)).scalar()


def _department_id(conn: Connection, code: str) -> int | None:
    return conn.execute(sa.select(departments.c.id).where(departments.c.code == code)).scalar()


def _scope(conn: Connection, d: dict[str, Any], fields: list[str], clear: list[str],
           row_filter: dict[str, list[str]]) -> list[str]:
    """Check a scope against the dataset; the fields in the dataset's order."""
    known = {f["name"]: f for f in d["fields"]}
    unknown = [f for f in [*fields, *clear, *row_filter] if f not in known]
    if unknown:
        raise _invalid(f"dataset {d['name']} has no field {', '.join(dict.fromkeys(unknown))}",
                       f"数据集 {d['name']} 没有字段：{'、'.join(dict.fromkeys(unknown))}", "datashare.unknown_field")
    not_asked = [f for f in clear if f not in fields]
    if not_asked:
        raise _invalid(f"{', '.join(not_asked)} in clear: tick the field itself too",
                       f"明文字段 {'、'.join(not_asked)}：请同时勾选该字段本身")
    not_personal = [f for f in clear if known[f]["sensitivity"] not in PERSONAL]
    if not_personal:
        raise _invalid(f"{', '.join(not_personal)} are not personal: only personal fields are masked",
                       f"{'、'.join(not_personal)} 不是个人信息字段，无需申请明文")
    # A row filter on a personal field would pick people out by a value the grant shows masked, or not at all.
    by_personal = [f for f in row_filter if known[f]["sensitivity"] in PERSONAL and f not in clear]
    if by_personal:
        raise _invalid(f"{', '.join(by_personal)} are personal: rows are not chosen by them unless the field is "
                       "granted in clear", f"{'、'.join(by_personal)} 属于个人信息，除非明文授权该字段，不能作为记录范围条件",
                       "datashare.bad_filter")
    vocabularies = sources.vocabularies(conn, d)
    for name, values in row_filter.items():
        allowed = {term[0]: term for term in vocabularies.get(name, [])}
        strangers = [v for v in values if allowed and v not in allowed]
        if strangers:
            listed = ", ".join(f"{code} ({en})" for code, _, en in allowed.values())
            listed_zh = "、".join(f"{code}（{zh}）" for code, zh, _ in allowed.values())
            raise _invalid(f"{name}: {', '.join(strangers)} is not a value of this field; it takes {listed}",
                           f"{name}：{'、'.join(strangers)} 不是该字段的取值，可选：{listed_zh}",
                           "datashare.bad_filter")
    return [f["name"] for f in d["fields"] if f["name"] in set(fields)]


def _event(conn: Connection, request_id: int, event: str, *, actor: str, now: datetime,
           department: str | None = None, note: str | None = None) -> None:
    conn.execute(data_request_events.insert().values(request_id=request_id, at=now, event=event, actor=actor,
                                                     department=department, note=note))


_TEXT = {
    "submitted": ("数据共享申请 #{id}：{dept} 申请使用「{title}」", "Data request #{id}: {dept} asks for “{title}”"),
    "granted": ("数据共享申请 #{id} 已授权：「{title}」", "Data request #{id} granted: “{title}”"),
    "refused": ("数据共享申请 #{id} 未获同意：「{title}」", "Data request #{id} refused: “{title}”"),
    "escalated": ("数据共享申请 #{id} 已超期未答复：「{title}」", "Data request #{id} is overdue: “{title}”"),
    "revoked": ("数据共享授权 #{id} 已撤销：「{title}」", "Data grant #{id} revoked: “{title}”"),
    "urged": ("数据共享协调部门督办申请 #{id}：「{title}」", "The coordinating department urges an answer to data request #{id}: “{title}”"),
}


def tell(conn: Connection, department: str, event: str, *, request_id: int, title: str, now: datetime,
         requester: str = "", role: str = "") -> None:
    """An in-app message to a department's staff (or those of it with `role`)."""
    dept_id = _department_id(conn, department)
    if dept_id is None:
        return
    zh, en = _TEXT[event]
    target = f"department:{dept_id}" + (f":{role}" if role else "")
    enqueue_many(conn, [("in_app", target, {
        "title_zh": zh.format(id=request_id, dept=requester, title=title),
        "title_en": en.format(id=request_id, dept=requester, title=title), "body": "",
        "link": f"/sharing/requests/{request_id}", "event": f"data_request.{event}", "request_id": request_id})], now=now)


def submit_request(conn: Connection, user: StaffUser, body: Any, *, now: datetime) -> int:
    """A department's request for a dataset; its id. The provider's clock starts now."""
    _check(_REQUEST, body)
    requester = department_of(conn, user)
    if requester is None:
        raise PermissionDenied("a request is made by a department's staff", message_zh="须由部门工作人员提出申请",
                               code="datashare.no_department")
    d = queries.dataset(conn, body["dataset"])
    if d["share_class"] == "not_shared":
        raise Conflict(f"dataset {d['name']} is not shared ({d['legal_basis']})",
                       message_zh=f"数据集 {d['name']} 属于不予共享类（{d['legal_basis']}）", code="datashare.not_shared")
    if d["open_data"]:
        raise Conflict(f"dataset {d['name']} is open data: read it without a grant",
                       message_zh=f"数据集 {d['name']} 是开放数据，无需申请即可获取", code="datashare.open_data")
    if d["publisher"] == requester:
        raise Conflict("a department reads its own datasets without a grant", message_zh="本部门数据无需申请共享",
                       code="datashare.own_dataset")
    row_filter = body.get("row_filter") or {}
    fields = _scope(conn, d, body["fields"], body.get("clear_fields") or [], row_filter)
    # The fields that choose the rows are asked for as fields: what a grant lets be seen is in its fields.
    unasked = [f for f in row_filter if f not in fields]
    if unasked:
        raise _invalid(f"{', '.join(unasked)}: tick a field to limit the rows by it",
                       f"{'、'.join(unasked)}：请先勾选该字段，再按其限定记录范围", "datashare.bad_filter")
    clear = [f for f in fields if f in set(body.get("clear_fields") or [])]
    calendar = city_calendar(conn)
    due = add_working_days(calendar, local_day(now, calendar), ANSWER_DAYS[d["share_class"]])
    request_id = inserted_id(conn.execute(data_requests.insert().values(
        dataset_id=d["id"], requester=requester, provider=d["publisher"], requested_by=user.username,
        purpose=body["purpose"].strip(), basis=(body.get("basis") or "").strip(), fields=fields, clear_fields=clear,
        row_filter=row_filter, days=body["days"], state=OPEN, submitted_at=now, due_on=due)))
    _event(conn, request_id, "submitted", actor=user.username, now=now, department=requester,
           note=body["purpose"].strip())
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_request.submit",
                 target=f"data_request:{request_id}", detail={"dataset": d["name"], "fields": fields,
                                                              "clear_fields": clear, "row_filter": row_filter})
    tell(conn, d["publisher"], "submitted", request_id=request_id, title=d["title_zh"], now=now, requester=requester)
    return request_id


@dataclass(frozen=True)
class Scope:
    fields: list[str]
    clear_fields: list[str]
    row_filter: dict[str, list[str]]
    days: int


def _narrowed(conn: Connection, d: dict[str, Any], asked: Any, body: dict[str, Any]) -> Scope:
    """The scope a provider grants: what was asked, or a part of it; never more."""
    fields: list[str] = body.get("fields") or list(asked.fields)
    # Clear fields not said again: those asked for that are still granted.
    clear: list[str] = body["clear_fields"] if "clear_fields" in body else [
        f for f in asked.clear_fields if f in fields]
    row_filter: dict[str, list[str]] = body["row_filter"] if "row_filter" in body else dict(asked.row_filter)
    days: int = body.get("days") or asked.days
    ordered = _scope(conn, d, fields, clear, row_filter)
    wider = [f for f in fields if f not in asked.fields] + [f for f in clear if f not in asked.clear_fields]
    for name, values in asked.row_filter.items():
        if name not in row_filter:
            wider.append(f"row_filter.{name}")
        else:
            wider += [f"row_filter.{name}={v}" for v in row_filter[name] if v not in values]
    if days > asked.days:
        wider.append(f"days={days}")
    if wider:
        raise _invalid(f"a grant gives what was asked or less; more than asked: {', '.join(wider)}",
                       f"授权范围不得超出申请：{'、'.join(wider)}", "datashare.grant_wider")
    return Scope(ordered, [f for f in ordered if f in set(clear)], row_filter, days)


def _provider_lead(conn: Connection, user: StaffUser, provider: str) -> None:
    """Decisions on a department's data are its supervisors' (or an administrator's)."""
    if "admin" in user.roles:
        return
    if department_of(conn, user) != provider or "supervisor" not in user.roles:
        raise PermissionDenied("decisions on a dataset are taken by its department's supervisors",
                               message_zh="数据共享事项由数据提供部门的负责人决定", code="datashare.not_provider")


def _open_request(conn: Connection, request_id: int) -> Any:
    """The request, locked for the rest of the transaction (FOR UPDATE; SQLite has one writer anyway): a
    grant and a refusal, or a withdrawal, at the same moment are taken one after the other, and the second
    finds the request no longer open."""
    row = conn.execute(sa.select(data_requests).where(data_requests.c.id == request_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no data request {request_id}", message_zh=f"数据共享申请 {request_id} 不存在")
    return row


def decide(conn: Connection, request_id: int, user: StaffUser, body: Any, *, now: datetime) -> int | None:
    """The provider's answer: a grant (its id) or a refusal (None)."""
    req = _open_request(conn, request_id)
    _provider_lead(conn, user, req.provider)  # who asks first: a stranger learns nothing from the checks below
    if isinstance(body, dict) and body.get("decision") == "grant" and body.get("fields") == []:
        raise _invalid("Choose at least one field to grant, or refuse the request.",
                       "请至少选择一个授权字段，或作出不予共享的决定。", "datashare.no_fields")
    _check(_DECISION, body)
    if req.state != OPEN:
        raise Conflict(f"data request {request_id} is {req.state}", message_zh=f"该申请已处理（{req.state}）",
                       code="datashare.request_closed")
    d = queries.dataset_by_id(conn, req.dataset_id)
    reasons, basis = (body.get("reasons") or "").strip(), (body.get("basis") or "").strip()
    if body["decision"] == "refuse":
        if not reasons or not basis:
            raise _invalid("Give the reasons for refusing and their legal basis.", "不予共享须说明理由及依据。",
                           "datashare.reasons_required")
        conn.execute(data_requests.update().where(data_requests.c.id == request_id).values(
            state="refused", decided_at=now, decided_by=user.username, reasons=reasons, decision_basis=basis))
        _event(conn, request_id, "refused", actor=user.username, now=now, department=req.provider, note=reasons)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="data_request.refuse",
                     target=f"data_request:{request_id}", detail={"reasons": reasons, "basis": basis})
        tell(conn, req.requester, "refused", request_id=request_id, title=d["title_zh"], now=now)
        return None
    if d["share_class"] == "conditional" and not reasons:
        raise _invalid("Data shared on conditions is granted with reasons: say which conditions the request meets.",
                       "有条件共享的数据须说明授权理由（满足了哪些条件）。", "datashare.reasons_required")
    scope = _narrowed(conn, d, req, body)
    rate = body.get("rate_limit") or DEFAULT_RATE_LIMIT
    try:
        parse_rule(rate)
    except ValueError as exc:
        raise _invalid(f"rate_limit: {exc}", f"rate_limit 格式不正确：{exc}") from None
    delay = body.get("disclose_after_days")
    disclosure_basis = (body.get("disclosure_basis") or "").strip()
    if delay and not disclosure_basis:
        raise _invalid("Give the legal basis for delaying the notice.", "延迟告知须说明法律依据。",
                       "datashare.reasons_required")
    grant_id = inserted_id(conn.execute(data_grants.insert().values(
        request_id=request_id, dataset_id=req.dataset_id, grantee=req.requester, purpose=req.purpose,
        fields=scope.fields, clear_fields=scope.clear_fields, row_filter=scope.row_filter, rate_limit=rate,
        granted_at=now, granted_by=user.username, expires_at=now + timedelta(days=scope.days),
        disclose_from=now + timedelta(days=delay) if delay else None,
        disclosure_basis=disclosure_basis or None)))
    conn.execute(data_requests.update().where(data_requests.c.id == request_id).values(
        state="granted", decided_at=now, decided_by=user.username, reasons=reasons or None,
        decision_basis=basis or None))
    _event(conn, request_id, "granted", actor=user.username, now=now, department=req.provider, note=reasons or None)
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_grant.create",
                 target=f"data_grant:{grant_id}", detail={
                     "request": request_id, "fields": scope.fields, "clear_fields": scope.clear_fields,
                     "row_filter": scope.row_filter, "days": scope.days, "rate_limit": rate, "reasons": reasons,
                     "disclose_after_days": delay, "disclosure_basis": disclosure_basis or None})
    tell(conn, req.requester, "granted", request_id=request_id, title=d["title_zh"], now=now)
    return grant_id


def withdraw(conn: Connection, request_id: int, user: StaffUser, *, now: datetime) -> None:
    req = _open_request(conn, request_id)
    if "admin" not in user.roles and department_of(conn, user) != req.requester:
        raise PermissionDenied("a request is withdrawn by the department that made it",
                               message_zh="只有申请部门可以撤回申请", code="datashare.not_requester")
    if req.state != OPEN:
        raise Conflict(f"data request {request_id} is {req.state}", message_zh=f"该申请已处理（{req.state}）",
                       code="datashare.request_closed")
    conn.execute(data_requests.update().where(data_requests.c.id == request_id).values(
        state="withdrawn", decided_at=now, decided_by=user.username))
    _event(conn, request_id, "withdrawn", actor=user.username, now=now, department=req.requester)
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_request.withdraw",
                 target=f"data_request:{request_id}")


def _grant(conn: Connection, grant_id: int) -> Any:
    """The grant, locked for the rest of the transaction (FOR UPDATE): two revocations at once are taken one
    after the other, and the second finds it revoked."""
    row = conn.execute(sa.select(data_grants).where(data_grants.c.id == grant_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no data grant {grant_id}", message_zh=f"数据共享授权 {grant_id} 不存在")
    return row


def revoke(conn: Connection, grant_id: int, user: StaffUser, reason: str, *, now: datetime) -> None:
    """End a grant before its expiry (the provider's supervisors); calls under it are refused from now."""
    grant = _grant(conn, grant_id)
    d = queries.dataset_by_id(conn, grant.dataset_id)
    _provider_lead(conn, user, d["publisher"])
    reason = (reason or "").strip()
    if not reason:
        raise _invalid("Give the reason for revoking the grant.", "撤销授权须说明理由。", "datashare.reasons_required")
    if grant.revoked_at is not None:
        raise Conflict(f"data grant {grant_id} is already revoked", message_zh="该授权已撤销",
                       code="datashare.grant_revoked")
    conn.execute(data_grants.update().where(data_grants.c.id == grant_id).values(
        revoked_at=now, revoked_by=user.username, revoke_reason=reason[:2000]))
    if grant.request_id is not None:
        _event(conn, grant.request_id, "revoked", actor=user.username, now=now, department=d["publisher"], note=reason)
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_grant.revoke",
                 target=f"data_grant:{grant_id}", detail={"reason": reason[:2000]})
    tell(conn, grant.grantee, "revoked", request_id=grant.request_id or grant_id, title=d["title_zh"], now=now)


def grant_state(grant: Any, now: datetime) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    return "expired" if grant.expires_at <= now else "active"


def check_clocks(conn: Connection, now: datetime, coordinator: str) -> int:
    """Escalate every request still open after its due day: to the coordinating department, and to the
    provider's supervisors. Once per request. Returns how many were escalated."""
    calendar = city_calendar(conn)
    today = local_day(now, calendar)
    late = conn.execute(sa.select(data_requests.c.id, data_requests.c.provider, data_requests.c.dataset_id,
                                  data_requests.c.due_on)
                        .where(data_requests.c.state == OPEN, data_requests.c.escalated_at.is_(None),
                               data_requests.c.due_on < today)).all()
    for row in late:
        conn.execute(data_requests.update().where(data_requests.c.id == row.id).values(escalated_at=now))
        _event(conn, row.id, "escalated", actor="system", now=now, department=coordinator)
        title = queries.dataset_by_id(conn, row.dataset_id)["title_zh"]
        tell(conn, coordinator, "escalated", request_id=row.id, title=title, now=now)
        tell(conn, row.provider, "escalated", request_id=row.id, title=title, now=now, role="supervisor")
    return len(late)


def delay_disclosure(conn: Connection, grant_id: int, user: StaffUser, *, days: int, basis: str, now: datetime) -> None:
    """Keep readings under a grant from the people they are about for `days` from now (an investigation the
    law lets stay unannounced): the provider's supervisors decide, give the basis, and the audit log has it.
    Readings made meanwhile appear on their pages when the delay ends; nothing is hidden for good."""
    grant = _grant(conn, grant_id)
    d = queries.dataset_by_id(conn, grant.dataset_id)
    _provider_lead(conn, user, d["publisher"])
    basis = (basis or "").strip()
    if not basis:
        raise _invalid("Give the legal basis for delaying the notice.", "延迟告知须说明法律依据。",
                       "datashare.reasons_required")
    if not 1 <= days <= MAX_DAYS:
        raise _invalid(f"days is 1 to {MAX_DAYS}", f"天数应在 1 至 {MAX_DAYS} 之间")
    until = now + timedelta(days=days)
    conn.execute(data_grants.update().where(data_grants.c.id == grant_id).values(
        disclose_from=until, disclosure_basis=basis[:2000]))
    if grant.request_id is not None:
        _event(conn, grant.request_id, "disclosure_delayed", actor=user.username, now=now,
               department=d["publisher"], note=f"{city_today(conn, until).isoformat()}: {basis[:500]}")
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_grant.delay_disclosure",
                 target=f"data_grant:{grant_id}", detail={"until": until.isoformat(), "basis": basis[:2000]})


def urge(conn: Connection, request_id: int, user: StaffUser, note: str, *, now: datetime, coordinator: str) -> None:
    """The coordinating department presses the provider for an answer (督办): a notice to the provider's
    supervisors, on the request's timeline and in the audit log. Only while the request is open."""
    req = _open_request(conn, request_id)
    if "admin" not in user.roles and department_of(conn, user) != coordinator:
        raise PermissionDenied("only the coordinating department urges an answer", message_zh="仅数据共享协调部门可以督办",
                               code="datashare.not_coordinator")
    if req.state != OPEN:
        raise Conflict(f"data request {request_id} is {req.state}", message_zh=f"该申请已处理（{req.state}）",
                       code="datashare.request_closed")
    note = (note or "").strip()[:2000]
    _event(conn, request_id, "urged", actor=user.username, now=now, department=coordinator, note=note or None)
    record_audit(conn, at=now, actor=f"user:{user.username}", action="data_request.urge",
                 target=f"data_request:{request_id}", detail={"note": note})
    title = queries.dataset_by_id(conn, req.dataset_id)["title_zh"]
    tell(conn, req.provider, "urged", request_id=request_id, title=title, now=now, role="supervisor")


def may_see(conn: Connection, user: StaffUser, *, requester: str, provider: str, coordinator: str) -> bool:
    """A request or grant is seen by both departments, the coordinating one, and administrators."""
    return "admin" in user.roles or department_of(conn, user) in (requester, provider, coordinator)
