"""OData query options the Batch list operations take: $filter, $select, maxresults and paging.

$filter grammar supported (case-insensitive keywords):
    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | startswith(prop, 'text') | prop op literal
    op      := eq | ne | gt | ge | lt | le
    literal := 'string' (a doubled '' is a quote) | integer | true | false | null | datetime'...'
Filters are evaluated on the wire JSON of each item. Properties outside the list's
allowed set give 400 InvalidQueryParameterValue, as an unsupported filter does on the service.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..service.errors import BatchServiceError, service_error

# A predicate over one item of a list, as its wire JSON (nested objects are dicts).
Predicate = Callable[[Mapping[str, object]], bool]
# What a literal of the grammar stands for: 'text' and datetime'...' are str, numbers int or float.
LiteralValue = str | int | float | bool | None
# What two operands are once compared: both of one of these types (_compare converts them).
Ordered = TypeVar("Ordered", datetime, str, bool, float)
Item = TypeVar("Item")

_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)"
    r"|datetime'(?P<dt>[^']*)'|'(?P<str>(?:[^']|'')*)'"
    r"|(?P<num>-?\d+(?:\.\d+)?)(?![\w/])"
    r"|(?P<word>[A-Za-z_$][\w/.$-]*))"
)
_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")
_END = ("", "")   # (kind, value) that peek() gives past the last token


def _holds(op: str, left: Ordered, right: Ordered) -> bool:
    """``left op right`` for one of the _OPERATORS."""
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right


def _bad_filter(text: str, reason: str) -> BatchServiceError:
    return service_error(400, "InvalidQueryParameterValue", QueryParameterName="$filter",
                         QueryParameterValue=text, Reason=reason)


def _tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, value) of each token: kind is the name of the _TOKEN group that matched."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise _bad_filter(text, f"Unexpected character at position {pos}.")
        kind = match.lastgroup or ""   # every alternative is a named group
        value = match.group(kind)
        if kind == "str":
            value = value.replace("''", "'")
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _lookup(item: Mapping[str, object], path: str) -> object:
    """The value at ``path`` (executionInfo/exitCode) in ``item``; None where a step is missing."""
    value: object = item
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_datetime(value: object) -> datetime | None:
    """Parse ISO-8601 UTC strings (up to 7 fractional digits, as the service writes them)."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?(?:Z|[+-]00:00)?", value)
    if not match:
        return None
    frac = "." + match.group(2)[:6].ljust(6, "0") if match.group(2) else ""
    try:
        return datetime.fromisoformat(match.group(1) + frac)
    except ValueError:
        return None


def _compare(op: str, actual: object, literal: LiteralValue) -> bool:
    if literal is None:
        return (actual is None) if op == "eq" else (actual is not None) if op == "ne" else False
    if actual is None:
        return op == "ne"
    if isinstance(literal, str):
        left_dt, right_dt = _as_datetime(actual), _as_datetime(literal)
        if left_dt and right_dt:
            return _holds(op, left_dt, right_dt)
        # Enum values and ids are case-insensitive on the service; compare strings that way.
        return _holds(op, str(actual).lower(), literal.lower())
    if isinstance(literal, bool) or isinstance(actual, bool):
        return _holds(op, bool(actual), bool(literal)) if op in ("eq", "ne") else False
    if not isinstance(actual, (int, float, str)):   # an object or a list: no number to compare
        return False
    try:
        return _holds(op, float(actual), float(literal))
    except ValueError:   # a string that is no number
        return False


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) or right(item)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) and right(item)


def _negation(inner: Predicate) -> Predicate:
    return lambda item: not inner(item)


def _starts_with(path: str, prefix: str) -> Predicate:
    def predicate(item: Mapping[str, object]) -> bool:
        value = _lookup(item, path)
        return isinstance(value, str) and value.lower().startswith(prefix.lower())
    return predicate


def _comparison(op: str, path: str, literal: LiteralValue) -> Predicate:
    return lambda item: _compare(op, _lookup(item, path), literal)


