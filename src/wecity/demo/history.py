"""About 30 days of lived-in history for the demo city, made through the real intake and case engine.

Reports arrive through `submit_report` (so routing, merging and SLA clocks are the real ones); staff
act through the engine's verbs; the SLA clock check runs every simulated quarter-hour. Everything is
replayed in time order, so timelines, escalations and KPIs are consistent. Seeded: the same city every run.
"""

from __future__ import annotations

import heapq
import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from PIL import Image, ImageDraw
from sqlalchemy.engine import Connection

from wecity.cases import engine
from wecity.cases.clocks import check_clocks
from wecity.cases.intake import NewReport, submit_report
from wecity.cases.models import cases, categories
from wecity.geo.service import city_timezone, load_area_index
from wecity.identity.models import users
from wecity.identity.service import get_user

DAYS = 30
CENTRE = (28.195, 112.975)

# category -> (relative frequency, sample descriptions)
REPORTS = {
    "manhole": (6, ["人行道井盖缺失，晚上很危险", "井盖破损下陷，车辆经过响声很大", "雨水井盖被撬走了"]),
    "streetlight": (10, ["小区门口路灯连续三晚不亮", "路灯一直闪烁", "整条路的路灯都不亮"]),
    "pothole": (9, ["路中间有个大坑，电动车容易摔", "路面塌陷约半米", "施工后路面没有恢复"]),
    "garbage": (12, ["垃圾桶满了没人清运", "路边堆了很多建筑垃圾", "菜市场门口垃圾堆积发臭"]),
    "illegal-parking": (10, ["车辆占用消防通道", "人行道上停满了车", "公交站台被私家车占用"]),
    "noise": (8, ["夜间施工噪音扰民", "广场舞音响太大声", "酒吧深夜噪音"]),
    "street-vending": (6, ["夜市摊贩占道经营", "流动摊贩堵塞人行道"]),
    "sewage-overflow": (4, ["污水井冒水，臭味很大", "下水道堵塞污水外溢"]),
    "fallen-tree": (3, ["大风刮倒行道树，挡住车道", "树枝断裂悬挂在路上"]),
    "shared-bikes": (7, ["地铁口共享单车堆成山", "共享单车堵住盲道"]),
    "illegal-construction": (2, ["楼顶违法搭建", "小区绿地被私自圈占搭棚"]),
    "cooking-fumes": (4, ["餐馆油烟直排居民楼", "烧烤店油烟扰民"]),
    "waterlogging": (3, ["下穿隧道积水很深", "路口积水无法通行"]),
    "traffic-signal": (3, ["路口红绿灯不亮", "信号灯时间太短行人来不及过"]),
    "other": (2, ["公园座椅损坏", "路牌被撞歪"]),
}


