"""Tests of the expression language: parser, printer, both semantics, safety."""

from __future__ import annotations

import ast
import pickle
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import FrozenInstanceError
from pathlib import Path as FsPath
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import kirin.policy.expr as expr_module
from kirin._json import freeze
from kirin.errors import ExpressionSyntaxError, PolicyError
from kirin.policy._expr_eval import MISSING, _iter_paths, lookup
from kirin.policy.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Compare,
    Exists,
    Expr,
    Failure,
    In,
    Literal,
    Node,
    Not,
    Or,
    Path,
    check,
    compile_query,
    evaluate,
    parse,
    paths,
    to_text,
)


def P(text: str) -> Path:
    """A path from dotted text (test shorthand; segments are plain identifiers)."""
    return Path(tuple(text.split(".")))


def L(value: Any) -> Literal:
    return Literal(value)


def C(left: Any, op: str, right: Any) -> Compare:
    return Compare(left, op, right)


# -- parsing: valid input ----------------------------------------------------------

VALID = [
    ("accuracy > 0.9", C(P("accuracy"), ">", L(0.9))),
    ("accuracy>0.9", C(P("accuracy"), ">", L(0.9))),
    ("  accuracy\n>=\t0.9  ", C(P("accuracy"), ">=", L(0.9))),
    ("x == 1", C(P("x"), "==", L(1))),
    ("x != -1", C(P("x"), "!=", L(-1))),
    ("x<-1", C(P("x"), "<", L(-1))),
    ("x <= 1.5e-3", C(P("x"), "<=", L(0.0015))),
    ("x == 2E+2", C(P("x"), "==", L(200.0))),
    ("x == 007", C(P("x"), "==", L(7))),
    ("0.9 <= accuracy", C(L(0.9), "<=", P("accuracy"))),
    ("precision >= recall", C(P("precision"), ">=", P("recall"))),
    ("x == 'pytorch'", C(P("x"), "==", L("pytorch"))),
    ('x == "pytorch"', C(P("x"), "==", L("pytorch"))),
    (r"x == 'it\'s'", C(P("x"), "==", L("it's"))),
    (r'x == "say \"hi\""', C(P("x"), "==", L('say "hi"'))),
    (r"x == 'a\\b\n\t\r'", C(P("x"), "==", L("a\\b\n\t\r"))),
    (r"x == '\u00e9\U0001F600'", C(P("x"), "==", L("é😀"))),
    ("x == 'é 😀'", C(P("x"), "==", L("é 😀"))),
    ("x == ''", C(P("x"), "==", L(""))),
    ("x == true", C(P("x"), "==", L(True))),
    ("x == True", C(P("x"), "==", L(True))),
    ("x == false", C(P("x"), "==", L(False))),
    ("x == False", C(P("x"), "==", L(False))),
    ("x == null", C(P("x"), "==", L(None))),
    ("x == None", C(P("x"), "==", L(None))),
    ("hyperparameters.learning_rate < 0.01",
     C(P("hyperparameters.learning_rate"), "<", L(0.01))),
    ("a . b == 1", C(P("a.b"), "==", L(1))),
    ("`odd key`.`f1-score` > 0", C(Path(("odd key", "f1-score")), ">", L(0))),
    ("`in` == 1", C(Path(("in",)), "==", L(1))),
    (r"`a\`b` == 1", C(Path(("a`b",)), "==", L(1))),
    ("`` == 1", C(Path(("",)), "==", L(1))),
    ("x.__class__ == 1", C(P("x.__class__"), "==", L(1))),
    ("x in [1, 'a', true, null, [2]]",
     In(P("x"), L((1, "a", True, None, (2,))))),
    ("x in [1, 2,]", In(P("x"), L((1, 2)))),
    ("x in []", In(P("x"), L(()))),
    ("'gpu' in tags", In(L("gpu"), P("tags"))),
    ("x not in ['a']", In(P("x"), L(("a",)), negated=True)),
    ("not x in ['a']", Not(In(P("x"), L(("a",))))),
    ("'torch' in framework", In(L("torch"), P("framework"))),
    ("x == [1, [2, 3]]", C(P("x"), "==", L((1, (2, 3))))),
    ("exists(a.b)", Exists(P("a.b"))),
    ("exists ( a )", Exists(P("a"))),
    ("not exists(a)", Not(Exists(P("a")))),
    ("not not a == 1", Not(Not(C(P("a"), "==", L(1))))),
    ("not a == 1 and b == 2", And((Not(C(P("a"), "==", L(1))), C(P("b"), "==", L(2))))),
    ("a == 1 and b == 2 and c == 3",
     And((C(P("a"), "==", L(1)), C(P("b"), "==", L(2)), C(P("c"), "==", L(3))))),
    ("a == 1 or b == 2 and c == 3",
     Or((C(P("a"), "==", L(1)), And((C(P("b"), "==", L(2)), C(P("c"), "==", L(3))))))),
    ("(a == 1 or b == 2) and c == 3",
     And((Or((C(P("a"), "==", L(1)), C(P("b"), "==", L(2)))), C(P("c"), "==", L(3))))),
    ("a == 1 and (b == 2 and c == 3)",
     And((C(P("a"), "==", L(1)), And((C(P("b"), "==", L(2)), C(P("c"), "==", L(3))))))),
    ("((a == 1))", C(P("a"), "==", L(1))),
    ("1 == 1", C(L(1), "==", L(1))),
    ("'a' < 'b'", C(L("a"), "<", L("b"))),
]


