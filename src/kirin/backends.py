"""What Kirin knows about each storage backend: opening it, its guarantees, its errors.

Used by the storage layer only (:mod:`kirin.store` and the modules it
dispatches to, the only ones that call fsspec for data). fsspec is imported
when a URL is first opened, not with ``kirin``. Three concerns live here, so
that the store reads as a storage layer rather than a list of quirks:

* **Opening** a root URL with the storage options the user gave, the way each
  fsspec library expects them (``s3fs``: ``key``/``secret``/``profile``/
  ``endpoint_url``/``anon``; ``adlfs``: ``connection_string``/``account_name``
  + ``account_key``/``sas_token``/``credential``/``anon``; ``gcsfs``:
  ``token``/``project``/``endpoint_url``), or from their usual environment
  variables, or from fsspec's ``FSSPEC_<PROTOCOL>`` configuration.
* **Guarantees**: which filesystems give an atomic create-if-absent (see
  :func:`create_guarantee`); the store refuses to write to a server proven to
  ignore the condition and warns on a filesystem it knows nothing about.
* **Errors**: sorting a foreign exception (botocore, azure-core, gcsfs,
  aiohttp, builtins) into transient / bucket missing / access refused /
  other, and turning it into a :class:`~kirin.errors.StorageError` whose
  message names the URL, says what to check, and holds no secret.
"""

from __future__ import annotations

import errno
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import (
    BucketNotFoundError,
    InvalidArgumentTypeError,
    InvalidInputError,
    MissingExtraError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
    UnsafeConcurrencyWarning,
)

if TYPE_CHECKING:
    import fsspec

T = TypeVar("T")

S3 = frozenset({"s3", "s3a"})
GCS = frozenset({"gs", "gcs"})
AZURE = frozenset({"az", "abfs", "abfss"})
OBJECT_STORES = S3 | GCS | AZURE
OBJECT_STORE_KINDS = frozenset({"s3", "gcs", "azure"})


def protocols(fs: fsspec.AbstractFileSystem) -> frozenset[str]:
    proto = fs.protocol
    return frozenset([proto] if isinstance(proto, str) else proto)


def kind_of(fs: fsspec.AbstractFileSystem) -> str:
    """``"local"``, ``"memory"``, ``"s3"``, ``"gcs"``, ``"azure"`` or ``"other"``."""
    names = protocols(fs)
    if names & {"file", "local"}:
        return "local"
    if "memory" in names:
        return "memory"
    if names & S3:
        return "s3"
    if names & GCS:
        return "gcs"
    if names & AZURE:
        return "azure"
    return "other"


# -- opening ------------------------------------------------------------------------------


#: The Kirin extra that installs the fsspec implementation of each cloud protocol.
EXTRAS = {**dict.fromkeys(S3, "s3"), **dict.fromkeys(GCS, "gcs"),
          **dict.fromkeys(AZURE, "azure")}


def url_protocols(url: str) -> list[str]:
    """The protocols of ``url``, one per link of a chained URL (``simplecache::s3://b``)."""
    links = url.split("::")
    found = []
    for i, link in enumerate(links):
        if "://" in link:
            found.append(link.split("://", 1)[0].lower())
        elif i < len(links) - 1:  # a bare protocol name before "::"; last: a local path
            found.append(link.lower())
    return found


#: The original Kirin's credential arguments of ``Dataset`` and ``Catalog``: the
#: protocols each is for, and the fsspec storage option it becomes there.
CREDENTIAL_ARGUMENTS: dict[str, tuple[frozenset[str], str]] = {
    "aws_profile": (S3, "profile"),
    "gcs_token": (GCS, "token"),
    "gcs_project": (GCS, "project"),
    "azure_account_name": (AZURE, "account_name"),
    "azure_account_key": (AZURE, "account_key"),
    "azure_connection_string": (AZURE, "connection_string"),
}


def credential_options(url: str, storage_options: Mapping[str, Any],
                       credentials: Mapping[str, Any]) -> dict[str, Any]:
    """``storage_options`` plus the original's credential arguments meant for ``url``'s cloud.

    ``credentials`` maps the argument names of :data:`CREDENTIAL_ARGUMENTS`
    to values (``None``: not given). Those of another cloud, or of a local
    root, are ignored, as the original did. In a chained URL
    (``simplecache::s3://...``) they go to the link of their protocol. The
    same option also given as a storage option with another value is an
    error that names the option, never its value.
    """
    options = dict(storage_options)
    protocols = url_protocols(url)
    chained = len(protocols) > 1
    for argument, value in credentials.items():
        if value is None:
            continue
        clouds, option = CREDENTIAL_ARGUMENTS[argument]
        if argument == "gcs_token" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        allowed = (str, Mapping) if argument == "gcs_token" else (str,)
        if not isinstance(value, allowed):
            raise InvalidArgumentTypeError(
                f"{argument} must be a str{' or a path' if argument == 'gcs_token' else ''}, "
                f"not {type(value).__name__}")
        protocol = next((p for p in protocols if p in clouds), None)
        if protocol is None:
            continue
        target = options
        if chained:
            nested = options.get(protocol)
            target = dict(nested) if isinstance(nested, Mapping) else {}
            options[protocol] = target
        if option in target and target[option] != value:
            raise InvalidInputError(f"{argument} and the storage option {option!r} are both "
                                    "given, with different values: give one of them")
        target[option] = value
    return options


