"""Is a metadata JSON Schema safe and deterministic to judge with? The checks, in one place.

A policy's schema comes from a file anyone on the team can edit, and the gate
runs it on every commit. So before a schema is accepted it must be a valid
draft 2020-12 schema; name only formats the gate enforces the same way on
every machine (:mod:`._formats`); hold no regular expression with exponential
backtracking (:mod:`._patterns`); refer only inside itself (the stored policy
is self-contained, the gate never fetches anything); and hold no ``$ref``
cycle that would never end. The walkers here read a schema as JSON Schema
reads it: values of ``const``/``enum``/``default``/``examples`` are data, and
the names under ``properties`` and friends are names, not keywords.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from ._formats import CHECKERS as FORMAT_CHECKERS
from ._formats import SUPPORTED_FORMATS
from ._patterns import ASCII_PREFIX, check_schema_pattern

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Loc = tuple[str | int, ...]


class InvalidField(ValueError):
    """A value in the policy is invalid; ``loc`` is the key path below the field."""

    def __init__(self, message: str, *, loc: Loc = ()) -> None:
        super().__init__(message)
        self.loc = loc



#: Keywords whose values are data, not schemas: a "$ref" key inside them is no reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _walk_refs(value: Any, loc: Loc = ()) -> Iterable[tuple[Loc, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                yield (*loc, key), item
            elif key not in _DATA_KEYWORDS:
                yield from _walk_refs(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_refs(item, (*loc, index))


#: Keywords whose value maps names to subschemas: the names are data, not keywords.
_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                           "dependentSchemas"})


def _schema_nodes(value: Any, loc: Loc = ()) -> Iterable[tuple[Loc, dict[str, Any]]]:
    """Every object of a schema that sits where a subschema may, with its key path.

    Names under ``properties`` & co. are never read as keywords (a property
    called ``default`` or ``pattern`` is still walked into); values of data
    keywords are skipped; anything else is walked, unknown keywords included,
    since a ``$ref`` may point into them.
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _schema_nodes(item, (*loc, index))
        return
    if not isinstance(value, dict):
        return
    yield loc, value
    for key, item in value.items():
        if key in _DATA_KEYWORDS:
            continue
        if key in _MAP_KEYWORDS and isinstance(item, dict):
            for name, sub in item.items():
                yield from _schema_nodes(sub, (*loc, key, name))
        else:
            yield from _schema_nodes(item, (*loc, key))


def _walk_patterns(schema: Any) -> Iterable[tuple[Loc, str]]:
    """Every regular expression of a schema: ``pattern`` values, ``patternProperties`` keys.

    The gate runs them on metadata (``re.search``), so they must be free of
    exponential backtracking: a policy must not be able to hang every commit.
    """
    for loc, node in _schema_nodes(schema):
        if isinstance(node.get("pattern"), str):
            yield (*loc, "pattern"), node["pattern"]
        if isinstance(node.get("patternProperties"), dict):
            yield from (((*loc, "patternProperties", name), name)
                        for name in node["patternProperties"])


def _walk_formats(schema: Any) -> Iterable[tuple[Loc, str]]:
    """Every ``format`` a schema names, with its key path."""
    for loc, node in _schema_nodes(schema):
        if isinstance(node.get("format"), str):
            yield (*loc, "format"), node["format"]


