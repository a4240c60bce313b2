//! The one error type the SDK throws and rejects with: `WimzError`, with a
//! `code` from the relay's protocol (docs/PROTOCOL.md §3, Part 2 B/C) or one
//! of the SDK's own codes below, plus whatever the relay said about it.

/** Codes the SDK itself uses (the relay's own codes pass through as sent). */
export const ErrorCode = Object.freeze({
  /** A command or call got no answer in time. */
  TIMEOUT: 'timeout',
  /** The socket closed while the call was waiting (it may still have run). */
  DISCONNECTED: 'disconnected',
  /** `close()` was called, or the client gave up for good. */
  CLOSED: 'closed',
  /** The token was refused (HTTP 401) or has expired and no new one came. */
  UNAUTHORIZED: 'unauthorized',
  /** The token's `exp` has passed. */
  TOKEN_EXPIRED: 'token_expired',
  /** The relay could not be reached over HTTP. */
  NETWORK: 'network',
  /** An async iterator fell too far behind and was ended. */
  OVERFLOW: 'overflow',
  /** A WebRTC session ended; `reason` says why. */
  SESSION_CLOSED: 'session_closed',
});

export class WimzError extends Error {
  /**
   * @param {string} code  protocol code (`robot_offline`, `not_owner`, ...)
   *   or an {@link ErrorCode}
   * @param {string} [message] human text (the relay's `message` when it sent one)
   * @param {object} [extra] `ref`, `status` (HTTP), `frame` (the relay's
   *   error frame), `body` (an HTTP error body), `cause`
   */
  constructor(code, message, extra = {}) {
    super(message || code, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'WimzError';
    this.code = code;
    if (extra.ref !== undefined) this.ref = extra.ref;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.frame !== undefined) this.frame = extra.frame;
    if (extra.body !== undefined) this.body = extra.body;
  }

  /** From a relay `{"type":"error",...}` frame. */
  static fromFrame(frame) {
    return new WimzError(String(frame.code || 'error'), String(frame.message || frame.code || 'error'), {
      ref: frame.ref,
      frame,
    });
  }

  /**
   * From an HTTP answer whose body is `{"error":{code,message}}` (or not);
   * `retryAfterS` from its `Retry-After` (the relay's caps and throttles,
   * PROTOCOL Part 2 J), when given `headers`.
   */
  static fromHttp(status, body, headers) {
    const e = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
    const code = e && typeof e.code === 'string' ? e.code : status === 401 ? ErrorCode.UNAUTHORIZED : `http_${status}`;
    const message = e && typeof e.message === 'string' ? e.message : `HTTP ${status}`;
    const err = new WimzError(code, message, { status, body });
    const retry = headers && typeof headers.get === 'function' ? Number.parseInt(headers.get('retry-after') ?? '', 10) : NaN;
    if (Number.isFinite(retry) && retry >= 0) err.retryAfterS = retry;
    return err;
  }
}
