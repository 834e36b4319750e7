"""30 days of applications for the demo city, made through the real verbs and the real BPMN engine:
drafts pre-filled once-only, submissions, acceptance, 补正, parallel review, decisions, certificates,
ratings and rectifications. Seeded, so the same city every run; recent applications are left in
progress, so that every queue has something in it."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.clock import CITY_TZ
from wecity.core.errors import WeCityError
from wecity.core.patterns import compile_pattern
from wecity.demo.history import store_photos
from wecity.govservice import applications as apply
from wecity.govservice import approvals, ratings
from wecity.govservice.models import applications, matters
from wecity.govservice.tasks import check_clocks
from wecity.identity.applicants import Applicant, enterprises_of, get_applicant
from wecity.identity.models import applicants, departments, users
from wecity.identity.service import StaffUser, get_user

DAYS = 30
PER_DAY = (1, 4)
# Marriage is registered once, on purpose (wecity.demo.services), not drawn at random.
NOT_REPLAYED = {"CS-MZ-001"}
COMMENTS = {5: "办理很快，一次办成", 4: "材料自动带出，省事", 2: "等待时间太长", 1: "补正说明不清楚，跑了两次"}


def _staff(conn: Connection, username: str) -> StaffUser:
    user = get_user(conn, conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one())
    assert user is not None
    return user


def _sample(name: str, prop: dict[str, Any], rng: random.Random, applicant: Applicant, day: datetime) -> Any:
    """A plausible answer to one form field, or None when none can be made up honestly."""
    kind = prop.get("type")
    if "enum" in prop:
        return rng.choice(prop["enum"])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        low, high = prop.get("minimum", 1), prop.get("maximum", 100)
        value = rng.uniform(low, min(high, low + 50))
        return int(value) if kind == "integer" else round(value, 1)
    if prop.get("format") == "date":
        return (day + timedelta(days=rng.randint(5, 30))).date().isoformat()
    profile = applicant.profile
    candidates = [profile.get("phone"), profile.get("id_number"), profile.get("credit_code"),
                  profile.get("address") or profile.get("registered_address")]
    if "pattern" in prop:
        pattern = compile_pattern(prop["pattern"])
        return next((c for c in candidates if isinstance(c, str) and pattern.search(c)), None)
    title = str(prop.get("title") or name)
    if any(word in name for word in ("address", "location", "place")) or "地址" in title or "地点" in title:
        text = str(candidates[3] or "长沙市芙蓉区五一大道 1 号")
    else:
        text = f"{title}（示例）"
    return text[: int(prop.get("maxLength", 200))]


class _Story:
    """One application's life: each step at its time, stopping at the first that lies after `now`."""

    def __init__(self, conn: Connection, now: datetime, app_id: int) -> None:
        self.conn, self.now, self.app_id = conn, now, app_id

    def step(self, when: datetime, action: Callable[[datetime], Any]) -> bool:
        if when > self.now:
            return False
        try:
            action(when)
        except WeCityError:
            return False
        return True


def _working_time(day: datetime, rng: random.Random) -> datetime:
    local = datetime.combine(day.astimezone(CITY_TZ).date(), time(9, 0), CITY_TZ)
    return local + timedelta(minutes=rng.randint(0, 8 * 60))


def replay_applications(conn: Connection, now: datetime, settings: Any, rng: random.Random) -> int:
    """Make the applications of the last DAYS days; returns how many were submitted."""
    key_dir = Path(settings.var_dir) if settings is not None else Path("var")
    scans = store_photos(conn, settings, now - timedelta(days=DAYS), 4, (30, 30, 30), rows_without_store=True)
    codes = [c for c in conn.execute(sa.select(matters.c.code).where(matters.c.active).order_by(matters.c.code)).scalars()
             if c not in NOT_REPLAYED]
    citizens = [get_applicant(conn, i) for i in conn.execute(
        sa.select(applicants.c.id).where(applicants.c.kind == "citizen").order_by(applicants.c.id)).scalars()]
    if not codes or not citizens:
        return 0
    dept_staff = {code: (_staff(conn, code), _staff(conn, f"{code}-lead"))
                  for code in conn.execute(sa.select(departments.c.code)).scalars()
                  if conn.execute(sa.select(users.c.id).where(users.c.username == f"{code}-lead")).first()}
    submitted = 0
    start = now - timedelta(days=DAYS)
    for offset in range(DAYS + 1):
        day = start + timedelta(days=offset)
        if day.astimezone(CITY_TZ).weekday() >= 5:
            continue
        for _ in range(rng.randint(*PER_DAY)):
            submitted += _one(conn, now, key_dir, rng, rng.choice(codes), rng.choice(citizens), dept_staff,
                              _working_time(day, rng), scans)
    check_clocks(conn, now)
    return submitted


