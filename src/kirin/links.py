"""Lineage links as values: what a commit says it was derived from, and how that is stored.

A commit may name the commits of other datasets it was made from (a model's
training data), each under a *role* (``training``, ``validation``), plus
two plain references: the code revision (a git commit) and the run id. They
are written into the commit record under ``lineage`` (a version 2 record,
see ``docs/storage-format.md``), inside what the record's hash covers, so a
link cannot be changed or removed without the record failing its hash.

Why links name *full* commit hashes and never tags: a tag or stage moves,
a hash does not, so "the data behind this model" is answered exactly. And
because a hash covers the links, a commit can only link to commits that
existed before it: a cycle would need a record to contain its own hash.

Pure: parsing, checking and encoding only; resolving a reference to a
commit (I/O) is :mod:`kirin.lineage`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._json import FrozenDict, has_type, plain_str
from .digests import is_digest
from .errors import CorruptObjectError, InvalidArgumentTypeError, InvalidInputError
from .naming import validate_dataset_name

#: The role of a link given without one (``--from churn_data@v3``).
DEFAULT_ROLE = "data"
#: A role is a short ASCII identifier, so a policy rule can name it exactly.
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: Code revisions and run ids are printable ASCII without spaces: a git hash, a tag, an
#: MLflow run id. No control character or look-alike letter can hide in one.
_PLAIN_REF = re.compile(r"[\x21-\x7e]{1,256}")
MAX_LINKS = 256
MAX_ROOT_LENGTH = 1024
#: ``[ROOT#]DATASET@REF``: the longest ROOT that leaves a dataset name and a ref.
_TARGET = re.compile(r"(?:(?P<root>.*)#)?(?P<dataset>[^@#/]+)@(?P<ref>.+)", re.DOTALL)
#: The storage a link into another root may name: Kirin's backends, nothing else. A root is
#: read back from stored records, so a record must not make a reader open any URL it likes.
ROOT_PROTOCOLS = frozenset({"file", "memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_URL = re.compile(r"(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)
_PASSWORD = re.compile(r"[^/@]*:[^/@]*@")
_ROLE_PREFIX = re.compile(r"(?P<role>[A-Za-z_][A-Za-z0-9_-]*)=(?P<rest>.*)", re.DOTALL)
_LINEAGE_KEYS = frozenset({"inputs", "code", "run"})
_LINK_KEYS = frozenset({"role", "dataset", "commit"})


@dataclass(frozen=True, order=True)
class Link:
    """One input of a commit: the commit ``commit`` (full hash) of ``dataset``, as ``role``.

    ``root`` is the registry root of ``dataset`` when it is another root than the
    linking commit's (its URL as given), else ``""``.
    """

    role: str
    root: str
    dataset: str
    commit: str

    @property
    def ref(self) -> str:
        """``[ROOT#]DATASET@HASH``: the form ``kirin used-by`` and ``--from`` take."""
        where = f"{self.root}#" if self.root else ""
        return f"{where}{self.dataset}@{self.commit}"

    @property
    def in_root(self) -> bool:
        """Whether the linked dataset lives in the same root as the linking commit."""
        return not self.root

    def to_record(self) -> dict[str, str]:
        record = {"role": self.role, "dataset": self.dataset, "commit": self.commit}
        if self.root:
            record["root"] = self.root
        return record

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "dataset": self.dataset, "commit": self.commit,
                "root": self.root or None}


@dataclass(frozen=True)
class Lineage:
    """Everything a commit says it came from: linked commits, code revision, run id.

    ``inputs`` is kept in the canonical order (role, root, dataset, commit), the
    order of the stored record, so two commits with the same links hash alike
    however the links were given.
    """

    inputs: tuple[Link, ...] = ()
    code: str | None = None
    run: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(sorted(self.inputs)))

    def __bool__(self) -> bool:
        return bool(self.inputs) or self.code is not None or self.run is not None

    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(link.role for link in self.inputs))

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.inputs:
            record["inputs"] = [link.to_record() for link in self.inputs]
        if self.code is not None:
            record["code"] = self.code
        if self.run is not None:
            record["run"] = self.run
        return record

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [link.to_dict() for link in self.inputs], "code": self.code,
                "run": self.run}

    @classmethod
    def from_record(cls, value: Mapping[str, Any]) -> Lineage:
        """The lineage of a record already checked by :func:`check_lineage_record`."""
        return cls(tuple(Link(str(i["role"]), str(i.get("root", "")), str(i["dataset"]),
                              str(i["commit"])) for i in value.get("inputs", ())),
                   value.get("code"), value.get("run"))


