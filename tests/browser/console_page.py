"""Steps every console script shares: open the console the relay serves,
sign in, open a robot's page; and reading what the page shows through the
`data-testid` hooks of console/README.md."""

from chromium import emit

# Hang guard for anything the page should show soon (ms). Not a speed bound.
SOON_MS = 30_000


def wait_until(page, js: str, arg=None, timeout_ms: int = SOON_MS):
    """Polls `page.evaluate(js, arg)` until it is truthy; returns it. Not
    `page.wait_for_function`: that compiles its predicate in the page with
    eval, which the console's Content-Security-Policy (no 'unsafe-eval')
    rightly refuses; `evaluate` runs through the DevTools protocol."""
    for _ in range(max(timeout_ms // 200, 1)):
        value = page.evaluate(js, arg)
        if value:
            return value
        page.wait_for_timeout(200)
    raise TimeoutError(f"not within {timeout_ms} ms: {js}")


def tid(name: str) -> str:
    return f'[data-testid="{name}"]'


def sign_in(page, base: str, user: str, password: str, shot=None) -> None:
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


def run_command(page, key: str) -> dict:
    """Clicks `cmd-<key>` and waits for its result: `{state, text}`."""
    result = tid(f"cmd-result-{key}")
    page.click(tid(f"cmd-{key}"))
    page.wait_for_selector(f'{result}:not([data-state="idle"]):not([data-state="pending"])', timeout=SOON_MS)
    return {"state": page.locator(result).get_attribute("data-state"), "text": text(page, f"cmd-result-{key}")}


def open_rest_view(page, view: str) -> dict:
    """Clicks the `view` REST tab and waits for its answer: `{state, status}`."""
    page.click(tid(f"rest-tab-{view}"))
    sel = f'{tid("rest-view")}[data-view="{view}"]'
    page.wait_for_selector(f'{sel}[data-state="ok"], {sel}[data-state="error"]', timeout=SOON_MS)
    return {"state": attr(page, "rest-view", "data-state"), "status": attr(page, "rest-view", "data-status")}