def _photo(text_colour: tuple[int, int, int], seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 480), (rng.randint(90, 160), rng.randint(90, 160), rng.randint(90, 160)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randint(0, 600), rng.randint(0, 440)
        draw.rectangle((x, y, x + rng.randint(20, 120), y + rng.randint(20, 80)), fill=text_colour)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def store_photos(conn: Connection, settings: Any, now: datetime, n: int, colour: tuple[int, int, int]) -> list[str]:
    if settings is None:
        return []
    from wecity.media.images import inspect_image
    from wecity.media.service import insert_record, media_store, write_files

    store = media_store(settings)
    ids = []
    for i in range(n):
        checked = inspect_image(_photo(colour, i), max_bytes=settings.max_upload_bytes,
                                max_pixels=settings.max_image_pixels)
        ids.append(insert_record(conn, write_files(store, checked, now=now)).id)
    return ids


class _Timeline:
    """Actions to replay in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._n = 0

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        self._n += 1
        heapq.heappush(self._heap, (when, self._n, action))

    def replay(self, conn: Connection, until: datetime, clock_every: timedelta) -> None:
        next_check = self._heap[0][0] if self._heap else until
        while self._heap and self._heap[0][0] <= until:
            when, _, action = heapq.heappop(self._heap)
            while next_check <= when:
                check_clocks(conn, next_check)
                next_check += clock_every
            action(when)
        while next_check <= until:
            check_clocks(conn, next_check)
            next_check += clock_every


def seed_history(conn: Connection, now: datetime, settings: Any = None, *, seed: int = 2026) -> int:
    """Create about 30 days of cases ending at `now`; returns how many reports were made."""
    rng = random.Random(seed)
    index = load_area_index(conn)
    staff = {r.username: user for r in conn.execute(sa.select(users.c.id, users.c.username))
             if (user := get_user(conn, r.id)) is not None}
    handlers_by_department: dict[int, list[engine.Actor]] = {}
    for user in staff.values():
        if user.has("handler") and user.department_id is not None and "admin" not in user.roles:
            handlers_by_department.setdefault(user.department_id, []).append(engine.Actor.staff(user))
    dispatcher = engine.Actor.staff(staff["dispatcher"])
    supervisor = engine.Actor.staff(staff["supervisor"])
    admin = engine.Actor.staff(staff["admin"])
    start = now - timedelta(days=DAYS)
    evidence = store_photos(conn, settings, start, 4, (40, 170, 60))
    report_photos = store_photos(conn, settings, start, 6, (200, 60, 40))
    codes = list(REPORTS)
    weights = [REPORTS[c][0] for c in codes]
    plan = _Timeline()
    made = 0
    hotspots: list[tuple[float, float, str]] = []

    def point() -> tuple[float, float]:
        while True:
            lat, lon = rng.gauss(CENTRE[0], 0.05), rng.gauss(CENTRE[1], 0.06)
            if index.locate(lat, lon) is not None:
                return lat, lon

    city_tz = city_timezone(conn)  # reports come by the city's own day and night
    for day in range(DAYS + 1):
        midnight = (start + timedelta(days=day)).astimezone(city_tz).replace(hour=0, minute=0, second=0,
                                                                          microsecond=0)
        for _ in range(rng.randint(7, 13)):
            local = midnight + timedelta(hours=rng.uniform(7, 22))
            when = local.astimezone(UTC)
            if when >= now or when < start:
                continue
            code = rng.choices(codes, weights)[0]
            lat, lon = point()
            if hotspots and rng.random() < 0.12:  # a second report of a recent problem: merges (并单)
                lat, lon, code = rng.choice(hotspots[-15:])
                lat += rng.uniform(-0.0002, 0.0002)
            hotspots.append((lat, lon, code))
            plan.at(when, _report(conn, rng, index, code, lat, lon, report_photos, now, plan, handlers_by_department,
                                  dispatcher, supervisor, admin, evidence))
            made += 1
    # The small hours before `now`: a few fresh reports still waiting for 签收 or being worked on.
    # Each in a different state, so every page has one of each to show.
    fresh = [(170, "verified"), (150, "resolved"), (120, "returned"), (95, "in_progress"), (60, "acknowledged"),
             (35, "dispatched"), (12, "dispatched"), (4, "dispatched")]
    for minutes_ago, story in fresh:
        lat, lon = point()
        code = rng.choice(["manhole", "waterlogging", "noise", "traffic-signal", "garbage", "streetlight"])
        plan.at(now - timedelta(minutes=minutes_ago), _report(
            conn, rng, index, code, lat, lon, report_photos, now, plan, handlers_by_department, dispatcher,
            supervisor, admin, evidence, story=story))
        made += 1
    plan.replay(conn, now, timedelta(minutes=30))
    _settle_past_messages(conn, now)
    return made


def _settle_past_messages(conn: Connection, now: datetime) -> None:
    """E-mails, SMS and webhooks of the simulated past went out at the time: record them as delivered, so a
    fresh demo does not send a month of messages at start. In-app notices stay, for the runner to file in
    the staff's and citizens' inboxes; the last hour's messages stay pending like any live ones."""
    from wecity.core.models import outbox_messages

    conn.execute(outbox_messages.update().where(
        outbox_messages.c.status == "pending", outbox_messages.c.channel != "in_app",
        outbox_messages.c.created_at < now - timedelta(hours=1),
    ).values(status="delivered", delivered_at=outbox_messages.c.created_at))


def _report(conn: Connection, rng: random.Random, index: Any, code: str, lat: float, lon: float, photos: list[str],
            now: datetime, plan: _Timeline, handlers: dict[int, list[engine.Actor]], dispatcher: engine.Actor,
            supervisor: engine.Actor, admin: engine.Actor, evidence: list[str],
            story: str | None = None) -> Callable[[datetime], None]:
    description = rng.choice(REPORTS[code][1])
    attributes = {"cover_state": rng.choice(["missing", "broken", "sunken"])} if code == "manhole" else {}
    phone = f"13{rng.randint(100000000, 999999999)}"
    with_photo = bool(photos) and rng.random() < 0.6

    def submit(when: datetime) -> None:
        result = submit_report(conn, NewReport(
            service_code=code, channel=rng.choice(["portal", "portal", "open311"]), lat=lat, long=lon,
            description=description, attributes=attributes, phone=phone,
            media_ids=[rng.choice(photos)] if with_photo else []), area_index=index, now=when)
        if result.merged:
            return
        if story is None:
            _plan_case(conn, rng, result.case_id, when, now, plan, handlers, dispatcher, supervisor, admin, evidence)
        else:
            _plan_fresh(conn, rng, result.case_id, when, story, plan, handlers, dispatcher, admin, evidence)

    return submit


def _plan_case(conn: Connection, rng: random.Random, case_id: int, opened: datetime, now: datetime, plan: _Timeline,
               handlers: dict[int, list[engine.Actor]], dispatcher: engine.Actor, supervisor: engine.Actor,
               admin: engine.Actor, evidence: list[str]) -> None:
    """Decide this case's story: how fast it is taken, whether it is returned, fixed, verified, rated."""
    def department_handler() -> engine.Actor:
        department = conn.execute(sa.select(cases.c.department_id).where(cases.c.id == case_id)).scalar()
        return rng.choice(handlers.get(int(department or 0), [admin]))

    def guarded(action: Callable[[datetime], None]) -> Callable[[datetime], None]:
        def run(when: datetime) -> None:
            try:
                with conn.begin_nested():
                    action(when)
            except Exception:  # a story step that no longer applies (e.g. merged meanwhile) is skipped
                return
        return run

    t = opened + timedelta(minutes=rng.choice([2, 4, 6, 8, 10, 12, 14, 25, 40]))
    if rng.random() < 0.08:  # returned: not their duty; the dispatch centre re-dispatches
        plan.at(t, guarded(lambda w: engine.return_case(conn, case_id, "not_our_duty", department_handler(), w,
                                                        note="经核实不属本部门职责")))
        t += timedelta(minutes=rng.randint(20, 120))
        target = rng.choice(list(handlers))
        plan.at(t, guarded(lambda w: engine.dispatch(conn, case_id, target, dispatcher, w, note="改派")))
        t += timedelta(minutes=rng.randint(5, 60))
    plan.at(t, guarded(lambda w: engine.acknowledge(conn, case_id, department_handler(), w)))
    t += timedelta(minutes=rng.uniform(10, 60))
    plan.at(t, guarded(lambda w: engine.start(conn, case_id, department_handler(), w, note="已到现场处置")))
    if rng.random() < 0.06:
        return  # still in progress (some will run out of time and be escalated)
    # Most are fixed within the SLA, some late: relative to the category's own target.
    resolve_hours = conn.execute(sa.select(categories.c.resolve_hours).select_from(
        cases.join(categories, categories.c.code == cases.c.category_code)).where(cases.c.id == case_id)).scalar_one()
    t += timedelta(hours=resolve_hours * rng.choice([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.3]))
    plan.at(t, guarded(lambda w: engine.resolve(conn, case_id, department_handler(), w, note="已处置完毕，现场已恢复",
                                                evidence_media_id=rng.choice(evidence) if evidence else "evidence")))
    t += timedelta(hours=rng.uniform(1, 30))
    stars = rng.choices([5, 4, 3, 2, 1], [55, 25, 10, 6, 4])[0]
    if rng.random() < 0.6:
        token_of = _first_token(conn, case_id)
        plan.at(t, guarded(lambda w: engine.rate(conn, token_of(), stars, w,
                                                 tags=rng.sample(["及时", "态度好", "效果好", "慢", "没解决"], 1),
                                                 comment=None)))
        t += timedelta(hours=rng.uniform(0.5, 6))
    plan.at(t, guarded(lambda w: engine.verify(conn, case_id, dispatcher, w, note="核查通过")))
    t += timedelta(hours=rng.uniform(0.2, 4))
    plan.at(t, guarded(lambda w: engine.close(conn, case_id, dispatcher, w)))
    if stars <= 2:
        plan.at(t + timedelta(hours=3), guarded(lambda w: engine.close_followup(
            conn, case_id, supervisor, w, note="已电话回访，向市民解释处置情况")))


def _plan_fresh(conn: Connection, rng: random.Random, case_id: int, opened: datetime, story: str, plan: _Timeline,
                handlers: dict[int, list[engine.Actor]], dispatcher: engine.Actor, admin: engine.Actor,
                evidence: list[str]) -> None:
    """A recent case taken just far enough to end in the state `story` names."""
    department = conn.execute(sa.select(cases.c.department_id).where(cases.c.id == case_id)).scalar()
    handler = rng.choice(handlers.get(int(department or 0), [admin]))
    steps: list[Callable[[datetime], None]] = []
    if story == "returned":
        steps.append(lambda w: engine.return_case(conn, case_id, "not_our_area", handler, w,
                                                  note="该点位属相邻街道管辖"))
    if story in ("acknowledged", "in_progress", "resolved", "verified"):
        steps.append(lambda w: engine.acknowledge(conn, case_id, handler, w))
    if story in ("in_progress", "resolved", "verified"):
        steps.append(lambda w: engine.start(conn, case_id, handler, w, note="已到现场"))
    if story in ("resolved", "verified"):
        steps.append(lambda w: engine.resolve(conn, case_id, handler, w, note="已处置完毕",
                                              evidence_media_id=evidence[0] if evidence else "evidence"))
    if story == "verified":
        steps.append(lambda w: engine.verify(conn, case_id, dispatcher, w, note="核查通过"))
    for i, step in enumerate(steps, start=1):
        plan.at(opened + timedelta(minutes=4 * i), step)


def _first_token(conn: Connection, case_id: int) -> Callable[[], str]:
    from wecity.cases.models import reports

    def token() -> str:
        return str(conn.execute(sa.select(reports.c.token).where(reports.c.case_id == case_id)
                                .order_by(reports.c.id).limit(1)).scalar_one())
    return token