@pytest.mark.parametrize(("text", "tree"), VALID, ids=[v[0] for v in VALID])
def test_parse_valid(text: str, tree: Expr) -> None:
    """Each valid expression parses to exactly the expected tree."""
    assert parse(text) == tree


# -- parsing: invalid input ----------------------------------------------------------

INVALID = [
    ("", "the expression is empty", 1),
    ("   ", "the expression is empty", 1),
    ("x >= ", "expected a value after '>=', found the end of the expression", 6),
    ("x >=", "expected a value after '>='", 5),
    ("x in", "expected a value after 'in'", 5),
    ("x >> 1", "unknown operator '>>'", 3),
    ("x = 1", "unknown operator '='; did you mean '=='?", 3),
    ("x => 1", "did you mean '>='?", 3),
    ("x <> 1", "did you mean '!='?", 3),
    ("x === 1", "unknown operator '==='", 3),
    ("x == 1 && y == 2", "did you mean 'and'?", 8),
    ("x == 1 || y == 2", "did you mean 'or'?", 8),
    ("!(x == 1)", "did you mean 'not'?", 1),
    ("x - 1", "unknown operator '-' (arithmetic is not supported)", 3),
    ("x == 1 + 2", "unknown operator '+'", 8),
    ("x == -", "unknown operator '-'", 6),
    ("x == 'abc", "unterminated string", 6),
    ('x == "abc', "unterminated string", 6),
    ("x == 'abc\\'", "unterminated string", 6),
    ("`abc == 1", "unterminated quoted name", 1),
    (r"x == 'a\qb'", r"unknown escape '\q'", 8),
    (r"x == '\u12'", r"'\u' needs 4 hexadecimal digits", 7),
    (r"x == '\U00110000'", "is not a Unicode code point", 7),
    ("x == 1.2.3", "invalid number '1.2.3'", 6),
    ("x == 1.", "invalid number '1.'", 6),
    ("x == 1abc", "invalid number '1abc'", 6),
    ("x == 0x10", "invalid number '0x10'", 6),
    ("x == 1_000", "invalid number '1_000'", 6),
    ("x == 1e999", "number '1e999' is out of range", 6),
    ("x == " + "9" * 4001, "number is too long", 6),
    ("x == $", "unexpected character '$'", 6),
    ("x == 1;", "unexpected character ';'", 7),
    ("x ≥ 1", "unexpected character '≥'", 3),
    ("x == 1\x00", "unexpected character '\\x00'", 7),
    ("x == 1 y == 2",
     "expected 'and', 'or' or the end of the expression, found 'y'", 8),
    ("x == 1 AND y == 2", "(did you mean 'and'?)", 8),
    ("x == 'a' 'b'", "found ''b''", 10),
    ("x == 1)", "unmatched ')'", 7),
    ("(x == 1", "expected ')' to close the '(' at column 1, found the end", 8),
    ("((x == 1)", "expected ')' to close the '(' at column 1", 10),
    ("1 < x < 2", "chained comparisons are not supported; join them with 'and'", 7),
    ("x == 1 == 2", "chained comparisons are not supported", 8),
    ("a in b in c", "chained comparisons are not supported", 8),
    ("a == 1 not in b", "chained comparisons are not supported", 8),
    ("validated", "expected a comparison (==, !=, <, <=, >, >=, in, not in) after "
     "'validated', found the end of the expression (for a yes/no field write "
     "'validated == true' or 'exists(validated)')", 10),
    ("(x) == 1", "expected a comparison (==, !=, <, <=, >, >=, in, not in) after 'x', "
     "found ')'", 3),
    ("x not == 1", "expected 'in' after 'not', found '=='", 7),
    ("x not", "expected 'in' after 'not', found the end of the expression", 6),
    ("x == 1 and", "expected a condition after 'and', found the end of the expression", 11),
    ("and x == 1", "expected a condition, found 'and'", 1),
    ("x == 1 or or y == 1", "expected a condition after 'or', found 'or'", 11),
    ("not", "expected a condition after 'not', found the end of the expression", 4),
    ("== 1", "expected a condition, found '=='", 1),
    ("__import__('os').system('x')", "function calls are not supported", 11),
    ("exec('x')", "function calls are not supported", 5),
    ("eval('1') == 1", "function calls are not supported", 5),
    ("().__class__", "expected a condition after '(', found ')'", 2),
    ("'a'.upper == 1", "expected a comparison", 4),
    ("lambda: 1", "unexpected character ':'", 7),
    ("exists x", "expected '(' after 'exists', found 'x'", 8),
    ("exists(1)", "expected a field path after '(', found '1'", 8),
    ("exists(a, b)", "expected ')' to close 'exists(' after 'a', found ','", 9),
    ("exists(a) == true", "exists(...) cannot be compared", 11),
    ("(x > 1) == true", "a condition in parentheses cannot be compared", 9),
    ("x == exists(y)", "exists(...) is a condition, not a value", 6),
    ("x == (1)", "expected a value after '==', found '('", 6),
    ("x == not", "expected a value after '==', found 'not'", 6),
    ("x in [a, 1]", "list items must be literal values", 7),
    ("x in [1 2]", "expected ',' or ']' in the list opened at column 6, found '2'", 9),
    ("x in [1,", "expected a list item or ']' after ',', found the end", 9),
    ("x in [", "expected a list item or ']' after '['", 7),
    ("x in [,]", "expected a list item or ']' after '[', found ','", 7),
    ("x > true", "'>' compares numbers or strings, not true (a boolean)", 3),
    ("x <= null", "'<=' compares numbers or strings, not null (null)", 3),
    ("x < [1]", "not [1] (a list)", 3),
    ("false >= x", "not false (a boolean)", 7),
    ("1 < 'a'", "'<' cannot order a number against a string", 3),
    ("x in 5", "'in' needs a list, a string or a field on its right, not 5 (a number)", 3),
    ("x not in true", "'in' needs a list, a string or a field on its right", 3),
    ("a.1 == 1", "expected a field name after '.', found '1'", 3),
    ("a. == 1", "expected a field name after '.', found '=='", 4),
    ("a.in == 1", "(write a key named like a keyword in backticks: `in`)", 3),
    ("in == 1", "expected a condition, found 'in'", 1),
    ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1),
    ("(" * (MAX_DEPTH + 1) + "x == 1" + ")" * (MAX_DEPTH + 1),
     "nested too deeply", MAX_DEPTH + 1),
    ("not " * (MAX_DEPTH + 1) + "x == 1", "nested too deeply", MAX_DEPTH * 4 + 1),
    ("x in " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
     "nested too deeply", 5 + MAX_DEPTH + 1),
]


