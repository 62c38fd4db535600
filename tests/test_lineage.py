"""Lineage: commits linked to the exact commits, code and run they came from (issue #18).

Tests taking ``registry_root`` run on every backend (local disk, memory, S3,
Azure, GCS) unless marked ``storage_free``: those check rules decided before
storage is touched, or the stored format, and run on memory only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kirin import Catalog, Dataset
from kirin.errors import (
    CorruptObjectError,
    DanglingLinkError,
    InvalidArgumentTypeError,
    InvalidInputError,
    InvalidNameError,
)
from kirin.lineageindex import scan_dataset
from kirin.links import Lineage, Link, parse_from_option
from kirin.records import encode_record, record_hash

from dataset_helpers import Source, reopen
from roots import RegistryRoot


def data(root: RegistryRoot, src: Source, rows: int, tags: list[str] | None = None,
         name: str = "churn_data") -> str:
    return root.dataset(name).commit(
        f"{rows} rows", add_files={"train.csv": src("train.csv", f"rows {rows}")},
        metadata={"rows": rows}, tags=tags or [])


def train(root: RegistryRoot, src: Source, lineage: Any, name: str = "model",
          **kwargs: Any) -> str:
    return root.dataset(name).commit(
        "trained", add_files={"model.pt": src("model.pt", json.dumps(lineage))},
        lineage=lineage, **kwargs)


def rewrite(root: RegistryRoot, dataset: str, seq: int, change: Any, *,
            rehash: bool = True) -> None:
    """Alter log entry ``seq`` (re-hashed unless told), as a writer with bucket access could."""
    path = root.log_path(dataset, seq)
    record = json.loads(root.cat(path))
    change(record)
    if rehash:
        record.pop("hash")
        record["hash"] = record_hash(record)
    root.pipe(path, encode_record(record))


# -- links across datasets, on every backend -------------------------------------------
def test_links_across_datasets_on_every_backend(registry_root: RegistryRoot,
                                                src: Source) -> None:
    """A model links the data it was trained on; the link survives a reopen, names the full
    hash, and both directions of the graph find it."""
    d1 = data(registry_root, src, 1000, ["v3"])
    features = registry_root.dataset("features").commit(
        "features", add_files={"f.parquet": src("f.parquet", "f")},
        lineage={"source": "churn_data@v3"})
    m1 = train(registry_root, src, {"training": ["features@" + features[:10]],
                                    "validation": "churn_data@v3"},
               code="3f9a2c1b", run="run-42")
    model = reopen(registry_root.dataset("model"))
    commit = model.resolve(m1)
    assert commit.lineage == Lineage((Link("training", "", "features", features),
                                      Link("validation", "", "churn_data", d1)),
                                     "3f9a2c1b", "run-42")
    tree = model.lineage(m1)
    assert [(d, n.role, n.hash) for d, n in tree.walk()] == [
        (0, None, m1), (1, "training", features), (2, "source", d1), (1, "validation", d1)]
    used = registry_root.catalog().used_by("churn_data@v3")
    assert [(u.dataset, u.commit.hash, u.depth) for u in used.uses] == [
        ("features", features, 1), ("model", m1, 1)]
    assert model.verify().ok


def test_a_dangling_link_is_refused_and_nothing_is_written(registry_root: RegistryRoot,
                                                          src: Source) -> None:
    """A link to no dataset, no commit or an ambiguous name raises before any byte is
    written: not the blob, not the record, not the dataset."""
    data(registry_root, src, 10, ["v1"])
    before = registry_root.objects()
    for target in ("nothing@v1", "churn_data@v9", "churn_data@0000000"):
        with pytest.raises(DanglingLinkError, match="names no commit") as caught:
            train(registry_root, src, {"training": target})
        assert "Nothing was written" in str(caught.value)
    assert registry_root.objects() == before


# -- what is recorded ------------------------------------------------------------------
@pytest.mark.storage_free
def test_a_link_records_the_full_hash_its_ref_resolved_to(registry_root: RegistryRoot,
                                                          src: Source) -> None:
    """Hash, prefix, tag and stage all become the full hash; the record is version 2 and its
    inputs are in canonical order, so the same links always hash alike."""
    d1 = data(registry_root, src, 10, ["v1"])
    d2 = registry_root.dataset("churn_data").promote("v1", ["approved"])
    for ref, expected in ((d1, d1), (d1[:7], d1), ("v1", d1), ("approved", d2),
                          ("tag:v1", d1)):
        digest = train(registry_root, src, {"b": f"churn_data@{ref}", "a": "churn_data@v1"})
        record = json.loads(registry_root.cat(registry_root.log_path(
            "model", reopen(registry_root.dataset("model")).resolve(digest).seq)))
        assert record["kirin"] == 2
        assert record["lineage"] == {"inputs": [
            {"role": "a", "dataset": "churn_data", "commit": d1},
            {"role": "b", "dataset": "churn_data", "commit": expected}]}


@pytest.mark.storage_free
def test_a_plain_commit_stays_version_1_and_code_alone_is_lineage(
        registry_root: RegistryRoot, src: Source) -> None:
    plain = data(registry_root, src, 10)
    assert json.loads(registry_root.cat(registry_root.log_path("churn_data", 0)))["kirin"] == 1
    coded = train(registry_root, src, None, code="v1.2.3")
    commit = registry_root.dataset("model").resolve(coded)
    assert commit.lineage == Lineage((), "v1.2.3", None)
    assert registry_root.dataset("churn_data").resolve(plain).lineage is None


@pytest.mark.storage_free
def test_a_link_to_an_earlier_commit_of_the_same_dataset_is_allowed(
        registry_root: RegistryRoot, src: Source) -> None:
    """Fine-tuning: a model links the model it started from. It can only be an earlier
    commit: the newest is the only one that can be named, and the new one has no hash yet."""
    base = train(registry_root, src, None, code="a1")
    tuned = train(registry_root, src, {"base": "model@" + base})
    lineage = registry_root.dataset("model").resolve(tuned).lineage
    assert lineage is not None and lineage.inputs[0].commit == base


@pytest.mark.storage_free
def test_links_are_acyclic_by_construction(registry_root: RegistryRoot, src: Source) -> None:
    """Every link names a commit that existed before the linking one: a cycle would need a
    record holding its own hash (the hash covers the links)."""
    d = data(registry_root, src, 1)
    a = train(registry_root, src, {"data": f"churn_data@{d}"}, name="a")
    b = train(registry_root, src, {"data": f"a@{a}"}, name="b")
    train(registry_root, src, {"data": [f"b@{b}", f"a@{a}"]}, name="a")
    catalog = registry_root.catalog()
    when = {c.hash: c.timestamp for n in catalog.datasets()
            for c in catalog.get_dataset(n).history()}
    for name in catalog.datasets():
        for commit in catalog.get_dataset(name).history():
            for link in commit.lineage.inputs if commit.lineage else ():
                assert when[link.commit] < commit.timestamp


@pytest.mark.storage_free
@pytest.mark.parametrize(("lineage", "kwargs", "error", "message"), [
    ({"training": "churn_d\u0430ta@v1"}, {}, InvalidNameError, "dataset name"),  # Cyrillic
    ({"Training!": "churn_data@v1"}, {}, InvalidInputError, "role"),
    ({"tr\u0430ining": "churn_data@v1"}, {}, InvalidInputError, "role"),  # Cyrillic
    ({"training": "churn_data"}, {}, InvalidInputError, "DATASET@REF"),
    ({"training": "churn_data@"}, {}, InvalidInputError, "DATASET@REF"),
    ({"training": "#churn_data@v1"}, {}, InvalidInputError, "empty root"),
    ({"training": "http://10.0.0.1/x#churn_data@v1"}, {}, InvalidInputError,
     "not a registry backend"),
    ({"training": "s3://key:secret@bucket/r#churn_data@v1"}, {}, InvalidInputError,
     "password"),
    ({"training": "simplecache::s3://b/r#churn_data@v1"}, {}, InvalidInputError, "chained"),
    ({"training": []}, {}, InvalidArgumentTypeError, "non-empty list"),
    ({"training": 3}, {}, InvalidArgumentTypeError, "non-empty list"),
    (["churn_data@v1"], {}, InvalidArgumentTypeError, "mapping"),
    (None, {"code": "abc\n123"}, InvalidInputError, "control characters"),
    (None, {"code": "\u0430bc123"}, InvalidInputError, "look-alike"),  # Cyrillic
    (None, {"run": "run 1"}, InvalidInputError, "without spaces"),
    (None, {"run": 7}, InvalidArgumentTypeError, "run must be a string"),
])
def test_bad_lineage_is_refused_before_anything_is_read(
        registry_root: RegistryRoot, src: Source, lineage: Any, kwargs: dict[str, Any],
        error: type[Exception], message: str) -> None:
    data(registry_root, src, 1, ["v1"])
    with pytest.raises(error, match=message):
        train(registry_root, src, lineage, **kwargs)
    assert registry_root.dataset("model").is_empty()


@pytest.mark.parametrize(("text", "expected"), [
    ("churn_data@v3", ("data", "churn_data@v3")),
    ("training=churn_data@v3", ("training", "churn_data@v3")),
    ("s3://bucket/root#churn@v3", ("data", "s3://bucket/root#churn@v3")),
    ("training=s3://b/r?x=1#churn@v3", ("training", "s3://b/r?x=1#churn@v3")),
])
def test_the_from_option_reads_an_optional_role(text: str, expected: tuple[str, str]) -> None:
    assert parse_from_option(text) == expected


# -- stored records are judged ----------------------------------------------------------
@pytest.mark.storage_free
@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(lineage={}), "'lineage' must be an object"),
    (lambda r: r.update(lineage={"inputs": [], "code": "x"}), "non-empty list"),
    (lambda r: r["lineage"].update(extra=1), "'lineage' must be an object"),
    (lambda r: r["lineage"]["inputs"][0].update(commit="v1"), "full commit hash"),
    (lambda r: r["lineage"]["inputs"][0].update(dataset="../x"), "invalid dataset"),
    (lambda r: r["lineage"]["inputs"][0].update(role="Tr ain"), "invalid role"),
    (lambda r: r["lineage"]["inputs"][0].update(root=""), "invalid root"),
    (lambda r: r["lineage"]["inputs"][0].update(root="http://169.254.169.254/latest"),
     "invalid root"),
    (lambda r: r["lineage"]["inputs"][0].pop("role"), "must hold role"),
    (lambda r: r["lineage"]["inputs"].reverse(), "canonical order"),
    (lambda r: r["lineage"]["inputs"].append(r["lineage"]["inputs"][0]), "distinct"),
    (lambda r: r["lineage"].update(code="a b"), "printable ASCII"),
    (lambda r: r.update(kirin=1), "version 1 record cannot carry lineage"),
])
def test_malformed_stored_lineage_is_corrupt(registry_root: RegistryRoot, src: Source,
                                             change: Any, message: str) -> None:
    data(registry_root, src, 1, ["v1"])
    data(registry_root, src, 2, ["v2"])
    train(registry_root, src, {"training": ["churn_data@v1", "churn_data@v2"]})
    rewrite(registry_root, "model", 0, change)
    with pytest.raises(CorruptObjectError, match=message):
        reopen(registry_root.dataset("model")).history()


@pytest.mark.storage_free
def test_a_changed_link_does_not_match_the_record_hash(registry_root: RegistryRoot,
                                                       src: Source) -> None:
    d1 = data(registry_root, src, 1, ["v1"])
    d2 = data(registry_root, src, 2)
    train(registry_root, src, {"training": "churn_data@v1"})

    def swap(record: dict[str, Any]) -> None:
        assert record["lineage"]["inputs"][0]["commit"] == d1
        record["lineage"]["inputs"][0]["commit"] = d2

    rewrite(registry_root, "model", 0, swap, rehash=False)
    with pytest.raises(CorruptObjectError, match="does not match its hash"):
        reopen(registry_root.dataset("model")).history()


@pytest.mark.storage_free
def test_a_link_to_a_damaged_commit_is_refused(registry_root: RegistryRoot,
                                               src: Source) -> None:
    data(registry_root, src, 1, ["v1"])
    rewrite(registry_root, "churn_data", 0, lambda r: r.update(message="forged"),
            rehash=False)
    with pytest.raises(CorruptObjectError, match="Lineage link training=churn_data@v1"):
        train(registry_root, src, {"training": "churn_data@v1"})
    assert registry_root.dataset("model").is_empty()


@pytest.mark.storage_free
def test_verify_reports_a_link_whose_commit_is_gone(registry_root: RegistryRoot,
                                                    src: Source) -> None:
    """The linked dataset deleted: verify names the commit and the link, never crashes; the
    lineage tree shows the link with the reason."""
    data(registry_root, src, 1, ["v1"])
    m1 = train(registry_root, src, {"training": "churn_data@v1"})
    registry_root.catalog().delete_dataset("churn_data")
    model = reopen(registry_root.dataset("model"))
    report = model.verify()
    assert [(p.kind, p.commits) for p in report.problems] == [("lineage", (m1,))]
    assert "training=churn_data@" in report.problems[0].message
    (_, node), (_, gone) = list(model.lineage().walk())
    assert node.hash == m1 and gone.commit is None and "does not exist" in str(gone.problem)


# -- downstream: used-by ----------------------------------------------------------------
@pytest.mark.storage_free
def test_used_by_follows_promotions_and_filters_by_stage(registry_root: RegistryRoot,
                                                         src: Source) -> None:
    """A model linked to the approved promotion of a data commit used that data; a
    promotion of the model keeps its links, and --stage production finds the holder."""
    d1 = data(registry_root, src, 1000)
    churn = registry_root.dataset("churn_data")
    approved = churn.promote(d1, ["approved"])
    m1 = train(registry_root, src, {"training": "churn_data@approved"}, tags=["staging"])
    model = registry_root.dataset("model")
    production = model.promote(m1, ["production"])
    other = train(registry_root, src, {"training": f"churn_data@{d1}"}, name="other")
    assert model.resolve(production).lineage == model.resolve(m1).lineage
    found = churn.used_by(d1)
    assert found.version == (d1, approved)
    assert [(u.dataset, u.commit.hash) for u in found.uses] == [
        ("model", m1), ("model", production), ("other", other)]
    in_production = registry_root.catalog().used_by(f"churn_data@{d1[:8]}",
                                                    stage="production")
    assert [(u.dataset, u.commit.hash, u.holds) for u in in_production.uses] == [
        ("model", production, ("production",))]
    assert "production" in "\n".join(in_production.lines())


@pytest.mark.storage_free
def test_used_by_of_an_unused_commit_is_empty(registry_root: RegistryRoot,
                                              src: Source) -> None:
    d1 = data(registry_root, src, 1)
    registry_root.dataset("empty-yet")  # opened, never committed: not a dataset
    assert registry_root.dataset("churn_data").used_by(d1).uses == ()


# -- the lineage index -------------------------------------------------------------------
@pytest.mark.storage_free
def test_used_by_reads_the_index_and_falls_back_to_the_records(
        registry_root: RegistryRoot, src: Source) -> None:
    """Past a block of 100 commits the index answers; without it, or with a damaged one,
    the records give the same answer, and verify reports the damaged index."""
    d1 = data(registry_root, src, 1, ["v1"])
    model = registry_root.dataset("model")
    linked = []
    for i in range(210):
        lineage = {"training": "churn_data@v1"} if i % 50 == 0 else None
        digest = model.commit(f"model {i}", add_files={"m.pt": src("m.pt", str(i))},
                              lineage=lineage)
        if lineage:
            linked.append(digest)
    index = registry_root.join("datasets", "model", "lineage")
    assert sorted(registry_root.objects(index)) == [f"{99:020d}.json", f"{199:020d}.json"]

    def users() -> list[str]:
        catalog = Catalog(registry_root.url, **registry_root.storage_options)
        return [u.commit.hash for u in catalog.used_by(f"churn_data@{d1}").uses]

    assert users() == linked
    first = registry_root.join("datasets", "model", "lineage", f"{99:020d}.json")
    body = json.loads(registry_root.cat(first))
    lines = body["links"].splitlines()
    assert [line.split("\t") for line in lines] == [
        [str(seq), linked[n], "training", "churn_data", d1] for n, seq in enumerate((0, 50))]
    body["links"] = lines[0] + "\n"  # a writer hides a model from used-by
    registry_root.pipe(first, (json.dumps(body) + "\n").encode())
    problems = reopen(model).verify().problems
    assert [p.kind for p in problems] == ["lineage-index"]
    second = reopen(model).history()[-2].hash  # commit #1 links nothing
    forged = f"1\t{second}\ttraining\tchurn_data\t{d1}"
    body["links"] = "\n".join([lines[0], forged, lines[1]]) + "\n"
    registry_root.pipe(first, (json.dumps(body) + "\n").encode())  # a forged use
    with pytest.raises(CorruptObjectError, match="index of dataset 'model' is damaged"):
        users()
    registry_root.pipe(first, b"not json")
    assert users() == linked  # unusable: the records are read instead
    registry_root.rm(first)
    assert users() == linked


@pytest.mark.storage_free
def test_indexes_of_a_deleted_dataset_are_not_read_for_a_new_one(registry_root: RegistryRoot,
                                                                 src: Source) -> None:
    """delete_dataset removes the indexes first; an index left behind anyway (an older
    Kirin, an interrupted delete) does not end in the new log, and is not used."""
    d1 = data(registry_root, src, 1, ["v1"])
    model = registry_root.dataset("model")
    for i in range(100):
        model.commit(f"m{i}", add_files={"m.pt": src("m.pt", str(i))},
                     lineage={"training": "churn_data@v1"} if i == 7 else None)
    index = registry_root.join("datasets", "model", "lineage", f"{99:020d}.json")
    stale = registry_root.cat(index)
    catalog = registry_root.catalog()
    catalog.delete_dataset("model")
    assert not registry_root.exists(index)
    for i in range(5):  # fewer than a block: nothing after the stale index's end either
        registry_root.dataset("model").commit(f"new {i}", add_files={"m.pt": src("m.pt", "x")})
    registry_root.pipe(index, stale)
    assert catalog.used_by(f"churn_data@{d1}").uses == ()


@pytest.mark.storage_free
def test_a_history_written_before_lineage_is_indexed_at_its_next_block_end(
        registry_root: RegistryRoot, src: Source) -> None:
    d1 = data(registry_root, src, 1, ["v1"])
    model = registry_root.dataset("model")
    for i in range(200):
        model.commit(f"m{i}", add_files={"m.pt": src("m.pt", str(i))},
                     lineage={"training": "churn_data@v1"} if i == 42 else None)
    folder = registry_root.join("datasets", "model", "lineage")
    for name in registry_root.objects(folder):  # as an older Kirin left it
        registry_root.rm(f"{folder}/{name}")
    catalog = registry_root.catalog()
    assert scan_dataset(catalog._store, "model") is None  # read from the records meanwhile
    assert [u.commit.seq for u in catalog.used_by(f"churn_data@{d1}").uses] == [42]
    for i in range(100):
        model.commit(f"n{i}", add_files={"m.pt": src("m.pt", f"n{i}")})
    assert sorted(registry_root.objects(folder)) == [f"{n:020d}.json" for n in (99, 199, 299)]
    assert scan_dataset(catalog._store, "model") is not None
    assert [u.commit.seq for u in catalog.used_by(f"churn_data@{d1}").uses] == [42]
    assert reopen(model).verify().ok


class TestLineageIndexOnStorage:
    def test_used_by_reads_indexes_and_the_log_after_them(self, registry_root: RegistryRoot,
                                                          src: Source) -> None:
        """A block's index, then the log entries after it, on the storage itself."""
        d1 = data(registry_root, src, 1, ["v1"])
        model = registry_root.dataset("model")
        linked = []
        for i in range(103):
            lineage = {"training": "churn_data@v1"} if i in (3, 101) else None
            digest = model.commit(f"m{i}", add_files={"m.pt": src("m.pt", str(i))},
                                  lineage=lineage)
            if lineage:
                linked.append(digest)
        assert list(registry_root.objects(registry_root.join("datasets", "model",
                                                             "lineage"))) == [f"{99:020d}.json"]
        catalog = registry_root.catalog()
        lines = scan_dataset(catalog._store, "model")  # the index path, not the fallback
        assert lines is not None and [int(x.split("\t")[0]) for x in lines] == [3, 101]
        used = catalog.used_by(f"churn_data@{d1}")
        assert [(u.commit.hash, u.commit.seq) for u in used.uses] == [
            (linked[0], 3), (linked[1], 101)]
        assert reopen(model).verify().ok


