"""SSH-key identities and SSHSIG signatures (OpenSSH's ``PROTOCOL.sshsig``).

Kirin's signers are the SSH keys engineers already have, and its signatures are
the ones ``ssh-keygen -Y sign -n kirin`` makes, so a record signed by Kirin can be
checked with ``ssh-keygen -Y verify`` and the reverse, with no Kirin in between:
an auditor needs only OpenSSH to check a registry.

``cryptography`` does the mathematics and loads private key files (libsodium, through
PyNaCl, checks Ed25519 signatures: see :func:`_verify_ed25519`); the SSH wire
framing (uint32 lengths, strings, mpints) is small, so it is written here, and
strict: a public key or a signature with trailing bytes, a key type that does not
match its blob, or an algorithm OpenSSH itself deprecated (DSA, SHA-1 ``ssh-rsa``
signatures, RSA under 2048 bits) is refused with an error that says what was
wrong. Certificates and security keys (``sk-*``) are refused too: they are not
identities a policy can name by one key.

Private key material is never stored by Kirin, never logged and never put into a
``repr`` or an error message: a :class:`KeyFileSigner` keeps the loaded key in
memory for as long as it lives (loading an encrypted key costs a key derivation,
far too slow to repeat per signature) and forgets the passphrase at once.

Typical use (the policy decides whether the returned key may act)::

    signer = signer_from_environment(key_option)      # --key, $KIRIN_SIGNING_KEY, agent
    text = signer.sign(record_hash).armored()          # stored beside the record
    who = verify(text, record_hash)                    # PublicKey, or SignatureError
    allowed = who.fingerprint in policy_fingerprints

This module imports ``cryptography`` at import time, so ``kirin/__init__.py``
must not import it: ``import kirin`` stays light.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .errors import (
    InvalidArgumentTypeError,
    InvalidInputError,
    SignatureError,
    SigningKeyError,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "AgentSigner",
    "Bytes",
    "KeyFileSigner",
    "PublicKey",
    "Signature",
    "SignatureError",
    "Signer",
    "SigningKeyError",
    "signer_from_environment",
    "verify",
]

#: The SSHSIG namespace of every Kirin signature: a signature made for git
#: (namespace ``git``) or for a file (``file``) can never pass for a Kirin one.
DEFAULT_NAMESPACE = "kirin"
#: Environment variable naming the signing key file (or a ``.pub`` file: then the
#: matching key is used through the ssh-agent, as git's ``user.signingKey`` does).
KEY_VARIABLE = "KIRIN_SIGNING_KEY"
#: Environment variable holding the passphrase of an encrypted ``KIRIN_SIGNING_KEY``
#: (for CI, where no one can type it).
PASSPHRASE_VARIABLE = "KIRIN_SIGNING_KEY_PASSPHRASE"

#: What may be signed or verified: any bytes-like value, read as bytes.
Bytes = bytes | bytearray | memoryview

_MAGIC = b"SSHSIG"
_VERSION = 1
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
_CURVES: dict[str, tuple[str, ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "ecdsa-sha2-nistp256": ("nistp256", ec.SECP256R1(), hashes.SHA256()),
    "ecdsa-sha2-nistp384": ("nistp384", ec.SECP384R1(), hashes.SHA384()),
    "ecdsa-sha2-nistp521": ("nistp521", ec.SECP521R1(), hashes.SHA512()),
}
_RSA_SIGNATURES: dict[str, hashes.HashAlgorithm] = {
    "rsa-sha2-512": hashes.SHA512(), "rsa-sha2-256": hashes.SHA256()}
_MIN_RSA_BITS = 2048
_ALGORITHMS = ("ssh-ed25519", *_CURVES, "ssh-rsa")


# -- SSH wire format ---------------------------------------------------------------
def _uint32(value: int) -> bytes:
    return struct.pack(">I", value)


def _string(value: bytes) -> bytes:
    return _uint32(len(value)) + value


def _mpint(value: int) -> bytes:
    """A non-negative integer as an SSH mpint: big-endian, minimal, 0-led if the top bit is set."""
    return _string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


class _Reader:
    """Reads SSH wire values from a buffer; every short read is a ``ValueError``."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise ValueError("truncated")
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        return self.string().decode("ascii")

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise ValueError("negative integer")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self._pos != len(self._data):
            raise ValueError(f"{len(self._data) - self._pos} trailing bytes")


