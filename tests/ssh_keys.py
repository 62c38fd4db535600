"""Real SSH keys for the signing tests, made with the system's ``ssh-keygen``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


Change = Callable[[dict[str, Any]], None]


def signature_attacks(genuine: Mapping[str, str] | None, victim_key: str,
                      attacker: KeyFileSigner, dataset: str = "models"
                      ) -> tuple[Change, Change, Change]:
    """Three rewrites of a stored record by a writer with bucket access, as (replay, forge,
    strip): put ``genuine`` (a real signature of another record) on it; sign it with the
    attacker's key while naming ``victim_key``; drop its signature (the hash does not
    cover it)."""
    from kirin.records import signed_message
    from kirin.sshsig import PublicKey

    def replay(record: dict[str, Any]) -> None:
        record["signature"] = dict(genuine or {})

    def forge(record: dict[str, Any]) -> None:
        record["signature"] = {"key": PublicKey.parse(victim_key).openssh,
                               "sig": attacker.sign(signed_message(dataset, record["hash"]))
                               .armored()}

    def strip(record: dict[str, Any]) -> None:
        record.pop("signature")

    return replay, forge, strip
