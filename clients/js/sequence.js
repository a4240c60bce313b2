//! One device's position in its event stream, `(epoch, seq)`, and what each
//! arriving frame means for it: deliver, drop as a duplicate, or deliver and
//! say that something was lost (a gap) or that the numbering started over
//! (a new epoch). Pure logic, no I/O: `DeviceSubscription` feeds it frames
//! in arrival order and acts on the verdicts.
//!
//! The relay numbers a device's events `seq` = 1, 2, ... within an `epoch`
//! (docs/PROTOCOL.md §3.3, Part 2 D). After a reconnect the client sends
//! `subscribe{since_seq, epoch}`; the relay answers `subscribed`, replays
//! what it still has after `since_seq`, then `recovered{complete}`.
//! Anything already seen in this epoch is dropped here.

export class EventSequence {
  constructor() {
    /** Current epoch, null before the first `subscribed`. */
    this.epoch = null;
    /** Last seq delivered in `epoch` (0 = none yet). */
    this.seq = 0;
    /** Between a `subscribed` that is followed by a replay and its `recovered`. */
    this.replaying = false;
    /** Frames dropped as already seen. */
    this.duplicates = 0;
  }

  /** The position to resume from (`since_seq`, `epoch`), or null if none. */
  position() {
    return this.epoch === null ? null : { epoch: this.epoch, since_seq: this.seq };
  }

  /**
   * A `subscribed` frame. `replayFollows` is true when buffered events will
   * follow it (we sent `since_seq`, or the relay re-subscribed us unasked).
   * Returns the notices to surface (`epoch_changed`, `gap`).
   */
  subscribed(frame, replayFollows) {
    const notices = [];
    const epoch = frame.epoch;
    const seq = typeof frame.seq === 'number' ? frame.seq : 0;
    this.replaying = replayFollows;
    if (this.epoch === null) {
      this.epoch = epoch;
      // A first subscription without since_seq starts at "now"; with it,
      // the replay brings what came before.
      this.seq = replayFollows ? 0 : seq;
    } else if (epoch !== this.epoch) {
      notices.push({ type: 'epoch_changed', device_id: frame.device_id, previous: this.epoch, epoch });
      this.epoch = epoch;
      this.seq = replayFollows ? 0 : seq;
    } else if (!replayFollows && seq > this.seq) {
      notices.push(this._gap(frame.device_id, this.seq + 1, seq));
      this.seq = seq;
    }
    return notices;
  }

  /**
   * An `event` frame. Returns `{deliver, notices}`: `deliver` false means a
   * duplicate (already seen in this epoch) that must not reach the caller.
   */
  event(frame) {
    const { epoch, seq } = frame;
    // Unnumbered frames (PROTOCOL Part 2 H: robot_disconnected for a lost
    // instance) carry the last seq; they are not part of the numbering.
    if (frame.unnumbered === true || typeof seq !== 'number' || epoch === undefined) {
      return { deliver: true, notices: [] };
    }
    const notices = [];
    if (this.epoch === null || epoch !== this.epoch) {
      if (this.epoch !== null) {
        notices.push({ type: 'epoch_changed', device_id: frame.device_id, previous: this.epoch, epoch });
      }
      this.epoch = epoch;
      this.seq = seq;
      return { deliver: true, notices };
    }
    if (seq <= this.seq) {
      this.duplicates += 1;
      return { deliver: false, notices };
    }
    if (seq > this.seq + 1 && !this.replaying) {
      notices.push(this._gap(frame.device_id, this.seq + 1, seq - 1));
    }
    this.seq = seq;
    return { deliver: true, notices };
  }

  /** A `recovered` frame ends a replay. */
  recovered() {
    this.replaying = false;
  }

  _gap(deviceId, from, to) {
    return { type: 'gap', device_id: deviceId, epoch: this.epoch, from_seq: from, to_seq: to };
  }
}
