"""The console end to end against a simulated WIM-Z (`wimz-relay
simulate`): sign in, see the robot go online in the list, its live events
arrive in order on its page (mission progress, alerts), a command's result
shows, the REST-proxy views render. Screenshots of every page.

usage: console.py BASE_URL USER PASSWORD DEVICE_ID

Steps: signed_in; list_offline (the Rust side then starts the robot, with
no word on stdin: the page must notice by itself); online; robot_page;
events {seqs}; command {key, state, text} x3; rest {view, rows} per tab; last line
{"ok": true}.
"""

import sys

from chromium import browser_page, emit, run, screenshot
from console_page import SOON_MS, attr, open_rest_view, open_robot, run_command, sign_in, text, tid, wait_until

SEQS_JS = "els => els.map(e => Number(e.dataset.seq))"


def main():
    base, user, password, device_id = sys.argv[1:5]
    row = f'{tid("robot-row")}[data-device-id="{device_id}"]'
    with browser_page() as page:
        sign_in(page, base, user, password, shot=lambda: screenshot(page, "signin"))
        page.wait_for_selector(f'{row} {tid("robot-online")}[data-online="false"]', timeout=SOON_MS)
        emit(step="list_offline")
        # The robot comes online: the row turns live without a reload.
        page.wait_for_selector(f'{row} {tid("robot-online")}[data-online="true"]', timeout=SOON_MS)
        wait_until(page, "(row) => { const r = document.querySelector(row + ' [data-testid=\"robot-mission\"]'); return !!r && r.textContent.includes('/'); }", row)
        emit(step="online", battery=page.locator(f'{row} {tid("robot-battery")}').inner_text(),
             mission=page.locator(f'{row} {tid("robot-mission")}').inner_text())
        screenshot(page, "robots")

        open_robot(page, device_id)
        page.wait_for_selector(f'{tid("robot-status")}[data-online="true"]', timeout=SOON_MS)
        # Live events: at least 12 arrive while we watch, newest first.
        wait_until(page, "() => document.querySelectorAll('[data-testid=\"event-item\"]').length >= 12", timeout_ms=SOON_MS * 2)
        seqs = page.locator(tid("event-item")).evaluate_all(SEQS_JS)
        emit(step="events", seqs=seqs, progress=attr(page, "mission-progress", "data-stage"),
             total=attr(page, "mission-progress", "data-total"), label=text(page, "mission-label"))

        # Commands and their results: stop whatever mission runs, start one,
        # give a treat.
        for key in ("stop-mission", "start-mission", "dispense-treat"):
            emit(step="command", key=key, **run_command(page, key))
        screenshot(page, "robot")

        # REST-proxy views.
        for view in ("missions", "programs", "reports"):
            shown = open_rest_view(page, view)
            emit(step="rest", view=view, rows=page.locator(tid("rest-row")).count(),
                 text=text(page, "rest-view")[:200], **shown)
            screenshot(page, f"rest-{view}", "rest-card")
        return {}


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run(main)