def ascii_schema(value: Any) -> Any:
    """A copy of a schema whose regexes match in ASCII mode, for jsonschema to run.

    jsonschema calls ``re.search`` on ``pattern`` values and
    ``patternProperties`` keys itself, with Unicode classes; each gets
    :data:`._patterns.ASCII_PREFIX` so ``\\d`` means ``[0-9]`` there as in tag
    patterns. The stored schema (and so the policy hash) is left as written.
    The walk is the one of :func:`_schema_nodes`.
    """
    if isinstance(value, list):
        return [ascii_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _DATA_KEYWORDS:
            out[key] = item
        elif key == "pattern" and isinstance(item, str):
            out[key] = ASCII_PREFIX + item
        elif key in _MAP_KEYWORDS and isinstance(item, dict):
            prefix = ASCII_PREFIX if key == "patternProperties" else ""
            out[key] = {prefix + name: ascii_schema(sub) for name, sub in item.items()}
        else:
            out[key] = ascii_schema(item)
    return out


def check_json_schema(schema: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidField` unless ``schema`` is a usable 2020-12 schema.

    Usable means: valid against the draft 2020-12 meta-schema, no other
    ``$schema`` dialect, every ``format`` one the gate enforces
    (:data:`._formats.SUPPORTED_FORMATS`: an unenforced format would pass on
    one machine and fail on another), no regular expression with
    exponential backtracking (see :func:`._patterns.check_schema_pattern`),
    every ``$ref`` local and
    resolvable, and no ``$ref`` cycle that would never end. Remote references
    are refused because the stored policy must be self-contained and the gate
    must never fetch anything.
    """
    dialect = schema.get("$schema")
    if dialect is not None and str(dialect).rstrip("#") != JSON_SCHEMA_DIALECT:
        raise InvalidField(f"only JSON Schema draft 2020-12 is supported; $schema is "
                           f"{dialect!r}, expected {JSON_SCHEMA_DIALECT!r}",
                           loc=("$schema",))
    for loc, pattern in _walk_patterns(schema):  # first: the meta-schema compiles them
        try:
            check_schema_pattern(pattern)
        except ValueError as exc:  # UnsafePatternError: invalid, too long or exponential
            raise InvalidField(str(exc), loc=loc) from None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidField(f"invalid JSON Schema: {exc.message}",
                           loc=tuple(exc.path)) from None
    for loc, name in _walk_formats(schema):
        if name in FORMAT_CHECKERS:
            continue
        raise InvalidField(f"format {name!r} is not supported: the gate enforces only "
                           f"{', '.join(SUPPORTED_FORMATS)} (the same on every machine); "
                           "use one of them, or a 'pattern'", loc=loc)
    base = str(schema.get("$id") or "urn:kirin:metadata-schema")
    resolver = Registry().with_resource(base, DRAFT202012.create_resource(schema)
                                        ).resolver(base)
    for loc, ref in _walk_refs(schema):
        if "patternProperties/" in ref:
            raise InvalidField(f"$ref {ref!r} points inside 'patternProperties', whose "
                               "regexes the gate runs in ASCII mode under other keys; "
                               "put the subschema under $defs and refer to it there",
                               loc=loc)
        if not ref.startswith("#"):
            raise InvalidField(f"$ref {ref!r} is not local: a policy's schema must be "
                               "self-contained (put shared definitions under $defs "
                               "and refer to them as '#/$defs/name')", loc=loc)
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise InvalidField(f"$ref {ref!r} points at nothing in this schema",
                               loc=loc) from None
    _check_ref_loops(schema, resolver)


#: Keywords whose subschemas apply to the very instance being validated (no descent).
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")


def _in_place(node: Mapping[str, Any], loc: Loc, resolver: Any
              ) -> Iterable[tuple[Any, Loc]]:
    """The subschemas ``node`` applies to the same instance, with their key paths."""
    for key in _IN_PLACE_LISTS:
        if isinstance(node.get(key), list):
            yield from ((sub, (*loc, key, i)) for i, sub in enumerate(node[key]))
    for key in _IN_PLACE_ONE:
        if key in node:
            yield node[key], (*loc, key)
    if isinstance(node.get("dependentSchemas"), dict):
        yield from ((sub, (*loc, "dependentSchemas", name))
                    for name, sub in node["dependentSchemas"].items())
    for key in ("$ref", "$dynamicRef"):
        ref = node.get(key)
        if isinstance(ref, str) and ref.startswith("#"):
            try:
                yield resolver.lookup(ref).contents, (*loc, key)
            except Unresolvable:
                continue


def _check_ref_loops(schema: Mapping[str, Any], resolver: Any) -> None:
    """Refuse ``$ref`` cycles that never descend into the instance (``{"$ref": "#"}``).

    jsonschema would follow such a cycle forever on any value (a RecursionError
    on every commit); a cycle through ``properties`` or ``items`` is fine, as
    each step goes one level down into finite metadata.
    """
    state: dict[int, bool] = {}  # id(subschema) -> True while on the path, False when done

    def visit(node: Any, loc: Loc) -> None:
        state[id(node)] = True
        for child, edge in _in_place(node, loc, resolver):
            if not isinstance(child, Mapping) or state.get(id(child)) is False:
                continue
            if state.get(id(child)):
                raise InvalidField("this reference leads back to a schema it came from "
                                   "without descending into the metadata: validating any "
                                   "value would never end", loc=edge)
            visit(child, where.get(id(child), edge))
        state[id(node)] = False

    def every_subschema(value: Any, loc: Loc) -> Iterable[tuple[Any, Loc]]:
        if isinstance(value, Mapping):
            yield value, loc
            for key, item in value.items():
                if key not in _DATA_KEYWORDS:
                    yield from every_subschema(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from every_subschema(item, (*loc, index))

    where = {id(node): loc for node, loc in every_subschema(schema, ())}
    for node, loc in every_subschema(schema, ()):
        if state.get(id(node)) is None:
            visit(node, loc)
