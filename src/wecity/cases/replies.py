"""Standard replies (标准回复): texts administrators keep per case state and category, with `{{field}}`
placeholders a handler fills before the reply is sent (a resolution note, or a note shown to the citizen).

The format is plain substitution and nothing more: a placeholder is `{{` a name `}}`, up to 40 characters
between the braces (spaces around the name included) and none of them a brace; filling replaces each placeholder once, in one pass, with the text given (a
value that itself looks like a placeholder is not filled again). There are no expressions, loops or
filters, so a template written by an administrator, or a value typed by a handler, is never code. A text
that still holds a placeholder is not sent (`require_filled`, which the case engine runs on every
resolution note and public note).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import CaseStatus, ReplyUse
from wecity.cases.models import cases, categories, reply_templates
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed
from wecity.identity.choices import Role
from wecity.identity.service import StaffUser, record_audit

# Whatever lies between the braces, at most 40 characters, is the name once stripped of spaces. Spaces are not
# matched on their own around it (`\{\{\s*(…{1,40}?)\s*\}\}`): unbounded runs that the name may match as well
# made a search quadratic in a run of spaces, seconds for a few thousand in a note, inside the write.
PLACEHOLDER = re.compile(r"\{\{([^{}]{1,40})\}\}")
LOCALES = ("zh_CN", "en")
MAX_BODY = 4000
MAX_NAME = 200
MAX_VALUE = 500
MAX_FIELDS = 20


def fields(body: str) -> list[str]:
    """The names of the placeholders in `body`, each once, in the order they first appear."""
    return list(dict.fromkeys(m.group(1).strip() for m in PLACEHOLDER.finditer(body)))


def fill(body: str, values: dict[str, str]) -> str:
    """`body` with every placeholder replaced by its value; refuses (naming them) if any is left empty."""
    cleaned = {k.strip(): (v or "").strip() for k, v in values.items()}
    missing = [name for name in fields(body) if not cleaned.get(name)]
    if missing:
        raise ValidationFailed(f"fill in: {', '.join(missing)}", message_zh=f"请填写：{'、'.join(missing)}",
                               code="reply.unfilled", details={"fields": missing})
    too_long = [name for name in fields(body) if len(cleaned[name]) > MAX_VALUE]
    if too_long:
        raise ValidationFailed(f"at most {MAX_VALUE} characters in: {', '.join(too_long)}",
                               message_zh=f"以下内容不能超过 {MAX_VALUE} 字：{'、'.join(too_long)}",
                               code="reply.too_long", details={"fields": too_long})
    return PLACEHOLDER.sub(lambda m: cleaned[m.group(1).strip()], body)


def require_filled(text: str) -> None:
    """A reply about to be sent must have no placeholder left in it."""
    left = fields(text or "")
    if left:
        raise ValidationFailed(f"fill in: {', '.join(left)}", message_zh=f"请填写：{'、'.join(left)}",
                               code="reply.unfilled", details={"fields": left})


# -- administrators keep them ---------------------------------------------------------------------------

def _require_admin(user: StaffUser) -> None:
    if not user.has(Role.ADMIN):
        raise PermissionDenied("administrators only", message_zh="仅限管理员", code="auth.admin_only")


def _checked(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    name = str(values.get("name") or "").strip()
    body = str(values.get("body") or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(f"a name of 1 to {MAX_NAME} characters", message_zh=f"名称须为 1 到 {MAX_NAME} 字",
                               code="reply.name")
    if not body or len(body) > MAX_BODY:
        raise ValidationFailed(f"a text of 1 to {MAX_BODY} characters", message_zh=f"正文须为 1 到 {MAX_BODY} 字",
                               code="reply.body")
    if body.count("{{") != len(PLACEHOLDER.findall(body)) or body.count("}}") != len(PLACEHOLDER.findall(body)):
        raise ValidationFailed("each field is written {{name}}, the name without braces, up to 40 characters",
                               message_zh="字段须写作 {{名称}}，名称不含花括号，最多 40 字", code="reply.body")
    if len(fields(body)) > MAX_FIELDS:
        raise ValidationFailed(f"at most {MAX_FIELDS} fields", message_zh=f"字段最多 {MAX_FIELDS} 个",
                               code="reply.body")
    locale = values.get("locale")
    if locale not in LOCALES:
        raise ValidationFailed("locale must be zh_CN or en", message_zh="语言须为 zh_CN 或 en", code="reply.locale")
    use = values.get("use")
    if use not in {u.value for u in ReplyUse}:
        raise ValidationFailed("use must be resolve or note", message_zh="用途须为 resolve 或 note", code="reply.use")
    status = values.get("status") or None
    if status is not None and status not in {s.value for s in CaseStatus}:
        raise ValidationFailed(f"no case state {status!r}", message_zh=f"没有案件状态 {status}", code="reply.status")
    category = values.get("category_code") or None
    if category is not None and conn.execute(sa.select(categories.c.code).where(
            categories.c.code == category)).first() is None:
        raise ValidationFailed(f"no category {category!r}", message_zh=f"没有类别 {category}", code="reply.category")
    return {"name": name, "body": body, "locale": locale, "use": use, "status": status, "category_code": category,
            "active": bool(values.get("active", True))}


def create_template(conn: Connection, user: StaffUser, values: dict[str, Any], *, now: datetime,
                    source_address: str | None = None) -> int:
    _require_admin(user)
    row = _checked(conn, values)
    key = conn.execute(reply_templates.insert().values(**row, updated_at=now, updated_by=f"user:{user.id}")
                       ).inserted_primary_key
    assert key is not None
    template_id = int(key[0])
    record_audit(conn, at=now, actor=f"user:{user.id}", action="reply_template.create",
                 target=f"reply_template:{template_id}", source_address=source_address)
    return template_id


def update_template(conn: Connection, user: StaffUser, template_id: int, values: dict[str, Any], *, now: datetime,
                    source_address: str | None = None) -> None:
    _require_admin(user)
    row = _checked(conn, values)
    if not conn.execute(reply_templates.update().where(reply_templates.c.id == template_id).values(
            **row, updated_at=now, updated_by=f"user:{user.id}")).rowcount:
        raise NotFound(f"no reply template {template_id}", message_zh=f"没有标准回复 {template_id}",
                       code="reply.not_found")
    record_audit(conn, at=now, actor=f"user:{user.id}", action="reply_template.update",
                 target=f"reply_template:{template_id}", source_address=source_address)


def delete_template(conn: Connection, user: StaffUser, template_id: int, *, now: datetime,
                    source_address: str | None = None) -> None:
    _require_admin(user)
    if not conn.execute(reply_templates.delete().where(reply_templates.c.id == template_id)).rowcount:
        raise NotFound(f"no reply template {template_id}", message_zh=f"没有标准回复 {template_id}",
                       code="reply.not_found")
    record_audit(conn, at=now, actor=f"user:{user.id}", action="reply_template.delete",
                 target=f"reply_template:{template_id}", source_address=source_address)


# -- handlers use them ----------------------------------------------------------------------------------

def _public(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "locale": row.locale, "use": row.use, "status": row.status,
            "category_code": row.category_code, "body": row.body, "fields": fields(row.body), "active": row.active,
            "updated_at": row.updated_at, "updated_by": row.updated_by}


def list_templates(conn: Connection, *, active_only: bool = False) -> list[dict[str, Any]]:
    query = sa.select(reply_templates).order_by(reply_templates.c.use, reply_templates.c.locale, reply_templates.c.name,
                                                reply_templates.c.id)
    if active_only:
        query = query.where(reply_templates.c.active.is_(True))
    return [_public(r) for r in conn.execute(query)]


def get_template(conn: Connection, template_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(reply_templates).where(reply_templates.c.id == template_id)).first()
    if row is None:
        raise NotFound(f"no reply template {template_id}", message_zh=f"没有标准回复 {template_id}",
                       code="reply.not_found")
    return _public(row)


def templates_for(conn: Connection, *, status: str, category_code: str, use: str | None = None,
                  locale: str | None = None) -> list[dict[str, Any]]:
    """The active templates that fit a case in `status` of `category_code` (those for any state or
    category too), the most specific first."""
    query = sa.select(reply_templates).where(
        reply_templates.c.active.is_(True),
        sa.or_(reply_templates.c.status.is_(None), reply_templates.c.status == status),
        sa.or_(reply_templates.c.category_code.is_(None), reply_templates.c.category_code == category_code))
    if use:
        query = query.where(reply_templates.c.use == use)
    if locale:
        query = query.where(reply_templates.c.locale == locale)
    rows = list(conn.execute(query))
    rows.sort(key=lambda r: (r.category_code is None, r.status is None, r.name, r.id))
    return [_public(r) for r in rows]


def compose(conn: Connection, template_id: int, values: dict[str, str], *, status: str, category_code: str,
            use: str) -> str:
    """The text of a reply from template `template_id` with its fields filled, for a case in `status` of
    `category_code`: the template must be active and fit the case and the use."""
    fitting = {t["id"]: t for t in templates_for(conn, status=status, category_code=category_code, use=use)}
    template = fitting.get(template_id)
    if template is None:
        raise ValidationFailed("that standard reply does not fit this case", message_zh="该标准回复不适用于此案件",
                               code="reply.not_applicable")
    return fill(template["body"], values)


def reply_text(conn: Connection, case_id: int, template_id: int, values: dict[str, str], *, use: str,
               extra: str | None = None) -> str:
    """The reply to send on case `case_id` from a template with its fields filled, then any words of the
    handler's own after a blank line."""
    case = conn.execute(sa.select(cases.c.status, cases.c.category_code).where(cases.c.id == case_id)).first()
    if case is None:
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    text = compose(conn, template_id, values, status=case.status, category_code=case.category_code, use=use)
    extra = (extra or "").strip()
    return f"{text}\n\n{extra}" if extra else text
