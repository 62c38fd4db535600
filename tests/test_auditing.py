"""Audits CI can run: since a commit or a date, against today's policy or the admitting one.

The registry is real (a local folder); a gate that did not hold is simulated
by committing with the judge switched off, which is what a writer with raw
bucket access or an older, buggy client amounts to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kirin import Dataset
from kirin.auditing import Since, admitted_verdict, parse_moment
from kirin.errors import CorruptObjectError, InvalidInputError
from kirin.policy import Report
from kirin.values import Commit

from conftest import write

LAX = """\
version: 1
tags:
  unique_patterns: ['v\\d+']
promotion:
  staging:
    when: "accuracy >= 0.5"
"""
STRICT = LAX.replace("accuracy >= 0.5", "accuracy >= 0.9")


@contextmanager
def gate_off() -> Iterator[None]:
    """Commits admitted without being judged: records still name the policies in force."""
    original = Dataset._verdict
    Dataset._verdict = lambda self, *args, **kwargs: Report()  # type: ignore[method-assign]
    try:
        yield
    finally:
        Dataset._verdict = original  # type: ignore[method-assign]


class Registry:
    """A dataset whose policy tightened: before and after, each commit records its admitter."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.ds = Dataset(root, "models")
        self.n = 0

    def commit(self, accuracy: float, *tags: str) -> str:
        self.n += 1
        model = write(self.work, f"model-{self.n}.pt", f"weights {self.n}")
        return self.ds.commit(f"Model number {self.n}", add_files=[model],
                              metadata={"accuracy": accuracy}, tags=list(tags))


@pytest.fixture
def reg(tmp_path: Path, workdir: Path) -> Registry:
    return Registry(tmp_path / "registry", workdir)


def hashes(results: list[tuple[Commit, Report]]) -> list[str]:
    return [c.hash for c, _ in results]


def test_tightening_fails_old_commits_against_current_only(reg: Registry) -> None:
    reg.ds.set_policy(LAX)
    old = reg.commit(0.6, "staging")
    reg.ds.set_policy(STRICT, message="raise the staging bar")
    new = reg.commit(0.95, "staging")
    (failed, report), = reg.ds.audit()
    assert failed.hash == old and report.policy_hash == reg.ds.policy.hash  # type: ignore
    assert [v.rule for v in report.violations] == ["promotion.staging.when"]
    assert reg.ds.audit(against="admitting") == []  # the gate held
    everything = reg.ds.audit(against="admitting", include_passing=True)
    assert hashes(everything) == [new, old]  # newest first
    assert [r.policy_hash for _, r in everything] == [
        reg.ds.policy_version(1).policy_hash, reg.ds.policy_version(0).policy_hash]
    # --since the tightening: only what came after is reported
    assert reg.ds.audit(since=old) == []
    assert hashes(reg.ds.audit(since=old, include_passing=True)) == [new]


def test_since_a_date_reports_commits_at_or_after_it(reg: Registry) -> None:
    reg.ds.set_policy(STRICT)
    with gate_off():
        early = reg.commit(0.1, "staging")
    late = reg.commit(0.95, "staging")
    moment = reg.ds.get_commit(late).timestamp  # type: ignore[union-attr]
    assert hashes(reg.ds.audit(since=moment, include_passing=True)) == [late]
    assert hashes(reg.ds.audit(since=moment.isoformat(), include_passing=True)) == [late]
    before = (moment - timedelta(days=1)).astimezone(timezone.utc).strftime("%Y-%m-%d")
    assert hashes(reg.ds.audit(since=before)) == [early]
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")  # local, as shown
    assert reg.ds.audit(since=tomorrow, include_passing=True) == []


def test_earlier_commits_still_count_for_history_rules(reg: Registry) -> None:
    """A version tag reused after --since is caught: the commit before still holds it."""
    reg.ds.set_policy(LAX)
    first = reg.commit(0.6, "v1")
    with gate_off():
        reused = reg.commit(0.7, "v1")
    for against in ("current", "admitting"):
        (failed, report), = reg.ds.audit(since=first, against=against)
        assert failed.hash == reused and [v.rule for v in report.violations] == ["tags.unique"]


def test_admitting_catches_a_gate_that_did_not_hold(reg: Registry) -> None:
    reg.ds.set_policy(STRICT)
    good = reg.commit(0.95, "staging")
    with gate_off():
        bypassed = reg.commit(0.6, "staging")
    reg.ds.set_policy(LAX, message="loosen")  # today's policy would admit it
    assert reg.ds.audit() == []
    (failed, report), = reg.ds.audit(against="admitting")
    assert failed.hash == bypassed and report.policy_hash == reg.ds.policy_version(0).policy_hash
    assert [v.rule for v in report.violations] == ["promotion.staging.when"]
    assert reg.ds.audit(against="admitting", since=bypassed) == []
    verdicts = {c.hash: r for c, r in reg.ds.audit(against="admitting", include_passing=True)}
    assert verdicts[good].ok and verdicts[good].policy_hash == report.policy_hash


def test_commits_without_a_policy_are_not_judged_against_admitting(reg: Registry) -> None:
    early = reg.commit(0.1, "staging")
    reg.ds.set_policy(STRICT)
    later = reg.commit(0.95, "staging")
    results = reg.ds.audit(against="admitting", include_passing=True)
    assert hashes(results) == [later, early]
    assert results[1][1].policy_hash is None and results[1][1].ok  # not judged
    assert hashes(reg.ds.audit()) == [early]  # today's policy judges it


