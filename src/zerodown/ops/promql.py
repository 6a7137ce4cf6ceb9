"""A restricted PromQL: the expression language of zerodown's alert rules.

Rules are written in Prometheus' own syntax so they can be copied to (and tested with) a real
Prometheus; zerodown evaluates them itself over the in-memory ``SeriesStore`` so a single-node
install needs no Prometheus server. Only the part of PromQL useful for alerting on zerodown's
own metrics is implemented, with Prometheus 2.x semantics (checked against ``promtool`` by the
integration tests); anything else is refused when the rule is loaded, with the position of the
problem in the expression.

Grammar (lowest precedence first; binary operators are left-associative except ``^``)::

    expr        = or_expr
    or_expr     = and_expr   { "or" [matching] and_expr }
    and_expr    = cmp_expr   { ("and" | "unless") [matching] cmp_expr }
    cmp_expr    = add_expr   { CMP ["bool"] [matching] add_expr }
    add_expr    = mul_expr   { ("+" | "-") [matching] mul_expr }
    mul_expr    = unary      { ("*" | "/" | "%") [matching] unary }
    unary       = ("-" | "+") unary | pow_expr
    pow_expr    = postfix    [ "^" [matching] unary ]
    postfix     = primary    [ "[" DURATION "]" ] [ "offset" DURATION ]
    primary     = NUMBER | DURATION | "(" expr ")" | call | aggregation | selector
    selector    = METRIC_NAME [ "{" [matchers] "}" ] | "{" matchers "}"
    matchers    = matcher { "," matcher } [","]
    matcher     = LABEL ("=" | "!=" | "=~" | "!~") STRING
    call        = FUNCTION "(" [ expr { "," expr } ] ")"
    aggregation = AGG [grouping] "(" expr ")" [grouping]
    grouping    = ("by" | "without") "(" [ LABEL { "," LABEL } ] ")"
    matching    = ("on" | "ignoring") "(" [ LABEL { "," LABEL } ] ")"

    CMP       = == | != | > | < | >= | <=
    AGG       = sum | avg | min | max | count
    FUNCTION  = rate | increase | delta | avg_over_time | min_over_time | max_over_time
              | sum_over_time | count_over_time | last_over_time | predict_linear | abs
              | clamp_min | clamp_max | histogram_quantile | absent | vector | scalar | time
    NUMBER    = 1, 2.5, 1e3, 0x1f, Inf, NaN
    DURATION  = one or more of <int><unit>, units in order y w d h m s ms (5m, 1h30m);
                as a value (outside "[...]" and "offset") it means that many seconds
    STRING    = '...' or "..." (with backslash escapes) or `...` (raw)

Semantics follow Prometheus 2.x: an instant selector takes each series' latest sample in the
5 minutes up to the evaluation time (a staleness marker ends a series at once); a range
selector takes the samples in ``[t - range, t]``; ``rate``/``increase``/``delta`` extrapolate
to the window's edges exactly as Prometheus does; arithmetic drops the metric name; comparison
filters (or returns 0/1 with ``bool``); vector/vector operations match one-to-one on all
labels but the name, or on the ``on(...)``/``ignoring(...)`` labels. Not supported:
``group_left``/``group_right``, subqueries, ``@``, string results, native histograms, and
functions not listed above.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from zerodown.core.errors import InputError
from zerodown.ops.series import METRIC_NAME, LabelSet, SeriesStore, is_stale_marker

__all__ = [
    "LOOKBACK_SECONDS",
    "EvaluationError",
    "Expr",
    "ExpressionError",
    "LabelMatcher",
    "Sample",
    "Value",
    "evaluate",
    "evaluate_vector",
    "format_duration",
    "parse",
    "parse_duration",
]

LOOKBACK_SECONDS: Final = 300.0
"""How far back an instant selector looks for a series' latest sample (Prometheus' default)."""

ValueType = Literal["scalar", "vector", "matrix"]


class ExpressionError(InputError):
    """An expression is not valid; ``position`` is the 0-based offset of the problem."""

    code = "invalid_expression"

    def __init__(self, message: str, *, expression: str, position: int) -> None:
        self.expression = expression
        self.position = position
        self.reason = message
        super().__init__(f"{_where(expression, position)}: {message}")


class EvaluationError(InputError):
    """An expression is valid but cannot be evaluated over these series (ambiguous matches)."""

    code = "evaluation_failed"


def _where(expression: str, position: int) -> str:
    before = expression[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    if "\n" in expression:
        return f"line {line}, column {column} of the expression"
    return f"column {column} of the expression"


# --- durations ---------------------------------------------------------------------------------

_DURATION_UNITS: Final = (
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
_DURATION_RE: Final = re.compile(
    "".join(rf"(?:(\d+){unit})?" for unit, _ in _DURATION_UNITS), re.ASCII
)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (``5m``, ``1h30m``, ``0s``); ``ValueError`` if not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    found = _DURATION_RE.fullmatch(text)
    if not text or found is None:
        raise ValueError(f"{text!r} is not a duration (expected e.g. 30s, 5m, 1h30m, 2d)")
    return sum(
        int(number) * seconds
        for number, (_, seconds) in zip(found.groups(), _DURATION_UNITS, strict=True)
        if number is not None
    )


def format_duration(seconds: float) -> str:
    """Seconds in Prometheus notation: ``90`` -> ``1m30s``, ``0`` -> ``0s``."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    text = ""
    for unit, size in _DURATION_UNITS:
        size_ms = round(size * 1000)
        count, millis = divmod(millis, size_ms)
        if count:
            text += f"{count}{unit}"
    return text


