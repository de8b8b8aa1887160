-- Prepended to every script (see src/scripts.rs). Calling convention:
--   ARGV[1] the key prefix, ARGV[2] the epoch the calling handle opened, ARGV[3] the store's
--   now in unix ms when the caller's clock times the store, or '' to read Redis's TIME.
--   A script's own arguments start at ARGV[4] (use arg(i) for the i-th of them).
-- A script that writes calls check_epoch() first: a store whose epoch key vanished or changed
-- (Redis restarted empty, or flushed) must not be written as if it were new.
local P = ARGV[1]
local function arg(i) return ARGV[3 + i] end
local function check_epoch()
  local e = redis.call('GET', P .. 'epoch')
  if e ~= ARGV[2] then
    return redis.error_reply('EPOCH the store at this Redis lost its state (epoch ' .. tostring(ARGV[2]) .. ' expected, ' .. tostring(e) .. ' found): it was restarted empty or flushed')
  end
  return nil
end
-- The store's now in unix microseconds.
local function now_us()
  if ARGV[3] ~= '' then return tonumber(ARGV[3]) * 1000 end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function now_ms() return math.floor(now_us() / 1000) end
