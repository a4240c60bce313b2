//! Per-subscription delivery bookkeeping: one app's view of one robot.
//!
//! Two independent checks. The robot's counter `n` must arrive exactly once
//! each and in increasing order (loss, duplicates, reorder); the relay's
//! `seq` must go up by exactly one per frame within an epoch (gaps, going
//! backwards), which also covers the relay's own presence events.

/// What one subscription saw.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    /// Epoch of the last frame; `None` before `subscribed`.
    pub epoch: Option<i64>,
    /// Last relay `seq` seen in `epoch`.
    pub last_seq: u64,
    /// Highest robot counter seen.
    max_n: u64,
    /// Which counters arrived (bit n).
    seen: Vec<u64>,
    /// Counters seen once.
    pub unique: u64,
    /// Event frames with a counter.
    pub received: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Relay frames missing by `seq` (sum of gap sizes).
    pub seq_gaps: u64,
    /// Frames whose `seq` was not above the previous one.
    pub seq_backwards: u64,
    pub epoch_changes: u64,
}

impl Tracker {
    /// `subscribed` (fresh or after `since_seq`): `seq` is where the room is.
    /// On a fresh subscription nothing before `seq` is expected.
    pub fn on_subscribed(&mut self, epoch: i64, seq: u64, resumed: bool) {
        match self.epoch {
            Some(e) if e != epoch => {
                self.epoch_changes += 1;
                self.epoch = Some(epoch);
                self.last_seq = seq;
            }
            Some(_) if resumed => {}
            _ => {
                self.epoch = Some(epoch);
                self.last_seq = seq;
            }
        }
    }

    /// An event frame (from the robot when `n` is given, else the relay's).
    pub fn on_event(&mut self, epoch: Option<i64>, seq: Option<u64>, n: Option<u64>) {
        if let (Some(epoch), Some(seq)) = (epoch, seq) {
            if self.epoch != Some(epoch) {
                if self.epoch.is_some() {
                    self.epoch_changes += 1;
                }
                self.epoch = Some(epoch);
            } else if seq <= self.last_seq {
                self.seq_backwards += 1;
            } else if seq > self.last_seq + 1 {
                self.seq_gaps += seq - self.last_seq - 1;
            }
            self.last_seq = self.last_seq.max(seq);
        }
        let Some(n) = n else { return };
        self.received += 1;
        let (word, bit) = ((n / 64) as usize, n % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        if n < self.max_n {
            self.reordered += 1;
        }
        self.max_n = self.max_n.max(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_dup_reorder_and_seq_gaps() {
        let mut t = Tracker::default();
        t.on_subscribed(7, 10, false);
        t.on_event(Some(7), Some(11), Some(1));
        t.on_event(Some(7), Some(12), Some(2));
        t.on_event(Some(7), Some(14), Some(4)); // seq 13 missing
        t.on_event(Some(7), Some(13), Some(3)); // late: backwards and reordered
        t.on_event(Some(7), Some(15), Some(3)); // duplicate counter
        t.on_event(Some(7), Some(16), None); // a presence event
        assert_eq!(t.unique, 4);
        assert_eq!(t.received, 5);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.seq_gaps, 1);
        assert_eq!(t.seq_backwards, 1);
    }

    #[test]
    fn resumed_subscription_keeps_position() {
        let mut t = Tracker::default();
        t.on_subscribed(1, 0, false);
        t.on_event(Some(1), Some(1), Some(1));
        t.on_subscribed(1, 5, true);
        t.on_event(Some(1), Some(2), Some(2));
        assert_eq!(t.seq_gaps, 0);
        t.on_subscribed(2, 3, true);
        assert_eq!(t.epoch_changes, 1);
    }
}
