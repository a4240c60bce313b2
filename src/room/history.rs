//! The recovery buffer: the last `history.size` enveloped events of a device,
//! by `seq`, for `subscribe{since_seq}`.

use bytestring::ByteString;
use std::collections::VecDeque;

#[derive(Debug)]
pub struct History {
    cap: usize,
    /// (seq, the enveloped frame exactly as apps received it), oldest first.
    events: VecDeque<(u64, ByteString)>,
}

/// What a `since_seq` asks for, and whether it can be given in full.
pub struct Replay<'a> {
    pub frames: Vec<&'a ByteString>,
    pub complete: bool,
}

impl History {
    pub fn new(cap: usize) -> Self {
        History {
            cap,
            // Grows on demand: a preallocated ring is ~20 KiB per device
            // (512 x 40 B) even for a robot that never sends an event.
            events: VecDeque::new(),
        }
    }

    pub fn push(&mut self, seq: u64, frame: ByteString) {
        if self.events.len() == self.cap {
            self.events.pop_front();
        }
        self.events.push_back((seq, frame));
    }

    /// Events after `since` up to `current`. Complete when nothing between
    /// `since` and the oldest kept event was dropped.
    pub fn since(&self, since: u64, current: u64) -> Replay<'_> {
        if since >= current {
            // Caught up, or asking about a future seq (another epoch).
            return Replay {
                frames: Vec::new(),
                complete: since == current,
            };
        }
        let oldest = self.events.front().map(|(s, _)| *s).unwrap_or(current + 1);
        let complete = since + 1 >= oldest;
        let frames = self
            .events
            .iter()
            .filter(|(s, _)| *s > since)
            .map(|(_, f)| f)
            .collect();
        Replay { frames, complete }
    }

    /// Every kept event (after an epoch change).
    pub fn all(&self) -> Vec<&ByteString> {
        self.events.iter().map(|(_, f)| f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u64, cap: usize) -> History {
        let mut h = History::new(cap);
        for s in 1..=n {
            h.push(s, ByteString::from(s.to_string()));
        }
        h
    }

    #[test]
    fn replay_within_and_past_the_buffer() {
        let hist = h(10, 4); // keeps 7..=10
        let r = hist.since(8, 10);
        assert!(r.complete);
        assert_eq!(
            r.frames.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            ["9", "10"]
        );
        let r = hist.since(6, 10);
        assert!(r.complete, "7 is the next one and it is kept");
        assert_eq!(r.frames.len(), 4);
        let r = hist.since(5, 10);
        assert!(!r.complete, "6 was dropped");
        assert_eq!(r.frames.len(), 4);
        let r = hist.since(10, 10);
        assert!(r.complete && r.frames.is_empty());
        let r = hist.since(50, 10);
        assert!(!r.complete);
        let empty = h(0, 4);
        let r = empty.since(0, 0);
        assert!(r.complete);
    }
}
