"""The layering of the package, enforced: who may import whom.

::

    cli                      typer + rich; one library call per command
      │
    dataset, catalog         the facade: orchestrates, owns no format
      │
    policy    history        pure: no storage, no fsspec (policy: never the store)
      │         │
      └─ store ─┘            the only layer that imports fsspec at run time

Imports are read from the source (``ast``): an import under ``if TYPE_CHECKING:``
is for annotations only and does not count; an import inside a function
(a lazy import) counts, because it runs. ``import kirin`` itself must stay
light: none of the heavy or optional libraries are loaded by it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kirin"

#: Modules of the storage layer: the only ones allowed to import fsspec when they run.
STORAGE = {"kirin.store", "kirin.backends", "kirin.s3", "kirin.asyncfs", "kirin.sources",
           "kirin.creates", "kirin.urlfs"}
#: What each part of the package must never import (prefixes match submodules).
FORBIDDEN: dict[str, set[str]] = {
    "kirin.policy": {"kirin.store", "kirin.backends", "kirin.logs", "kirin.journal",
                     "kirin.policylog", "kirin.gc", "kirin.verify", "kirin.dataset",
                     "kirin.catalog", "kirin.cli", "kirin.inputs"},
    "kirin.history": {"kirin.store", "kirin.backends", "kirin.logs", "kirin.journal",
                      "kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                      "kirin.inputs"},
    "kirin.records": {"kirin.store", "kirin.backends", "kirin.logs", "kirin.journal",
                      "kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                      "kirin.inputs", "kirin.history", "kirin.values"},
    # lineage links as values and their stored form: pure, below records
    "kirin.links": {"kirin.store", "kirin.backends", "kirin.logs", "kirin.journal",
                    "kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                    "kirin.inputs", "kirin.history", "kirin.values", "kirin.records",
                    "kirin.lineage"},
    # the lineage index reads and writes objects; it knows nothing of datasets or policy
    "kirin.lineageindex": {"kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                           "kirin.lineage"},
    # the facade's lineage queries: notebook display (kirin.ui.notebook) as for Commit, no
    # command line or web server
    "kirin.lineage": {"kirin.cli", "kirin.ui.app", "kirin.ui.server", "kirin.ui.data"},
    "kirin.values": {"kirin.store", "kirin.backends", "kirin.dataset", "kirin.catalog",
                     "kirin.cli", "kirin.policy", "kirin.history"},
    # the catalog's markers: objects under the root, below the facade that writes datasets
    "kirin.markers": {"kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                      "kirin.history", "kirin.journal", "kirin.gc", "kirin.lineage"},
    "kirin.layout": {"kirin"},
    "kirin.errors": {"kirin"},
    "kirin.store": {"kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                    "kirin.history", "kirin.journal", "kirin.logs", "kirin.policylog",
                    "kirin.gc", "kirin.verify", "kirin.inputs"},
    "kirin.logs": {"kirin.dataset", "kirin.catalog", "kirin.cli", "kirin.policy",
                   "kirin.history", "kirin.journal", "kirin.policylog"},
}
#: Libraries only the command line uses.
CLI_ONLY = {"typer", "rich", "click"}
#: The web stack of ``kirin ui`` (the ``kirin[ui]`` extra), and the only modules importing it:
#: the notebook display and the rest of ``kirin.ui`` work without it.
WEB = {"starlette", "jinja2", "uvicorn", "markupsafe"}
WEB_MODULES = {"kirin.ui.app", "kirin.ui.server"}
#: What ``import kirin`` must not load.
HEAVY = ["pydantic", "jsonschema", "yaml", "referencing", "s3fs", "gcsfs", "adlfs", "typer",
         "rich", "botocore", "aiohttp", "fsspec", "cryptography", "bcrypt", "matplotlib",
         *sorted(WEB)]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs (absolute names; TYPE_CHECKING excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for sub in ast.iter_child_nodes(node):
            visit(sub)

    visit(tree)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_respects_the_layers(module: str) -> None:
    """No module imports what its layer must not depend on."""
    imports = runtime_imports(MODULES[module])
    broken = []
    for owner, forbidden in FORBIDDEN.items():
        if not _matches(module, owner):
            continue
        for name in imports:
            for banned in forbidden:
                if _matches(name, banned) and not _matches(name, owner):
                    broken.append(f"{name} (forbidden in {owner})")
    if module not in STORAGE:
        broken += [f"{n} (only {sorted(STORAGE)} import fsspec at run time)"
                   for n in imports if _matches(n, "fsspec")]
    if not _matches(module, "kirin.cli"):
        broken += [f"{n} (command-line only)" for n in imports
                   if any(_matches(n, lib) for lib in CLI_ONLY)]
    if module not in WEB_MODULES:
        broken += [f"{n} (only {sorted(WEB_MODULES)} import the web stack)" for n in imports
                   if any(_matches(n, lib) for lib in WEB)]
    assert not broken, f"{module} imports: {', '.join(sorted(set(broken)))}"


def test_the_contract_is_not_vacuous() -> None:
    """The checker sees imports at module level, in functions, and relative ones, and
    leaves out TYPE_CHECKING blocks."""
    assert "kirin.store" in runtime_imports(SRC / "journal.py")
    assert "fsspec" in runtime_imports(SRC / "store.py")
    assert "kirin.policy" in runtime_imports(SRC / "dataset.py")  # lazy, in a function
    assert "kirin.policy.Policy" not in runtime_imports(SRC / "policylog.py")  # TYPE_CHECKING
    assert "kirin.errors" in runtime_imports(SRC / "policy" / "gate.py")  # from ..errors
    assert "starlette.applications" in runtime_imports(SRC / "ui" / "app.py")
    assert "kirin.ui.server" in runtime_imports(SRC / "cli" / "ui.py")  # lazy, in the command


def test_import_kirin_stays_light() -> None:
    """``import kirin`` loads none of the heavy or optional libraries (a fresh process)."""
    code = ("import sys, kirin; print(','.join(m for m in sys.argv[1:] "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == ""


#: Reading a local registry: opening it, its history, a tag or ``where=`` query.
READ_LOCALLY = """
import sys
from kirin import Dataset
ds = Dataset(sys.argv[1], "ds")
ds.commit("one", add_files={"a.txt": sys.argv[2]}, metadata={"accuracy": 0.5},
          tags=["dev"])
