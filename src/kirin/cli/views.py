"""Turning library values into outcomes: the JSON document and the rich rendering.

Each function here builds one command's :class:`~kirin.cli.output.Outcome`;
the JSON documents follow :mod:`kirin.cli.shapes` exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._json import thaw
from ..units import human_size
from .exits import ExitCode
from .output import Annotation, Outcome, assemble, rule_label, text, violation_annotation

if TYPE_CHECKING:
    from ..approvals import Approval
    from ..errors import PolicyError
    from ..gc import GcReport
    from ..policy import Policy, Report, Violation
    from ..policy.crosscheck import Finding
    from ..policylog import PolicyVersion
    from ..values import Commit, File
    from ..verify import VerifyReport
    from .columns import Column


# -- JSON pieces ---------------------------------------------------------------
def commit_data(commit: Commit) -> dict[str, Any]:
    """A commit without its files (``<commit>`` in the shapes)."""
    data = commit.to_dict()
    data.pop("files", None)
    return data


def files_data(commit: Commit) -> list[dict[str, Any]]:
    return [f.to_dict() for f in commit.files.values()]


# -- small human pieces --------------------------------------------------------
def size(n: int) -> str:
    return human_size(n)


def when(commit: Commit) -> str:
    return commit.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def compact(value: Any) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, sort_keys=True)


def tags_text(tags: Iterable[str]) -> Text:
    return text(", ".join(tags), style="cyan")


def line(value: str, style: str = "") -> Text:
    """One line of prose; any user string in it is made terminal-safe."""
    return text(value, style=style)


def commits_table(commits: Sequence[Commit], title: str | None = None,
                  columns: Sequence[Column] = ()) -> Table:
    """Commits, one a row: hash, date, author, tags, chosen metadata ``columns``, message.

    The message is marked ``[override]``, ``[rollback]`` or ``[withdrew STAGE]``
    where the record says so.

    A commit lacking a column's field shows a blank cell; strings show as
    they are, other values as compact JSON.
    """
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("commit", style="yellow", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("author", style="dim")
    table.add_column("tags")
    for column in columns:
        table.add_column(text(column.name), style="green")
    table.add_column("message")
    for c in commits:
        cells = [_cell(column, c) for column in columns]
        table.add_row(c.short_hash, when(c), text(c.author), tags_text(c.tags), *cells,
                      assemble((_flags(c), "bold yellow"), c.message))
    return table


def _flags(commit: Commit) -> str:
    """Marks for what a record did beyond a plain commit: exceptions are never silent."""
    marks = []
    if commit.withdrawal is not None:
        marks.append(f"[withdrew {commit.withdrawal['stage']}]")
    if commit.rollback is not None:
        marks.append("[rollback]")
    if commit.override is not None:
        marks.append("[override]")
    return " ".join(marks) + " " if marks else ""


def _cell(column: Column, commit: Commit) -> Text:
    found, value = column.value(commit.metadata)
    if not found:
        return Text("")
    return text(value if isinstance(value, str) else compact(value))


def files_table(files: Iterable[File]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("file")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("sha256", style="dim", no_wrap=True)
    for f in files:
        table.add_row(text(f.name), size(f.size), f.short_hash)
    return table


def commit_details(commit: Commit) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")  # a full hash is folded, never cut
    grid.add_row("commit", text(commit.hash, style="yellow"))
    grid.add_row("parent", text(commit.parent_hash or "-"))
    grid.add_row("date", text(when(commit)))
    grid.add_row("author", text(commit.author))
    grid.add_row("tags", tags_text(commit.tags) if commit.tags else text("-"))
    grid.add_row("message", text(commit.message))
    grid.add_row("policy", text(commit.policy_hash[:12] if commit.policy_hash else "-"))
    if commit.root_policy_hash:
        grid.add_row("root policy", text(commit.root_policy_hash[:12]))
    for label, value in governance_rows(commit):
        grid.add_row(label, text(value, style="bold yellow" if label == "override" else ""))
    if not commit.metadata:
        return Group(grid)
    metadata = Table.grid(padding=(0, 2))
    metadata.add_column(style="green", no_wrap=True)
    metadata.add_column(overflow="fold")
    for key, value in commit.metadata.items():
        metadata.add_row(text(key), text(compact(value)))
    return Group(grid, Text(""), text("metadata", style="bold"), metadata)


def governance_rows(commit: Commit) -> list[tuple[str, str]]:
    """What a promotion, rollback, withdrawal or override did, as (label, text) rows."""
    rows = []
    if commit.kind in ("promotion", "rollback"):
        rows.append(("promoted from", str(commit.promoted_from)))
    if commit.rollback is not None:
        rows.append(("rollback", f"of {str(commit.rollback['held'])[:12]}, judged by the "
                                 "policy that admitted it then"))
    if commit.withdrawal is not None:
        rows.append(("withdrew", f"stage {commit.withdrawal['stage']} from "
                                 f"{str(commit.withdrawal['holder'])[:12]}"))
    if commit.override is not None:
        rules = ", ".join(str(v["rule"]) for v in commit.override["violations"])
        rows.append(("override", f"{rules} (reason: {commit.override['reason']})"))
    lineage = commit.lineage
    if lineage is not None:
        rows += [("from", f"{link.role}={link.ref}") for link in lineage.inputs]
        rows += [(label, value) for label, value in (("code", lineage.code),
                                                     ("run", lineage.run)) if value]
    return rows


def violations_table(violations: Sequence[Violation]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("rule", style="magenta", no_wrap=True)
    table.add_column("problem")
    for v in violations:
        table.add_row(text(rule_label(v)), text(v.message))
    return table


# -- outcomes -------------------------------------------------------------------
def report(dataset: str, verdict: Report, *, subject: str = "The commit") -> Outcome:
    """``validate`` (and the ``--dry-run`` of commit and promote)."""
    data = {"dataset": dataset, **verdict.to_dict()}
    hashes = [f"{what}policy {digest[:12]}" for what, digest in
              (("", verdict.policy_hash), ("root ", verdict.root_policy_hash)) if digest]
    policy = " and ".join(hashes) or "no policy"
    if verdict.ok:
        human: list[RenderableType] = [line(f"OK: {subject.lower()} would be admitted "
                                            f"({policy}).", "green")]
        if verdict.overridden:
            human = [violations_table(verdict.overridden),
                     line(f"OK: {subject.lower()} would be admitted by an override of the "
                          f"{len(verdict.overridden)} violation(s) above ({policy}).",
                          "yellow")]
        return Outcome(data, human)
    n = len(verdict.violations)
    human = [violations_table(verdict.violations),
             line(f"{subject} would be rejected by {policy}: {n} violation"
                  f"{'s' if n != 1 else ''}.", "bold red")]
    return Outcome(data, human, tuple(violation_annotation(v) for v in verdict.violations),
                   ExitCode.FAILED)


def committed(dataset: str, commit: Commit, verb: str = "Committed", *,
              given: set[str] | None = None) -> Outcome:
    """A commit written; ``given`` (the files named) lets it list those carried over."""
    summary = assemble((f"{verb} ", "green"), (commit.short_hash, "yellow"),
                            f" to {dataset}", (f" [{', '.join(commit.tags)}]", "cyan")
                            if commit.tags else "")
    human: list[RenderableType] = [summary]
    if commit.override is not None:
        human.append(line(f"Admitted by an override: {governance_rows(commit)[-1][1]}",
                          "bold yellow"))
    carried = sorted(n for n in commit.files if n not in given) if given is not None else []
    if carried:
        shown = ", ".join(carried[:20]) + (f" and {len(carried) - 20} more"
                                           if len(carried) > 20 else "")
        human.append(line(f"Carried over from the previous commit ({len(carried)}): {shown}",
                          "dim"))
    return Outcome({"dataset": dataset, "commit": commit_data(commit)}, human)


def promoted(dataset: str, source: Commit, commit: Commit) -> Outcome:
    summary = assemble(("Promoted ", "green"), (source.short_hash, "yellow"), " as ",
                            (commit.short_hash, "yellow"),
                            (f" [{', '.join(commit.tags)}]", "cyan"))
    return Outcome({"dataset": dataset, "source": commit_data(source),
                    "commit": commit_data(commit)}, [summary])


def log(dataset: str, commits: Sequence[Commit], columns: Sequence[Column] = ()) -> Outcome:
    """``kirin log``; with ``columns``, the JSON document also lists each commit's values."""
    human: RenderableType = (commits_table(commits, columns=columns) if commits
                             else line("No commits match.", "dim"))
    data: dict[str, Any] = {"dataset": dataset, "commits": [commit_data(c) for c in commits]}
    if columns:
        data["columns"] = [column.name for column in columns]
        data["values"] = [{column.name: thaw(value) for column in columns
                           for found, value in [column.value(c.metadata)] if found}
                          for c in commits]
    return Outcome(data, [human])


