r"""The expression language of promotion rules and queries.

One small language serves ``promotion`` conditions in a policy file and
queries such as ``find_commits(where="accuracy > 0.9 and framework ==
'pytorch'")``. Text is parsed once into immutable values; evaluating them
never calls ``eval``, imports nothing, reads no attributes: a path can only
look up keys of the metadata dicts.

Syntax
------
Examples first::

    accuracy >= 0.9 and framework == 'pytorch'
    hyperparameters.learning_rate <= 1e-3 or not exists(hyperparameters)
    framework in ['pytorch', 'jax'] and 'production' not in tags
    metrics.`f1-score` > 0.8 and `odd key`.value != null

* comparisons ``==  !=  <  <=  >  >=``; membership ``in`` and ``not in``;
  ``exists(path)``, the only call-like form (it is syntax, not a call);
  ``not``, ``and``, ``or`` (binding in that order, tightest first, below the
  comparisons, as in Python); parentheses group conditions.
* paths: dot-separated segments, each an identifier ``[A-Za-z_][A-Za-z0-9_]*``
  that is not a keyword. Any other key (spaces, dashes, dots, non-ASCII, a
  keyword such as ``in``) is written in backticks, which take the same escapes
  as strings: ``metrics.`f1-score```, ``hp.`lr\`s``` (key ``lr`s``).
* strings: ``'...'`` or ``"..."`` with escapes ``\\``, ``\'``, ``\"``,
  ``\```, ``\n``, ``\r``, ``\t``, ``\uXXXX``, ``\UXXXXXXXX``; any other
  escape is an error.
* numbers: ``3``, ``-2``, ``0.5``, ``1e-3``, ``-1.5E+2``. Not accepted:
  ``.5``, ``1.``, ``1_000``, hex; ``-`` is only a sign (no arithmetic).
* constants: ``true``/``false`` (also ``True``/``False``), ``null`` (also
  ``None``).
* lists: ``[1, 'a', [true]]``, of literals only; a trailing comma is allowed.

A condition is a comparison, a membership test, ``exists(...)``, or those
combined with ``not``/``and``/``or``. A bare field is not a condition: write
``validated == true`` (strict, see below) or ``exists(validated)``.

Decisions
---------
* **Chained comparisons** (``0.8 < accuracy < 0.9``) are rejected with a
  message asking for ``and``: their Python meaning surprises as often as it
  helps, and one form is easier to read in a policy.
* **Statically wrong comparisons** are syntax errors: ordering against
  ``true``/``null``/a list, ordering a number constant against a string
  constant, ``in`` with a number/bool/null on its right.
* **Missing fields** fail closed in a rule and simply do not match in a
  query. In a query (:func:`evaluate`) a comparison or membership test
  involving a path that does not exist is false (``x != 1``, ``x not in
  [...]`` included) and ``not`` is plain negation, so ``not (x > 1)``
  matches metadata without ``x``. In a rule (:func:`check`) that test is
  *unknown*, and logic is three-valued: ``not`` keeps unknown unknown,
  ``and`` is false if any operand is false, else unknown if any is;
  ``or`` is true if any operand is true, else unknown if any is. A rule
  holds only when it is true, so ``not (x > 1)`` is a violation that says
  ``x`` is missing, while ``not exists(x) or x > 1``, ``exists(x) and x > 1``
  (false, by ``exists``) and ``x > 1 or y > 1`` with ``y`` = 2 are decided
  without ``x``. ``exists()`` is never unknown. A stored ``null`` is a
  value: ``exists(x)`` and ``x == null`` are true for it.
* **Types**: booleans are not numbers (``true == 1`` is false, ``true > 0``
  is a syntax error, ``flag > 0`` with a boolean ``flag`` is false); ints and
  floats compare numerically (``1 == 1.0``). ``< <= > >=`` order two numbers
  or two strings (by code point); any other pair is a type mismatch, which is
  false. ``==``/``!=`` never mismatch: differing types are simply unequal.
* ``in`` is Python's: element of a list (strict equality), substring of a
  string, key of an object; an item that cannot be in the container (a number
  in a string, anything in a number) is a type mismatch, false for ``in`` and
  for ``not in`` alike.
* **Limits**: at most :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH`
  levels of parentheses/``not``/lists, checked before recursion can grow, so
  hostile input raises ExpressionSyntaxError, never RecursionError.
* **Columns** are 1-based character offsets into the expression text (a
  multi-line YAML expression counts its newlines as characters).

Two semantics
-------------
* :func:`evaluate` / :func:`compile_query` (queries): a plain ``bool``; never
  raises on odd metadata.
* :func:`check` (rules): a tuple of :class:`Failure` values saying what does
  not hold and why, empty when the rule holds. Its verdict equals the query
  verdict whenever every path the expression reads exists; with a field
  missing, a rule may fail where the query matches (never the other way).

``to_text(e)`` (also ``str(e)``) prints canonical text with
``parse(to_text(e)) == e``: single spaces, single quotes, ``true``/``null``,
backticks only where needed, and parentheses only where the tree needs them
(so ``not (x > 1)`` prints as ``not x > 1``, which is what it means). The
printed text is never nested deeper than the parsed one, so everything that
parses prints to something that parses. :func:`paths` lists the metadata
paths an expression reads, in the same canonical form; :class:`Failure`
``.path`` uses it too (``hyperparameters.learning_rate``, ``metrics.`f1-score```).
"""

from __future__ import annotations

from ._expr_eval import Failure, Query, check, compile_query, evaluate, paths
from ._expr_nodes import (
    And,
    Compare,
    Exists,
    Expr,
    In,
    Literal,
    LiteralValue,
    Node,
    Not,
    Operand,
    Or,
    Path,
    to_text,
)
from ._expr_parse import MAX_DEPTH, MAX_LENGTH, parse

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Compare",
    "Exists",
    "Expr",
    "Failure",
    "In",
    "Literal",
    "LiteralValue",
    "Node",
    "Not",
    "Operand",
    "Or",
    "Path",
    "Query",
    "check",
    "compile_query",
    "evaluate",
    "parse",
    "paths",
    "to_text",
]
