"""kirin.sshsig against OpenSSH itself: real keys made here (by ``cryptography`` and by
``ssh-keygen``), signatures checked both ways with ``ssh-keygen -Y``, a real
``ssh-agent``, and the hostile cases a registry must refuse.

The SSHSIG framing is rebuilt in this file from PROTOCOL.sshsig rather than taken
from the module, so a mistake in the module's encoding cannot cancel itself out.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import struct
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from kirin.errors import InvalidArgumentTypeError, InvalidInputError
from kirin.sshsig import (
    AgentSigner,
    KeyFileSigner,
    PublicKey,
    Signature,
    SignatureError,
    Signer,
    SigningKeyError,
    signer_from_environment,
    verify,
)

DATA = hashlib.sha256(b"a commit record").digest()
#: (ssh-keygen -t, -b) for every key type Kirin supports.
KEY_TYPES = {"ed25519": ("ed25519", None), "ecdsa256": ("ecdsa", "256"),
             "ecdsa384": ("ecdsa", "384"), "ecdsa521": ("ecdsa", "521"),
             "rsa": ("rsa", "2048")}


# -- helpers ---------------------------------------------------------------------------
def keygen(folder: Path, kind: str, passphrase: str = "", name: str | None = None) -> Path:
    """A new private key file made by ssh-keygen (its public key beside it, ``.pub``)."""
    key_type, bits = KEY_TYPES[kind]
    path = folder / (name or f"id_{kind}")
    command = ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-C", "tester@example",
               "-f", str(path)]
    if bits:
        command += ["-b", bits]
    subprocess.run(command, check=True, capture_output=True)
    return path


def run(*command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), input=stdin, capture_output=True, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def ssh_verify(folder: Path, key: PublicKey, armored: str, data: bytes,
               namespace: str = "kirin") -> subprocess.CompletedProcess[str]:
    """``ssh-keygen -Y verify`` with an allowed_signers file naming ``key``."""
    allowed = folder / "allowed_signers"
    allowed.write_text(f"signer@example {key.openssh}\n")
    sig = folder / "data.sig"
    sig.write_text(armored)
    return run("ssh-keygen", "-Y", "verify", "-n", namespace, "-f", str(allowed),
               "-I", "signer@example", "-s", str(sig), stdin=data)


def ssh_sign(key_file: Path, data: bytes, namespace: str = "kirin") -> str:
    """``ssh-keygen -Y sign``: the armored signature of ``data``."""
    message = key_file.parent / "message"
    message.write_bytes(data)
    sig = Path(f"{message}.sig")
    sig.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key_file),
                    str(message)], check=True, capture_output=True)
    return sig.read_text()


def ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def ssh_mpint(value: int) -> bytes:
    return ssh_string(value.to_bytes((value.bit_length() + 8) // 8, "big"))


def dsa_blob() -> bytes:
    """A real DSA public key blob, framed here (cryptography deprecates writing SSH DSA)."""
    with warnings.catch_warnings():  # cryptography 51 deprecates DSA itself
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        numbers = dsa.generate_private_key(1024).public_key().public_numbers()
    params = numbers.parameter_numbers
    return (ssh_string(b"ssh-dss") + ssh_mpint(params.p) + ssh_mpint(params.q)
            + ssh_mpint(params.g) + ssh_mpint(numbers.y))


def signed_data(namespace: str, hash_name: str, data: bytes) -> bytes:
    """PROTOCOL.sshsig's "signed data", rebuilt independently of the module."""
    return (b"SSHSIG" + ssh_string(namespace.encode()) + ssh_string(b"")
            + ssh_string(hash_name.encode()) + ssh_string(hashlib.new(hash_name, data).digest()))


def cryptography_key_file(folder: Path, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey,
                          name: str) -> Path:
    path = folder / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def fingerprint_by_ssh_keygen(pub_file: Path) -> str:
    return run("ssh-keygen", "-lf", str(pub_file)).stdout.split()[1]


