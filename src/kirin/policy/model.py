"""The policy file as pydantic models: what each key means and admits, checked.

This is the input side. A model that passed every check becomes the value
everything else reads, :class:`kirin.policy.rules.Policy`, through its
canonical data (:func:`checked_policy`), the same way a stored policy already
checked on this machine does (:mod:`.stored`); nothing outside the loader
holds a model.

One model per section of the file (``metadata``, ``tags``, ``promotion``,
``message``), all ``extra="forbid"`` (an unknown key is an error, never
silently ignored) and frozen (a loaded policy cannot drift from the hash it
was stored under). Every check that needs only the file itself lives here,
as a validator, so a model that exists is valid: regexes
compile and are safe (:mod:`._patterns`), the JSON Schema is a valid draft
2020-12 schema with no remote references (:mod:`._schema_safety`), expressions
parse, and every tag a rule names belongs to the vocabulary.

Validators raise :class:`InvalidField` (a ``ValueError`` carrying the key
path below the field) so that the loader can turn pydantic's error into one
:class:`~kirin.errors.PolicyError` naming file, key path and line. Reading a
``schema_file`` needs the file system; the model asks a resolver passed in
the validation context for it (see :mod:`.loader`), so this module does no
I/O of its own.

The stored form (:func:`model_data`, as canonical JSON) embeds the schema, so
a stored policy needs no other file; its SHA-256 is the policy's hash.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from .._json import FrozenDict, freeze
from . import expr as _expr
from . import rules
from ._patterns import MAX_TAG_LENGTH, compile_pattern
from ._schema_safety import (
    JSON_SCHEMA_DIALECT,
    InvalidField,
    Loc,
    check_json_schema,
)

#: The key of the validation context under which the loader passes a
#: ``Callable[[str], dict]`` that reads a ``schema_file``.
SCHEMA_RESOLVER = "kirin.schema_resolver"

POLICY_FORMAT_VERSION = 1
MAX_EXPRESSION_LENGTH = 4096
MAX_GLOB_LENGTH = 256

# -- field checks ------------------------------------------------------------

def _check_pattern(text: str) -> str:
    compile_pattern(text)  # raises UnsafePatternError (a ValueError)
    return text


def _check_expression(text: str) -> str:
    _expr.parse(text)  # raises ExpressionSyntaxError (a ValueError) with .column
    return text


def _valid_schema(schema: dict[str, Any]) -> FrozenDict:
    check_json_schema(schema)
    frozen: FrozenDict = freeze(schema)
    return frozen


def _freeze_mapping(value: dict[str, Any]) -> FrozenDict:
    return FrozenDict(value)


TagName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_TAG_LENGTH)]
Pattern = Annotated[
    StrictStr, StringConstraints(min_length=1), AfterValidator(_check_pattern),
    Field(description="A regular expression that must match the whole tag "
                      "(re.fullmatch). Bounded cost only: at most 256 characters, no "
                      "backreferences, and a repeated group that itself repeats must "
                      "start with a separator, as in '[a-z]+(-[a-z0-9]+)*'."),
]
Expression = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_EXPRESSION_LENGTH,
                                 strip_whitespace=True),
    AfterValidator(_check_expression),
    Field(description="A condition on the commit's metadata in Kirin's expression "
                      "language, e.g. \"accuracy >= 0.9 and validated == true\"."),
]
FileGlob = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_GLOB_LENGTH),
    Field(description="A file name, or a glob (fnmatch: *, ?, [abc]; case-sensitive, "
                      "'*' also matches '/')."),
]
JsonSchemaObject = Annotated[dict[str, Any], AfterValidator(_valid_schema)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MetadataRules(_Model):
    """What every commit's metadata must satisfy."""

    json_schema: JsonSchemaObject | None = Field(
        default=None, alias="schema",
        description="An inline JSON Schema (draft 2020-12) for the metadata.")
    schema_file: StrictStr | None = Field(
        default=None, min_length=1, exclude=True,
        description="A JSON Schema file, relative to the policy file, inside its "
                    "folder. Embedded into the stored policy when loaded.")

    @model_validator(mode="before")
    @classmethod
    def _embed_schema_file(cls, data: Any, info: ValidationInfo) -> Any:
        """Replace ``schema_file`` by the schema it names, read by the loader."""
        if not isinstance(data, dict) or not isinstance(data.get("schema_file"), str):
            return data
        if data.get("schema") is not None:
            raise InvalidField("give either 'schema' (inline) or 'schema_file', not both",
                               loc=("schema_file",))
        resolver: Callable[[str], dict[str, Any]] | None = (
            (info.context or {}).get(SCHEMA_RESOLVER))
        if resolver is None:
            raise InvalidField("'schema_file' needs the policy's folder to be known: "
                               "load the policy with load_policy(path) or pass base_dir",
                               loc=("schema_file",))
        schema = resolver(data["schema_file"])
        rest = {k: v for k, v in data.items() if k != "schema_file"}
        return {**rest, "schema": schema}


