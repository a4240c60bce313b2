"""The console's video panel against the video robot, relay-only through
coturn: frames decoded in the <video>, the connection type shown (and, the
Rust side checks, reported to the relay); then the Rust side breaks the path
(stops coturn) and this script watches the ICE restart recover (`recover`:
coturn comes back) or the session close with a reason (`fail`: it does not).

usage: video.py BASE_URL USER PASSWORD DEVICE_ID recover|fail

Steps on stdout: signed_in, robot_page, playing {framesDecoded, videoWidth,
connectionType, ...}, then (after stdin `{"do":"broken"}`) disconnected,
then (after `{"do":"continue"}`) recovered {restarts, framesDecoded} or
closed {reason}; last line {"ok": true, ...}.
"""

import sys

from chromium import browser_page, emit, run, screenshot, wait_for
from console_page import SOON_MS, attr, open_robot, sign_in, text, tid, wait_until

# What the page's own VideoSession reads from getStats() and the <video>.
MEDIA_JS = r"""
async () => {
  const s = window.wimzConsole.video;
  const v = document.querySelector('[data-testid="video"]');
  let framesDecoded = 0;
  if (s && s.pc) {
    const report = await s.pc.getStats();
    report.forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'video') framesDecoded = x.framesDecoded || 0; });
  }
  return {
    framesDecoded, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    ice: s && s.pc ? s.pc.iceConnectionState : null,
    state: s ? s.state : null, restarts: s ? s.iceRestarts : 0,
  };
}
"""


def media(page) -> dict:
    return page.evaluate(MEDIA_JS)


def wait_frames(page, more_than: int) -> dict:
    """Until the current connection has decoded more than `more_than`
    frames and the <video> has a size (hang guard SOON_MS)."""
    for _ in range(SOON_MS // 250):
        m = media(page)
        if m["framesDecoded"] > more_than and m["videoWidth"] > 0:
            return m
        page.wait_for_timeout(250)
    raise TimeoutError(f"frames not decoded: {m}")


def main():
    base, user, password, device_id, mode = sys.argv[1:6]
    with browser_page() as page:
        sign_in(page, base, user, password)
        open_robot(page, device_id)
        page.wait_for_selector(f'{tid("robot-status")}[data-online="true"]', timeout=SOON_MS)
        if mode == "fail":
            # Short restart timers so that giving up takes seconds, not a minute.
            page.evaluate("window.wimzConsole.videoOptions = {disconnectedGraceMs: 1000, restartTimeoutMs: 4000, maxIceRestarts: 2}")
        page.check(tid("video-relay-only"))
        page.click(tid("video-start"))
        page.wait_for_selector(f'{tid("video-state")}[data-state="connected"]', timeout=SOON_MS)
        m = wait_frames(page, 15)
        page.wait_for_selector(f'{tid("video-connection-type")}[data-type="relay"]', timeout=SOON_MS)
        wait_until(page, "() => document.querySelector('[data-testid=\"video-fps\"]').textContent !== '—'")
        emit(step="playing", connectionType=attr(page, "video-connection-type", "data-type"),
             connectionText=text(page, "video-connection-type"), rtt=text(page, "video-rtt"),
             fps=text(page, "video-fps"), **m)
        if mode == "recover":
            screenshot(page, "video", "video-card")

        wait_for("broken")
        wait_until(page, "() => ['disconnected', 'failed'].includes(window.wimzConsole.video.pc.iceConnectionState)")
        emit(step="disconnected", **media(page))

        wait_for("continue")
        if mode == "recover":
            page.wait_for_selector(f'{tid("video-close-reason")}:has-text("recovered")', timeout=SOON_MS * 2)
            page.wait_for_selector(f'{tid("video-state")}[data-state="connected"]', timeout=SOON_MS)
            m = wait_frames(page, 15)
            screenshot(page, "video-recovered", "video-card")
            emit(step="recovered", shown=text(page, "video-close-reason"), restartsShown=text(page, "video-restarts"),
                 connectionType=attr(page, "video-connection-type", "data-type"), **m)
            page.click(tid("video-stop"))
            page.wait_for_selector(f'{tid("video-state")}[data-state="closed"]', timeout=SOON_MS)
            return {"reason": attr(page, "video-close-reason", "data-reason")}
        page.wait_for_selector(f'{tid("video-state")}[data-state="closed"]', timeout=SOON_MS * 2)
        reason = attr(page, "video-close-reason", "data-reason")
        shown = text(page, "video-close-reason")
        screenshot(page, "video-closed", "video-card")
        emit(step="closed", reason=reason, shown=shown, **media(page))
        return {"reason": reason}


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[5] not in ("recover", "fail"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run(main)