class _Parser:
    """Recursive descent over the tokens of one $filter; expr() gives its predicate."""

    def __init__(self, text: str, allowed: tuple[str, ...]) -> None:
        self.text = text
        self.allowed = {p.lower(): p for p in allowed}   # lowercased name -> the name as the wire JSON has it
        self.tokens = _tokenize(text)
        self.i = 0   # index of the next token

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else _END

    def take(self, kind: str | None = None, word: str | None = None) -> str:
        tok_kind, tok_value = self.peek()
        if not tok_kind or (kind and tok_kind != kind) or (word and tok_value.lower() != word):
            raise _bad_filter(self.text, f"Expected {word or kind} at token {self.i + 1}.")
        self.i += 1
        return tok_value

    def is_word(self, *words: str) -> bool:
        kind, value = self.peek()
        return kind == "word" and value.lower() in words

    def prop(self) -> str:
        name = self.take("word")
        real = self.allowed.get(name.lower())
        if real is None:
            raise _bad_filter(self.text, f"Filtering on property '{name}' is not supported for this list.")
        return real

    def literal(self) -> LiteralValue:
        kind, value = self.peek()
        self.i += 1
        if kind in ("str", "dt"):
            return value
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise _bad_filter(self.text, f"Expected a literal value at token {self.i}.")

    def expr(self) -> Predicate:
        left = self.term()
        while self.is_word("or"):
            self.i += 1
            left = _either(left, self.term())
        return left

    def term(self) -> Predicate:
        left = self.factor()
        while self.is_word("and"):
            self.i += 1
            left = _both(left, self.factor())
        return left

    def factor(self) -> Predicate:
        if self.is_word("not"):
            self.i += 1
            return _negation(self.factor())
        if self.peek()[0] == "lparen":
            self.i += 1
            inner = self.expr()
            self.take("rparen")
            return inner
        if self.is_word("startswith"):
            self.i += 1
            self.take("lparen")
            path = self.prop()
            self.take("comma")
            prefix = self.literal()
            self.take("rparen")
            if not isinstance(prefix, str):
                raise _bad_filter(self.text, "startswith needs a string literal.")
            return _starts_with(path, prefix)
        path = self.prop()
        op = self.take("word").lower()
        if op not in _OPERATORS:
            raise _bad_filter(self.text, f"Unsupported operator '{op}'.")
        return _comparison(op, path, self.literal())


def compile_filter(text: str | None, allowed_properties: tuple[str, ...]) -> Predicate:
    """Return a predicate over wire dicts; None text gives a predicate that accepts everything."""
    if text is None or not text.strip():
        return lambda item: True
    parser = _Parser(text, allowed_properties)
    predicate = parser.expr()
    if parser.i != len(parser.tokens):
        raise _bad_filter(text, f"Unexpected token at {parser.i + 1}.")
    return predicate


def select_properties(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    """$select: keep the listed top-level properties (names matched case-insensitively)."""
    if not select:
        return item
    wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
    return {k: v for k, v in item.items() if k.lower() in wanted or k == "odata.metadata"}


def parse_maxresults(query: Mapping[str, str], default: int = 1000) -> int:
    raw = query.get("maxresults")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise service_error(400, "InvalidQueryParameterValue", QueryParameterName="maxresults",
                            QueryParameterValue=raw, Reason="The value must be an integer.") from None
    if value < 1:   # recorded (js should_list_pools_with_maxresults_-5): this code and reason
        raise service_error(400, "InvalidQueryParameterValue", QueryParameterName="maxresults",
                            QueryParameterValue=raw, Reason="MaxResults cannot be less than 1")
    if value > 1000:   # [inferred] not recorded: the documented upper bound
        raise service_error(400, "OutOfRangeQueryParameterValue", QueryParameterName="maxresults",
                            QueryParameterValue=raw, Reason="The value must be between 1 and 1000.")
    return value


def encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "offset" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise service_error(400, "InvalidQueryParameterValue", QueryParameterName="$skiptoken",
                            QueryParameterValue=token, Reason="The continuation token is not valid.") from None


def page(items: list[Item], query: Mapping[str, str]) -> tuple[list[Item], str | None]:
    """Slice one page from ``items``; returns (page_items, next_skiptoken or None)."""
    size = parse_maxresults(query)
    token = query.get("$skiptoken") or query.get("$skipToken")
    start = decode_skiptoken(token) if token else 0
    end = start + size
    return items[start:end], (encode_skiptoken(end) if end < len(items) else None)