# -- public keys ---------------------------------------------------------------------
_VerifyKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@functools.lru_cache(maxsize=4096)
def _load_public_blob(blob: bytes) -> tuple[str, _VerifyKey]:
    """The algorithm and loaded key of an SSH public key blob, checked strictly.

    Cached by blob: a history of thousands of records signed by a handful of keys
    loads (and range-checks) each key once. Raises ``SigningKeyError``.
    """
    try:
        reader = _Reader(blob)
        algorithm = reader.text()
    except (ValueError, UnicodeDecodeError):
        raise SigningKeyError("malformed public key: the key type cannot be read") from None
    _refuse_unsupported(algorithm)
    key: _VerifyKey
    try:
        if algorithm == "ssh-ed25519":
            raw = reader.string()
            if len(raw) != 32:
                raise ValueError(f"an Ed25519 key is 32 bytes, not {len(raw)}")
            if not _sodium().crypto_core_ed25519_is_valid_point(raw):
                # e.g. the identity point: with R the identity and S = 0, OpenSSL
                # accepts one fixed signature for *every* message under such a key
                raise ValueError("it is not a point of the Ed25519 group (a small-order "
                                 "or malformed point, which any signature could match)")
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        elif algorithm in _CURVES:
            curve_name, curve, _ = _CURVES[algorithm]
            if reader.text() != curve_name:
                raise ValueError(f"the curve does not match {algorithm}")
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, reader.string())
        else:
            exponent, modulus = reader.mpint(), reader.mpint()
            if modulus.bit_length() < _MIN_RSA_BITS:
                raise SigningKeyError(
                    f"RSA keys of {modulus.bit_length()} bits are refused: at least "
                    f"{_MIN_RSA_BITS} bits (or use Ed25519)")
            key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
        reader.end()
    except SigningKeyError:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise SigningKeyError(f"malformed {algorithm} public key: {error}") from None
    return algorithm, key