def check_protocols(url: str) -> None:
    """Refuse ``url`` if a protocol in it is unknown or its package is not installed.

    fsspec raises ``ValueError``/``ImportError`` for these, which read as bugs;
    the errors here name the URL (redacted) and, for a cloud protocol, the
    extra to install.
    """
    import fsspec  # imported when a URL is first opened: ``import kirin`` stays light

    for protocol in url_protocols(url):
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as exc:
            raise _missing_extra(url, protocol, exc) from None
        except ValueError:
            known = ", ".join(sorted({"file", "memory", *OBJECT_STORES}))
            raise InvalidInputError(
                f"{redact_url(url)}: unknown protocol {protocol!r} (known to Kirin: {known}; "
                "or any protocol an installed fsspec implementation registers)") from None


def _missing_extra(url: str, protocol: str, exc: ImportError) -> MissingExtraError:
    extra = EXTRAS.get(protocol)
    install = (f"pip install 'kirin[{extra}]'" if extra else
               "install the fsspec implementation of this protocol")
    module = f" ({exc.name} is not installed)" if exc.name else ""
    return MissingExtraError(f"{redact_url(url)}: the {protocol}:// protocol needs an optional "
                             f"package{module}: {install}", protocol=protocol, extra=extra)


def open_url(url: str, storage_options: Mapping[str, Any]) -> tuple[fsspec.AbstractFileSystem,
                                                                     str]:
    """The filesystem and path for ``url``, with ``storage_options`` passed through."""
    check_protocols(url)
    protocol = url.split("://", 1)[0].split("::")[-1].lower() if "://" in url else ""
    if protocol in GCS:
        _prepare_gcsfs(storage_options)
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    return fs, str(path)


def _prepare_gcsfs(options: Mapping[str, Any]) -> None:
    """Turn off gcsfs's gRPC bucket-layout probe when talking to an emulator.

    gcsfs (2025.x and later) probes every bucket over gRPC for the
    hierarchical-namespace features; against an HTTP emulator each probe
    stalls for about a minute. The switch is read when gcsfs is imported, so
    it can only be set before that, and only if the user has not set it.
    """
    import fsspec.config

    configured = {**fsspec.config.conf.get("gcs", {}), **fsspec.config.conf.get("gs", {})}
    endpoint = str(options.get("endpoint_url") or configured.get("endpoint_url")
                   or os.environ.get("STORAGE_EMULATOR_HOST") or "")
    if endpoint and "googleapis.com" not in endpoint:
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def bucket_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path.strip("/").split("/", 1)[0]


# -- guarantees ---------------------------------------------------------------------------

#: How each kind of filesystem makes a write-once object appear at most once.
CREATE_IF_ABSENT = {
    "local": "temporary file, then os.link (fails with EEXIST)",
    "memory": "a lock held by Kirin (a memory:// filesystem is private to one process)",
    "s3": "conditional PUT, If-None-Match: * (probed once per bucket)",
    "gcs": "conditional upload, ifGenerationMatch=0 (probed once per bucket)",
    "azure": "conditional PUT, If-None-Match: * (probed once per container)",
}
_warned: set[str] = set()


def create_guarantee(fs: fsspec.AbstractFileSystem) -> str | None:
    """How ``fs`` guarantees create-if-absent, or ``None`` when Kirin cannot rely on it."""
    return CREATE_IF_ABSENT.get(kind_of(fs))


def warn_if_unsafe(fs: fsspec.AbstractFileSystem, url: str) -> None:
    """Warn (once per filesystem class) that concurrent writers may lose commits on ``fs``."""
    if create_guarantee(fs) is not None:
        return
    name = f"{type(fs).__module__}.{type(fs).__qualname__}"
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(
        f"{redact_url(url)}: Kirin does not know how {type(fs).__name__} "
        f"(protocol {'/'.join(sorted(protocols(fs)))}) creates an object only if it is "
        "absent, and fsspec's fallback is an exists-check followed by a write. One writer "
        "at a time is safe; two writers committing at the same moment may overwrite each "
        "other's commit. Use local disk, S3, GCS or Azure Blob for shared registries.",
        UnsafeConcurrencyWarning, stacklevel=4)


