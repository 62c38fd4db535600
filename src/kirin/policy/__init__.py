"""The policy layer: what a commit must satisfy, checked before anything is written.

Pure by design — no storage, no network. :func:`load_policy` reads a YAML
policy (and the schema file it names) into an immutable :class:`Policy`;
:func:`evaluate_policy` judges a :class:`~kirin.values.Proposal` against the
history it would extend and returns a :class:`Report` listing every
:class:`Violation`; :func:`audit` re-judges an existing history. The
expression language of promotion rules and queries is re-exported from
:mod:`kirin.policy.expr`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._patterns import MAX_PATTERN_LENGTH, MAX_TAG_LENGTH
from .expr import Expr, Failure, check, evaluate, parse, paths

if TYPE_CHECKING:
    from .gate import Report, Violation, audit, evaluate_policy, proposal_from_commit
    from .loader import load_policy, load_policy_text, policy_from
    from .model import policy_json_schema
    from .rules import MessageRules, MetadataRules, Policy, PromotionRule, TagRules

#: Names loaded on first use: the model, loader and gate import pydantic and jsonschema
#: (a third of a second), which a query (``find_commits(where=...)``, ``kirin log
#: --where``) imports this package for but does not need.
_LAZY = {
    **dict.fromkeys(("Report", "Violation", "audit", "evaluate_policy",
                     "proposal_from_commit"), "gate"),
    **dict.fromkeys(("load_policy", "load_policy_text", "policy_from"), "loader"),
    **dict.fromkeys(("MessageRules", "MetadataRules", "Policy", "PromotionRule", "TagRules"),
                    "rules"),
    "policy_json_schema": "model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_TAG_LENGTH",
    "Expr",
    "Failure",
    "MessageRules",
    "MetadataRules",
    "Policy",
    "PromotionRule",
    "Report",
    "TagRules",
    "Violation",
    "audit",
    "check",
    "evaluate",
    "evaluate_policy",
    "load_policy",
    "load_policy_text",
    "parse",
    "paths",
    "policy_from",
    "policy_json_schema",
    "proposal_from_commit",
]
