"""Catalog: the datasets under one root, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.errors import ConflictError, DatasetExistsError, InvalidNameError, KirinError

from conftest import write
from roots import RegistryRoot

BAD_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("../x", marks=pytest.mark.every_backend, id="dotdot-escape"),
    pytest.param("../../etc", id="deeper-escape"),
    pytest.param("a/b", id="slash"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("x\x00y", id="nul"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("/abs", id="absolute"),
    pytest.param("n" * 10_000, id="very-long"),
]


class TestListing:
    """datasets(), len(), `in` and iteration."""

    def test_empty_root(self, registry_root: RegistryRoot) -> None:
        """A root that does not exist yet has no datasets."""
        catalog = registry_root.catalog()
        assert catalog.datasets() == []
        assert len(catalog) == 0
        assert "ds" not in catalog
        assert list(catalog) == []

    def test_after_create_dataset(self, registry_root: RegistryRoot) -> None:
        """A created dataset is listed, counted and found with `in` right away."""
        catalog = registry_root.catalog()
        catalog.create_dataset("models")
        assert catalog.datasets() == ["models"]
        assert len(catalog) == 1
        assert "models" in catalog
        assert registry_root.catalog().datasets() == ["models"]

    def test_after_commit_via_get_dataset(self, registry_root: RegistryRoot,
                                          workdir: Path) -> None:
        """get_dataset of a new name lists nothing until its first commit, then lists it."""
        catalog = registry_root.catalog()
        ds = catalog.get_dataset("fresh")
        assert catalog.datasets() == []
        ds.commit("first", add_files=[write(workdir, "a.txt", "a")])
        assert catalog.datasets() == ["fresh"]
        assert "fresh" in catalog

    def test_several_sorted(self, registry_root: RegistryRoot, workdir: Path) -> None:
        """datasets() lists every dataset in name order, however it was made."""
        catalog = registry_root.catalog()
        for name in ("zeta", "alpha", "mid-1"):
            catalog.create_dataset(name)
        registry_root.dataset("beta").commit("b", add_files=[write(workdir, "b", "b")])
        assert catalog.datasets() == ["alpha", "beta", "mid-1", "zeta"]
        assert list(catalog) == catalog.datasets()
        assert len(catalog) == 4

    def test_ignores_folders_that_are_not_datasets(self, registry_root: RegistryRoot) -> None:
        """Stray folders under datasets/ (bad names, no dataset file or log) are not listed."""
        registry_root.pipe(registry_root.join("datasets", "bad name", "dataset.json"), b"{}")
        registry_root.pipe(registry_root.join("datasets", "empty", "notes.txt"), b"x")
        registry_root.pipe(registry_root.join("datasets", ".hidden", "dataset.json"), b"{}")
        registry_root.catalog().create_dataset("real")
        assert registry_root.catalog().datasets() == ["real"]

    @pytest.mark.parametrize("probe", [None, 3, b"ds", ("ds",)])
    @pytest.mark.storage_free
    def test_in_with_non_string(self, registry_root: RegistryRoot, probe: object) -> None:
        """`in` with something that is not a string is False, not an error."""
        catalog = registry_root.catalog()
        catalog.create_dataset("ds")
        assert probe not in catalog


class TestDatasets:
    """get_dataset and create_dataset."""

    def test_get_dataset(self, registry_root: RegistryRoot, workdir: Path) -> None:
        """get_dataset returns a Dataset on the same root that sees existing commits."""
        digest = registry_root.dataset("ds").commit("m", add_files=[write(workdir, "a", "a")])
        ds = registry_root.catalog().get_dataset("ds")
        assert isinstance(ds, Dataset)
        assert ds.name == "ds"
        assert ds.current_commit is not None
        assert ds.current_commit.hash == digest

    def test_create_dataset_with_description(self, registry_root: RegistryRoot) -> None:
        """create_dataset stores the description, readable by a fresh Dataset before any commit."""
        ds = registry_root.catalog().create_dataset("models", description="All our models")
        assert isinstance(ds, Dataset)
        assert ds.description == "All our models"
        assert ds.is_empty()
        fresh = registry_root.dataset("models")
        assert fresh.description == "All our models"
        assert fresh.is_empty()
        assert registry_root.catalog().get_dataset("models").description == "All our models"

    def test_created_dataset_takes_commits(self, registry_root: RegistryRoot,
                                           workdir: Path) -> None:
        """A created dataset can be committed to and keeps its description."""
        ds = registry_root.catalog().create_dataset("models", description="d")
        ds.commit("first", add_files=[write(workdir, "a", "a")])
        fresh = registry_root.dataset("models")
        assert fresh.description == "d"
        assert fresh.list_files() == ["a"]

    def test_create_twice(self, registry_root: RegistryRoot) -> None:
        """Creating a name that exists raises DatasetExistsError and keeps the first one."""
        registry_root.catalog().create_dataset("models", description="first")
        with pytest.raises(DatasetExistsError, match="models") as info:
            registry_root.catalog().create_dataset("models", description="second")
        assert isinstance(info.value, ConflictError)
        assert isinstance(info.value, KirinError)
        assert registry_root.dataset("models").description == "first"

    def test_create_over_committed_dataset(self, registry_root: RegistryRoot,
                                           workdir: Path) -> None:
        """Creating a name that already has commits raises DatasetExistsError."""
        registry_root.dataset("ds").commit("m", add_files=[write(workdir, "a", "a")])
        with pytest.raises(DatasetExistsError):
            registry_root.catalog().create_dataset("ds")
        assert len(registry_root.dataset("ds").history()) == 1

    @pytest.mark.parametrize("name", BAD_NAMES)
    @pytest.mark.parametrize("method", ["create_dataset", "get_dataset"])
    @pytest.mark.storage_free
    def test_bad_names_create_nothing(self, registry_root: RegistryRoot, name: str,
                                      method: str) -> None:
        """A bad name raises InvalidNameError (a ValueError) and nothing is written, neither
        under the root nor beside it."""
        registry_root.catalog().create_dataset("existing")
        before_parent = registry_root.objects(registry_root.parent, withdirs=True)
        with pytest.raises(InvalidNameError) as info:
            getattr(registry_root.catalog(), method)(name)
        assert isinstance(info.value, ValueError)
        assert registry_root.objects(registry_root.parent, withdirs=True) == before_parent
        assert registry_root.catalog().datasets() == ["existing"]


class TestConstruction:
    """Catalog(root_dir, fs=..., **storage_options)."""

    def test_forms_of_root(self, registry_root: RegistryRoot) -> None:
        """A catalog opened by URL and one opened by (path, fs object) see the same datasets."""
        Catalog(registry_root.url).create_dataset("ds")
        by_fs = Catalog(registry_root.path, fs=registry_root.fs)
        assert by_fs.fs is registry_root.fs
        assert by_fs.datasets() == ["ds"]

    def test_path_object_root(self, tmp_path: Path) -> None:
        """A local root may be a pathlib.Path."""
        Catalog(tmp_path / "reg").create_dataset("ds")
        assert Catalog(str(tmp_path / "reg")).datasets() == ["ds"]
        assert Catalog(tmp_path / "reg").root_dir == str(tmp_path / "reg")

    def test_repr(self, registry_root: RegistryRoot) -> None:
        """repr names the root."""
        assert repr(registry_root.catalog()) == f"Catalog(root_dir={registry_root.url!r})"
