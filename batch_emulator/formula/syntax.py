"""Autoscale formula syntax: the tokenizer, the syntax tree and the recursive-descent parser.

parse(formula) returns the list of Statement nodes or raises FormulaError (syntax) with the
line and column of what cannot be read. Nothing here knows which names exist: that is
checks.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .language import FormulaError, Pos

# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<newline>\n) | (?P<space>[ \t\r\f\v]+) | (?P<comment>//[^\n]*) | (?P<block>/\*) |
    (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?) |
    (?P<string>"[^"\n]*") | (?P<open_string>"[^"\n]*) |
    (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*) |
    (?P<op>&&|\|\||<=|>=|==|!=|[-+*/<>!?:;=(),.])
""", re.VERBOSE)
_UNSUPPORTED_CHARACTERS = {
    "{": "'{' is not part of the formula language: there are no vector literals (GetSample returns vectors)",
    "[": "'[' is not part of the formula language: there are no vector literals or indexing (use val(v, i))",
    "'": "strings are written in double quotes",
    "&": "'&' is not an operator: use && for a logical and",
    "|": "'|' is not an operator: use || for a logical or",
}


@dataclass
class Token:
    kind: str       # number | string | name | op | end
    text: str
    pos: Pos        # (line, column), 1-based


def tokenize(formula: str) -> list[Token]:
    tokens: list[Token] = []
    line, line_start, index = 1, 0, 0
    while index < len(formula):
        match = _TOKEN.match(formula, index)
        pos = (line, index - line_start + 1)
        if match is None:
            char = formula[index]
            raise FormulaError("syntax", pos, _UNSUPPORTED_CHARACTERS.get(char, f"unexpected character {char!r}"))
        kind, text = match.lastgroup or "", match.group()   # every alternative is a named group
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind == "block":
            raise FormulaError("syntax", pos, "block comments /* */ are not supported: start comments with //")
        elif kind == "open_string":
            raise FormulaError("syntax", pos, "the string is not closed with \" on this line")
        elif kind not in ("space", "comment"):
            tokens.append(Token(kind, text, pos))
        index = match.end()
    tokens.append(Token("end", "", (line, index - line_start + 1)))
    return tokens


# ---------------------------------------------------------------- syntax tree

@dataclass
class Num:
    pos: Pos
    value: float


@dataclass
class Str:
    pos: Pos
    value: str


@dataclass
class Name:
    pos: Pos
    name: str


@dataclass
class Call:
    pos: Pos
    name: str
    args: list[Node]


@dataclass
class Method:
    pos: Pos
    target: Node        # check() accepts only a sampled service variable's Name
    name: str
    args: list[Node]


@dataclass
class Member:
    pos: Pos
    target: Node
    name: str


@dataclass
class Unary:
    pos: Pos
    op: str
    operand: Node


@dataclass
class Binary:
    pos: Pos
    op: str
    left: Node
    right: Node


@dataclass
class Cond:
    pos: Pos
    test: Node
    then: Node
    other: Node


@dataclass
class Statement:
    pos: Pos
    target: str | None     # None for a bare expression
    value: Node


# An expression of the syntax tree.
Node = Num | Str | Name | Call | Method | Member | Unary | Binary | Cond


class _Parser:
    """formula   := statement? (';' statement?)*
    statement := NAME '=' expr | expr
    expr      := or ('?' expr ':' expr)?
    or        := and ('||' and)*          and := compare ('&&' compare)*
    compare   := sum (('<'|'<='|'=='|'>='|'>'|'!=') sum)*
    sum       := product (('+'|'-') product)*
    product   := unary (('*'|'/') unary)*
    unary     := ('-'|'!') unary | postfix
    postfix   := primary ('.' NAME ('(' args ')')?)*
    primary   := NUMBER | STRING | NAME ('(' args ')')? | '(' expr ')'
    """

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.index = tokens, 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def expect(self, op: str, what: str) -> Token:
        if not self.at(op):
            raise FormulaError("syntax", self.token.pos, f"expected {op!r} {what}, found {describe(self.token)}")
        return self.take()

    def program(self) -> list[Statement]:
        statements: list[Statement] = []
        while self.token.kind != "end":
            if self.at(";"):
                self.take()
                continue
            statements.append(self.statement())
            if self.token.kind != "end":
                self.expect(";", "between statements")
        return statements

    def statement(self) -> Statement:
        first = self.token
        if first.kind == "name":   # a name is never the last token (the end token follows)
            following = self.tokens[self.index + 1]
            if following.kind == "op" and following.text == "=":
                self.index += 2
                return Statement(first.pos, first.text, self.expression())
        return Statement(first.pos, None, self.expression())

    def expression(self) -> Node:
        test = self.binary(0)
        if self.at("?"):
            pos = self.take().pos
            then = self.expression()
            self.expect(":", "after the '?' branch of a conditional")
            return Cond(pos, test, then, self.expression())
        return test

    LEVELS = (("||",), ("&&",), ("<", "<=", "==", ">=", ">", "!="), ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at(*self.LEVELS[level]):
            token = self.take()
            left = Binary(token.pos, token.text, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.at("-", "!"):
            token = self.take()
            return Unary(token.pos, token.text, self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self.at("."):
            self.take()
            name = self.token
            if name.kind != "name" or name.text.startswith("$"):
                raise FormulaError("syntax", name.pos,
                                   f"expected a method or member name after '.', found {describe(name)}")
            self.take()
            if self.at("("):
                node = Method(name.pos, node, name.text, self.arguments())
            else:
                node = Member(name.pos, node, name.text)
        return node

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.take()
            return Num(token.pos, float(token.text))
        if token.kind == "string":
            self.take()
            return Str(token.pos, token.text[1:-1])
        if token.kind == "name":
            self.take()
            if self.at("("):
                return Call(token.pos, token.text, self.arguments())
            return Name(token.pos, token.text)
        if self.at("("):
            self.take()
            node = self.expression()
            self.expect(")", "to close '('")
            return node
        raise FormulaError("syntax", token.pos, f"expected a value, found {describe(token)}")

    def arguments(self) -> list[Node]:
        self.expect("(", "")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.expression())
            while self.at(","):
                self.take()
                args.append(self.expression())
        self.expect(")", "to close the argument list")
        return args


def describe(token: Token) -> str:
    return "the end of the formula" if token.kind == "end" else repr(token.text)


def parse(formula: str) -> list[Statement]:
    """The statements of ``formula``; raises FormulaError (syntax) if it cannot be read."""
    return _Parser(tokenize(formula)).program()