@pytest.mark.parametrize(("text", "message", "column"), INVALID,
                         ids=[repr(v[0][:40]) for v in INVALID])
def test_parse_invalid(text: str, message: str, column: int) -> None:
    """Each invalid expression raises ExpressionSyntaxError with the message and column."""
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse(text)
    assert message in caught.value.detail
    assert caught.value.column == column
    assert caught.value.expression == text


def test_syntax_error_carries_its_location() -> None:
    """File, key path and line given to parse() appear on the error and in its text."""
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse("accuracy >", file="policy.yaml", key_path="promotion.production.when",
              line=12)
    error = caught.value
    assert (error.file, error.key_path, error.line, error.column) == (
        "policy.yaml", "promotion.production.when", 12, 11)
    assert isinstance(error, PolicyError) and isinstance(error, ValueError)
    assert str(error).startswith("policy.yaml:12, key promotion.production.when: "
                                 "expected a value after '>'")
    assert str(error).endswith("  accuracy >\n" + " " * 12 + "^")


def test_parse_refuses_non_strings() -> None:
    """parse() of something that is not a string is a TypeError, not a parse."""
    with pytest.raises(TypeError):
        parse(b"x == 1")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "(" * MAX_DEPTH + "x == 1" + ")" * MAX_DEPTH,
    "not " * MAX_DEPTH + "x == 1",
    "x == " + "[" * MAX_DEPTH + "]" * MAX_DEPTH,
    " and ".join(["x == 1"] * 900),
    "x == '" + "a" * (MAX_LENGTH - 7) + "'",
])
def test_limits_are_inclusive(text: str) -> None:
    """Nesting of exactly MAX_DEPTH and input of MAX_LENGTH characters still parse."""
    assert len(text) <= MAX_LENGTH
    assert parse(parse(text).__str__()) == parse(text)


@pytest.mark.parametrize("text", [
    "(" * 10_000,
    "(" * 5_000 + "x == 1" + ")" * 5_000,
    "not " * 2_500,
    "x in " + "[" * 9_990,
    "(" * 100_000 + "x == 1" + ")" * 100_000,
    "not (" * 1_600 + "x == 1" + ")" * 1_600,
])
def test_deep_nesting_is_a_syntax_error_not_a_recursion_error(text: str) -> None:
    """Thousands of nested parentheses, nots or brackets end in ExpressionSyntaxError."""
    start = time.perf_counter()
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse(text)
    assert "nested too deeply" in caught.value.detail or "longer than" in caught.value.detail
    assert time.perf_counter() - start < 10.0  # no blow-up (a bound, not a speed figure)


# -- printing --------------------------------------------------------------------------

