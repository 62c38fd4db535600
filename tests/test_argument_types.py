"""Every wrong-typed argument of a public method raises a KirinError.

Ints, ``None``, bytes and arbitrary objects where strings, paths, iterables
or mappings are expected: each call must raise a :class:`~kirin.KirinError`
subclass (which also derives from the builtin Python would have raised), not
a bare ``TypeError``/``AttributeError``/``ValueError`` from deep inside.
The checks themselves live in :mod:`kirin.arguments` and :mod:`kirin.inputs`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog, Dataset, KirinError
from kirin.errors import InvalidArgumentTypeError, InvalidInputError, MissingExtraError

BAD = [123, object(), b"x", 1.5]
#: Where an int is a valid value (a limit), the int case tries a numeric string instead.
NOT_INT = {int: "3"}


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    (tmp_path / "a.txt").write_text("a")
    dataset = Dataset(tmp_path / "reg", "ds")
    dataset.commit("first", add_files=[str(tmp_path / "a.txt")], tags=["t"])
    return dataset


Case = Callable[[Dataset, Path, Any], Any]
CASES: list[Any] = [
    pytest.param(lambda ds, tmp, bad: ds.commit(bad, add_files=[str(tmp / "a.txt")]),
                 id="commit-message"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=bad), id="commit-add_files"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[bad]),
                 id="commit-add_files-entry"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files={bad: str(tmp / "a.txt")}),
                 id="commit-add_files-name"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files={"x": bad}),
                 id="commit-add_files-source"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", remove_files=bad), id="commit-remove"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", remove_files=[bad]),
                 id="commit-remove-entry"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                metadata=bad), id="commit-metadata"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                tags=bad), id="commit-tags"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                tags=[bad]), id="commit-tags-entry"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                author=bad), id="commit-author"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                lineage=bad), id="commit-lineage"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                lineage={bad: "ds@t"}), id="commit-lineage-role"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                lineage={"data": bad}),
                 id="commit-lineage-target"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                lineage={"data": [bad]}),
                 id="commit-lineage-target-entry"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                code=bad), id="commit-code"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                run=bad), id="commit-run"),
    pytest.param(lambda ds, tmp, bad: ds.validate("m", lineage=bad), id="validate-lineage"),
    pytest.param(lambda ds, tmp, bad: ds.lineage(bad), id="lineage"),
    pytest.param(lambda ds, tmp, bad: ds.used_by(bad), id="used_by"),
    pytest.param(lambda ds, tmp, bad: ds.used_by("t", stage=bad), id="used_by-stage"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").used_by(bad), id="Catalog.used_by"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").used_by("ds@t", stage=bad),
                 id="Catalog.used_by-stage"),
    pytest.param(lambda ds, tmp, bad: ds.validate("m", add_files=bad), id="validate"),
    pytest.param(lambda ds, tmp, bad: ds.checkout(bad), id="checkout"),
    pytest.param(lambda ds, tmp, bad: ds.get_commit(bad), id="get_commit"),
    pytest.param(lambda ds, tmp, bad: ds.compare_commits(bad, bad), id="compare_commits"),
    pytest.param(lambda ds, tmp, bad: ds.get_file(bad), id="get_file"),
    pytest.param(lambda ds, tmp, bad: ds.has_file(bad), id="has_file"),
    pytest.param(lambda ds, tmp, bad: ds.read_file(bad), id="read_file-name"),
    pytest.param(lambda ds, tmp, bad: ds.open_file(bad), id="open_file-name"),
    pytest.param(lambda ds, tmp, bad: ds.download_file(bad, tmp), id="download_file-name"),
    pytest.param(lambda ds, tmp, bad: ds.current_commit.get_file(bad),  # type: ignore[union-attr]
                 id="Commit.get_file"),
    pytest.param(lambda ds, tmp, bad: ds.current_commit.has_file(bad),  # type: ignore[union-attr]
                 id="Commit.has_file"),
    pytest.param(lambda ds, tmp, bad: Dataset(tmp / "reg", bad), id="Dataset-name"),
    pytest.param(lambda ds, tmp, bad: Catalog(bad), id="Catalog-root"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg", fs=bad), id="Catalog-fs"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").get_dataset(bad),
                 id="Catalog.get_dataset"),
    pytest.param(lambda ds, tmp, bad: Dataset(bad, "ds"), id="Dataset-root"),
    pytest.param(lambda ds, tmp, bad: Dataset(tmp / "reg", "ds", fs=bad), id="Dataset-fs"),
    pytest.param(lambda ds, tmp, bad: ds.download_file("a.txt", bad),
                 id="download_file-target"),
    pytest.param(lambda ds, tmp, bad: ds.history(limit=NOT_INT.get(type(bad), bad)),
                 id="history-limit"),
    pytest.param(lambda ds, tmp, bad: ds.find_commits(tags=bad), id="find_commits-tags"),
    pytest.param(lambda ds, tmp, bad: ds.find_commits(limit=NOT_INT.get(type(bad), bad)),
                 id="find_commits-limit"),
    pytest.param(lambda ds, tmp, bad: ds.find_commits(where=bad), id="find_commits-where"),
    pytest.param(lambda ds, tmp, bad: ds.find_commits(metadata_filter=bad),
                 id="find_commits-filter"),
    pytest.param(lambda ds, tmp, bad: ds.promote(ds.current_commit.hash,  # type: ignore[union-attr]
                                                 7 if bad == b"x" else bad),
                 id="promote-tags"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, author=bad), id="set_policy-author"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, message=bad),
                 id="set_policy-message"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, signers=bad), id="set_policy-signers"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, signers=[bad]),
                 id="set_policy-signers-entry"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, signatures=bad),
                 id="set_policy-signatures"),
    pytest.param(lambda ds, tmp, bad: ds.set_policy(None, signatures=[{"key": bad, "sig": "s"}]),
                 id="set_policy-signatures-entry"),
    pytest.param(lambda ds, tmp, bad: ds.sign_policy(None, bad), id="sign_policy-signer"),
    pytest.param(lambda ds, tmp, bad: ds.commit("m", add_files=[str(tmp / "a.txt")],
                                                signer=bad), id="commit-signer"),
    pytest.param(lambda ds, tmp, bad: ds.approve("t", "production", "ok", signer=bad),
                 id="approve-signer"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").set_policy(None, signers=bad),
                 id="Catalog.set_policy-signers"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").set_policy(
        None, signatures=[bad]), id="Catalog.set_policy-signatures"),
    pytest.param(lambda ds, tmp, bad: Catalog(tmp / "reg").sign_policy(None, bad),
                 id="Catalog.sign_policy"),
    pytest.param(lambda ds, tmp, bad: ds.verify(progress=bad), id="verify-progress"),
    pytest.param(lambda ds, tmp, bad: ds.current_commit.files["a.txt"].download_to(bad),  # type: ignore[union-attr]
                 id="File.download_to"),
    pytest.param(lambda ds, tmp, bad: ds.current_commit.files["a.txt"].read_text(bad),  # type: ignore[union-attr]
                 id="File.read_text"),
]


@pytest.mark.parametrize("bad", BAD, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("call", CASES)
def test_a_wrong_type_raises_a_kirin_error(ds: Dataset, tmp_path: Path, call: Case,
                                           bad: Any) -> None:
    try:
        call(ds, tmp_path, bad)
    except KirinError:
        return
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} outside the hierarchy: {exc}")
    # accepted: only acceptable where the value means something (there is none here)
    pytest.fail(f"{bad!r} was accepted")


def test_wrong_types_are_also_type_errors(ds: Dataset, tmp_path: Path) -> None:
    """Code written for Python's own ``TypeError`` keeps catching these."""
    with pytest.raises(TypeError):
        ds.commit("m", add_files=123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="tags must be a string or an iterable"):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")], tags=123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="author must be a string, not int"):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")], author=123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="remove_files"):
        ds.commit("m", remove_files=123)  # type: ignore[arg-type]


def test_an_unknown_protocol_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown protocol 'nope'"):
        Dataset("nope://x", "ds")
    with pytest.raises(InvalidInputError, match="unknown protocol 'nope'"):
        Catalog("nope://x")
    with pytest.raises(InvalidInputError, match="NUL"):
        Catalog(str(tmp_path) + "\x00x")


def test_a_missing_cloud_package_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec  # noqa: F401 - loads fsspec.registry, whose cache of classes is cleared

    known = sys.modules["fsspec.registry"]._registry
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(known, "s3", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'kirin\[s3\]'") as caught:
        Catalog("s3://bucket/registry")
    assert isinstance(caught.value, ImportError) and caught.value.extra == "s3"
