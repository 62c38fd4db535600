"""The read-only web app behind ``kirin ui``: Starlette routes rendering Jinja2 pages.

Safe by construction rather than by care at each page:

* **read-only**: :class:`Guard` answers every method but GET and HEAD with
  405 before routing, and no route writes;
* **escaped**: Jinja2 autoescapes every value; the one piece of markup built
  in Python (the SVG chart) escapes each string itself;
* **no script**: the Content-Security-Policy allows none at all (no page
  needs any), nor anything from another origin: injected markup could not
  run even if an escape were missed;
* **links** are built by :func:`link`, which URL-quotes every segment and
  query value, so a tag or file name never becomes a scheme or a path;
* **downloads** name a commit and a file *of that commit's snapshot*; the
  content is looked up by that name, verified against its hash, and served
  as an attachment of type ``application/octet-stream`` (never rendered);
* **loopback by default**, with a Host check there (DNS rebinding cannot
  make another site's page read the registry).

The registry is opened once; each request re-reads only what changed (the
history refreshes from the newest commit it knows). Registry calls run under
one lock: the library's objects are shared by the server's worker threads.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..backends import redact_url
from ..catalog import Catalog
from ..dataset import Dataset
from ..errors import (
    InvalidInputError,
    KirinError,
    NotFoundError,
    PolicyError,
    StorageError,
)
from ..naming import validate_dataset_name
from ..policylog import PolicyVersion
from ..units import human_size
from . import data
from .svg import trend_svg

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
CHUNK = 1 << 20
#: No script from anywhere, styles and images from this server only, no framing.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def link(*segments: object, **query: Any) -> str:
    """An absolute path on this server: each segment and query value URL-quoted.

    Query values that are ``None`` or empty are left out; a list repeats the key.
    """
    path = "/" + "/".join(quote(str(s), safe="") for s in segments)
    kept = {k.rstrip("_"): v for k, v in query.items() if v not in (None, "", [], ())}
    return path + ("?" + urlencode(kept, doseq=True) if kept else "")


class NotHere(Exception):
    """A page or object that does not exist: answered with 404 and the reason."""


class Registry:
    """The catalog under one root and its datasets, opened once and shared by requests."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        self.root = root
        self.catalog = Catalog(root, **storage_options)
        self.lock = threading.RLock()
        self._datasets: dict[str, Dataset] = {}

    def names(self) -> list[str]:
        return sorted(self.catalog.datasets())

    def dataset(self, name: str) -> Dataset:
        """The dataset ``name``; :class:`NotHere` if no such dataset exists."""
        try:
            name = validate_dataset_name(name)
        except InvalidInputError as exc:
            raise NotHere(str(exc)) from None
        found = self._datasets.get(name)
        if found is None:
            found = self.catalog.get_dataset(name)
            if found.is_empty() and name not in self.catalog.datasets():
                raise NotHere(f"No dataset {name!r} in this registry")
            self._datasets[name] = found
        return found


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["link"] = link
    env.filters["when"] = _when
    env.filters["size"] = human_size
    env.filters["short"] = lambda h: (h or "")[:8]
    env.tests["mapping"] = lambda v: hasattr(v, "items")
    return env


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Pages:
    """The route handlers: each reads the registry under its lock and renders one page."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.env = _environment()

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(root=redact_url(self.registry.root),
                                                      **context)
        return HTMLResponse(page, status_code=status)

    def guarded(self, handler: Callable[[Request], Response]
                ) -> Callable[[Request], Response]:
        """``handler`` under the registry lock, with Kirin's errors turned into pages."""

        def run(request: Request) -> Response:
            try:
                with self.registry.lock:
                    return handler(request)
            except (NotHere, NotFoundError) as exc:
                return self.render("error.html", 404, title="Not found", message=str(exc))
            except (InvalidInputError, PolicyError) as exc:
                return self.render("error.html", 400, title="Bad request", message=str(exc))
            except StorageError as exc:
                return self.render("error.html", 502, title="Storage error", message=str(exc))
            except KirinError as exc:
                return self.render("error.html", 500, title="Error", message=str(exc))

        run.__name__ = handler.__name__
        return run

    # -- pages -------------------------------------------------------------
    def catalog(self, request: Request) -> Response:
        rows = [data.summarize(self.registry.dataset(n)) for n in self.registry.names()]
        return self.render("catalog.html", rows=rows)

    def _dataset(self, request: Request) -> Dataset:
        return self.registry.dataset(request.path_params["name"])

    def dataset(self, request: Request) -> Response:
        ds = self._dataset(request)
        params = request.query_params
        tags = [t for t in params.getlist("tag") if t]
        where = params.get("where", "").strip() or None
        number = _int(params.get("page"), 1)
        size = min(_int(params.get("size"), PAGE_SIZE), MAX_PAGE_SIZE)
        error = None
        try:
            page = data.history_page(ds, number, size, tags=tags, where=where)
        except PolicyError as exc:  # a where expression that does not parse
            error = str(exc)
            page = data.Page([], number, size, False, None)
        chosen = [c.strip() for v in params.getlist("col") for c in v.split(",") if c.strip()]
        columns = chosen or data.default_columns(page.commits)
        policy = ds.policy
        return self.render(
            "dataset.html", 400 if error else 200, ds=ds, page=page, tags=tags, where=where,
            error=error, columns=columns, chosen=chosen, value=data.display_value,
            policy_hash=policy.hash if policy else None,
            query={"tag": tags, "where": where, "col": ",".join(chosen),
                   "size": params.get("size")})

    def commit(self, request: Request) -> Response:
        ds = self._dataset(request)
        commit = ds.resolve(request.path_params["ref"])
        parent = ds.get_commit(commit.parent_hash) if commit.parent_hash else None
        stages = set(data.stage_names(ds))
        return self.render("commit.html", ds=ds, commit=commit, parent=parent,
                           promoted_from=data.promoted_from(commit),
                           signature=getattr(commit, "signature", None),
                           stages=[t for t in commit.tags if t in stages],
                           lineage=commit.lineage, links=data.links(ds, commit))

    def download(self, request: Request) -> Response:
        ds = self._dataset(request)
        commit = ds.resolve(request.path_params["ref"])
        name = request.query_params.get("file", "")
        file = commit.files.get(name)  # only a name of this snapshot; never a path
        if file is None:
            raise NotHere(f"Commit {commit.short_hash} has no file {name!r}")
        filename = name.rsplit("/", 1)[-1]
        ascii_name = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_"
                             for c in filename) or "download"
        headers = {
            "content-disposition": f"attachment; filename=\"{ascii_name}\"; "
                                   f"filename*=UTF-8''{quote(filename, safe='')}",
            "content-length": str(file.size),
            "x-kirin-sha256": file.hash,
        }
        if request.method == "HEAD":  # the headers only: nothing to fetch or verify
            return Response(media_type="application/octet-stream", headers=headers)
        reader = file.open("rb")  # verified against its hash before a byte is sent
        return StreamingResponse(_chunks(reader), media_type="application/octet-stream",
                                 headers=headers)

    def diff(self, request: Request) -> Response:
        ds = self._dataset(request)
        params = request.query_params
        to_ref = params.get("to", "").strip()
        new = ds.resolve(to_ref) if to_ref else ds.head
        if new is None:
            raise NotHere(f"Dataset {ds.name!r} has no commits yet")
        from_ref = params.get("from", "").strip() or new.parent_hash
        if from_ref is None:
            return self.render("diff.html", ds=ds, old=None, new=new, changes=None)
        old = ds.resolve(from_ref)
        changes = ds.compare_commits(old.hash, new.hash)
        return self.render("diff.html", ds=ds, old=old, new=new, changes=changes)

    def stages(self, request: Request) -> Response:
        ds = self._dataset(request)
        policy = ds.policy
        return self.render("stages.html", ds=ds, rows=data.stage_rows(ds),
                           from_policy=bool(data.policy_stages(policy)))

    def policy(self, request: Request) -> Response:
        ds = self._dataset(request)
        versions = ds.policy_history()
        by_seq = {str(v.seq): v for v in versions}
        params = request.query_params
        current = versions[0] if versions else None
        shown = by_seq.get(params.get("v", ""), current)
        a, b = by_seq.get(params.get("a", "")), by_seq.get(params.get("b", ""))
        if a is None and b is None and len(versions) > 1:
            a, b = versions[1], versions[0]
        lines: list[str] = []
        if a is not None and b is not None:
            lines = list(difflib.unified_diff(
                _policy_text(a).splitlines(), _policy_text(b).splitlines(),
                f"version {a.seq}", f"version {b.seq}", lineterm=""))
        return self.render("policy.html", ds=ds, versions=versions, shown=shown,
                           text=_policy_text(shown) if shown else "", current=current,
                           a=a, b=b, lines=lines)

    def audit(self, request: Request) -> Response:
        ds = self._dataset(request)
        policy = ds.policy
        failures = ds.audit() if policy is not None else []
        head = ds.head
        return self.render("audit.html", ds=ds, policy_hash=policy.hash if policy else None,
                           failures=failures, checked=head.seq + 1 if head else 0)

    def trend(self, request: Request) -> Response:
        ds = self._dataset(request)
        paths = data.recent_metric_paths(ds)
        metric = request.query_params.get("metric", "").strip() or (paths[0] if paths else "")
        stages = data.stage_names(ds)
        points = data.metric_points(ds, metric, stages) if metric else []
        chart = Markup(trend_svg(  # every string in it is escaped by trend_svg
            points, metric, stages, link("d", ds.name, "c") + "/")) if metric else None
        latest = points[-1] if points else None
        best = max(points, key=lambda p: p.value) if points else None
        return self.render("trend.html", ds=ds, metric=metric, paths=paths, chart=chart,
                           points=points, latest=latest, best=best,
                           low=min((p.value for p in points), default=None))