# -- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    An operation is tried at most ``attempts`` times, and never started again
    once ``budget`` seconds have passed since the first try (the client
    libraries retry each request themselves first, some for half a minute).
    Before retry ``n`` (1, 2, ...) Kirin sleeps a random time in
    ``[0, min(cap, base * 2**(n-1))]``.
    """

    attempts: int = 4
    base: float = 0.25
    cap: float = 4.0
    budget: float = 60.0

    def delays(self) -> Iterator[float]:
        for n in range(1, self.attempts):
            yield random.uniform(0, min(self.cap, self.base * 2 ** (n - 1)))


#: The policy every store operation follows; replace it to tune (tests make it fast).
RETRY = RetryPolicy()


def with_retries(op: Callable[[], T], *, what: str, url: str, secrets: list[str] | None = None,
                 keep: Callable[[BaseException], bool] | None = None,
                 policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``op``; retry it on transient errors; translate what finally fails.

    Errors for which ``keep`` is true are re-raised untouched (the caller
    gives them a meaning, e.g. "already exists"), unless they say that the
    whole bucket is missing.
    """
    policy = policy or RETRY
    start = time.monotonic()
    delays = policy.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return op()
        except StorageError:
            raise
        except Exception as exc:
            if keep is not None and keep(exc) and not is_bucket_missing(exc):
                raise
            delay = next(delays, None) if is_transient(exc) else None
            elapsed = time.monotonic() - start
            if delay is None or elapsed + delay > policy.budget:
                error = translate(exc, url=url, what=what, attempts=attempt, elapsed=elapsed,
                                  secrets=secrets)
                if error is exc:
                    raise
                raise error from safe_cause(exc, secrets or [])
            sleep(delay)


# -- classifying foreign errors -----------------------------------------------------------

_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE,
                     errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN}
_TRANSIENT_CLASSES = {
    # aiohttp
    "ClientConnectionError", "ClientConnectorError", "ServerDisconnectedError",
    "ClientOSError", "ClientPayloadError", "ServerTimeoutError", "ConnectionTimeoutError",
    "SocketTimeoutError",
    # botocore
    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
    "ConnectTimeoutError", "ResponseStreamingError", "IncompleteReadError",
    # azure-core
    "ServiceRequestError", "ServiceResponseError",
    # requests (gcsfs raises ProxyError for a 502)
    "ProxyError", "ChunkedEncodingError",
    # fsspec
    "FSTimeoutError",
}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                    "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
                    "RequestLimitExceeded", "ServerBusy", "OperationTimedOut",
                    "TooManyRequests", "BadGateway", "GatewayTimeout"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                 "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled",
                 "AuthenticationFailed", "AuthorizationFailure",
                 "AuthorizationPermissionMismatch", "InsufficientAccountPermissions",
                 "InvalidAuthenticationInfo", "AccountIsDisabled"}