@pytest.fixture(params=sorted(KEY_TYPES))
def key_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return keygen(tmp_path, request.param)


# -- interoperability with ssh-keygen ----------------------------------------------------
def test_kirin_signs_and_ssh_keygen_verifies(key_file: Path, tmp_path: Path) -> None:
    signer = KeyFileSigner(key_file)
    signature = signer.sign(DATA)
    done = ssh_verify(tmp_path, signer.public_key, signature.armored(), DATA)
    assert done.returncode == 0, done.stderr
    assert 'Good "kirin" signature for signer@example' in done.stdout
    assert signer.public_key.fingerprint in done.stdout
    novalidate = run("ssh-keygen", "-Y", "check-novalidate", "-n", "kirin",
                     "-s", str(tmp_path / "data.sig"), stdin=DATA)
    assert novalidate.returncode == 0, novalidate.stderr
    # the same check fails on other data and in another namespace: it is not vacuous
    assert ssh_verify(tmp_path, signer.public_key, signature.armored(),
                      DATA + b"x").returncode != 0
    assert ssh_verify(tmp_path, signer.public_key, signature.armored(), DATA,
                      namespace="git").returncode != 0


def test_ssh_keygen_signs_and_kirin_verifies(key_file: Path) -> None:
    armored = ssh_sign(key_file, DATA)
    public = PublicKey.parse(Path(f"{key_file}.pub").read_text())
    assert verify(armored, DATA) == public
    parsed = Signature.parse(armored)
    assert parsed.armored() == armored  # byte-for-byte what ssh-keygen writes
    assert Signature.parse(parsed.to_bytes()) == parsed
    assert (parsed.namespace, parsed.hash_algorithm) == ("kirin", "sha512")
    with pytest.raises(SignatureError, match="does not match"):
        verify(armored, DATA[:-1] + bytes([DATA[-1] ^ 1]))


def test_rsa_signs_with_sha2_512(tmp_path: Path) -> None:
    signature = KeyFileSigner(keygen(tmp_path, "rsa")).sign(DATA)
    assert signature.signature_algorithm == "rsa-sha2-512"
    assert Signature.parse(ssh_sign(tmp_path / "id_rsa", DATA)).signature_algorithm \
        == "rsa-sha2-512"


def test_fingerprints_equal_ssh_keygen(key_file: Path) -> None:
    pub = Path(f"{key_file}.pub")
    key = PublicKey.parse(pub.read_text())
    assert key.fingerprint == fingerprint_by_ssh_keygen(pub)
    assert KeyFileSigner(key_file).public_key == key
    assert key.openssh == " ".join(pub.read_text().split()[:2])
    assert key.algorithm == pub.read_text().split()[0]


def test_keys_made_by_cryptography(tmp_path: Path) -> None:
    """Keys generated in Python (Ed25519 and RSA) sign what OpenSSH accepts."""
    for name, private in (("ed", ed25519.Ed25519PrivateKey.generate()),
                          ("rsa", rsa.generate_private_key(65537, 2048))):
        signer = KeyFileSigner(cryptography_key_file(tmp_path, private, name))
        pub = tmp_path / f"{name}.pub"
        pub.write_text(signer.public_key.openssh + " made-in-python\n")
        assert signer.public_key.fingerprint == fingerprint_by_ssh_keygen(pub)
        assert signer.public_key == PublicKey.from_cryptography(private.public_key())
        done = ssh_verify(tmp_path, signer.public_key, signer.sign(DATA).armored(), DATA)
        assert done.returncode == 0, done.stderr


def test_sha256_message_hash_is_accepted(tmp_path: Path) -> None:
    """PROTOCOL.sshsig allows sha256 as well as sha512; a signature using it verifies."""
    private = ed25519.Ed25519PrivateKey.generate()
    key = PublicKey.from_cryptography(private.public_key())
    raw = private.sign(signed_data("kirin", "sha256", DATA))
    signature = Signature(key, "kirin", "sha256", ssh_string(b"ssh-ed25519") + ssh_string(raw))
    assert verify(signature, DATA) == key
    path = tmp_path / "k.pub"
    path.write_text(key.openssh)
    assert ssh_verify(tmp_path, key, signature.armored(), DATA).returncode == 0