CANONICAL = [
    ("x>1", "x > 1"),
    ('x=="a"', "x == 'a'"),
    ("x == True", "x == true"),
    ("x == None", "x == null"),
    ("x == 1E3", "x == 1000.0"),
    ("x == -0.0", "x == -0.0"),
    ("not (x == 1)", "not x == 1"),
    ("not exists(x)", "not exists(x)"),
    ("not not x == 1", "not not x == 1"),
    ("not (a == 1 and b == 2)", "not (a == 1 and b == 2)"),
    ("not (a == 1 or not b == 2)", "not (a == 1 or not b == 2)"),
    ("x not in [1,2,]", "x not in [1, 2]"),
    ("not (x in [1])", "not x in [1]"),
    ("(a == 1)", "a == 1"),
    ("a == 1 or b == 2 and c == 3", "a == 1 or b == 2 and c == 3"),
    ("(a == 1 or b == 2) and c == 3", "(a == 1 or b == 2) and c == 3"),
    ("a == 1 and (b == 2 and c == 3)", "a == 1 and (b == 2 and c == 3)"),
    ("a == 1 or (b == 2 or c == 3)", "a == 1 or (b == 2 or c == 3)"),
    ("`a`.`b c` == 1", "a.`b c` == 1"),
    ("`true`.`x` == 1", "`true`.x == 1"),
    (r"x == 'it\'s'", r"x == 'it\'s'"),
    (r'x == "line\nbreak\ttab"', r"x == 'line\nbreak\ttab'"),
    (r"x == '\u0000\u00a0'", r"x == '\u0000\u00a0'"),
    ('x == "\\"quoted\\""', "x == '\"quoted\"'"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical_text(text: str, canonical: str) -> None:
    """str() of a parsed expression is the canonical text, which parses to the same tree."""
    tree = parse(text)
    assert str(tree) == to_text(tree) == canonical
    assert parse(canonical) == tree


def test_printer_escapes_lone_surrogates_and_astral_controls() -> None:
    """Strings that are not printable text still print to text that reads back."""
    tree = C(Path(("\ud800",)), "==", L("\udfff\U000e0001\x7f"))
    assert parse(str(tree)) == tree
    assert str(tree).isascii()


# -- tree values -----------------------------------------------------------------------


def test_literals_compare_by_type_as_well_as_value() -> None:
    """true, 1 and 1.0 are different literals even though Python finds them equal."""
    assert L(True) != L(1)
    assert L(1) != L(1.0)
    assert L(0) != L(False)
    assert L((1,)) != L((True,))
    assert L([1, [2]]) == L((1, (2,)))
    assert parse("x == true") != parse("x == 1")
    assert len({L(True), L(1), L(1.0), L("1")}) == 4
    assert hash(parse("a == 1 and b in ['x']")) == hash(parse("a == 1 and b in ['x']"))


def test_trees_are_immutable() -> None:
    """Tree nodes are frozen dataclasses; assigning a field raises."""
    tree = parse("x == 1")
    assert isinstance(tree, Compare)
    with pytest.raises(FrozenInstanceError):
        tree.op = "<"  # type: ignore[misc]


@pytest.mark.parametrize(("build", "error"), [
    (lambda: Compare(P("x"), ">", L(True)), PolicyError),
    (lambda: Compare(P("x"), "=~", L(1)), PolicyError),
    (lambda: Compare(L(1), "<", L("a")), PolicyError),
    (lambda: Compare(P("x"), "==", "1"), TypeError),  # type: ignore[arg-type]
    (lambda: In(P("x"), L(None)), PolicyError),
    (lambda: In(P("x"), L(("a",)), negated=1), TypeError),  # type: ignore[arg-type]
    (lambda: And((parse("x == 1"),)), TypeError),
    (lambda: Or((parse("x == 1"), P("y"))), TypeError),  # type: ignore[arg-type]
    (lambda: Not(P("x")), TypeError),  # type: ignore[arg-type]
    (lambda: Exists("x"), TypeError),  # type: ignore[arg-type]
    (lambda: Path(()), TypeError),
    (lambda: Path(("a", 1)), TypeError),  # type: ignore[arg-type]
    (lambda: Literal(float("nan")), PolicyError),
    (lambda: Literal(float("inf")), PolicyError),
    (lambda: Literal(10 ** 5000), PolicyError),
    (lambda: Literal({"a": 1}), TypeError),  # type: ignore[arg-type]
    (lambda: Literal(object()), TypeError),  # type: ignore[arg-type]
])
def test_constructors_refuse_what_the_parser_refuses(build: Any, error: type) -> None:
    """Hand-built trees obey the parser's static rules, so every tree prints and parses."""
    with pytest.raises(error):
        build()


def test_pickle_and_copy_keep_the_tree_and_drop_the_compiled_closure() -> None:
    """An evaluated tree still pickles; the copy is equal and evaluates the same."""
    tree = parse("accuracy > 0.9 and 'gpu' in tags")
    assert evaluate(tree, {"accuracy": 0.95, "tags": ["gpu"]})
    copy = pickle.loads(pickle.dumps(tree))
    assert copy == tree
    assert "_query" not in copy.__dict__
    assert evaluate(copy, {"accuracy": 0.95, "tags": ["gpu"]})


@pytest.mark.parametrize(("text", "expected"), [
    ("a.b > 1 and exists(c) or 'x' in d.`e f`", {"a.b", "c", "d.`e f`"}),
    ("x == x and not (y in [1])", {"x", "y"}),
    ("1 == 1", set()),
])
def test_paths(text: str, expected: set[str]) -> None:
    """paths() lists every metadata path the expression reads, in canonical text."""
    assert paths(parse(text)) == frozenset(expected)


# -- query semantics -------------------------------------------------------------------

CARD: dict[str, Any] = {
    "framework": "pytorch",
    "accuracy": 0.92,
    "f1_score": 0.88,
    "epochs": 10,
    "validated": True,
    "flag_str": "true",
    "count": 0,
    "note": None,
    "version": "1.2.0",
    "tags": ["gpu", "staging", 3],
    "matrix": [[1, 2], [3]],
    "hyperparameters": {"learning_rate": 0.001, "batch_size": 32,
                        "optimizer": {"name": "adam"}},
    "odd key": {"a-b": 1},
    "in": 5,
}

QUERIES = [
    ("accuracy > 0.9", True),
    ("accuracy >= 0.92", True),
    ("accuracy > 0.92", False),
    ("0.9 < accuracy", True),
    ("accuracy != 0.5", True),
    ("epochs == 10", True),
    ("epochs == 10.0", True),
    ("epochs < 10.5", True),
    ("framework == 'pytorch'", True),
    ('framework == "pytorch"', True),
    ("framework != 'jax'", True),
    ("framework < 'q'", True),
    ("version >= '1.10.0'", True),  # strings order by code point, not as versions
    ("framework > 1", False),
    ("accuracy < 'z'", False),
    ("validated == true", True),
    ("validated == True", True),
    ("validated == 1", False),
    ("validated != 1", True),
    ("validated > 0", False),
    ("count == false", False),
    ("count == 0", True),
    ("flag_str == true", False),
    ("note == null", True),
    ("note != null", False),
    ("exists(note)", True),
    ("note > 0", False),
    ("exists(missing)", False),
    ("not exists(missing)", True),
    ("missing == 1", False),
    ("missing != 1", False),
    ("missing == null", False),
    ("missing < 1", False),
    ("not (missing > 1)", True),
    ("missing in [1]", False),
    ("missing not in [1]", False),
    ("'a' in missing", False),
    ("hyperparameters.learning_rate <= 0.001", True),
    ("hyperparameters.batch_size == 32", True),
    ("hyperparameters.optimizer.name == 'adam'", True),
    ("hyperparameters.optimizer.missing == 'adam'", False),
    ("exists(hyperparameters.optimizer)", True),
    ("framework.sub == 1", False),
    ("tags.gpu == 1", False),
    ("`odd key`.`a-b` == 1", True),
    ("`in` == 5", True),
    ("'gpu' in tags", True),
    ("'cpu' in tags", False),
    ("'cpu' not in tags", True),
    ("3 in tags", True),
    ("3.0 in tags", True),
    ("true in tags", False),
    ("'torch' in framework", True),
    ("'Torch' in framework", False),
    ("1 in framework", False),
    ("1 not in framework", False),
    ("'learning_rate' in hyperparameters", True),
    ("'momentum' not in hyperparameters", True),
    ("'gpu' in accuracy", False),
    ("'gpu' not in accuracy", False),
    ("framework in ['pytorch', 'jax']", True),
    ("framework not in ['pytorch', 'jax']", False),
    ("framework not in ['sklearn']", True),
    ("epochs in [10.0, 20]", True),
    ("epochs not in [1, 2]", True),
    ("epochs in ['10']", False),
    ("validated in [1, 2]", False),
    ("validated not in [1, 2]", True),
    ("validated in [true]", True),
    ("count in [false, 'x']", False),
    ("note in [null]", True),
    ("tags in [['gpu', 'staging', 3]]", True),
    ("tags == ['gpu', 'staging', 3]", True),
    ("tags == ['gpu', 'staging', 3.0]", True),
    ("tags == ['gpu', 'staging', true]", False),
    ("tags == ['gpu', 'staging']", False),
    ("matrix == [[1, 2], [3]]", True),
    ("[1, 2] in matrix", True),
    ("hyperparameters == hyperparameters", True),
    ("accuracy > f1_score", True),
    ("framework > accuracy", False),
    ("framework in version", False),
    ("count in tags", False),
    ("1 == 1", True),
    ("'a' == 'b'", False),
    ("1 == 1.0", True),
    ("not framework == 'jax'", True),
    ("not not validated == true", True),
    ("framework == 'pytorch' or accuracy > 0.99 and epochs == 11", True),
    ("(framework == 'pytorch' or accuracy > 0.99) and epochs == 11", False),
    ("missing == 1 or framework == 'jax' or exists(tags)", True),
    ("missing == 1 or framework == 'jax' or exists(nothing)", False),
    ("exists(tags) and exists(note) and exists(`in`)", True),
    ("exists(tags) and exists(note) and exists(`out`)", False),
]


@pytest.mark.parametrize(("text", "expected"), QUERIES, ids=[q[0] for q in QUERIES])
def test_query_semantics(text: str, expected: bool) -> None:
    """evaluate() and compile_query() give the expected verdict; check() agrees unless
    the expression tests a missing field under ``not`` (a rule then fails closed)."""
    tree = parse(text)
    assert evaluate(tree, CARD) is expected
    assert compile_query(tree)(CARD) is expected
    failures = check(tree, CARD)
    if any(f.missing and "(required by: not " in f.message for f in failures):
        assert expected and text.startswith("not ")
    else:
        assert (failures == ()) is expected
    assert evaluate(tree, freeze(CARD)) is expected  # Kirin hands out frozen metadata


def test_evaluate_accepts_any_mapping_but_not_other_things() -> None:
    """A non-dict Mapping is read like a dict; a non-mapping is a TypeError."""
    from types import MappingProxyType

    tree = parse("x == 1")
    assert evaluate(tree, MappingProxyType({"x": 1}))
    assert check(tree, MappingProxyType({"x": 1})) == ()
    with pytest.raises(TypeError):
        evaluate(tree, [("x", 1)])  # type: ignore[arg-type]


# -- rule semantics --------------------------------------------------------------------

RULES: list[tuple[str, list[tuple[str, Any, bool, str]]]] = [
    ("accuracy >= 0.9", []),
    ("accuracy >= 0.95",
     [("accuracy", 0.92, False, "accuracy is 0.92, expected accuracy >= 0.95")]),
    ("0.95 <= accuracy",
     [("accuracy", 0.92, False, "accuracy is 0.92, expected 0.95 <= accuracy")]),
    ("validated_by == 'qa'",
     [("validated_by", None, True,
       "metadata field 'validated_by' is missing (required by: validated_by == 'qa')")]),
    ("hyperparameters.momentum > 0",
     [("hyperparameters.momentum", None, True, "metadata field 'hyperparameters.momentum' "
       "is missing (required by: hyperparameters.momentum > 0)")]),
    ("missing != 1",
     [("missing", None, True, "metadata field 'missing' is missing (required by: missing != 1)")]),
    ("x == y",
     [("x", None, True, "metadata fields 'x' and 'y' are missing (required by: x == y)")]),
    ("framework >= 0.9",
     [("framework", "pytorch", False,
       "framework is 'pytorch' (a string), expected a number for framework >= 0.9")]),
    ("epochs < 'z'",
     [("epochs", 10, False, "epochs is 10 (a number), expected a string for epochs < 'z'")]),
    ("validated > 0",
     [("validated", True, False,
       "validated is true (a boolean), expected a number for validated > 0")]),
    ("note > 0",
     [("note", None, False, "note is null (null), expected a number for note > 0")]),
    ("accuracy > framework",
     [("framework", "pytorch", False,
       "framework is 'pytorch' (a string), expected a number for accuracy > framework")]),
    ("tags > accuracy",
     [("tags", ["gpu", "staging", 3], False, "tags is ['gpu', 'staging', 3] (a list), "
       "expected a number for tags > accuracy")]),
    ("accuracy > tags",
     [("tags", ["gpu", "staging", 3], False, "tags is ['gpu', 'staging', 3] (a list), "
       "expected a number for accuracy > tags")]),
    ("tags <= hyperparameters",
     [("tags", ["gpu", "staging", 3], False, "tags is ['gpu', 'staging', 3] (a list), "
       "expected a number or a string for tags <= hyperparameters")]),
    ("flag_str == true",
     [("flag_str", "true", False, "flag_str is 'true' (a string), expected flag_str == true")]),
    ("validated == false",
     [("validated", True, False, "validated is true, expected validated == false")]),
    ("hyperparameters.optimizer.name == 'sgd'",
     [("hyperparameters.optimizer.name", "adam", False,
       "hyperparameters.optimizer.name is 'adam', expected "
       "hyperparameters.optimizer.name == 'sgd'")]),
    ("`odd key`.`a-b` == 2",
     [("`odd key`.`a-b`", 1, False, "`odd key`.`a-b` is 1, expected `odd key`.`a-b` == 2")]),
    ("'prod' in tags",
     [("tags", ["gpu", "staging", 3], False,
       "tags is ['gpu', 'staging', 3], expected 'prod' in tags")]),
    ("'gpu' not in tags",
     [("tags", ["gpu", "staging", 3], False,
       "tags is ['gpu', 'staging', 3], expected 'gpu' not in tags")]),
    ("framework in ['jax', 'tf']",
     [("framework", "pytorch", False,
       "framework is 'pytorch', expected framework in ['jax', 'tf']")]),
    ("'x' in accuracy",
     [("accuracy", 0.92, False, "accuracy is 0.92 (a number), expected a list, a string "
       "or an object for 'x' in accuracy")]),
    ("epochs in framework",
     [("epochs", 10, False, "epochs is 10 (a number), expected a string for "
       "epochs in framework")]),
    ("5 not in framework",
     [("framework", "pytorch", False, "framework is 'pytorch' (a string), expected a list "
       "for 5 not in framework")]),
    ("1 == 2", [("", None, False, "1 == 2 is false")]),
    ("5 in 'abc'", [("", None, False, "5 in 'abc' compares a number with a string")]),
    ("not (accuracy > 0.9)",
     [("accuracy", 0.92, False, "accuracy is 0.92, expected not accuracy > 0.9")]),
    ("not exists(note)",
     [("note", None, False, "note is null, expected not exists(note)")]),
    ("not (missing > 1)",
     [("missing", None, True,
       "metadata field 'missing' is missing (required by: not missing > 1)")]),
    ("not (framework == 'pytorch' and epochs == 10)",
     [("", None, False, "framework is 'pytorch', epochs is 10, expected "
       "not (framework == 'pytorch' and epochs == 10)")]),
    ("not (1 == 1)", [("", None, False, "1 == 1 holds, expected not 1 == 1")]),
    ("accuracy > 0.95 and exists(owner) and framework == 'pytorch' and epochs < 5",
     [("accuracy", 0.92, False, "accuracy is 0.92, expected accuracy > 0.95"),
      ("owner", None, True, "metadata field 'owner' is missing (required by: exists(owner))"),
      ("epochs", 10, False, "epochs is 10, expected epochs < 5")]),
    ("a == 1 and (b == 2 and c == 3)",
     [("a", None, True, "metadata field 'a' is missing (required by: a == 1)"),
      ("b", None, True, "metadata field 'b' is missing (required by: b == 2)"),
      ("c", None, True, "metadata field 'c' is missing (required by: c == 3)")]),
    ("epochs == 1 or epochs == 2",
     [("epochs", 10, False, "none of the alternatives of epochs == 1 or epochs == 2 "
       "holds: epochs is 10, expected epochs == 1; epochs is 10, expected epochs == 2")]),
    ("exists(owner) or exists(maintainer)",
     [("", None, True, "none of the alternatives of exists(owner) or exists(maintainer) "
       "holds: metadata field 'owner' is missing (required by: exists(owner)); "
       "metadata field 'maintainer' is missing (required by: exists(maintainer))")]),
    ("epochs == 1 or exists(owner)",
     [("", None, False, "none of the alternatives of epochs == 1 or exists(owner) holds: "
       "epochs is 10, expected epochs == 1; metadata field 'owner' is missing "
       "(required by: exists(owner))")]),
    ("epochs == 10 or exists(owner)", []),
]


@pytest.mark.parametrize(("text", "expected"), RULES, ids=[r[0] for r in RULES])
def test_rule_semantics(text: str, expected: list[tuple[str, Any, bool, str]]) -> None:
    """check() reports exactly the expected failures: path, value, missing flag, message."""
    failures = check(parse(text), CARD)
    assert [(f.path, f.value, f.missing, f.message) for f in failures] == expected
    assert all(isinstance(f, Failure) for f in failures)
    if not any(f.missing for f in failures):  # a missing field: the query just skips it
        assert evaluate(parse(text), CARD) is (not expected)


def test_failure_expected_names_the_failing_sub_expression() -> None:
    """Each failure's expected text is the canonical text of the part that failed."""
    failures = check(parse("accuracy>=0.95 and (framework=='jax' or epochs<5)"), CARD)
    assert [f.expected for f in failures] == [
        "accuracy >= 0.95", "framework == 'jax' or epochs < 5"]
    assert [c.expected for c in failures[1].causes] == ["framework == 'jax'", "epochs < 5"]
    assert str(failures[0]) == failures[0].message


def test_failures_are_immutable_and_hashable_even_for_list_values() -> None:
    """A failure whose value is a list is still a frozen, hashable value."""
    (failure,) = check(parse("'prod' in tags"), {"tags": ["a"]})
    assert hash(failure) == hash(failure)
    with pytest.raises(TypeError):
        failure.value.append("b")


def test_long_values_are_shortened_in_messages() -> None:
    """A huge metadata value is cut in the message but kept whole in .value."""
    (failure,) = check(parse("notes == 'short'"), {"notes": "x" * 1000})
    assert len(failure.message) < 200 and "..." in failure.message
    assert failure.value == "x" * 1000


# -- property tests --------------------------------------------------------------------

KEYWORD_NAMES = ["and", "or", "not", "in", "exists", "true", "True", "null", "None"]
segments = st.text(max_size=6) | st.sampled_from(KEYWORD_NAMES)
any_paths = st.lists(segments, min_size=1, max_size=3).map(lambda s: Path(tuple(s)))
scalars = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
literal_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(tuple),
                              max_leaves=6)


def _maybe(node: type[Expr], *args: Any) -> Expr | None:
    """Build a node, or None where the static rules refuse the combination."""
    try:
        return node(*args)
    except PolicyError:
        return None


def trees(path_strategy: st.SearchStrategy[Path],
          value_strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Expr]:
    """Random condition trees over the given paths and literal values."""
    operands = path_strategy | value_strategy.map(Literal)
    compares = st.builds(_maybe, st.just(Compare), operands,
                         st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), operands)
    memberships = st.builds(_maybe, st.just(In), operands, operands, st.booleans())
    leaves = (compares | memberships).filter(lambda n: n is not None) | st.builds(
        Exists, path_strategy)

    def combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        several = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.builds(Not, children) | several.map(And) | several.map(Or)

    return st.recursive(leaves, combine, max_leaves=8)  # type: ignore[arg-type]


