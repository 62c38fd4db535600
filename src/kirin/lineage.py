"""Lineage across datasets: resolving links, judging linked commits, walking the graph.

A commit's links (:mod:`kirin.links`) name commits of other datasets by full
hash. This module does the I/O around them, for :class:`~kirin.dataset.Dataset`:

* :meth:`Linker.resolve` turns ``{"training": "churn_data@v3"}`` into links,
  refusing (before anything is written) a dataset or commit that does not
  exist or whose record is not sound;
* :meth:`Linker.state` says what a linked commit is *now* in its dataset —
  the tags and stages of its version, its withdrawals — which the lineage
  rules of a policy judge, at commit time and again in every ``audit``;
* :meth:`Linker.upstream` walks what a commit came from, transitively;
  :func:`used_by` what came from it, transitively, over a whole root.

A *version* of a dataset is a commit together with its promotions: the
commits it was promoted from and to hold the same files and metadata, so a
model trained on ``churn_data@3f9a2c1b`` used the data that ``churn_data@approved``
(a promotion of it) names, and a withdrawal of either retires both.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .arguments import text_argument
from .errors import (
    CommitNotFoundError,
    CorruptObjectError,
    DanglingLinkError,
    DatasetNotFoundError,
    InvalidInputError,
    KirinError,
)
from .links import (
    Lineage,
    Link,
    LinkedState,
    Linking,
    LinkSpec,
    plain_ref_argument,
)

if TYPE_CHECKING:
    from .dataset import Dataset
    from .lineageindex import Row
    from .store import Store
    from .values import Commit
    from .verify import VerifyReport

#: ``(root or "", dataset name) -> Dataset``: how a linker opens a linked dataset.
Opener = Callable[[str, str], "Dataset"]
#: How deep an upstream walk goes before it stops (links are acyclic; this bounds a tree
#: that is merely very deep).
MAX_DEPTH = 64
Key = tuple[str, str, str]  # (root or "", dataset, commit hash)


class _Versions:
    """One dataset's commits grouped into versions (a commit and its promotions)."""

    def __init__(self, dataset: Dataset) -> None:
        history = dataset._history
        self.history = history
        self.commits = history.commits()
        group: dict[str, str] = {}

        def find(digest: str) -> str:
            while group.get(digest, digest) != digest:
                digest = group[digest]
            return digest

        for commit in self.commits:
            group.setdefault(commit.hash, commit.hash)
            source = commit.promoted_from
            if source is not None and source in group:
                group[find(commit.hash)] = find(source)
        self.version = {c.hash: find(c.hash) for c in self.commits}
        self.members: dict[str, list[Commit]] = {}
        for commit in self.commits:
            self.members.setdefault(self.version[commit.hash], []).append(commit)
        self.withdrawals: dict[str, list[tuple[str, str]]] = {}
        for commit in self.commits:
            withdrawal = commit.withdrawal
            if withdrawal is not None and withdrawal["holder"] in self.version:
                self.withdrawals.setdefault(self.version[withdrawal["holder"]], []).append(
                    (str(withdrawal["stage"]), commit.hash))

    def family(self, digest: str) -> list[Commit]:
        return self.members.get(self.version.get(digest, ""), [])

    def state(self, link: Link) -> LinkedState:
        if link.commit not in self.version:
            return LinkedState(link, problem=f"commit {link.commit[:12]} is not in the history "
                                             f"of {link.dataset!r} (deleted or never there)")
        seq = self.history.seq_of(link.commit)
        assert seq is not None
        commit = self.history.commit(seq)
        family = self.family(link.commit)
        tags = tuple(dict.fromkeys(t for c in family for t in c.tags))
        hashes = {c.hash for c in family}
        holds = []
        for tag in tags:
            holder, _ = self.history.holder(tag)
            if holder is not None and holder.hash in hashes:
                holds.append(tag)
        return LinkedState(link, message=commit.message, metadata=commit.metadata,
                           tags=tags, holds=tuple(holds),
                           withdrawn=tuple(self.withdrawals.get(self.version[link.commit], ())))