@dataclass(frozen=True)
class LinkSpec:
    """A link as asked for, before its ref is resolved: ``role`` = ``[root#]dataset@ref``."""

    role: str
    root: str
    dataset: str
    ref: str

    def __str__(self) -> str:
        where = f"{self.root}#" if self.root else ""
        return f"{self.role}={where}{self.dataset}@{self.ref}"


@dataclass(frozen=True)
class LinkedState:
    """What a linked commit is *now*, in its own dataset: what a lineage rule judges.

    ``problem`` says why the commit cannot be judged (its dataset or commit is
    gone, its record is damaged); then nothing else is known and every rule
    over the link fails. ``tags`` are the tags of the linked commit and of
    every promotion of the same version (the commits it was promoted from and
    to); ``holds`` the stages that version holds now; ``withdrawn`` each
    ``(stage, withdrawal hash)`` that retired it.
    """

    link: Link
    problem: str | None = None
    message: str = ""
    metadata: FrozenDict = field(default_factory=FrozenDict)
    tags: tuple[str, ...] = ()
    holds: tuple[str, ...] = ()
    withdrawn: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**self.link.to_dict(), "problem": self.problem, "tags": list(self.tags),
                "holds": list(self.holds),
                "withdrawn": [{"stage": s, "by": h} for s, h in self.withdrawn]}


@dataclass(frozen=True)
class Linking:
    """A commit that carries links: what ``used-by`` reports of it."""

    seq: int
    hash: str
    message: str
    tags: tuple[str, ...]
    timestamp: str
    author: str
    lineage: Lineage



# -- user input ----------------------------------------------------------------

def role_argument(value: Any) -> str:
    if not has_type(value, str):
        raise InvalidArgumentTypeError(f"a lineage role must be a string, not "
                                       f"{type(value).__name__}")
    role = plain_str(value)
    if not _ROLE.fullmatch(role):
        raise InvalidInputError(f"Lineage role {role!r} is not valid: use 1-64 lowercase ASCII "
                                "letters, digits, '_' or '-', starting with a letter "
                                "(e.g. training, validation, base-model)")
    return role


def plain_ref_argument(value: Any, what: str) -> str | None:
    """A code revision or run id: printable ASCII, no spaces, at most 256 characters."""
    if value is None:
        return None
    if not has_type(value, str):
        raise InvalidArgumentTypeError(f"{what} must be a string, not {type(value).__name__}")
    text = plain_str(value)
    if not _PLAIN_REF.fullmatch(text):
        raise InvalidInputError(
            f"{what} {text!r} is not valid: give 1-256 printable ASCII characters without "
            "spaces (a git commit, a tag, a run id); control characters and non-ASCII "
            "look-alike letters are refused")
    return text


def parse_target(text: Any, what: str = "link") -> tuple[str, str, str]:
    """``[ROOT#]DATASET@REF`` -> (root or ``""``, dataset, ref); InvalidInputError if not."""
    if not has_type(text, str):
        raise InvalidArgumentTypeError(f"a {what} must be a string 'DATASET@REF', not "
                                       f"{type(text).__name__}")
    text = plain_str(text).strip()
    match = _TARGET.fullmatch(text)
    if match is None or not match["ref"].strip():
        raise InvalidInputError(
            f"{what.capitalize()} {text!r} is not of the form DATASET@REF (a hash, a unique "
            "prefix, a tag or a stage), or ROOT#DATASET@REF for a dataset of another "
            "registry root")
    root = (match["root"] or "").rstrip("/")
    if match["root"] is not None and not root:
        raise InvalidInputError(f"{what.capitalize()} {text!r} has an empty root before '#'")
    problem = root_problem(root) if root else None
    if problem is not None:
        raise InvalidInputError(f"The root of {what} {text!r} is refused: {problem}")
    dataset = validate_dataset_name(match["dataset"])
    return root, dataset, match["ref"].strip()


def root_problem(root: str) -> str | None:
    """Why ``root`` cannot be the root of a link (``None``: it can).

    A folder or a URL of one of :data:`ROOT_PROTOCOLS`, printable, at most
    1,024 characters, without a password (the root is stored as given).
    """
    if len(root) > MAX_ROOT_LENGTH or not root.isprintable():
        return "it is too long or holds control characters"
    if "::" in root:
        return "a chained URL (PROTOCOL::URL) is not a registry root"
    url = _URL.fullmatch(root)
    if url is None:
        return None
    if url["protocol"].lower() not in ROOT_PROTOCOLS:
        return (f"protocol {url['protocol']!r} is not a registry backend (use one of "
                f"{', '.join(sorted(ROOT_PROTOCOLS))})")
    if _PASSWORD.match(url["rest"]):
        return "it holds a password, and the root is stored as given: use storage options"
    return None


