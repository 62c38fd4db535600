"""The web view over HTTP, on a real uvicorn server: read-only, hardened, correct pages.

What a browser shows is tested in test_ui_browser.py; here are the promises
that hold for any client: only GET and HEAD, the security headers, downloads
by (commit, name in its snapshot) only and verified, escaping in the raw
HTML, and the same pages on every storage backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from kirin import Catalog
from kirin.ui.app import CSP, link
from kirin.ui.server import UiServer

from roots import RegistryRoot
from ui_helpers import (
    HOSTILE_FILE,
    HOSTILE_KEY,
    HOSTILE_MESSAGE,
    HOSTILE_TAG,
    Built,
    build_registry,
    request,
    serve,
    sha256,
    write,
)


class Markup(HTMLParser):
    """The tags, attribute names and link targets of a page, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "src", "action", "xlink:href"):
                self.links.append(value or "")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, Catalog, Built]]:
    base = tmp_path_factory.mktemp("ui-http")
    catalog = Catalog(base / "registry")
    built = build_registry(catalog, base / "work")
    with serve(catalog) as server:
        yield server, catalog, built


def test_every_page_answers_with_the_security_headers(site: tuple[UiServer, Catalog, Built]
                                                       ) -> None:
    server, _, built = site
    pages = ["", "d/models", f"d/models/c/{built.models[-1]}", "d/models/diff",
             "d/models/stages", "d/models/policy", "d/models/audit", "d/models/trend",
             "d/data", "d/hostile", f"d/hostile/c/{built.hostile}", "static/kirin.css"]
    for page in pages:
        answer = request(server.url + page)
        assert answer.status == 200, (page, answer.text[:500])
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["server-timing"].startswith("app;dur=")
    assert "script-src" not in CSP and "default-src 'none'" in CSP  # no script at all


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("page", ["", "d/models", "static/kirin.css", "no/such/page"])
def test_anything_but_get_and_head_is_refused(site: tuple[UiServer, Catalog, Built],
                                              method: str, page: str) -> None:
    server, catalog, _ = site
    before = catalog.get_dataset("models").head
    answer = request(server.url + page, method=method, data=b"x" if method != "OPTIONS" else None)
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert catalog.get_dataset("models").head == before