# -- hostile signatures --------------------------------------------------------------
@pytest.fixture
def ed_signer(tmp_path: Path) -> KeyFileSigner:
    return KeyFileSigner(keygen(tmp_path, "ed25519"))


def test_altered_data_and_other_data_are_refused(ed_signer: KeyFileSigner) -> None:
    signature = ed_signer.sign(DATA)
    assert verify(signature.armored(), DATA) == ed_signer.public_key
    with pytest.raises(SignatureError, match="does not match"):
        verify(signature, DATA + b"\0")
    other = ed_signer.sign(b"another record")
    with pytest.raises(SignatureError, match="does not match"):
        verify(other, DATA)


def test_other_namespace_is_refused(tmp_path: Path, ed_signer: KeyFileSigner) -> None:
    git = ssh_sign(tmp_path / "id_ed25519", DATA, namespace="git")
    with pytest.raises(SignatureError, match="namespace 'git', not 'kirin'"):
        verify(git, DATA)
    assert verify(git, DATA, namespace="git") == ed_signer.public_key
    # relabelling the namespace does not help: the namespace is inside what was signed
    relabelled = dataclasses.replace(Signature.parse(git), namespace="kirin")
    with pytest.raises(SignatureError, match="does not match"):
        verify(relabelled.armored(), DATA)
    with pytest.raises(SignatureError, match="namespace 'kirin', not 'git'"):
        verify(ed_signer.sign(DATA), DATA, namespace="git")


def test_signature_claiming_another_key_is_refused(tmp_path: Path,
                                                   ed_signer: KeyFileSigner) -> None:
    other = KeyFileSigner(keygen(tmp_path, "ed25519", name="other"))
    forged = dataclasses.replace(ed_signer.sign(DATA), public_key=other.public_key)
    claimed = re.escape(f"by {other.public_key.fingerprint} does not match")
    with pytest.raises(SignatureError, match=claimed):
        verify(forged.armored(), DATA)
    assert ssh_verify(tmp_path, other.public_key, forged.armored(), DATA).returncode != 0
    # a signature made by an ECDSA key, claimed by an Ed25519 key: algorithms differ
    ecdsa = KeyFileSigner(keygen(tmp_path, "ecdsa256")).sign(DATA)
    mixed = dataclasses.replace(ecdsa, public_key=ed_signer.public_key)
    with pytest.raises(SignatureError, match="cannot come from a 'ssh-ed25519' key"):
        verify(mixed, DATA)


@pytest.mark.parametrize("damage", ["truncated", "no footer", "bad base64", "flipped bit",
                                    "trailing bytes", "not sshsig", "version 2", "empty"])
def test_malformed_signatures_are_refused(ed_signer: KeyFileSigner, damage: str) -> None:
    armored = ed_signer.sign(DATA).armored()
    lines = armored.splitlines()
    blob = Signature.parse(armored).to_bytes()

    def armor(raw: bytes) -> str:
        return "\n".join([lines[0], base64.b64encode(raw).decode(), lines[-1]])

    bad = {
        "truncated": "\n".join(lines[:-2] + lines[-1:]),
        "no footer": "\n".join(lines[:-1]),
        "bad base64": armored.replace(lines[1], lines[1][:10] + "*" + lines[1][11:]),
        "flipped bit": armor(blob[:-5] + bytes([blob[-5] ^ 0x10]) + blob[-4:]),
        "trailing bytes": armor(blob + b"\0"),
        "not sshsig": armor(b"SSHSIH" + blob[6:]),
        "version 2": armor(blob[:6] + struct.pack(">I", 2) + blob[10:]),
        "empty": "",
    }[damage]
    with pytest.raises(SignatureError):
        verify(bad, DATA)