def _refuse_unsupported(algorithm: str) -> None:
    if algorithm in _ALGORITHMS:
        return
    if algorithm.endswith("-cert-v01@openssh.com"):
        reason = "certificates are not accepted: give the plain public key"
    elif algorithm == "ssh-dss":
        reason = "DSA keys are refused (deprecated by OpenSSH): use Ed25519"
    elif algorithm.startswith("sk-"):
        reason = "security-key (FIDO) keys are not supported yet"
    else:
        reason = f"supported: {', '.join(_ALGORITHMS)}"
    raise SigningKeyError(f"unsupported key type {algorithm!r}: {reason}")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An SSH public key: the identity a signature names and a policy lists.

    Two keys are equal when their wire blobs are; the comment of a ``.pub`` line is
    not part of the identity. Constructing one validates the blob.
    """

    blob: bytes
    algorithm: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.blob, Bytes):
            raise InvalidArgumentTypeError(
                f"a public key blob is bytes, not {type(self.blob).__name__}")
        object.__setattr__(self, "blob", bytes(self.blob))  # immutable, hashable
        algorithm, _ = _load_public_blob(self.blob)
        object.__setattr__(self, "algorithm", algorithm)

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Read one ``authorized_keys`` / ``.pub`` line: ``TYPE BASE64 [COMMENT]``.

        Refuses an options prefix (``from="..." ssh-ed25519 ...``), several keys,
        malformed base64, a blob whose type differs from the stated one, and every
        key type :func:`_refuse_unsupported` refuses.
        """
        if not isinstance(text, str):
            raise InvalidArgumentTypeError(
                f"a public key line is text, not {type(text).__name__}")
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if len(lines) != 1:
            raise SigningKeyError(
                f"expected one public key line ('ssh-ed25519 AAAA... comment'), got "
                f"{len(lines)} lines")
        parts = lines[0].split(None, 2)
        if len(parts) < 2:
            raise SigningKeyError(
                "expected a public key line 'TYPE BASE64 [COMMENT]', e.g. the contents of "
                "~/.ssh/id_ed25519.pub")
        stated, encoded = parts[0], parts[1]
        if stated not in _ALGORITHMS and ("=" in stated or "," in stated or
                                         any(p in _ALGORITHMS for p in parts[1:2])):
            raise SigningKeyError(
                "authorized_keys options before the key are not accepted: give the bare "
                "'TYPE BASE64' line")
        _refuse_unsupported(stated)
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SigningKeyError(f"malformed {stated} public key: invalid base64") from None
        key = cls(blob)
        if key.algorithm != stated:
            raise SigningKeyError(
                f"the key line says {stated!r} but its data is a {key.algorithm!r} key")
        return key

    @classmethod
    def from_cryptography(cls, key: _VerifyKey) -> PublicKey:
        """The identity of a public key loaded by ``cryptography``."""
        return cls.parse(key.public_bytes(serialization.Encoding.OpenSSH,
                                          serialization.PublicFormat.OpenSSH).decode())

    @property
    def fingerprint(self) -> str:
        """OpenSSH's fingerprint, as ``ssh-keygen -lf`` prints it (``SHA256:...``)."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    @property
    def openssh(self) -> str:
        """The ``TYPE BASE64`` line, without comment (what ``allowed_signers`` holds)."""
        return f"{self.algorithm} {base64.b64encode(self.blob).decode()}"

    def __repr__(self) -> str:
        return f"PublicKey({self.algorithm} {self.fingerprint})"

    def __str__(self) -> str:
        return self.openssh


@functools.lru_cache(maxsize=4096)
def _public_key(blob: bytes) -> PublicKey:
    """One ``PublicKey`` per blob: parsing thousands of signatures by a few keys
    builds each key once."""
    return PublicKey(blob)


# -- signatures ----------------------------------------------------------------------
def _signed_data(namespace: str, hash_algorithm: str, data: Bytes, reserved: bytes = b""
                 ) -> bytes:
    """What the key actually signs (PROTOCOL.sshsig): the magic, the namespace and a
    hash of the message, so a signature is bound to its namespace."""
    return (_MAGIC + _string(namespace.encode()) + _string(reserved)
            + _string(hash_algorithm.encode()) + _string(_HASHES[hash_algorithm](data).digest()))


def _check_data(data: Bytes) -> None:
    if not isinstance(data, Bytes):
        raise InvalidArgumentTypeError(f"signed data is bytes, not {type(data).__name__}")


def _check_namespace(namespace: str) -> None:
    if not namespace or not namespace.isascii() or not namespace.isprintable():
        raise InvalidInputError(f"invalid signature namespace {namespace!r}")


@dataclass(frozen=True, slots=True)
class Signature:
    """One SSHSIG signature: who signed (``public_key``), for what ``namespace``,
    with which message hash; ``signature`` is the SSH signature blob
    (``string algorithm, string bytes``). It proves nothing until :func:`verify`."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature: bytes
    reserved: bytes = b""

    @property
    def signature_algorithm(self) -> str:
        """``ssh-ed25519``, ``ecdsa-sha2-nistp256``, ``rsa-sha2-512``..."""
        try:
            return _Reader(self.signature).text()
        except (ValueError, UnicodeDecodeError):
            return "?"

    def to_bytes(self) -> bytes:
        """The binary SSHSIG blob (what the armor encodes)."""
        return (_MAGIC + _uint32(_VERSION) + _string(self.public_key.blob)
                + _string(self.namespace.encode()) + _string(self.reserved)
                + _string(self.hash_algorithm.encode()) + _string(self.signature))

    def armored(self) -> str:
        """The ``-----BEGIN SSH SIGNATURE-----`` text, exactly as ``ssh-keygen`` writes it."""
        encoded = base64.b64encode(self.to_bytes()).decode()
        lines = [encoded[i:i + 70] for i in range(0, len(encoded), 70)]
        return "\n".join([_BEGIN, *lines, _END]) + "\n"

    @classmethod
    def parse(cls, value: str | Bytes) -> Signature:
        """Read an armored signature (``str`` or ``bytes``) or a binary SSHSIG blob."""
        if not isinstance(value, str | Bytes):
            raise InvalidArgumentTypeError(
                f"a signature is armored text or bytes, not {type(value).__name__}")
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if isinstance(value, str) or value.lstrip().startswith(b"-----BEGIN"):
            text = (value if isinstance(value, str) else value.decode("ascii", "replace")
                    ).strip()
            if not (text.startswith(_BEGIN) and text.endswith(_END)) or len(text) < len(
                    _BEGIN) + len(_END):
                raise SignatureError(
                    f"malformed signature: expected the text between {_BEGIN} and {_END}")
            try:
                blob = base64.b64decode("".join(text[len(_BEGIN):-len(_END)].split()),
                                        validate=True)
            except (binascii.Error, ValueError):
                raise SignatureError("malformed signature: invalid base64") from None
        else:
            blob = bytes(value)
        try:
            reader = _Reader(blob)
            if reader.take(6) != _MAGIC:
                raise ValueError("not an SSHSIG signature")
            version = reader.uint32()
            if version != _VERSION:
                raise ValueError(f"unsupported SSHSIG version {version}")
            key_blob = reader.string()
            namespace = reader.text()
            reserved = reader.string()
            hash_algorithm = reader.text()
            signature = reader.string()
            reader.end()
        except (ValueError, UnicodeDecodeError) as error:
            raise SignatureError(f"malformed signature: {error}") from None
        if hash_algorithm not in _HASHES:
            raise SignatureError(f"unsupported signature hash {hash_algorithm!r}: "
                                 f"supported: {', '.join(_HASHES)}")
        try:
            key = _public_key(key_blob)
        except SigningKeyError as error:
            raise SignatureError(f"signature by an unusable key: {error}") from None
        return cls(key, namespace, hash_algorithm, signature, reserved)

    def __repr__(self) -> str:
        return (f"Signature({self.signature_algorithm} by {self.public_key.fingerprint}, "
                f"namespace={self.namespace!r}, hash={self.hash_algorithm})")


