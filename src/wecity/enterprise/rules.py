"""Policies as code: the rule language, and its two evaluators.

A policy's conditions and its benefit are expressions a policy officer can read, written in a small
language with Python's syntax and none of its power:

    layoff_rate <= 0.055 or (employees <= 30 and layoff_rate <= 0.2)
    size_class in ('medium', 'small', 'micro') and tax_credit_grade in ('A', 'B')
    'high_tech' in certificates
    min(unemployment_insurance_paid * (sme_rate if size_class != 'large' else large_rate), cap)

Names are the register's variables (`wecity.enterprise.variables`) and the policy's own parameters; the
rest is numbers, text, `and` / `or` / `not`, comparisons (chained too), `in` a list written out or a list
variable, `+ - * /`, `x if condition else y`, and `min`, `max`, `abs`. Anything else — attributes,
subscripts, other calls, lambdas — is refused when the policy is imported, with the reason, as are names
nobody declared and comparisons of a number with text.

A value the register does not hold is *unknown*, and the logic is three-valued (Kleene's): `a and b` is
false as soon as either is known false, true when both are true, and otherwise unknown; `or` likewise;
arithmetic or a comparison with an unknown value is unknown. So an enterprise is found ineligible by a
condition it fails even when other data are missing, and "unknown" names exactly what is missing.

Two evaluators, one meaning (tests/enterprise/test_rules.py checks they agree on random registers):

- `Compiled.scalar(env)`: one enterprise, returning a value or an `Unknown` naming the missing variables;
  the policy's page and the trace use it.
- `Compiled.vector(columns, n)`: the whole register at once, as NumPy arrays (value, known) — the way
  OpenFisca evaluates a formula for millions of entities — for the batch match.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wecity.core.errors import ValidationFailed

NUMBER, TEXT, BOOLEAN, LIST = "number", "text", "boolean", "list"
MAX_RULE_LENGTH = 2000
MAX_RULE_DEPTH = 100  # nesting of the expression: the evaluators recurse once a level


class Unknown:
    """A value that depends on variables the register does not hold: which ones."""

    __slots__ = ("names",)

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def __repr__(self) -> str:
        return f"Unknown({sorted(self.names)})"


def _unknown(*values: Any) -> Unknown:
    names: frozenset[str] = frozenset()
    for v in values:
        if isinstance(v, Unknown):
            names |= v.names
    return Unknown(names)


# Columns as the vector evaluator takes them: each variable's values and whether each is known.
Column = tuple[np.ndarray, np.ndarray]


class RuleError(ValidationFailed):
    def __init__(self, rule: str, message: str, message_zh: str) -> None:
        super().__init__(f"rule {rule!r}: {message}", message_zh=f"规则 {rule!r}：{message_zh}",
                         code="enterprise.bad_rule")


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_CALLS = {"min": (min, np.minimum), "max": (max, np.maximum)}


@dataclass(frozen=True)
class Compiled:
    """One expression, checked and made into its two evaluators."""

    source: str
    type: str
    names: frozenset[str]                                   # the variables it reads (not parameters)
    scalar: Callable[[Mapping[str, Any]], Any]
    vector: Callable[[Mapping[str, Column], int], Column]


def compile_rule(source: Any, *, variables: Mapping[str, str], parameters: Mapping[str, Any],
                 want: str | None = None) -> Compiled:
    """Check `source` and compile it. `variables` maps each name the register holds to its type;
    `parameters` are the policy's constants (numbers or text). `want` is the type the expression must have."""
    if not isinstance(source, str) or not source.strip():
        raise RuleError(str(source), "empty", "为空")
    if len(source) > MAX_RULE_LENGTH:
        raise RuleError(source[:40] + "…", f"longer than {MAX_RULE_LENGTH} characters", f"超过 {MAX_RULE_LENGTH} 个字符")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise RuleError(source, f"cannot be read: {e.msg}", f"无法解析：{e.msg}") from None
    except (RecursionError, MemoryError):
        raise _too_deep(source) from None
    if _depth(tree.body) > MAX_RULE_DEPTH:
        raise _too_deep(source)
    builder = _Builder(source, variables, parameters)
    kind, scalar, vector = builder.build(tree.body)
    if want is not None and kind != want:
        raise RuleError(source, f"gives a {kind}, not a {want}", f"结果是 {kind}，应为 {want}")
    return Compiled(source, kind, frozenset(builder.names), scalar, vector)


