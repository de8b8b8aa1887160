-- Runs::create_run. Own args: run, created ms, campaign, purpose, source, alo (1/0),
-- sha hex or '', sender or '' (absent), has sender (1/0), text, has text (1/0).
-- Returns 1 when created, 0 when the run existed (then only a run without sender and text
-- adopts the resubmission's).
local e = check_epoch(); if e then return e end
local run = arg(1)
local key = P .. 'run:' .. run
if redis.call('EXISTS', key) == 1 then
  local old = redis.call('HMGET', key, 'sender', 'text')
  if not old[1] and not old[2] then
    if arg(9) == '1' then
      redis.call('HSET', key, 'sender', arg(8))
      redis.call('SREM', P .. 'sruns:', run)
      redis.call('SADD', P .. 'sruns:' .. arg(8), run)
    end
    if arg(11) == '1' then redis.call('HSET', key, 'text', arg(10)) end
  end
  return 0
end
redis.call('HSET', key, 'campaign', arg(3), 'purpose', arg(4), 'source', arg(5), 'alo', arg(6),
  'created', arg(2), 'state', 'active', 'c:queued', 0, 'c:sending', 0)
if arg(7) ~= '' then redis.call('HSET', key, 'sha', arg(7)) end
if arg(9) == '1' then redis.call('HSET', key, 'sender', arg(8)) end
if arg(11) == '1' then redis.call('HSET', key, 'text', arg(10)) end
redis.call('ZADD', P .. 'runs', arg(2), run)
redis.call('SADD', P .. 'sruns:' .. (arg(9) == '1' and arg(8) or ''), run)
return 1