class TagRules(_Model):
    """The tag vocabulary and the rules on how tags are used."""

    allowed: tuple[TagName, ...] | None = Field(
        default=None, description="Tag names a commit may carry.")
    patterns: tuple[Pattern, ...] | None = Field(
        default=None, description="Regular expressions for further allowed tags "
                                  "(whole-tag match), e.g. version tags.")
    unique: tuple[TagName, ...] = Field(
        default=(), description="Tags that may be on at most one commit of the history.")
    unique_patterns: tuple[Pattern, ...] = Field(
        default=(), description="Each tag matching one of these may be on at most one "
                                "commit of the history (e.g. version tags).")
    exclusive_groups: tuple[Annotated[tuple[TagName, ...], Field(min_length=2)], ...] = (
        Field(default=(), description="Groups of tags of which a commit may carry at "
                                      "most one, e.g. [dev, staging, production]."))

    @model_validator(mode="after")
    def _groups_distinct(self) -> TagRules:
        for index, group in enumerate(self.exclusive_groups):
            if len(set(group)) != len(group):
                raise InvalidField("an exclusive group lists the same tag twice",
                                   loc=("exclusive_groups", index))
        return self


class PromotionRule(_Model):
    """What a commit must satisfy to carry one particular tag."""

    when: Expression | None = None
    required_files: tuple[FileGlob, ...] = Field(
        default=(), description="Each entry must match at least one file of the commit's "
                                "snapshot (the files it has after the commit).")
    requires_stage: TagName | None = Field(
        default=None, description="An earlier commit with the same file content must "
                                  "carry this tag (e.g. production requires staging).")
    compare_files: tuple[FileGlob, ...] | None = Field(
        default=None, description="Which files 'same content' compares (names or globs); "
                                  "default: the whole snapshot, every name and hash.")

    @model_validator(mode="after")
    def _compare_needs_stage(self) -> PromotionRule:
        if self.compare_files is not None and self.requires_stage is None:
            raise InvalidField("'compare_files' only applies together with "
                               "'requires_stage'", loc=("compare_files",))
        if self.compare_files is not None and not self.compare_files:
            raise InvalidField("'compare_files' is empty; omit it to compare every file",
                               loc=("compare_files",))
        return self


class MessageRules(_Model):
    """Rules on the commit message (compared after stripping outer whitespace)."""

    min_length: NonNegativeInt | None = Field(
        default=None, description="Fewest characters a message may have (stripped).")
    max_length: PositiveInt | None = Field(
        default=None, description="Most characters a message may have (stripped).")
    forbidden: tuple[Annotated[StrictStr, StringConstraints(min_length=1)], ...] = Field(
        default=(), description="Messages refused as a whole (case-insensitive, "
                                "whitespace collapsed, trailing '.' or '!' ignored).")

    @model_validator(mode="after")
    def _range(self) -> MessageRules:
        if (self.min_length is not None and self.max_length is not None
                and self.min_length > self.max_length):
            raise InvalidField(f"min_length {self.min_length} is greater than max_length "
                               f"{self.max_length}", loc=("min_length",))
        return self