def test_a_missing_admitting_policy_is_a_failure(reg: Registry) -> None:
    reg.ds.set_policy(LAX)
    reg.ds.set_policy(STRICT)
    judged = reg.commit(0.95, "staging")
    (reg.root / "datasets" / "models" / "policy" / f"{1:020d}.json").unlink()  # the newest
    reopened = Dataset(reg.root, "models")
    (failed, report), = reopened.audit(against="admitting")
    assert failed.hash == judged and [v.rule for v in report.violations] == ["policy-history"]
    (reg.root / "datasets" / "models" / "policy" / f"{0:020d}.json").unlink()  # nothing left
    assert [v.rule for _, r in Dataset(reg.root, "models").audit(against="admitting")
            for v in r.violations] == ["policy-history"]


def test_a_hole_in_the_policy_history_refuses_to_audit(reg: Registry) -> None:
    reg.ds.set_policy(LAX)
    reg.ds.set_policy(STRICT)
    reg.ds.set_policy(LAX)
    (reg.root / "datasets" / "models" / "policy" / f"{1:020d}.json").unlink()
    with pytest.raises(CorruptObjectError):
        Dataset(reg.root, "models").audit(against="admitting")


def test_bad_arguments(reg: Registry) -> None:
    reg.ds.set_policy(LAX)
    reg.commit(0.6)
    with pytest.raises(InvalidInputError, match="neither a commit"):
        reg.ds.audit(since="no-such-thing")
    with pytest.raises(InvalidInputError, match="neither a commit"):
        reg.ds.audit(since="2026-13-45")
    with pytest.raises(InvalidInputError, match="against must be one of"):
        reg.ds.audit(against="today")


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01", datetime(2026, 12, 1).astimezone()),
    ("2026-12-01T09:30:00+00:00", datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)),
    ("2026-12-01T09:30Z", datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)),
    ("20261201", None),  # digits: a hash prefix, never a date
    ("v1.0", None), ("2026-12-1x", None),
])
def test_parse_moment(text: str, expected: datetime | None) -> None:
    assert parse_moment(text) == expected


def test_since_after_a_commit_and_from_a_moment() -> None:
    window = Since(after_seq=2)
    assert window.after_seq == 2 and Since().moment is None


BREAK_GLASS = STRICT + """\
overrides:
  rules: ["promotion.staging.when"]
rollback: allowed
"""


def test_an_override_is_excused_against_admitting_only(reg: Registry) -> None:
    """The gate held for a recorded break-glass: its overridden violations are excused by
    the admitting mode (and listed as overridden); today's rules still report it."""
    reg.ds.set_policy(BREAK_GLASS)
    model = write(reg.work, "weak.pt", "weak")
    forced = reg.ds.commit("Weak model, forced through", add_files=[model],
                           metadata={"accuracy": 0.6}, tags=["staging"], override=True,
                           reason="incident 42: the only model that loads")
    (commit, report), = reg.ds.audit(against="admitting", include_passing=True)
    assert commit.hash == forced and report.ok
    assert [v.rule for v in report.overridden] == ["promotion.staging.when"]
    (failed, today), = reg.ds.audit()
    assert failed.hash == forced and [v.rule for v in today.violations] == [
        "promotion.staging.when"]


def test_admitted_verdict_excuses_only_what_the_record_overrode(reg: Registry) -> None:
    from kirin.policy import Violation

    reg.ds.set_policy(BREAK_GLASS)
    model = write(reg.work, "weak.pt", "weak")
    forced = reg.ds.get_commit(reg.ds.commit(
        "Weak model, forced through", add_files=[model], metadata={"accuracy": 0.6},
        tags=["staging"], override=True, reason="incident"))
    assert forced is not None and forced.override is not None
    overridden = Violation("promotion.staging.when", "accuracy", 0.6, "accuracy >= 0.9", "low")
    other = Violation("message.min_length", "message", "x", "10", "short")
    verdict = admitted_verdict(forced, Report((overridden, other), forced.policy_hash))
    assert verdict.violations == (other,) and verdict.overridden == (overridden,)
    plain = reg.ds.get_commit(reg.commit(0.95, "staging"))
    assert plain is not None
    untouched = Report((overridden,), plain.policy_hash)
    assert admitted_verdict(plain, untouched) is untouched


def test_the_root_policy_judges_too(reg: Registry) -> None:
    """A root policy judges every dataset under it, in both modes; a commit admitted by a
    root policy only is judged (by it) against admitting."""
    from kirin import Catalog

    catalog = Catalog(reg.root)
    catalog.set_policy("version: 1\nmessage:\n  min_length: 12\n", message="root rules")
    judged = reg.commit(0.1)
    (commit, report), = reg.ds.audit(against="admitting", include_passing=True)
    assert commit.hash == judged and report.ok and report.root_policy_hash is not None
    catalog.set_policy("version: 1\nmessage:\n  min_length: 40\n", message="stricter")
    (failed, today), = reg.ds.audit()
    assert failed.hash == judged
    assert [(v.rule, v.source) for v in today.violations] == [("message.min_length", "root")]
    assert reg.ds.audit(against="admitting") == []


def test_a_rollback_is_judged_by_the_policy_that_admitted_the_holder_it_restored(
        reg: Registry) -> None:
    """Judged by the policy in force, a rollback would fail the admitting audit."""
    reg.ds.set_policy(LAX + "rollback: allowed\n")
    first = reg.commit(0.6, "staging")
    reg.commit(0.7, "staging")
    reg.ds.set_policy(STRICT + "rollback: allowed\n", message="raise the bar")
    restored = reg.ds.promote(first, ["staging"], rollback=True)
    assert restored == reg.ds.history(limit=1)[0].hash
    results = dict((c.hash, r) for c, r in reg.ds.audit(against="admitting",
                                                         include_passing=True))
    assert results[restored].ok
    assert results[restored].policy_hash == reg.ds.policy_version(0).policy_hash
    assert restored in [c.hash for c, _ in reg.ds.audit()]  # today's bar refuses it
