-- Deliveries::due / due_in / next_due / next_due_in (reads only). Own args: mode (`due` or
-- `next`), now ms, limit, scoped (1/0), sender, then the named runs of the scope (none: all).
-- The runs looked at are the active ones with something queued (their `c:queued`): every run
-- without a scope, the sender's (`sruns:<sender>`) with one, none while the sender is blocked.
-- Each run's zset is read from its start, at most `limit` entries: never a whole zset.
-- `due` returns flat {run, rcpt, due ms, snapshot, state} per delivery, earliest first;
-- `next` returns {earliest due ms} or {}.
local mode, now, limit = arg(1), tonumber(arg(2)), tonumber(arg(3))
local runs
if arg(4) == '1' then
  if redis.call('HEXISTS', P .. 'sender:' .. arg(5), 'block_code') == 1 then return {} end
  if #ARGV > 3 + 5 then
    runs = {}
    for i = 6, #ARGV - 3 do
      if redis.call('SISMEMBER', P .. 'sruns:' .. arg(5), arg(i)) == 1 then runs[#runs + 1] = arg(i) end
    end
  else
    runs = redis.call('SMEMBERS', P .. 'sruns:' .. arg(5))
  end
else
  runs = redis.call('ZRANGE', P .. 'runs', 0, -1)
end
local found = {}
for _, run in ipairs(runs) do
  local r = redis.call('HMGET', P .. 'run:' .. run, 'state', 'c:queued')
  if r[1] == 'active' and tonumber(r[2] or '0') > 0 then
    local due = P .. 'due:' .. run
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