def _check_dataset_name(text: str) -> str:
    from ..naming import validate_dataset_name

    try:
        return validate_dataset_name(text)
    except ValueError as exc:
        raise InvalidField(str(exc)) from None


LinkRole = Annotated[
    StrictStr, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$"),
    Field(description="A link role as commits give it (--from ROLE=DATASET@REF), e.g. "
                      "'training': lowercase ASCII letters, digits, '_' or '-'."),
]
DatasetName = Annotated[StrictStr, AfterValidator(_check_dataset_name)]


class LinkRequirement(_Model):
    """Links of one role a commit must have, and what every such linked commit must be.

    Every link of the role must satisfy every condition, not just one of them.
    The conditions read the linked commit's own dataset as it is when judged
    (so ``audit`` re-checks them against the current state of the data).
    """

    role: LinkRole = Field(description="The role of the links this requirement is about; "
                                       "at least one link of it is required.")
    dataset: DatasetName | None = Field(
        default=None, description="The dataset the links must name (in the same root).")
    tags: tuple[TagName, ...] = Field(
        default=(), description="Tags the linked version must carry: the linked commit "
                                "or a promotion of it (e.g. [approved]).")
    stage: TagName | None = Field(
        default=None, description="A stage of its own dataset the linked version must hold "
                                  "now (the linked commit or a promotion of it).")
    where: Expression | None = Field(
        default=None, description="A condition on the linked commit's metadata (missing "
                                  "fields fail closed, as in promotion rules).")
    not_tags: tuple[TagName, ...] = Field(
        default=(), description="Tags the linked version must not carry (a data version "
                                "promoted to e.g. 'recalled' fails every model linking it).")
    allow_withdrawn: bool = Field(
        default=False, description="Admit a linked version that was withdrawn from a "
                                   "stage (by default a withdrawal fails every link to it).")


class LineageRule(_Model):
    """What a commit carrying one tag must link to (``lineage.<tag>``)."""

    requires: tuple[LinkRequirement, ...] = Field(
        default=(), description="Links the commit must have, per role.")
    code: bool = Field(default=False, description="A code revision (--code) is required.")
    run: bool = Field(default=False, description="A run id (--run) is required.")


#: The families of rule names (see :mod:`.gate`) an ``overrides.rules`` entry may name.
RULE_FAMILIES = ("metadata.", "tags.", "promotion.", "message.", "lineage.")
RuleGlob = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_GLOB_LENGTH),
    Field(description="A rule name as violations report it (e.g. "
                      "'promotion.production.when'), or an fnmatch glob of them "
                      "('promotion.*.required_files')."),
]


class OverrideRules(_Model):
    """Break-glass: which violations a commit may be admitted despite, by whom, why."""

    rules: tuple[RuleGlob, ...] = Field(
        min_length=1, description="The rules an override may let past; every other "
                                  "violation still refuses the commit.")
    authors: tuple[Annotated[StrictStr, StringConstraints(min_length=1)], ...] | None = Field(
        default=None, description="Authors who may override (compared after stripping "
                                  "whitespace); omitted: any author.")
    reason_required: bool | None = Field(
        default=None, description="Whether an override needs a reason (default: true). "
                                  "The reason is stored in the commit.")

    @model_validator(mode="after")
    def _rule_names(self) -> OverrideRules:
        for index, rule in enumerate(self.rules):
            if rule != "*" and not rule.startswith(RULE_FAMILIES):
                raise InvalidField(f"{rule!r} names no rule: rule names start with "
                                   f"{', '.join(RULE_FAMILIES)} (or use '*')",
                                   loc=("rules", index))
        return self


