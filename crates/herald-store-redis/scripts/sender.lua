-- Senders::throttle, block and resume. Own args: op, name, then for `throttle` the hold and
-- the cap (ms), for `block` code, reason, at (ms).
-- throttle: until = min(max(recorded, now + hold), now + cap), timed by the store; returns it.
-- block: the first block recorded is kept; returns 1 when recorded now.
-- resume: clears block and throttle; returns 1 when it was blocked.
local e = check_epoch(); if e then return e end
local op, name = arg(1), arg(2)
local key = P .. 'sender:' .. name
if op == 'throttle' then
  local now = now_ms()
  local cap = now + tonumber(arg(4))
  local untl = now + tonumber(arg(3))
  local old = redis.call('HGET', key, 'throttled')
  if old and tonumber(old) > untl then untl = tonumber(old) end
  if untl > cap then untl = cap end
  redis.call('HSET', key, 'throttled', string.format('%d', untl))
  redis.call('SADD', P .. 'senders', name)
  return string.format('%d', untl)
elseif op == 'block' then
  if redis.call('HEXISTS', key, 'block_code') == 1 then return 0 end
  redis.call('HSET', key, 'block_code', arg(3), 'block_reason', arg(4), 'block_at', arg(5))
  redis.call('SADD', P .. 'senders', name)
  return 1
else
  local blocked = redis.call('HEXISTS', key, 'block_code')
  redis.call('HDEL', key, 'block_code', 'block_reason', 'block_at', 'throttled')
  redis.call('SREM', P .. 'senders', name)
  return blocked
end