def _too_deep(source: str) -> RuleError:
    return RuleError(source[:40] + "…", f"nested more than {MAX_RULE_DEPTH} levels deep",
                     f"嵌套超过 {MAX_RULE_DEPTH} 层")


def _depth(node: ast.AST) -> int:
    """How deep the expression nests (walked without recursion: the tree may be deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        here, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_RULE_DEPTH:
            break
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(here))
    return deepest


_Scalar = Callable[[Mapping[str, Any]], Any]
_Vector = Callable[[Mapping[str, Column], int], Column]


class _Builder:
    """Walks the syntax tree once: checks each node and returns (type, scalar evaluator, vector evaluator)."""

    def __init__(self, source: str, variables: Mapping[str, str], parameters: Mapping[str, Any]) -> None:
        self.source, self.variables, self.parameters = source, variables, parameters
        self.names: set[str] = set()

    def fail(self, message: str, message_zh: str) -> RuleError:
        return RuleError(self.source, message, message_zh)

    def build(self, node: ast.AST) -> tuple[str, _Scalar, _Vector]:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not part of the rule language",
                            f"规则语言不支持 {type(node).__name__}")
        return method(node)  # type: ignore[no-any-return]

    # -- leaves ------------------------------------------------------------------------------------------

    def _Constant(self, node: ast.Constant) -> tuple[str, _Scalar, _Vector]:
        value = node.value
        if isinstance(value, bool):
            kind = BOOLEAN
        elif isinstance(value, int | float):
            try:
                kind, value = NUMBER, float(value)
            except OverflowError:
                raise self.fail(f"the number {str(value)[:20]}… is too large", f"数字 {str(value)[:20]}… 过大") from None
            if value in (float("inf"), float("-inf")):
                raise self.fail("a number too large", "数字过大")
        elif isinstance(value, str):
            kind = TEXT
        else:
            raise self.fail(f"{value!r} is not a number, text or True/False", f"{value!r} 不是数字、文本或真假值")
        return kind, lambda env: value, lambda cols, n: (np.full(n, value, dtype=_dtype(kind)), np.ones(n, bool))

    def _Name(self, node: ast.Name) -> tuple[str, _Scalar, _Vector]:
        name = node.id
        if name in ("True", "False"):
            return self._Constant(ast.Constant(name == "True"))
        if name in self.parameters:
            value = self.parameters[name]
            kind = NUMBER if isinstance(value, int | float) and not isinstance(value, bool) else \
                BOOLEAN if isinstance(value, bool) else TEXT
            return self._Constant(ast.Constant(value)) if kind != NUMBER else self._Constant(ast.Constant(float(value)))
        if name not in self.variables:
            raise self.fail(f"no variable or parameter {name!r}", f"没有名为 {name!r} 的变量或参数")
        self.names.add(name)
        missing = Unknown(frozenset({name}))

        def scalar(env: Mapping[str, Any]) -> Any:
            value = env.get(name)
            return missing if value is None else value

        def vector(cols: Mapping[str, Column], n: int) -> Column:
            return cols[name]

        return self.variables[name], scalar, vector

    def _List(self, node: ast.List | ast.Tuple) -> tuple[str, _Scalar, _Vector]:
        values = []
        for element in node.elts:
            if not isinstance(element, ast.Constant) or isinstance(element.value, bool) or \
                    not isinstance(element.value, str | int | float):
                raise self.fail("a list holds numbers or text written out", "列表只能包含写明的数字或文本")
            values.append(float(element.value) if isinstance(element.value, int | float) else element.value)
        frozen = frozenset(values)
        return LIST, lambda env: frozen, lambda cols, n: (np.array([frozen] * n, dtype=object), np.ones(n, bool))

    _Tuple = _List

    # -- logic -------------------------------------------------------------------------------------------

    def _BoolOp(self, node: ast.BoolOp) -> tuple[str, _Scalar, _Vector]:
        parts = [self.build(v) for v in node.values]
        if any(kind != BOOLEAN for kind, _, _ in parts):
            raise self.fail("and / or join conditions (true or false)", "and / or 只能连接条件（真或假）")
        return _kleene([s for _, s, _ in parts], [v for _, _, v in parts], isinstance(node.op, ast.And))

    def _UnaryOp(self, node: ast.UnaryOp) -> tuple[str, _Scalar, _Vector]:
        kind, inner, inner_v = self.build(node.operand)
        if isinstance(node.op, ast.Not) and kind == BOOLEAN:
            return BOOLEAN, lambda env: (v if isinstance(v := inner(env), Unknown) else not v), \
                lambda cols, n: ((r := inner_v(cols, n))[0] == False, r[1])  # noqa: E712 (elementwise)
        if isinstance(node.op, ast.USub) and kind == NUMBER:
            return NUMBER, lambda env: (v if isinstance(v := inner(env), Unknown) else -v), \
                lambda cols, n: (-(r := inner_v(cols, n))[0], r[1])
        raise self.fail("`not` takes a condition and `-` a number", "not 只能用于条件，负号只能用于数字")

    def _IfExp(self, node: ast.IfExp) -> tuple[str, _Scalar, _Vector]:
        test_kind, test, test_v = self.build(node.test)
        kind, then, then_v = self.build(node.body)
        other_kind, other, other_v = self.build(node.orelse)
        if test_kind != BOOLEAN or kind != other_kind:
            raise self.fail("x if condition else y: a condition, and x and y of one type",
                            "x if 条件 else y：需要条件，且 x 与 y 类型相同")

        def scalar(env: Mapping[str, Any]) -> Any:
            chosen = test(env)
            if isinstance(chosen, Unknown):
                return chosen
            return then(env) if chosen else other(env)

        def vector(cols: Mapping[str, Column], n: int) -> Column:
            chosen, chosen_known = test_v(cols, n)
            a, a_known = then_v(cols, n)
            b, b_known = other_v(cols, n)
            chosen = chosen.astype(bool)
            return np.where(chosen, a, b), chosen_known & np.where(chosen, a_known, b_known)

        return kind, scalar, vector

    # -- comparisons -------------------------------------------------------------------------------------

    def _Compare(self, node: ast.Compare) -> tuple[str, _Scalar, _Vector]:
        operands = [self.build(node.left)] + [self.build(c) for c in node.comparators]
        steps: list[tuple[_Scalar, _Vector]] = []
        for op, (left_kind, left, left_v), (right_kind, right, right_v) in zip(node.ops, operands[:-1], operands[1:],
                                                                               strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                steps.append(self._membership(op, left_kind, left, left_v, right_kind, right, right_v))
                continue
            compare = _COMPARE.get(type(op))
            if compare is None:
                raise self.fail(f"{type(op).__name__} is not a comparison of the rule language",
                                f"规则语言不支持比较 {type(op).__name__}")
            if left_kind != right_kind or left_kind == LIST or \
                    (left_kind in (TEXT, BOOLEAN) and not isinstance(op, ast.Eq | ast.NotEq)):
                raise self.fail(f"cannot compare a {left_kind} with a {right_kind} by {_symbol(op)}",
                                f"不能用 {_symbol(op)} 比较 {left_kind} 与 {right_kind}")
            steps.append(_comparison(compare, left, left_v, right, right_v))
        if len(steps) == 1:
            return BOOLEAN, steps[0][0], steps[0][1]
        # a < b < c is (a < b) and (b < c)
        return _kleene([s for s, _ in steps], [v for _, v in steps], True)

    def _membership(self, op: ast.cmpop, left_kind: str, left: _Scalar, left_v: _Vector, right_kind: str,
                    right: _Scalar, right_v: _Vector) -> tuple[_Scalar, _Vector]:
        if right_kind != LIST or left_kind not in (NUMBER, TEXT):
            raise self.fail("`in` tests a number or text against a list", "in 用于判断数字或文本是否在列表中")
        negate = isinstance(op, ast.NotIn)

        def scalar(env: Mapping[str, Any]) -> Any:
            a, b = left(env), right(env)
            if isinstance(a, Unknown) or isinstance(b, Unknown):
                return _unknown(a, b)
            return (a in b) is not negate

        def vector(cols: Mapping[str, Column], n: int) -> Column:
            a, a_known = left_v(cols, n)
            b, b_known = right_v(cols, n)
            found = np.fromiter((x in s if s is not None else False for x, s in zip(a.tolist(), b.tolist(), strict=True)),
                                bool, count=n)
            return found ^ negate, a_known & b_known

        return scalar, vector

    # -- numbers -----------------------------------------------------------------------------------------

    def _BinOp(self, node: ast.BinOp) -> tuple[str, _Scalar, _Vector]:
        do = _ARITHMETIC.get(type(node.op))
        left_kind, left, left_v = self.build(node.left)
        right_kind, right, right_v = self.build(node.right)
        if do is None:
            raise self.fail("arithmetic is + - * /", "运算只支持 + - * /")
        if left_kind != NUMBER or right_kind != NUMBER:
            raise self.fail("arithmetic is on numbers", "只能对数字做运算")
        divide = isinstance(node.op, ast.Div)

        def scalar(env: Mapping[str, Any]) -> Any:
            a, b = left(env), right(env)
            if isinstance(a, Unknown) or isinstance(b, Unknown):
                return _unknown(a, b)
            if divide and b == 0:
                return Unknown(frozenset())  # undefined: neither eligible nor ineligible by it
            return do(a, b)

        def vector(cols: Mapping[str, Column], n: int) -> Column:
            a, a_known = left_v(cols, n)
            b, b_known = right_v(cols, n)
            if divide:
                zero = b == 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    return np.where(zero, np.nan, a / np.where(zero, 1.0, b)), a_known & b_known & ~zero
            return do(a, b), a_known & b_known

        return NUMBER, scalar, vector

    def _Call(self, node: ast.Call) -> tuple[str, _Scalar, _Vector]:
        if not isinstance(node.func, ast.Name) or node.keywords or node.func.id not in (*_CALLS, "abs"):
            raise self.fail("the functions are min, max and abs", "只支持函数 min、max、abs")
        args = [self.build(a) for a in node.args]
        if not args or any(kind != NUMBER for kind, _, _ in args) or (node.func.id == "abs" and len(args) != 1):
            raise self.fail(f"{node.func.id} takes numbers", f"{node.func.id} 的参数应为数字")
        scalars, vectors = [s for _, s, _ in args], [v for _, _, v in args]
        if node.func.id == "abs":
            one, one_v = scalars[0], vectors[0]
            return NUMBER, lambda env: (v if isinstance(v := one(env), Unknown) else abs(v)), \
                lambda cols, n: (np.abs((r := one_v(cols, n))[0]), r[1])
        plain, elementwise = _CALLS[node.func.id]

        def scalar(env: Mapping[str, Any]) -> Any:
            values = [s(env) for s in scalars]
            if any(isinstance(v, Unknown) for v in values):
                return _unknown(*values)
            return plain(values) if len(values) > 1 else values[0]

        def vector(cols: Mapping[str, Column], n: int) -> Column:
            results = [v(cols, n) for v in vectors]
            value = results[0][0]
            known = results[0][1]
            for other, other_known in results[1:]:
                value = elementwise(value, other)
                known = known & other_known
            return value, known

        return NUMBER, scalar, vector


def _kleene(scalars: Sequence[_Scalar], vectors: Sequence[_Vector], is_and: bool) -> tuple[str, _Scalar, _Vector]:
    """`and` (or `or`) of conditions in three-valued logic."""

    def scalar(env: Mapping[str, Any]) -> Any:
        unknown: list[Any] = []
        for s in scalars:
            value = s(env)
            if isinstance(value, Unknown):
                unknown.append(value)
            elif bool(value) is not is_and:   # a false `and` part, a true `or` part: decided
                return not is_and
        return _unknown(*unknown) if unknown else is_and

    def vector(cols: Mapping[str, Column], n: int) -> Column:
        decided = np.zeros(n, bool)    # some part known false (and) / known true (or)
        settled = np.ones(n, bool)     # every part known true (and) / known false (or)
        for v in vectors:
            value, known = v(cols, n)
            value = value.astype(bool)
            if is_and:
                decided |= known & ~value
                settled &= known & value
            else:
                decided |= known & value
                settled &= known & ~value
        return (~decided & settled if is_and else decided), decided | settled

    return BOOLEAN, scalar, vector


def _comparison(compare: Callable[[Any, Any], Any], left: _Scalar, left_v: _Vector, right: _Scalar,
                right_v: _Vector) -> tuple[_Scalar, _Vector]:
    def scalar(env: Mapping[str, Any]) -> Any:
        a, b = left(env), right(env)
        if isinstance(a, Unknown) or isinstance(b, Unknown):
            return _unknown(a, b)
        return bool(compare(a, b))

    def vector(cols: Mapping[str, Column], n: int) -> Column:
        a, a_known = left_v(cols, n)
        b, b_known = right_v(cols, n)
        known = a_known & b_known
        with np.errstate(invalid="ignore"):
            result = np.asarray(compare(a, b), dtype=bool)
        return result & known if result.shape else np.full(n, bool(result)) & known, known

    return scalar, vector


def _dtype(kind: str) -> Any:
    return {NUMBER: np.float64, BOOLEAN: bool}.get(kind, object)


def _symbol(op: ast.cmpop) -> str:
    return {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}.get(type(op), "?")
