//! Lua scripts: each runs atomically inside Redis.

/// Append one event. KEYS: presence, last, stream, channel.
/// ARGV: instance, expected previous ("<epoch>:<seq>" or "" for a new
/// epoch), new ("<epoch>:<seq>"), epoch, seq, frame, maxlen, ttl.
/// Returns "ok", "fenced" (another instance holds the robot) or "broken"
/// (the stream does not continue from what we expect: start a new epoch).
/// A claim that expired or vanished (Redis restarted empty) is re-taken.
pub const APPEND: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 'fenced' end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[8]) end
local cur = redis.call('GET', KEYS[2])
if ARGV[2] ~= '' and cur ~= ARGV[2] then return 'broken' end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[4], 's', ARGV[5], 'f', ARGV[6])
redis.call('PUBLISH', KEYS[4], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
return 'ok'
"#;

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

/// Claim a device's robot. KEYS: presence, last, handoff. ARGV: instance,
/// ttl, a reservation "<epoch>:0" taken as last when the device has none
/// (see [`LAST_OR_RESERVE`]). Returns {previous holder or '', last
/// "<epoch>:<seq>", ''}, or, changing nothing, {holder, '', 'wait'} while the
/// holder is handing the device off (stopping, its last events still being
/// appended).
pub const CLAIM: &str = r#"
local prev = redis.call('GET', KEYS[1])
if prev and prev ~= ARGV[1] and redis.call('GET', KEYS[3]) == prev then
  return {prev, '', 'wait'}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local last = redis.call('GET', KEYS[2])
if not last then
  last = ARGV[3]
  redis.call('SET', KEYS[2], last)
end
return {prev or '', last, ''}
"#;

/// A device's last "<epoch>:<seq>"; when it has none (no event numbered
/// yet, or Redis lost it), ARGV[1] ("<epoch>:0") is set and returned. The
/// first instance to need a device picks its epoch for every instance, so
/// an app subscribed before the robot ever connects is told the epoch the
/// robot's events will carry, wherever it connects. KEYS: last.
pub const LAST_OR_RESERVE: &str = r#"
local last = redis.call('GET', KEYS[1])
if last then return last end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
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

/// Refresh our claims. KEYS: presence keys. ARGV: instance, ttl.
/// A claim that vanished (Redis restarted empty, or it expired while Redis
/// was unreachable) is re-taken, as APPEND does; one another instance holds
/// is left alone. Returns how many are ours.
pub const REFRESH: &str = r#"
local n = 0
for i, k in ipairs(KEYS) do
  local holder = redis.call('GET', k)
  if holder == ARGV[1] then
    redis.call('EXPIRE', k, ARGV[2])
    n = n + 1
  elseif not holder then
    redis.call('SET', k, ARGV[1], 'EX', ARGV[2])
    n = n + 1
  end
end
return n
"#;
