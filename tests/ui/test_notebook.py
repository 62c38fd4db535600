"""Notebook display: ``_repr_html_`` of the values users print, metric rows, plotting."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog, Dataset

from ui_helpers import (
    HOSTILE_FILE,
    HOSTILE_KEY,
    HOSTILE_MESSAGE,
    HOSTILE_TAG,
    HOSTILE_VALUE,
    Built,
    build_registry,
)


class Parsed(HTMLParser):
    """The tags and the text of an HTML fragment, as a browser would see them."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.feed(fragment)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def joined(self) -> str:
        return "".join(self.text)


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Catalog, Built]:
    catalog = Catalog(tmp_path / "registry")
    return catalog, build_registry(catalog, tmp_path / "work")


def test_a_hostile_commit_shows_as_text(registry: tuple[Catalog, Built]) -> None:
    catalog, built = registry
    commit = catalog.get_dataset("hostile").resolve(built.hostile)
    parsed = Parsed(commit._repr_html_())
    assert parsed.tags <= {"div", "b", "table", "thead", "tbody", "tr", "th", "td", "code",
                           "ul", "li"}
    assert not [a for a in parsed.attributes if a.startswith("on")]
    for raw in (HOSTILE_MESSAGE, HOSTILE_TAG, HOSTILE_KEY, HOSTILE_VALUE, HOSTILE_FILE):
        assert raw in parsed.joined


def test_dataset_shows_its_stage_holders_and_newest_commits(registry: tuple[Catalog, Built]
                                                            ) -> None:
    catalog, built = registry
    models = catalog.get_dataset("models")
    text = Parsed(models._repr_html_()).joined
    assert "Dataset models: 7 commits" in text
    assert f"production: {built.models[6][:8]}" in text
    assert f"staging: {built.models[4][:8]}" in text
    assert all(h[:8] in text for h in built.models)
    assert "metrics.accuracy" in text  # a metric column


def test_comparison_is_the_same_dict_and_shows_its_changes(registry: tuple[Catalog, Built]
                                                           ) -> None:
    catalog, built = registry
    models = catalog.get_dataset("models")
    changes = models.compare_commits(built.models[0], built.models[5])
    assert isinstance(changes, dict)
    assert changes["metadata_diff_paths"]["changed"]["metrics.accuracy"] == {"old": 0.6,
                                                                            "new": 0.85}
    text = Parsed(changes._repr_html_()).joined
    assert "metrics.accuracy" in text and "0.6" in text and "0.85" in text
    assert "model.bin" in text and "modified" in text
    same = models.compare_commits(built.models[4], built.models[6])  # promotion: same content
    assert "no differences" not in Parsed(same._repr_html_()).joined  # the tags differ
    assert "production" in Parsed(same._repr_html_()).joined


def test_report_and_audit_show_their_violations(registry: tuple[Catalog, Built]) -> None:
    catalog, built = registry
    models = catalog.get_dataset("models")
    rejected = models.validate_promotion(built.models[3], ["production"])
    assert not rejected.ok
    text = Parsed(rejected._repr_html_()).joined
    for violation in rejected.violations:
        assert violation.rule in text and violation.message in text
    assert Parsed(models.validate("fine", metadata={}, tags=["dev"])._repr_html_()
                  ).joined.startswith("OK")
    audit = models.audit()
    assert [c.hash for c, _ in audit] == [built.models[6]]
    text = Parsed(audit._repr_html_()).joined
    assert built.models[6][:8] in text and "promotion.production.when" in text


def test_metric_history_rows_make_a_dataframe(registry: tuple[Catalog, Built]) -> None:
    pandas = pytest.importorskip("pandas")
    catalog, built = registry
    models = catalog.get_dataset("models")
    frame = pandas.DataFrame(models.metric_history("metrics.accuracy"))
    assert list(frame["hash"]) == built.models
    assert list(frame["metrics.accuracy"]) == [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8]
    assert {"seq", "short_hash", "timestamp", "author", "message", "tags"} <= set(frame)
    assert frame["timestamp"].is_monotonic_increasing


def test_metric_history_takes_numbers_only_and_dotted_keys(tmp_path: Path) -> None:
    ds = Dataset(tmp_path / "registry", "odd")
    values: list[dict[str, Any]] = [{"m": {"a": 1}}, {"m": {"a": True}}, {"m": {"a": "0.5"}},
                                    {"m": 2}, {"m.a": 3.5}, {"m": {"a": 4, "b": None}}, {}]
    for i, metadata in enumerate(values):
        ds.commit(f"c{i}", add_files={"f": str(_file(tmp_path, i))}, metadata=metadata)
    assert [row["m.a"] for row in ds.metric_history("m.a")] == [1.0, 3.5, 4.0]


def _file(folder: Path, i: int) -> Path:
    path = folder / f"f{i}"
    path.write_text(str(i))
    return path


def test_plot_metric_draws_every_commit_and_marks_the_stages(registry: tuple[Catalog, Built]
                                                             ) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    catalog, _ = registry
    ax = catalog.get_dataset("models").plot_metric("metrics.accuracy")
    assert len(ax.lines[0].get_xdata()) == 7
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "dev", "production", "staging"]
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_metric_svg_escapes_and_links_each_point(registry: tuple[Catalog, Built]) -> None:
    from kirin.ui.notebook import metric_svg

    catalog, _ = registry
    svg = metric_svg(catalog.get_dataset("hostile"), "score")
    parsed = Parsed(svg)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert svg.count('class="point"') == 2
    assert html.escape(HOSTILE_MESSAGE) in svg


def test_lineage_and_used_by_show_as_tables_of_text(tmp_path: Path) -> None:
    """Links in a commit's table, the upstream tree and the uses, every string escaped."""
    catalog = Catalog(tmp_path / "registry")
    source = tmp_path / "d.csv"
    source.write_text("a")
    data = catalog.get_dataset("data")
    digest = data.commit(HOSTILE_MESSAGE, add_files=[str(source)], tags=[HOSTILE_TAG])
    model = catalog.get_dataset("model")
    trained = model.commit("<b>model</b>", add_files=[str(source)],
                           lineage={"training": f"data@{digest}"}, code="<script>")
    allowed = {"div", "b", "table", "thead", "tbody", "tr", "th", "td", "code", "ul", "li"}
    for fragment, raws in (
            (model.resolve(trained)._repr_html_(), ["training", f"data@{digest}", "<script>"]),
            (model.lineage()._repr_html_(), [HOSTILE_MESSAGE, HOSTILE_TAG, "<b>model</b>"]),
            (data.used_by(digest)._repr_html_(), ["<b>model</b>", "training"])):
        parsed = Parsed(fragment)
        assert parsed.tags <= allowed
        for raw in raws:
            assert raw in parsed.joined
