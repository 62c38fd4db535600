"""Real SSH keys for the signing tests, made with the system's ``ssh-keygen``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kirin.sshsig import KeyFileSigner

#: name -> (a signer of its private key file, its public key line)
Keys = dict[str, tuple[KeyFileSigner, str]]


def keypair(folder: Path, name: str) -> tuple[KeyFileSigner, str]:
    """An unencrypted Ed25519 key ``folder/name`` (commented ``name``)."""
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                    str(path)], check=True)
    return KeyFileSigner(path), (folder / f"{name}.pub").read_text().strip()


def make_keys(tmp_path: Path, names: tuple[str, ...]) -> Keys:
    """One key per name, in ``tmp_path/keys`` (a test may name the files, as --key does)."""
    folder = tmp_path / "keys"
    folder.mkdir(exist_ok=True)
    return {name: keypair(folder, name) for name in names}
