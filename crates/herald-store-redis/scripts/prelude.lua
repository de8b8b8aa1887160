-- Prepended to every script (see src/scripts.rs). Calling convention:
--   ARGV[1] the key prefix, ARGV[2] `<epoch>|<seq>`: the epoch the calling handle opened and the
--   highest write sequence it has seen, ARGV[3] the store's now in unix ms when the caller's
--   clock times the store, or '' to read Redis's TIME.
--   A script's own arguments start at ARGV[4] (use arg(i) for the i-th of them).
-- A script that writes calls check_epoch() first: a store whose epoch key vanished or changed
-- (Redis restarted empty, or flushed) must not be written as if it were new, nor one whose write
-- sequence went below what this handle saw (restored from an older backup, failed over to a
-- replica that lacked writes): what it lost would be claimed and sent again.
local P = ARGV[1]
local function arg(i) return ARGV[3 + i] end
local EPOCH, SEEN = ARGV[2], nil
do
  local e, s = string.match(ARGV[2], '^(.*)|(%d+)$')
  if e then EPOCH, SEEN = e, tonumber(s) end
end
local function check_epoch()
  local e = redis.call('GET', P .. 'epoch')
  if e ~= EPOCH then
    return redis.error_reply('EPOCH the store at this Redis lost its state (epoch ' .. tostring(EPOCH) .. ' expected, ' .. tostring(e) .. ' found): it was restarted empty or flushed')
  end
  local seq = tonumber(redis.call('GET', P .. 'seq') or '0')
  if SEEN and seq < SEEN then
    return redis.error_reply('EPOCH the store at this Redis went back in time (its write sequence is ' .. string.format('%d', seq) .. ', this worker had seen ' .. string.format('%d', SEEN) .. '): it was restored from an older backup or failed over to a replica that lacked writes, and what it lost would be sent again')
  end
  redis.call('INCR', P .. 'seq')
  return nil
end
-- The store's now in unix microseconds.
local function now_us()
  if ARGV[3] ~= '' then return tonumber(ARGV[3]) * 1000 end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function now_ms() return math.floor(now_us() / 1000) end