def show(dataset: str, commit: Commit, approvals: Sequence[Approval] = ()) -> Outcome:
    human: list[RenderableType] = [commit_details(commit), Text(""),
                                   files_table(commit.files.values())]
    for approval in approvals:
        state = "" if approval.problem is None else f" (INVALID: {approval.problem})"
        human.append(line(f"approved for {approval.stage} by "
                          f"{approval.principal or 'a key of no principal'} at "
                          f"{approval.timestamp}: {approval.message}{state}",
                          "green" if approval.problem is None else "bold red"))
    return Outcome({"dataset": dataset, "commit": commit_data(commit),
                    "files": files_data(commit),
                    "approvals": [a.to_dict() for a in approvals]}, human)


def files(dataset: str, commit: Commit) -> Outcome:
    return Outcome({"dataset": dataset, "commit": commit.hash, "files": files_data(commit)},
                   [files_table(commit.files.values())])


def diff(dataset: str, old: Commit, new: Commit, changes: Mapping[str, Any]) -> Outcome:
    data: dict[str, Any] = {"dataset": dataset, "from": commit_data(old),
                            "to": commit_data(new)}
    for key in ("metadata_diff", "metadata_diff_paths", "tags_diff", "files_diff"):
        data[key] = thaw(changes[key])
    table = Table(show_edge=False, pad_edge=False,
                  title=f"{old.short_hash} -> {new.short_hash}", title_justify="left")
    table.add_column("")
    table.add_column("", style="dim")
    table.add_column("name", no_wrap=True)
    table.add_column(old.short_hash, style="red")
    table.add_column(new.short_hash, style="green")
    paths = data["metadata_diff_paths"]
    for key, value in paths["added"].items():
        table.add_row("+", "metadata", text(key), "", text(compact(value)))
    for key, value in paths["removed"].items():
        table.add_row("-", "metadata", text(key), text(compact(value)), "")
    for key, change in paths["changed"].items():
        table.add_row("~", "metadata", text(key), text(compact(change["old"])),
                      text(compact(change["new"])))
    for tag in data["tags_diff"]["added"]:
        table.add_row("+", "tag", text(tag), "", "")
    for tag in data["tags_diff"]["removed"]:
        table.add_row("-", "tag", text(tag), "", "")
    marks = {"added": "+", "removed": "-", "modified": "~"}
    for kind, mark in marks.items():
        for name in data["files_diff"][kind]:
            table.add_row(mark, "file", text(name), _file_cell(old, name),
                          _file_cell(new, name))
    human: RenderableType = table if table.row_count else line(
        f"No differences between {old.short_hash} and {new.short_hash}.", "dim")
    return Outcome(data, [human])


