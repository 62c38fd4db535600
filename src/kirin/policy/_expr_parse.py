"""Tokenizer and recursive-descent parser of the expression language.

Hand-written so that every error can say exactly what was expected and point
at the column of the token at fault, and so that nothing but our own grammar
is ever accepted: there is no route from the text to ``eval``, imports or
attribute access. Input is bounded (length and nesting depth) before any
recursion can get deep, so hostile input ends in ExpressionSyntaxError, never
RecursionError.

Grammar (lowest precedence first)::

    expr       := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | condition
    condition  := '(' expr ')' | 'exists' '(' path ')'
                | value (COMPARE | 'in' | 'not' 'in') value
    value      := path | STRING | NUMBER | true | false | null | list
    list       := '[' [literal (',' literal)* [',']] ']'
    path       := NAME ('.' NAME)*         NAME: identifier or `quoted`
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, NoReturn

from ..errors import ExpressionSyntaxError, PolicyError
from ._expr_nodes import (
    COMPARE_OPS,
    KEYWORDS,
    And,
    Compare,
    Exists,
    Expr,
    In,
    Literal,
    LiteralValue,
    Not,
    Operand,
    Or,
    Path,
    to_text,
)

#: Longest accepted expression, in characters.
MAX_LENGTH = 10_000
#: Deepest accepted nesting of parentheses, ``not`` and list brackets.
MAX_DEPTH = 64
#: Longest accepted number literal, in characters (Python's int() stops at 4300).
MAX_NUMBER_LENGTH = 4000

_SPACE = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_OPERATOR_CHARS = "=!<>&|*/%^~@"
_PUNCTUATION = "()[],."
_OPERATOR_HINTS = {
    "=": "==", "===": "==", "!==": "!=", "<>": "!=", "=>": ">=", "=<": "<=",
    "&&": "and", "&": "and", "||": "or", "|": "or", "!": "not",
}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "`": "`", "n": "\n", "r": "\r", "t": "\t"}
_LITERAL_KINDS = {"string", "number", "true", "false", "null", "["}
_CONSTANTS: dict[str, LiteralValue] = {"true": True, "false": False, "null": None}


class _Token(NamedTuple):
    kind: str  # "name", "string", "number", "op", "end", a keyword, or punctuation
    text: str  # the source text, for messages
    value: Any  # decoded value of names, strings and numbers
    pos: int  # 0-based offset into the expression


def parse(text: str, *, file: str | None = None, key_path: str | None = None,
          line: int | None = None) -> Expr:
    """Parse ``text`` into an immutable :class:`Expr`.

    ``file``, ``key_path`` and ``line`` say where the expression came from (a
    policy YAML) and are attached to any ExpressionSyntaxError, whose
    ``column`` (1-based) points at the offending token.
    """
    if not isinstance(text, str):
        raise TypeError(f"an expression must be a string, not {type(text).__name__}")
    return _Parser(text, file, key_path, line).parse()


class _Parser:
    """One parse of one text: tokens, a cursor, and the current nesting depth."""

    def __init__(self, text: str, file: str | None, key_path: str | None,
                 line: int | None) -> None:
        self.text = text
        self.where = {"file": file, "key_path": key_path, "line": line}
        self.depth = 0
        self.i = 0
        if len(text) > MAX_LENGTH:
            self.fail(f"the expression is longer than {MAX_LENGTH} characters",
                      MAX_LENGTH)
        self.tokens = self.tokenize()

    def fail(self, message: str, pos: int) -> NoReturn:
        raise ExpressionSyntaxError(message, expression=self.text, column=pos + 1,
                                    **self.where)  # type: ignore[arg-type]

    # -- tokenizer ---------------------------------------------------------------

    def tokenize(self) -> list[_Token]:
        text, tokens, i = self.text, [], 0
        while True:
            i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
            if i >= len(text):
                tokens.append(_Token("end", "", None, i))
                return tokens
            token = self.next_token(i)
            tokens.append(token)
            i += len(token.text)

    def next_token(self, i: int) -> _Token:
        text, ch = self.text, self.text[i]
        if ch in "'\"`":
            value, end = self.read_quoted(i)
            return _Token("name" if ch == "`" else "string", text[i:end], value, i)
        if ch in "0123456789" or (ch == "-" and text[i + 1:i + 2].isascii()
                                  and text[i + 1:i + 2].isdigit()):
            return self.read_number(i)
        match = _NAME.match(text, i)
        if match:
            word = match.group()
            return _Token(KEYWORDS.get(word, "name"), word, word, i)
        if ch in _PUNCTUATION:
            return _Token(ch, ch, None, i)
        if ch in _OPERATOR_CHARS:
            end = i
            while end < len(text) and text[end] in _OPERATOR_CHARS:
                end += 1
            run = text[i:end]
            if run in COMPARE_OPS:
                return _Token("op", run, run, i)
            hint = _OPERATOR_HINTS.get(run)
            self.fail(f"unknown operator '{run}'"
                      + (f"; did you mean '{hint}'?" if hint else ""), i)
        if ch in "+-":
            self.fail(f"unknown operator '{ch}' (arithmetic is not supported)", i)
        self.fail(f"unexpected character {ch!r}", i)

    def read_number(self, i: int) -> _Token:
        match = _NUMBER.match(self.text, i)
        assert match is not None  # the caller saw a digit
        end = match.end()
        tail = _NUMBER_TAIL.match(self.text, end).end()  # type: ignore[union-attr]
        if tail > end:
            self.fail(f"invalid number '{self.text[i:tail]}'", i)
        source = match.group()
        if len(source) > MAX_NUMBER_LENGTH:
            self.fail(f"number is too long (more than {MAX_NUMBER_LENGTH} characters)", i)
        if match.group(1) or match.group(2):
            value: int | float = float(source)
            if value in (float("inf"), float("-inf")):
                self.fail(f"number '{source}' is out of range", i)
        else:
            value = int(source)
        return _Token("number", source, value, i)

    def read_quoted(self, start: int) -> tuple[str, int]:
        """Decode a quoted string or `name` starting at ``start``; return (value, end)."""
        text, mark = self.text, self.text[start]
        parts: list[str] = []
        i = start + 1
        while i < len(text):
            ch = text[i]
            if ch == mark:
                return "".join(parts), i + 1
            if ch != "\\":
                parts.append(ch)
                i += 1
                continue
            code = text[i + 1:i + 2]
            if code in _ESCAPES:
                parts.append(_ESCAPES[code])
                i += 2
            elif code in ("u", "U"):
                width = 4 if code == "u" else 8
                digits = text[i + 2:i + 2 + width]
                if len(digits) != width or not all(c in "0123456789abcdefABCDEF"
                                                   for c in digits):
                    self.fail(f"'\\{code}' needs {width} hexadecimal digits", i)
                number = int(digits, 16)
                if number > 0x10FFFF:
                    self.fail(f"'\\{code}{digits}' is not a Unicode code point", i)
                parts.append(chr(number))
                i += 2 + width
            elif code:
                self.fail(f"unknown escape '\\{code}'", i)
            else:
                break
        what = "quoted name" if mark == "`" else "string"
        self.fail(f"unterminated {what}", start)

    # -- parser ----------------------------------------------------------------

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def peek2(self) -> _Token:
        return self.tokens[min(self.i + 1, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"the expression is nested too deeply (more than {MAX_DEPTH} "
                      "levels of parentheses, 'not' and lists)", token.pos)

    def fail_expected(self, what: str, token: _Token, hint: str = "") -> NoReturn:
        previous = self.tokens[self.i - 1] if self.i else None
        after = f" after '{_shorten(previous.text)}'" if previous else ""
        self.fail(f"expected {what}{after}, found {_found(token)}{hint}", token.pos)

    def parse(self) -> Expr:
        if self.peek.kind == "end":
            self.fail("the expression is empty", 0)
        expr = self.parse_or()
        token = self.peek
        if token.kind == ")":
            self.fail("unmatched ')'", token.pos)
        if token.kind != "end":
            hint = ""
            if token.text.lower() in ("and", "or", "not"):
                hint = f" (did you mean '{token.text.lower()}'?)"
            self.fail(f"expected 'and', 'or' or the end of the expression, "
                      f"found {_found(token)}{hint}", token.pos)
        return expr

    def parse_or(self) -> Expr:
        operands = [self.parse_and()]
        while self.peek.kind == "or":
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Expr:
        operands = [self.parse_not()]
        while self.peek.kind == "and":
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Expr:
        token = self.peek
        if token.kind != "not":
            return self.parse_condition()
        self.advance()
        self.enter(token)
        operand = self.parse_not()
        self.depth -= 1
        return Not(operand)

    def parse_condition(self) -> Expr:
        token = self.peek
        if token.kind == "(":
            self.advance()
            self.enter(token)
            inner = self.parse_or()
            if self.peek.kind != ")":
                self.fail(f"expected ')' to close the '(' at column {token.pos + 1}, "
                          f"found {_found(self.peek)}", self.peek.pos)
            self.advance()
            self.depth -= 1
            self.refuse_comparison("a condition in parentheses")
            return inner
        if token.kind == "exists":
            exists = self.parse_exists()
            self.refuse_comparison("exists(...)")
            return exists
        if token.kind != "name" and token.kind not in _LITERAL_KINDS:
            self.fail_expected("a condition", token)
        left = self.parse_value()
        op = self.peek
        if op.kind == "op":
            self.advance()
            expr: Expr = self.build(op, Compare, left, op.text, self.parse_value())
        elif op.kind == "in" or (op.kind == "not" and self.peek2().kind == "in"):
            negated = op.kind == "not"
            self.i += 2 if negated else 1
            expr = self.build(op, In, left, self.parse_value(), negated)
        else:
            self.fail_no_operator(left, op)
        following = self.peek
        if following.kind in ("op", "in") or (
                following.kind == "not" and self.peek2().kind == "in"):
            self.fail("chained comparisons are not supported; join them with 'and' "
                      "(e.g. 'a < b and b < c')", following.pos)
        return expr

    def fail_no_operator(self, left: Operand, token: _Token) -> NoReturn:
        if token.kind == "not":
            self.advance()
            self.fail_expected("'in'", self.peek)
        if token.kind == "(" and isinstance(left, Path):
            self.fail("function calls are not supported (exists(path) is the only "
                      "call-like form)", token.pos)
        hint = ""
        if isinstance(left, Path):
            name = to_text(left)
            hint = f" (for a yes/no field write '{name} == true' or 'exists({name})')"
        self.fail(f"expected a comparison (==, !=, <, <=, >, >=, in, not in) after "
                  f"'{_shorten(to_text(left))}', found {_found(token)}{hint}", token.pos)

    def refuse_comparison(self, what: str) -> None:
        token = self.peek
        if token.kind in ("op", "in") or (token.kind == "not"
                                          and self.peek2().kind == "in"):
            self.fail(f"{what} cannot be compared; compare fields and values "
                      "instead (e.g. 'flag == true')", token.pos)

    def parse_exists(self) -> Exists:
        self.advance()
        if self.peek.kind != "(":
            self.fail_expected("'('", self.peek)
        self.advance()
        if self.peek.kind != "name":
            self.fail_expected("a field path", self.peek)
        path = self.parse_path()
        if self.peek.kind != ")":
            self.fail_expected("')' to close 'exists('", self.peek)
        self.advance()
        return Exists(path)

    def parse_value(self) -> Operand:
        token = self.peek
        if token.kind == "name":
            return self.parse_path()
        if token.kind in _LITERAL_KINDS:
            return Literal(self.parse_literal())
        if token.kind == "exists":
            self.fail("exists(...) is a condition, not a value", token.pos)
        self.fail_expected("a value", token)

    def parse_path(self) -> Path:
        segments = [self.advance().value]
        while self.peek.kind == ".":
            self.advance()
            token = self.peek
            if token.kind != "name":
                hint = ""
                if token.text in KEYWORDS:
                    hint = f" (write a key named like a keyword in backticks: `{token.text}`)"
                self.fail_expected("a field name", token, hint)
            segments.append(self.advance().value)
        return Path(tuple(segments))

    def parse_literal(self) -> LiteralValue:
        token = self.advance()
        if token.kind in ("string", "number"):
            return token.value  # type: ignore[no-any-return]
        if token.kind in _CONSTANTS:
            return _CONSTANTS[token.kind]
        self.enter(token)  # a list
        items: list[LiteralValue] = []
        while self.peek.kind != "]":
            item = self.peek
            if item.kind == "name":
                self.fail("list items must be literal values (strings, numbers, "
                          f"true/false, null or lists), found {_found(item)}", item.pos)
            if item.kind not in _LITERAL_KINDS:
                self.fail_expected("a list item or ']'", item)
            items.append(self.parse_literal())
            if self.peek.kind == ",":
                self.advance()
            elif self.peek.kind != "]":
                self.fail(f"expected ',' or ']' in the list opened at column "
                          f"{token.pos + 1}, found {_found(self.peek)}", self.peek.pos)
        self.advance()
        self.depth -= 1
        return tuple(items)

    def build(self, token: _Token, node: type[Expr], *args: Any) -> Expr:
        """Construct a node; a static error (e.g. ``x > true``) points at ``token``."""
        try:
            return node(*args)
        except PolicyError as exc:
            self.fail(exc.detail, token.pos)


def _found(token: _Token) -> str:
    return "the end of the expression" if token.kind == "end" else f"'{_shorten(token.text)}'"


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