def verify(signature: Signature | str | Bytes, data: Bytes,
           namespace: str = DEFAULT_NAMESPACE) -> PublicKey:
    """Check that ``signature`` signs ``data`` in ``namespace``; return the signer's key.

    The key returned is only *who* signed: whether that key may do what the data
    says is the caller's (the policy's) question. Raises :class:`SignatureError` on
    any mismatch: another namespace, altered data, a malformed or truncated
    signature, a key type and signature algorithm that do not go together, or a
    legacy SHA-1 ``ssh-rsa`` signature.
    """
    _check_data(data)
    sig = signature if isinstance(signature, Signature) else Signature.parse(signature)
    if sig.namespace != namespace:
        raise SignatureError(f"signature is for namespace {sig.namespace!r}, not {namespace!r}")
    if sig.hash_algorithm not in _HASHES:
        raise SignatureError(f"unsupported signature hash {sig.hash_algorithm!r}")
    algorithm, key = _load_public_blob(sig.public_key.blob)
    try:
        reader = _Reader(sig.signature)
        sig_algorithm = reader.text()
        raw = reader.string()
        reader.end()
    except (ValueError, UnicodeDecodeError) as error:
        raise SignatureError(f"malformed signature: {error}") from None
    message = _signed_data(sig.namespace, sig.hash_algorithm, data, sig.reserved)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey) and sig_algorithm == algorithm:
            _verify_ed25519(key.public_bytes_raw(), raw, message)
        elif isinstance(key, ec.EllipticCurvePublicKey) and sig_algorithm == algorithm:
            inner = _Reader(raw)
            r, s = inner.mpint(), inner.mpint()
            inner.end()
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(_CURVES[algorithm][2]))
        elif isinstance(key, rsa.RSAPublicKey) and sig_algorithm in _RSA_SIGNATURES:
            key.verify(raw, message, padding.PKCS1v15(), _RSA_SIGNATURES[sig_algorithm])
        elif sig_algorithm == "ssh-rsa":
            raise SignatureError("legacy ssh-rsa (SHA-1) signatures are refused: sign with "
                                 "rsa-sha2-512 (any current OpenSSH does)")
        else:
            raise SignatureError(
                f"a {sig_algorithm!r} signature cannot come from a {algorithm!r} key")
    except InvalidSignature:
        raise SignatureError(
            f"signature by {sig.public_key.fingerprint} does not match the data") from None
    except ValueError as error:  # malformed r/s
        raise SignatureError(f"malformed {sig_algorithm} signature: {error}") from None
    return sig.public_key


