"""Rich display in Jupyter: the HTML behind the ``_repr_html_`` methods, and plotting.

Standard library only (``html.escape`` on every string from the registry),
so a notebook needs no extra to see a commit as a table; matplotlib is
imported only by :func:`plot_metric`, and only if installed. The HTML carries
its look in a few inline attributes and no script: notebooks sanitise or
trust output differently, and plain tables read everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from . import data
from .svg import trend_svg

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..lineage import LineageNode, UsedBy
    from ..policy import Report
    from ..values import Commit

RECENT = 10
CELL = 'style="text-align:left;vertical-align:top"'


def _e(value: object) -> str:
    return escape(str(value))


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _e(value)
    return _e(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; ``rows`` cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th {CELL}>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {CELL}>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tags(tags: Iterable[str]) -> str:
    return ", ".join(f"<code>{_e(t)}</code>" for t in tags)


def _metadata(value: Any) -> str:
    """Nested metadata as nested lists (keys bold), the page's tree without the CSS."""
    if isinstance(value, Mapping) and value:
        items = "".join(f"<li><b>{_e(k)}</b>: {_metadata(v)}</li>" for k, v in value.items())
        return f'<ul style="margin:0">{items}</ul>'
    return _value(value)


def commit_html(commit: Commit) -> str:
    facts = [("hash", f"<code>{_e(commit.hash)}</code>"), ("message", _e(commit.message)),
             ("author", _e(commit.author)), ("time", _e(commit.timestamp.isoformat())),
             ("tags", _tags(commit.tags) or "none"),
             ("parent", f"<code>{_e(commit.parent_hash)}</code>" if commit.parent_hash
              else "none (first commit)")]
    origin = data.promoted_from(commit)
    if origin:
        facts.append(("promoted from", f"<code>{_e(origin)}</code>"))
    if commit.policy_hash:
        facts.append(("policy", f"<code>{_e(commit.policy_hash[:12])}</code>"))
    lineage = commit.lineage
    if lineage is not None:
        facts += [("from", f"{_e(link.role)}: <code>{_e(link.ref)}</code>")
                  for link in lineage.inputs]
        facts += [(k, f"<code>{_e(v)}</code>") for k, v in (("code", lineage.code),
                                                           ("run", lineage.run)) if v]
    rows = [[f"<b>{_e(k)}</b>", v] for k, v in facts]
    rows.append(["<b>metadata</b>", _metadata(commit.metadata) if commit.metadata else "none"])
    files = _table(["file", "size", "sha256"],
                   [[_e(f.name), _e(f.size), f"<code>{_e(f.short_hash)}</code>"]
                    for f in commit.files.values()])
    return (f"<div><b>Commit {_e(commit.short_hash)}</b>{_table(['', ''], rows)}"
            f"<b>Files ({len(commit.files)})</b>{files}</div>")


def lineage_html(tree: LineageNode) -> str:
    """An upstream tree (``Dataset.lineage``) as an indented table."""
    rows = []
    for depth, node in tree.walk():
        pad = "&nbsp;" * 4 * depth
        where = f"{node.root}#" if node.root else ""
        name = f"{pad}<code>{_e(where + node.dataset)}@{_e(node.hash[:8])}</code>"
        commit = node.commit
        rows.append([name, _e(node.role or ""),
                     _e(commit.message) if commit else f"<b>{_e(node.problem)}</b>",
                     _tags(commit.tags) if commit else ""])
    return _table(["commit", "role", "message", "tags"], rows)


def used_by_html(found: UsedBy) -> str:
    """Downstream uses (``used_by``) as a table, nearest first."""
    rows = [[_e(u.depth), f"<code>{_e(u.dataset)}@{_e(u.commit.hash[:8])}</code>",
             _e(u.role), _e(u.commit.message), _tags(u.commit.tags), _tags(u.holds)]
            for u in found.uses]
    return _table(["depth", "commit", "role", "message", "tags", "holds"], rows)


