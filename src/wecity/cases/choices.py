"""Case states, events and reasons, with their labels in both languages and a badge colour."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any


class CaseStatus(StrEnum):
    SUBMITTED = "submitted"          # 已受理: accepted, not yet with a department
    DISPATCHED = "dispatched"        # 已派遣: sent to a department, waiting for 签收
    ACKNOWLEDGED = "acknowledged"    # 已签收
    RETURNED = "returned"            # 已退单: the department sent it back to the dispatch centre
    IN_PROGRESS = "in_progress"      # 处置中
    RESOLVED = "resolved"            # 已办结: the department says it is fixed (with evidence)
    VERIFIED = "verified"            # 已核查: the dispatcher or the citizen confirmed
    CLOSED = "closed"                # 已结案
    MERGED = "merged"                # 已并单: folded into another case

    @property
    def label_zh(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]

    def label(self, locale: str) -> str:
        return self.label_zh if locale.startswith("zh") else self.label_en

    @property
    def colour(self) -> str:
        return _LABELS[self][2]

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.CLOSED, CaseStatus.MERGED)


_LABELS = {
    CaseStatus.SUBMITTED: ("已受理", "Submitted", "grey"),
    CaseStatus.DISPATCHED: ("已派遣", "Dispatched", "blue"),
    CaseStatus.ACKNOWLEDGED: ("已签收", "Acknowledged", "indigo"),
    CaseStatus.RETURNED: ("已退单", "Returned", "orange"),
    CaseStatus.IN_PROGRESS: ("处置中", "In progress", "purple"),
    CaseStatus.RESOLVED: ("已办结", "Resolved", "teal"),
    CaseStatus.VERIFIED: ("已核查", "Verified", "green"),
    CaseStatus.CLOSED: ("已结案", "Closed", "darkgreen"),
    CaseStatus.MERGED: ("已并单", "Merged", "grey"),
}

# States in which a new report of the same category nearby joins the case rather than opening one.
MERGEABLE = (CaseStatus.SUBMITTED, CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.RETURNED,
             CaseStatus.IN_PROGRESS)


# The SLA clocks as the case's holder sees them (`wecity.cases.clocks` fires on the same states): the
# acknowledge clock runs while a department has not signed for the case (签收), the resolve clock while
# it works on it. No clock runs while the dispatch centre holds a case (submitted, returned).
ACK_CLOCK_STATES = (CaseStatus.DISPATCHED,)
RESOLVE_CLOCK_STATES = (CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS)


def running_clock(row: Any) -> tuple[str, datetime | None]:
    """The clock that matters now and when it runs out: acknowledge while waiting for 签收, then resolve."""
    if row.status in ACK_CLOCK_STATES:
        return "acknowledge", row.ack_due_at
    if row.status in RESOLVE_CLOCK_STATES:
        return "resolve", row.resolve_due_at
    return "none", None


# The dispatch centre holds the case, whatever department it last went to: not yet sent, or sent back.
CENTRE_HOLDS = (CaseStatus.SUBMITTED, CaseStatus.RETURNED)
# A department's own work: cases sent to it and not yet verified.
DEPARTMENT_WORK = (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED)
# The dispatch centre's work, in the order it takes it: sent back, not yet sent, waiting for 核查, for 结案.
DISPATCH_WORK = (CaseStatus.RETURNED, CaseStatus.SUBMITTED, CaseStatus.RESOLVED, CaseStatus.VERIFIED)
OPEN_STATES = tuple(s for s in CaseStatus if s.is_open)


class ReturnReason(StrEnum):
    NOT_OUR_AREA = "not_our_area"
    NOT_OUR_DUTY = "not_our_duty"
    INSUFFICIENT_INFO = "insufficient_info"
    DUPLICATE = "duplicate"
    OTHER = "other"

    def label(self, locale: str) -> str:
        zh, en = {
            "not_our_area": ("非本辖区", "Not our area"),
            "not_our_duty": ("非本部门职责", "Not our duty"),
            "insufficient_info": ("信息不足", "Insufficient information"),
            "duplicate": ("重复案件", "Duplicate"),
            "other": ("其他", "Other"),
        }[self.value]
        return zh if locale.startswith("zh") else en


class Source(StrEnum):
    CITIZEN = "citizen"
    SENSOR = "sensor"
    HOTLINE = "hotline"
    STAFF = "staff"


class Channel(StrEnum):
    OPEN311 = "open311"
    PORTAL = "portal"
    SENSOR = "sensor"
    HOTLINE = "hotline"
    STAFF_API = "staff_api"
    ENTERPRISE = "enterprise"  # an enterprise's 诉求, filed by a citizen acting for it (wecity.enterprise.appeals)
    SYSTEM = "system"


# Channels whose cases are not shown to the public (Open311's requests, the public case page, the map, open
# cases nearby): an enterprise's 诉求 names the enterprise and what it complains of, often an office of the
# city. The reporter still follows theirs by its tracking code.
UNPUBLISHED_CHANNELS = (Channel.ENTERPRISE,)


class AnomalyKind(StrEnum):
    """Which reading anomaly opens a sensor rule's case (the tests are wecity.ai.anomalies')."""

    ANY = "any"      # 任一异常
    SPIKE = "spike"  # 突变: one reading far from the sensor's past
    STUCK = "stuck"  # 卡滞: the same reading over and over
    DRIFT = "drift"  # 漂移: the level moving away from where it was


class Priority(StrEnum):
    """How urgent a case is to treat (优先级), beside its SLA clock: the queue can be sorted on it."""

    LOW = "low"          # 低
    NORMAL = "normal"    # 普通
    HIGH = "high"        # 紧急
    URGENT = "urgent"    # 特急

    @property
    def rank(self) -> int:
        return list(Priority).index(self)

    def label(self, locale: str) -> str:
        zh, en = {"low": ("低", "Low"), "normal": ("普通", "Normal"), "high": ("紧急", "High"),
                  "urgent": ("特急", "Urgent")}[self.value]
        return zh if locale.startswith("zh") else en


class ReplyUse(StrEnum):
    """Where a standard reply (标准回复) is offered: the resolution note, or a note shown to the citizen."""

    RESOLVE = "resolve"
    NOTE = "note"
