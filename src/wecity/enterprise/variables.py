"""What the enterprise register holds, as the rule language names it: each variable with its type, its
labels and its unit.

Two kinds. **Profile variables** are the register's own columns (`enterprises`), the same for every city.
**Facts** are what a city's policies need beyond them — months of unemployment insurance paid, last year's
layoff rate, rent paid — kept per enterprise in `enterprises.facts`; the packaged ones are below, and a
policy document may declare more (`"variables"` in the format of `wecity-policies/1`), so that a new
policy needing a new datum is data, not code. **Derived** variables are computed from the others when an
enterprise is evaluated (its age, its size class when the register does not state one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from wecity.enterprise.rules import BOOLEAN, LIST, NUMBER, TEXT


@dataclass(frozen=True)
class Variable:
    name: str
    type: str          # number | text | boolean | list
    label_zh: str
    label_en: str
    unit: str = ""     # 人 / 万元 / 元 / 月 / ratio ...
    kind: str = "fact"  # profile | fact | derived

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "label_zh": self.label_zh, "label_en": self.label_en,
                "unit": self.unit, "kind": self.kind}


PROFILE = "profile"
FACT = "fact"
DERIVED = "derived"

_PACKAGED = [
    Variable("legal_form", TEXT, "组织形式", "Legal form", kind=PROFILE),
    Variable("industry_code", TEXT, "国民经济行业代码", "Industry code (GB/T 4754)", kind=PROFILE),
    Variable("industry_section", TEXT, "行业门类", "Industry section (GB/T 4754 letter)", kind=DERIVED),
    Variable("sme_industry", TEXT, "划型行业", "Industry for the SME classification", kind=DERIVED),
    Variable("size_class", TEXT, "企业规模", "Size class (large/medium/small/micro)", kind=DERIVED),
    Variable("district", TEXT, "所在区县", "District (area code)", kind=PROFILE),
    Variable("age_years", NUMBER, "成立年限", "Years since registration", "年", kind=DERIVED),
    Variable("registered_capital", NUMBER, "注册资本", "Registered capital", "万元", kind=PROFILE),
    Variable("employees", NUMBER, "从业人员", "Employees", "人", kind=PROFILE),
    Variable("revenue", NUMBER, "上年度营业收入", "Revenue last year", "万元", kind=PROFILE),
    Variable("total_assets", NUMBER, "资产总额", "Total assets", "万元", kind=PROFILE),
    Variable("tax_credit_grade", TEXT, "纳税信用等级", "Tax credit grade (A/B/M/C/D)", kind=PROFILE),
    Variable("certificates", LIST, "资质认定", "Certifications held", kind=PROFILE),
    Variable("tags", LIST, "标签", "Tags", kind=PROFILE),
    # Facts the packaged policies read.
    Variable("unemployment_insurance_months", NUMBER, "连续参加失业保险月数", "Months of unemployment insurance paid",
             "月"),
    Variable("unemployment_insurance_paid", NUMBER, "上年度实际缴纳失业保险费", "Unemployment insurance paid last year",
             "元"),
    Variable("layoff_rate", NUMBER, "上年度裁员率", "Layoff rate last year", "ratio"),
    Variable("rd_expense", NUMBER, "上年度研发费用", "R&D expenses last year", "万元"),
    Variable("rd_expense_growth", NUMBER, "研发费用同比增长", "Growth of R&D expenses over the year before", "ratio"),
    Variable("rent_paid", NUMBER, "上年度实际支付房租", "Rent paid last year", "元"),
    Variable("serious_violation", BOOLEAN, "近三年有严重违法失信行为", "Serious violations in the last three years"),
    Variable("new_hires_graduates", NUMBER, "当年招用高校毕业生人数", "Graduates hired this year", "人"),
    Variable("export_value", NUMBER, "上年度出口额", "Exports last year", "万元"),
    Variable("first_above_scale", BOOLEAN, "首次纳入规模以上统计", "Newly counted as above designated size"),
    Variable("patents_invention", NUMBER, "有效发明专利数", "Invention patents in force", "件"),
]
PACKAGED: dict[str, Variable] = {v.name: v for v in _PACKAGED}
TYPES = (NUMBER, TEXT, BOOLEAN, LIST)


def declared(extra: list[dict[str, Any]] | None = None) -> dict[str, Variable]:
    """The packaged variables and those a policy document declares (facts only; a name cannot be redeclared
    with another type)."""
    out = dict(PACKAGED)
    for v in extra or []:
        variable = Variable(str(v["name"]), str(v["type"]), str(v["label_zh"]), str(v["label_en"]),
                            str(v.get("unit", "")), FACT)
        if variable.name in out and out[variable.name].type != variable.type:
            raise ValueError(f"variable {variable.name} is a {out[variable.name].type}, not a {variable.type}")
        out[variable.name] = variable
    return out


def age_years(registered_on: date | None, on: date) -> float | None:
    """Whole years from registration to `on` (an enterprise registered on 2021-03-01 is 5 on 2026-03-01)."""
    if registered_on is None:
        return None
    years = on.year - registered_on.year - ((on.month, on.day) < (registered_on.month, registered_on.day))
    return float(max(years, 0))
