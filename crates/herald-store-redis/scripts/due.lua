-- Deliveries::due / due_in / next_due / next_due_in. Own args: mode (`due` or `next`), now ms,
-- limit, scoped (1/0), sender, then the named runs of the scope (none: all).
-- The runs looked at are those of `qruns` (src/keys.rs), the runs that may have something
-- queued: all of them without a scope, those also in `sruns:<sender>` with one (SINTER walks
-- the smaller set, so the cost follows the runs with queued work, never the runs ever made),
-- none while the sender is blocked. A run of the index with nothing in `due:<run>` (the zset
-- this script reads, not the counter `c:queued`: a counter put off by a fault must not hide
-- queued work), or cancelled, or gone, is taken out of it here (the only write: the writes
-- that queue add the run back); a paused one stays, it will be resumed.
-- Each run's zset is read from its start, at most `limit` entries: never a whole zset.
-- `due` returns flat {run, rcpt, due ms, snapshot, state} per delivery, earliest first;
-- `next` returns {earliest due ms} or {}.
local mode, now, limit = arg(1), tonumber(arg(2)), tonumber(arg(3))
local qkey = P .. 'qruns'
local runs
if arg(4) == '1' then
  if redis.call('HEXISTS', P .. 'sender:' .. arg(5), 'block_code') == 1 then return {} end
  local skey = P .. 'sruns:' .. arg(5)
  if #ARGV > 3 + 5 then
    runs = {}
    for i = 6, #ARGV - 3 do
      local run = arg(i)
      if redis.call('SISMEMBER', qkey, run) == 1 and redis.call('SISMEMBER', skey, run) == 1 then
        runs[#runs + 1] = run
      end
    end
  else
    runs = redis.call('SINTER', qkey, skey)
  end
else
  runs = redis.call('SMEMBERS', qkey)
end
local found = {}
for _, run in ipairs(runs) do
  local state = redis.call('HGET', P .. 'run:' .. run, 'state')
  local due = P .. 'due:' .. run
  if not state or state == 'cancelled' or redis.call('ZCARD', due) == 0 then
    redis.call('SREM', qkey, run)
  elseif state == 'active' then
    local rows
    if mode == 'next' then
      rows = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
    else
      rows = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
    end
    for i = 1, #rows, 2 do
      found[#found + 1] = {run, rows[i], tonumber(rows[i + 1])}
    end
  end
end
if mode == 'next' then
  local first = nil
  for _, f in ipairs(found) do
    if first == nil or f[3] < first then first = f[3] end
  end
  if first == nil then return {} end
  return {string.format('%d', first)}
end
table.sort(found, function(a, b)
  if a[3] ~= b[3] then return a[3] < b[3] end
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {}
for i = 1, math.min(limit, #found) do
  local f = found[i]
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = string.format('%d', f[3])
  out[#out + 1] = redis.call('HGET', P .. 'snap:' .. f[1], f[2]) or ''
  out[#out + 1] = redis.call('HGET', P .. 'dl:' .. f[1], f[2]) or ''
end
return out