def _nesting(node: Node) -> int:
    """Nesting depth of the canonical text (what MAX_DEPTH limits)."""
    if isinstance(node, Literal):
        def depth(v: Any) -> int:
            return 1 + max((depth(x) for x in v), default=0) if isinstance(v, tuple) else 0
        return depth(node.value)
    if isinstance(node, Compare):
        return max(_nesting(node.left), _nesting(node.right))
    if isinstance(node, In):
        return max(_nesting(node.item), _nesting(node.container))
    if isinstance(node, Not):
        return 1 + _nesting(node.operand)
    if isinstance(node, And | Or):
        return 1 + max(_nesting(o) for o in node.operands)
    return 0


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(any_paths, literal_values))
def test_printed_trees_parse_back_to_themselves(tree: Expr) -> None:
    """For generated trees, parse(str(e)) == e and printing is a fixed point."""
    assume(_nesting(tree) <= MAX_DEPTH and len(str(tree)) <= MAX_LENGTH)
    text = str(tree)
    assert parse(text) == tree
    assert str(parse(text)) == text


KEYS = ["a", "b", "c"]
small_scalars = (st.none() | st.booleans() | st.integers(-2, 2)
                 | st.sampled_from([0.5, -1.0, 2.0]) | st.sampled_from(["", "a", "ab", "b"]))
