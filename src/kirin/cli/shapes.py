"""The documented shape of every ``--format json`` document.

One source for the help text (each command's epilog), ``docs/cli.md`` and
the tests that check real output against it. The notation:

* ``"str"``, ``"int"``, ``"number"``, ``"bool"``, ``"null"``, ``"any"``,
  ``"object"`` (any JSON object); ``"str | null"`` is either;
* ``"<commit>"`` is the shared object of that name (see :data:`OBJECTS`);
* ``[X]`` is a list of X; ``{"key": X}`` an object with exactly those keys
  (``"key?"`` may be absent); ``{"*": X}`` an object with any keys.

Shapes only grow: a key may be added in a later version, never renamed or
removed.
"""

from __future__ import annotations

import json
from typing import Any

Shape = Any

OBJECTS: dict[str, Shape] = {
    "commit": {
        "hash": "str", "short_hash": "str", "parent_hash": "str | null", "seq": "int",
        "message": "str", "metadata": "object", "tags": ["str"],
        "timestamp": "str", "author": "str", "policy_hash": "str | null",
        "root_policy_hash": "str | null", "kind": "str", "promoted_from": "str | null",
        "withdrawal": "<withdrawal> | null", "rollback": "<rollback> | null",
        "override": "<override> | null", "signature": "<signature> | null",
        "lineage": "<lineage> | null",
    },
    "lineage": {"inputs": ["<link>"], "code": "str | null", "run": "str | null"},
    "link": {"role": "str", "dataset": "str", "commit": "str", "root": "str | null"},
    "lineage_node": {"dataset": "str", "root": "str | null", "hash": "str",
                     "role": "str | null", "problem": "str | null", "repeated": "bool",
                     "message": "str | null", "tags": ["str"], "timestamp": "str | null",
                     "author": "str | null", "kind": "str | null", "code": "str | null",
                     "run": "str | null", "inputs": ["<lineage_node>"]},
    "use": {"dataset": "str", "hash": "str", "seq": "int", "role": "str", "depth": "int",
            "links_to": {"dataset": "str", "root": "str | null", "commit": "str"},
            "message": "str", "tags": ["str"], "holds": ["str"], "timestamp": "str",
            "author": "str", "code": "str | null", "run": "str | null"},
    "signature": {"key": "str", "sig": "str"},
    "approval": {"commit": "str", "stage": "str", "message": "str", "timestamp": "str",
                 "key": "str", "principal": "str | null", "valid": "bool",
                 "problem": "str | null"},
    "withdrawal": {"stage": "str", "holder": "str"},
    "rollback": {"held": "str", "policy": "str | null", "root_policy": "str | null"},
    "override": {"reason": "str", "violations": [{"rule": "str", "path": "str",
                                                  "source": "str", "message": "str"}]},
    "file": {"name": "str", "hash": "str", "size": "int", "content_type": "str"},
    "violation": {"rule": "str", "path": "str", "value": "any", "expected": "str",
                  "message": "str", "source": "str"},
    "problem": {"kind": "str", "path": "str", "message": "str", "commits": ["str"],
                "files": ["str"]},
    "policy_version": {"seq": "int", "policy_hash": "str | null", "timestamp": "str",
                       "author": "str", "message": "str"},
    "policy_error": {"message": "str", "line": "int | null", "key_path": "str | null"},
    "change": {"added": "object", "removed": "object",
               "changed": {"*": {"old": "any", "new": "any"}}},
    "error": {"error": {"type": "str", "message": "str", "exit_code": "int",
                        "violations?": ["<violation>"]}},
}

