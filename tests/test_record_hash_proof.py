"""The stored text of a record proves its hash without re-encoding: signed records too.

:func:`kirin.records.hashes_as_stored` cuts the ``hash`` and ``signature``
members out of the stored text and hashes the rest. It must say ``True``
exactly when the record is sound, whatever look-alike members an attacker puts
in metadata, messages or tags; and the history built from such text (metadata
cut from it, the record rebuilt for checkpoints) must equal the record.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kirin._json import canonical_json
from kirin.history import _record_of, _row
from kirin.records import GOVERNANCE_KEYS, check_record, hashes_as_stored, make_record

DIGEST = "a" * 64
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0x alice"
SIG = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----"
#: Strings that look like the members being cut, to hide in metadata and text fields.
TRAPS = [',"signature":{"key":"k","sig":"s"},"tags":', ',"hash":"' + DIGEST + '","kirin":',
         '"seq":1', ',"parent":', ',"metadata":', "signature", "tags", "}", '"']

text_st = st.one_of(st.sampled_from(TRAPS), st.text(max_size=12))
json_st = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | text_st,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.one_of(st.sampled_from(["signature", "tags", "seq", "hash", "kirin", "parent",
                                   "metadata", "key", "sig"]), st.text(max_size=5)),
        inner, max_size=3),
    max_leaves=8)


def _record(metadata: Any, message: str, tags: list[str], governance: dict[str, Any],
            signed: bool) -> dict[str, Any]:
    return make_record(
        seq=1, parent=DIGEST, snapshot={}, added={}, removed=(), message=message,
        metadata=metadata, tags=tags, timestamp=datetime(2026, 12, 7, tzinfo=timezone.utc),
        author="alice", policy=None, governance=governance or None,
        sign=(lambda digest: {"key": KEY, "sig": SIG}) if signed else None)


@settings(max_examples=300, deadline=None)
@given(metadata=st.dictionaries(st.text(max_size=8), json_st, max_size=4),
       message=text_st, tags=st.lists(text_st, max_size=3), signed=st.booleans(),
       root_policy=st.booleans(), reason=st.none() | text_st)
def test_the_stored_text_proves_exactly_a_sound_record(
        metadata: dict[str, Any], message: str, tags: list[str], signed: bool,
        root_policy: bool, reason: str | None) -> None:
    governance: dict[str, Any] = {"root_policy": "b" * 64} if root_policy else {}
    if reason is not None:
        governance["override"] = {"reason": reason, "violations": [
            {"rule": reason, "path": message, "source": "dataset", "message": reason}]}
    record = _record(metadata, message, tags, governance, signed)
    text = canonical_json(record)
    assert hashes_as_stored(record, text)
    row = _row(check_record(record, where="#1", seq=1, text=text), text)
    assert _record_of(1, row) == record  # what a checkpoint repeats
    assert json.loads(row[7]) == record["metadata"]  # the metadata cut from the text
    kept = {k: record[k] for k in GOVERNANCE_KEYS if k in record}
    assert row[12] == (canonical_json(kept) if kept else None)  # the signature cut from it

    altered = dict(record, metadata={**metadata, "x": 1})
    assert not hashes_as_stored(altered, canonical_json(altered))
    moved = json.loads(text)  # the same record, its text no longer canonical
    assert hashes_as_stored(moved, json.dumps(moved, sort_keys=True)) is False


def test_a_fake_signature_member_in_metadata_is_not_what_is_cut() -> None:
    """The cut member is the last one before tags: one planted in metadata stays hashed."""
    planted = {"z": {"seq": 1, "signature": {"key": KEY, "sig": SIG}, "tags": []}}
    record = _record(planted, "m", [], {}, signed=True)
    text = canonical_json(record)
    assert hashes_as_stored(record, text)
    forged = dict(record, metadata={"z": {"seq": 1, "tags": []}})  # the planted one removed
    assert not hashes_as_stored(forged, canonical_json(forged))


def test_a_record_with_an_override_keeps_its_metadata_exact() -> None:
    """An override (between metadata and parent) with look-alike members in its strings."""
    override = {"reason": ',"parent":', "violations": [
        {"rule": "r", "path": ',"metadata":{', "source": "dataset", "message": '"parent"'}]}
    record = _record({"a": 1}, "m", [], {"override": override}, signed=False)
    text = canonical_json(record)
    row = _row(check_record(record, where="#1", seq=1, text=text), text)
    assert json.loads(row[7]) == {"a": 1} and _record_of(1, row) == record