class Linker:
    """Resolves links and reports what linked commits are now, opening each dataset once.

    ``own_roots`` are the ways the linking dataset's root is written (its URL,
    the folder given): a link given with one of them is recorded as a link
    within the root.
    """

    def __init__(self, opener: Opener, own_roots: Iterable[str], *,
                 other_roots: bool = True) -> None:
        self._open = opener
        self._own = {r.rstrip("/") for r in own_roots}
        self._other_roots = other_roots
        self._datasets: dict[tuple[str, str], Dataset] = {}
        self._versions: dict[tuple[str, str], _Versions] = {}
        self._states: dict[Link, LinkedState] = {}  # an audit asks again for each commit

    def local_root(self, root: str) -> str:
        """``""`` for the linking dataset's own root, else ``root`` as given."""
        return "" if root.rstrip("/") in self._own else root

    def dataset(self, root: str, name: str) -> Dataset:
        """The dataset ``name`` of ``root``; DatasetNotFoundError if it has no commits."""
        key = (self.local_root(root), name)
        found = self._datasets.get(key)
        if found is None:
            found = self._open(*key)
            if found.is_empty():
                where = f" under {root}" if key[0] else ""
                raise DatasetNotFoundError(f"Dataset {name!r}{where} does not exist or has "
                                           "no commits", name=name)
            self._datasets[key] = found
        return found

    def versions(self, root: str, name: str) -> _Versions:
        key = (self.local_root(root), name)
        found = self._versions.get(key)
        if found is None:
            found = self._versions[key] = _Versions(self.dataset(*key))
        return found

    # -- committing ---------------------------------------------------------
    def resolve(self, specs: Iterable[LinkSpec], code: Any = None, run: Any = None
                ) -> Lineage | None:
        """The lineage to record: every spec resolved to a full hash, checked sound.

        Raises :class:`~kirin.errors.DanglingLinkError` for a dataset or ref
        that names nothing (or several commits), and
        :class:`~kirin.errors.CorruptObjectError` naming the link for a
        linked commit whose record or snapshot is damaged.
        """
        code = plain_ref_argument(code, "code")
        run = plain_ref_argument(run, "run")
        links = []
        for spec in specs:
            try:
                dataset = self.dataset(spec.root, spec.dataset)
                commit = dataset.resolve(spec.ref)
                dataset._history.snapshot(commit.seq)  # the files it claims match its tree
            except (DatasetNotFoundError, CommitNotFoundError) as exc:
                raise DanglingLinkError(
                    str(spec), spec.dataset, spec.ref,
                    f"Lineage link {spec} names no commit: {exc}. Nothing was written.",
                ) from exc
            except CorruptObjectError as exc:
                raise CorruptObjectError(
                    f"Lineage link {spec} names a damaged commit: {exc}. Nothing was "
                    "written.", path=exc.path, commit=exc.commit) from exc
            links.append(Link(spec.role, self.local_root(spec.root), spec.dataset,
                              commit.hash))
        if len(set(links)) != len(links):
            raise InvalidInputError("The same commit is linked twice under the same role; "
                                    "give each link once. Nothing was written.")
        lineage = Lineage(tuple(links), code, run)
        return lineage if lineage else None

    # -- judging ------------------------------------------------------------
    def state(self, link: Link) -> LinkedState:
        """What the linked commit is now; a problem (never an exception) if it cannot be read."""
        found = self._states.get(link)
        if found is None:
            found = self._states[link] = self._state(link)
        return found

    def _state(self, link: Link) -> LinkedState:
        if link.root and not self._other_roots:
            return LinkedState(link, problem="in another registry root, not opened here")
        try:
            return self.versions(link.root, link.dataset).state(link)
        except KirinError as exc:
            return LinkedState(link, problem=str(exc))
        except OSError as exc:
            return LinkedState(link, problem=f"its dataset cannot be read ({exc})")

    def linked_of(self, commit: Commit) -> tuple[LinkedState, ...]:
        """The state of each link of ``commit`` (for ``audit``)."""
        lineage = commit.lineage
        return tuple(self.state(link) for link in lineage.inputs) if lineage else ()

    def states(self, lineage: Lineage | None) -> tuple[LinkedState, ...]:
        return tuple(self.state(link) for link in lineage.inputs) if lineage else ()

    # -- walking ------------------------------------------------------------
    def upstream(self, root: str, dataset: str, commit: Commit) -> LineageNode:
        """What ``commit`` came from, transitively, as a tree."""
        seen: set[Key] = set()
        return self._node(root, dataset, commit.hash, commit, None, None, seen, 0)

    def _node(self, root: str, dataset: str, digest: str, commit: Commit | None,
              role: str | None, problem: str | None, seen: set[Key], depth: int
              ) -> LineageNode:
        key = (self.local_root(root), dataset, digest)
        if commit is None or key in seen or depth >= MAX_DEPTH:
            return LineageNode(dataset, root, digest, role, commit, problem,
                               repeated=commit is not None and key in seen)
        seen.add(key)
        inputs = []
        lineage = commit.lineage
        for link in lineage.inputs if lineage else ():
            # a link without a root names a dataset of the root its commit is in
            where = self.local_root(link.root or root)
            link = dataclasses.replace(link, root=where)
            found, why = self._find(link)
            inputs.append(self._node(where, link.dataset, link.commit, found, link.role,
                                     why, seen, depth + 1))
        return LineageNode(dataset, root, digest, role, commit, problem, tuple(inputs))

    def _find(self, link: Link) -> tuple[Commit | None, str | None]:
        state = self.state(link)
        if state.problem is not None:
            return None, state.problem
        versions = self.versions(link.root, link.dataset)
        seq = versions.history.seq_of(link.commit)
        assert seq is not None
        return versions.history.commit(seq), None