def test_head_answers_without_a_body(site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, _ = site
    answer = request(server.url + "d/models", method="HEAD")
    assert answer.status == 200 and answer.body == b""


def test_a_foreign_host_name_is_refused_on_loopback(site: tuple[UiServer, Catalog, Built]
                                                    ) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 cannot read the registry."""
    server, _, _ = site
    assert request(server.url, headers={"Host": "evil.example"}).status == 400
    assert request(server.url, headers={"Host": f"localhost:{server.port}"}).status == 200


def test_downloads_are_the_verified_bytes_of_a_file_of_that_commit(
        site: tuple[UiServer, Catalog, Built]) -> None:
    server, catalog, built = site
    head = built.models[-1]
    for name, content in built.contents.items():
        answer = request(server.url + link("d", "models", "c", head, "download",
                                           file=name).lstrip("/"))
        assert answer.status == 200
        assert answer.body == content
        assert answer.headers["x-kirin-sha256"] == sha256(content)
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment;")
    # an older commit serves its own snapshot's content
    first = catalog.get_dataset("models").resolve(built.models[0])
    answer = request(server.url + f"d/models/c/{built.models[0]}/download?file=model.bin")
    assert sha256(answer.body) == first.files["model.bin"].hash


@pytest.mark.parametrize("name", ["../dataset.json", "/etc/passwd", "../../../../etc/passwd",
                                  "config", "config/", "model.bin/..", "MODEL.BIN", ""])
def test_a_download_names_a_file_of_the_snapshot_never_a_path(
        site: tuple[UiServer, Catalog, Built], name: str) -> None:
    server, _, built = site
    answer = request(server.url + f"d/models/c/{built.models[-1]}/download?file={quote(name)}")
    assert answer.status == 404
    assert b"root:" not in answer.body


def test_a_damaged_blob_is_never_served(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "registry")
    built = build_registry(catalog, tmp_path / "work")
    digest = sha256(built.contents["model.bin"])
    blob = tmp_path / "registry" / "data" / digest[:2] / digest[2:]
    blob.write_bytes(b"tampered" + blob.read_bytes()[8:])
    with serve(catalog) as server:
        answer = request(server.url + f"d/models/c/{built.models[-1]}/download?file=model.bin")
    assert answer.status == 502
    assert b"tampered" not in answer.body and "model.bin" in answer.text


def test_user_strings_reach_the_html_escaped(site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, built = site
    pages = [request(server.url + p).text for p in
             ("d/hostile", f"d/hostile/c/{built.hostile}", "d/hostile/trend?metric=score",
              f"d/hostile/diff?to={built.hostile}", "")]
    for html in pages:
        markup = Markup()
        markup.feed(html)
        assert not {"script", "img", "iframe", "object", "embed"} & markup.tags
        assert not [a for a in markup.attributes if a.startswith("on")]
        assert all(href.startswith("/") for href in markup.links)  # never a scheme
    commit_page = pages[1]
    for raw in (HOSTILE_MESSAGE, HOSTILE_TAG, HOSTILE_KEY, HOSTILE_FILE):
        assert raw not in commit_page
        assert raw.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") \
            in commit_page


def test_history_pages_and_filters(site: tuple[UiServer, Catalog, Built]) -> None:
    server, catalog, built = site
    models = catalog.get_dataset("models")

    def rows(query: str) -> list[str]:
        html = request(server.url + "d/models" + query).text
        return re.findall(r'class="hash" href="/d/models/c/([0-9a-f]{64})"', html)

    assert rows("") == list(reversed(built.models))
    assert rows("?size=3") == list(reversed(built.models))[:3]
    assert rows("?size=3&page=3") == list(reversed(built.models))[6:]
    where = "metrics.accuracy > 0.7 and run != 5"
    assert rows("?where=" + quote(where)) == [c.hash for c in models.find_commits(where=where)]
    assert rows("?tag=dev") == [c.hash for c in models.find_commits(tags=["dev"])]
    assert rows("?tag=dev&tag=staging") == []
    bad = request(server.url + "d/models?where=" + quote("accuracy >"))
    assert bad.status == 400 and "where-error" in bad.text


def test_metric_columns_show_values_by_path(site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, _ = site
    html = request(server.url + "d/models?col=" + quote("metrics.f1, run")).text
    assert '<th class="n">metrics.f1</th>' in html and '<th class="n">run</th>' in html
    assert '<td class="n">0.7</td>' in html  # run 5's f1


def test_trend_has_one_point_per_commit_holding_the_metric(
        site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, built = site
    html = request(server.url + "d/models/trend?metric=metrics.accuracy").text
    points = re.findall(r'<a href="/d/models/c/([0-9a-f]{64})"><circle class="point"', html)
    assert points == built.models  # oldest first, the promotion included (same metadata)
    assert html.count('fill="#d55e00"') >= 1  # a stage-coloured point (dev, the first stage)
    missing = request(server.url + "d/models/trend?metric=no.such.path").text
    assert "No commit holds a number at no.such.path" in missing


def test_stages_policy_and_audit_pages(site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, built = site
    stages = request(server.url + "d/models/stages").text
    holders = dict(re.findall(r'<span class="stage">(\w+)</span></td>\s*<td><a class="hash" '
                              r'href="/d/models/c/([0-9a-f]{64})"', stages))
    assert holders == {"dev": built.models[5], "staging": built.models[4],
                       "production": built.models[6]}
    policy = request(server.url + "d/models/policy").text
    assert "Raise the production bar" in policy
    assert '<span class="del">-    when: metrics.accuracy &gt;= 0.8</span>' in policy
    assert '<span class="add">+    when: metrics.accuracy &gt;= 0.85</span>' in policy
    audit = request(server.url + "d/models/audit").text
    assert '<span id="audit-failures">1</span>' in audit and built.models[6] in audit


def test_unknown_datasets_commits_and_pages_are_404(site: tuple[UiServer, Catalog, Built]
                                                    ) -> None:
    server, _, _ = site
    for page in ("d/nope", "d/..%2F..", "d/models/c/ffffffff", "d/models/c/nope/download",
                 "nowhere", "static/../app.py"):
        assert request(server.url + page).status == 404, page


def test_the_app_works_on_every_storage_backend(registry_root: RegistryRoot,
                                                tmp_path: Path) -> None:
    """Catalog, commit page and a verified download, on local disk and each object store."""
    catalog = registry_root.catalog()
    built = build_registry(catalog, tmp_path / "work")
    with serve(catalog) as server:
        home = request(server.url).text
        assert all(f'href="/d/{n}"' in home for n in ("models", "data", "hostile"))
        head = built.models[-1]
        assert request(server.url + f"d/models/c/{head}").status == 200
        answer = request(server.url + f"d/models/c/{head}/download?file=model.bin")
        assert answer.body == built.contents["model.bin"]
    if "://" in registry_root.url:
        assert registry_root.url.split("://")[0] in home  # the root shown is this backend's


def test_head_of_a_download_reads_nothing(site: tuple[UiServer, Catalog, Built]) -> None:
    server, _, built = site
    answer = request(server.url + f"d/models/c/{built.models[-1]}/download?file=model.bin",
                     method="HEAD")
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["content-length"] == str(len(built.contents["model.bin"]))
    assert answer.headers["x-kirin-sha256"] == sha256(built.contents["model.bin"])


def test_ipv6_loopback_is_served_and_checked(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "registry")
    catalog.create_dataset("models")
    try:
        server = UiServer(catalog, host="::1", port=0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert request(server.url).status == 200
        assert request(server.url, headers={"Host": "evil.example:80"}).status == 400


def test_the_commit_page_shows_its_links(tmp_path: Path) -> None:
    """Each link with its role, a link to the linked commit's page, and what it is now."""
    catalog = Catalog(tmp_path / "registry")
    data = catalog.get_dataset("reviews")
    digest = data.commit("Raw reviews", tags=["approved"],
                         add_files={"r.csv": str(write(tmp_path, "r.csv", b"a"))})
    elsewhere = Catalog(tmp_path / "elsewhere").get_dataset("labels")
    elsewhere.commit("Labels", add_files={"l.csv": str(write(tmp_path, "l.csv", b"l"))})
    model = catalog.get_dataset("scorer")
    trained = model.commit("Trained", add_files={"m.bin": str(write(tmp_path, "m", b"w"))},
                           lineage={"training": "reviews@approved",
                                    "labels": f"{tmp_path / 'elsewhere'}#labels@"
                                              f"{elsewhere.history()[0].hash}"},
                           code="9d1e4c2", run="run-<5>")
    data.withdraw("approved", "Withdrawn: leakage")
    with serve(catalog) as server:
        page = request(server.url + f"d/scorer/c/{trained}").text
    assert f'href="/d/reviews/c/{digest}"' in page
    assert "training" in page and "withdrawn from approved" in page
    assert "9d1e4c2" in page and "run-&lt;5&gt;" in page
    assert "in another registry root, not opened here" in page  # a server opens no stored URL
