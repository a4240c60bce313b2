//! Lua scripts: each runs atomically inside Redis, on the shard of the one
//! device it names (every key and the channel carry the device's hash tag).
//! None runs per event: an event is one pipeline (`XADD` with its own id +
//! `PUBLISH`, [`super::events`]); these run when a robot attaches
//! ([`CLAIM`]), when the first event after a lost connection or a refused
//! `XADD` must prove where the stream stands ([`APPEND`]), when a mirror
//! starts ([`RESERVE`]), on the presence refresh, for a device's snapshot
//! at most once per flush ([`SNAPSHOT`]), and for WebRTC slots.
//!
//! Stream ids are `<term>-<seq>` (see [`super::stream_ids`]). A *term* is
//! minted by each claim, larger than any id in the stream, and the claim
//! writes a marker entry with it at once: from then on an `XADD` by the
//! instance that held the robot before (an older term) is refused by Redis
//! itself — that is the fence — and its pipelined `PUBLISH` reaches
//! subscribers only after the claim's own announcement, so mirrors drop it
//! (its id is below the marker's). `ARGV` `pub` is `PUBLISH` or `SPUBLISH`.

/// Reads the stream's last entry: its term, seq, epoch (`e`) and frame
/// (`f`, nil in a marker), or nils.
const TOP: &str = r#"
local function top(stream)
  local t = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if not t[1] then return nil, nil, nil, nil end
  local id = t[1][1]
  local dash = string.find(id, '-', 1, true)
  local epoch, frame = nil, nil
  local f = t[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'e' then epoch = f[i + 1] end
    if f[i] == 'f' then frame = f[i + 1] end
  end
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1)), epoch, frame
end
local function newterm(now, term)
  return math.max(tonumber(now), (term or 0) + 1)
end
"#;

/// Claim a device's robot (it attached here). KEYS: presence, stream,
/// channel, handoff. ARGV: instance, ttl, a fresh epoch (used when the
/// stream is empty: the device has no numbering yet, or Redis lost it),
/// now (ms), maxlen, pub. Takes presence, mints a term and appends the
/// marker `<term>-<seq>` continuing the stream's last `(epoch, seq)`.
/// Returns {previous holder or '', epoch, seq, term, ''}, or, changing
/// nothing, {holder, '', 0, 0, 'wait'} while the holder is handing the
/// device off (stopping, its last events still being appended: a term
/// minted now would fence them away).
pub fn claim() -> String {
    format!(
        "{TOP}{}",
        r#"
local prev = redis.call('GET', KEYS[1])
if prev and prev ~= ARGV[1] and redis.call('GET', KEYS[4]) == prev then
  return {prev, '', 0, 0, 'wait'}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local term, seq, epoch = top(KEYS[2])
if not epoch then epoch = ARGV[3]; seq = 0 end
local t = newterm(ARGV[4], term)
local id = string.format('%d-%d', t, seq)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], id, 'e', epoch, 'm', 'claim')
redis.call(ARGV[6], KEYS[3], id .. ' ' .. epoch)
return {prev or '', epoch, seq, t, ''}
"#
    )
}

/// Append one event the slow way: after a claim failed, after Redis was
/// unreachable, or when the fast `XADD` was refused. KEYS: presence,
/// stream, channel. ARGV: instance, ttl, expected previous
/// `"<epoch>:<seq>"` ('' when the event starts a new epoch), epoch, seq,
/// frame, now (ms), maxlen, pub. Returns {'fenced'} (another instance
/// holds the robot), {'broken'} (the stream does not end where we think:
/// Redis restarted empty, failed over and lost the tail, or our own events
/// never reached it — continuity cannot be proven: start a new epoch) or
/// {'ok', term}: presence (re)taken, a new term, the event appended as
/// `<term>-<seq>` and published. When the stream already ends with this
/// very event (its epoch, seq and frame: an append whose answer was lost,
/// a lane append that timed out after Redis did it), that is done already:
/// {'ok', its term}, nothing appended or published again.
pub fn append() -> String {
    format!(
        "{TOP}{}",
        r#"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {'fenced'} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local term, seq, epoch, frame = top(KEYS[2])
if epoch == ARGV[4] and seq == tonumber(ARGV[5]) and frame == ARGV[6] then
  return {'ok', term}
end
if ARGV[3] ~= '' and (not epoch or (epoch .. ':' .. string.format('%d', seq)) ~= ARGV[3]) then
  return {'broken'}
end
local t = newterm(ARGV[7], term)
local id = string.format('%d-%s', t, ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], id, 'e', ARGV[4], 'f', ARGV[6])
redis.call(ARGV[9], KEYS[3], id .. ' ' .. ARGV[4] .. ' ' .. ARGV[6])
return {'ok', t}
"#
    )
}

/// A device's last `(epoch, seq)` for a mirror starting; when the stream is
/// empty (no event numbered yet, or Redis lost it) ARGV epoch is reserved
/// for every instance with a marker `<now>-0`. The first instance to need a
/// device picks its epoch, so an app subscribed before the robot ever
/// connects is told the epoch the robot's events will carry, wherever it
/// connects. KEYS: stream, channel. ARGV: epoch, now (ms), maxlen, pub.
/// Returns {epoch, "<term>-<seq>"}.
pub fn reserve() -> String {
    format!(
        "{TOP}{}",
        r#"
local term, seq, epoch = top(KEYS[1])
if epoch then return {epoch, string.format('%d-%d', term, seq)} end
local id = string.format('%d-0', newterm(ARGV[2], 0))
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], id, 'e', ARGV[1], 'm', 'reserve')
redis.call(ARGV[4], KEYS[2], id .. ' ' .. ARGV[1])
return {ARGV[1], id}
"#
    )
}

/// Take a WebRTC session slot of a device. KEYS: the device's session set.
/// ARGV: session id, now (s), stale-after (s), max. Slots not refreshed
/// within stale-after (their instance died) are dropped first.
/// Returns 1 if taken, 0 if the device is at its limit.
pub const SESSION_SLOT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// Release a claim, and its hand-off mark, only if we still hold them.
/// KEYS: presence, handoff. ARGV: instance. Returns 1 if the claim was ours.
pub const RELEASE: &str = r#"
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Write a device's snapshot, unless a newer home has. KEYS: snapshot.
/// ARGV: the writer's term, then field, value pairs. The hash keeps its
/// writer's term in `term`; a write under an older term changes nothing —
/// a former home's flush (up to `cluster.snapshot_flush_ms` late) landing
/// after the new home's. Runs per device per flush, never per event.
/// Returns 1 if written.
pub const SNAPSHOT: &str = r#"
local held = tonumber(redis.call('HGET', KEYS[1], 'term') or '0')
if held > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'term', ARGV[1], unpack(ARGV, 2))
return 1
"#;

/// Refresh one claim. KEYS: presence. ARGV: instance, ttl. A claim that
/// vanished (Redis restarted empty, or it expired while Redis was
/// unreachable) is re-taken; one another instance holds is left alone.
/// Returns 1 if it is ours, 0 if another instance holds it (our robot was
/// replaced there).
pub const REFRESH: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"#;
