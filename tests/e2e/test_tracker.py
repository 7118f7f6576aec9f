"""The tracker script (/p.js) and Plausible's own client (the npm package plausible-tracker,
fetched from the registry in the test's setup) in Debian's headless Chromium, over pages this
test serves, against a real collector, broker and lander: exactly the raw events the pages
send land, with the right url, referrer, screen width, name and properties."""

from __future__ import annotations

import functools
import http.server
import os
import tarfile
import threading

import pytest

from infra.engines import npm_tarball, verify
from tests.harness import free_port, read_landed, wait_until

pytestmark = pytest.mark.slow

CLIENT = "plausible-tracker@0.3.9"
CLIENT_PATH = "plausible-tracker/-/plausible-tracker-0.3.9.tgz"
CLIENT_SHA256 = "29774a758f1753c3341bc38a29db79111ac762b1ab88de0a64d85ea022cc0ef7"

QUEUE = "window.pixel = window.pixel || function () { (window.pixel.q = window.pixel.q || []).push(arguments) };"


class Pages(http.server.SimpleHTTPRequestHandler):
    """Static files; an import without its extension (the npm package's ES modules import
    './lib/tracker', as bundlers allow) is served the .js file, as a bundler's dev server does."""

    def translate_path(self, path: str) -> str:
        found = super().translate_path(path)
        return found + ".js" if not os.path.exists(found) and os.path.exists(found + ".js") else found

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def pages(tmp_path, settings):
    """A web server on its own port for the test's pages (and the npm client's files)."""
    root = tmp_path / "site"
    root.mkdir()
    collector = f"http://{settings.collector_host}:{settings.collector_port}"
    (root / "from.html").write_text('<!doctype html><a id="go" href="/page.html">go</a>')
    (root / "page.html").write_text(
        f"""<!doctype html><html><head>
<script>{QUEUE} pixel("Signup", {{props: {{plan: "pro"}}}});</script>
<script defer data-site="shop.example" data-local data-outbound-links data-file-downloads
  src="{collector}/p.js"></script>
</head><body><a id="out" href="https://elsewhere.example/x">out</a>
<a id="pdf" href="/files/report.pdf" target="_blank">report</a></body></html>"""
    )
    # Without data-local the script ignores a page on localhost.
    (root / "quiet.html").write_text(
        f'<!doctype html><script data-site="quiet.example" src="{collector}/p.js"></script>'
    )
    tarball = npm_tarball(CLIENT, CLIENT_PATH, tmp_path)
    verify(tarball, CLIENT_SHA256)
    with tarfile.open(tarball) as tar:
        tar.extractall(root / "npm", filter="data")
    (root / "client.html").write_text(
        f"""<!doctype html><script type="module">
import Plausible from "/npm/package/build/module/index.js";
const plausible = Plausible({{domain: "client.example", apiHost: "{collector}", trackLocalhost: true}});
plausible.trackPageview();
plausible.trackEvent("Download", {{props: {{format: "pdf"}}}});
document.body.dataset.sent = "yes";
</script>"""
    )
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Pages, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def landed_for(settings, site: str) -> list[dict]:
    return sorted((e for e in read_landed(settings.data_dir) if e["site"] == site), key=lambda e: e["ts"])


def test_the_script_and_plausibles_client_send_exactly_their_events(settings, broker, services, pages, browser):
    services("lander")
    services("collector")
    browser.get(f"{pages}/quiet.html")
    browser.get(f"{pages}/from.html")
    browser.find_element("id", "go").click()  # document.referrer: from.html
    wait_until(lambda: browser.execute_script("return !window.pixel.q"), 20, message="the script loaded")
    width = browser.execute_script("return window.innerWidth")
    browser.execute_script("history.pushState({}, '', '/a'); history.pushState({}, '', '/b')")
    browser.execute_script("history.pushState({}, '', '/b')")  # the same path again: no new page
    browser.find_element("id", "pdf").click()  # a file download (in a new tab: this page stays)
    browser.switch_to.window(browser.window_handles[0])
    browser.find_element("id", "out").click()  # an outbound link: an event, then the navigation

    wait_until(lambda: len(landed_for(settings, "shop.example")) >= 6, 60, message="the script's 6 events landed")
    browser.get(f"{pages}/client.html")
    wait_until(lambda: len(landed_for(settings, "client.example")) >= 2, 60, message="the client's 2 events landed")
    wait_until(lambda: browser.execute_script("return document.body.dataset.sent") == "yes", 5)

    events = landed_for(settings, "shop.example")
    seen = sorted((e["event"], e["url"], e.get("props", "")) for e in events)
    assert seen == sorted(
        [
            ("pageview", f"{pages}/page.html", ""),
            ("Signup", f"{pages}/page.html", '{"plan":"pro"}'),  # called before the script loaded
            ("pageview", f"{pages}/a", ""),
            ("pageview", f"{pages}/b", ""),
            ("File Download", f"{pages}/b", f'{{"url":"{pages}/files/report.pdf"}}'),
            ("Outbound Link: Click", f"{pages}/b", '{"url":"https://elsewhere.example/x"}'),
        ]
    )
    assert all(e["referrer"] == f"{pages}/from.html" and e["w"] == width and e["src"] == "plausible" for e in events)

    client = landed_for(settings, "client.example")
    assert sorted((e["event"], e["url"], e.get("props", "")) for e in client) == [
        ("Download", f"{pages}/client.html", '{"format":"pdf"}'),
        ("pageview", f"{pages}/client.html", ""),
    ]
    assert all(e["w"] == width and e["referrer"] == "" for e in client)  # typed in: no referrer
    assert landed_for(settings, "quiet.example") == []  # localhost, and no data-local
