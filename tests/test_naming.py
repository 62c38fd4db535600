"""Names are data, not paths: dataset and file name validation, safe local paths."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from kirin.errors import InvalidInputError, InvalidNameError
from kirin.naming import (
    MAX_COMPONENT_BYTES,
    MAX_NAME_LENGTH,
    safe_local_path,
    source_basename,
    validate_dataset_name,
    validate_file_name,
)

NFC_E = unicodedata.normalize("NFC", "\u00e9")  # é as one code point
NFD_E = unicodedata.normalize("NFD", "\u00e9")  # e + combining acute accent

VALID_FILE_NAMES = [
    "a.txt",
    "model.pt",
    "dir/sub/file",
    "sub/dir/x.bin",
    ".hidden",
    "a..b",
    "...",
    "with space.txt",
    "ünïcødé/模型.bin",
    "x" * MAX_COMPONENT_BYTES,
    "/".join(["y" * 200] * 5),  # 1004 characters, every part short enough
    "ab:c",
]

INVALID_FILE_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("/abs", id="absolute"),
    pytest.param("/", id="slash"),
    pytest.param("../x", id="dotdot-first"),
    pytest.param("a/../b", id="dotdot-middle"),
    pytest.param("a/..", id="dotdot-last"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("./a", id="dot-first"),
    pytest.param("a//b", id="empty-part"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("C:x", id="drive-relative"),
    pytest.param("c:/x", id="drive-absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\x", id="backslash-dotdot"),
    pytest.param("x\x00", id="nul"),
    pytest.param("x\x00/../../etc/passwd", id="nul-then-escape"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x1b[31m", id="escape"),
    pytest.param("a\x7f", id="del"),
    pytest.param("a\x85b", id="c1-next-line"),
    pytest.param("a\x9b31m", id="c1-csi"),
    pytest.param("x" * (MAX_COMPONENT_BYTES + 1), id="256-byte-part"),
    pytest.param(NFC_E * 128, id="256-utf8-bytes-in-128-chars"),
    pytest.param("/".join(["z" * 100] * 11), id="over-1024-chars"),
    pytest.param(None, id="none"),
    pytest.param(5, id="int"),
    pytest.param(b"a.txt", id="bytes"),
]


class TestValidateFileName:
    """validate_file_name: plain relative POSIX names, normalised to NFC."""

    @pytest.mark.parametrize("name", VALID_FILE_NAMES)
    def test_valid_names_are_returned_unchanged(self, name: str) -> None:
        """A valid name (already NFC) comes back as it was given."""
        assert validate_file_name(name) == name

    @pytest.mark.parametrize("name", INVALID_FILE_NAMES)
    def test_invalid_names_are_refused(self, name: object) -> None:
        """An unsafe or malformed name raises InvalidNameError, which is a ValueError."""
        with pytest.raises(InvalidNameError) as info:
            validate_file_name(name)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, InvalidInputError)
        assert info.value.kind == "file name"
        assert info.value.reason

    def test_error_quotes_the_name(self) -> None:
        """The error message quotes the rejected name so the user can find it."""
        with pytest.raises(InvalidNameError, match=r"'a/\.\./b'"):
            validate_file_name("a/../b")

    def test_limit_on_total_length_is_inclusive(self) -> None:
        """A name of exactly MAX_NAME_LENGTH characters is accepted, one more is not."""
        parts = ["p" * 200] * 5
        name = "/".join(parts)
        name += "/" + "q" * (MAX_NAME_LENGTH - len(name) - 1)
        assert len(name) == MAX_NAME_LENGTH
        assert validate_file_name(name) == name
        with pytest.raises(InvalidNameError, match="longer than"):
            validate_file_name(name + "q")

    def test_nfc_and_nfd_spellings_are_the_same_name(self) -> None:
        """The NFD spelling of a name normalises to the same NFC string as the NFC one."""
        nfd = f"caf{NFD_E}/r{NFD_E}sum{NFD_E}.txt"
        nfc = f"caf{NFC_E}/r{NFC_E}sum{NFC_E}.txt"
        assert nfd != nfc
        assert validate_file_name(nfd) == validate_file_name(nfc) == nfc

    def test_component_limit_counts_utf8_bytes_after_normalisation(self) -> None:
        """A part of 127 two-byte characters (254 bytes) passes even when given in NFD."""
        name = NFD_E * 127
        assert validate_file_name(name) == NFC_E * 127


VALID_DATASET_NAMES = ["a", "ds", "sentiment_classifier", "my-model.v1_2", "A" * 128, "0x"]

INVALID_DATASET_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("../x", id="dotdot-escape"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("a/b", id="slash"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("x\x00y", id="nul"),
    pytest.param("a b", id="space"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("-x", id="leading-dash"),
    pytest.param("A" * 129, id="129-chars"),
    pytest.param("x" * 10_000, id="very-long"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param(None, id="none"),
    pytest.param(7, id="int"),
]


class TestValidateDatasetName:
    """validate_dataset_name: one safe folder name."""

    @pytest.mark.parametrize("name", VALID_DATASET_NAMES)
    def test_valid_names_are_returned(self, name: str) -> None:
        """A valid dataset name is returned as given."""
        assert validate_dataset_name(name) == name

    @pytest.mark.parametrize("name", INVALID_DATASET_NAMES)
    def test_invalid_names_are_refused(self, name: object) -> None:
        """A bad dataset name raises InvalidNameError (a ValueError) of kind 'dataset name'."""
        with pytest.raises(InvalidNameError) as info:
            validate_dataset_name(name)
        assert isinstance(info.value, ValueError)
        assert info.value.kind == "dataset name"
        assert "dataset name" in str(info.value)


class TestSafeLocalPath:
    """safe_local_path: base/name, never outside base."""

    @pytest.mark.parametrize("name", ["a.txt", "sub/dir/x.bin", "..a/b..", f"{NFD_E}.txt"])
    def test_result_is_inside_base(self, tmp_path: Path, name: str) -> None:
        """A valid name maps to a path strictly inside the base folder."""
        target = safe_local_path(tmp_path, name)
        assert tmp_path.resolve() in target.parents
        assert target == tmp_path.resolve() / validate_file_name(name)

    @pytest.mark.parametrize("name", INVALID_FILE_NAMES)
    def test_invalid_names_never_produce_a_path(self, tmp_path: Path, name: object) -> None:
        """Every name that validate_file_name refuses is refused here too."""
        with pytest.raises(InvalidNameError):
            safe_local_path(tmp_path, name)  # type: ignore[arg-type]

    def test_symlinked_folder_pointing_outside_is_refused(self, tmp_path: Path) -> None:
        """A name that resolves through a symlink to outside the base is refused."""
        base = tmp_path / "base"
        outside = tmp_path / "outside"
        base.mkdir()
        outside.mkdir()
        os.symlink(outside, base / "link")
        with pytest.raises(InvalidNameError, match="outside"):
            safe_local_path(base, "link/evil.txt")

    def test_accepts_str_base(self, tmp_path: Path) -> None:
        """The base may be given as a string."""
        assert safe_local_path(str(tmp_path), "x/y") == tmp_path.resolve() / "x" / "y"


class TestSourceBasename:
    """source_basename: the name a source is stored under when none is given."""

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("model.pt", "model.pt"),
            ("/data/run1/model.pt", "model.pt"),
            ("./rel/config.json", "config.json"),
            ("s3://bucket/models/model.pt", "model.pt"),
            ("memory://x/y/weights.bin", "weights.bin"),
            ("gs://bucket/folder/", "folder"),
        ],
    )
    def test_base_name_of_paths_and_urls(self, source: str, expected: str) -> None:
        """Local paths and URLs are stored under their last path component."""
        assert source_basename(source) == expected
