"""Policy text (YAML or JSON) to a checked :class:`~kirin.policy.rules.Policy`, or one clear error.

Why a custom YAML path: pyyaml's safe loader is safe from code execution but
not from size. A "billion laughs" document (anchors whose aliases expand
exponentially) is small on disk and huge in memory once constructed. So the
text is only *composed* here (aliases stay shared node references, linear in
the text), and values are built by :class:`_Builder`, which counts every
node it constructs, alias expansions included, and stops at
:data:`MAX_NODES`. The same walk records the line of every key, so every
error can name file, dotted key path and line, and refuses what JSON cannot
hold (timestamps, binary, sets, non-string keys, NaN) and what is ambiguous
(duplicate keys, ``<<`` merge keys).

Text whose first non-blank character is ``{`` is read as JSON if it parses
as JSON (the stored form of a policy is canonical JSON, and YAML 1.1 would
read ``1e-05`` as a string), else as YAML (a flow mapping). The lines of a
JSON text still come from composing it as YAML, best effort.

Every foreign error (yaml, json, pydantic, jsonschema, re, unicode, OS,
recursion) is translated into :class:`~kirin.errors.PolicyError` in exactly
one place, :func:`translate_error`; nothing else escapes ``load_policy*``.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .._json import MAX_DEPTH, canonical_json, has_type, is_text, plain_str
from ..errors import ExpressionSyntaxError, InvalidArgumentTypeError, PolicyError
from . import expr as _expr
from ._schema_safety import InvalidField, Loc, check_json_schema
from .model import SCHEMA_RESOLVER, checked_policy, keys_at
from .model import Policy as PolicyModel
from .rules import Policy, format_loc, to_data

if TYPE_CHECKING:
    from .crosscheck import Finding

#: A policy or schema file larger than this is refused unread.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Nodes constructed from one YAML document, alias expansions included.
MAX_NODES = 100_000

_YAML = "tag:yaml.org,2002:"

#: Foreign exception types :func:`translate_error` maps to ``PolicyError``.
FOREIGN_ERRORS: tuple[type[Exception], ...] = (
    yaml.YAMLError, json.JSONDecodeError, ValidationError, SchemaError, re.error,
    UnicodeError, OSError, RecursionError, ValueError,
)


class _SafeComposer(yaml.SafeLoader):
    """The safe loader, used only to compose; dates stay strings (JSON has no dates)."""


_SafeComposer.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _YAML + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DocumentError(Exception):
    """A structural problem found while building values (has ``loc`` and ``line``)."""

    def __init__(self, message: str, loc: Loc, line: int | None) -> None:
        super().__init__(message)
        self.loc = loc
        self.line = line


@dataclass
class LineMap:
    """Where each key of the document is: key path -> 1-based line (and value line)."""

    keys: dict[Loc, int] = field(default_factory=dict)
    values: dict[Loc, int] = field(default_factory=dict)

    def line_for(self, loc: Loc, *, value: bool = False) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that the document has."""
        if value and loc in self.values:
            return self.values[loc]
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.keys:
                return self.keys[loc[:end]]
        return 1 if self.keys else None