def test_legacy_ssh_rsa_sha1_signatures_are_refused(tmp_path: Path) -> None:
    private = rsa.generate_private_key(65537, 2048)
    key = PublicKey.from_cryptography(private.public_key())
    raw = private.sign(signed_data("kirin", "sha512", DATA), padding.PKCS1v15(), hashes.SHA1())
    legacy = Signature(key, "kirin", "sha512", ssh_string(b"ssh-rsa") + ssh_string(raw))
    with pytest.raises(SignatureError, match="legacy ssh-rsa"):
        verify(legacy.armored(), DATA)
    # the same key with rsa-sha2-512 verifies: only the SHA-1 signature was refused
    good = private.sign(signed_data("kirin", "sha512", DATA), padding.PKCS1v15(),
                        hashes.SHA512())
    assert verify(Signature(key, "kirin", "sha512",
                            ssh_string(b"rsa-sha2-512") + ssh_string(good)), DATA) == key


def test_unsupported_message_hash_is_refused(ed_signer: KeyFileSigner) -> None:
    signature = dataclasses.replace(ed_signer.sign(DATA), hash_algorithm="sha1")
    with pytest.raises(SignatureError, match="unsupported signature hash 'sha1'"):
        Signature.parse(signature.to_bytes())
    with pytest.raises(SignatureError, match="unsupported signature hash"):
        verify(signature, DATA)


# -- public key text -----------------------------------------------------------------
def test_public_key_line_with_or_without_comment(tmp_path: Path) -> None:
    line = Path(f"{keygen(tmp_path, 'ed25519')}.pub").read_text()
    key = PublicKey.parse(line)
    assert key == PublicKey.parse(" ".join(line.split()[:2]))
    assert key == PublicKey.parse(" ".join(line.split()[:2]) + " another comment with spaces")
    assert str(key) == key.openssh and "SHA256:" in repr(key)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.blob = b""  # type: ignore[misc]


def test_hostile_public_keys_are_refused(tmp_path: Path) -> None:
    ed = PublicKey.parse(Path(f"{keygen(tmp_path, 'ed25519')}.pub").read_text())
    dsa_line = "ssh-dss " + base64.b64encode(dsa_blob()).decode()
    short_rsa = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    subprocess.run(["ssh-keygen", "-q", "-s", str(tmp_path / "id_ed25519"), "-I", "cert",
                    "-n", "tester", str(tmp_path / "id_ed25519.pub")], check=True,
                   capture_output=True)
    certificate = (tmp_path / "id_ed25519-cert.pub").read_text()
    blob64 = ed.openssh.split()[1]
    cases = {
        f'from="10.0.0.1" {ed.openssh}': "options",
        f"no-pty,command=\"x\" {ed.openssh}": "options",
        dsa_line: "DSA keys are refused",
        short_rsa: "RSA keys of 1024 bits are refused",
        certificate: "certificates are not accepted",
        f"ssh-ed25519 {blob64[:-4]}@@@@": "invalid base64",
        f"ssh-ed25519 {blob64[:20]}": "malformed ssh-ed25519",
        "ssh-ed25519 " + base64.b64encode(ed.blob + b"\0").decode(): "1 trailing bytes",
        f"ssh-rsa {blob64}": "says 'ssh-rsa' but its data is a 'ssh-ed25519' key",
        f"{ed.openssh}\n{ed.openssh}": "got 2 lines",
        "ssh-ed25519": "TYPE BASE64",
        "": "got 0 lines",
        "ssh-foo AAAA": "unsupported key type 'ssh-foo'",
    }
    for text, reason in cases.items():
        with pytest.raises(SigningKeyError, match=reason):
            PublicKey.parse(text)
    assert issubclass(SigningKeyError, InvalidInputError)
    assert issubclass(SignatureError, InvalidInputError)


