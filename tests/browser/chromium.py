"""Headless Debian Chromium for browser tests, driven by Playwright.

Reusable by every browser script here:

    from chromium import launch, serve

    with serve({"/": b"<html>...</html>"}, port) as origin, launch() as (pw, browser):
        page = browser.new_page()
        page.goto(origin + "/")

`launch()` starts /usr/bin/chromium (Playwright's own browser downloads are
never used) with the flags known to work on these machines: no sandbox (the
tests run as root), no GPU, and no background networking, component
updates, sync or QUIC, whose connections the closed network would refuse.
Playwright gives each launch a fresh empty profile. `serve()` is a tiny HTTP
server on 127.0.0.1 serving fixed pages: a page origin other than the
relay's.
"""

import contextlib
import http.server
import os
import threading

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("WIMZ_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def launch():
    """Yields (playwright, browser); closes both."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield pw, browser
        finally:
            browser.close()


@contextlib.contextmanager
def serve(pages, port):
    """Serves `pages` ({path: bytes}, as text/html) on 127.0.0.1:`port`;
    yields the origin, e.g. "http://127.0.0.1:port"."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
