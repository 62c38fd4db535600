"""Commands on lineage: what a commit came from (lineage), what came from it (used-by)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .commands import OptionalRef
from .output import Outcome, text
from .runner import Scope, Session, command

if TYPE_CHECKING:  # only annotations: kirin.lineage loads when a command here runs
    from rich.console import RenderableType

    from ..lineage import LineageNode, UsedBy


@command(app, "lineage", scope=Scope.DATASET)
def lineage(session: Session, *, ref: OptionalRef = None) -> Outcome:
    """Show what REF was derived from, transitively: the commits it links to, theirs...

    Each line is a commit, indented under the commit that links to it, with
    the role of the link (kirin commit --from ROLE=DATASET@REF), its message
    and tags, and the code revision and run it names. A link that can no
    longer be followed (its dataset or commit is gone or damaged) is shown
    with the reason; kirin verify reports it too.
    """
    dataset = session.dataset()
    tree = dataset.lineage(ref)
    return Outcome({"dataset": dataset.name, "lineage": tree.to_dict()}, _tree(tree))


def _tree(tree: LineageNode) -> list[RenderableType]:
    out: list[RenderableType] = []
    for depth, node in tree.walk():
        style = "red" if node.problem else ("dim" if node.repeated else "")
        out.append(text("    " * depth + node.label(), style))
    return out


@command(app, "used-by", scope=Scope.ANY_DATASET)
def used_by(session: Session, *,
            target: Annotated[str, typer.Argument(
                metavar="[DATASET@]REF", help="The commit whose users to find: "
                "DATASET@REF (hash, prefix, tag or stage), ROOT#DATASET@REF for a dataset of "
                "another root, or REF of --dataset.", show_default=False)],
            stage: Annotated[str | None, typer.Option(
                "--stage", metavar="STAGE", help="Only the commits that hold STAGE of their "
                "dataset now, e.g. --stage production: which production models used this "
                "data.", show_default=False)] = None) -> Outcome:
    """List every commit of the root that links to a commit, transitively.

    Direct users first (they name the commit, or a promotion of it, in
    their lineage), then what links to those, and so on, as a tree. Reads
    the lineage index of every dataset (kept beside the checkpoints), so it
    stays fast on a large root.
    """
    if "@" not in target and session.location.dataset:
        target = f"{session.location.dataset}@{target}"
    found = session.catalog().used_by(target, stage=stage)
    return Outcome({"root": session.location.root, **found.to_dict()}, _uses(found))


def _uses(found: UsedBy) -> list[RenderableType]:
    lines = found.lines()
    out: list[RenderableType] = [text(lines[0], "bold")]
    out += [text(line) for line in lines[1:]]
    if not found.uses:
        where = f" holding {found.stage!r}" if found.stage else ""
        out.append(text(f"No commit{where} links to it ({found.scanned} datasets read).",
                        "dim"))
    return out
