"""The demo city's service loop: its catalogue of matters, the departments and staff that handle them,
citizens and enterprises as the base registers know them (each citizen holding a resident-ID certificate),
and 30 days of applications replayed through the real verbs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.clock import CITY_TZ
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.govservice import certificates
from wecity.govservice.catalogue import import_catalogue, packaged_demo_catalogue
from wecity.identity.applicants import Applicant, add_agent, create_applicant
from wecity.identity.models import departments, users
from wecity.identity.service import add_department, add_user

# GB 11643 (citizen ID) and GB 32100 (unified social credit code) check characters, so that the demo's
# numbers are well formed, as a real register's are.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def citizen_id(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def credit_code(first17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_CHARS[(31 - total % 31) % 31]


# phone, name, first 17 digits of the ID number, address, gender
CITIZENS = [
    ("13900000001", "李明", "43010219880312201", "长沙市芙蓉区五一大道 235 号", "男"),
    ("13900000002", "王芳", "43010319920715402", "长沙市天心区书院路 88 号", "女"),
    ("13900000003", "张伟", "43010419850101303", "长沙市岳麓区麓山南路 12 号", "男"),
    ("13900000004", "刘洋", "43010519900909104", "长沙市开福区湘江中路 9 号", "男"),
    ("13900000005", "陈静", "43011119951120605", "长沙市雨花区韶山中路 420 号", "女"),
    ("13900000006", "杨帆", "43012119870228706", "长沙县星沙大道 66 号", "男"),
]
# first 17 characters of the credit code, name, legal representative's phone, registered address
ENTERPRISES = [
    ("91430102MA4L12345", "长沙明记餐饮管理有限公司", "13900000001", "长沙市芙蓉区五一大道 235 号"),
    ("91430104MA4M56789", "湖南岳麓广告传媒有限公司", "13900000003", "长沙市岳麓区麓谷大道 627 号"),
]


def _ensure_departments(conn: Connection, catalogue: dict[str, Any]) -> None:
    known = set(conn.execute(sa.select(departments.c.code)).scalars())
    for d in catalogue.get("departments", []):
        if d["code"] not in known:
            add_department(conn, code=d["code"], name_zh=d["name_zh"], name_en=d["name_en"])


def _ensure_staff(conn: Connection, catalogue: dict[str, Any], now: datetime) -> None:
    """A handler and a supervisor (who decides) for every department that owns or reviews a matter."""
    names = dict(conn.execute(sa.select(departments.c.code, departments.c.name_zh)).all())
    taken = set(conn.execute(sa.select(users.c.username)).scalars())
    wanted = {m["department"] for m in catalogue["matters"]} | {r for m in catalogue["matters"]
                                                                for r in m.get("reviewers", [])}
    for code in sorted(wanted):
        short = names[code].removeprefix("市")[:6]
        if code not in taken:
            add_user(conn, username=code, password=DEMO_PASSWORD, display_name=f"{short} 经办人",
                     department_code=code, roles=("handler",), now=now)
        if f"{code}-lead" not in taken:
            add_user(conn, username=f"{code}-lead", password=DEMO_PASSWORD, display_name=f"{short} 科长",
                     department_code=code, roles=("handler", "supervisor"), now=now)


def seed_services(conn: Connection, now: datetime, settings: Any = None, *, history: bool = True) -> dict[str, Any]:
    """The catalogue, its departments and staff, the registers' citizens and enterprises, and (by default)
    30 days of applications. Returns who is who, for the demo's welcome text."""
    key_dir = Path(settings.var_dir) if settings is not None else Path("var")
    catalogue = packaged_demo_catalogue()
    _ensure_departments(conn, catalogue)
    import_catalogue(conn, catalogue, now=now)
    _ensure_staff(conn, catalogue, now)
    people: list[Applicant] = []
    key = certificates.signing_key(conn, key_dir)
    for phone, name, first17, address, gender in CITIZENS:
        number = citizen_id(first17)
        born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        person = create_applicant(conn, kind="citizen", display_name=name, phone=phone, now=now, profile={
            "name": name, "id_number": number, "phone": phone, "address": address, "gender": gender,
            "birth_date": born})
        people.append(person)
        # Every citizen holds their resident ID as an e-certificate (issued by public security), which
        # replaces the copy of an identity document that most matters ask for.
        certificates.issue(conn, key=key, type="resident_id", name_zh="居民身份证", name_en="Resident identity card",
                           holder_id=person.id, holder_name=name, application_id=None, application_number=None,
                           department_code=_public_security(conn), department_name_zh="公安局",
                           department_name_en="Public Security Bureau",
                           fields={"name": name, "id_number": number, "address": address, "gender": gender,
                                   "birth_date": born}, valid_days=None, now=now - timedelta(days=400))
    by_phone = {p.phone: p for p in people}
    for first17, name, rep_phone, address in ENTERPRISES:
        code = credit_code(first17)
        firm = create_applicant(conn, kind="enterprise", display_name=name, credit_code=code, now=now, profile={
            "enterprise_name": name, "credit_code": code, "legal_representative": by_phone[rep_phone].display_name,
            "registered_address": address})
        add_agent(conn, enterprise_id=firm.id, agent_id=by_phone[rep_phone].id, role="legal_representative")
    _register_marriage(conn, now - timedelta(days=200), key_dir, settings, people[0], people[1])
    if history:
        from wecity.demo.services_history import replay_applications

        replay_applications(conn, now, settings, random.Random(2026))
    return {"citizens": [(p.phone, p.display_name) for p in people]}


MARRIAGE_MATTER = "CS-MZ-001"


def _register_marriage(conn: Connection, when: datetime, key_dir: Path, settings: Any, person: Applicant,
                       spouse: Applicant) -> None:
    """李明 and 王芳 registered their marriage months ago, through the real verbs: so his wallet holds a
    marriage certificate, which later applications (公共租赁住房) reuse once-only."""
    from wecity.demo.history import store_photos
    from wecity.govservice import applications as apply
    from wecity.govservice import approvals
    from wecity.identity.service import get_user

    scans = store_photos(conn, settings, when, 1, (20, 20, 20), rows_without_store=True)

    def staff(username: str) -> Any:
        return get_user(conn, conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one())

    app_id = apply.start_application(conn, citizen=person, matter_code=MARRIAGE_MATTER, now=when)
    apply.save_draft(conn, app_id, citizen=person, now=when, form_data={
        "spouse_name": spouse.display_name, "spouse_id_number": spouse.profile["id_number"],
        "spouse_phone": spouse.phone, "appointment_date": when.astimezone(CITY_TZ).date().isoformat()})
    definition = apply.matter_definition(conn, MARRIAGE_MATTER)
    for material in definition["materials"]:
        if material.get("replaced_by") is None:
            apply.attach_material(conn, app_id, citizen=person, material=material["code"], media=scans, now=when)
    apply.submit(conn, app_id, citizen=person, now=when)
    department = definition["department"]
    approvals.accept(conn, app_id, staff=staff(department), now=when + timedelta(minutes=20))
    approvals.decide(conn, app_id, staff=staff(f"{department}-lead"), outcome="approve", reason=None,
                     legal_basis=None, now=when + timedelta(minutes=30), key_dir=key_dir)


def _public_security(conn: Connection) -> str:
    """The department that issues resident IDs: public security, made if the city has none yet."""
    code = "gongan"
    if conn.execute(sa.select(departments.c.id).where(departments.c.code == code)).first() is None:
        add_department(conn, code=code, name_zh="市公安局", name_en="Public Security Bureau")
    return code
