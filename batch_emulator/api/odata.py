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
from collections.abc import Callable
from datetime import datetime

from ..service.errors import service_error

_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)"
    r"|datetime'(?P<dt>[^']*)'|'(?P<str>(?:[^']|'')*)'"
    r"|(?P<num>-?\d+(?:\.\d+)?)(?![\w/])"
    r"|(?P<word>[A-Za-z_$][\w/.$-]*))"
)
_COMPARISONS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def _bad_filter(text, reason):
    return service_error(400, "InvalidQueryParameterValue", QueryParameterName="$filter",
                         QueryParameterValue=text, Reason=reason)


def _tokenize(text):
    tokens, pos = [], 0
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


def _lookup(item, path):
    value = item
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_datetime(value):
    """Parse ISO-8601 UTC strings (up to 7 fractional digits, as the service writes them)."""
    match = isinstance(value, str) and re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?(?:Z|[+-]00:00)?", value)
    if not match:
        return None
    frac = "." + match.group(2)[:6].ljust(6, "0") if match.group(2) else ""
    try:
        return datetime.fromisoformat(match.group(1) + frac)
    except ValueError:
        return None


def _compare(op, actual, literal):
    if literal is None:
        return (actual is None) if op == "eq" else (actual is not None) if op == "ne" else False
    if actual is None:
        return op == "ne"
    if isinstance(literal, str):
        left_dt, right_dt = _as_datetime(actual), _as_datetime(literal)
        if left_dt and right_dt:
            return _COMPARISONS[op](left_dt, right_dt)
        # Enum values and ids are case-insensitive on the service; compare strings that way.
        return _COMPARISONS[op](str(actual).lower(), literal.lower())
    if isinstance(literal, bool) or isinstance(actual, bool):
        return _COMPARISONS[op](bool(actual), bool(literal)) if op in ("eq", "ne") else False
    try:
        return _COMPARISONS[op](float(actual), float(literal))
    except (TypeError, ValueError):
        return False


class _Parser:
    def __init__(self, text, allowed):
        self.text, self.allowed = text, {p.lower(): p for p in allowed}
        self.tokens, self.i = _tokenize(text), 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, kind=None, word=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (word and (tok[1] or "").lower() != word):
            raise _bad_filter(self.text, f"Expected {word or kind} at token {self.i + 1}.")
        self.i += 1
        return tok[1]

    def is_word(self, *words):
        kind, value = self.peek()
        return kind == "word" and value.lower() in words

    def prop(self):
        name = self.take("word")
        real = self.allowed.get(name.lower())
        if real is None:
            raise _bad_filter(self.text, f"Filtering on property '{name}' is not supported for this list.")
        return real

    def literal(self):
        kind, value = self.peek()
        self.i += 1
        if kind in ("str", "dt"):
            return value
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise _bad_filter(self.text, f"Expected a literal value at token {self.i}.")

    def expr(self):
        left = self.term()
        while self.is_word("or"):
            self.i += 1
            right = self.term()
            left = (lambda a, b: lambda item: a(item) or b(item))(left, right)
        return left

    def term(self):
        left = self.factor()
        while self.is_word("and"):
            self.i += 1
            right = self.factor()
            left = (lambda a, b: lambda item: a(item) and b(item))(left, right)
        return left

    def factor(self):
        if self.is_word("not"):
            self.i += 1
            inner = self.factor()
            return lambda item: not inner(item)
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
            return lambda item: isinstance(_lookup(item, path), str) and \
                _lookup(item, path).lower().startswith(prefix.lower())
        path = self.prop()
        op = self.take("word").lower()
        if op not in _COMPARISONS:
            raise _bad_filter(self.text, f"Unsupported operator '{op}'.")
        value = self.literal()
        return lambda item: _compare(op, _lookup(item, path), value)


def compile_filter(text: str | None, allowed_properties: tuple[str, ...]) -> Callable[[dict], bool]:
    """Return a predicate over wire dicts; None text gives a predicate that accepts everything."""
    if text is None or not text.strip():
        return lambda item: True
    parser = _Parser(text, allowed_properties)
    predicate = parser.expr()
    if parser.i != len(parser.tokens):
        raise _bad_filter(text, f"Unexpected token at {parser.i + 1}.")
    return predicate


def select_properties(item: dict, select: str | None) -> dict:
    """$select: keep the listed top-level properties (names matched case-insensitively)."""
    if not select:
        return item
    wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
    return {k: v for k, v in item.items() if k.lower() in wanted or k == "odata.metadata"}


def parse_maxresults(query: dict[str, str], default: int = 1000) -> int:
    raw = query.get("maxresults")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise service_error(400, "InvalidQueryParameterValue", QueryParameterName="maxresults",
                            QueryParameterValue=raw, Reason="The value must be an integer.") from None
    if not 1 <= value <= 1000:
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


def page(items: list, query: dict[str, str]) -> tuple[list, str | None]:
    """Slice one page from ``items``; returns (page_items, next_skiptoken or None)."""
    size = parse_maxresults(query)
    token = query.get("$skiptoken") or query.get("$skipToken")
    start = decode_skiptoken(token) if token else 0
    end = start + size
    return items[start:end], (encode_skiptoken(end) if end < len(items) else None)