# --- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # number, duration, string, ident, op, eof
    text: str
    pos: int


_TOKEN_RE: Final = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|y|w|d|h|m|s))+)(?![A-Za-z0-9_.])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],])
    """,
    re.VERBOSE,
)

_COMPARISONS: Final = frozenset({"==", "!=", ">", "<", ">=", "<="})
_ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%", "^"})
_SET_OPS: Final = frozenset({"and", "or", "unless"})
_AGGREGATIONS: Final = frozenset({"sum", "avg", "min", "max", "count"})
_KEYWORDS: Final = frozenset(
    {"by", "without", "on", "ignoring", "bool", "offset", "group_left", "group_right"} | _SET_OPS
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN_RE.match(text, pos)
        if found is None:
            char = text[pos]
            if char in "\"'`":
                raise ExpressionError("unterminated string", expression=text, position=pos)
            raise ExpressionError(f"unexpected character {char!r}", expression=text, position=pos)
        kind = found.lastgroup or "space"
        if kind != "space":
            tokens.append(_Token(kind, found.group(), pos))
        pos = found.end()
    tokens.append(_Token("eof", "", len(text)))
    return tokens


def _unquote(token: _Token, expression: str) -> str:
    body = token.text[1:-1]
    if token.text[0] == "`":
        return body
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a"}
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 1
            nxt = body[index]
            if nxt in escapes:
                out.append(escapes[nxt])
            elif nxt in ".-+*?()[]{}|^$dDwWsSbB":  # regex escapes kept for the regex engine
                out.append("\\" + nxt)
            else:
                raise ExpressionError(
                    f"unknown escape sequence \\{nxt}",
                    expression=expression,
                    position=token.pos + index,
                )
        else:
            out.append(char)
        index += 1
    return "".join(out)


# --- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMatcher:
    """``name op "value"``; regular expressions are anchored at both ends, as in Prometheus."""

    name: str
    op: str  # =, !=, =~, !~
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, name: str, op: str, value: str) -> LabelMatcher:
        """A matcher; ``re.error`` for an invalid regular expression."""
        regex = re.compile(f"(?:{value})", re.DOTALL) if op in ("=~", "!~") else None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass(frozen=True)
class NumberLiteral:
    value: float
    pos: int
    type: ValueType = "scalar"


@dataclass(frozen=True)
class VectorSelector:
    name: str | None
    matchers: tuple[LabelMatcher, ...]
    offset: float
    pos: int
    type: ValueType = "vector"


@dataclass(frozen=True)
class MatrixSelector:
    selector: VectorSelector
    range: float
    pos: int
    type: ValueType = "matrix"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    pos: int
    type: ValueType = "vector"


@dataclass(frozen=True)
class Aggregation:
    op: str
    expr: Expr
    grouping: tuple[str, ...]
    without: bool
    pos: int
    type: ValueType = "vector"


@dataclass(frozen=True)
class VectorMatching:
    on: bool
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool
    matching: VectorMatching | None
    pos: int
    type: ValueType


@dataclass(frozen=True)
class Unary:
    op: str
    expr: Expr
    pos: int
    type: ValueType


Expr = NumberLiteral | VectorSelector | MatrixSelector | Call | Aggregation | Binary | Unary
"""A parsed expression; ``parse`` makes one, ``evaluate`` runs it."""


_KIND: Final[dict[ValueType, str]] = {
    "scalar": "a number",
    "vector": "an instant vector",
    "matrix": "a range vector (such as x[5m])",
}


@dataclass(frozen=True)
class _Function:
    args: tuple[ValueType, ...]
    returns: ValueType
    optional: int = 0  # how many trailing arguments may be left out


_FUNCTIONS: Final[dict[str, _Function]] = {
    "rate": _Function(("matrix",), "vector"),
    "increase": _Function(("matrix",), "vector"),
    "delta": _Function(("matrix",), "vector"),
    "avg_over_time": _Function(("matrix",), "vector"),
    "min_over_time": _Function(("matrix",), "vector"),
    "max_over_time": _Function(("matrix",), "vector"),
    "sum_over_time": _Function(("matrix",), "vector"),
    "count_over_time": _Function(("matrix",), "vector"),
    "last_over_time": _Function(("matrix",), "vector"),
    "predict_linear": _Function(("matrix", "scalar"), "vector"),
    "abs": _Function(("vector",), "vector"),
    "clamp_min": _Function(("vector", "scalar"), "vector"),
    "clamp_max": _Function(("vector", "scalar"), "vector"),
    "histogram_quantile": _Function(("scalar", "vector"), "vector"),
    "absent": _Function(("vector",), "vector"),
    "vector": _Function(("scalar",), "vector"),
    "scalar": _Function(("vector",), "scalar"),
    "time": _Function((), "scalar"),
}


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # helpers

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def error(self, message: str, position: int | None = None) -> ExpressionError:
        where = self.current.pos if position is None else position
        return ExpressionError(message, expression=self.text, position=where)

    def at_op(self, *ops: str) -> bool:
        return self.current.kind == "op" and self.current.text in ops

    def at_word(self, *words: str) -> bool:
        return self.current.kind == "ident" and self.current.text in words

    def expect_op(self, op: str, context: str) -> _Token:
        if not self.at_op(op):
            raise self.error(f"expected {op!r} {context}, found {self.describe()}")
        return self.advance()

    def describe(self) -> str:
        token = self.current
        return "the end of the expression" if token.kind == "eof" else repr(token.text)

    # grammar

    def parse(self) -> Expr:
        if self.current.kind == "eof":
            raise self.error("the expression is empty")
        expr = self.or_expr()
        if self.current.kind != "eof":
            raise self.error(f"unexpected {self.describe()} after a complete expression")
        return expr

    def or_expr(self) -> Expr:
        lhs = self.and_expr()
        while self.at_word("or"):
            lhs = self.binary(lhs, self.advance(), self.and_expr)
        return lhs

    def and_expr(self) -> Expr:
        lhs = self.cmp_expr()
        while self.at_word("and", "unless"):
            lhs = self.binary(lhs, self.advance(), self.cmp_expr)
        return lhs

    def cmp_expr(self) -> Expr:
        lhs = self.add_expr()
        while self.current.kind == "op" and self.current.text in _COMPARISONS:
            lhs = self.binary(lhs, self.advance(), self.add_expr)
        return lhs

    def add_expr(self) -> Expr:
        lhs = self.mul_expr()
        while self.at_op("+", "-"):
            lhs = self.binary(lhs, self.advance(), self.mul_expr)
        return lhs

    def mul_expr(self) -> Expr:
        lhs = self.unary()
        while self.at_op("*", "/", "%"):
            lhs = self.binary(lhs, self.advance(), self.unary)
        return lhs

    def unary(self) -> Expr:
        if self.at_op("-", "+"):
            token = self.advance()
            operand = self.unary()
            if operand.type == "matrix":
                raise self.error("unary operators apply to numbers and instant vectors", token.pos)
            if token.text == "+":
                return operand
            if isinstance(operand, NumberLiteral):
                return NumberLiteral(-operand.value, token.pos)
            return Unary("-", operand, token.pos, operand.type)
        return self.pow_expr()

    def pow_expr(self) -> Expr:
        lhs = self.postfix()
        if self.at_op("^"):
            return self.binary(lhs, self.advance(), self.unary)
        return lhs

    def binary(self, lhs: Expr, op_token: _Token, operand: Callable[[], Expr]) -> Binary:
        op = op_token.text
        return_bool = False
        if self.at_word("bool"):
            if op not in _COMPARISONS:
                raise self.error("'bool' is only allowed after a comparison operator")
            self.advance()
            return_bool = True
        matching: VectorMatching | None = None
        if self.at_word("on", "ignoring"):
            on = self.advance().text == "on"
            matching = VectorMatching(on, self.label_list("after on/ignoring"))
            if self.at_word("group_left", "group_right"):
                raise self.error(
                    f"{self.current.text} (many-to-one matching) is not supported; "
                    "only one-to-one matching is"
                )
        rhs = operand()
        for side in (lhs, rhs):
            if side.type == "matrix":
                raise self.error(
                    f"operator {op!r} needs numbers or instant vectors, not a range vector "
                    "(apply a function such as rate() to it)",
                    op_token.pos,
                )
        both_scalar = lhs.type == "scalar" and rhs.type == "scalar"
        if op in _SET_OPS and (lhs.type == "scalar" or rhs.type == "scalar"):
            raise self.error(
                f"set operator {op!r} needs instant vectors on both sides", op_token.pos
            )
        if op in _COMPARISONS and both_scalar and not return_bool:
            raise self.error(
                "a comparison between two numbers needs the 'bool' modifier", op_token.pos
            )
        if matching is not None and (lhs.type == "scalar" or rhs.type == "scalar"):
            raise self.error("on/ignoring needs instant vectors on both sides", op_token.pos)
        result: ValueType = "scalar" if both_scalar else "vector"
        return Binary(op, lhs, rhs, return_bool, matching, op_token.pos, result)

    def postfix(self) -> Expr:
        parenthesised = self.at_op("(")
        expr = self.primary()
        if self.at_op("["):
            bracket = self.advance()
            if parenthesised or not isinstance(expr, VectorSelector) or expr.offset:
                raise self.error(
                    "a range [..] can only follow a metric selector (subqueries are not supported)",
                    bracket.pos,
                )
            seconds = self.duration("inside [..]")
            if seconds <= 0:
                raise self.error("a range must be longer than 0s", bracket.pos + 1)
            self.expect_op("]", "to close the range")
            expr = MatrixSelector(expr, seconds, expr.pos)
        if self.at_word("offset"):
            offset_token = self.advance()
            seconds = self.duration("after offset")
            if isinstance(expr, VectorSelector):
                expr = VectorSelector(expr.name, expr.matchers, seconds, expr.pos)
            elif isinstance(expr, MatrixSelector):
                inner = expr.selector
                expr = MatrixSelector(
                    VectorSelector(inner.name, inner.matchers, seconds, inner.pos),
                    expr.range,
                    expr.pos,
                )
            else:
                raise self.error("offset can only follow a metric selector", offset_token.pos)
        return expr

    def duration(self, context: str) -> float:
        token = self.current
        if token.kind == "duration":
            self.advance()
            return parse_duration(token.text)
        if token.kind == "number" and token.text.isdigit() and token.text == "0":
            self.advance()
            return 0.0
        raise self.error(f"expected a duration such as 5m {context}, found {self.describe()}")

    def primary(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            text = token.text
            value = float(int(text, 16)) if text[:2].lower() == "0x" else float(text)
            return NumberLiteral(value, token.pos)
        if token.kind == "duration":
            self.advance()
            return NumberLiteral(parse_duration(token.text), token.pos)
        if self.at_op("("):
            self.advance()
            inner = self.or_expr()
            self.expect_op(")", "to close '('")
            return inner
        if self.at_op("{"):
            return self.selector(None, token.pos)
        if token.kind == "ident":
            word = token.text
            following = self.peek()
            is_call = following.kind == "op" and following.text == "("
            if word.lower() in ("inf", "nan") and not is_call and not self.peek_is("{"):
                self.advance()
                return NumberLiteral(float(word.lower()), token.pos)
            if word in _AGGREGATIONS and (is_call or following.text in ("by", "without")):
                return self.aggregation()
            if is_call:
                return self.call()
            if word in _KEYWORDS:
                raise self.error(f"unexpected keyword {word!r}")
            self.advance()
            return self.selector(word, token.pos)
        if token.kind == "string":
            raise self.error("a string is not a valid expression here")
        raise self.error(f"expected an expression, found {self.describe()}")

    def peek_is(self, op: str) -> bool:
        following = self.peek()
        return following.kind == "op" and following.text == op

    def selector(self, name: str | None, pos: int) -> VectorSelector:
        matchers: list[LabelMatcher] = []
        if self.at_op("{"):
            self.advance()
            while not self.at_op("}"):
                matchers.append(self.matcher())
                if self.at_op(","):
                    self.advance()
                elif not self.at_op("}"):
                    raise self.error(
                        f"expected ',' or '}}' in label matchers, found {self.describe()}"
                    )
            self.advance()
        if name is not None:
            if any(m.name == METRIC_NAME for m in matchers):
                raise self.error("the metric name is given twice", pos)
            matchers.insert(0, LabelMatcher.create(METRIC_NAME, "=", name))
        if not any(not m.matches({}) for m in matchers):
            raise self.error(
                "a selector needs a metric name or at least one matcher that does not match "
                "the empty string",
                pos,
            )
        return VectorSelector(name, tuple(matchers), 0.0, pos)

    def matcher(self) -> LabelMatcher:
        name_token = self.current
        if name_token.kind != "ident":
            raise self.error(f"expected a label name, found {self.describe()}")
        self.advance()
        op_token = self.current
        if not self.at_op("=", "!=", "=~", "!~"):
            raise self.error(
                f"expected one of = != =~ !~ after a label name, found {self.describe()}"
            )
        self.advance()
        value_token = self.current
        if value_token.kind != "string":
            raise self.error(f"expected a quoted label value, found {self.describe()}")
        self.advance()
        value = _unquote(value_token, self.text)
        try:
            return LabelMatcher.create(name_token.text, op_token.text, value)
        except re.error as exc:
            raise self.error(f"invalid regular expression: {exc}", value_token.pos) from exc

    def label_list(self, context: str) -> tuple[str, ...]:
        self.expect_op("(", context)
        names: list[str] = []
        while not self.at_op(")"):
            token = self.current
            if token.kind != "ident":
                raise self.error(f"expected a label name, found {self.describe()}")
            names.append(self.advance().text)
            if self.at_op(","):
                self.advance()
            elif not self.at_op(")"):
                raise self.error(f"expected ',' or ')' in a label list, found {self.describe()}")
        self.advance()
        return tuple(names)

    def aggregation(self) -> Aggregation:
        op_token = self.advance()
        grouping: tuple[str, ...] = ()
        without = False
        seen_grouping = False
        if self.at_word("by", "without"):
            without = self.advance().text == "without"
            grouping = self.label_list(f"after {'without' if without else 'by'}")
            seen_grouping = True
        self.expect_op("(", f"after {op_token.text}")
        inner = self.or_expr()
        self.expect_op(")", f"to close {op_token.text}(")
        if self.at_word("by", "without"):
            if seen_grouping:
                raise self.error("by/without is given twice")
            without = self.advance().text == "without"
            grouping = self.label_list(f"after {'without' if without else 'by'}")
        if inner.type != "vector":
            raise self.error(
                f"{op_token.text}() aggregates an instant vector, not a {inner.type}",
                op_token.pos,
            )
        return Aggregation(op_token.text, inner, grouping, without, op_token.pos)

    def call(self) -> Call:
        name_token = self.advance()
        name = name_token.text
        spec = _FUNCTIONS.get(name)
        if spec is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.error(
                f"unknown or unsupported function {name}() (known: {known})", name_token.pos
            )
        self.advance()  # (
        args: list[Expr] = []
        while not self.at_op(")"):
            args.append(self.or_expr())
            if self.at_op(","):
                self.advance()
            elif not self.at_op(")"):
                raise self.error(f"expected ',' or ')' in {name}(), found {self.describe()}")
        self.advance()
        if not len(spec.args) - spec.optional <= len(args) <= len(spec.args):
            raise self.error(
                f"{name}() takes {len(spec.args)} argument(s), got {len(args)}", name_token.pos
            )
        for arg, wanted in zip(args, spec.args, strict=False):
            if arg.type != wanted:
                raise ExpressionError(
                    f"{name}() expects {_KIND[wanted]} here, got {_KIND[arg.type]}",
                    expression=self.text,
                    position=arg.pos,
                )
        return Call(name, tuple(args), name_token.pos, spec.returns)


def parse(text: str) -> Expr:
    """Parse ``text``; ``ExpressionError`` naming the position of the first problem."""
    return _Parser(text).parse()


# --- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: LabelSet
    value: float

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


Value = float | list[Sample]
"""What an expression evaluates to: a number or an instant vector."""

_Matrix = list[tuple[LabelSet, list[tuple[int, float]]]]


def evaluate(
    expr: Expr | str, store: SeriesStore, at: float, *, lookback: float = LOOKBACK_SECONDS
) -> Value:
    """Evaluate ``expr`` at time ``at`` (seconds); a float or a list of ``Sample``."""
    node = parse(expr) if isinstance(expr, str) else expr
    if node.type == "matrix":
        raise EvaluationError("a range vector cannot be the result of an expression")
    evaluator = _Evaluator(store, round(at * 1000), round(lookback * 1000))
    result = evaluator.eval(node)
    assert not _is_matrix(result)
    return result  # type: ignore[return-value]


def evaluate_vector(
    expr: Expr | str, store: SeriesStore, at: float, *, lookback: float = LOOKBACK_SECONDS
) -> list[Sample]:
    """Like ``evaluate``; a number becomes a one-element vector without labels (as in rules)."""
    result = evaluate(expr, store, at, lookback=lookback)
    if isinstance(result, float):
        return [Sample((), result)]
    return result


def _is_matrix(value: object) -> bool:
    return isinstance(value, _MatrixValue)


@dataclass(frozen=True)
class _MatrixValue:
    series: _Matrix
    range_ms: int
    end_ms: int


def _drop_name(labels: LabelSet) -> LabelSet:
    return tuple(pair for pair in labels if pair[0] != METRIC_NAME)


def _check_unique(samples: list[Sample]) -> list[Sample]:
    seen: set[LabelSet] = set()
    for sample in samples:
        if sample.labels in seen:
            raise EvaluationError(
                "vector cannot contain metrics with the same labelset "
                f"({_format_labels(sample.labels)})"
            )
        seen.add(sample.labels)
    return samples


def _format_labels(labels: LabelSet) -> str:
    return "{" + ", ".join(f"{k}={_quote(v)}" for k, v in labels) + "}"


class _Evaluator:
    def __init__(self, store: SeriesStore, at_ms: int, lookback_ms: int) -> None:
        self.store = store
        self.at_ms = at_ms
        self.lookback_ms = lookback_ms

    def eval(self, node: Expr) -> Value | _MatrixValue:
        if isinstance(node, NumberLiteral):
            return node.value
        if isinstance(node, VectorSelector):
            return self.instant(node)
        if isinstance(node, MatrixSelector):
            return self.matrix(node)
        if isinstance(node, Unary):
            operand = self.eval(node.expr)
            if isinstance(operand, float):
                return -operand
            assert isinstance(operand, list)
            return _check_unique([Sample(_drop_name(s.labels), -s.value) for s in operand])
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Aggregation):
            return self.aggregate(node)
        return self.call(node)

    # selectors

    def instant(self, node: VectorSelector) -> list[Sample]:
        end_ms = self.at_ms - round(node.offset * 1000)
        start_ms = end_ms - self.lookback_ms
        out: list[Sample] = []
        for labels, samples in self.store.select(
            node.matchers, start=start_ms / 1000, end=end_ms / 1000
        ):
            _, value = samples[-1]
            if not is_stale_marker(value):
                out.append(Sample(labels, value))
        return out

    def matrix(self, node: MatrixSelector) -> _MatrixValue:
        end_ms = self.at_ms - round(node.selector.offset * 1000)
        range_ms = round(node.range * 1000)
        series: _Matrix = []
        for labels, samples in self.store.select(
            node.selector.matchers, start=(end_ms - range_ms) / 1000, end=end_ms / 1000
        ):
            points = [(round(t * 1000), v) for t, v in samples if not is_stale_marker(v)]
            if points:
                series.append((labels, points))
        return _MatrixValue(series, range_ms, end_ms)

    # operators

    def binary(self, node: Binary) -> Value:
        lhs = self.eval(node.lhs)
        rhs = self.eval(node.rhs)
        assert not isinstance(lhs, _MatrixValue) and not isinstance(rhs, _MatrixValue)
        op = node.op
        if isinstance(lhs, float) and isinstance(rhs, float):
            value, keep = _scalar_op(op, lhs, rhs)
            return (1.0 if keep else 0.0) if op in _COMPARISONS else value
        if isinstance(lhs, list) and isinstance(rhs, list):
            if op in _SET_OPS:
                return _set_op(op, lhs, rhs, node.matching)
            return _vector_op(op, lhs, rhs, node.matching, node.return_bool)
        return _vector_scalar_op(op, lhs, rhs, node.return_bool)

    def aggregate(self, node: Aggregation) -> list[Sample]:
        operand = self.eval(node.expr)
        assert isinstance(operand, list)
        groups: dict[LabelSet, list[float]] = {}
        for sample in operand:
            if node.without:
                dropped = {*node.grouping, METRIC_NAME}
                key = tuple(pair for pair in sample.labels if pair[0] not in dropped)
            else:
                key = tuple(pair for pair in sample.labels if pair[0] in node.grouping)
            groups.setdefault(key, []).append(sample.value)
        return [Sample(key, _aggregate(node.op, values)) for key, values in sorted(groups.items())]

    # functions

    def call(self, node: Call) -> Value:
        name = node.func
        if name == "time":
            return self.at_ms / 1000
        args = [self.eval(arg) for arg in node.args]
        if name in ("rate", "increase", "delta"):
            matrix = args[0]
            assert isinstance(matrix, _MatrixValue)
            return _check_unique(
                [
                    Sample(_drop_name(labels), value)
                    for labels, points in matrix.series
                    if (value := _extrapolated_rate(points, matrix, name)) is not None
                ]
            )
        if name.endswith("_over_time"):
            matrix = args[0]
            assert isinstance(matrix, _MatrixValue)
            reduce = _OVER_TIME[name]
            keep_name = name == "last_over_time"
            return _check_unique(
                [
                    Sample(labels if keep_name else _drop_name(labels), reduce(points))
                    for labels, points in matrix.series
                ]
            )
        if name == "predict_linear":
            matrix, horizon = args
            assert isinstance(matrix, _MatrixValue) and isinstance(horizon, float)
            out: list[Sample] = []
            for labels, points in matrix.series:
                if len(points) < 2:
                    continue
                slope, intercept = _linear_regression(points, self.at_ms)
                out.append(Sample(_drop_name(labels), intercept + slope * horizon))
            return _check_unique(out)
        if name in ("abs", "clamp_min", "clamp_max"):
            vector = args[0]
            assert isinstance(vector, list)
            if name == "abs":
                return _check_unique([Sample(_drop_name(s.labels), abs(s.value)) for s in vector])
            bound = args[1]
            assert isinstance(bound, float)
            pick = _nan_max if name == "clamp_min" else _nan_min
            return _check_unique(
                [Sample(_drop_name(s.labels), pick(s.value, bound)) for s in vector]
            )
        if name == "histogram_quantile":
            q, vector = args
            assert isinstance(q, float) and isinstance(vector, list)
            return _histogram_quantile(q, vector)
        if name == "absent":
            vector = args[0]
            assert isinstance(vector, list)
            if vector:
                return []
            return [Sample(_absent_labels(node.args[0]), 1.0)]
        if name == "vector":
            scalar = args[0]
            assert isinstance(scalar, float)
            return [Sample((), scalar)]
        vector = args[0]  # scalar()
        assert isinstance(vector, list)
        return vector[0].value if len(vector) == 1 else math.nan


def _absent_labels(arg: Expr) -> LabelSet:
    if not isinstance(arg, VectorSelector):
        return ()
    equal = [m for m in arg.matchers if m.op == "=" and m.name != METRIC_NAME]
    names = [m.name for m in equal]
    return tuple(sorted((m.name, m.value) for m in equal if names.count(m.name) == 1))


def _nan_max(a: float, b: float) -> float:
    return a if math.isnan(a) else max(a, b)


def _nan_min(a: float, b: float) -> float:
    return a if math.isnan(a) else min(a, b)


def _divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _power(a: float, b: float) -> float:
    try:
        result = math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan
    return result


def _modulo(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return math.nan


def _scalar_op(op: str, a: float, b: float) -> tuple[float, bool]:
    """The value and, for comparisons, whether it holds (Prometheus' vectorElemBinop)."""
    if op == "+":
        return a + b, True
    if op == "-":
        return a - b, True
    if op == "*":
        return a * b, True
    if op == "/":
        return _divide(a, b), True
    if op == "%":
        return _modulo(a, b), True
    if op == "^":
        return _power(a, b), True
    if op == "==":
        return a, a == b
    if op == "!=":
        return a, a != b
    if op == ">":
        return a, a > b
    if op == "<":
        return a, a < b
    if op == ">=":
        return a, a >= b
    return a, a <= b


def _vector_scalar_op(op: str, lhs: Value, rhs: Value, return_bool: bool) -> list[Sample]:
    scalar_on_left = isinstance(lhs, float)
    vector = rhs if scalar_on_left else lhs
    scalar = lhs if scalar_on_left else rhs
    assert isinstance(vector, list) and isinstance(scalar, float)
    comparison = op in _COMPARISONS
    out: list[Sample] = []
    for sample in vector:
        a, b = (scalar, sample.value) if scalar_on_left else (sample.value, scalar)
        value, keep = _scalar_op(op, a, b)
        if comparison:
            value = sample.value  # a comparison keeps the vector's value, on either side
        labels = sample.labels
        if return_bool:
            value, labels = (1.0 if keep else 0.0), _drop_name(labels)
        elif not keep:
            continue
        elif not comparison:
            labels = _drop_name(labels)
        out.append(Sample(labels, value))
    return _check_unique(out)


def _signature(labels: LabelSet, matching: VectorMatching | None) -> LabelSet:
    if matching is not None and matching.on:
        return tuple(pair for pair in labels if pair[0] in matching.labels)
    ignored = {METRIC_NAME, *(matching.labels if matching else ())}
    return tuple(pair for pair in labels if pair[0] not in ignored)


def _vector_op(
    op: str,
    lhs: list[Sample],
    rhs: list[Sample],
    matching: VectorMatching | None,
    return_bool: bool,
) -> list[Sample]:
    right: dict[LabelSet, Sample] = {}
    for sample in rhs:
        sig = _signature(sample.labels, matching)
        if sig in right:
            raise EvaluationError(
                f"found duplicate series for the match group {_format_labels(sig)} on the right "
                "hand-side of the operation; many-to-many matching is not allowed: matching "
                "labels must be unique on one side"
            )
        right[sig] = sample
    matched: set[LabelSet] = set()
    comparison = op in _COMPARISONS
    out: list[Sample] = []
    for sample in lhs:
        sig = _signature(sample.labels, matching)
        other = right.get(sig)
        if other is None:
            continue
        value, keep = _scalar_op(op, sample.value, other.value)
        if return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        labels = sample.labels
        if not comparison or return_bool:
            labels = _drop_name(labels)
        if matching is not None:
            if matching.on:
                labels = tuple(pair for pair in labels if pair[0] in matching.labels)
            else:
                labels = tuple(pair for pair in labels if pair[0] not in matching.labels)
        if sig in matched:
            raise EvaluationError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right are not supported)"
            )
        matched.add(sig)
        out.append(Sample(labels, value))
    return out