def link_specs(lineage: Any) -> tuple[LinkSpec, ...]:
    """``{role: "dataset@ref" | ["dataset@ref", ...]}`` as link specs, checked (no I/O)."""
    if lineage is None:
        return ()
    if not has_type(lineage, Mapping):
        raise InvalidArgumentTypeError(
            f"lineage must be a mapping of role to 'DATASET@REF' (or a list of them), e.g. "
            f"{{'training': 'churn_data@v3'}}, not {type(lineage).__name__}")
    specs: list[LinkSpec] = []
    for role, targets in dict(lineage).items():
        role = role_argument(role)
        items = [targets] if has_type(targets, str) else targets
        if not has_type(items, list | tuple) or not items:
            raise InvalidArgumentTypeError(
                f"lineage[{role!r}] must be 'DATASET@REF' or a non-empty list of them, not "
                f"{type(targets).__name__}")
        for item in items:
            root, dataset, ref = parse_target(item, f"link {role}")
            specs.append(LinkSpec(role, root, dataset, ref))
    if len(specs) > MAX_LINKS:
        raise InvalidInputError(f"A commit may link at most {MAX_LINKS} commits, not "
                                f"{len(specs)}")
    return tuple(specs)


def parse_from_option(text: str) -> tuple[str, str]:
    """``[ROLE=]TARGET`` of ``--from`` -> (role, target); the role defaults to ``data``."""
    match = _ROLE_PREFIX.fullmatch(text.strip())
    if match is not None:
        return match["role"], match["rest"]
    return DEFAULT_ROLE, text


# -- the stored form -----------------------------------------------------------

def check_lineage_record(value: Any, bad: Callable[[str], CorruptObjectError]) -> None:
    """Raise ``bad(...)`` unless ``value`` is a ``lineage`` Kirin itself would have written.

    The inputs must be well-formed, distinct and in canonical order: a record
    holding them otherwise was not written by Kirin, and is refused rather
    than read in a second, equivalent form.
    """
    if not (isinstance(value, dict) and value and set(value) <= _LINEAGE_KEYS):
        raise bad("'lineage' must be an object holding some of inputs, code and run")
    for key in ("code", "run"):
        if key in value and not (isinstance(value[key], str)
                                 and _PLAIN_REF.fullmatch(value[key])):
            raise bad(f"'lineage.{key}' must be printable ASCII text without spaces")
    if "inputs" not in value:
        return
    inputs = value["inputs"]
    if not (isinstance(inputs, list) and 0 < len(inputs) <= MAX_LINKS):
        raise bad(f"'lineage.inputs' must be a non-empty list of at most {MAX_LINKS} links")
    links = []
    for index, item in enumerate(inputs):
        where = f"'lineage.inputs[{index}]'"
        if not (isinstance(item, dict) and _LINK_KEYS <= set(item) <= _LINK_KEYS | {"root"}):
            raise bad(f"{where} must hold role, dataset, commit (and optionally root)")
        role, dataset, commit = item["role"], item["dataset"], item["commit"]
        if not (isinstance(role, str) and _ROLE.fullmatch(role)):
            raise bad(f"{where} has an invalid role {role!r}")
        if not (isinstance(dataset, str) and _valid_dataset(dataset)):
            raise bad(f"{where} has an invalid dataset name {dataset!r}")
        if not is_digest(commit):
            raise bad(f"{where} must name a full commit hash, not {commit!r}")
        root = item.get("root", "")
        if "root" in item and not (isinstance(root, str) and root and root == root.rstrip("/")
                                   and root_problem(root) is None):
            raise bad(f"{where} has an invalid root {root!r}")
        links.append(Link(role, root, dataset, commit))
    if links != sorted(set(links)):
        raise bad("'lineage.inputs' must be distinct and in canonical order "
                  "(role, root, dataset, commit)")


def _valid_dataset(name: str) -> bool:
    try:
        validate_dataset_name(name)
    except InvalidInputError:
        return False
    return True


def lineage_of_record(record: Mapping[str, Any]) -> Lineage | None:
    """The lineage a checked record carries, if any."""
    value = record.get("lineage")
    return Lineage.from_record(value) if value is not None else None


def linking_of(record: Mapping[str, Any]) -> Linking | None:
    """The :class:`Linking` of a checked record, if it carries links."""
    lineage = lineage_of_record(record)
    if lineage is None or not lineage.inputs:
        return None
    return Linking(int(record["seq"]), str(record["hash"]), str(record["message"]),
                   tuple(record["tags"]), str(record["timestamp"]), str(record["author"]),
                   lineage)
