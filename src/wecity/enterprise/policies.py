"""A support policy (惠企政策) as data, and what it says of one enterprise or of the whole register.

A policy document is JSON, format `wecity-policies/1` (docs/enterprise.md has the whole format):

    {"format": "wecity-policies/1",
     "variables": [{"name": "…", "type": "number", "label_zh": "…", "label_en": "…", "unit": "元"}],
     "policies": [{
       "code": "wengang-fanhuan", "name_zh": "失业保险稳岗返还", "name_en": "Job-retention refund",
       "department": "renshe", "matter": "CS-RSJ-101",
       "basis": {"title_zh": "…通知", "number": "湘人社规〔2025〕3号", "url": "…"},
       "valid_from": "2025-01-01", "valid_until": "2026-12-31", "automatic": true,
       "parameters": {"sme_rate": 0.6, "large_rate": [{"from": "2025-01-01", "value": 0.3}]},
       "conditions": [{"id": "insured", "clause": "第一条第（一）项", "text_zh": "…", "text_en": "…",
                       "rule": "unemployment_insurance_months >= 12"}],
       "benefit": {"clause": "第二条", "text_zh": "…", "text_en": "…", "unit": "元",
                   "amount": "unemployment_insurance_paid * (sme_rate if size_class != 'large' else large_rate)"}
     }]}

Every condition cites the clause of the policy text it implements. Evaluated on a day, a policy gives one
of three outcomes with a trace: **eligible** (with the amount), **ineligible** (naming the first condition,
in the document's order, that the enterprise is known to fail), or **unknown** (naming the variables the
register lacks). A policy not in force that day is ineligible by its validity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from wecity.core.errors import ValidationFailed
from wecity.enterprise import rules
from wecity.enterprise.rules import BOOLEAN, NUMBER, Column, Compiled, Unknown
from wecity.enterprise.variables import Variable, declared

FORMAT = "wecity-policies/1"
ELIGIBLE, INELIGIBLE, UNKNOWN = "eligible", "ineligible", "unknown"
OUTCOMES = (ELIGIBLE, INELIGIBLE, UNKNOWN)
# The pseudo-condition a policy out of force fails.
IN_FORCE = "in_force"
MAX_VARIABLES = 60
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _invalid(where: str, message: str, message_zh: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", message_zh=f"{where}：{message_zh}", code="enterprise.bad_policy")


@dataclass(frozen=True)
class Condition:
    id: str
    clause: str
    text_zh: str
    text_en: str
    rule: Compiled


@dataclass(frozen=True)
class Policy:
    """One version of a policy, compiled for one day (its dated parameters resolved for it)."""

    code: str
    version: int
    document: dict[str, Any]
    valid_from: date
    valid_until: date | None
    automatic: bool
    conditions: tuple[Condition, ...]
    amount: Compiled | None
    parameters: dict[str, Any]
    on: date

    @property
    def name_zh(self) -> str:
        return str(self.document["name_zh"])

    @property
    def name_en(self) -> str:
        return str(self.document["name_en"])

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on <= self.valid_until)

    @property
    def names(self) -> frozenset[str]:
        """Every variable the policy reads."""
        out: frozenset[str] = frozenset()
        for c in self.conditions:
            out |= c.rule.names
        return out | (self.amount.names if self.amount else frozenset())


@dataclass
class Evaluation:
    outcome: str
    amount: float | None = None
    failed: str | None = None                  # the condition failed (ineligible)
    missing: tuple[str, ...] = ()              # the variables lacking (unknown)
    trace: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "amount": self.amount, "failed": self.failed, "missing": list(self.missing),
                "trace": self.trace}


def _date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _invalid(where, f"{value!r} is not a date (YYYY-MM-DD)", f"{value!r} 不是日期（YYYY-MM-DD）") from None


def _text(policy: Mapping[str, Any], key: str, where: str, *, limit: int = 2000) -> str:
    value = policy.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _invalid(where, f"{key} must be text of 1 to {limit} characters", f"{key} 应为 1 至 {limit} 个字符的文本")
    return value


def parameter_values(raw: Any, on: date, where: str, *, valid_from: date | None = None) -> dict[str, Any]:
    """The policy's parameters as they stand on `on`: a value, or dated values [{"from", "value"}, ...] of
    which the latest that has begun applies (OpenFisca's dated parameters). Given `valid_from` (an import),
    the first of them begins no later than the policy: before it, the parameter would have no value."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid(where, "parameters must be an object", "parameters 应为对象")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _ID.fullmatch(name):
            raise _invalid(where, f"parameter name {name!r} is not a lower-case identifier", f"参数名 {name!r} 不合规范")
        if isinstance(value, list):
            if not value or not all(isinstance(v, dict) for v in value):
                raise _invalid(where, f"parameter {name}: dated values are a list of at least one "
                               '{"from": date, "value": …}', f"参数 {name}：分期取值应为至少一项 {{\"from\": 日期, \"value\": …}} 的列表")
            dated = sorted(((_date(v.get("from"), f"{where}.{name}"), v.get("value")) for v in value),
                           key=lambda p: p[0])
            if valid_from is not None and dated[0][0] > valid_from:
                raise _invalid(where, f"parameter {name} has no value from valid_from ({valid_from}) to its first date "
                               f"({dated[0][0]})", f"参数 {name} 自生效日期（{valid_from}）至其首个日期（{dated[0][0]}）之间没有取值")
            current = [v for start, v in dated if start <= on]
            value = current[-1] if current else dated[0][1]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _invalid(where, f"parameter {name} must be a number or text", f"参数 {name} 应为数字或文本")
        out[name] = value
    return out


def compile_policy(document: Mapping[str, Any], *, version: int, on: date,
                   variables: Mapping[str, Variable] | None = None) -> Policy:
    """Check one policy of a document and compile it for day `on`; ValidationFailed says what is wrong."""
    where = f"policy {document.get('code')!r}"
    code = document.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise _invalid(where, "code must be 2-63 characters of a-z, 0-9 and -", "code 应为 2-63 位小写字母、数字或 -")
    for key in ("name_zh", "name_en", "department", "matter"):
        _text(document, key, where, limit=200)
    valid_from = _date(document.get("valid_from"), where)
    valid_until = _date(document["valid_until"], where) if document.get("valid_until") else None
    if valid_until is not None and valid_until < valid_from:
        raise _invalid(where, "valid_until is before valid_from", "失效日期早于生效日期")
    basis = document.get("basis")
    if not isinstance(basis, dict) or not isinstance(basis.get("title_zh"), str) or not basis["title_zh"].strip():
        raise _invalid(where, "basis.title_zh must name the policy text", "basis.title_zh 应写明政策文件")
    known = variables if variables is not None else declared()
    types = {name: v.type for name, v in known.items()}
    parameters = parameter_values(document.get("parameters"), on, where)
    clash = sorted(set(parameters) & set(types))
    if clash:
        raise _invalid(where, f"parameters {clash} have the names of variables", f"参数 {clash} 与变量同名")
    raw_conditions = document.get("conditions")
    if not isinstance(raw_conditions, list) or not raw_conditions or len(raw_conditions) > 50:
        raise _invalid(where, "conditions must be a list of 1 to 50", "conditions 应为 1 至 50 条条件")
    conditions, seen = [], set()
    for raw in raw_conditions:
        if not isinstance(raw, dict):
            raise _invalid(where, "each condition is an object", "每条条件应为对象")
        cid = raw.get("id")
        if not isinstance(cid, str) or not _ID.fullmatch(cid) or cid in seen or cid == IN_FORCE:
            raise _invalid(where, f"condition id {cid!r} must be a new lower-case identifier", f"条件编号 {cid!r} 不合规范或重复")
        seen.add(cid)
        here = f"{where}, condition {cid}"
        for key in ("clause", "text_zh", "text_en"):
            _text(raw, key, here, limit=500)
        conditions.append(Condition(cid, raw["clause"], raw["text_zh"], raw["text_en"],
                                    rules.compile_rule(raw.get("rule"), variables=types, parameters=parameters,
                                                       want=BOOLEAN)))
    benefit = document.get("benefit")
    if not isinstance(benefit, dict):
        raise _invalid(where, "benefit must be an object", "benefit 应为对象")
    for key in ("clause", "text_zh", "text_en"):
        _text(benefit, key, f"{where}, benefit", limit=500)
    amount = rules.compile_rule(benefit["amount"], variables=types, parameters=parameters, want=NUMBER) \
        if benefit.get("amount") is not None else None
    policy = Policy(code, version, dict(document), valid_from, valid_until, bool(document.get("automatic")),
                    tuple(conditions), amount, parameters, on)
    if len(policy.names) > MAX_VARIABLES:  # the whole-register evaluator keeps what is lacking in 63 bits
        raise _invalid(where, f"reads more than {MAX_VARIABLES} variables", f"引用的变量超过 {MAX_VARIABLES} 个")
    return policy


def check_document(document: Any) -> tuple[dict[str, Variable], list[dict[str, Any]]]:
    """The variables and policies of a whole document, every policy compiled once to check it."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValidationFailed(f"not a {FORMAT} document", message_zh=f"不是 {FORMAT} 格式的文档",
                               code="enterprise.bad_policy")
    try:
        known = declared(document.get("variables"))
    except ValueError as e:  # a packaged variable declared with another type
        raise _invalid("variables", str(e), "不得改变已有变量的类型") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise _invalid("variables", f"each variable is an object with name, type, label_zh and label_en ({e!r})",
                       "每个变量应为含 name、type、label_zh、label_en 的对象") from None
    if any(v.type not in ("number", "text", "boolean", "list") for v in known.values()):
        raise _invalid("variables", "a variable's type is number, text, boolean or list", "变量类型应为 number、text、boolean 或 list")
    policies = document.get("policies")
    if not isinstance(policies, list) or not policies:
        raise _invalid("policies", "a list of policies is needed", "应包含政策列表")
    if not all(isinstance(p, dict) and isinstance(p.get("code"), str) for p in policies):
        raise _invalid("policies", "each policy is an object with a code (text)", "每项政策应为带编码（文本）的对象")
    codes = [p["code"] for p in policies]
    if len(set(codes)) != len(codes):
        raise _invalid("policies", "each code once", "政策编码不得重复")
    for p in policies:
        where = f"policy {p.get('code')!r}"
        valid_from = _date(p.get("valid_from"), where)
        compile_policy(p, version=1, on=valid_from, variables=known)
        parameter_values(p.get("parameters"), valid_from, where, valid_from=valid_from)
        _basis_url(p["basis"].get("url"), f"policy {p.get('code')!r}")
    return known, policies


def _basis_url(url: Any, where: str) -> None:
    """The policy text's address, if given, is an http(s) URL: the public policy page links to it, and a
    `javascript:` or `data:` one would run in the browser of whoever follows the link."""
    if url is not None and url != "" and not _http_url(url):
        raise _invalid(where, "basis.url must be an http or https address (https://…)",
                       "basis.url 应为 http 或 https 网址（https://…）")


def _http_url(url: Any) -> bool:
    if not isinstance(url, str) or len(url) > 2000 or not url.isprintable() or " " in url:
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a broken [IPv6] host, a port out of range
        return False


# -- one enterprise ---------------------------------------------------------------------------------------

def _shown(value: Any) -> Any:
    if isinstance(value, Unknown):
        return None
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def evaluate(policy: Policy, env: Mapping[str, Any], *, on: date | None = None) -> Evaluation:
    """The outcome for one enterprise (`env`: its variables, None where the register holds nothing), with
    the trace: every condition, the values it read, and what it came to."""
    day = on or policy.on
    trace: list[dict[str, Any]] = []
    if not policy.in_force(day):
        trace.append({"id": IN_FORCE, "clause": "", "result": "false", "values": {"date": day.isoformat()}})
        return Evaluation(INELIGIBLE, failed=IN_FORCE, trace=trace)
    failed: str | None = None
    missing: set[str] = set()
    undecided = False  # a condition neither met nor failed (data lacking, or undefined: a division by zero)
    for c in policy.conditions:
        result = c.rule.scalar(env)
        state = "unknown" if isinstance(result, Unknown) else "true" if result else "false"
        if isinstance(result, Unknown):
            undecided = True
            missing |= lacking(c.rule, env)
        elif not result and failed is None:
            failed = c.id
        trace.append({"id": c.id, "clause": c.clause, "rule": c.rule.source, "result": state,
                      "values": {name: _shown(env.get(name)) for name in sorted(c.rule.names)}})
    if failed is not None:
        return Evaluation(INELIGIBLE, failed=failed, trace=trace)
    amount = None
    if policy.amount is not None:
        value = policy.amount.scalar(env)
        trace.append({"id": "benefit", "clause": policy.document["benefit"]["clause"], "rule": policy.amount.source,
                      "result": "unknown" if isinstance(value, Unknown) else "amount",
                      "values": {name: _shown(env.get(name)) for name in sorted(policy.amount.names)},
                      "amount": None if isinstance(value, Unknown) else money(value)})
        if isinstance(value, Unknown):
            missing |= lacking(policy.amount, env)
        else:
            amount = money(value)
    if undecided or missing or (policy.amount is not None and amount is None):
        return Evaluation(UNKNOWN, missing=tuple(sorted(missing)), trace=trace)
    return Evaluation(ELIGIBLE, amount=amount, trace=trace)


def lacking(rule: Compiled, env: Mapping[str, Any]) -> set[str]:
    """What an undecided condition lacks: every variable it reads that the register does not hold. (Not
    only those the three-valued result depends on: to decide `(a and b) or c` with `a` false the register
    needs only `c`, but asking for `b` too is what a person filling in the condition would expect, and the
    whole-register evaluator can say it for every enterprise at once.)"""
    return {name for name in rule.names if env.get(name) is None}


def money(value: float) -> float:
    """An amount to the fen, never below zero, rounded half up as amounts of money are (四舍五入): the
    float's binary noise taken off at the sixth decimal first, so that 100.05 × 0.3 (30.014999… in binary)
    is 30.02, not 30.01 as round() makes it."""
    exact = Decimal(f"{float(value):.6f}").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return max(float(exact), 0.0)


# -- the whole register -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcomes:
    """One policy over n enterprises: outcome codes (0 ineligible, 1 eligible, 2 unknown), amounts (NaN
    where none, unrounded), the index of the first condition failed (-1 where none), and what is lacking."""

    codes: np.ndarray
    amounts: np.ndarray
    failed: np.ndarray
    lacks: np.ndarray                 # where unknown: a bit per variable lacking, bit i for names[i]
    names: tuple[str, ...]

    def missing(self, i: int) -> tuple[str, ...]:
        """The variables enterprise i lacks (as `evaluate` names them)."""
        mask = int(self.lacks[i])
        return tuple(name for bit, name in enumerate(self.names) if mask >> bit & 1)


OUTCOME_CODES = {0: INELIGIBLE, 1: ELIGIBLE, 2: UNKNOWN}


def evaluate_all(policy: Policy, columns: Mapping[str, Column], n: int, *, on: date | None = None) -> Outcomes:
    """The same outcomes as `evaluate` for every enterprise of the register at once."""
    day = on or policy.on
    if not policy.in_force(day):
        return Outcomes(np.zeros(n, np.int8), np.full(n, np.nan), np.full(n, -1, np.int16), np.zeros(n, np.int64),
                        tuple(sorted(policy.names)))
    fails = []
    unknown = np.zeros(n, bool)
    bits = {name: np.int64(1) << i for i, name in enumerate(sorted(policy.names))}
    lacks = np.zeros(n, np.int64)

    def lacking_bits(rule: Compiled, undecided: np.ndarray) -> None:
        nonlocal lacks
        for name in rule.names:
            lacks |= np.where(undecided & ~columns[name][1], bits[name], np.int64(0))

    for c in policy.conditions:
        value, known = c.rule.vector(columns, n)
        value = value.astype(bool)
        fails.append(known & ~value)
        unknown |= ~known
        lacking_bits(c.rule, ~known)
    failed_any = np.logical_or.reduce(fails) if fails else np.zeros(n, bool)
    first = np.where(failed_any, np.argmax(np.vstack(fails), axis=0), -1).astype(np.int16)
    amounts = np.full(n, np.nan)
    if policy.amount is not None:
        value, known = policy.amount.vector(columns, n)
        unknown |= ~known
        lacking_bits(policy.amount, ~known)
        amounts = np.where(known, value.astype(float), np.nan)  # unrounded: `money` rounds each as `evaluate` does
    codes = np.where(failed_any, 0, np.where(unknown, 2, 1)).astype(np.int8)
    amounts = np.where(codes == 1, amounts, np.nan)
    return Outcomes(codes, amounts, first, np.where(codes == 2, lacks, 0), tuple(sorted(policy.names)))
