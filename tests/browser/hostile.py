"""Bad input stays safe in the console: a robot (the Rust test) puts markup
into everything it controls — the device name, event names and data,
alerts, mission progress, a command's result, a REST-proxy answer — and the
page must show those strings as text: no element is made from them and no
script runs (each payload would set `window.__pwned`).

usage: hostile.py BASE_URL USER PASSWORD DEVICE_ID PAYLOAD NAME
  (NAME: the device's name, a shorter payload: names are at most 100 characters)

Steps: signed_in (the list, with the hostile name, is shown), robot_page;
then, after stdin `{"do": "sent"}` (the robot's events are out), events,
command, rest; last line {"ok": true, "checks": {...}}.
"""

import sys

from chromium import browser_page, emit, run, screenshot, wait_for
from console_page import SOON_MS, open_rest_view, open_robot, run_command, sign_in, tid

# What markup would have made, anywhere in the document (the console itself
# has no <img>, <svg>, <iframe>, inline <script> or on* attribute).
DOM_CHECK_JS = r"""
() => {
  const made = document.querySelectorAll('img, svg, iframe, object, embed, video source, script:not([src]), a[href^="javascript"]');
  const handlers = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) if (a.name.startsWith('on')) handlers.push(`${el.tagName}[${a.name}]`);
  }
  return {
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    made: [...made].map((e) => e.outerHTML.slice(0, 80)),
    handlers,
  };
}
"""


def check_dom(page, where: str) -> dict:
    result = page.evaluate(DOM_CHECK_JS)
    if result["pwned"] is not None or result["made"] or result["handlers"]:
        raise AssertionError(f"markup took effect ({where}): {result}")
    return result


def shows(page, testid: str, payload: str) -> int:
    """How many `testid` elements show `payload` verbatim as text."""
    return page.evaluate(
        "([sel, p]) => [...document.querySelectorAll(sel)].filter((e) => e.textContent.includes(p)).length",
        [tid(testid), payload],
    )


def main():
    base, user, password, device_id, payload, name = sys.argv[1:7]
    checks = {}
    with browser_page() as page:
        page.add_init_script("window.__pwned = undefined;")
        sign_in(page, base, user, password)
        page.wait_for_selector(f'{tid("robot-row")}[data-device-id="{device_id}"]', timeout=SOON_MS)
        checks["list_name"] = shows(page, "robot-name", name)
        check_dom(page, "robot list")
        open_robot(page, device_id)
        page.wait_for_selector(f'{tid("robot-title")}:has-text("onerror")', timeout=SOON_MS)
        checks["title"] = shows(page, "robot-title", name)

        wait_for("sent")
        # The last event the robot sent is named `done`.
        page.wait_for_selector(f'{tid("event-item")}[data-event="done"]', timeout=SOON_MS)
        page.wait_for_selector(tid("alert-item"), timeout=SOON_MS)
        checks["event_data"] = shows(page, "event-data", payload)
        checks["event_names"] = page.locator(tid("event-item")).evaluate_all(
            "(els, p) => els.filter((e) => e.dataset.event === p).length", payload)
        checks["alerts"] = shows(page, "alert-text", payload)
        checks["mission"] = shows(page, "mission-label", payload)
        check_dom(page, "events")
        emit(step="events", **checks)

        command = run_command(page, "dispense-treat")
        checks["command_result"] = shows(page, "cmd-result-dispense-treat", payload)
        check_dom(page, "command result")
        emit(step="command", state=command["state"])

        rest = open_rest_view(page, "missions")
        checks["rest"] = shows(page, "rest-view", payload)
        check_dom(page, "REST view")
        emit(step="rest", state=rest["state"])
        screenshot(page, "hostile")
        return {"checks": checks}


if __name__ == "__main__":
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run(main)