def _verify_ed25519(public: bytes, raw: bytes, message: bytes) -> None:
    """Check an Ed25519 signature with libsodium (PyNaCl); InvalidSignature if it fails.

    libsodium verifies in about half the time OpenSSL takes through
    ``cryptography`` (60 vs 115 µs here), which is what lets ``verify`` check
    10,000 signatures in under a second. It is also stricter: it refuses
    non-canonical encodings and small-order keys or ``R`` values, which no
    honest signer produces. Every Ed25519 signature is checked this way, so a
    verdict never depends on what happens to be installed.
    """
    if len(raw) != 64:  # crypto_sign_open would read the excess as part of the message
        raise InvalidSignature
    try:
        _sodium().crypto_sign_open(raw + message, public)
    except _sodium_error() as error:
        raise InvalidSignature from error


@functools.cache
def _sodium() -> Any:
    """PyNaCl's libsodium bindings (~25 ms to load: on the first Ed25519 key or signature).

    A PyNaCl built against a minimal libsodium lacks the point check
    :func:`_load_public_blob` needs: refused (fail closed), not skipped.
    """
    import nacl.bindings

    if not getattr(nacl.bindings, "has_crypto_core_ed25519", False):
        raise RuntimeError("PyNaCl was built without crypto_core_ed25519 (a minimal "
                           "libsodium): Kirin cannot check Ed25519 keys; install PyNaCl's "
                           "wheel from PyPI")
    return nacl.bindings


@functools.cache
def _sodium_error() -> type[Exception]:
    from nacl.exceptions import CryptoError

    return CryptoError