#: Encodings of Ed25519 points of small order (the identity, and points of order 2, 4
#: and 8), which cryptography (OpenSSL) loads as public keys.
SMALL_ORDER = {
    "identity": bytes([1]) + bytes(31),
    "order 4 (y = 0)": bytes(32),
    "order 2 (y = -1)": bytes([0xEC]) + b"\xff" * 30 + bytes([0x7F]),
    "order 8": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
}


@pytest.mark.parametrize("point", sorted(SMALL_ORDER))
def test_a_small_order_key_and_its_signature_for_every_message_are_refused(
        point: str) -> None:
    """With the identity as its key, R the identity and S = 0 is "a valid signature" of
    every message for a verifier that does not check the point (OpenSSL through
    cryptography accepts it, checked here). Kirin refuses the key itself, and the
    signature whatever key blob it claims."""
    raw_key = SMALL_ORDER[point]
    blob = ssh_string(b"ssh-ed25519") + ssh_string(raw_key)
    with pytest.raises(SigningKeyError, match="not a point of the Ed25519 group"):
        PublicKey.parse("ssh-ed25519 " + base64.b64encode(blob).decode())
    forged = SMALL_ORDER["identity"] + bytes(32)
    if point == "identity":  # the hole this closes: OpenSSL takes it for any message
        ed25519.Ed25519PublicKey.from_public_bytes(raw_key).verify(forged, b"any message")
    sshsig = (b"SSHSIG" + struct.pack(">I", 1) + ssh_string(blob) + ssh_string(b"kirin")
              + ssh_string(b"") + ssh_string(b"sha512")
              + ssh_string(ssh_string(b"ssh-ed25519") + ssh_string(forged)))
    armored = ("-----BEGIN SSH SIGNATURE-----\n" + base64.b64encode(sshsig).decode()
               + "\n-----END SSH SIGNATURE-----\n")
    with pytest.raises((SignatureError, SigningKeyError), match="Ed25519 group"):
        verify(armored, DATA)


def test_an_ed25519_signature_of_the_wrong_length_is_refused(
        ed_signer: KeyFileSigner) -> None:
    """Bytes past the 64 of a signature are not read as part of the message."""
    good = ed_signer.sign(DATA)
    inner = ssh_string(b"ssh-ed25519") + ssh_string(
        Signature.parse(good.armored()).signature[19:] + b"\0")
    for raw in (inner, ssh_string(b"ssh-ed25519") + ssh_string(bytes(63))):
        bad = dataclasses.replace(good, signature=raw)
        with pytest.raises(SignatureError):
            verify(bad, DATA)


def test_signature_by_a_dsa_key_is_refused(ed_signer: KeyFileSigner) -> None:
    blob = ed_signer.sign(DATA).to_bytes()
    key_len = struct.unpack(">I", blob[10:14])[0]
    swapped = blob[:10] + ssh_string(dsa_blob()) + blob[14 + key_len:]
    with pytest.raises(SignatureError, match="DSA keys are refused"):
        verify(swapped, DATA)


# -- key files and secrets -----------------------------------------------------------
def test_encrypted_key_file_needs_its_passphrase(tmp_path: Path) -> None:
    path = keygen(tmp_path, "ed25519", passphrase="s3cret-phrase")
    with pytest.raises(SigningKeyError, match="is encrypted: give its passphrase") as missing:
        KeyFileSigner(path)
    with pytest.raises(SigningKeyError, match="wrong passphrase") as wrong:
        KeyFileSigner(path, passphrase="not-the-phrase")
    signer = KeyFileSigner(path, passphrase="s3cret-phrase")
    assert verify(signer.sign(DATA), DATA) == signer.public_key
    secret_material = private_key_secrets(path)
    for text in (str(missing.value), repr(missing.value), str(wrong.value), repr(wrong.value),
                 repr(signer), str(signer)):
        assert "s3cret-phrase" not in text and "not-the-phrase" not in text
        assert not any(s in text for s in secret_material)
    # nothing the signer holds as an attribute is the passphrase
    assert all("s3cret" not in repr(getattr(signer, name)) for name in signer.__slots__)