@dataclass(frozen=True)
class LineageNode:
    """One commit of an upstream walk: the commit, the role it was linked as, its inputs.

    ``commit`` is ``None`` when the link cannot be followed (``problem`` says
    why); ``repeated`` marks a commit already shown elsewhere in the tree.
    """

    dataset: str
    root: str
    hash: str
    role: str | None
    commit: Commit | None
    problem: str | None = None
    inputs: tuple[LineageNode, ...] = ()
    repeated: bool = False

    def walk(self) -> Iterator[tuple[int, LineageNode]]:
        """(depth, node) of the tree, depth first, the root node at depth 0."""
        stack = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.inputs))

    def to_dict(self) -> dict[str, Any]:
        commit = self.commit
        lineage = commit.lineage if commit is not None else None
        return {
            "dataset": self.dataset, "root": self.root or None, "hash": self.hash,
            "role": self.role, "problem": self.problem, "repeated": self.repeated,
            "message": commit.message if commit else None,
            "tags": list(commit.tags) if commit else [],
            "timestamp": commit.timestamp.isoformat() if commit else None,
            "author": commit.author if commit else None,
            "kind": commit.kind if commit else None,
            "code": lineage.code if lineage else None,
            "run": lineage.run if lineage else None,
            "inputs": [child.to_dict() for child in self.inputs],
        }

    def _repr_html_(self) -> str:
        """The tree as a table in Jupyter (see :mod:`kirin.ui.notebook`)."""
        from .ui.notebook import lineage_html

        return lineage_html(self)

    def lines(self) -> list[str]:
        """The tree as indented text lines (what ``kirin lineage`` prints)."""
        out = []
        for depth, node in self.walk():
            out.append("    " * depth + node.label())
        return out

    def label(self) -> str:
        where = f"{self.root}#" if self.root else ""
        role = f"{self.role}: " if self.role else ""
        head = f"{role}{where}{self.dataset}@{self.hash[:8]}"
        if self.commit is None:
            return f"{head}  !! {self.problem}"
        commit = self.commit
        tags = f" [{', '.join(commit.tags)}]" if commit.tags else ""
        lineage = commit.lineage
        extra = "".join(f"  {k}={v}" for k, v in (("code", lineage.code if lineage else None),
                                                   ("run", lineage.run if lineage else None))
                        if v is not None)
        seen = "  (shown above)" if self.repeated else ""
        return f"{head} {commit.message!r}{tags}{extra}{seen}"


# -- downstream ----------------------------------------------------------------

@dataclass(frozen=True)
class Use:
    """A commit that links to the target, directly (``depth`` 1) or through others.

    ``holds`` are the stages of its own dataset it holds now.
    """

    dataset: str
    commit: Linking
    role: str
    links_to: Link
    depth: int
    holds: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        commit = self.commit
        return {"dataset": self.dataset, "hash": commit.hash, "seq": commit.seq,
                "role": self.role, "depth": self.depth,
                "links_to": {"dataset": self.links_to.dataset,
                             "root": self.links_to.root or None,
                             "commit": self.links_to.commit},
                "message": commit.message, "tags": list(commit.tags),
                "holds": list(self.holds), "timestamp": commit.timestamp,
                "author": commit.author, "code": commit.lineage.code,
                "run": commit.lineage.run}