PrincipalName = Annotated[StrictStr, StringConstraints(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")]


def _check_public_key(text: str) -> str:
    from ..sshsig import PublicKey  # cryptography loads only for policies that name keys

    return PublicKey.parse(text).openssh  # SigningKeyError (a ValueError) names the defect


SshPublicKey = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=16384),
    AfterValidator(_check_public_key),
    Field(description="An OpenSSH public key line, as in a .pub file or allowed_signers "
                      "(ssh-ed25519, ecdsa-sha2-nistp*, or ssh-rsa of 2048 bits or more); "
                      "a trailing comment is dropped."),
]
Names = tuple[PrincipalName, ...]


class PolicyChangeRule(_Model):
    """Who must sign a new version of the policy (checked against the version before)."""

    by: Names = Field(min_length=1, description="Principals or groups whose signatures "
                                                "count.")
    count: PositiveInt = Field(default=1, description="Distinct principals of 'by' who "
                                                      "must sign the new version.")


class ApprovalRule(_Model):
    """How many distinct people must approve a commit before it may carry a tag."""

    count: PositiveInt = Field(description="Distinct principals of 'by' whose signed "
                                           "approvals (kirin approve) are needed.")
    by: Names = Field(min_length=1, description="Principals or groups who may approve.")
    author_may_approve: bool | None = Field(
        default=None, description="Whether the signer of the commit being promoted may "
                                  "approve it (default: no).")


class SigningRequirements(_Model):
    """Which actions must be signed, and by whom (principal or group names)."""

    commit: Names | None = Field(
        default=None, description="Every commit (and promotion, rollback, withdrawal) must "
                                  "be signed by one of these.")
    promote: Annotated[dict[TagName, Names], AfterValidator(_freeze_mapping)] = Field(
        default_factory=FrozenDict,
        description="Per tag: a record carrying it must be signed by one of these.")
    withdraw: Names | None = Field(
        default=None, description="A withdrawal must be signed by one of these.")
    override: Names | None = Field(
        default=None, description="An override must be signed by one of these (on top "
                                  "of overrides.authors).")
    approvals: Annotated[dict[TagName, ApprovalRule], AfterValidator(_freeze_mapping)] = Field(
        default_factory=FrozenDict,
        description="Per tag: approvals a promotion to it needs (of the commit promoted).")
    policy: PolicyChangeRule | None = Field(
        default=None, description="A new version of this policy must be signed by 'count' "
                                  "principals of 'by' (a chain of trust: each version "
                                  "says who may replace it).")