class _Builder:
    """Builds plain JSON values from a composed node graph, within a node budget."""

    def __init__(self) -> None:
        self.lines = LineMap()
        self.budget = MAX_NODES
        self.active: set[int] = set()
        self.scalars = SafeConstructor()

    def fail(self, message: str, loc: Loc, node: Node) -> _DocumentError:
        return _DocumentError(message, loc, node.start_mark.line + 1)

    def build(self, node: Node, loc: Loc = (), depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(f"the document expands to more than {MAX_NODES} values "
                            "(anchors and aliases); refusing a possible YAML bomb",
                            loc, node)
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", loc, node)
        if id(node) in self.active:
            raise self.fail("an alias refers to a node that contains it (recursive "
                            "anchor)", loc, node)
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _YAML + "seq":
                return self.sequence(node, loc, depth)
            if isinstance(node, MappingNode) and node.tag == _YAML + "map":
                return self.mapping(node, loc, depth)
            raise self.fail(f"unsupported YAML type {node.tag!r}; a policy holds only "
                            "JSON values", loc, node)
        finally:
            self.active.discard(id(node))

    def sequence(self, node: SequenceNode, loc: Loc, depth: int) -> list[Any]:
        out = []
        for index, item in enumerate(node.value):
            self.lines.keys.setdefault((*loc, index), item.start_mark.line + 1)
            out.append(self.build(item, (*loc, index), depth + 1))
        return out

    def mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _YAML + "merge":
                raise self.fail("YAML merge keys ('<<') are not supported; write the "
                                "keys out", loc, key_node)
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _YAML + "str"):
                shown = getattr(key_node, "value", "?")
                raise self.fail(f"key {shown!r} is not a string; quote it", loc, key_node)
            key = key_node.value
            if not is_text(key):
                raise self.fail(_lone_surrogate(key), loc, key_node)
            if key in out:
                raise self.fail(f"duplicate key {key!r} (first on line {first_line[key]})",
                                (*loc, key), key_node)
            first_line[key] = line
            here = (*loc, key)
            self.lines.keys[here] = line
            value_line = value_node.start_mark.line + 1
            if isinstance(value_node, ScalarNode) and value_node.style in ("|", ">"):
                value_line += 1  # block scalars start on the line after the indicator
            self.lines.values[here] = value_line
            out[key] = self.build(value_node, here, depth + 1)
        return out

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        tag = node.tag
        if tag == _YAML + "str":
            if not is_text(node.value):  # a "\\ud800" escape in a quoted scalar
                raise self.fail(_lone_surrogate(node.value), loc, node)
            return node.value
        if tag == _YAML + "null":
            return None
        if tag == _YAML + "bool":
            return self.scalars.construct_yaml_bool(node)
        if tag == _YAML + "int":
            return self.scalars.construct_yaml_int(node)
        if tag == _YAML + "float":
            value = self.scalars.construct_yaml_float(node)
            if not math.isfinite(value):
                raise self.fail(f"{node.value!r} is not a finite number (JSON has no NaN "
                                "or infinity)", loc, node)
            return value
        raise self.fail(f"unsupported YAML type {tag!r} for {node.value!r}; quote the "
                        "value to make it a string", loc, node)


_CAUGHT: tuple[type[Exception], ...] = (*FOREIGN_ERRORS, _DocumentError)