@dataclass(frozen=True)
class UsedBy:
    """Every commit of a root that links to ``target`` (or a promotion of it), transitively.

    ``version`` lists the target and its promotions (every hash matched);
    ``stage``, when given, kept only the commits holding that stage of their
    dataset now; ``uses`` is ordered by depth, dataset and position.
    """

    target: Link
    version: tuple[str, ...]
    uses: tuple[Use, ...]
    stage: str | None = None
    scanned: int = 0

    def __len__(self) -> int:
        return len(self.uses)

    def to_dict(self) -> dict[str, Any]:
        target = self.target
        return {"target": {"dataset": target.dataset, "root": target.root or None,
                           "commit": target.commit},
                "version": list(self.version), "stage": self.stage,
                "datasets_scanned": self.scanned, "used_by": [u.to_dict() for u in self.uses]}

    def _repr_html_(self) -> str:
        """The uses as a table in Jupyter (see :mod:`kirin.ui.notebook`)."""
        from .ui.notebook import used_by_html

        return used_by_html(self)

    def lines(self) -> list[str]:
        """The uses as a tree under the target (what ``kirin used-by`` prints)."""
        where = f"{self.target.root}#" if self.target.root else ""
        out = [f"{where}{self.target.dataset}@{self.target.commit[:8]}"]
        children: dict[tuple[str, str], list[Use]] = {}
        for use in self.uses:
            children.setdefault((use.links_to.dataset, use.links_to.commit), []).append(use)
        shown: set[tuple[str, str]] = set()

        def emit(parent: tuple[str, str], depth: int) -> None:
            for use in children.get(parent, []):
                commit = use.commit
                tags = f" [{', '.join(commit.tags)}]" if commit.tags else ""
                holds = f"  (holds {', '.join(use.holds)})" if use.holds else ""
                out.append("    " * depth + f"{use.role}: {use.dataset}@{commit.hash[:8]} "
                           f"{commit.message!r}{tags}{holds}")
                key = (use.dataset, commit.hash)
                if key not in shown:
                    shown.add(key)
                    emit(key, depth + 1)

        for digest in self.version:
            emit((self.target.dataset, digest), 1)
        return out


#: ``dataset name -> every link of it, as lineage index lines``: one scan of a root.
Scanner = Callable[[], Mapping[str, list[str]]]
#: The commit an index row names, read and checked (see :func:`lineageindex.read_linking`).
Details = Callable[[str, "Row"], Linking]


def used_by(linker: Linker, target: Link, scan: Scanner, details: Details, *,
            stage: str | None = None) -> UsedBy:
    """Every commit of the scanned root linking to ``target``'s version, transitively.

    ``scan`` reads the links of every dataset of the root (through the
    lineage index, :mod:`kirin.lineageindex`); reverse edges are built once,
    then followed breadth first, each commit reported once, at its smallest
    depth. Only the commits reported are read (``details``), and only datasets
    that are themselves linked to are read in full (to follow the promotions
    of a commit that is used in turn).
    """
    from .lineageindex import line_target, parse_line

    scanned = scan()
    reverse: dict[Key, list[tuple[str, str]]] = {}
    for name, lines in scanned.items():
        for line in lines:
            key = line_target(line)
            if key is not None:
                reverse.setdefault(key, []).append((name, line))
    targets = {key[1] for key in reverse if not key[0]}
    version = tuple(c.hash for c in linker.versions(target.root, target.dataset).family(
        target.commit)) or (target.commit,)
    queue: deque[tuple[Key, int]] = deque(((target.root, target.dataset, d), 1)
                                          for d in version)
    reported: set[tuple[str, str]] = set()
    followed: set[Key] = set(queue_key for queue_key, _ in queue)
    found: list[Use] = []
    while queue:
        key, depth = queue.popleft()
        for name, line in reverse.get(key, ()):
            try:
                row = parse_line(line)
            except ValueError as exc:
                raise _damaged(name)(str(exc)) from None
            if (name, row.hash) in reported:
                continue
            reported.add((name, row.hash))
            entry = details(name, row)
            link = next((k for k in entry.lineage.inputs
                         if (k.root, k.dataset, k.commit, k.role) == (*key, row.role)), None)
            if link is None:
                raise _damaged(name)(f"commit {row.hash[:12]} does not link "
                                     f"{row.role}={row.dataset}@{row.commit[:12]}")
            holds = _holds(linker, name, entry)
            if stage is None or stage in holds:
                found.append(Use(name, entry, link.role, link, depth, holds))
            members = ([c.hash for c in linker.versions("", name).family(entry.hash)]
                       if name in targets else []) or [entry.hash]
            for member in members:
                if ("", name, member) not in followed:
                    followed.add(("", name, member))
                    queue.append((("", name, member), depth + 1))
    found.sort(key=lambda u: (u.depth, u.dataset, u.commit.seq))
    return UsedBy(target, version, tuple(found), stage, len(scanned))


def _damaged(dataset: str) -> Callable[[str], CorruptObjectError]:
    def bad(why: str) -> CorruptObjectError:
        return CorruptObjectError(f"The lineage index of dataset {dataset!r} is damaged "
                                  f"({why}); kirin verify reports it", path=dataset)
    return bad