class SigningRules(_Model):
    """Who may sign (principals and their SSH keys, groups) and what must be signed."""

    principals: Annotated[dict[PrincipalName, tuple[SshPublicKey, ...]],
                          AfterValidator(_freeze_mapping)] = Field(
        description="Named people or machines and their public keys (several: key "
                    "rotation; remove a key to stop it acting).")
    groups: Annotated[dict[PrincipalName, Names], AfterValidator(_freeze_mapping)] = Field(
        default_factory=FrozenDict, description="Named sets of principals.")
    revoked: tuple[Annotated[StrictStr, StringConstraints(
        pattern=r"^SHA256:[A-Za-z0-9+/]{43}$")], ...] = Field(
        default=(), description="Fingerprints (SHA256:..., as ssh-keygen -l prints) of keys "
                                "whose signatures are never valid, earlier ones included.")
    require: SigningRequirements = SigningRequirements()

    @model_validator(mode="after")
    def _names_exist(self) -> SigningRules:
        for name, keys in self.principals.items():
            if not keys:
                raise InvalidField(f"principal {name!r} has no key", loc=("principals", name))
        clash = sorted(set(self.principals) & set(self.groups))
        if clash:
            raise InvalidField(f"{clash[0]!r} is both a principal and a group",
                               loc=("groups", clash[0]))
        for group, members in self.groups.items():
            for index, member in enumerate(members):
                if member not in self.principals:
                    raise InvalidField(f"group {group!r} names {member!r}, which is not a "
                                       f"principal.{_close(member, self.principals)}",
                                       loc=("groups", group, index))
        owners: dict[str, str] = {}
        for name, keys in self.principals.items():
            for index, key in enumerate(keys):
                other = owners.setdefault(key, name)
                if other != name:
                    raise InvalidField(f"the same key is listed for {other!r} and {name!r}",
                                       loc=("principals", name, index))
        require = self.require
        lists: list[tuple[Loc, Names | None]] = [
            (("require", "commit"), require.commit), (("require", "withdraw"), require.withdraw),
            (("require", "override"), require.override),
            *((("require", "promote", tag), names) for tag, names in require.promote.items()),
            *([(("require", "policy", "by"), require.policy.by)] if require.policy else []),
            *((("require", "approvals", tag, "by"), rule.by)
              for tag, rule in require.approvals.items())]
        known = {*self.principals, *self.groups}
        for loc, names in lists:
            for index, name in enumerate(names or ()):
                if name not in known:
                    raise InvalidField(f"{name!r} is neither a principal nor a group."
                                       f"{_close(name, known)}", loc=(*loc, index))
            if names is not None and not names:
                raise InvalidField("an empty list would let nobody act; omit the key to "
                                   "require no signature", loc=loc)
        expand = rules.SigningRules.from_data(model_data(self)).members
        for tag, rule in require.approvals.items():
            if rule.count > len(expand(rule.by)):
                raise InvalidField(f"count {rule.count} is more than the "
                                   f"{len(expand(rule.by))} principal(s) of "
                                   f"{', '.join(rule.by)}", loc=("require", "approvals", tag,
                                                                 "count"))
        if require.policy is not None and require.policy.count > len(
                expand(require.policy.by)):
            raise InvalidField(f"count {require.policy.count} is more than the "
                               f"{len(expand(require.policy.by))} principal(s) of "
                               f"{', '.join(require.policy.by)}: no version could follow",
                               loc=("require", "policy", "count"))
        return self