def _file_cell(commit: Commit, name: str) -> str:
    f = commit.files.get(name)
    return f"{f.short_hash} {size(f.size)}" if f else ""


def got(dataset: str, commit: Commit, directory: Path, written: Mapping[str, Path]) -> Outcome:
    entries = [{"name": name, "path": str(path), "size": commit.files[name].size}
               for name, path in written.items()]
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("file")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("written to")
    for e in entries:
        table.add_row(text(str(e["name"])), size(int(e["size"])), text(str(e["path"])))
    n = len(entries)
    summary = line(f"{n} file{'s' if n != 1 else ''} of {commit.short_hash} "
                   f"written to {directory}", "green")
    return Outcome({"dataset": dataset, "commit": commit.hash,
                    "directory": str(directory.resolve()),
                    "files": entries}, [table, summary])


def policy_show(dataset: str, policy: Policy | None, version: PolicyVersion | None
                ) -> Outcome:
    data = {"dataset": dataset, "policy_hash": policy.hash if policy is not None else None,
            "policy": policy.to_data() if policy is not None else None,
            "version": version.to_dict() if version is not None else None}
    if policy is None:
        when = f" since version #{version.seq}" if version is not None else ""
        return Outcome(data, [line(f"Dataset {dataset!r} has no policy{when}: every "
                                   "well-formed commit is admitted.", "dim")])
    label = f"version #{version.seq}, " if version is not None else ""
    human = [line(f"# policy {policy.hash} of dataset {dataset} ({label}"
                  f"{_version_note(version)})", "dim"),
             text(policy.to_text().rstrip("\n"))]
    return Outcome(data, human)


