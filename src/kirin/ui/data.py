"""What the web pages and notebook views show, computed through the public API only.

No web library here: the notebook display and ``Dataset.metric_history`` use
these functions too. Each function reads what it needs and nothing more, so a
page over a 10,000-commit history builds only the commits it shows (a
commit's ``seq`` is its position in the linear history, so the count needs no
scan).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..policy import Policy
    from ..policylog import PolicyVersion
    from ..values import Commit

#: Tags read as stages when the dataset has no policy naming any: MLflow's
#: stages and aliases, which a team coming from it already uses as tags.
DEFAULT_STAGES = ("production", "staging", "dev", "champion", "challenger", "archived")
#: Commits listed per stage in its timeline.
TIMELINE_LIMIT = 50
#: Newest commits scanned to propose metric paths (columns, trend picker).
METRIC_SCAN = 200

_MISSING: Any = object()


# -- metadata paths ----------------------------------------------------------
def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of nested metadata by dotted path, as ``kirin diff`` names them."""
    if isinstance(value, Mapping) and (value or not prefix):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def lookup(metadata: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path``, or :data:`_MISSING`.

    A key may itself hold dots (``{"a.b": 1}``), so every split of the path
    into keys is tried, longest key first, the way :func:`leaves` named it.
    """
    if path in metadata:
        return metadata[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        node = metadata.get(head, _MISSING)
        if isinstance(node, Mapping):
            found = lookup(node, ".".join(parts[cut:]))
            if found is not _MISSING:
                return found
    return _MISSING


def number(value: Any) -> float | None:
    """``value`` as a finite float if it is a JSON number (``true`` is not 1 here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def metric_paths(commits: Iterable[Commit]) -> list[str]:
    """The numeric metadata paths the commits hold, in first-seen order."""
    seen: dict[str, None] = {}
    for commit in commits:
        for path, value in leaves(commit.metadata):
            if path and number(value) is not None:
                seen.setdefault(path, None)
    return list(seen)


def recent_metric_paths(dataset: Dataset) -> list[str]:
    """Numeric paths of the newest :data:`METRIC_SCAN` commits (what a picker offers)."""
    return metric_paths(dataset.history(limit=METRIC_SCAN))


@dataclass(frozen=True)
class Point:
    """One commit's value of a metric, and the stage tags it carries."""

    commit: Commit
    value: float
    stages: tuple[str, ...]


def metric_points(dataset: Dataset, path: str, stages: Sequence[str] = ()) -> list[Point]:
    """Every commit holding a number at ``path``, oldest first (a trend reads left to right)."""
    wanted = set(stages)
    points = []
    for commit in reversed(dataset.history()):
        value = number(lookup(commit.metadata, path))
        if value is not None:
            marks = tuple(t for t in commit.tags if t in wanted) if wanted else ()
            points.append(Point(commit, value, marks))
    return points


def metric_history(dataset: Dataset, path: str) -> list[dict[str, Any]]:
    """Rows for ``pandas.DataFrame``: one per commit holding a number at ``path``.

    Each row has ``seq``, ``hash``, ``short_hash``, ``timestamp`` (a
    datetime), ``author``, ``message``, ``tags`` and the value under the key
    ``path`` itself, so several metrics' rows merge on ``hash``.
    """
    return [{"seq": p.commit.seq, "hash": p.commit.hash, "short_hash": p.commit.short_hash,
             "timestamp": p.commit.timestamp, "author": p.commit.author,
             "message": p.commit.message, "tags": list(p.commit.tags), path: p.value}
            for p in metric_points(dataset, path)]


# -- stages ------------------------------------------------------------------
def policy_stages(policy: Policy | None) -> list[str]:
    """The tags a policy treats as stages: its exclusive groups, then its promotion rules."""
    if policy is None:
        return []
    names: dict[str, None] = {}
    for group in policy.tags.exclusive_groups:
        names.update(dict.fromkeys(group))
    names.update(dict.fromkeys(policy.promotion))
    return list(names)


#: Policy hash -> the stages it names: a policy is parsed once, however many datasets
#: (or requests) share it; a catalog of 200 governed datasets would parse 200 otherwise.
_POLICY_STAGES: dict[str, tuple[str, ...]] = {}
_POLICY_STAGES_MAX = 256


def current_policy(dataset: Dataset) -> PolicyVersion | None:
    """The newest policy version (``policy_hash`` ``None``: removed), or ``None`` if never."""
    versions = dataset.policy_history()
    return versions[0] if versions else None


def stages_of(version: PolicyVersion | None) -> list[str]:
    """The stages policy ``version`` names, else :data:`DEFAULT_STAGES` (parsed once per hash)."""
    key = version.policy_hash if version is not None else None
    if version is None or key is None:
        return list(DEFAULT_STAGES)
    names = _POLICY_STAGES.get(key)
    if names is None:
        names = tuple(policy_stages(version.load()))
        if len(_POLICY_STAGES) >= _POLICY_STAGES_MAX:
            _POLICY_STAGES.clear()
        _POLICY_STAGES[key] = names
    return list(names) or list(DEFAULT_STAGES)


def stage_names(dataset: Dataset) -> list[str]:
    """The dataset's stages: those its policy names, else :data:`DEFAULT_STAGES`."""
    return stages_of(current_policy(dataset))


@dataclass(frozen=True)
class StageRow:
    """Who holds one stage now, since when, and the commits that held it, newest first."""

    stage: str
    commit: Commit | None
    since: datetime | None
    by: str | None
    promoted_from: str | None
    timeline: tuple[Commit, ...]


def stage_rows(dataset: Dataset, *, timeline: int = TIMELINE_LIMIT, only_held: bool = False,
               names: Sequence[str] | None = None) -> list[StageRow]:
    """One row per stage of ``dataset``.

    Uses ``dataset.stages`` when the registry has first-class stages (objects
    with ``stage``, ``commit``, ``since``, ``by``, ``promoted_from``);
    otherwise a stage is a tag of the policy's exclusive groups or promotion
    rules, held by the newest commit carrying it. The timeline is the
    commits carrying the tag either way. ``only_held`` leaves out stages no
    commit holds (a catalog row lists holders, not the vocabulary); ``names``
    are the stages if the caller knows them (see :func:`stage_names`).
    """
    rows = []
    first_class = getattr(dataset, "stages", None)
    if first_class is not None:
        held = first_class() if callable(first_class) else first_class
        for entry in held:
            commit = getattr(entry, "commit", None)
            if only_held and commit is None:
                continue
            stage = str(entry.stage)
            rows.append(StageRow(stage, commit, getattr(entry, "since", None),
                                 getattr(entry, "by", None),
                                 _short(getattr(entry, "promoted_from", None)),
                                 tuple(dataset.find_commits(tags=[stage], limit=timeline))))
        return rows
    for stage in stage_names(dataset) if names is None else names:
        carriers = dataset.find_commits(tags=[stage], limit=timeline)
        holder = carriers[0] if carriers else None
        if only_held and holder is None:
            continue
        rows.append(StageRow(stage, holder, holder.timestamp if holder else None,
                             holder.author if holder else None,
                             promoted_from(holder) if holder else None, tuple(carriers)))
    return rows


def promoted_from(commit: Commit) -> str | None:
    """The commit ``commit`` was promoted from, where the registry records it."""
    return _short(getattr(commit, "promoted_from", None))


def links(ds: Dataset, commit: Commit) -> list[dict[str, Any]]:
    """Each lineage link of ``commit`` with what the linked commit is now (commit page)."""
    from ..lineage import root_linker

    lineage = commit.lineage
    if not lineage:
        return []
    # a server never opens a URL a stored record names: other roots are shown, not read
    linker = root_linker(ds._store, ds.root_dir, ds, other_roots=False)
    return [state.to_dict() for state in linker.states(lineage)]


def _short(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "hash", value))


# -- catalog and history -------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """One catalog row: a dataset's head, size of history, governance and stages."""

    name: str
    description: str
    head: Commit | None
    commits: int
    policy_hash: str | None
    stages: tuple[StageRow, ...]

    @property
    def governed(self) -> bool:
        return self.policy_hash is not None

    @property
    def last_activity(self) -> datetime | None:
        return self.head.timestamp if self.head else None


def summarize(dataset: Dataset) -> Summary:
    """The catalog row of ``dataset``; the commit count is the head's position + 1."""
    head = dataset.head
    version = current_policy(dataset)
    return Summary(dataset.name, dataset.description, head, head.seq + 1 if head else 0,
                   version.policy_hash if version is not None else None,
                   tuple(stage_rows(dataset, timeline=1, only_held=True,
                                    names=stages_of(version))))


@dataclass(frozen=True)
class Page:
    """One page of a (maybe filtered) history, newest first."""

    commits: list[Commit]
    number: int
    size: int
    has_next: bool
    total: int | None  # None when filtered: counting would scan the whole history

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def history_page(dataset: Dataset, number: int, size: int, *, tags: Sequence[str] = (),
                 where: str | None = None) -> Page:
    """Page ``number`` (1-based) of the history, filtered by all ``tags`` and ``where``.

    Only the commits up to the end of the page are built (one more when
    filtered, to know whether a next page exists).
    """
    number = max(number, 1)
    end = number * size
    if tags or where:
        found = dataset.find_commits(tags=list(tags), where=where, limit=end + 1)
        return Page(found[end - size:end], number, size, len(found) > end, None)
    head = dataset.head
    total = head.seq + 1 if head else 0
    commits = dataset.history(limit=end)[end - size:]
    return Page(commits, number, size, total > end, total)


def default_columns(page: Sequence[Commit], limit: int = 4) -> list[str]:
    """Metric columns shown when none are chosen: the first numeric paths on the page."""
    return metric_paths(page)[:limit]


def display_value(metadata: Mapping[str, Any], path: str) -> str:
    """The value at ``path`` for a table cell: numbers compact, absent as empty."""
    value = lookup(metadata, path)
    if value is _MISSING:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)