def _holds(linker: Linker, dataset: str, entry: Linking) -> tuple[str, ...]:
    """The stages of ``dataset`` that ``entry`` holds now (a tag's newest, not withdrawn)."""
    if not entry.tags:
        return ()
    opened = linker.dataset("", dataset)
    stages = opened._stage_names()
    history = opened._history
    return tuple(t for t in entry.tags if (not stages or t in stages)
                 and (held := history.holder(t)[0]) is not None and held.hash == entry.hash)


# -- a root ----------------------------------------------------------------------

def root_linker(store: Store, root_dir: str, own: Dataset | None = None, *,
                other_roots: bool = True) -> Linker:
    """A linker for datasets of the root ``store`` holds (``own``: a dataset already open).

    ``other_roots=False`` (the web view) never opens a root a link names.
    """
    from .dataset import Dataset

    opened: dict[str, Dataset] = own._siblings if own is not None else {}

    def open_dataset(root: str, name: str) -> Dataset:
        if root:
            return Dataset(root, name)
        if own is not None and name == own.name:
            return own
        if name not in opened:  # kept: a loaded history is refreshed, not read again
            opened[name] = Dataset._on_store(  # the same root: the same root pin
                store, root_dir, name,
                trust_root_policy=own._root_policies.pin if own is not None else None)
        return opened[name]

    return Linker(open_dataset, (store.url, root_dir), other_roots=other_roots)


def scan_root(store: Store, linker: Linker) -> dict[str, list[str]]:
    """Every link of every dataset of the root (through the index where it can be used)."""
    from .catalog import dataset_names
    from .lineageindex import all_lines, scan_dataset

    found = {}
    for name in dataset_names(store):
        indexed = scan_dataset(store, name)
        if indexed is not None:
            found[name] = indexed
            continue
        try:
            dataset = linker.dataset("", name)
        except DatasetNotFoundError:
            continue  # created, no commits yet
        found[name] = all_lines(dataset._history)
    return found


def used_by_in_root(store: Store, linker: Linker, target: str, *, stage: str | None = None
                    ) -> UsedBy:
    """:func:`used_by` of ``target`` (``[ROOT#]DATASET@REF``) over the root of ``store``."""
    from .lineageindex import read_linking
    from .links import linking_of, parse_target

    root, name, ref = parse_target(target, "target")
    if stage is not None:
        stage = text_argument(stage, "stage").strip()
    root = linker.local_root(root)
    commit = linker.dataset(root, name).resolve(ref)

    def details(dataset: str, row: Row) -> Linking:
        entry = read_linking(store, dataset, row)
        if entry is None:  # its log entry is unreadable: the history knows
            history = linker.dataset("", dataset)._history
            seq = history.seq_of(row.hash)
            entry = linking_of(history.record(seq)) if seq is not None else None
            if entry is None:
                raise _damaged(dataset)(f"no commit {row.hash[:12]} with links")
        return entry

    return used_by(linker, Link("", root, name, commit.hash), lambda: scan_root(store, linker),
                   details, stage=stage)


# -- verify ---------------------------------------------------------------------

def verify_links(dataset: Dataset, report: VerifyReport) -> VerifyReport:
    """``report`` plus every link of the dataset that cannot be followed, and every lineage
    index that differs from the records (kinds ``lineage`` and ``lineage-index``).

    A history that does not open is left to the record problems already reported.
    """
    import dataclasses

    from .lineageindex import index_problems
    from .verify import Problem

    try:
        dataset._refresh()
        history = dataset._history
        commits = history.commits()
    except (KirinError, OSError):
        return report
    linker = dataset._linker()
    found: list[Problem] = []
    for commit in commits:
        lineage = commit.lineage
        for link in lineage.inputs if lineage else ():
            state = linker.state(link)
            problem = state.problem
            if problem is None and link.in_root and link.dataset == dataset.name:
                seq = history.seq_of(link.commit)
                if seq is not None and seq >= commit.seq:
                    problem = "it is not an earlier commit of the history"
            if problem is not None:
                found.append(Problem(
                    "lineage", f"#{commit.seq}", f"Commit {commit.short_hash} (#{commit.seq}) "
                    f"links {link.role}={link.ref}, which cannot be followed: {problem}",
                    commits=(commit.hash,)))
    try:
        damaged = index_problems(dataset._store, dataset.name, history)
    except (KirinError, OSError) as exc:
        damaged = [("lineage", str(exc))]
    found += [Problem("lineage-index", path, f"Lineage index {path}: {why}")
              for path, why in damaged]
    if not found:
        return report
    return dataclasses.replace(report, problems=(*report.problems, *found))
