"""Identity verbs: departments, staff users, passwords, API keys, sessions, audit entries."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.db import inserted_id
from wecity.core.errors import AlreadyExists, NotFound, ValidationFailed
from wecity.identity.audit import record_audit as record_audit  # the domains record through the service
from wecity.identity.choices import Role
from wecity.identity.keys import api_key_grant, parse_scopes
from wecity.identity.models import api_keys, departments, staff_sessions, users
from wecity.identity.passwords import check_password, hash_password, verify_password

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    department_id: int | None
    roles: frozenset[str]
    locale: str

    def has(self, role: Role | str) -> bool:
        return str(role) in self.roles or Role.ADMIN in self.roles


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def add_department(conn: Connection, *, code: str, name_zh: str, name_en: str, phone: str | None = None,
                   email: str | None = None, webhook_url: str | None = None,
                   is_dispatch_centre: bool = False) -> int:
    if conn.execute(sa.select(departments.c.id).where(departments.c.code == code)).first():
        raise AlreadyExists(f"department {code!r} exists", message_zh=f"部门 {code} 已存在")
    return inserted_id(conn.execute(departments.insert().values(
        code=code, name_zh=name_zh, name_en=name_en, phone=phone, email=email, webhook_url=webhook_url,
        is_dispatch_centre=is_dispatch_centre,
    )))


def list_departments(conn: Connection) -> list[dict[str, Any]]:
    """Every department (id, code, names, whether it is the dispatch centre), in the order they were made."""
    return [dict(r._mapping) for r in conn.execute(
        sa.select(departments.c.id, departments.c.code, departments.c.name_zh, departments.c.name_en,
                  departments.c.is_dispatch_centre).order_by(departments.c.id))]


def works_in_dispatch_centre(conn: Connection, user: StaffUser) -> bool:
    """Whether the user's department is the city's dispatch centre (which acts across departments)."""
    if user.department_id is None:
        return False
    return bool(conn.execute(sa.select(departments.c.is_dispatch_centre)
                             .where(departments.c.id == user.department_id)).scalar())


def department_names(conn: Connection, department_id: int | None) -> dict[str, str] | None:
    """{"zh_CN": ..., "en": ..., "code": ...} of a department, or None when the user has none."""
    if department_id is None:
        return None
    row = conn.execute(sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en,
                                 departments.c.is_dispatch_centre)
                       .where(departments.c.id == department_id)).first()
    if row is None:
        return None
    return {"code": row.code, "zh_CN": row.name_zh, "en": row.name_en,
            "dispatch_centre": "yes" if row.is_dispatch_centre else ""}


def department_id_by_code(conn: Connection, code: str) -> int:
    row = conn.execute(sa.select(departments.c.id).where(departments.c.code == code)).first()
    if row is None:
        raise NotFound(f"no department {code!r}", message_zh=f"没有部门 {code}", code="department.not_found")
    return int(row.id)


def add_user(conn: Connection, *, username: str, password: str, display_name: str, now: datetime,
             department_code: str | None = None, roles: list[str] | tuple[str, ...] = (),
             phone: str | None = None, email: str | None = None, locale: str = "zh_CN") -> int:
    check_password(password, username=username)
    for role in roles:
        if role not in Role.__members__.values():
            raise ValidationFailed(f"unknown role {role!r}; use {', '.join(Role)}", message_zh=f"未知角色 {role}")
    if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
        raise AlreadyExists(f"user {username!r} exists", message_zh=f"用户 {username} 已存在")
    department_id = department_id_by_code(conn, department_code) if department_code else None
    return inserted_id(conn.execute(users.insert().values(
        username=username, password_hash=hash_password(password), display_name=display_name,
        department_id=department_id, roles=" ".join(sorted(set(roles))), phone=phone, email=email,
        locale=locale, is_active=True, created_at=now,
    )))


def _staff_user(row: Any) -> StaffUser:
    return StaffUser(id=row.id, username=row.username, display_name=row.display_name,
                     department_id=row.department_id, roles=frozenset(row.roles.split()), locale=row.locale)


def authenticate(conn: Connection, username: str, password: str) -> StaffUser | None:
    """The user if the password matches an active account, else None (same answer for both failures).

    For scripts and tests: it checks the password inside the caller's transaction. Requests sign in
    through `wecity.identity.signin`, which keeps the slow check out of any transaction and counts failures.
    """
    row = conn.execute(sa.select(users).where(users.c.username == username, users.c.is_active.is_(True))).first()
    good, new_hash = verify_password(row.password_hash if row else None, password)
    if not good or row is None:
        return None
    if new_hash:
        conn.execute(users.update().where(users.c.id == row.id).values(password_hash=new_hash))
    return _staff_user(row)


def get_user(conn: Connection, user_id: int) -> StaffUser | None:
    row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.is_active.is_(True))).first()
    return _staff_user(row) if row else None


def start_session(conn: Connection, user_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute(staff_sessions.insert().values(
        token_hash=_sha256(token), user_id=user_id, created_at=now, expires_at=now + SESSION_LIFETIME))
    return token


def user_for_session(conn: Connection, token: str, now: datetime) -> StaffUser | None:
    row = conn.execute(sa.select(staff_sessions.c.user_id).where(
        staff_sessions.c.token_hash == _sha256(token), staff_sessions.c.expires_at > now)).first()
    return get_user(conn, row.user_id) if row else None


def end_session(conn: Connection, token: str) -> None:
    conn.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == _sha256(token)))


def add_api_key(conn: Connection, *, name: str, now: datetime, scopes: Iterable[str], tenant: str = "",
                username: str | None = None) -> str:
    """Create an API key for `scopes` in `tenant` ("*": any) and return it; only its hash is kept, so this
    is the one time it is shown."""
    granted = " ".join(sorted(parse_scopes(scopes)))
    user_id = None
    if username:
        row = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
        if row is None:
            raise NotFound(f"no user {username!r}", message_zh=f"没有用户 {username}")
        user_id = row.id
    key = "wk_" + secrets.token_urlsafe(32)
    conn.execute(api_keys.insert().values(key_hash=_sha256(key), prefix=key[:10], name=name, user_id=user_id,
                                          created_at=now, scopes=granted, tenant=tenant.strip()))
    return key


def api_key_is_valid(conn: Connection, key: str) -> bool:
    """Whether the key is a live API key (whatever it may do: wecity.identity.keys.api_key_grant says)."""
    return api_key_grant(conn, key) is not None


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    """Every key with its prefix (the first characters, enough to tell keys apart), owner and state."""
    rows = conn.execute(sa.select(api_keys.c.prefix, api_keys.c.name, users.c.username, api_keys.c.created_at,
                                  api_keys.c.revoked_at, api_keys.c.scopes, api_keys.c.tenant)
                        .select_from(api_keys.outerjoin(users, users.c.id == api_keys.c.user_id))
                        .order_by(api_keys.c.id))
    return [dict(r._mapping) for r in rows]


def revoke_api_key(conn: Connection, prefix: str, now: datetime) -> int:
    """Revoke the live keys starting with `prefix` (as `list_api_keys` shows it, or the whole key).

    Returns how many were revoked. Other processes stop accepting them within `cache.DEFAULT_TTL`.
    """
    prefix = prefix.rstrip("…")[:10]
    if len(prefix) < 10:
        raise ValidationFailed("give the key or its first 10 characters", message_zh="请给出密钥或其前 10 个字符")
    done = conn.execute(api_keys.update().where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount
    cache.invalidate(conn, "api key")
    return int(done or 0)


def mask_phone(phone: str | None) -> str | None:
    """138****5678: enough for a person to recognise, not enough to call."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) <= 7:
        return digits[:1] + "*" * (len(digits) - 3) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def api_key_user(conn: Connection, key: str) -> StaffUser | None:
    """The active staff user a valid API key belongs to (back-office systems act as that user)."""
    if not key:
        return None
    row = conn.execute(sa.select(api_keys.c.user_id).where(
        api_keys.c.key_hash == _sha256(key), api_keys.c.revoked_at.is_(None))).first()
    return get_user(conn, row.user_id) if row and row.user_id else None