def _one(conn: Connection, now: datetime, key_dir: Path, rng: random.Random, code: str, citizen: Applicant,
         dept_staff: dict[str, tuple[StaffUser, StaffUser]], at: datetime, scans: list[str]) -> int:
    if at > now:
        return 0
    definition = apply.matter_definition(conn, code)
    firms = enterprises_of(conn, citizen.id)
    acting = None
    if "citizen" not in definition["applicants"]:
        if not firms:
            return 0
        acting = firms[0].id
    holder = get_applicant(conn, acting) if acting else citizen
    app_id = apply.start_application(conn, citizen=citizen, matter_code=code, now=at, acting_for=acting)
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    answers = {name: value for name, prop in definition["form"]["properties"].items()
               if name not in row.form_data and (value := _sample(name, prop, rng, holder, at)) is not None}
    try:
        apply.save_draft(conn, app_id, citizen=citizen, form_data=answers, now=at)
        for material, state in row.materials.items():
            if state["state"] == "missing":
                apply.attach_material(conn, app_id, citizen=citizen, material=material,
                                      media=[rng.choice(scans)] if scans else [], now=at)
        apply.submit(conn, app_id, citizen=citizen, now=at + timedelta(minutes=5))
    except WeCityError:
        return 0  # left as a draft, as real people leave some
    story = _Story(conn, now, app_id)
    handler, lead = dept_staff[definition["department"]]
    t = at + timedelta(hours=rng.randint(2, 30))
    if rng.random() < 0.15 and story.step(t, lambda w: approvals.request_supplement(
            conn, app_id, staff=handler, note="请补充清晰的材料扫描件", materials=list(row.materials)[:1], now=w)):
        t += timedelta(days=rng.randint(1, 4))
        if not story.step(t, lambda w: _supply(conn, app_id, citizen, row.materials, scans, w)):
            return 1
        t += timedelta(hours=rng.randint(1, 20))
    if not story.step(t, lambda w: approvals.accept(conn, app_id, staff=handler, now=w)):
        return 1
    for reviewer in definition.get("reviewers", []):
        t += timedelta(hours=rng.randint(4, 60))
        if not story.step(t, _review(conn, app_id, dept_staff[reviewer][0])):
            return 1
    t += timedelta(hours=rng.randint(4, 72))
    refuse = rng.random() < 0.1
    if not story.step(t, lambda w: approvals.decide(
            conn, app_id, staff=lead, outcome="refuse" if refuse else "approve",
            reason="申请设置位置不符合规划要求" if refuse else None,
            legal_basis="《中华人民共和国行政许可法》第三十八条" if refuse else None, now=w, key_dir=key_dir)):
        return 1
    if rng.random() < 0.7:
        level = rng.choices([5, 4, 3, 2, 1], weights=[55, 25, 10, 7, 3])[0]
        t += timedelta(hours=rng.randint(1, 48))
        story.step(t, lambda w: ratings.rate(conn, app_id, citizen=citizen, level=level,
                                             tags=["fast"] if level >= 4 else ["slow"],
                                             comment=COMMENTS.get(level), now=w))
    return 1


def _review(conn: Connection, app_id: int, reviewer: StaffUser) -> Callable[[datetime], None]:
    return lambda when: approvals.review(conn, app_id, staff=reviewer, outcome="approve", note=None, now=when)


def _supply(conn: Connection, app_id: int, citizen: Applicant, materials: dict[str, Any], scans: list[str],
            when: datetime) -> None:
    for material in list(materials)[:1]:
        apply.attach_material(conn, app_id, citizen=citizen, material=material, media=scans[:1], now=when)
    apply.supply(conn, app_id, citizen=citizen, form_data={}, now=when)
