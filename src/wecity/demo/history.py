"""About 30 days of lived-in history for the demo city, made through the real intake and case engine.

Reports arrive through `submit_report` (so routing, merging and SLA clocks are the real ones); staff
act through the engine's verbs; the SLA clock check runs every simulated quarter-hour. Everything is
replayed in time order, so timelines, escalations and KPIs are consistent. Seeded: the same city every run.
"""

from __future__ import annotations

import heapq
import io
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageEnhance
from sqlalchemy.engine import Connection

from wecity.cases import citizen_voice, engine
from wecity.cases.clocks import check_clocks
from wecity.cases.intake import NewReport, submit_report
from wecity.cases.models import cases, categories
from wecity.geo.service import city_timezone, load_area_index
from wecity.identity.models import users
from wecity.identity.service import get_user
from wecity.media.store import MediaStore

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


# A second reporter may file the same problem under a neighbouring category.
CONFUSED = {"manhole": "pothole", "pothole": "manhole", "sewage-overflow": "waterlogging",
            "waterlogging": "sewage-overflow", "garbage": "street-vending", "street-vending": "garbage",
            "noise": "cooking-fumes", "cooking-fumes": "noise", "illegal-parking": "shared-bikes",
            "shared-bikes": "illegal-parking", "streetlight": "traffic-signal", "traffic-signal": "streetlight",
            "fallen-tree": "other", "other": "fallen-tree", "illegal-construction": "other"}

# The same problems in a second reporter's words.
RETOLD = {
    "manhole": ["这个井盖不见了，有人差点踩空", "路边下水井口没盖子，太危险了"],
    "streetlight": ["这一段路灯晚上都不亮，走路看不清", "路灯坏了好几天了，一到晚上漆黑一片"],
    "pothole": ["路上坑很深，电动车经过很危险", "马路塌了一块，车子都绕着走"],
    "garbage": ["垃圾好几天没人收，味道很大", "这里堆满了垃圾，苍蝇很多"],
    "illegal-parking": ["车停在消防通道上，堵死了", "好多车乱停在人行道，行人只能走马路"],
    "noise": ["晚上十一点还在施工，吵得睡不着", "音响声音太大了，每天晚上都这样"],
    "street-vending": ["摊贩把人行道占满了", "小摊占道，行人没法走"],
    "sewage-overflow": ["下水道污水冒出来了，很臭", "污水漫到路面上了"],
    "fallen-tree": ["树倒了横在路上，车过不去", "大树枝掉下来挡住了路"],
    "shared-bikes": ["单车乱停一大片，堵住了路口", "共享单车把盲道都占了"],
    "illegal-construction": ["有人在楼顶加盖房子", "绿地上搭了违章棚子"],
    "cooking-fumes": ["饭店油烟直接排到楼上", "烧烤油烟太大，窗户都不敢开"],
    "waterlogging": ["路口积水太深，车熄火了", "隧道里的水没过了轮子"],
    "traffic-signal": ["红绿灯坏了，路口很乱", "信号灯一直黄闪，没人指挥"],
    "other": ["公园的椅子坏了", "路牌倒了"],
}


