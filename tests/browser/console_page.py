"""Steps every console script shares: open the console the relay serves,
sign in, open a robot's page; and reading what the page shows through the
`data-testid` hooks of console/README.md."""

import os

from chromium import emit

# Hang guard for anything the page should show soon (ms). Not a speed bound.
SOON_MS = 30_000


def tid(name: str) -> str:
    return f'[data-testid="{name}"]'


def serve_console_from_disk(page, base: str) -> None:
    """Only while the relay does not serve /console/ yet (WIMZ_CONSOLE_FROM
    set to a checkout): the same files from disk, on the relay's origin."""
    root = os.environ.get("WIMZ_CONSOLE_FROM")
    if not root:
        return
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

    def handle(route):
        path = route.request.url[len(base):].split("?")[0].split("#")[0]
        if path.startswith("/console/sdk/"):
            file = os.path.join(root, "clients/js", path[len("/console/sdk/"):])
        else:
            rest = path[len("/console/"):] or "index.html"
            file = os.path.join(root, "console", rest)
        if not os.path.isfile(file):
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, path=file, content_type=types.get(os.path.splitext(file)[1], "text/plain"))

    page.route(f"{base}/console/**", handle)


def sign_in(page, base: str, user: str, password: str, shot=None) -> None:
    serve_console_from_disk(page, base)
    page.goto(f"{base}/console/")
    page.wait_for_selector(tid("signin-form"), timeout=SOON_MS)
    page.fill(tid("signin-username"), user)
    page.fill(tid("signin-password"), password)
    if shot:
        shot()
    page.click(tid("signin-submit"))
    page.wait_for_selector(tid("robot-list"), timeout=SOON_MS)
    page.wait_for_selector(f'{tid("conn-state")}[data-state="connected"]', timeout=SOON_MS)
    emit(step="signed_in")


def open_robot(page, device_id: str) -> None:
    page.click(f'{tid("robot-row")}[data-device-id="{device_id}"] {tid("robot-open")}')
    page.wait_for_selector(f'{tid("robot-page")}[data-device-id="{device_id}"]', timeout=SOON_MS)
    page.wait_for_selector(f'{tid("stream-state")}:has-text("live")', timeout=SOON_MS)
    emit(step="robot_page")


def text(page, name: str) -> str:
    return page.locator(tid(name)).first.inner_text()


def attr(page, name: str, attribute: str):
    return page.locator(tid(name)).first.get_attribute(attribute)