# -- the command line ----------------------------------------------------------------------
@pytest.mark.storage_free
def test_lineage_to_dict_is_plain_json(registry_root: RegistryRoot, src: Source) -> None:
    data(registry_root, src, 1, ["v1"])
    m1 = train(registry_root, src, {"training": "churn_data@v1"}, code="abc")
    tree = registry_root.dataset("model").lineage(m1)
    assert json.loads(json.dumps(tree.to_dict()))["inputs"][0]["role"] == "training"
    assert tree.lines()[0].startswith(f"model@{m1[:8]}")


def test_another_root_is_linked_by_url(tmp_path: Any, src: Source) -> None:
    """``ROOT#DATASET@REF`` names a dataset of another registry; the root is recorded as
    given, and a link to this root's own URL is recorded as a link within it."""
    shared = str(tmp_path / "shared")
    here = str(tmp_path / "here")
    raw = Dataset(shared, "raw").commit("raw", add_files=[src("raw.csv")])
    d1 = Dataset(shared, "churn_data").commit("shared data", add_files=[src("a.csv")],
                                             tags=["v1"], lineage={"source": f"raw@{raw}"})
    local = Dataset(here, "local").commit("local data", add_files=[src("b.csv")])
    model = Dataset(here, "model")
    digest = model.commit("trained", add_files=[src("m.pt")], lineage={
        "training": f"{shared}/#churn_data@v1", "extra": f"{here}#local@{local}"})
    lineage = model.resolve(digest).lineage
    assert lineage is not None and lineage.inputs == (
        Link("extra", "", "local", local), Link("training", shared, "churn_data", d1))
    used = Catalog(here).used_by(f"{shared}#churn_data@v1")
    assert [u.commit.hash for u in used.uses] == [digest]
    # the shared data's own link names a dataset of the shared root, and is followed there
    assert [(n.root, n.dataset, n.hash) for _, n in model.lineage().walk()] == [
        ("", "model", digest), ("", "local", local), (shared, "churn_data", d1),
        (shared, "raw", raw)]


