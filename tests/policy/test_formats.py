"""JSON Schema ``format``: a fixed set, enforced the same way whatever is installed.

jsonschema checks ``date-time``, ``uri``, ``hostname``... only when optional
packages are present; the gate must not: the same policy hash gives the same
verdict on every machine, and a format it does not enforce is refused at load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kirin.errors import PolicyError
from kirin.policy import evaluate_policy, load_policy_text
from kirin.policy._formats import CHECKERS, FORMAT_CHECKER, SUPPORTED_FORMATS

from policy_helpers import make_proposal

ROOT = Path(__file__).resolve().parents[2]

VALID: dict[str, list[str]] = {
    "date": ["2024-02-29", "1999-12-31", "0001-01-01"],
    "date-time": ["2024-01-01T12:30:00Z", "2024-01-01t12:30:00.123+02:00",
                  "2016-12-31T23:59:60Z", "2024-06-30T01:29:60+01:30"],
    "time": ["12:30:00Z", "00:00:00.5-05:00", "23:59:60z"],
    "duration": ["P1Y2M3DT4H5M6S", "PT5M", "P2W", "P1D", "PT36H", "P1M", "P0D"],
    "email": ["ada@example.com", "a.b+tag@sub.example.org", "x@y"],
    "hostname": ["example.com", "localhost", "a-b.c1.example", "x" * 63 + ".com"],
    "ipv4": ["192.168.0.1", "0.0.0.0", "255.255.255.255"],
    "ipv6": ["::1", "2001:db8::8a2e:370:7334", "::ffff:192.168.0.1"],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000"],
    "uri": ["https://example.com/models/a?x=1#top", "urn:isbn:0451450523",
            "mailto:ada@example.com", "http://[2001:db8::1]:8080/", "s3://bucket/key%20x",
            "file:///tmp/a"],
    "uri-reference": ["https://example.com", "../models/a.pt", "#frag", "", "//host/p",
                      "a/b?c"],
    "json-pointer": ["", "/a/b", "/a~0b/~1c", "/"],
    "relative-json-pointer": ["0", "1/a/b", "2#"],
}
INVALID: dict[str, list[str]] = {
    "date": ["last tuesday", "2024-13-01", "2023-02-29", "2024-1-01", "２０２４-01-01",
             "2024-01-01T00:00:00Z", "202４-01-01"],
    "date-time": ["last tuesday", "2024-01-01 12:30:00Z", "2024-01-01T12:30:00",
                  "2024-01-01T25:00:00Z", "2024-01-01T12:30:60Z", "2024-01-01",
                  "2024-01-01T12:30:00+24:00"],
    "time": ["noon", "12:30", "12:30:00", "24:00:00Z", "22:59:60Z", "12:60:00Z",
             "١٢:30:00Z"],
    "duration": ["P", "PT", "P1D2H", "PT1D", "1 week", "P1.5D", "P1W2D", "P2S"],
    "email": ["not-an-email", "@example.com", "ada@", "ada smith@example.com",
              "ada@exa\nmple.com"],
    "hostname": ["-bad.com", "bad-.com", "a..b", "", "under_score.com", "x" * 64 + ".com",
                 "exämple.com", "a.b."],
    "ipv4": ["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "١.2.3.4", "1.2.3.4 "],
    "ipv6": ["::1%eth0", "12345::", "1:2:3:4:5:6:7:8:9", "not-ip", "::１"],
    "uuid": ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g",
             "{123e4567-e89b-12d3-a456-426614174000}"],
    "uri": ["last tuesday", "../relative", "http://exa mple.com", "http://例え.jp",
            "https://example.com/%zz", "http://[not-ip]/", "\\\\server\\share", ""],
    "uri-reference": ["http://exa mple.com", "a b", "%zz", "http://[::1%eth0]/"],
    "json-pointer": ["a/b", "/a~2", "/~"],
    "relative-json-pointer": ["/a", "01/a", "-1", "1##"],
}


def policy_with(schema: dict[str, Any]) -> Any:
    return load_policy_text(json.dumps({"version": 1, "metadata": {"schema": schema}}))


def verdict(policy: Any, value: Any) -> bool:
    report = evaluate_policy(policy, make_proposal("A clear message", {"m.pt": "w"},
                                                   {"x": value}), [])
    return report.ok


def test_the_supported_set_is_exactly_what_the_checker_holds() -> None:
    assert set(FORMAT_CHECKER.checkers) == set(SUPPORTED_FORMATS) == set(CHECKERS)
    assert set(VALID) == set(INVALID) == set(SUPPORTED_FORMATS)


@pytest.mark.parametrize(("name", "value", "expected"), [
    *((n, v, True) for n, values in VALID.items() for v in values),
    *((n, v, False) for n, values in INVALID.items() for v in values),
])
def test_verdict_of_each_supported_format(name: str, value: str, expected: bool) -> None:
    policy = policy_with({"properties": {"x": {"format": name}}})
    assert verdict(policy, value) is expected


@pytest.mark.parametrize("name", SUPPORTED_FORMATS)
def test_a_format_applies_to_strings_only(name: str) -> None:
    policy = policy_with({"properties": {"x": {"format": name}}})
    values: tuple[object, ...] = (1, 1.5, None, True, [], {})
    assert all(verdict(policy, v) for v in values)


@given(st.text(max_size=40))
def test_checkers_never_raise_and_answer_a_bool(text: str) -> None:
    for check in CHECKERS.values():
        assert check(text) in (True, False)


@pytest.mark.parametrize(("schema", "where"), [
    ({"properties": {"x": {"format": "uri-template"}}}, "properties.x.format"),
    ({"format": "iri"}, "format"),
    ({"$defs": {"d": {"format": "idn-hostname"}}}, '$defs.d.format'),
    ({"items": {"format": "regex"}}, "items.format"),
    ({"allOf": [{}, {"anyOf": [{"format": "nonsense"}]}]}, "allOf[1].anyOf[0].format"),
    ({"properties": {"format": {"properties": {"y": {"format": "idn-email"}}}}},
     "properties.format.properties.y.format"),
    ({"prefixItems": [{"format": "iri-reference"}]}, "prefixItems[0].format"),
])
def test_an_unsupported_format_is_refused_at_load(schema: dict[str, Any], where: str) -> None:
    text = "version: 1\nmetadata:\n  schema: " + json.dumps(schema) + "\n"
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, source="team.yaml")
    message = str(info.value)
    assert "team.yaml" in message and f"metadata.schema.{where}" in message
    assert "team.yaml:3," in message and "not supported" in message
    assert "date-time" in message and "uri-reference" in message  # the supported list


def test_an_unsupported_format_in_a_schema_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text(json.dumps(
        {"properties": {"home": {"format": "iri"}}}))
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nmetadata:\n  schema_file: card.json\n")
    from kirin.policy import load_policy

    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    message = str(info.value)
    assert "card.json" in message and "properties.home.format" in message
    assert "'iri' is not supported" in message


def test_format_names_inside_data_keywords_are_data() -> None:
    policy = policy_with({"properties": {"x": {"enum": [{"format": "nonsense"}],
                                               "default": {"format": "iri"}}}})
    assert verdict(policy, {"format": "nonsense"})


_PROBE = textwrap.dedent("""
    import json, sys
    for name in sys.argv[1].split(","):
        sys.modules[name] = None  # any import of it raises ImportError
    from kirin.policy import evaluate_policy, load_policy_text
    from kirin.values import Proposal
    from kirin._json import FrozenDict, FrozenList
    cases = json.loads(sys.stdin.read())
    out = []
    for name, value in cases:
        policy = load_policy_text(json.dumps(
            {"version": 1, "metadata": {"schema": {"properties": {"x": {"format": name}}}}}))
        proposal = Proposal(message="m", files=FrozenDict(), added=(), removed=(),
                            metadata=FrozenDict({"x": value}), tags=FrozenList())
        out.append(evaluate_policy(policy, proposal, []).ok)
    print(json.dumps(out))
""")
OPTIONAL = ["rfc3339_validator", "rfc3986_validator", "rfc3987", "rfc3987_syntax",
            "isoduration", "fqdn", "idna", "jsonpointer", "uri_template", "webcolors",
            "isodate"]


def test_verdicts_do_not_depend_on_optional_packages() -> None:
    """The same verdicts with jsonschema's optional format packages made unimportable."""
    cases = [(n, v) for table in (VALID, INVALID) for n, values in table.items()
             for v in values]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    verdicts = {}
    for blocked in ("", ",".join(OPTIONAL)):
        done = subprocess.run([sys.executable, "-c", _PROBE, blocked or "_none_"],
                              input=json.dumps(cases), capture_output=True, text=True,
                              env=env, check=True, timeout=120)
        verdicts[blocked] = json.loads(done.stdout)
    expected = [v in VALID[n] for n, v in cases]
    assert verdicts[""] == verdicts[",".join(OPTIONAL)] == expected
