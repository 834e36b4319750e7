"""The operations centre's KPIs, defined as data: each is a sum of counters of the daily rollup over a
period, or one such sum over another, with the words that say what counts (shown next to the figure).

The counters and which events feed them are in wecity.insight.counting. 解决率 (solved, by the citizen's
own rating) stands beside 办结率 (resolved, by the department's word), and the counts that show gaming —
cases returned, re-filed under another category, reopened — stand beside both, so a department that
closes fast by pushing cases away is seen doing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kpi:
    code: str
    name_zh: str
    name_en: str
    numerator: tuple[str, ...]            # counters summed over the period
    denominator: tuple[str, ...] = ()     # none: a count; else a rate (numerator / denominator)
    unit: str = "count"                   # count, percent, stars
    # Which way is good: +1 higher is better, -1 lower is better, 0 neither (a volume).
    better: int = 0
    definition_zh: str = ""
    definition_en: str = ""

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh_CN" else self.name_en

    def definition(self, locale: str) -> str:
        return self.definition_zh if locale == "zh_CN" else self.definition_en

    def value(self, sums: dict[str, int]) -> float | None:
        top = sum(sums.get(c, 0) for c in self.numerator)
        if not self.denominator:
            return float(top)
        bottom = sum(sums.get(c, 0) for c in self.denominator)
        if not bottom:
            return None
        return round(100 * top / bottom, 1) if self.unit == "percent" else round(top / bottom, 2)


KPIS: tuple[Kpi, ...] = (
    Kpi("received", "受理量", "Cases received", ("received",),
        definition_zh="期间内新立案件数（诉求并入已有案件的不另计）。",
        definition_en="Cases opened in the period (a report that joined an open case opens none)."),
    Kpi("response_rate", "响应率", "Response rate", ("acknowledged_on_time",), ("acknowledged",), "percent", 1,
        "期间内签收的案件中，签收时限未超时升级即签收的比例。",
        "Of the cases acknowledged in the period, the share acknowledged before their acknowledge clock escalated."),
    Kpi("resolved", "办结量", "Cases resolved", ("resolved",),
        definition_zh="期间内承办部门报告办结的次数。", definition_en="Resolutions reported by departments in the period."),
    Kpi("on_time_rate", "按期办结率", "Resolved on time", ("resolved_on_time",), ("resolved",), "percent", 1,
        "期间内办结的案件中，办理时限未超时升级即办结的比例。",
        "Of the resolutions in the period, the share made before the case's resolve clock escalated."),
    Kpi("resolution_rate", "办结率", "Resolution rate", ("resolved",), ("received",), "percent", 1,
        "期间内办结次数 ÷ 期间内受理量（按部门口径，不代表群众认可）。",
        "Resolutions in the period ÷ cases received in the period (the department's word, not the citizen's)."),
    Kpi("closure_rate", "结案率", "Closure rate", ("closed",), ("received",), "percent", 1,
        "期间内结案数 ÷ 期间内受理量。", "Cases closed in the period ÷ cases received in the period."),
    Kpi("solved_rate", "解决率", "Solved rate", ("solved",), ("rated",), "percent", 1,
        "期间内群众评价的案件中，评 3 星及以上且未标记“没解决”的比例（群众口径）。",
        "Of the cases rated in the period, the share rated 3 stars or more and not tagged “not fixed” (the "
        "citizen's word)."),
    Kpi("satisfaction_rate", "满意率", "Satisfaction rate", ("satisfied",), ("rated",), "percent", 1,
        "期间内评价中 4 星及以上的比例。", "Of the ratings in the period, the share of 4 or 5 stars."),
    Kpi("average_rating", "平均评分", "Average rating", ("stars",), ("rated",), "stars", 1,
        "期间内评价的平均星级（满分 5）。", "The average stars of the ratings in the period (of 5)."),
    Kpi("returned", "退回次数", "Returned", ("returned",), better=-1,
        definition_zh="期间内部门以“非本部门职责”等理由退回的次数。",
        definition_en="Times a department returned a case in the period (not its duty, not its area, ...)."),
    Kpi("recategorised", "改类次数", "Re-filed", ("recategorised",), better=-1,
        definition_zh="期间内案件被改为其他类别的次数。", definition_en="Times a case was re-filed under another category."),
    Kpi("reopened", "重办次数", "Reopened", ("reopened",), better=-1,
        definition_zh="期间内结案后因群众不满意等原因重新办理的次数。",
        definition_en="Times a closed case was reopened (the citizen not satisfied, a check failed)."),
    Kpi("escalated", "超时升级", "Escalated", ("escalated",), better=-1,
        definition_zh="期间内签收或办理时限到期而升级的次数。",
        definition_en="Times an acknowledge or resolve clock ran out and escalated the case."),
    Kpi("urged", "市民催办", "Urged by citizens", ("urged",), better=-1,
        definition_zh="期间内市民对未办结诉求催办的次数（网上或来电，每件每天至多一次）。",
        definition_en="Times citizens pressed for an open case in the period (催办), on the portal or by calling the "
                      "hotline (at most once a day per case)."),
    Kpi("merged", "并单数", "Merged duplicates", ("merged",),
        definition_zh="期间内作为重复案件并入其他案件的数量。", definition_en="Cases merged into another as duplicates."),
)
BY_CODE = {k.code: k for k in KPIS}
