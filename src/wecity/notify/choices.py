"""Kinds of group robot and the case events they can hear of, with their labels in both languages."""

from __future__ import annotations

from enum import StrEnum


class RobotKind(StrEnum):
    WECOM = "wecom"        # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉自定义机器人
    WEBHOOK = "webhook"    # any receiver of signed JSON

    def label(self, locale: str) -> str:
        zh, en = _KIND_LABELS[self]
        return zh if locale.startswith("zh") else en


class RobotEvent(StrEnum):
    DISPATCHED = "dispatched"  # a case sent to the department (派遣, 转办, reopened)
    ASSIGNED = "assigned"      # a case given to one of its staff (交办)
    ESCALATED = "escalated"    # 催办: an SLA clock ran out
    LOW_RATING = "low_rating"  # 差评: a rating of 2 stars or fewer, to follow up
    URGED = "citizen_urged"    # 市民催办: the reporter asked for the case to be hurried

    def label(self, locale: str) -> str:
        zh, en = _EVENT_LABELS[self]
        return zh if locale.startswith("zh") else en


_KIND_LABELS = {
    RobotKind.WECOM: ("企业微信群机器人", "WeCom group robot"),
    RobotKind.DINGTALK: ("钉钉群机器人", "DingTalk group robot"),
    RobotKind.WEBHOOK: ("通用 Webhook", "Generic webhook"),
}
_EVENT_LABELS = {
    RobotEvent.DISPATCHED: ("派遣到部门的案件", "Cases dispatched to the department"),
    RobotEvent.ASSIGNED: ("交办给个人的案件", "Cases assigned to a person"),
    RobotEvent.ESCALATED: ("催办（超时）", "Escalations (deadline passed)"),
    RobotEvent.LOW_RATING: ("差评回访", "Low ratings to follow up"),
    RobotEvent.URGED: ("市民催办", "Cases urged by their reporters"),
}
