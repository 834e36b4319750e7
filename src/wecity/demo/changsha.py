"""Changsha (长沙市) as a demo city: its 9 districts, 8 departments, 15 categories and a few staff.

SLA targets follow what 数字城管 and 12345 hotlines publish: urgent safety hazards (an open manhole, a dead
traffic signal) are acknowledged within 15–30 minutes and made safe within hours; nuisance cases get
working days.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy.engine import Connection

from wecity.cases.service import add_category
from wecity.geo.coords import CoordSystem
from wecity.geo.service import import_areas, set_jurisdiction
from wecity.identity.service import add_department, add_user

JURISDICTION_ID = "changsha.gov.cn"
DEMO_PASSWORD = "wecity-demo"

DISTRICT_NAMES_EN = {
    "芙蓉区": "Furong District", "天心区": "Tianxin District", "岳麓区": "Yuelu District",
    "开福区": "Kaifu District", "雨花区": "Yuhua District", "望城区": "Wangcheng District",
    "长沙县": "Changsha County", "浏阳市": "Liuyang City", "宁乡市": "Ningxiang City",
}

DEPARTMENTS = [
    # code, zh, en, dispatch centre?
    ("dispatch", "市12345热线与数字城管指挥中心", "12345 Hotline & Urban Management Command Centre", True),
    ("chengguan", "市城市管理和综合执法局", "Urban Management & Law Enforcement Bureau", False),
    ("zhujian", "市住房和城乡建设局", "Housing & Urban-Rural Development Bureau", False),
    ("jiaotong", "市交通运输局", "Transport Bureau", False),
    ("shuiwu", "市水务局", "Water Affairs Bureau", False),
    ("shengtai", "市生态环境局", "Ecology & Environment Bureau", False),
    ("jiaojing", "市公安局交通警察支队", "Traffic Police Detachment", False),
    ("yuanlin", "市园林绿化局", "Landscaping & Greening Bureau", False),
    ("shichang", "市市场监督管理局", "Market Regulation Administration", False),
]

GROUPS = {
    "facilities": ("市政设施", "Public facilities"),
    "environment": ("市容环境", "City appearance & environment"),
    "traffic": ("交通秩序", "Traffic & order"),
    "nuisance": ("生活环境", "Living environment"),
    "other": ("其他", "Other"),
}

# code, zh, en, group, department, ack minutes, resolve hours, calendar, keywords
CATEGORIES = [
    ("manhole", "井盖缺失/破损", "Missing or broken manhole cover", "facilities", "chengguan", 15, 4, "24x7",
     "井盖 窨井 下水道盖 manhole cover drain"),
    ("streetlight", "路灯故障", "Streetlight out", "facilities", "chengguan", 60, 48, "working",
     "路灯 不亮 闪烁 streetlight lamp dark"),
    ("pothole", "道路坑洼", "Pothole or damaged road", "facilities", "zhujian", 60, 72, "working",
     "坑 坑洼 路面破损 pothole road surface"),
    ("garbage", "垃圾堆积", "Rubbish pile-up", "environment", "chengguan", 30, 12, "24x7",
     "垃圾 堆积 清运 rubbish trash garbage"),
    ("illegal-parking", "违章停车", "Illegal parking", "traffic", "jiaojing", 30, 4, "24x7",
     "违停 乱停车 占道停车 parking blocked"),
    ("noise", "噪音扰民", "Noise nuisance", "nuisance", "shengtai", 30, 24, "24x7",
     "噪音 施工噪声 广场舞 noise loud"),
    ("street-vending", "占道经营", "Street vending on the road", "environment", "chengguan", 30, 8, "24x7",
     "占道 摆摊 流动摊贩 vendor stall"),
    ("sewage-overflow", "污水外溢", "Sewage overflow", "facilities", "shuiwu", 30, 12, "24x7",
     "污水 冒水 外溢 sewage overflow smell"),
    ("fallen-tree", "树木倒伏", "Fallen tree", "environment", "yuanlin", 30, 8, "24x7",
     "树 倒伏 断枝 tree fallen branch"),
    ("shared-bikes", "共享单车乱停", "Shared bikes parked badly", "traffic", "jiaotong", 60, 24, "working",
     "共享单车 乱停 bike dockless"),
    ("illegal-construction", "违法建设", "Unauthorised construction", "environment", "zhujian", 120, 120, "working",
     "违建 搭建 加建 construction unauthorised"),
    ("cooking-fumes", "油烟污染", "Cooking fume pollution", "nuisance", "shengtai", 60, 72, "working",
     "油烟 餐馆 排烟 fumes restaurant smoke"),
    ("waterlogging", "积水内涝", "Flooding or standing water", "facilities", "shuiwu", 15, 6, "24x7",
     "积水 内涝 淹水 flooding waterlogging"),
    ("traffic-signal", "交通信号灯故障", "Traffic signal fault", "traffic", "jiaojing", 15, 4, "24x7",
     "红绿灯 信号灯 traffic light signal"),
    ("other", "其他", "Other", "other", "dispatch", 60, 72, "working", "其他 other"),
]

# "Other" says nothing by itself: a report of it must say in words what is wrong.
DESCRIPTION_REQUIRED = {"other"}

# Open311 service definitions for the categories that ask for more than a description.
ATTRIBUTES = {
    "manhole": [
        {"code": "cover_state", "datatype": "singlevaluelist", "required": True, "variable": True,
         "description_zh": "井盖情况", "description_en": "State of the cover",
         "values": [{"key": "missing", "name_zh": "缺失", "name_en": "Missing"},
                    {"key": "broken", "name_zh": "破损", "name_en": "Broken"},
                    {"key": "sunken", "name_zh": "沉陷/不平", "name_en": "Sunken or uneven"}]},
    ],
    "streetlight": [
        {"code": "pole_number", "datatype": "string", "required": False, "variable": True,
         "description_zh": "灯杆编号（灯杆上的牌子）", "description_en": "Pole number (on the plate on the pole)"},
    ],
}

# username, display name, department, roles, phone
STAFF = [
    ("admin", "系统管理员", "dispatch", ("admin",), "13800000000"),
    ("dispatcher", "派遣员 李娜", "dispatch", ("dispatcher",), "13800000001"),
    ("supervisor", "督办 王强", "dispatch", ("supervisor",), "13800000002"),
    ("chengguan", "城管 张伟", "chengguan", ("handler",), "13800000011"),
    ("chengguan-lead", "城管科长 刘洋", "chengguan", ("handler", "supervisor"), "13800000012"),
    ("zhujian", "住建 陈静", "zhujian", ("handler",), "13800000021"),
    ("jiaotong", "交通 杨帆", "jiaotong", ("handler",), "13800000031"),
    ("shuiwu", "水务 赵磊", "shuiwu", ("handler",), "13800000041"),
    ("shengtai", "生态 黄敏", "shengtai", ("handler",), "13800000051"),
    ("jiaojing", "交警 周杰", "jiaojing", ("handler",), "13800000061"),
    ("yuanlin", "园林 吴芳", "yuanlin", ("handler",), "13800000071"),
    ("shichang", "市监 郑浩", "shichang", ("handler",), "13800000081"),
]


# Standard replies (标准回复): (name, locale, use, status, category, body with {{fields}} to fill).
REPLY_TEMPLATES = [
    ("通用办结回复", "zh_CN", "resolve", None, None,
     "您反映的问题已处理。处置措施：{{处置措施}}；完成时间：{{完成时间}}。感谢您对城市管理的支持。"),
    ("General resolution", "en", "resolve", None, None,
     "The problem you reported has been dealt with. What we did: {{measures}}; finished: {{finished at}}. "
     "Thank you for helping your city."),
    ("道路坑洼修复", "zh_CN", "resolve", None, "pothole",
     "道路坑洼已修复：{{修复方式}}，修复面积约 {{面积}} 平方米，于 {{完成时间}} 完成。"),
    ("Pothole repaired", "en", "resolve", None, "pothole",
     "The pothole has been repaired ({{repair method}}, about {{area}} m²), finished {{finished at}}."),
    ("井盖处置", "zh_CN", "resolve", None, "manhole",
     "井盖已{{处置方式}}，现场警示已撤除，于 {{完成时间}} 完成。"),
    ("Manhole cover fixed", "en", "resolve", None, "manhole",
     "The manhole cover has been {{what was done}}; the warning signs are gone. Finished {{finished at}}."),
    ("处置进展告知", "zh_CN", "note", "in_progress", None,
     "您反映的问题正在处置中：{{当前进展}}，预计 {{预计完成时间}} 前完成。"),
    ("Progress update", "en", "note", "in_progress", None,
     "We are working on the problem you reported: {{progress}}. We expect to finish by {{expected by}}."),
    ("已签收告知", "zh_CN", "note", "acknowledged", None,
     "您反映的问题已由{{处置单位}}签收，将于 {{上门时间}} 到现场查看。"),
    ("Acknowledged", "en", "note", "acknowledged", None,
     "{{team}} has taken on the problem you reported and will be on site by {{visit time}}."),
]


def seed_replies(conn: Connection, now: datetime) -> None:
    from wecity.cases.models import reply_templates

    conn.execute(reply_templates.insert(), [
        {"name": name, "locale": locale, "use": use, "status": status, "category_code": category, "body": body,
         "active": True, "updated_at": now, "updated_by": "demo"}
        for name, locale, use, status, category, body in REPLY_TEMPLATES])


def boundaries(city: str = "changsha") -> list[dict[str, Any]]:
    import json

    text = resources.files("wecity.demo").joinpath(f"data/{city}-districts.gcj02.geojson").read_text("utf-8")
    return list(json.loads(text)["features"])


def seed_city(conn: Connection, now: datetime, *, with_staff: bool = True) -> None:
    """Create Changsha's jurisdiction, districts, departments, categories and (optionally) staff."""
    set_jurisdiction(conn, id=JURISDICTION_ID, name_zh="长沙市", name_en="Changsha", adcode="430100",
                     center=(28.1960, 112.9770))
    import_areas(conn, boundaries(), coord_system=CoordSystem.GCJ02, now=now, english_names=DISTRICT_NAMES_EN)
    for code, zh, en, is_centre in DEPARTMENTS:
        add_department(conn, code=code, name_zh=zh, name_en=en, is_dispatch_centre=is_centre)
    for order, (code, zh, en, group, dept, ack, resolve, calendar, keywords) in enumerate(CATEGORIES):
        group_zh, group_en = GROUPS[group]
        add_category(conn, code=code, name_zh=zh, name_en=en, group_zh=group_zh, group_en=group_en,
                     department_code=dept, ack_minutes=ack, resolve_hours=resolve, calendar=calendar,
                     keywords=keywords, sort_order=order, attributes=ATTRIBUTES.get(code),
                     description_required=code in DESCRIPTION_REQUIRED)
    seed_replies(conn, now)
    if with_staff:
        for username, name, dept, roles, phone in STAFF:
            add_user(conn, username=username, password=DEMO_PASSWORD, display_name=name, department_code=dept,
                     roles=roles, phone=phone, now=now)
