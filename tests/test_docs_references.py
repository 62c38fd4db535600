"""Every test that docs/reliability.md names as the proof of a guarantee exists.

The page is a list of promises, each backed by tests named ``file::test``
(``::test`` alone continues the file named before it on the same line). A
renamed or moved test would otherwise leave a promise that nothing checks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "reliability.md"
_REF = re.compile(r"`((?:tests/)?[\w/]*test_\w+\.py)?((?:::[\w*\[\]-]+)*)`")


def references() -> list[tuple[int, str, tuple[str, ...], str]]:
    """(line, test file, names inside it, class of the reference before) for each one.

    ``::name`` after ``file::Class::test`` may mean ``Class::name``: the class
    of the reference before is kept to look there too.
    """
    found = []
    for number, line in enumerate(PAGE.read_text(encoding="utf-8").splitlines(), 1):
        current: str | None = None
        context = ""
        for match in _REF.finditer(line):
            file, names = match.group(1), match.group(2)
            if file:
                current, context = file.removeprefix("tests/"), ""
            if current is None or (not file and not names):
                continue
            parts = tuple(p.split("[")[0] for p in names.split("::") if p)
            found.append((number, current, parts, context))
            if len(parts) > 1:
                context = parts[0]
    return found


def defined_names(path: Path) -> dict[str, set[str]]:
    """Module-level names and, for each class, its method names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[""].add(node.name)
        elif isinstance(node, ast.ClassDef):
            names[""].add(node.name)
            names[node.name] = {n.name for n in node.body
                                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            for base in node.bases:  # tests inherited from a contract class
                if isinstance(base, ast.Name) and base.id in names:
                    names[node.name] |= names[base.id]
        elif isinstance(node, ast.Assign):  # e.g. TestX = Machine.TestCase
            names[""].update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


REFERENCES = references()


def test_the_page_names_tests() -> None:
    assert len(REFERENCES) > 50


@pytest.mark.parametrize(("line", "file", "names", "context"), REFERENCES,
                         ids=[f"line{n}-{f}-{'.'.join(p)}" for n, f, p, _ in REFERENCES])
def test_a_named_test_exists(line: int, file: str, names: tuple[str, ...],
                             context: str) -> None:
    path = REPO / "tests" / file
    assert path.is_file(), f"docs/reliability.md:{line} names {file}, which does not exist"
    defined = defined_names(path)
    if not names:
        return
    if len(names) == 1 and names[0] not in defined[""] and context:
        names = (context, *names)  # `::name` continuing `file::Class::test`
    owner, *rest = names
    assert owner == "*" or owner in defined[""], (
        f"docs/reliability.md:{line} names {file}::{owner}, which does not exist")
    for name in rest:
        assert name == "*" or name in defined.get(owner, set()), (
            f"docs/reliability.md:{line} names {file}::{owner}::{name}, which does not exist")