def _version_note(version: PolicyVersion | None) -> str:
    if version is None:
        return "in force"
    stamp = version.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} by {version.author}: {version.message}"


def policy_diffed(dataset: str, old: PolicyVersion, new: PolicyVersion,
                  lines: Sequence[str]) -> Outcome:
    data = {"dataset": dataset, "from": old.to_dict(), "to": new.to_dict(),
            "changed": bool(lines), "diff": list(lines)}
    if not lines:
        same = old.policy_hash[:12] if old.policy_hash else "no policy"
        return Outcome(data, [line(f"Policy versions #{old.seq} and #{new.seq} are the same "
                                   f"({same}).", "dim")])
    styles = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))
    human: list[RenderableType] = [
        text(entry, next((style for mark, style in styles if entry.startswith(mark)), ""))
        for entry in lines]
    return Outcome(data, human)


def policy_applied(dataset: str, before: str | None, after: str | None) -> Outcome:
    changed = before != after
    if not changed:
        message = line("The policy is already in force; nothing recorded.", "dim")
    elif after is None:
        message = line(f"Removed the policy of {dataset}.", "green")
    else:
        message = line(f"Policy {after[:12]} is now in force in {dataset}.", "green")
    return Outcome({"dataset": dataset, "policy_hash": after, "changed": changed}, [message])


@dataclass(frozen=True)
class CheckedPolicy:
    """One file of ``kirin policy check``: its policy, or why it is invalid, and warnings."""

    file: str
    policy: Policy | None
    error: PolicyError | None
    warnings: tuple[Finding, ...] = ()


def _policy_error_data(error: PolicyError) -> dict[str, Any]:
    return {"message": str(error), "line": error.line, "key_path": error.key_path}


def policy_checked(results: Sequence[CheckedPolicy], *, strict: bool = False) -> Outcome:
    """Each file: ok, or its error; warnings fail it only when ``strict``."""
    entries = []
    human: list[RenderableType] = []
    annotations = []
    for result in results:
        file, policy, error = result.file, result.policy, result.error
        warned = [w.to_error(file) for w in result.warnings]
        ok = error is None and not (strict and warned)
        entries.append({"file": file, "ok": ok,
                        "policy_hash": policy.hash if policy is not None else None,
                        "error": None if error is None else _policy_error_data(error),
                        "warnings": [_policy_error_data(w) for w in warned]})
        if error is None and policy is not None:
            human.append(assemble(("ok " if ok else "failed ", "green" if ok else "bold red"),
                                  file, (f"  policy {policy.hash[:12]}", "dim"),
                                  (f"  {len(warned)} warning{'s' if len(warned) != 1 else ''}"
                                   + (" (--strict)" if strict else ""), "yellow")
                                  if warned else ""))
        else:
            human.append(assemble(("invalid ", "bold red"), str(error)))
            annotations.append(Annotation(error.detail if error is not None else "",
                                          title="Kirin policy file", file=file,
                                          line=error.line if error is not None else None))
        for warning in warned:
            human.append(assemble(("  warning ", "yellow"), str(warning)))
            annotations.append(Annotation(warning.detail, title="Kirin policy file",
                                          level="error" if strict else "warning", file=file,
                                          line=warning.line))
    ok = all(e["ok"] for e in entries)
    return Outcome({"ok": ok, "files": entries}, human, tuple(annotations),
                   ExitCode.OK if ok else ExitCode.USAGE)


