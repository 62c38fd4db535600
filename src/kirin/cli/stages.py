"""Commands on a dataset's stages: status (who holds each, and since when) and withdraw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType
from rich.table import Table

from . import views
from .app import app
from .commands import (
    AuthorOption,
    KeyOption,
    OverrideOption,
    ReasonOption,
    _written,
    signer_from,
)
from .output import Outcome, text
from .runner import Scope, Session, command

if TYPE_CHECKING:
    from ..governance import StageStatus, Tenure


@command(app, "status", scope=Scope.DATASET)
def status(session: Session, *,
           history: Annotated[str | None, typer.Option(
               "--history", metavar="STAGE", help="Every commit that held STAGE, oldest "
               "first, with when and how each tenure ended.", show_default=False)] = None
           ) -> Outcome:
    """Show each stage's holder: commit, since when, by whom, promoted from which commit.

    The stages are those the policy declares (stages:), else the tags of its
    promotion rules. A stage emptied by kirin withdraw shows the withdrawal.
    """
    dataset = session.dataset()
    if history is not None:
        return _timeline(dataset.name, history, dataset.stage_history(history))
    found = dataset.stages()
    head = dataset.current_commit
    table = Table(show_edge=False, pad_edge=False)
    for column in ("stage", "commit", "since", "by", "from", "versions"):
        table.add_column(column, no_wrap=column in ("stage", "commit", "since"))
    for row in found:
        table.add_row(*_status_cells(row))
    human: list[RenderableType] = [table] if found else [
        views.line("No stages: the policy declares none (stages:) and has no promotion "
                   "rules.", "dim")]
    pin, root_pin = dataset.trusted_policy, dataset.trusted_root_policy
    if dataset.policy is not None:
        human.append(views.line(
            f"Policy chain of trust starts at the pinned policy {pin[:12]}." if pin else
            "The first policy version is trusted on first use (no pin: kirin.yaml trust:, "
            "KIRIN_TRUST_POLICY).", "dim"))
    if dataset.root_policy is not None:
        human.append(views.line(
            f"Root policy chain of trust starts at the pinned policy {root_pin[:12]}."
            if root_pin else "The first root policy version is trusted on first use (no "
            "pin: kirin.yaml trust_root:, KIRIN_TRUST_ROOT_POLICY).", "dim"))
    rows = []
    for row in found:
        data = row.to_dict()
        source = row.promoted_from
        data["approvals"] = [a.to_dict() for a in dataset.approvals(source, row.stage)] if (
            source is not None) else []
        rows.append(data)
    return Outcome({"dataset": dataset.name, "head": head.hash if head else None,
                    "policy_trust": "pinned" if pin else "first use",
                    "root_policy_trust": "pinned" if root_pin else "first use",
                    "stages": rows}, human)


def _status_cells(row: StageStatus) -> tuple[RenderableType, ...]:
    commit = row.commit
    if commit is None:
        withdrawn = row.withdrawn_by
        note = (f"withdrawn {views.when(withdrawn)} by {withdrawn.author}: {withdrawn.message}"
                if withdrawn is not None else "never held")
        return (text(row.stage, "bold"), text("-"), text(note, "dim"), text(""), text(""),
                text(""))
    source = row.promoted_from
    flag = " (override)" if commit.override is not None else ""
    return (text(row.stage, "bold"), text(commit.short_hash + flag, "yellow"),
            text(views.when(commit)), text(commit.author),
            text(source[:8] if source else "-"), views.tags_text(row.version_tags))


def _timeline(dataset: str, stage: str, held: list[Tenure]) -> Outcome:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("commit", "since", "until", "by", "from", "ended"):
        table.add_column(column, no_wrap=column != "ended")
    for tenure in held:
        commit = tenure.commit
        ended = tenure.ended_by
        how = "-" if ended is None else f"{tenure.how} by {ended.short_hash}"
        if ended is not None and tenure.how == "withdrawn":
            how += f": {ended.message}"
        table.add_row(text(commit.short_hash, "yellow"), text(views.when(commit)),
                      text(views.when(ended) if ended else "now"), text(commit.author),
                      text(commit.promoted_from[:8] if commit.promoted_from else "-"),
                      text(how))
    human: list[RenderableType] = [table] if held else [
        views.line(f"No commit has held {stage!r}.", "dim")]
    return Outcome({"dataset": dataset, "stage": stage,
                    "tenures": [t.to_dict() for t in held]}, human)


@command(app, "withdraw", scope=Scope.DATASET, gate=True)
def withdraw(session: Session, *,
             stage: Annotated[str, typer.Argument(
                 metavar="STAGE", help="The stage to retire its holder from (e.g. "
                 "production).", show_default=False)],
             message: Annotated[str, typer.Option(
                 "--message", "-m", metavar="TEXT", help="Why it is withdrawn (the record's "
                 "message).", show_default=False)],
             author: AuthorOption = None, expect: Annotated[str | None, typer.Option(
                 "--expect", metavar="HASH", help="Refuse unless STAGE is held by the commit "
                 "with this full hash.", show_default=False)] = None,
             override: OverrideOption = False, reason: ReasonOption = None,
             key: KeyOption = None) -> Outcome:
    """Retire STAGE's holder without replacing it.

    Recorded in the history as a withdrawal (judged by the policy like any
    commit: its message rules apply); afterwards STAGE names no commit until
    a promotion. kirin status shows who withdrew it, when and why.
    """
    dataset = session.dataset()
    digest = dataset.withdraw(stage, message, author, expect=expect, override=override,
                              reason=reason, signer=signer_from(key))
    return views.committed(dataset.name, _written(dataset, digest), "Withdrew stage "
                           f"{stage} with")



@command(app, "approve", scope=Scope.DATASET, shape="approve")
def approve(session: Session, *, ref: Annotated[str, typer.Argument(
                metavar="REF", help="The commit to approve (hash, prefix, tag).",
                show_default=False)],
            stage: Annotated[str, typer.Option(
                "--for", metavar="STAGE", help="The stage it may be promoted to.",
                show_default=False)],
            message: Annotated[str, typer.Option(
                "--message", "-m", metavar="TEXT", help="What was checked (kept, signed).",
                show_default=False)],
            key: KeyOption = None) -> Outcome:
    """Approve REF for STAGE: a signed, write-once approval of exactly that commit.

    Where the policy says a stage needs approvals (signing.require.approvals),
    a promotion to it counts the distinct valid approvers of the commit
    promoted. Signed with --key, else KIRIN_SIGNING_KEY, else the ssh-agent.
    """
    dataset = session.dataset()
    found = dataset.approve(ref, stage, message, signer=signer_from(key))
    who = found.principal or "a key of no principal"
    return Outcome({"dataset": dataset.name, "approval": found.to_dict()},
                   [views.line(f"Approved {found.commit[:8]} for {stage} as {who}.", "green")])