def _policy_text(version: PolicyVersion) -> str:
    """A stored policy as the YAML ``kirin policy show`` prints (stored as canonical JSON)."""
    if version.text is None:
        return ""
    try:
        policy = version.load()
    except PolicyError:  # written by a newer Kirin, say: show what is stored
        return version.text
    return policy.to_text() if policy is not None else ""


def _int(text: str | None, default: int) -> int:
    try:
        return max(int(text or ""), 1)
    except ValueError:
        return default


def _chunks(reader: IO[bytes]) -> Iterator[bytes]:
    with reader:
        while chunk := reader.read(CHUNK):
            yield chunk


class Guard:
    """Read-only and hardened: 405 for any method but GET/HEAD, security headers on all.

    ``hosts`` (if given) are the names a request may give in its ``Host``
    header; others get 400. Every response also says how long the server took
    (``Server-Timing``, shown by a browser's developer tools and read by
    ``benchmarks/bench_ui.py``).
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused: Response | None = None
        if scope["method"] not in ("GET", "HEAD"):
            refused = PlainTextResponse("kirin ui is read-only: only GET and HEAD\n", 405,
                                        headers={"allow": "GET, HEAD"})
        elif self.hosts is not None and host_name(scope) not in self.hosts:
            refused = PlainTextResponse("Invalid host: kirin ui answers on loopback only\n",
                                        400)
        if refused is not None:
            refused.headers.update(SECURITY_HEADERS)
            await refused(scope, receive, send)
            return

        started = time.perf_counter()

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                # the server's time to the response (the whole page: it is rendered first)
                elapsed = (time.perf_counter() - started) * 1000
                headers["server-timing"] = f"app;dur={elapsed:.1f}"
            await send(message)

        await self.app(scope, receive, send_hardened)


def host_name(scope: Scope) -> str:
    """The host a request names, without its port (``[::1]:8000`` is ``::1``)."""
    for key, value in scope["headers"]:
        if key == b"host":
            host = bytes(value).decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1:].split("]", 1)[0]
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def is_loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK_HOSTS or host.startswith("127.")


def create_app(root: str | Catalog, *, host: str = "127.0.0.1",
               storage_options: dict[str, Any] | None = None) -> Starlette:
    """The web app over the registry at ``root`` (a folder or fsspec URL, or a Catalog).

    ``host`` is the address the server binds: on loopback, requests must name
    a loopback host too (a guard against DNS rebinding).
    """
    if isinstance(root, Catalog):
        registry = Registry.__new__(Registry)
        registry.root, registry.catalog = root.root_dir, root
        registry.lock, registry._datasets = threading.RLock(), {}
    else:
        registry = Registry(root, **(storage_options or {}))
    pages = Pages(registry)
    g = pages.guarded
    routes = [
        Route("/", g(pages.catalog), name="catalog"),
        Route("/d/{name}", g(pages.dataset)),
        Route("/d/{name}/c/{ref}", g(pages.commit)),
        Route("/d/{name}/c/{ref}/download", g(pages.download)),
        Route("/d/{name}/diff", g(pages.diff)),
        Route("/d/{name}/stages", g(pages.stages)),
        Route("/d/{name}/policy", g(pages.policy)),
        Route("/d/{name}/audit", g(pages.audit)),
        Route("/d/{name}/trend", g(pages.trend)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    hosts = frozenset({*LOOPBACK_HOSTS, host.strip("[]")}) if is_loopback(host) else None
    app = Starlette(routes=routes, middleware=[Middleware(Guard, hosts=hosts)])
    app.state.registry = registry
    return app