def dataset_html(dataset: Dataset) -> str:
    head = dataset.head
    count = head.seq + 1 if head else 0
    policy = dataset.policy
    stages = data.stage_rows(dataset, timeline=1, only_held=True)
    recent = dataset.history(limit=RECENT)
    columns = data.default_columns(recent, 3)
    rows = [[f"<code>{_e(c.short_hash)}</code>", _e(c.timestamp.strftime("%Y-%m-%d %H:%M")),
             _e(c.author), _e(c.message), _tags(c.tags),
             *(_e(data.display_value(c.metadata, p)) for p in columns)] for c in recent]
    summary = (f"<b>Dataset {_e(dataset.name)}</b>: {count} commit{'s' if count != 1 else ''}"
               + (f" · policy <code>{_e(policy.hash[:12])}</code>" if policy else " · no policy")
               + "".join(f" · {_e(s.stage)}: <code>{_e(s.commit.short_hash)}</code>"
                         for s in stages if s.commit is not None))
    description = f"<br><i>{_e(dataset.description)}</i>" if dataset.description else ""
    more = f"<br>(newest {RECENT} shown)" if count > RECENT else ""
    return (f"<div>{summary}{description}"
            f"{_table(['commit', 'time', 'author', 'message', 'tags', *columns], rows)}"
            f"{more}</div>")


def comparison_html(changes: Mapping[str, Any]) -> str:
    """The result of ``Dataset.compare_commits`` (the dict ``kirin diff`` prints)."""
    one, two = changes.get("commit1", {}), changes.get("commit2", {})
    rows: list[list[str]] = []
    meta = changes.get("metadata_diff_paths", {})
    for path, change in meta.get("changed", {}).items():
        rows.append(["metadata", _e(path), _value(change["old"]), _value(change["new"])])
    for path, value in meta.get("added", {}).items():
        rows.append(["metadata", _e(path), "", _value(value)])
    for path, value in meta.get("removed", {}).items():
        rows.append(["metadata", _e(path), _value(value), ""])
    tags = changes.get("tags_diff", {})
    rows += [["tag", _e(t), "", "added"] for t in tags.get("added", [])]
    rows += [["tag", _e(t), "removed", ""] for t in tags.get("removed", [])]
    files = changes.get("files_diff", {})
    for kind in ("added", "removed", "modified"):
        rows += [["file", _e(n), "", kind] for n in files.get(kind, [])]
    title = (f"<b>From <code>{_e(one.get('hash', ''))}</code> to "
             f"<code>{_e(two.get('hash', ''))}</code></b>")
    if not rows:
        return f"<div>{title}: no differences</div>"
    return f"<div>{title}{_table(['what', 'name', 'before', 'after'], rows)}</div>"


def report_html(report: Report) -> str:
    if report.ok:
        return "<div><b>OK</b>: the commit satisfies the policy</div>"
    rows = [[f"<code>{_e(v.rule)}</code>", _e(v.path), _value(v.value), _e(v.message)]
            for v in report.violations]
    n = len(report.violations)
    return (f"<div><b>{n} violation{'s' if n != 1 else ''}</b>"
            f"{_table(['rule', 'path', 'value', 'message'], rows)}</div>")


def audit_html(results: Sequence[tuple[Commit, Report]]) -> str:
    failing = [(c, r) for c, r in results if not r.ok]
    if not failing:
        return f"<div><b>Audit</b>: {len(results)} commit(s) listed, none rejected today</div>"
    rows = [[f"<code>{_e(c.short_hash)}</code>", _e(c.message),
             "<br>".join(f"<code>{_e(v.rule)}</code> {_e(v.message)}" for v in r.violations)]
            for c, r in failing]
    return (f"<div><b>Audit</b>: {len(failing)} commit(s) would be rejected today"
            f"{_table(['commit', 'message', 'violations'], rows)}</div>")


def metric_svg(dataset: Dataset, path: str) -> str:
    """The web view's trend chart of ``path``, for ``IPython.display.SVG``/``HTML``."""
    stages = data.stage_names(dataset)
    points = data.metric_points(dataset, path, stages)
    return trend_svg(points, path, stages, "#")


def plot_metric(dataset: Dataset, path: str, ax: Any = None) -> Any:
    """Plot ``path`` across commits with matplotlib; points of stage tags are marked.

    Returns the matplotlib ``Axes`` (a new figure's unless ``ax`` is given).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from ..errors import MissingExtraError

        raise MissingExtraError("plot_metric needs matplotlib: pip install matplotlib "
                                "(or use Dataset.metric_history with any plotting library)",
                                protocol="matplotlib", extra=None) from exc
    stages = data.stage_names(dataset)
    points = data.metric_points(dataset, path, stages)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot([p.commit.timestamp for p in points], [p.value for p in points], marker="o",
            markersize=3, linewidth=1)
    for stage in stages:
        marked = [p for p in points if stage in p.stages]
        if marked:
            ax.scatter([p.commit.timestamp for p in marked], [p.value for p in marked],
                       s=60, zorder=3, label=stage)
    if any(p.stages for p in points):
        ax.legend()
    ax.set_title(f"{dataset.name}: {path}")
    ax.set_ylabel(path)
    return ax