OBJECT_NOTES: dict[str, str] = {
    "commit": "A commit (timestamps are ISO 8601 with offset; policy_hash and "
              "root_policy_hash are the dataset's and the root's policies that admitted it). "
              "kind is commit, promotion, rollback or withdrawal; promoted_from is the full "
              "hash a promotion or rollback promoted.",
    "withdrawal": "What a withdrawal retired: the stage and the commit that held it.",
    "rollback": "What a rollback restored: the earlier holder, and the hashes of the "
                "policies that admitted it then (the rollback was judged by them).",
    "override": "Break-glass: the reason given and every violation the override let past.",
    "approval": "A signed approval of a commit for a stage (kirin approve); valid: its "
                "signature holds and it approves that commit and stage; principal: whose key.",
    "lineage": "What a commit says it was derived from: the commits it links to (inputs), "
               "the code revision and the run id (kirin commit --from, --code, --run).",
    "link": "One input of a commit: the full hash of a commit of dataset, linked as role; "
            "root is the URL of another registry root (null: the same root).",
    "lineage_node": "A commit of kirin lineage's tree, with the role it was linked as and "
                    "its own inputs; problem says why a link cannot be followed (then the "
                    "commit's fields are null); repeated marks a commit shown above.",
    "use": "A commit that links to the target (depth 1) or to a commit that does (depth "
           "2, ...); links_to is the commit it names; holds the stages of its dataset it "
           "holds now.",
    "signature": "The signer's OpenSSH public key and the SSHSIG signature (namespace "
                 "kirin) of the record; kirin verify checks it.",
    "file": "A file of a commit: its name in the registry, SHA-256 and size in bytes.",
    "violation": "One broken policy rule. rule is a stable id such as metadata.schema, "
                 "tags.allowed, tags.unique, tags.exclusive, promotion.<tag>.when, "
                 "promotion.<tag>.required_files, promotion.<tag>.requires_stage, "
                 "lineage.<tag>.requires[<n>], lineage.<tag>.code, lineage.<tag>.run, "
                 "message.min_length, overrides.rules. source says which policy the rule "
                 "came from: dataset, or root (the registry's root policy).",
    "problem": "One thing kirin verify found wrong (kind: record, snapshot, checkpoint, "
               "segment, summary, policy, signature, blob, lineage (a link that cannot be "
               "followed) or lineage-index) and the commits and files it affects.",
    "policy_version": "One version of a dataset's policy (policy_hash null: no policy).",
    "policy_error": "Why a policy file is invalid, and where (1-based line); also a "
                    "warning of kirin policy check.",
    "change": "Metadata differences (changed keys map to their old and new values).",
    "error": "Printed on stdout instead of the command's document when a command fails "
             "with --format json (the one-line message also goes to stderr).",
}

REPORT: Shape = {"dataset": "str", "ok": "bool", "policy_hash": "str | null",
                 "root_policy_hash": "str | null", "violations": ["<violation>"],
                 "overridden": ["<violation>"]}