def _compose(text: str) -> Node | None:
    loader = _SafeComposer(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def _path_at_yaml_error(text: str) -> Loc:
    """The key path the parser had reached when the YAML turned out malformed."""
    frames: list[list[Any]] = []  # [kind, key_or_index, expecting_value]
    try:
        for event in yaml.parse(text, Loader=_SafeComposer):
            starts = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
            is_node = starts or isinstance(event, yaml.ScalarEvent | yaml.AliasEvent)
            if is_node and frames:
                top = frames[-1]
                if top[0] == "seq":
                    top[1] += 1
                elif not top[2] and isinstance(event, yaml.ScalarEvent):
                    top[1], top[2] = event.value, True
                elif top[2] and not starts:
                    top[2] = False
            if isinstance(event, yaml.MappingStartEvent):
                frames.append(["map", None, False])
            elif isinstance(event, yaml.SequenceStartEvent):
                frames.append(["seq", -1, False])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                frames.pop()
                if frames and frames[-1][0] == "map":
                    frames[-1][2] = False
    except yaml.YAMLError:
        pass
    loc: list[str | int] = []
    for kind, key, expecting in frames:
        if (kind == "seq" and key >= 0) or (kind == "map" and expecting and key is not None):
            loc.append(key)
    return tuple(loc)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number (JSON has no NaN or infinity)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: a literal too large for a double
        raise ValueError(f"{text} is not a finite number (it overflows a double)")
    return value


def _lone_surrogate(text: str) -> str:
    return (f"text {text[:40]!r} holds a lone surrogate: it is not valid Unicode and "
            "cannot be stored as UTF-8")


def _check_depth(value: Any, depth: int = 0) -> None:
    """Bounded nesting, and text that UTF-8 can hold (JSON's ``\\ud800`` escapes can't be)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str) and not is_text(value):
        raise ValueError(_lone_surrogate(value))
    if isinstance(value, dict):
        for key in value:
            if not is_text(key):
                raise ValueError(_lone_surrogate(key))
    children = value.values() if isinstance(value, dict) else (
        value if isinstance(value, list) else ())
    for item in children:
        _check_depth(item, depth + 1)


def load_json(text: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity, bounded nesting, valid Unicode."""
    value = json.loads(text, object_pairs_hook=_no_duplicates,
                       parse_constant=_reject_constant, parse_float=_finite_float)
    _check_depth(value)
    return value


_NOT_JSON = object()


def parse_document(text: str) -> tuple[Any, LineMap]:
    """The plain JSON value of a YAML or JSON document, and where each key is."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise _DocumentError(f"the policy is larger than {MAX_DOCUMENT_BYTES} bytes",
                             (), None)
    builder = _Builder()
    if text.lstrip().startswith("{"):
        try:
            value = load_json(text)
        except json.JSONDecodeError:
            value = _NOT_JSON  # a YAML flow mapping, say: read it as YAML below
        if value is not _NOT_JSON:
            try:  # lines only, best effort; the values came from the JSON parser
                node = _compose(text)
                if node is not None:
                    builder.build(node)
            except (yaml.YAMLError, _DocumentError, RecursionError, ValueError):
                pass
            return value, builder.lines
    node = _compose(text)
    if node is None:
        return None, builder.lines
    return builder.build(node), builder.lines


def _schema_resolver(base_dir: Path | None) -> Callable[[str], dict[str, Any]]:
    """Reads ``schema_file`` references, confined to the policy's folder."""

    def resolve(ref: str) -> dict[str, Any]:
        def bad(why: str) -> InvalidField:
            return InvalidField(f"schema file {ref!r} {why}", loc=("schema_file",))

        if base_dir is None:
            raise bad("cannot be read: the policy was given as text with no folder "
                      "(pass base_dir, or embed the schema inline)")
        if "\x00" in ref or os.path.isabs(ref) or ref.startswith(("/", "\\")):
            raise bad("must be a relative path inside the policy's folder")
        try:
            base = Path(base_dir).resolve(strict=True)
        except OSError as exc:
            raise bad(f"cannot be read: the policy folder {str(base_dir)!r} is not "
                      f"accessible ({exc.strerror or exc})") from None
        target = (base / ref).resolve()
        if not target.is_relative_to(base):
            raise bad(f"is outside the policy's folder {str(base)!r} (it resolves to "
                      f"{str(target)!r}); schema files must sit in the policy's folder "
                      "or below it")
        if not target.is_file():
            raise bad(f"not found (looked for {str(target)!r})")
        try:
            with open(target, "rb") as stream:
                raw = stream.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise bad(f"cannot be read: {exc.strerror or exc}") from None
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise bad(f"is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            schema = load_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise bad("is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise bad(f"is not valid JSON: {exc.msg} at line {exc.lineno} column "
                      f"{exc.colno}") from None
        except (ValueError, RecursionError) as exc:
            raise bad(f"is not usable JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise bad(f"must hold a JSON object, not {type(schema).__name__}")
        try:
            check_json_schema(schema)
        except InvalidField as exc:
            where = format_loc(exc.loc) or "its root"
            raise bad(f"holds an invalid schema at {where}: {exc}") from None
        return schema

    return resolve


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_validation_error(exc: ValidationError, source: str, lines: LineMap,
                           data: Any) -> PolicyError:
    """The first problem pydantic found (in document order), as a located error."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        return PolicyError(f"the policy is {kind}; it must be a mapping with keys "
                           f"{', '.join(keys_at(()))}", file=source, line=1)
    errors = exc.errors(include_url=False)

    def line_of(err: Any) -> int:
        return lines.line_for(tuple(err["loc"])) or 0

    first = min(errors, key=line_of)
    loc: Loc = tuple(first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    more = len(errors) - 1
    tail = f" ({more} more problem{'s' if more != 1 else ''} after this one)" if more else ""
    if isinstance(cause, ExpressionSyntaxError):
        text = first["input"] if isinstance(first["input"], str) else cause.expression
        try:
            _expr.parse(text, file=source, key_path=format_loc(loc),
                        line=lines.line_for(loc, value=True))
        except ExpressionSyntaxError as located:
            return located
        return ExpressionSyntaxError(str(cause.detail), expression=cause.expression,
                                     column=cause.column or 1, file=source,
                                     key_path=format_loc(loc), line=lines.line_for(loc))
    if isinstance(cause, InvalidField):
        loc = (*loc, *cause.loc)
        message = str(cause)
    elif isinstance(cause, ValueError):
        message = str(cause)
    elif first["type"] == "extra_forbidden":
        allowed = keys_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        message = (f"unknown key {loc[-1]!r}.{hint} Allowed keys here: "
                   f"{', '.join(allowed)}")
    elif first["type"] == "missing":
        message = f"required key {loc[-1]!r} is missing"
    else:
        message = f"{first['msg']}; got {_short(first['input'])}"
    return PolicyError(message + tail, file=source, key_path=format_loc(loc) or None,
                       line=lines.line_for(loc))


def translate_error(exc: BaseException, *, source: str, lines: LineMap | None = None,
                    data: Any = None, text: str = "") -> PolicyError:
    """The one boundary: any error met while loading becomes a located ``PolicyError``."""
    lines = lines or LineMap()
    if isinstance(exc, PolicyError):
        return exc
    if isinstance(exc, ValidationError):
        return _from_validation_error(exc, source, lines, data)
    if isinstance(exc, _DocumentError):
        return PolicyError(str(exc), file=source, key_path=format_loc(exc.loc) or None,
                           line=exc.line)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        return PolicyError(f"malformed YAML: {problem}", file=source,
                           key_path=format_loc(_path_at_yaml_error(text)) or None,
                           line=mark.line + 1, column=mark.column + 1)
    if isinstance(exc, json.JSONDecodeError):
        return PolicyError(f"malformed JSON: {exc.msg}", file=source, line=exc.lineno,
                           column=exc.colno)
    if isinstance(exc, SchemaError):
        return PolicyError(f"invalid JSON Schema: {exc.message}", file=source,
                           key_path=format_loc(("metadata", "schema", *exc.path)))
    if isinstance(exc, re.error):
        return PolicyError(f"invalid regular expression: {exc}", file=source)
    if isinstance(exc, UnicodeError):
        return PolicyError(f"the policy is not UTF-8 text ({exc})", file=source)
    if isinstance(exc, RecursionError):
        return PolicyError(f"the policy is nested too deeply (limit {MAX_DEPTH} levels)",
                           file=source)
    if isinstance(exc, OSError):
        return PolicyError(f"cannot read the policy: {exc.strerror or exc}", file=source)
    return PolicyError(f"invalid policy: {exc}", file=source)


def load_policy_text(text: str, *, source: str = "<policy>",
                     base_dir: str | os.PathLike[str] | None = None) -> Policy:
    """Parse and check a policy given as YAML or JSON text.

    ``source`` names the text in error messages; ``base_dir`` is the folder
    ``metadata.schema_file`` is resolved in (and confined to). Raises
    :class:`~kirin.errors.PolicyError` (or its subclass
    :class:`~kirin.errors.ExpressionSyntaxError`) and nothing else.
    """
    lines = LineMap()
    data: Any = None
    resolver = _schema_resolver(Path(base_dir) if base_dir is not None else None)
    try:
        data, lines = parse_document(text)
        return checked_policy(PolicyModel.model_validate(
            data, context={SCHEMA_RESOLVER: resolver}))
    except _CAUGHT as exc:
        raise translate_error(exc, source=source, lines=lines, data=data,
                              text=text) from exc


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and check the policy file at ``path``; schema files resolve next to it."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise _DocumentError(f"the policy is larger than {MAX_DOCUMENT_BYTES} bytes",
                                 (), None)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise PolicyError("policy file not found", file=source) from None
    except (OSError, UnicodeError, _DocumentError) as exc:
        raise translate_error(exc, source=source) from exc
    return load_policy_text(text, source=source, base_dir=Path(path).parent)


def reload_policy(policy: Policy, *, source: str = "<Policy object>") -> Policy:
    """Check a :class:`Policy` object exactly as a file would be checked.

    A ``Policy`` can be built without validation (its constructor takes any
    values), or be a subclass that overrides what it reports, so an object is
    never trusted as it is: its fields are dumped from the instance's own
    dictionary (:func:`~kirin.policy.rules.to_data`: no method the object could
    override is called), written as canonical JSON and loaded through
    :func:`load_policy_text`. What comes back is a
    plain ``Policy`` that passed every check; for a valid policy it is equal
    to the one given and has the same hash.
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"expected a Policy, not {type(policy).__name__}", file=source)
    try:
        text = canonical_json(to_data(policy))
    except Exception as exc:  # any failure to dump means: not a valid policy
        raise PolicyError(f"the Policy object cannot be read back as a policy "
                          f"({type(exc).__name__}: {exc}); build it with load_policy() "
                          "or load_policy_text()", file=source) from None
    return load_policy_text(text, source=source)


def policy_from(source: object) -> Policy:
    """A checked policy from what a caller hands ``set_policy``/``create_dataset``.

    A path (``str`` or ``os.PathLike``) to a YAML/JSON file, the policy's
    text itself (anything with a newline, or starting with ``{``), or a
    :class:`Policy` object, which is checked again from its canonical text
    (:func:`reload_policy`): one built by its constructor or by a
    subclass could otherwise be stored unchecked and break every later commit
    in every process.
    """
    if isinstance(source, Policy):
        return reload_policy(source)
    if has_type(source, os.PathLike):
        return load_policy(source)
    if not has_type(source, str):
        raise InvalidArgumentTypeError(
            f"policy must be a file path, the policy's text or a Policy, not "
            f"{type(source).__name__}")
    text = plain_str(source)
    if "\n" not in text and not text.lstrip().startswith("{"):
        return load_policy(text)  # a path (a missing file is reported as such)
    return load_policy_text(text, source="<policy text>", base_dir=os.getcwd())


def _source_path(source: object) -> str | None:
    """The file ``source`` names, as :func:`policy_from` reads it; ``None``: not a path."""
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        return path if isinstance(path, str) else None
    if isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"):
        return source
    return None


def policy_lines(source: object) -> LineMap:
    """Where each key of ``source`` (anything :func:`policy_from` takes) is; empty if unknown.

    Best effort and never raising: it only adds lines to findings about a
    policy that has already loaded.
    """
    if not isinstance(source, str | os.PathLike):
        return LineMap()
    path = _source_path(source)
    try:
        if path is not None:
            with open(path, "rb") as stream:
                text = stream.read(MAX_DOCUMENT_BYTES + 1).decode("utf-8")
        else:
            text = str(source)
        return parse_document(text)[1]
    except _CAUGHT:
        return LineMap()


def check_policy_file(path: str | os.PathLike[str]) -> tuple[Policy, tuple[Finding, ...]]:
    """:func:`load_policy`, then the cross-check of its rules against its schema.

    What ``kirin policy check`` runs: an invalid file, or a rule reading a field
    the schema cannot produce, raises :class:`~kirin.errors.PolicyError`; the
    warnings (fields the schema does not declare but may still carry) are
    returned with the policy.
    """
    from .crosscheck import cross_check, refuse_errors, warnings

    policy = load_policy(path)
    findings = cross_check(policy, lines=policy_lines(path))
    refuse_errors(findings, source=os.fspath(path))
    return policy, tuple(warnings(findings))


def refuse_rule_typos(policy: Policy, source: object) -> None:
    """Refuse a *new* policy version whose rules read fields its schema cannot produce.

    Run where a policy version is about to be stored (``set_policy``,
    ``create_dataset``), never when a stored one is read back: old versions
    must keep loading (see :mod:`.crosscheck`). Raises the first error as a
    :class:`~kirin.errors.PolicyError` with the source, key path and line.
    """
    from .crosscheck import cross_check, refuse_errors

    name = _source_path(source) or ("<Policy object>" if isinstance(source, Policy)
                                    else "<policy text>")
    refuse_errors(cross_check(policy, lines=policy_lines(source)), source=name)
