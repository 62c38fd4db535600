"""The root policy: the rules every dataset under a registry root must also satisfy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType

from .app import root_policy_app
from .commands import (
    AuthorOption,
    KeyOption,
    SignatureOption,
    signature_files,
    signer_from,
    signing_key,
)
from .output import Outcome, text
from .runner import Scope, Session, command
from .views import line, policy_versions_table


@command(root_policy_app, "apply", scope=Scope.ROOT, shape="root-policy apply")
def apply(session: Session, *,
          file: Annotated[Path, typer.Argument(
              metavar="FILE", help="Policy file (YAML).", show_default=False)],
          message: Annotated[str, typer.Option(
              "--message", "-m", metavar="TEXT", help="Why the root policy changes (kept "
              "in its history; default: 'Apply FILE').")] = "",
          author: AuthorOption = None, key: KeyOption = None,
          signature: SignatureOption = None) -> Outcome:
    """Make FILE the root policy: every commit of every dataset here must satisfy it.

    Datasets that do not exist yet included, so a commit to a misspelt dataset
    name is judged by it. A dataset's own policy adds rules on top (both must
    pass). The file is checked first (exit code 2 if invalid, nothing stored).
    Where the root policy in force says who must sign its replacement
    (signing.require.policy), give enough admins' signatures (--key signs
    here, --signature adds ones made with kirin root-policy sign); too few
    exit with 1, nothing stored.
    """
    catalog = session.catalog()
    before = catalog.policy
    signer = signer_from(key)
    after = catalog.set_policy(file, message=message or f"Apply {file.name}", author=author,
                               signers=[signer] if signer is not None else [],
                               signatures=signature_files(signature))
    changed = (before.hash if before else None) != after
    human = line(f"Root policy {after[:12]} is now in force under {session.location.root}."
                 if changed and after else "The root policy is already in force; nothing "
                 "recorded." if not changed else "Removed the root policy.",
                 "green" if changed else "dim")
    return Outcome({"root": session.location.root, "policy_hash": after, "changed": changed},
                   [human])


@command(root_policy_app, "sign", scope=Scope.ROOT, shape="root-policy sign")
def sign(session: Session, *,
         file: Annotated[Path, typer.Argument(
             metavar="FILE", help="Policy file (YAML) to authorise.", show_default=False)],
         key: KeyOption = None) -> Outcome:
    """Sign FILE as the root policy's next version, for another admin's root-policy apply.

    Prints the signature (--format json: a document root-policy apply
    --signature takes). It authorises exactly this policy as the next version:
    it is no longer valid once another version is set.
    """
    import json

    signer = signing_key(key)
    signed = session.catalog().sign_policy(file, signer)
    version = int(signed.pop("version"))
    return Outcome({"root": session.location.root, "version": version, "signature": signed},
                   [line(f"Signed {file} as version #{version} of the root policy with "
                         f"{signer.public_key.fingerprint}.", "green"),
                    line(json.dumps(signed))])


@command(root_policy_app, "show", scope=Scope.ROOT, shape="root-policy show")
def show(session: Session) -> Outcome:
    """Print the root policy in force, and its hash."""
    policy = session.catalog().policy
    data = {"root": session.location.root,
            "policy_hash": policy.hash if policy is not None else None,
            "policy": policy.to_data() if policy is not None else None}
    if policy is None:
        return Outcome(data, [line("No root policy: each dataset's own policy (if any) "
                                   "judges its commits.", "dim")])
    return Outcome(data, [line(f"# root policy {policy.hash}", "dim"),
                          text(policy.to_text().rstrip("\n"))])


@command(root_policy_app, "history", scope=Scope.ROOT, shape="root-policy history")
def history(session: Session) -> Outcome:
    """List every version of the root policy, newest first."""
    versions = session.catalog().policy_history()
    human: RenderableType = policy_versions_table(versions) if versions else line(
        "The root has never had a policy.", "dim")
    return Outcome({"root": session.location.root,
                    "versions": [v.to_dict() for v in versions]}, [human])
