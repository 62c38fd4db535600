"""What the pages compute, without a server: stages, metric paths, chart ticks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog, Commit
from kirin.ui import data
from kirin.ui.svg import nice_ticks

from ui_helpers import Built, build_registry


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Catalog, Built]:
    catalog = Catalog(tmp_path / "registry")
    return catalog, build_registry(catalog, tmp_path / "work")


def test_stages_come_from_the_policy_tags_when_there_are_no_stages_yet(
        registry: tuple[Catalog, Built]) -> None:
    catalog, built = registry
    rows = data.stage_rows(catalog.get_dataset("models"))
    assert [r.stage for r in rows] == ["dev", "staging", "production"]
    production = rows[2]
    assert production.commit is not None and production.commit.hash == built.models[6]
    assert production.by == "lead@example" and production.since == production.commit.timestamp
    assert [c.hash for c in rows[0].timeline] == [built.models[i] for i in (5, 3, 2, 1, 0)]
    # an ungoverned dataset falls back to the usual stage names; only_held drops the empty
    assert data.stage_rows(catalog.get_dataset("data"), only_held=True) == []


@dataclass
class Held:
    stage: str
    commit: Commit | None
    since: datetime
    by: str
    promoted_from: str | None


def test_first_class_stages_are_used_when_the_dataset_has_them(
        registry: tuple[Catalog, Built]) -> None:
    """The stages feature (``Dataset.stages``) lights the page up without a change here."""
    catalog, built = registry
    models = catalog.get_dataset("models")
    holder = models.resolve(built.models[6])
    when = datetime(2030, 1, 2, tzinfo=timezone.utc)

    class WithStages:
        def __getattr__(self, name: str) -> Any:
            return getattr(models, name)

        def stages(self) -> list[Held]:
            return [Held("production", holder, when, "release-bot", built.models[4]),
                    Held("canary", None, when, "", None)]

    rows = data.stage_rows(WithStages())  # type: ignore[arg-type]
    assert [(r.stage, r.commit, r.since, r.by, r.promoted_from) for r in rows] == [
        ("production", holder, when, "release-bot", built.models[4]),
        ("canary", None, when, "", None)]
    assert [c.hash for c in rows[0].timeline] == [built.models[6]]
    assert [r.stage for r in data.stage_rows(WithStages(), only_held=True)] == [  # type: ignore[arg-type]
        "production"]


def test_lookup_follows_nested_and_dotted_keys() -> None:
    metadata = {"a": {"b": {"c": 1}}, "a.b": {"d": 2}, "x.y": 3, "list": [1]}
    assert data.lookup(metadata, "a.b.c") == 1
    assert data.lookup(metadata, "a.b.d") == 2
    assert data.lookup(metadata, "x.y") == 3
    assert data.lookup(metadata, "a.z") is data._MISSING
    assert data.lookup(metadata, "list.0") is data._MISSING
    assert [data.number(v) for v in (1, 2.5, True, "3", None, float("nan"))] == [
        1.0, 2.5, None, None, None, None]


def test_history_page_builds_only_what_it_shows(registry: tuple[Catalog, Built]) -> None:
    catalog, built = registry
    models = catalog.get_dataset("models")
    page = data.history_page(models, 2, 3)
    assert [c.hash for c in page.commits] == [built.models[i] for i in (3, 2, 1)]
    assert page.total == 7 and page.has_next and page.has_previous
    last = data.history_page(models, 3, 3)
    assert [c.hash for c in last.commits] == [built.models[0]] and not last.has_next
    filtered = data.history_page(models, 1, 2, tags=["dev"])
    assert len(filtered.commits) == 2 and filtered.has_next and filtered.total is None


@pytest.mark.parametrize(("low", "high"), [(0.6, 0.85), (0, 1), (-3, 120), (1e-5, 3e-5),
                                           (5, 5)])
def test_ticks_are_round_and_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and (ticks[-1] >= high or len(ticks) == 1)
    assert 1 <= len(ticks) <= 12
