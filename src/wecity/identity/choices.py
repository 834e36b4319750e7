"""Staff roles."""

from enum import StrEnum


class Role(StrEnum):
    HANDLER = "handler"        # 处置人员: works the department's cases
    DISPATCHER = "dispatcher"  # 派遣员: dispatch centre, re-dispatches returned cases, verifies
    SUPERVISOR = "supervisor"  # 督办: receives escalations, follows up low ratings
    ADMIN = "admin"            # 管理员: configures the city

    @property
    def label_zh(self) -> str:
        return {"handler": "处置人员", "dispatcher": "派遣员", "supervisor": "督办", "admin": "管理员"}[self.value]