def policy_versions_table(versions: Sequence[PolicyVersion]) -> Table:
    """Policy versions, newest first: number, hash, when, by whom, why."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("#", "policy", "date", "author", "message"):
        table.add_column(column)
    for v in versions:
        table.add_row(str(v.seq), text(v.policy_hash[:12] if v.policy_hash else "(none)"),
                      v.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                      text(v.author), text(v.message))
    return table


def policy_history(dataset: str, versions: Sequence[PolicyVersion]) -> Outcome:
    human: RenderableType = policy_versions_table(versions) if versions else line(
        f"Dataset {dataset!r} has never had a policy.", "dim")
    return Outcome({"dataset": dataset, "versions": [v.to_dict() for v in versions]}, [human])


def audited(dataset: str, policy_hash: str | None, results: Sequence[tuple[Commit, Report]],
            *, against: str = "current", since: str | None = None,
            root_policy_hash: str | None = None) -> Outcome:
    """``kirin audit``: ``results`` are every reported commit (a report with no policy
    hash: not judged, admitted without a policy)."""
    from ..auditing import is_judged

    checked = [(c, r) for c, r in results if is_judged(r)]
    failures = [(c, r) for c, r in checked if not r.ok]
    data = {"dataset": dataset, "ok": not failures, "policy_hash": policy_hash,
            "root_policy_hash": root_policy_hash, "against": against, "since": since,
            "commits_checked": len(checked),
            "commits_not_judged": len(results) - len(checked),
            "failures": [{"commit": commit_data(c), "policy_hash": r.policy_hash,
                          "root_policy_hash": r.root_policy_hash,
                          "violations": [v.to_dict() for v in r.violations],
                          "overridden": [v.to_dict() for v in r.overridden]}
                         for c, r in failures]}
    window = f" ({'after' if since and not _looks_like_date(since) else 'since'} {since})" \
        if since else ""
    if against == "current" and policy_hash is None and root_policy_hash is None:
        return Outcome(data, [line(f"Dataset {dataset!r} has no policy: nothing to audit.",
                                   "dim")])
    human: list[RenderableType] = []
    annotations = []
    for commit, verdict in failures:
        judge = (f"  policy {verdict.policy_hash[:12]}"
                 if against == "admitting" and verdict.policy_hash else "")
        override = commit.override
        human.append(assemble((commit.short_hash, "yellow"), " ", commit.message,
                              (f" [{', '.join(commit.tags)}]", "cyan") if commit.tags else "",
                              (judge, "dim"),
                              (f"  override: {override['reason']}", "bold yellow")
                              if override is not None else ""))
        human.append(violations_table(verdict.violations))
        annotations += [Annotation(f"commit {commit.short_hash}: {v.rule}: {v.message}",
                                   title="Kirin audit") for v in verdict.violations]
    n, total = len(failures), len(checked)
    commits = f"commit{'s' if total != 1 else ''}"
    if against == "admitting":
        skipped = len(results) - total
        unjudged = (f"; {skipped} admitted without a policy, not judged" if skipped else "")
        summary = (f"The gate held: all {total} {commits}{window} satisfy the policy that "
                   f"admitted them{unjudged}." if not failures else
                   f"The gate did not hold: {n} of {total} {commits}{window} break the policy "
                   f"that admitted them{unjudged}.")
    else:
        judges = " and ".join(f"{what}policy {digest[:12]}" for what, digest in
                              (("", policy_hash), ("root ", root_policy_hash)) if digest)
        summary = (f"All {total} {commits}{window} satisfy {judges}." if not failures else
                   f"{n} of {total} {commits}{window} would be rejected by {judges} today.")
    human.append(line(summary, "green" if not failures else "bold red"))
    return Outcome(data, human, tuple(annotations),
                   ExitCode.FAILED if failures else ExitCode.OK)


def _looks_like_date(value: str) -> bool:
    from ..auditing import parse_moment

    return parse_moment(value) is not None


def verified(result: VerifyReport) -> Outcome:
    human: list[RenderableType] = []
    annotations = []
    if result.problems:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("kind", "problem", "commits", "files"):
            table.add_column(column)
        for p in result.problems:
            table.add_row(text(p.kind), text(p.message),
                          text(", ".join(c[:12] for c in p.commits)), text(", ".join(p.files)))
            affected = ""
            if p.commits:
                affected += f" (commits: {', '.join(c[:12] for c in p.commits)}"
                affected += f"; files: {', '.join(p.files)})" if p.files else ")"
            annotations.append(Annotation(p.message + affected, title="Kirin verify"))
        human.append(table)
    summary = (f"{result.commits_checked} commits, {result.blobs_checked} blobs, "
               f"{size(result.bytes_checked)} checked")
    if result.policy_trust is not None:
        human.append(line("The policy's chain of trust starts at the pinned policy." if
                          result.policy_trust == "pinned" else "The first policy version is "
                          "trusted on first use (no pin: kirin.yaml trust:, "
                          "KIRIN_TRUST_POLICY).", "dim"))
    if result.root_policy_trust is not None:
        human.append(line("The root policy's chain of trust starts at the pinned policy." if
                          result.root_policy_trust == "pinned" else "The first root policy "
                          "version is trusted on first use (no pin: kirin.yaml trust_root:, "
                          "KIRIN_TRUST_ROOT_POLICY).", "dim"))
    if result.ok:
        human.append(line(f"OK: {summary}; no problems.", "green"))
    else:
        n = len(result.problems)
        human.append(line(f"{n} problem{'s' if n != 1 else ''} found ({summary}).",
                          "bold red"))
    return Outcome(result.to_dict(), human, tuple(annotations),
                   ExitCode.OK if result.ok else ExitCode.FAILED)


def collected(root: str, result: GcReport) -> Outcome:
    verb = "Would remove" if result.dry_run else "Removed"
    human = Group(
        line(f"{verb} {len(result.removed)} unreferenced blob"
             f"{'s' if len(result.removed) != 1 else ''} ({size(result.bytes_freed)}) "
             f"under {root}.", "green"),
        line(f"{result.blobs_seen} blobs seen, {result.blobs_referenced} referenced by "
             f"{result.datasets} datasets, {result.kept_recent} unreferenced but kept "
             f"(younger than the grace period), {result.temp_removed} stale partial "
             "uploads removed.", "dim"))
    return Outcome({"root": root, **result.to_dict()}, [human])


def catalog(root: str, datasets: Sequence[tuple[str, str]]) -> Outcome:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("dataset", style="bold")
    table.add_column("description")
    for name, description in datasets:
        table.add_row(text(name), text(description))
    human: RenderableType = table if datasets else line(f"No datasets under {root}.", "dim")
    return Outcome({"root": root, "datasets": [{"name": n, "description": d}
                                               for n, d in datasets]}, [human])


def initialised(dataset: str, root: str, description: str, policy_hash: str | None,
                config_file: Path | None) -> Outcome:
    human = [line(f"Created dataset {dataset} in {root}" +
                  (f" with policy {policy_hash[:12]}" if policy_hash else "") + ".", "green")]
    if config_file is not None:
        human.append(line(f"Wrote {config_file}.", "dim"))
    return Outcome({"dataset": dataset, "root": root, "description": description,
                    "policy_hash": policy_hash,
                    "config_file": str(config_file) if config_file else None}, human)