def _set_op(
    op: str, lhs: list[Sample], rhs: list[Sample], matching: VectorMatching | None
) -> list[Sample]:
    right = {_signature(s.labels, matching) for s in rhs}
    if op == "and":
        return [s for s in lhs if _signature(s.labels, matching) in right]
    if op == "unless":
        return [s for s in lhs if _signature(s.labels, matching) not in right]
    left = {_signature(s.labels, matching) for s in lhs}
    return lhs + [s for s in rhs if _signature(s.labels, matching) not in left]


def _aggregate(op: str, values: list[float]) -> float:
    if op == "sum":
        return sum(values)
    if op == "count":
        return float(len(values))
    if op == "avg":
        mean = 0.0
        for count, value in enumerate(values, start=1):
            mean += value / count - mean / count  # Prometheus' incremental mean
        return mean
    best = values[0]
    for value in values[1:]:
        better = value > best if op == "max" else value < best
        if better or math.isnan(best):
            best = value
    return best


def _extrapolated_rate(
    points: list[tuple[int, float]], matrix: _MatrixValue, func: str
) -> float | None:
    """Prometheus 2.x ``extrapolatedRate`` for ``rate``, ``increase`` and ``delta``."""
    if len(points) < 2:
        return None
    is_counter = func != "delta"
    range_start = matrix.end_ms - matrix.range_ms
    range_end = matrix.end_ms
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if is_counter:
        previous = 0.0
        for _, value in points:
            if value < previous:
                result += previous  # a counter reset: the counter restarted from zero
            previous = value
    to_start = (first_t - range_start) / 1000
    to_end = (range_end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average_gap = sampled / (len(points) - 1)
    if is_counter and result > 0 and first_v >= 0:
        # A counter cannot go below zero: do not extrapolate past the point it was zero.
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average_gap * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average_gap / 2
    interval += to_end if to_end < threshold else average_gap / 2
    factor = interval / sampled
    if func == "rate":
        factor /= matrix.range_ms / 1000  # one factor, as Prometheus does (same rounding)
    return result * factor


def _avg_over_time(points: list[tuple[int, float]]) -> float:
    mean = 0.0
    for count, (_, value) in enumerate(points, start=1):
        mean += value / count - mean / count
    return mean


def _extreme(points: list[tuple[int, float]], *, largest: bool) -> float:
    best = points[0][1]
    for _, value in points[1:]:
        if (value > best if largest else value < best) or math.isnan(best):
            best = value
    return best


_OVER_TIME: Final[dict[str, Callable[[list[tuple[int, float]]], float]]] = {
    "avg_over_time": _avg_over_time,
    "max_over_time": lambda points: _extreme(points, largest=True),
    "min_over_time": lambda points: _extreme(points, largest=False),
    "sum_over_time": lambda points: sum(v for _, v in points),
    "count_over_time": lambda points: float(len(points)),
    "last_over_time": lambda points: points[-1][1],
}


def _linear_regression(points: list[tuple[int, float]], intercept_ms: int) -> tuple[float, float]:
    """Least-squares slope and the value at ``intercept_ms`` (Prometheus' linearRegression)."""
    first = points[0][1]
    if all(value == first for _, value in points):
        if math.isinf(first):
            return math.nan, math.nan
        return 0.0, first
    n = float(len(points))
    sum_x = sum_y = sum_xy = sum_x2 = 0.0
    for t, value in points:
        x = (t - intercept_ms) / 1000
        sum_x += x
        sum_y += value
        sum_xy += x * value
        sum_x2 += x * x
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = _divide(cov_xy, var_x)
    return slope, sum_y / n - slope * sum_x / n


def _histogram_quantile(q: float, vector: list[Sample]) -> list[Sample]:
    buckets: dict[LabelSet, list[tuple[float, float]]] = {}
    for sample in vector:
        labels = dict(sample.labels)
        upper_text = labels.pop("le", None)
        if upper_text is None:
            continue
        try:
            upper = float(upper_text)
        except ValueError:
            continue
        labels.pop(METRIC_NAME, None)
        key = tuple(sorted(labels.items()))
        buckets.setdefault(key, []).append((upper, sample.value))
    return [Sample(key, _bucket_quantile(q, found)) for key, found in sorted(buckets.items())]


def _bucket_quantile(q: float, found: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile``: linear interpolation inside the bucket holding rank q."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    found.sort(key=lambda bucket: bucket[0])
    if not math.isinf(found[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for upper, count in found:  # buckets with the same bound are added up
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    for index in range(1, len(merged)):  # counts cannot go down (a scrape race)
        merged[index][1] = max(merged[index][1], merged[index - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    index = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if index == len(merged) - 1:
        return merged[-2][0]
    if index == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[index][0], merged[index][1]
    if index > 0:
        start = merged[index - 1][0]
        count -= merged[index - 1][1]
        rank -= merged[index - 1][1]
    return start + (end - start) * (rank / count)


def selectors(expr: Expr) -> Iterable[VectorSelector]:
    """Every metric selector in ``expr`` (to say which metrics a rule reads)."""
    if isinstance(expr, VectorSelector):
        yield expr
    elif isinstance(expr, MatrixSelector):
        yield expr.selector
    elif isinstance(expr, Unary):
        yield from selectors(expr.expr)
    elif isinstance(expr, Binary):
        yield from selectors(expr.lhs)
        yield from selectors(expr.rhs)
    elif isinstance(expr, Aggregation):
        yield from selectors(expr.expr)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from selectors(arg)


def metric_names(expr: Expr) -> Sequence[str]:
    """The metric names ``expr`` selects by name, in order of appearance, without repeats."""
    names: list[str] = []
    for selector in selectors(expr):
        if selector.name and selector.name not in names:
            names.append(selector.name)
    return names
