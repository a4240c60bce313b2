"""A page served from another origin than the relay's calls login and
GET /api/devices with fetch and opens /ws/app, in headless Chromium, and
shows what happened; prints the outcome as one JSON line and saves a
screenshot. Driven by tests/api/browser.rs, which decides whether the
page's origin is in the relay's server.allowed_origins.

usage: origins.py --relay URL --page-port N --username U --password P
                  --token T --device D --screenshot PATH
"""

import argparse
import json

from chromium import launch, serve

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>WIM-Z relay from another origin</title>
<style>
 body { font-family: sans-serif; margin: 24px; }
 table { border-collapse: collapse; margin-top: 12px; }
 td, th { border: 1px solid #888; padding: 6px 12px; text-align: left; }
 .ok { background: #c8f0c8; } .refused { background: #f6c6c6; }
</style></head>
<body>
<h1>WIM-Z relay from another origin</h1>
<p id="where">not run yet</p>
<table><thead><tr><th>call</th><th>outcome</th></tr></thead><tbody id="rows"></tbody></table>
<script>
function row(call, ok, text) {
  const tr = document.createElement('tr');
  tr.className = ok ? 'ok' : 'refused';
  tr.innerHTML = '<td></td><td></td>';
  tr.children[0].textContent = call;
  tr.children[1].textContent = text;
  document.getElementById('rows').appendChild(tr);
}
async function run(relay, username, password, token, device) {
  document.getElementById('where').textContent =
    'page ' + location.origin + '  \u2192  relay ' + relay;
  const out = {};
  try {
    const r = await fetch(relay + '/api/auth/login', {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({username, password})});
    const j = await r.json();
    out.login = {status: r.status, token: typeof j.access_token === 'string'};
    row('POST /api/auth/login', r.ok, 'HTTP ' + r.status + (out.login.token ? ', token received' : ''));
  } catch (e) {
    out.login = {error: String(e)};
    row('POST /api/auth/login', false, String(e));
  }
  try {
    const r = await fetch(relay + '/api/devices', {headers: {Authorization: 'Bearer ' + token}});
    const j = await r.json();
    out.devices = {status: r.status, ids: j.map(d => d.device_id)};
    row('GET /api/devices', r.ok, 'HTTP ' + r.status + ': ' + out.devices.ids.join(', '));
  } catch (e) {
    out.devices = {error: String(e)};
    row('GET /api/devices', false, String(e));
  }
  out.ws = await new Promise(resolve => {
    const url = relay.replace(/^http/, 'ws') + '/ws/app?token=' + encodeURIComponent(token) +
      '&device_id=' + encodeURIComponent(device);
    const ws = new WebSocket(url);
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = m => {
      const v = JSON.parse(m.data);
      if (v.type === 'subscribed') {
        resolve({opened, first: v.type, device: v.device_id});
        ws.close(1000);
      }
    };
    ws.onclose = c => resolve({opened, closed: c.code});
  });
  row('WebSocket /ws/app', !!out.ws.first,
      out.ws.first ? 'open, ' + out.ws.first + ' to ' + out.ws.device
                   : (out.ws.opened ? 'closed ' : 'refused, close ') + out.ws.closed);
  return out;
}
</script>
</body></html>
"""


def main():
    ap = argparse.ArgumentParser()
    for arg in ("--relay", "--username", "--password", "--token", "--device", "--screenshot"):
        ap.add_argument(arg, required=True)
    ap.add_argument("--page-port", type=int, required=True)
    a = ap.parse_args()
    with serve({"/": PAGE}, a.page_port) as origin, launch() as (_pw, browser):
        page = browser.new_page(viewport={"width": 900, "height": 360})
        page.goto(origin + "/")
        out = page.evaluate(
            "([relay, u, p, t, d]) => run(relay, u, p, t, d)",
            [a.relay, a.username, a.password, a.token, a.device],
        )
        out["page_origin"] = page.evaluate("location.origin")
        page.screenshot(path=a.screenshot, full_page=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
