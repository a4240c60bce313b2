//! User tokens: signing in (`POST /api/auth/login`) and reading a token's
//! expiry. The SDK never verifies a token (only the relay can); it reads
//! `exp` so that it can say "expired" instead of retrying a dead token.

import { WimzError, ErrorCode } from './errors.js';

function base64UrlDecode(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  return atob(padded);
}

/**
 * The token's `exp` in Unix milliseconds, or null when it is not a JWT with
 * a numeric `exp` (the relay's tokens always have one).
 */
export function tokenExpiresAtMs(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(base64UrlDecode(parts[1]));
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Reads an HTTP answer's body as JSON, or null when it is empty or not JSON. */
export async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Signs in. Resolves `{accessToken, expiresAtMs, userId}`; rejects with a
 * `WimzError` (`unauthorized` for bad credentials, `network` when the relay
 * cannot be reached).
 */
export async function login(fetchFn, baseUrl, username, password, now = Date.now) {
  let res;
  try {
    res = await fetchFn(new URL('api/auth/login', baseUrl).href, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch (cause) {
    throw new WimzError(ErrorCode.NETWORK, 'the relay cannot be reached', { cause });
  }
  const body = await readJson(res);
  if (!res.ok) throw WimzError.fromHttp(res.status, body, res.headers);
  if (!body || typeof body.access_token !== 'string') {
    throw new WimzError('bad_response', 'login answer without access_token', { status: res.status, body });
  }
  const fromExp = tokenExpiresAtMs(body.access_token);
  const expiresAtMs =
    fromExp ?? (typeof body.expires_in === 'number' ? now() + body.expires_in * 1000 : null);
  return { accessToken: body.access_token, expiresAtMs, userId: body.user_id };
}
