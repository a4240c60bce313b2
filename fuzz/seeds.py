#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the protocol's
examples and the relay's tests. The tokens and signatures are made with the
keys the targets use (src/jwt.rs, src/credentials.rs), so the fuzzer starts
from inputs that pass every check and mutates from there.
Run from anywhere: python3 fuzz/seeds.py"""
import base64, hashlib, hmac, json, os, pathlib

ROOT = pathlib.Path(__file__).resolve().parent
KEY_A = b"fuzz-key-A-0123456789abcdef-0123456789"
DEVICE_SECRET = b"fuzz-device-secret"
NOW = 4_000_000_000


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(key, claims, header='{"typ":"JWT","alg":"HS256"}'):
    msg = b64(header.encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return msg + "." + b64(hmac.new(key, msg.encode(), hashlib.sha256).digest())


def signature(device, ts):
    return hmac.new(DEVICE_SECRET, f"{device}:{ts}".encode(), hashlib.sha256).hexdigest()


LIVE = token(KEY_A, {"sub": "wimz-001", "role": "device", "exp": 4_000_000_000, "iat": 1_800_000_000})
EXPIRED = token(KEY_A, {"sub": "alice-id", "role": "user", "exp": 1_000_000_060, "iat": 1_000_000_000})
SIG = signature("wimz-001", NOW)

robot = [
    '{"type":"event","event":"mission_progress","data":{"stage":3,"of":5}}',
    '{"type":"event","event":"battery","data":{"level":0.82,"charging":false},"id":"e-1"}',
    '{"type":"event","event":"mode_changed","data":{"mode":"training"},"seq":99,"device_id":"x","epoch":1,"ts_ms":5}',
    '  {"type":"event","event":"x","extra":[1,2,{"a":null}]}  ',
    '{"type":"command_result","reply_to":"relay-a.17","id":"c-17","ok":true,"data":{"started":true}}',
    '{"type":"command_result","reply_to":"a.1","id":{"nested":["\\u0000"]}}',
    '{"type":"webrtc_offer","session_id":"s-1f2e","sdp":"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"}',
    '{"type":"webrtc_ice","session_id":"s-1f2e","candidate":{"candidate":"candidate:1 1 udp 2122260223 10.0.0.2 54321 typ host","sdpMid":"0"}}',
    '{"type":"webrtc_close","session_id":"s-1f2e","reason":"done"}',
    '{"type":"webrtc_stats","session_id":"s-1f2e","connection_type":"relay","rtt_ms":12.5}',
    '{"type":"http_response","request_id":"r-9","status":200,"body":{"missions":["sit","stay"]}}',
    '{"type":"http_response","request_id":"r-9","status":404,"body":null}',
    '{"type":"ping","id":1}',
    '{"type":"pong"}',
    '{"type":"fly","id":"x1"}',
]
app = [
    '{"type":"subscribe","device_id":"wimz-001","since_seq":41,"epoch":7}',
    '{"type":"subscribe","device_id":"wimz-001","id":"s1"}',
    '{"type":"unsubscribe","device_id":"wimz-001"}',
    '{"type":"command","device_id":"wimz-001","id":"c-17","command":"start_mission","data":{"mission":"sit"}}',
    '{"type":"command","device_id":"d1","id":"c","command":"sit","from_user":"admin","reply_to":"x.1"}',
    '{"type":"webrtc_request","device_id":"wimz-001"}',
    '{"type":"webrtc_request","device_id":"wimz-001","session_id":"s-1f2e","ice_restart":true}',
    '{"type":"webrtc_answer","session_id":"s-1f2e","sdp":"v=0\\r\\n"}',
    '{"type":"webrtc_ice","session_id":"s-1f2e","candidate":{"candidate":"","sdpMid":"0"}}',
    '{"type":"webrtc_close","session_id":"s-1f2e"}',
    '{"type":"webrtc_stats","session_id":"s-1f2e","connection_type":"direct","rtt_ms":3}',
    '{"type":"ping"}',
    '{"type":"subscribe","device_id":"../x"}',
]
credentials = [
    f"\nauthorization: Bearer {LIVE}",
    f"\nAuthorization: bearer   {EXPIRED}  ",
    f"\nx-device-id: wimz-001\nx-timestamp: {NOW}\nx-signature: {SIG}",
    f"\nx-device-id: wimz-001\nx-timestamp:  {NOW} \nx-signature: {SIG.upper()}",
    f"device_id=wimz-001&timestamp={NOW}&signature={SIG}",
    f"device_id=wimz-001&timestamp={NOW - 301}&signature={signature('wimz-001', NOW - 301)}",
    f"device_id=wimz-001&timestamp={NOW}&signature={SIG}\nx-device-id: wimz-002\nx-timestamp: {NOW}",
    f"token={LIVE}&device_id=wimz-001",
    f"token=abc&device_id=..%2Fx",
    f"device_id=wimz-001&device_id=wimz-002&timestamp=1&signature=00",
]
jwt = [
    "\x00" + LIVE,
    "\x00" + EXPIRED,
    "\x00" + b64(b'{"alg":"none","typ":"JWT"}') + "." + LIVE.split(".")[1] + ".",
    "\x01" + '{"sub":"u1","role":"user","exp":4000000000,"iat":1800000000}',
    "\x01" + '{"sub":"u1","role":"device","exp":"4000000000","iat":1}',
    "\x02" + '{"alg":"HS256"}\n{"sub":"wimz-001","role":"device","exp":4000000000,"iat":0}',
    "\x02" + '{"alg":"none","typ":"JWT"}\n{"sub":"x","role":"user","exp":4000000000,"iat":0}',
    "\x02" + '{"alg":"HS512","typ":"JWT"}\n{"sub":"x","role":"admin","exp":1,"iat":0}',
]
proxy_path = [
    "GET\nmissions/available",
    "POST\nmissions/start",
    "DELETE\nprograms/evening_routine",
    "GET\nreports/dog/rex-1",
    "GET\nmissions/../admin",
    "GET\nreports/dog/%2e%2e",
    "GET\nmode\\..\\admin",
    "PUT\nfiles/a/b/c\n/files/**\nGET /x/*",
    "get\na/b\nGET /a/*\n/a/**/b\nGET /a/../b",
]
default_toml = (ROOT.parent / "config" / "default.toml").read_text()
config = [
    default_toml,
    "",
    "[server]\nbind = \"127.0.0.1:9001\"\n#env\nWIMZ__HEARTBEAT__INTERVAL_S=2\nWIMZ__HEARTBEAT__TIMEOUT_S=5.5",
    "#env\nWIMZ__PROXY__ALLOWED_PATHS=GET /mode, POST /mode\nWIMZ__CLUSTER__REDIS_URL=redis://127.0.0.1:6379",
    "[turn]\nprovider = \"hmac\"\nsecret = \"coturn-secret\"\nurls = [\"turn:127.0.0.1:3478?transport=udp\"]\n",
    "[turn]\nprovider = \"static\"\nusername = \"u\"\ncredential = \"c\"\nurls = \"turn:a:3478, turns:b:5349\"\n",
    "[turn]\nprovider = \"cloudflare\"\nkey_id = \"k\"\napi_token = \"t0ken\"\n",
    "[store]\nurl = \"postgres://relay:pw1234@127.0.0.1:5432/relay\"\n[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n",
    "#env\nWIMZ__AUTH__JWT_SECRET=0123456789abcdef0123456789abcdef-x\nWIMZ__TURN__SECRET=s3cr3t-value\nWIMZ__SERVER__NOPE=1",
    "[limits]\nmax_message_bytes = 1023\n",
    "[log]\nformat = \"xml\"\n",
]

for name, seeds in [("robot_frame", robot), ("app_frame", app), ("credentials", credentials),
                    ("jwt", jwt), ("proxy_path", proxy_path), ("config", config)]:
    d = ROOT / "corpus" / name
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, s in enumerate(seeds):
        (d / f"seed-{i:02d}").write_bytes(s.encode())
print("seeds written")