def _photo(text_colour: tuple[int, int, int], seed: int, *, street: int | None = None, variant: int = 0) -> bytes:
    """A made-up photo: a street (its background and five shapes, the same for every photo taken in it)
    and the problem (six larger shapes of its own). Variants are copies of one photo as they come back
    when people forward it (a little cropped, lighter or darker, compressed otherwise)."""
    street_rng = random.Random(seed if street is None else street)
    image = Image.new("RGB", (640, 480), tuple(street_rng.randint(90, 160) for _ in range(3)))  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        x, y = street_rng.randint(0, 600), street_rng.randint(0, 440)
        draw.rectangle((x, y, x + street_rng.randint(20, 120), y + street_rng.randint(20, 80)),
                       fill=(street_rng.randint(0, 255),) * 3)
    rng = random.Random(seed)
    for _ in range(6):
        x, y = rng.randint(0, 560), rng.randint(0, 400)
        draw.rectangle((x, y, x + rng.randint(40, 160), y + rng.randint(30, 120)), fill=text_colour)
    quality = 80
    if variant:
        other = random.Random(seed * 1000 + variant)
        left, top = other.randint(0, 20), other.randint(0, 15)
        image = image.crop((left, top, 640 - other.randint(0, 20), 480 - other.randint(0, 15))).resize((640, 480))
        image = ImageEnhance.Brightness(image).enhance(other.uniform(0.9, 1.1))
        quality = other.randint(60, 90)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _store_photo(conn: Connection, settings: Any, now: datetime, seed: int, street: int, variant: int) -> str:
    from wecity.media.images import inspect_image
    from wecity.media.service import insert_record, media_store, write_files

    checked = inspect_image(_photo((200, 60, 40), seed, street=street, variant=variant),
                            max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    return insert_record(conn, write_files(media_store(settings), checked, now=now)).id


def store_photos(conn: Connection, settings: Any, now: datetime, n: int, colour: tuple[int, int, int], *,
                 rows_without_store: bool = False) -> list[str]:
    """`n` made-up photos stored as uploads are. Without settings (a seed of the database alone, as tests
    make) there is no media store: none, or with `rows_without_store` their rows only (whose files nobody
    serves), for what needs a file to go on, as an application's materials do."""
    from wecity.media.images import inspect_image
    from wecity.media.service import insert_record, media_store, write_files

    if settings is None and not rows_without_store:
        return []
    store: MediaStore = media_store(settings) if settings is not None else _NoFiles()
    max_bytes, max_pixels = ((settings.max_upload_bytes, settings.max_image_pixels) if settings is not None
                             else (10 * 1024 * 1024, 64_000_000))
    ids = []
    for i in range(n):
        checked = inspect_image(_photo(colour, i), max_bytes=max_bytes, max_pixels=max_pixels)
        ids.append(insert_record(conn, write_files(store, checked, now=now)).id)
    return ids


class _NoFiles:
    """A media store that keeps nothing: the demo's rows without files, when it seeds a database alone."""

    def put(self, key: str, data: bytes) -> None:
        return None

    def read(self, key: str) -> bytes:
        raise FileNotFoundError(key)

    def delete(self, key: str) -> None:
        return None

    def keys(self) -> Iterator[tuple[str, datetime]]:
        return iter(())


@dataclass(frozen=True, slots=True)
class _Problem:
    """One problem in the street: where, what, and the scene its first photo shows (None: no photo)."""

    number: int
    lat: float
    lon: float
    code: str
    photo_seed: int | None

    @property
    def street(self) -> int:
        """The stretch of street (a cell of about 300 m) the problem's photos show in the background."""
        return int(self.lat / 0.003) * 100_000 + int(self.lon / 0.003)


def _metres_away(lat: float, lon: float, rng: random.Random, low: float, high: float) -> tuple[float, float]:
    distance, bearing = rng.uniform(low, high), rng.uniform(0, 2 * math.pi)
    return (lat + distance * math.cos(bearing) / 111_320,
            lon + distance * math.sin(bearing) / (111_320 * math.cos(math.radians(lat))))


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


def seed_history(conn: Connection, now: datetime, settings: Any = None, *, seed: int = 2026,
                 problems: dict[int, int] | None = None) -> int:
    """Create about 30 days of cases ending at `now`; returns how many reports were made.

    Some problems are reported twice: at the same spot under the same category (intake merges them), or a
    street corner away, in other words, perhaps under a neighbouring category and with another photo of
    the same scene (the AI platform's duplicate finder runs after each report, as the runner would, and
    merges or proposes). Others are different problems close to an earlier one (a second streetlight out
    down the road). `problems`, if given, is filled with each case's problem number: the truth the
    duplicate finder is measured against (`bench/ai_duplicates.py`)."""
    rng = random.Random(seed)
    index = load_area_index(conn)
    staff = {r.username: user for r in conn.execute(sa.select(users.c.id, users.c.username))
             if (user := get_user(conn, r.id)) is not None}
    handlers_by_department: dict[int, list[engine.Actor]] = {}
    for user in staff.values():
        if user.has("handler") and user.department_id is not None and "admin" not in user.roles:
            handlers_by_department.setdefault(user.department_id, []).append(engine.Actor.staff(user))
    story = _Story(conn, rng, index, now, settings, _Timeline(), handlers_by_department,
                   engine.Actor.staff(staff["dispatcher"]), engine.Actor.staff(staff["supervisor"]),
                   engine.Actor.staff(staff["admin"]), problems if problems is not None else {})
    start = now - timedelta(days=DAYS)
    story.evidence = store_photos(conn, settings, start, 4, (40, 170, 60))
    codes = list(REPORTS)
    weights = [REPORTS[c][0] for c in codes]
    made = 0
    recent: list[_Problem] = []

    def point() -> tuple[float, float]:
        while True:
            lat, lon = rng.gauss(CENTRE[0], 0.05), rng.gauss(CENTRE[1], 0.06)
            if index.locate(lat, lon) is not None:
                return lat, lon

    def new_problem(lat: float, lon: float, code: str) -> _Problem:
        photo_seed = 10_000 + len(recent) if settings is not None and rng.random() < 0.6 else None
        problem = _Problem(len(recent) + 1, lat, lon, code, photo_seed)
        recent.append(problem)
        return problem

    city_tz = city_timezone(conn)  # reports come by the city's own day and night
    for day in range(DAYS + 1):
        midnight = (start + timedelta(days=day)).astimezone(city_tz).replace(hour=0, minute=0, second=0,
                                                                          microsecond=0)
        for _ in range(rng.randint(7, 13)):
            local = midnight + timedelta(hours=rng.uniform(7, 22))
            when = local.astimezone(UTC)
            if when >= now or when < start:
                continue
            roll = rng.random()
            if recent and roll < 0.12:  # the same problem at the same spot: intake merges it (并单)
                seen = rng.choice(recent[-15:])
                lat, lon = seen.lat + rng.uniform(-0.0002, 0.0002), seen.lon
                plan = story.report(seen, seen.code, lat, lon, rng.choice(REPORTS[seen.code][1]),
                                    variant=1 if seen.photo_seed is not None and rng.random() < 0.5 else None)
            elif recent and roll < 0.19:  # the same problem retold a street corner away, maybe misfiled
                seen = rng.choice(recent[-6:])  # within hours: people report what they pass today
                lat, lon = _metres_away(seen.lat, seen.lon, rng, 60, 200)
                code = seen.code if rng.random() < 0.5 else CONFUSED[seen.code]
                plan = story.report(seen, code, lat, lon, rng.choice(RETOLD[seen.code]),
                                    variant=2 if seen.photo_seed is not None and rng.random() < 0.75 else None)
            elif recent and roll < 0.25:  # a different problem near an earlier one
                seen = rng.choice(recent[-15:])
                lat, lon = _metres_away(seen.lat, seen.lon, rng, 60, 250)
                code = seen.code if rng.random() < 0.6 else rng.choices(codes, weights)[0]
                if index.locate(lat, lon) is None:
                    lat, lon = point()
                problem = new_problem(lat, lon, code)
                plan = story.report(problem, code, lat, lon, rng.choice(REPORTS[code][1]), variant=0)
            else:
                code = rng.choices(codes, weights)[0]
                lat, lon = point()
                problem = new_problem(lat, lon, code)
                plan = story.report(problem, code, lat, lon, rng.choice(REPORTS[code][1]), variant=0)
            story.plan.at(when, plan)
            made += 1
    # The small hours before `now`: a few fresh reports still waiting for 签收 or being worked on.
    # Each in a different state, so every page has one of each to show.
    fresh = [(170, "verified"), (150, "resolved"), (120, "returned"), (95, "in_progress"), (60, "acknowledged"),
             (35, "dispatched"), (12, "dispatched"), (4, "dispatched")]
    for minutes_ago, state in fresh:
        lat, lon = point()
        code = rng.choice(["manhole", "waterlogging", "noise", "traffic-signal", "garbage", "streetlight"])
        problem = new_problem(lat, lon, code)
        story.plan.at(now - timedelta(minutes=minutes_ago), story.report(
            problem, code, lat, lon, rng.choice(REPORTS[code][1]), variant=0, state=state))
        made += 1
        if minutes_ago == 35:  # told again 150 m away without a photo: a proposal on the dispatchers' pages
            lat, lon = _metres_away(problem.lat, problem.lon, rng, 150, 150)
            story.plan.at(now - timedelta(minutes=20), story.report(
                problem, code, lat, lon, rng.choice(RETOLD[code]), variant=None, state="dispatched"))
            made += 1
    story.plan.replay(conn, now, timedelta(minutes=30))
    _settle_past_messages(conn, now)
    return made


@dataclass
class _Story:
    """What every report of the history needs: the connection, the dice, the city, and the staff."""

    conn: Connection
    rng: random.Random
    index: Any
    now: datetime
    settings: Any
    plan: _Timeline
    handlers: dict[int, list[engine.Actor]]
    dispatcher: engine.Actor
    supervisor: engine.Actor
    admin: engine.Actor
    problems: dict[int, int]
    evidence: list[str] = field(default_factory=list)

    def report(self, problem: _Problem, code: str, lat: float, lon: float, description: str, *,
               variant: int | None, state: str | None = None) -> Callable[[datetime], None]:
        """A report of `problem`, with the scene's photo (`variant` 0 the first reporter's, other numbers
        another person's photo of it; None no photo), to be submitted at its time."""
        conn, rng = self.conn, self.rng
        attributes = {"cover_state": rng.choice(["missing", "broken", "sunken"])} if code == "manhole" else {}
        phone = f"13{rng.randint(100000000, 999999999)}"
        photo = ((problem.photo_seed, problem.street, variant) if problem.photo_seed is not None and variant is not None
                 else None)

        def submit(when: datetime) -> None:
            from wecity.ai.duplicates import MERGED, review_case

            media_ids = [_store_photo(conn, self.settings, when, *photo)] if photo else []
            result = submit_report(conn, NewReport(
                service_code=code, channel=rng.choice(["portal", "portal", "open311"]), lat=lat, long=lon,
                description=description, attributes=attributes, phone=phone, media_ids=media_ids),
                area_index=self.index, now=when)
            if result.merged:
                return
            self.problems[result.case_id] = problem.number
            if any(p["state"] == MERGED for p in review_case(conn, result.case_id, now=when)):
                return  # the duplicate finder folded it into an earlier case, as the runner would have
            if state is None:
                _plan_case(conn, rng, result.case_id, when, self.now, self.plan, self.handlers, self.dispatcher,
                           self.supervisor, self.admin, self.evidence)
            else:
                _plan_fresh(conn, rng, result.case_id, when, state, self.plan, self.handlers, self.dispatcher,
                            self.admin, self.evidence)

        return submit


def _settle_past_messages(conn: Connection, now: datetime) -> None:
    """E-mails, SMS and webhooks of the simulated past went out at the time: record them as delivered, so a
    fresh demo does not send a month of messages at start. In-app notices stay, for the runner to file in
    the staff's and citizens' inboxes; the last hour's messages stay pending like any live ones."""
    from wecity.core.models import outbox_messages

    conn.execute(outbox_messages.update().where(
        outbox_messages.c.status == "pending", outbox_messages.c.channel != "in_app",
        outbox_messages.c.created_at < now - timedelta(hours=1),
    ).values(status="delivered", delivered_at=outbox_messages.c.created_at))


def _plan_case(conn: Connection, rng: random.Random, case_id: int, opened: datetime, now: datetime, plan: _Timeline,
               handlers: dict[int, list[engine.Actor]], dispatcher: engine.Actor, supervisor: engine.Actor,
               admin: engine.Actor, evidence: list[str]) -> None:
    """Decide this case's story: how fast it is taken, whether it is returned, fixed, verified, rated."""
    def department_handler() -> engine.Actor:
        department = conn.execute(sa.select(cases.c.department_id).where(cases.c.id == case_id)).scalar()
        return rng.choice(handlers.get(int(department or 0), [admin]))

    def guarded(action: Callable[[datetime], object]) -> Callable[[datetime], None]:
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
        # Still in progress (some will run out of time and be escalated); half of their reporters press 催办
        # after a day or more. A generator of the case's own decides, so every other story stays as it was.
        urging = random.Random(case_id)
        if urging.random() < 0.5:
            token_of = _first_token(conn, case_id)
            plan.at(t + timedelta(hours=urging.uniform(25, 72)),
                    guarded(lambda w: citizen_voice.urge(conn, token_of(), w)))
        return
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
