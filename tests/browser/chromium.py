"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium
driven by Playwright for Python (never a browser Playwright downloads), with
the flags this machine needs, plus the small line protocol every browser
script speaks with the Rust test that runs it.

`launch()` and `serve()` (a tiny page server for another origin) are the
launcher for scripts that drive pages of their own (the origins test), so
every browser test shares one launcher.

A script prints one JSON object per line on stdout (`{"step": ...}` as it
goes; its last line `{"ok": true, ...}` or `{"ok": false, "error": ...}`)
and may wait for JSON lines on stdin (`wait_for`), so the Rust side can
break things (stop coturn, send hostile frames) between steps.
"""

import contextlib
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import traceback
from contextlib import contextmanager

CHROMIUM = os.environ.get("WIMZ_CHROMIUM", "/usr/bin/chromium")

# --headless etc. are Playwright's; these keep Chromium off the network it
# does not have here (no background fetches, no QUIC, no sync) and let
# WebRTC use loopback addresses, which it otherwise ignores.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    # The video arrives without a user gesture; let it play.
    "--autoplay-policy=no-user-gesture-required",
]


@contextmanager
def browser_page(viewport=(1280, 800)):
    """A fresh Chromium (new empty profile) and one page; closed on exit.
    Console messages and page errors are echoed to stderr for the test log."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="wimz-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.on("console", lambda m: print(f"[console.{m.type}] {m.text}", file=sys.stderr, flush=True))
                page.on("pageerror", lambda e: print(f"[pageerror] {e}", file=sys.stderr, flush=True))
                yield page
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def launch():
    """Yields (playwright, browser) with the same flags (Playwright makes a
    fresh profile per launch); closes both. For scripts that want several
    pages or contexts of their own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield pw, browser
        finally:
            browser.close()


@contextlib.contextmanager
def serve(pages, port):
    """Serves `pages` ({path: bytes}, as text/html) on 127.0.0.1:`port`;
    yields the origin, e.g. "http://127.0.0.1:port" (a page origin other
    than the relay's)."""

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


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def wait_for(do: str) -> dict:
    """Blocks until the Rust side writes `{"do": <do>, ...}` on stdin."""
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("do") == do:
            return msg
    raise RuntimeError(f"stdin closed while waiting for {do!r}")


def screenshot(page, name: str, testid: str = None) -> str:
    """Saves `console-<name>.png` into $WIMZ_SCREENSHOT_DIR (the Rust test
    chooses: a scratch folder, or docs/screenshots when asked to update):
    the element `[data-testid=testid]` if given, else the whole page."""
    folder = os.environ.get("WIMZ_SCREENSHOT_DIR") or tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"console-{name}.png")
    if testid:
        page.locator(f'[data-testid="{testid}"]').first.screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=True)
    emit(step="screenshot", path=path)
    return path


def run(main) -> None:
    """Runs `main()` (which returns a dict) and prints the final line."""
    try:
        result = main() or {}
        emit(ok=True, **result)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        emit(ok=False, error=f"{type(e).__name__}: {e}")
        sys.exit(1)