# -- signers -------------------------------------------------------------------------
@runtime_checkable
class Signer(Protocol):
    """Something that signs with one SSH key: a key file, the ssh-agent, a test double."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, data: Bytes, namespace: str = DEFAULT_NAMESPACE) -> Signature: ...


_SignKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyFileSigner:
    """Signs with an OpenSSH (or PEM) private key file, like ``ssh-keygen -Y sign -f``.

    The key is read once, here, so a wrong passphrase fails now rather than at the
    first commit; the passphrase is not kept. RSA keys sign ``rsa-sha2-512``.
    """

    __slots__ = ("_key", "_public_key", "path")

    def __init__(self, path: str | os.PathLike[str], passphrase: str | bytes | None = None
                 ) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as error:
            raise SigningKeyError(
                f"cannot read signing key {str(self.path)!r}: {error.strerror}") from None
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        key: object
        try:
            if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
                key = serialization.load_ssh_private_key(data, secret)
            else:
                key = serialization.load_pem_private_key(data, secret)
        except TypeError:  # cryptography: a password is missing or not needed
            if secret is None:
                raise SigningKeyError(
                    f"signing key {str(self.path)!r} is encrypted: give its passphrase "
                    f"(or ${PASSPHRASE_VARIABLE}), or use the ssh-agent") from None
            key = self._load_unencrypted(data)
        except (ValueError, UnsupportedAlgorithm):
            raise SigningKeyError(
                f"cannot load signing key {str(self.path)!r}: "
                + ("wrong passphrase or not a private key file" if secret is not None
                   else "not an OpenSSH or PEM private key file")) from None
        if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey |
                      ed25519.Ed25519PrivateKey):
            self._key: _SignKey = key
        else:
            raise SigningKeyError(f"signing key {str(self.path)!r} is a "
                                  f"{type(key).__name__.removeprefix('_')}: use Ed25519, "
                                  "ECDSA or RSA")
        self._public_key = PublicKey.from_cryptography(key.public_key())

    def _load_unencrypted(self, data: bytes) -> object:
        # A passphrase was given for a key that has none: accept, as ssh-keygen does.
        try:
            if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
                return serialization.load_ssh_private_key(data, None)
            return serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningKeyError(
                f"cannot load signing key {str(self.path)!r}") from None

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, data: Bytes, namespace: str = DEFAULT_NAMESPACE) -> Signature:
        _check_data(data)
        _check_namespace(namespace)
        message = _signed_data(namespace, "sha512", data)
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            blob = _string(b"ssh-ed25519") + _string(key.sign(message))
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            algorithm = self._public_key.algorithm
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(_CURVES[algorithm][2])))
            blob = _string(algorithm.encode()) + _string(_mpint(r) + _mpint(s))
        else:
            blob = _string(b"rsa-sha2-512") + _string(
                key.sign(message, padding.PKCS1v15(), hashes.SHA512()))
        return Signature(self._public_key, namespace, "sha512", blob)

    def __repr__(self) -> str:
        return f"KeyFileSigner({str(self.path)!r}, {self._public_key.fingerprint})"


# ssh-agent protocol (draft-miller-ssh-agent)
_AGENTC_REQUEST_IDENTITIES = 11
_AGENT_IDENTITIES_ANSWER = 12
_AGENTC_SIGN_REQUEST = 13
_AGENT_SIGN_RESPONSE = 14
_AGENT_RSA_SHA2_512 = 4
_AGENT_MAX_MESSAGE = 256 * 1024


class AgentSigner:
    """Signs through the running ssh-agent (``$SSH_AUTH_SOCK``): the private key never
    leaves the agent, which is how most engineers (and git) already sign.

    ``public_key`` picks the agent's key (a :class:`PublicKey`, its fingerprint
    ``SHA256:...`` or its ``.pub`` line); without it, the first key the agent holds
    that Kirin can use (the agent lists keys in the order they were added).
    """

    __slots__ = ("_public_key", "socket_path")

    def __init__(self, public_key: PublicKey | str | None = None,
                 socket_path: str | os.PathLike[str] | None = None) -> None:
        found = socket_path if socket_path is not None else os.environ.get("SSH_AUTH_SOCK")
        if not found:
            raise SigningKeyError("no ssh-agent: SSH_AUTH_SOCK is not set")
        self.socket_path = os.fspath(found)
        usable, skipped = [], []
        for blob in self._identities():
            try:
                usable.append(PublicKey(blob))
            except SigningKeyError as error:
                skipped.append(str(error))
        if isinstance(public_key, str) and not public_key.startswith("SHA256:"):
            public_key = PublicKey.parse(public_key)
        wanted = public_key.fingerprint if isinstance(public_key, PublicKey) else public_key
        chosen = [k for k in usable if wanted is None or k.fingerprint == wanted]
        if not chosen:
            what = f"the key {wanted}" if wanted else "a usable key"
            detail = f" (skipped: {'; '.join(skipped)})" if skipped else ""
            raise SigningKeyError(f"the ssh-agent holds {len(usable)} usable key(s) but not "
                                  f"{what}{detail}: add it with ssh-add")
        self._public_key = chosen[0]

    def _request(self, payload: bytes) -> _Reader:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(30)
                conn.connect(self.socket_path)
                conn.sendall(_string(payload))
                (size,) = struct.unpack(">I", _receive(conn, 4))
                if size > _AGENT_MAX_MESSAGE:
                    raise SigningKeyError(f"ssh-agent answer too large ({size} bytes)")
                return _Reader(_receive(conn, size))
        except OSError as error:
            raise SigningKeyError(
                f"cannot talk to the ssh-agent at {self.socket_path!r}: "
                f"{error.strerror or error}") from None

    def _identities(self) -> list[bytes]:
        reader = self._request(bytes([_AGENTC_REQUEST_IDENTITIES]))
        try:
            if reader.take(1)[0] != _AGENT_IDENTITIES_ANSWER:
                raise ValueError("the agent refused to list its keys")
            blobs = []
            for _ in range(reader.uint32()):
                blobs.append(reader.string())
                reader.string()  # comment
            return blobs
        except ValueError as error:
            raise SigningKeyError(f"bad ssh-agent answer: {error}") from None

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, data: Bytes, namespace: str = DEFAULT_NAMESPACE) -> Signature:
        _check_data(data)
        _check_namespace(namespace)
        message = _signed_data(namespace, "sha512", data)
        flags = _AGENT_RSA_SHA2_512 if self._public_key.algorithm == "ssh-rsa" else 0
        reader = self._request(bytes([_AGENTC_SIGN_REQUEST]) + _string(self._public_key.blob)
                               + _string(message) + _uint32(flags))
        try:
            if reader.take(1)[0] != _AGENT_SIGN_RESPONSE:
                raise SigningKeyError(
                    f"the ssh-agent refused to sign with {self._public_key.fingerprint} "
                    "(key removed, or confirmation denied?)")
            blob = reader.string()
            reader.end()
        except ValueError as error:
            raise SigningKeyError(f"bad ssh-agent answer: {error}") from None
        signature = Signature(self._public_key, namespace, "sha512", blob)
        if signature.signature_algorithm == "ssh-rsa":
            raise SigningKeyError("the ssh-agent made a legacy SHA-1 ssh-rsa signature: "
                                  "it is too old for rsa-sha2-512")
        return signature

    def __repr__(self) -> str:
        return f"AgentSigner({self._public_key.fingerprint})"


def _receive(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 65536))
        if not chunk:
            raise SigningKeyError("the ssh-agent closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def signer_from_environment(key: str | os.PathLike[str] | None = None) -> Signer | None:
    """The signer the user configured, or ``None`` if there is none.

    In order: ``key`` (the ``--key`` option), then ``$KIRIN_SIGNING_KEY``: a private
    key file (passphrase from ``$KIRIN_SIGNING_KEY_PASSPHRASE``), or a ``.pub`` file,
    meaning that key through the ssh-agent. Otherwise the ssh-agent's first usable
    key. An explicitly named key that cannot be used is an error; an agent that is
    absent, unreachable or holds no usable key is not (``SSH_AUTH_SOCK`` is set on
    most desktops whether or not one signs): ``None``, and the caller decides.
    """
    path = key if key is not None else os.environ.get(KEY_VARIABLE) or None
    if path is not None:
        public = _public_key_file(Path(path))
        if public is not None:
            return AgentSigner(public)
        return KeyFileSigner(path, os.environ.get(PASSPHRASE_VARIABLE) or None)
    if not os.environ.get("SSH_AUTH_SOCK"):
        return None
    try:
        return AgentSigner()
    except SigningKeyError:
        return None


def _public_key_file(path: Path) -> PublicKey | None:
    """The key in ``path`` if it is a public key file (one line), else ``None``."""
    try:
        head = path.read_bytes()[:16384]
    except OSError as error:
        raise SigningKeyError(f"cannot read signing key {str(path)!r}: {error.strerror}"
                              ) from None
    if head.lstrip().startswith(b"-----BEGIN"):
        return None
    try:
        return PublicKey.parse(head.decode("ascii"))
    except UnicodeDecodeError:
        raise SigningKeyError(f"{str(path)!r} is neither a private nor a public key file"
                              ) from None