for name in [m for m in sys.modules if m.split(".")[0] in {"fsspec", "pydantic"}]:
    del sys.modules[name]  # committing may load them: reading afresh must not
ds = Dataset(sys.argv[1], "ds")
assert ds.current_commit is not None and len(ds.history(limit=10)) == 1
assert ds.find_commits(tags=["dev"]) and ds.find_commits(where="accuracy > 0.4")
print(",".join(m for m in sys.argv[3:] if m in sys.modules))
"""


def test_reading_a_local_registry_loads_neither_fsspec_nor_the_policy_model(
        tmp_path: Path) -> None:
    """Issue 16: importing fsspec costs more than opening 1,000 commits, and a ``where=``
    query needs the expression language only, not pydantic and jsonschema."""
    (tmp_path / "a.txt").write_text("a")
    heavy = ["fsspec", "pydantic", "jsonschema", "kirin.policy.model", "kirin.policy.gate"]
    done = subprocess.run([sys.executable, "-c", READ_LOCALLY, str(tmp_path / "reg"),
                           str(tmp_path / "a.txt"), *heavy], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""


#: Runs the command line as the ``kirin`` script does, then prints which of argv[1]
#: (comma-separated) it loaded, on stderr; the command's own arguments follow.
CLI_LOADS = """
import atexit, sys
watched = sys.argv.pop(1).split(",")
atexit.register(lambda: print("loaded:" + ",".join(m for m in watched if m in sys.modules),
                              file=sys.stderr))
from kirin.cli import main
main()
"""
#: What ``kirin --help`` and ``kirin log`` must not load (issue 16): typer's pydantic-based
#: argument conversion and the policy model (pydantic, jsonschema), PyYAML for a plain
#: kirin.yaml, fsspec for a local registry, the expression language without --where or
#: --columns, progress bars off a terminal, what only other commands run.
NOT_FOR_LOG = ["pydantic", "jsonschema", "yaml", "fsspec", "kirin.policy", "rich.progress",
               "kirin.lineage", "kirin.lineageindex", "kirin.verify", "kirin.export"]


@pytest.mark.parametrize("args", [["--help"], ["log"], ["log", "-n", "5", "-f", "json"],
                                  ["policy", "--help"]])
def test_help_and_log_load_neither_pydantic_nor_jsonschema(tmp_path: Path,
                                                           args: list[str]) -> None:
    """Issue 16: importing them costs more than the rest of ``kirin log``; a small
    governed registry found through its kirin.yaml, as a user runs it."""
    from kirin import Dataset

    (tmp_path / "policy.yaml").write_text("version: 1\ntags:\n  allowed: [dev]\n")
    (tmp_path / "model.pt").write_bytes(b"weights")
    dataset = Dataset(tmp_path / "reg", "models")
    dataset.set_policy(tmp_path / "policy.yaml")
    dataset.commit("baseline", add_files=[str(tmp_path / "model.pt")], tags=["dev"])
    (tmp_path / "kirin.yaml").write_text("root: reg\ndataset: models\n")
    done = subprocess.run([sys.executable, "-c", CLI_LOADS, ",".join(NOT_FOR_LOG), *args],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "baseline" in done.stdout or "Usage" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "loaded:"