def _close(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _check_version(value: Any) -> Any:
    if type(value) is not int:  # Literal[1] alone would also take True and 1.0
        raise InvalidField(f"version must be the integer {POLICY_FORMAT_VERSION}; got "
                           f"{value!r}")
    return value


class Policy(_Model):
    """A registry's policy: metadata schema, tag vocabulary, promotion and message rules.

    Build one with :func:`~kirin.policy.load_policy` or
    :func:`~kirin.policy.load_policy_text`; judge a commit with
    :func:`~kirin.policy.evaluate_policy`.
    """

    version: Annotated[Literal[1], BeforeValidator(_check_version)] = Field(
        description="Format version of the policy file; 1 is the only one so far.")
    description: StrictStr | None = Field(
        default=None, description="What this policy is for, in words.")
    metadata: MetadataRules = MetadataRules()
    tags: TagRules = TagRules()
    promotion: Annotated[dict[TagName, PromotionRule], AfterValidator(_freeze_mapping)] = (
        Field(default_factory=FrozenDict,
              description="Per tag: what a commit must satisfy to carry it."))
    message: MessageRules = MessageRules()
    stages: tuple[TagName, ...] | None = Field(
        default=None, description="The registry's stages in order (e.g. [dev, staging, "
                                  "production]): tags naming which commit holds each "
                                  "stage, shown by `kirin status` and retired by "
                                  "`kirin withdraw`.")
    overrides: OverrideRules | None = Field(
        default=None, description="Break-glass: who may admit a commit despite which "
                                  "violations (--override --reason).")
    signing: SigningRules | None = Field(
        default=None, description="SSH-key identities and which actions they must sign.")
    rollback: Literal["allowed", "forbidden"] | None = Field(
        default=None, description="'allowed': a commit that once held a stage may be "
                                  "promoted to it again under the policy that admitted it "
                                  "then (promote --rollback). Default: forbidden.")
    lineage: Annotated[dict[TagName, LineageRule], AfterValidator(_freeze_mapping)] | None = (
        Field(default=None, description="Per tag: the links a commit carrying it must have "
                                        "(e.g. production needs approved training data)."))

    @model_validator(mode="after")
    def _names_in_vocabulary(self) -> Policy:
        """A rule about a tag the vocabulary refuses could never apply: a typo."""
        vocab = rules.TagRules.from_data(model_data(self.tags))

        def need(tag: str, loc: Loc, what: str) -> None:
            if not vocab.admits(tag):
                raise InvalidField(f"{what} names tag {tag!r}, which is outside the tag "
                                   f"vocabulary.{vocab.suggest(tag)} {vocab.describe()}",
                                   loc=loc)

        for index, tag in enumerate(vocab.unique):
            need(tag, ("tags", "unique", index), "tags.unique")
        for gi, group in enumerate(vocab.exclusive_groups):
            for ti, tag in enumerate(group):
                need(tag, ("tags", "exclusive_groups", gi, ti), "An exclusive group")
        for tag, rule in self.promotion.items():
            need(tag, ("promotion", tag), "A promotion rule")
            if rule.requires_stage is not None:
                need(rule.requires_stage, ("promotion", tag, "requires_stage"),
                     f"promotion.{tag}.requires_stage")
                if rule.requires_stage == tag:
                    raise InvalidField(f"tag {tag!r} cannot require an earlier commit "
                                       "tagged with itself",
                                       loc=("promotion", tag, "requires_stage"))
        for tag in self.lineage or {}:
            need(tag, ("lineage", tag), "A lineage rule")
        for index, stage in enumerate(self.stages or ()):
            need(stage, ("stages", index), "A stage")
            if stage in (self.stages or ())[:index]:
                raise InvalidField(f"stage {stage!r} is listed twice", loc=("stages", index))
        if self.signing is not None:
            for tag in self.signing.require.promote:
                need(tag, ("signing", "require", "promote", tag), "signing.require.promote")
            for tag in self.signing.require.approvals:
                need(tag, ("signing", "require", "approvals", tag),
                     "signing.require.approvals")
        if self.overrides is not None:
            for index, author in enumerate(self.overrides.authors or ()):
                if not author.strip():
                    raise InvalidField("an author name cannot be blank",
                                       loc=("overrides", "authors", index))
        return self


def model_data(model: BaseModel) -> dict[str, Any]:
    """A checked model's canonical data (what :meth:`rules.Policy.from_data` reads)."""
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def checked_policy(model: Policy) -> rules.Policy:
    """The value a checked policy model stands for: built from its canonical data."""
    return rules.Policy.from_data(model_data(model))


def policy_yaml(data: dict[str, Any]) -> str:
    """Readable YAML of a policy's canonical data (file order, defaults left out)."""
    model = Policy.model_validate(data)  # data of a checked policy: file order, defaults
    shown = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for allow_unicode in (True, False):
        dumped: str = yaml.safe_dump(shown, sort_keys=False, width=88,
                                     allow_unicode=allow_unicode, default_flow_style=False)
        # pyyaml mangles a few characters (a lone U+0085) when emitting them
        # raw; escaping everything non-ASCII is the lossless fallback.
        if yaml.safe_load(dumped) == shown:
            break
    return dumped


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of the policy file itself, for editors and CI linters."""
    schema = Policy.model_json_schema(by_alias=True)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "Kirin registry policy",
        "description": "A Kirin registry's policy file (YAML): metadata schema, tag "
                       "vocabulary, promotion rules and message rules.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional layers from a field annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def keys_at(loc: Loc) -> tuple[str, ...]:
    """The keys the policy format allows in the mapping at ``loc`` (for 'did you mean')."""
    current: Any = Policy
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            by_key = {f.alias or name: f for name, f in current.model_fields.items()}
            field = by_key.get(str(part))
            if field is None:
                return ()
            current = field.annotation
        else:
            args = typing.get_args(current)
            if not args:
                return ()
            current = args[-1] if typing.get_origin(current) is dict else args[0]
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return tuple(f.alias or name for name, f in current.model_fields.items())
    return ()