json_values = st.recursive(
    small_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                max_size=3),
    max_leaves=8)
metadata_dicts = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3)
small_paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(
    lambda s: Path(tuple(s)))
small_literals = st.recursive(small_scalars,
                              lambda inner: st.lists(inner, max_size=3).map(tuple),
                              max_leaves=4)


def _has_not(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    return isinstance(node, And | Or) and any(_has_not(o) for o in node.operands)


@settings(max_examples=250, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(small_paths, small_literals), metadata_dicts)
def test_query_and_rule_semantics_agree(tree: Expr, metadata: dict[str, Any]) -> None:
    """A rule that holds is a query that matches; with every field present, or no
    ``not``, the two verdicts are equal (they differ only where a rule fails closed)."""
    verdict = evaluate(tree, metadata)
    assert isinstance(verdict, bool)
    failures = check(tree, metadata)
    if failures == ():
        assert verdict
    if all(lookup(metadata, p.segments) is not MISSING for p in _iter_paths(tree)) or (
            not _has_not(tree)):
        assert (failures == ()) is verdict
    for failure in failures:
        assert failure.message and failure.expected
        assert failure.path == "" or failure.path in paths(tree)


@given(trees(small_paths, small_literals), st.dictionaries(st.text(max_size=3), json_values))
def test_evaluation_never_raises_on_odd_metadata(tree: Expr, metadata: dict[str, Any]) -> None:
    """Whatever the metadata holds, evaluation and checking return instead of raising."""
    evaluate(tree, metadata)
    check(tree, metadata)


# -- safety: hostile input never runs code -----------------------------------------------

_WATCHING: list[list[str]] = []
_SUSPICIOUS = ("exec", "compile", "import", "open", "os.", "subprocess.", "shutil.",
               "socket.", "ctypes.", "builtins.", "code.", "pty.", "webbrowser.",
               "urllib.", "http.", "glob.", "pickle.", "marshal.", "sys._getframe")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Record side-effecting interpreter events while a test is watching."""
    if _WATCHING and event.startswith(_SUSPICIOUS):
        _WATCHING[-1].append(event)


sys.addaudithook(_audit)  # inert unless a test is inside no_side_effects()


@contextmanager
def no_side_effects() -> Iterator[None]:
    """Fail if the block compiles or executes code, imports, opens files or spawns."""
    seen: list[str] = []
    _WATCHING.append(seen)
    try:
        yield
    finally:
        _WATCHING.pop()
    assert seen == [], f"side effects while handling an expression: {seen}"


def test_the_audit_watch_does_catch_code_execution() -> None:
    """The watch used below does notice eval and open (so its silence means something)."""
    with pytest.raises(AssertionError, match="side effects"), no_side_effects():
        eval("1")
    with pytest.raises(AssertionError, match="side effects"), no_side_effects():
        open(__file__).close()


SAMPLE = {"a": 1, "b": "x", "c": [1, "x"], "__class__": {"__globals__": 1}}


def _parse_hostile(text: str) -> None:
    """Parse (and if it parses, print, evaluate and check) under the watch."""
    with no_side_effects():
        try:
            tree = parse(text)
        except ExpressionSyntaxError as error:
            assert error.column is not None
            assert 1 <= error.column <= max(len(text), MAX_LENGTH) + 1
            return
        assert parse(str(tree)) == tree
        evaluate(tree, SAMPLE)
        check(tree, SAMPLE)


HOSTILE = [
    "__import__('os').system('touch {sentinel}')",
    "__import__(\"os\").system(\"touch {sentinel}\") == 0",
    "exec(\"open('{sentinel}', 'w')\")",
    "eval('open(\\'{sentinel}\\', \\'w\\')') == 1",
    "open('{sentinel}', 'w') == 1",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__.__init__.__globals__ == 1",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "lambda: __import__('os').system('touch {sentinel}')",
    "__builtins__.open('{sentinel}', 'w') == 1",
    "x == 1 or __import__('os')",
    "x in __import__('os').listdir('.')",
    "'{{0.__class__}}'.format(x) == 1",
    "x == f'{{__import__(\"os\").system(\"touch {sentinel}\")}}'",
    "`__import__('os').system('touch {sentinel}')` == 1",
    "x == '\\x00' ; import os",
    "$(touch {sentinel}) == 1",
    "x == 1; __import__('os').system('touch {sentinel}')",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_expressions_never_execute(template: str, tmp_path: FsPath) -> None:
    """Code-shaped input is a syntax error or a plain key lookup; nothing runs."""
    sentinel = tmp_path / "sentinel"
    _parse_hostile(template.format(sentinel=sentinel))
    assert not sentinel.exists()


PIECES = ["__import__", "('os')", ".system", "('x')", "exec", "eval", "(", ")", "[", "]",
          "{", "}", ".", ",", "'", '"', "`", "\\", "__class__", "__subclasses__", "lambda",
          ":", "x", "y.z", "1", "-1e5", "0.5", "'s'", '"t"', "and", "or", "not", "in",
          "exists", "true", "None", "==", "!=", ">=", "<", "=", ";", "\n", " ", "\x00", "#",
          "@", "*", "**", "import os", "f'", "\\u", "\\x41", "\ud800", "é"]
hostile_texts = (st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
                 | st.text(max_size=200)
                 | st.text(alphabet="()[]'\"`\\.,=<>!not andor1x", max_size=300))


@settings(max_examples=400, deadline=1000)
@given(hostile_texts)
def test_random_input_parses_or_raises_a_syntax_error_only(text: str) -> None:
    """Random and hostile strings parse to a value or raise ExpressionSyntaxError, nothing else."""
    _parse_hostile(text)


@settings(max_examples=30, deadline=2000)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=5).map("".join),
       st.integers(1_000, 20_000))
def test_very_long_input_is_bounded(piece: str, repeat: int) -> None:
    """Long repeated input is handled (usually refused) in well under a second."""
    text = (piece * repeat)[:20_000]
    start = time.perf_counter()
    _parse_hostile(text)
    assert time.perf_counter() - start < 10.0  # no blow-up (a bound, not a speed figure)


_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "getattr", "setattr",
                    "delattr", "globals", "locals", "vars", "open", "breakpoint", "input"}
_ALLOWED_IMPORTS = {"__future__", "re", "math", "operator", "dataclasses", "typing",
                    "collections.abc"}


def _module_sources() -> list[FsPath]:
    folder = FsPath(expr_module.__file__).parent
    return [folder / "expr.py", *sorted(folder.glob("_expr_*.py"))]


@pytest.mark.parametrize("source", _module_sources(), ids=lambda p: p.name)
def test_implementation_has_no_dynamic_execution(source: FsPath) -> None:
    """The language's modules call no eval/exec/compile/getattr and import nothing risky."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in _FORBIDDEN_CALLS, f"{source.name}: {node.func.id}()"
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= _ALLOWED_IMPORTS, source.name
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module in _ALLOWED_IMPORTS, f"{source.name}: {node.module}"