COMMANDS: dict[str, Shape] = {
    "init": {"dataset": "str", "root": "str", "description": "str",
             "policy_hash": "str | null", "config_file": "str | null"},
    "commit": {"dataset": "str", "commit": "<commit>"},
    "validate": REPORT,
    "promote": {"dataset": "str", "source": "<commit>", "commit": "<commit>"},
    "log": {"dataset": "str", "commits": ["<commit>"], "columns?": ["str"],
            "values?": [{"*": "any"}]},
    "show": {"dataset": "str", "commit": "<commit>", "files": ["<file>"],
             "approvals": ["<approval>"]},
    "diff": {"dataset": "str", "from": "<commit>", "to": "<commit>",
             "metadata_diff": "<change>", "metadata_diff_paths": "<change>",
             "tags_diff": {"added": ["str"], "removed": ["str"]},
             "files_diff": {"added": ["str"], "removed": ["str"], "modified": ["str"]}},
    "files": {"dataset": "str", "commit": "str", "files": ["<file>"]},
    "get": {"dataset": "str", "commit": "str", "directory": "str",
            "files": [{"name": "str", "path": "str", "size": "int"}]},
    "policy show": {"dataset": "str", "policy_hash": "str | null", "policy": "object | null",
                    "version": "<policy_version> | null"},
    "policy diff": {"dataset": "str", "from": "<policy_version>", "to": "<policy_version>",
                    "changed": "bool", "diff": ["str"]},
    "policy apply": {"dataset": "str", "policy_hash": "str | null", "changed": "bool"},
    "policy check": {"ok": "bool", "files": [{"file": "str", "ok": "bool",
                                              "policy_hash": "str | null",
                                              "error": "<policy_error> | null",
                                              "warnings": ["<policy_error>"]}]},
    "policy sign": {"dataset": "str", "version": "int", "signature": "<signature>"},
    "policy history": {"dataset": "str", "versions": ["<policy_version>"]},
    "audit": {"dataset": "str", "ok": "bool", "policy_hash": "str | null",
              "root_policy_hash": "str | null", "against": "str", "since": "str | null",
              "commits_checked": "int", "commits_not_judged": "int",
              "failures": [{"commit": "<commit>", "policy_hash": "str | null",
                            "root_policy_hash": "str | null",
                            "violations": ["<violation>"],
                            "overridden": ["<violation>"]}]},
    "verify": {"dataset": "str", "ok": "bool", "commits_checked": "int",
               "blobs_checked": "int", "bytes_checked": "int", "policy_trust": "str | null",
               "root_policy_trust": "str | null",
               "problems": ["<problem>"]},
    "gc": {"root": "str", "dry_run": "bool", "datasets": "int", "blobs_seen": "int",
           "blobs_referenced": "int", "removed": ["str"], "bytes_freed": "int",
           "kept_recent": "int", "temp_removed": "int"},
    "catalog list": {"root": "str", "datasets": [{"name": "str", "description": "str"}]},
    "import mlflow": {"dataset": "str", "model": "str", "dry_run": "bool", "ok": "bool",
                      "policy_hash": "str | null",
                      "imported": [{"version": "int", "commit": "<commit> | null"}],
                      "skipped": ["int"],
                      "rejected": [{"version": "int", "violations": ["<violation>"]}],
                      "pending": ["int"]},
    "import kirin-0.0": {"source": "str", "root": "str", "dry_run": "bool",
                         "datasets": [{"name": "str", "commits": "int", "imported": "int",
                                       "skipped": "int", "files_checked": "int",
                                       "bytes_checked": "int", "hashes": ["str"]}]},
    "root-policy apply": {"root": "str", "policy_hash": "str | null", "changed": "bool"},
    "root-policy sign": {"root": "str", "version": "int", "signature": "<signature>"},
    "root-policy show": {"root": "str", "policy_hash": "str | null",
                         "policy": "object | null"},
    "root-policy history": {"root": "str", "versions": ["<policy_version>"]},
    "status": {"dataset": "str", "head": "str | null", "policy_trust": "str",
               "root_policy_trust": "str", "stages": [{
        "stage": "str", "commit": "str | null", "since": "str | null", "by": "str | null",
        "kind": "str | null", "promoted_from": "str | null", "version_tags": ["str"],
        "overridden": "bool", "withdrawn": "object | null", "approvals": ["<approval>"]}]},
    "withdraw": {"dataset": "str", "commit": "<commit>"},
    "approve": {"dataset": "str", "approval": "<approval>"},
    "export": {"root": "str", "output": "str", "format": "str", "datasets": "int",
               "rows": "int", "columns": ["str"]},
    "ui": {"url": "str", "root": "str", "dataset": "str | null"},
    "lineage": {"dataset": "str", "lineage": "<lineage_node>"},
    "used-by": {"root": "str", "target": {"dataset": "str", "root": "str | null",
                                          "commit": "str"},
                "version": ["str"], "stage": "str | null", "datasets_scanned": "int",
                "used_by": ["<use>"]},
}

#: Variants a command prints instead of its own shape.
VARIANTS: dict[str, str] = {
    "log": "with --columns: columns lists the metadata paths asked for, and values[i] "
           "the fields commits[i] has of them (a missing field is left out)",
    "commit": "with --dry-run: the document of kirin validate",
    "promote": "with --dry-run: the document of kirin validate",
    "status": "with --history STAGE: {dataset, stage, tenures: [{stage, commit, since, by, "
              "kind, promoted_from, message, until, ended_by, how}]}",
    "import mlflow": "with --dry-run: imported lists the versions that would be imported "
                     "(commit null), rejected every version the policy would reject",
    "ui": "printed when the server stops; the address goes to stderr as soon as it listens",
}


def render(shape: Shape, indent: str = "") -> str:
    """The shape as readable JSON-like text: ``{"hash": str, "tags": [str]}``."""
    if isinstance(shape, str):
        return shape
    if isinstance(shape, list):
        return "[" + render(shape[0], indent) + "]"
    inner = indent + "  "
    items = [f"{inner}{json.dumps(key)}: {render(value, inner)}" for key, value in shape.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def epilog(command: str) -> str:
    """The help epilog documenting ``command``'s JSON document."""
    variant = VARIANTS.get(command)
    lines = render(COMMANDS[command]).splitlines()
    note = f"\n\n{variant[0].upper()}{variant[1:]}." if variant else ""
    return ("JSON document (--format json); <name> objects are described in "
            "docs/cli.md:\n\n\b\n" + "\n".join(lines) + note)