def private_key_secrets(path: Path) -> list[str]:
    """Fragments of the private key file that must appear nowhere (its base64 lines)."""
    return [line for line in path.read_text().splitlines()
            if line and not line.startswith("-----")]


def test_signer_reprs_hold_no_key_material(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    path = cryptography_key_file(tmp_path, private, "k")
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    signer = KeyFileSigner(path)
    text = repr(signer) + str(signer)
    for form in (raw.hex(), base64.b64encode(raw).decode(), *private_key_secrets(path)):
        assert form not in text
    assert signer.public_key.fingerprint in text


def test_unusable_key_files(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read signing key"):
        KeyFileSigner(tmp_path / "missing")
    junk = tmp_path / "junk"
    junk.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                    "-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError, match="not an OpenSSH or PEM private key file"):
        KeyFileSigner(junk)
    # a passphrase for a key that has none is accepted, as ssh-keygen does
    plain = keygen(tmp_path, "ed25519")
    assert KeyFileSigner(plain, passphrase="unneeded").public_key == KeyFileSigner(
        plain).public_key


def test_signers_follow_the_protocol(ed_signer: KeyFileSigner) -> None:
    assert isinstance(ed_signer, Signer)
    with pytest.raises(InvalidInputError, match="namespace"):
        ed_signer.sign(DATA, namespace="")


def test_wrong_argument_types_are_refused(ed_signer: KeyFileSigner) -> None:
    signature = ed_signer.sign(DATA)
    with pytest.raises(InvalidArgumentTypeError, match="signed data is bytes, not str"):
        verify(signature, DATA.hex())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="signed data is bytes"):
        ed_signer.sign("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="not NoneType"):
        Signature.parse(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="not str"):
        PublicKey("ssh-ed25519 AAAA")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="line is text, not bytes"):
        PublicKey.parse(ed_signer.public_key.openssh.encode())  # type: ignore[arg-type]
    # bytearray and memoryview are read as bytes; the key keeps an immutable copy
    mutable = bytearray(ed_signer.public_key.blob)
    key = PublicKey(mutable)  # type: ignore[arg-type]
    mutable[-1] ^= 1
    assert key == ed_signer.public_key and isinstance(key.blob, bytes)
    assert verify(bytearray(signature.to_bytes()), memoryview(DATA)) == key


# -- the ssh-agent ---------------------------------------------------------------------
@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent on a socket of its own, stopped after the test."""
    sock = Path(f"/tmp/kirin-agent-{os.getpid()}-{time.monotonic_ns()}.sock")
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert process.poll() is None, "ssh-agent exited"
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.01)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        process.terminate()
        process.wait(timeout=10)
        sock.unlink(missing_ok=True)


def ssh_add(sock: Path, key_file: Path) -> None:
    subprocess.run(["ssh-add", "-q", str(key_file)], check=True, capture_output=True,
                   env={**os.environ, "SSH_AUTH_SOCK": str(sock)})


def test_agent_signs_what_ssh_keygen_verifies(agent: Path, key_file: Path,
                                              tmp_path: Path) -> None:
    ssh_add(agent, key_file)
    signer = AgentSigner()
    assert signer.public_key == PublicKey.parse(Path(f"{key_file}.pub").read_text())
    signature = signer.sign(DATA)
    assert verify(signature, DATA) == signer.public_key
    if signer.public_key.algorithm == "ssh-rsa":
        assert signature.signature_algorithm == "rsa-sha2-512"
    done = ssh_verify(tmp_path, signer.public_key, signature.armored(), DATA)
    assert done.returncode == 0, done.stderr


def test_agent_key_is_chosen_by_fingerprint(agent: Path, tmp_path: Path) -> None:
    first = keygen(tmp_path, "ed25519", name="first")
    second = keygen(tmp_path, "ecdsa256", name="second")
    ssh_add(agent, first)
    ssh_add(agent, second)
    wanted = KeyFileSigner(second).public_key
    assert AgentSigner().public_key == KeyFileSigner(first).public_key  # the first one
    by_print = AgentSigner(wanted.fingerprint)
    assert by_print.public_key == wanted == AgentSigner(wanted).public_key
    assert AgentSigner(Path(f"{second}.pub").read_text()).public_key == wanted
    assert verify(by_print.sign(DATA), DATA) == wanted
    stranger = KeyFileSigner(keygen(tmp_path, "ed25519", name="stranger")).public_key
    with pytest.raises(SigningKeyError, match=re.escape(f"not the key {stranger.fingerprint}")):
        AgentSigner(stranger)


def test_agent_problems_are_clear(agent: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SigningKeyError, match="holds 0 usable key"):
        AgentSigner()
    key = keygen(tmp_path, "ed25519")
    ssh_add(agent, key)
    signer = AgentSigner()
    subprocess.run(["ssh-add", "-D"], check=True, capture_output=True)
    with pytest.raises(SigningKeyError, match="refused to sign"):
        signer.sign(DATA)
    with pytest.raises(SigningKeyError, match="cannot talk to the ssh-agent"):
        AgentSigner(socket_path=tmp_path / "no-such-socket")
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(SigningKeyError, match="SSH_AUTH_SOCK is not set"):
        AgentSigner()


# -- the configured signer -----------------------------------------------------------------
def test_signer_from_environment(agent: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIRIN_SIGNING_KEY", raising=False)
    monkeypatch.delenv("KIRIN_SIGNING_KEY_PASSPHRASE", raising=False)
    assert signer_from_environment() is None  # an agent without keys is not a signer
    in_agent = keygen(tmp_path, "ed25519", name="in_agent")
    ssh_add(agent, in_agent)
    assert isinstance(signer_from_environment(), AgentSigner)

    env_key = keygen(tmp_path, "ecdsa256", name="env_key", passphrase="pw")
    monkeypatch.setenv("KIRIN_SIGNING_KEY", str(env_key))
    with pytest.raises(SigningKeyError, match="encrypted"):
        signer_from_environment()
    monkeypatch.setenv("KIRIN_SIGNING_KEY_PASSPHRASE", "pw")
    from_env = signer_from_environment()
    assert isinstance(from_env, KeyFileSigner)
    assert from_env.public_key == PublicKey.parse(Path(f"{env_key}.pub").read_text())

    option = keygen(tmp_path, "ed25519", name="option")
    chosen = signer_from_environment(option)  # --key wins over the environment
    assert isinstance(chosen, KeyFileSigner) and chosen.path == option

    # a .pub file names the key to use through the agent
    via_agent = signer_from_environment(f"{in_agent}.pub")
    assert isinstance(via_agent, AgentSigner)
    assert via_agent.public_key == PublicKey.parse(Path(f"{in_agent}.pub").read_text())
    with pytest.raises(SigningKeyError, match="not the key"):
        signer_from_environment(f"{option}.pub")  # not in the agent
    with pytest.raises(SigningKeyError, match="cannot read"):
        signer_from_environment(tmp_path / "missing")

    monkeypatch.delenv("KIRIN_SIGNING_KEY")
    monkeypatch.delenv("SSH_AUTH_SOCK")
    assert signer_from_environment() is None


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa256", "rsa"])
def test_every_truncation_and_byte_flip_is_refused(tmp_path: Path, kind: str) -> None:
    """Exhaustively: cutting a valid signature short anywhere, or changing any one of
    its bytes, gives a SignatureError (never a crash, never a pass)."""
    signature = KeyFileSigner(keygen(tmp_path, kind)).sign(DATA)
    blob = signature.to_bytes()
    assert verify(blob, DATA) == signature.public_key
    for size in range(len(blob)):
        with pytest.raises(SignatureError):
            verify(blob[:size], DATA)
    for position in range(len(blob)):
        changed = blob[:position] + bytes([blob[position] ^ 0x41]) + blob[position + 1:]
        with pytest.raises(SignatureError):
            verify(changed, DATA)
