"""What a group robot is sent, in each service's documented format, and how DingTalk's 加签 is computed.

WeCom (企业微信) group robot, `POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...`:
``{"msgtype": "markdown", "markdown": {"content": ...}}``; a message that @mentions someone is ``text``
with ``mentioned_mobile_list`` (and ``mentioned_list`` for WeCom userids), since a markdown message cannot
mention by mobile number. DingTalk (钉钉) custom robot, `POST https://oapi.dingtalk.com/robot/send?
access_token=...`: ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles": [...]}}``,
each mentioned number also written as ``@<mobile>`` in the text (DingTalk shows the mention only then);
with 加签, ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")) go in
the query. Both answer ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a failure, even with HTTP 200.

A generic webhook gets the event as JSON, signed as every platform webhook is (X-WeCity-Signature).

The messages go to group chats: they carry the case number, its category, the department, what happened
and the link to the case in the staff portal, never anything of the citizen who reported it (no name,
phone, address, description or photo).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wecity.notify.choices import RobotKind

# (zh, en) headline per event detail; {case} the case number, {stars} a rating, {name} a staff member.
HEADLINES: dict[str, tuple[str, str]] = {
    "dispatched": ("【新派遣】案件 #{case}", "New case #{case} for your department"),
    "assigned": ("【交办】案件 #{case} 交由 {name} 处置", "Case #{case} assigned to {name}"),
    "ack_escalated": ("【催办】案件 #{case} 超时未签收", "Escalation: case #{case} not acknowledged in time"),
    "resolve_escalated": ("【催办】案件 #{case} 超时未办结", "Escalation: case #{case} not resolved in time"),
    "low_rating": ("【差评回访】案件 #{case} 收到 {stars} 星评价", "Case #{case} rated {stars}/5: please follow up"),
    "citizen_urged": ("【市民催办】案件 #{case}，请尽快办理并答复", "A citizen urges case #{case}: please act and answer"),
}
LABELS = {
    "category": ("类别", "Category"),
    "department": ("责任部门", "Department"),
    "open": ("在工作台查看", "Open in the staff portal"),
}


@dataclass(frozen=True, slots=True)
class Mentions:
    """Who a message @mentions: mobile numbers and WeCom userids of the staff who linked them."""

    mobiles: list[str] = field(default_factory=list)
    userids: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.mobiles or self.userids)


@dataclass(frozen=True, slots=True)
class CaseNotice:
    """What one robot message says about a case (no personal data of the citizen)."""

    event: str  # the kind a robot subscribes to: dispatched, assigned, escalated, low_rating, citizen_urged
    detail: str  # the headline: a key of HEADLINES
    case_id: int
    category: str
    department: str
    link: str
    locale: str = "zh_CN"
    stars: int | None = None
    assignee: str | None = None

    def _zh(self) -> bool:
        return self.locale.startswith("zh")

    def headline(self) -> str:
        zh, en = HEADLINES[self.detail]
        return (zh if self._zh() else en).format(case=self.case_id, stars=self.stars, name=self.assignee or "")

    def label(self, key: str) -> str:
        zh, en = LABELS[key]
        return zh if self._zh() else en


def _separator(notice: CaseNotice) -> str:
    return "：" if notice._zh() else ": "


def wecom_body(notice: CaseNotice, mentions: Mentions) -> dict[str, Any]:
    sep = _separator(notice)
    if mentions:
        content = (f"{notice.headline()}\n{notice.label('category')}{sep}{notice.category}\n"
                   f"{notice.label('department')}{sep}{notice.department}\n{notice.label('open')}{sep}{notice.link}")
        text: dict[str, Any] = {"content": content}
        if mentions.userids:
            text["mentioned_list"] = list(mentions.userids)
        if mentions.mobiles:
            text["mentioned_mobile_list"] = list(mentions.mobiles)
        return {"msgtype": "text", "text": text}
    content = (f"**{notice.headline()}**\n> {notice.label('category')}{sep}{notice.category}\n"
               f"> {notice.label('department')}{sep}{notice.department}\n[{notice.label('open')}]({notice.link})")
    return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_body(notice: CaseNotice, mentions: Mentions) -> dict[str, Any]:
    sep = _separator(notice)
    text = (f"#### {notice.headline()}\n\n- {notice.label('category')}{sep}{notice.category}\n"
            f"- {notice.label('department')}{sep}{notice.department}\n\n[{notice.label('open')}]({notice.link})")
    if mentions.mobiles:
        text += "\n\n" + " ".join(f"@{m}" for m in mentions.mobiles)
    return {"msgtype": "markdown", "markdown": {"title": notice.headline(), "text": text},
            "at": {"atMobiles": list(mentions.mobiles), "isAtAll": False}}


def webhook_body(notice: CaseNotice, mentions: Mentions, *, at: str) -> dict[str, Any]:
    return {"event": f"case.{notice.event}", "detail": notice.detail, "case_id": notice.case_id,
            "category": notice.category, "department": notice.department, "link": notice.link,
            "title": notice.headline(), "stars": notice.stars, "at": at,
            "mentions": {"mobiles": list(mentions.mobiles), "wecom_userids": list(mentions.userids)}}


def body_for(kind: str, notice: CaseNotice, mentions: Mentions, *, at: str) -> dict[str, Any]:
    if kind == RobotKind.WECOM:
        return wecom_body(notice, mentions)
    if kind == RobotKind.DINGTALK:
        return dingtalk_body(notice, mentions)
    return webhook_body(notice, mentions, at=at)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), before URL encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot's URL with `timestamp` and the URL-encoded `sign` added to its query."""
    query = urlencode({"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)})
    return f"{url}{'&' if '?' in url else '?'}{query}"
