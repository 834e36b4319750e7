"""The codes an enterprise is known by: the 统一社会信用代码 (GB 32100-2015) and its industry (GB/T 4754-2017),
and the size class the national rule gives it (中小企业划型标准规定, 工信部联企业〔2011〕300号)."""

from __future__ import annotations

import re

# GB 32100-2015: 18 characters from this alphabet (no I, O, Z, S, V); the 18th is a check character.
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}")
# 登记管理部门码 (1st) and 机构类别码 (2nd) as GB 32100 lists them.
_REGISTRARS = {"1": "123459", "5": "1239", "9": "123", "Y": "1"}


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code: str) -> tuple[str, str] | None:
    """Why `code` is not a well-formed 统一社会信用代码 (en, zh), or None."""
    if len(code) != 18:
        return f"{len(code)} characters, not 18", f"长度为 {len(code)}，应为 18 位"
    if not _USCC.fullmatch(code):
        return "characters outside GB 32100's alphabet (digits and capitals but I, O, Z, S, V)", \
            "含有 GB 32100 不允许的字符（仅数字及除 I、O、Z、S、V 外的大写字母）"
    kinds = _REGISTRARS.get(code[0])
    if kinds is not None and code[1] not in kinds:
        return f"institution type {code[1]!r} does not exist for registrar {code[0]!r}", \
            f"登记管理部门 {code[0]} 下没有机构类别 {code[1]}"
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return f"check character {code[17]!r} should be {expected!r}", f"校验码 {code[17]} 有误，应为 {expected}"
    return None


# GB/T 4754-2017: each section letter and its divisions (两位大类码).
_SECTIONS = (("A", 1, 5), ("B", 6, 12), ("C", 13, 43), ("D", 44, 46), ("E", 47, 50), ("F", 51, 52),
             ("G", 53, 60), ("H", 61, 62), ("I", 63, 65), ("J", 66, 69), ("K", 70, 70), ("L", 71, 72),
             ("M", 73, 75), ("N", 76, 79), ("O", 80, 82), ("P", 83, 83), ("Q", 84, 85), ("R", 86, 90),
             ("S", 91, 96), ("T", 97, 97))
_INDUSTRY = re.compile(r"([A-T])([0-9]{2})([0-9]{0,2})")


def section_of(division: int) -> str | None:
    return next((letter for letter, low, high in _SECTIONS if low <= division <= high), None)


def industry_problem(code: str) -> tuple[str, str] | None:
    """Why `code` is not a GB/T 4754-2017 code written as its section letter and 2 to 4 digits ("I6513")."""
    m = _INDUSTRY.fullmatch(code)
    if m is None:
        return "an industry code is a section letter A-T and 2 to 4 digits, e.g. I6513", \
            "行业代码应为门类字母 A-T 加 2 至 4 位数字，例如 I6513"
    if section_of(int(m.group(2))) != m.group(1):
        return f"division {m.group(2)} is not in section {m.group(1)}", f"大类 {m.group(2)} 不属于门类 {m.group(1)}"
    return None


# The industries of the SME rule, and how each division falls into them.
SME_INDUSTRIES = ("agriculture", "industry", "construction", "wholesale", "retail", "transport", "warehousing",
                  "postal", "accommodation", "catering", "telecom", "software", "real_estate_development",
                  "property_management", "leasing_business", "other")


def sme_industry(code: str | None) -> str | None:
    """Which industry of the SME rule an industry code falls in; None when the code is missing."""
    if not code or _INDUSTRY.fullmatch(code) is None:
        return None
    division = int(code[1:3])
    digits = code[1:]
    section = code[0]
    if section == "A":
        return "agriculture"
    if section in "BCD":
        return "industry"
    if section == "E":
        return "construction"
    if section == "F":
        return "wholesale" if division == 51 else "retail"
    if section == "G":
        return "warehousing" if division == 59 else "postal" if division == 60 else "transport"
    if section == "H":
        return "accommodation" if division == 61 else "catering"
    if section == "I":
        return "software" if division == 65 else "telecom"
    if section == "K":
        if digits.startswith("701"):
            return "real_estate_development"
        if digits.startswith("702"):
            return "property_management"
        return "other"
    if section == "L":
        return "leasing_business"
    return "other"


# 工信部联企业〔2011〕300号, 第四条: per industry, the measures (employees 人, revenue 万元, assets 万元) and
# the thresholds at or above which an enterprise is medium, small; below small it is micro. An enterprise
# at or above the "large" thresholds on every measure of its industry is large.
# industry: (measures, large, medium, small)
_RULE: dict[str, tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "agriculture": (("revenue",), (20000,), (500,), (50,)),
    "industry": (("employees", "revenue"), (1000, 40000), (300, 2000), (20, 300)),
    "construction": (("revenue", "total_assets"), (80000, 80000), (6000, 5000), (300, 300)),
    "wholesale": (("employees", "revenue"), (200, 40000), (20, 5000), (5, 1000)),
    "retail": (("employees", "revenue"), (300, 20000), (50, 500), (10, 100)),
    "transport": (("employees", "revenue"), (1000, 30000), (300, 3000), (20, 200)),
    "warehousing": (("employees", "revenue"), (200, 30000), (100, 1000), (20, 100)),
    "postal": (("employees", "revenue"), (1000, 30000), (300, 2000), (20, 100)),
    "accommodation": (("employees", "revenue"), (300, 10000), (100, 2000), (10, 100)),
    "catering": (("employees", "revenue"), (300, 10000), (100, 2000), (10, 100)),
    "telecom": (("employees", "revenue"), (2000, 100000), (100, 1000), (10, 100)),
    "software": (("employees", "revenue"), (300, 10000), (100, 1000), (10, 50)),
    "real_estate_development": (("revenue", "total_assets"), (200000, 10000), (1000, 5000), (100, 2000)),
    "property_management": (("employees", "revenue"), (1000, 5000), (300, 1000), (100, 500)),
    "leasing_business": (("employees", "total_assets"), (300, 120000), (100, 8000), (10, 100)),
    "other": (("employees",), (300,), (100,), (10,)),
}
SIZE_CLASSES = ("large", "medium", "small", "micro")
SIZE_LABELS = {"large": ("大型", "Large"), "medium": ("中型", "Medium"), "small": ("小型", "Small"),
               "micro": ("微型", "Micro")}


def size_class(industry: str | None, measures: dict[str, float | None]) -> str | None:
    """The size class from the industry and the measures it is judged by; None when any is missing."""
    if industry is None:
        return None
    names, large, medium, small = _RULE[industry]
    values = [measures.get(name) for name in names]
    if any(v is None for v in values):
        return None
    for label, thresholds in (("large", large), ("medium", medium), ("small", small)):
        if all(v >= t for v, t in zip(values, thresholds, strict=True)):  # type: ignore[operator]
            return label
    return "micro"


def sme_measures(industry: str) -> tuple[str, ...]:
    return _RULE[industry][0]
