//! Positions in a device's stream, and what its channel carries.
//!
//! An entry's id is `<term>-<seq>`: `seq` is the event's number as apps see
//! it (per epoch), `term` grows with every claim of the device (see
//! [`super::scripts`]). Ids only grow: Redis refuses an `XADD` whose id is
//! not above the stream's last, and a subscriber forwards only ids above
//! the last it forwarded, so an event from a fenced instance is neither
//! stored nor delivered.

use bytestring::ByteString;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub term: u64,
    pub seq: u64,
}

impl StreamId {
    pub fn parse(s: &str) -> Option<StreamId> {
        let (t, q) = s.split_once('-')?;
        Some(StreamId {
            term: t.parse().ok()?,
            seq: q.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.term, self.seq)
    }
}

/// Where a device's numbering stands: the last stream id and its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub id: StreamId,
    pub epoch: i64,
}

impl Position {
    /// As the room counts: `(epoch, seq)`.
    pub fn numbered(&self) -> (i64, u64) {
        (self.epoch, self.id.seq)
    }
}

/// One message on a device channel (`wimz:{<device>}:dev`):
/// `"<term>-<seq> <epoch> <frame>"` for an event, `"<term>-<seq> <epoch>"`
/// for a marker (a claim's new term, or a reserved epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub at: Position,
    pub frame: Option<ByteString>,
}

impl Published {
    pub fn parse(payload: &str) -> Option<Published> {
        let (id, rest) = payload.split_once(' ')?;
        let id = StreamId::parse(id)?;
        let (epoch, frame) = match rest.split_once(' ') {
            Some((e, f)) => (e, Some(ByteString::from(f))),
            None => (rest, None),
        };
        Some(Published {
            at: Position {
                id,
                epoch: epoch.parse().ok()?,
            },
            frame,
        })
    }

    /// The payload of an event.
    pub fn event(id: StreamId, epoch: i64, frame: &str) -> String {
        format!("{id} {epoch} {frame}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_term_then_seq() {
        let a = StreamId::parse("1700000000000-41").unwrap();
        let b = StreamId::parse("1700000000001-3").unwrap();
        assert!(a < b, "a later term is above any seq of an earlier one");
        assert_eq!(a.to_string(), "1700000000000-41");
        assert_eq!(StreamId::parse("12"), None);
        assert_eq!(StreamId::parse("x-1"), None);
    }

    #[test]
    fn events_and_markers_parse() {
        let id = StreamId { term: 9, seq: 4 };
        let p = Published::parse(&Published::event(id, 77, "{\"a\": 1}")).unwrap();
        assert_eq!(p.at, Position { id, epoch: 77 });
        assert_eq!(p.frame.as_deref(), Some("{\"a\": 1}"));
        let m = Published::parse("10-4 77").unwrap();
        assert_eq!(m.frame, None);
        assert_eq!(m.at.id, StreamId { term: 10, seq: 4 });
        assert_eq!(Published::parse("10-4"), None);
        assert_eq!(Published::parse("10-4 x {}"), None);
    }
}