_DENIED_CLASSES = {"ClientAuthenticationError", "RefreshError", "DefaultCredentialsError",
                   "NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                   "TransportError"}
_BUCKET_CODES = {"NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"}
_BUCKET_MESSAGES = ("specified bucket does not exist", "specified container does not exist",
                    "bucket does not exist", "container does not exist")


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def error_code(exc: BaseException) -> str | None:
    """The service's error code (S3 ``Error.Code``, Azure ``error_code``), if any."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    code = getattr(exc, "error_code", None)
    return str(code) if code else None


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a failed request, from any of the client libraries."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return int(status)
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again later may succeed."""
    for link in chain(exc):
        if isinstance(link, FileNotFoundError | FileExistsError | PermissionError):
            return False
        if _class_names(link) & _TRANSIENT_CLASSES:
            return True
        if isinstance(link, ConnectionError | TimeoutError):
            return True
        if isinstance(link, OSError) and link.errno in _TRANSIENT_ERRNOS:
            return True
        code = error_code(link)
        if code in _TRANSIENT_CODES:
            return True
        status = _status(link)
        if status is not None and (status >= 500 or status in (408, 429)):
            return True
        text = str(link)
        if "SlowDown" in text or "reduce your request rate" in text:
            return True
    return False


def is_access_denied(exc: BaseException) -> bool:
    for link in chain(exc):
        if isinstance(link, PermissionError) or _class_names(link) & _DENIED_CLASSES:
            return True
        if error_code(link) in _DENIED_CODES or _status(link) in (401, 403):
            return True
        if str(link).startswith("Forbidden:"):  # gcsfs turns a 403 into OSError("Forbidden: ...")
            return True
    return False


def is_bucket_missing(exc: BaseException) -> bool:
    for link in chain(exc):
        if error_code(link) in _BUCKET_CODES:
            return True
        text = str(link).lower()
        if any(m in text for m in _BUCKET_MESSAGES):
            return True
    return False


# -- messages without secrets ---------------------------------------------------------------

_SECRET_PATTERNS = [
    re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|sig|"
               r"X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|"
               r"access_token|refresh_token|client_secret|password|secret|token)=[^&;\s'\"]+"),
    re.compile(r"(?i)(Authorization:\s*)\S+(\s+\S+)?"),
    re.compile(r"(?i)\b(Credential=)[^,\s]+"),
    re.compile(r"(?i)(://)[^/\s:@]+:[^/\s@]+@"),  # user:password@host
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secret values and secret-looking fields replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    whole = match.group(0)
    if whole.startswith("://"):
        return "://***@"
    if "=" in whole:
        return whole.split("=", 1)[0] + "=***"
    return match.group(1) + "***"


def redact_url(url: str) -> str:
    """A root URL fit to show: no ``user:password@``, no query string."""
    return redact(url.split("?", 1)[0])


def url_password(url: str) -> str | None:
    """The password of a URL's ``user:password@`` part (of its last link when chained)."""
    last = url.split("::")[-1]
    if "://" not in last:
        return None
    netloc = last.split("://", 1)[1].split("/", 1)[0]
    userinfo = netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or None


def secret_values(options: Mapping[str, Any]) -> list[str]:
    """Every string in the storage options that could be a credential."""
    found: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key.lower() not in _PLAIN_OPTIONS:
            found.append(value)
            found.extend(part.split("=", 1)[1] for part in value.split(";")
                         if "=" in part and part.split("=", 1)[0].lower() in _SECRET_FIELDS)

    walk(dict(options))
    return sorted(set(found), key=len, reverse=True)


# Option names whose values are not secret (and are worth keeping in messages).
_PLAIN_OPTIONS = {"endpoint_url", "region_name", "project", "account_name", "profile",
                  "default_fill_cache", "version_aware", "requester_pays"}
_SECRET_FIELDS = {"accountkey", "sharedaccesssignature", "sharedaccesskey"}


def safe_cause(exc: BaseException, secrets: list[str]) -> BaseException | None:
    """``exc`` to chain as the cause of a translated error, or ``None`` if it shows a secret.

    A traceback prints every chained exception, so an original error whose
    text holds a credential (a signed URL, a connection string) is dropped;
    the translated message still says what failed.
    """
    for link in chain(exc):
        text = str(link)
        if redact(text, secrets) != text:
            return None
    return exc


def summary(exc: BaseException, secrets: list[str]) -> str:
    """One line naming the failure: the deepest informative exception of the chain."""
    for link in chain(exc):
        code = error_code(link)
        first = str(link).strip().splitlines()[0] if str(link).strip() else ""
        if code or first:
            text = f"{code}: {first}" if code and code not in first else first
            return redact(f"{type(link).__name__}: {text}"[:300], secrets)
    return type(exc).__name__


def translate(exc: BaseException, *, url: str, what: str, attempts: int = 1,
              elapsed: float = 0.0, secrets: list[str] | None = None) -> BaseException:
    """The error to raise for ``exc``, a failure of ``what`` on the registry at ``url``.

    Not-found and already-exists errors of single objects are returned as they
    are: the store gives them their meaning (a missing log entry is the end
    of the log, an existing one a lost race).
    """
    secrets = secrets or []
    where = redact_url(url)
    detail = summary(exc, secrets)
    if is_bucket_missing(exc):
        return BucketNotFoundError(
            f"The bucket or container of {where} does not exist ({detail}). Check its "
            "name, the account or project, and the endpoint or region; Kirin never creates "
            "buckets.", url=where)
    if is_access_denied(exc):
        return StorageAccessDeniedError(
            f"Access to {where} was refused while trying to {what} ({detail}). Check the "
            "credentials (key and secret, profile, token, connection string or SAS) and "
            "that they allow listing, reading and writing objects under this prefix.",
            url=where)
    if isinstance(exc, FileNotFoundError | FileExistsError | IsADirectoryError):
        return exc
    if is_transient(exc):
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''} over {elapsed:.1f} s"
        return StorageUnavailableError(
            f"Could not {what} at {where} {tries} ({detail}). Check that the endpoint is "
            "reachable and the service is up; a commit that fails this way leaves the "
            "registry as it was, so it can simply be run again.", url=where)
    return StorageError(f"Storage error while trying to {what} at {where}: {detail}")