# -- the stored form round-trips -----------------------------------------------------------
_ROLES = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True).filter(
    lambda n: n not in (".", ".."))
_HASHES = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
_ROOTS = st.one_of(st.just(""), st.from_regex(r"(s3|gs|az)://[a-z0-9/_.-]{0,19}[a-z0-9]",
                                              fullmatch=True))  # as given, less a final /
_PLAIN = st.one_of(st.none(), st.from_regex(r"[\x21-\x7e]{1,20}", fullmatch=True))


@given(st.lists(st.builds(Link, _ROLES, _ROOTS, _NAMES, _HASHES), max_size=8, unique=True),
       _PLAIN, _PLAIN)
@settings(max_examples=200, deadline=None)
def test_lineage_round_trips_through_its_stored_form(links: list[Link], code: str | None,
                                                     run: str | None) -> None:
    """Any links, in any order: stored canonically, accepted on read, read back equal."""
    from kirin.links import check_lineage_record

    lineage = Lineage(tuple(links), code, run)
    if not lineage:
        return
    record = json.loads(json.dumps(lineage.to_record()))

    def bad(reason: str) -> CorruptObjectError:
        raise AssertionError(reason)

    check_lineage_record(record, bad)
    assert Lineage.from_record(record) == lineage
    assert Lineage(tuple(reversed(links)), code, run).to_record() == lineage.to_record()
