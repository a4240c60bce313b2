//! The WebSocket close codes the relay sends, one name each, as
//! docs/PROTOCOL.md Part 2 C lists them (with the reason each goes with).
//! Code that closes a socket names one of these; tests keep the numbers,
//! as they check the contract.

use actix_ws::CloseCode;

/// 1000: the peer sent a close frame; the relay answers it (`closed`).
pub const NORMAL: CloseCode = CloseCode::Normal;
/// 1001: no pong within `heartbeat.timeout_s` (`heartbeat_timeout`).
pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode::Away;
/// 1002: a frame breaking RFC 6455 (`protocol_error`).
pub const PROTOCOL_ERROR: CloseCode = CloseCode::Protocol;
/// 1007: a text message that is not UTF-8 (`invalid_utf8`).
pub const INVALID_UTF8: CloseCode = CloseCode::Invalid;
/// 1008: the peer's outbound queue stayed full: it is not reading
/// (`slow_consumer`).
pub const SLOW_CONSUMER: CloseCode = CloseCode::Policy;
/// 1009: a frame or message over `limits.max_message_bytes`
/// (`message_too_big`).
pub const TOO_BIG: CloseCode = CloseCode::Size;
/// 1011: a robot whose device could not be attached, or whose room failed
/// (`device_unavailable`): reconnecting attaches it afresh.
pub const DEVICE_UNAVAILABLE: CloseCode = CloseCode::Error;
/// 1012 (RFC 6455 "service restart"): this instance is stopping
/// (`relay_shutdown`); reconnect at once, with jitter.
pub const RESTART: CloseCode = CloseCode::Restart;
/// 4001: the robot connected again, here or on another instance
/// (`replaced`).
pub const REPLACED: CloseCode = CloseCode::Other(4001);
/// 4003: the robot's credential is not current any more
/// (`device_deleted`, `credentials_revoked`).
pub const REVOKED: CloseCode = CloseCode::Other(4003);

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers on the wire (PROTOCOL.md Part 2 C).
    #[test]
    fn codes_are_the_protocols() {
        let codes: [(CloseCode, u16); 10] = [
            (NORMAL, 1000),
            (HEARTBEAT_TIMEOUT, 1001),
            (PROTOCOL_ERROR, 1002),
            (INVALID_UTF8, 1007),
            (SLOW_CONSUMER, 1008),
            (TOO_BIG, 1009),
            (DEVICE_UNAVAILABLE, 1011),
            (RESTART, 1012),
            (REPLACED, 4001),
            (REVOKED, 4003),
        ];
        for (code, number) in codes {
            assert_eq!(u16::from(code), number, "{code:?}");
        }
    }
}
